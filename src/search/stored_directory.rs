//! A tantivy `Directory` over an index kept sealed in the store, read lazily: each index file is
//! stored as pieces of at most [`PIECE_BYTES`], and a read unseals only the pieces it covers,
//! into a bounded cache in memory (never onto disk). So a query costs what it reads (a term's
//! postings, the norms it scores with, the stored fields of its hits), not the index's size.
//!
//! To add to an index, the directory is given a scratch directory: files tantivy writes (new
//! segments, its meta files) go there, files it deletes (merged away) leave the list, and
//! [`StoredDirectory::save`] seals only the new files; pieces of files that did not change are
//! not written again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback,
    WatchHandle, WritePtr,
};

use crate::store::{Store, StoreError};

/// Pieces are cut at this many bytes: small enough that a query reading a term's postings or
/// a block of stored fields unseals little, large enough that the store holds few blobs. A
/// query opens every segment, reading each file's footer and tables at its end: at 10M records
/// (10 segments) a query unsealed 75 pieces, so 64 KiB pieces (was 256) took `cairn search`
/// from 25-50 to 17-37 ms there, and at 1M a common word from 42 to 30 ms, a phrase found
/// nowhere from 19 to 14. An index's list records the size it was cut at.
pub const PIECE_BYTES: usize = 64 * 1024;

/// Unsealed pieces kept in memory for reuse, at most this many bytes.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The last bytes of each file kept in the index's list as well as in its pieces. Opening a
/// segment reads every file's footer and the tables before it, and most of a query's reads
/// are there: at 10M records (17 segments) 488 of a one-word query's 628 reads were in the
/// last 4 KiB of their file, and it opened 127 pieces of the store; with the tails at hand, 48
/// (at 1M, 38 and 14). Every opened piece is a request to an S3 store.
pub(super) const TAIL_BYTES: usize = 4 * 1024;

/// One index file as stored: its length, the blobs of its pieces, in order, and its last bytes
/// (none in a list written before they were kept: read from its last piece then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub len: u64,
    pub pieces: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_bytes"
    )]
    pub tail: Option<Vec<u8>>,
}

/// Bytes as base64 text in the list's JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        to: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => to.serialize_str(&STANDARD.encode(bytes)),
            None => to.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        from: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(from)?;
        text.map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The stored files and the pieces read from them, shared by every clone of the directory.
struct Shared {
    store: Store,
    piece_bytes: usize,
    files: Mutex<BTreeMap<String, StoredFile>>,
    cache: Mutex<PieceCache>,
    /// Where files written in this process go; None when the directory is only read.
    scratch: Option<(PathBuf, MmapDirectory)>,
    /// Files tantivy wrote in this process (its meta files among them).
    written: Mutex<BTreeSet<String>>,
    /// Pieces unsealed from the store so far.
    unsealed: std::sync::atomic::AtomicUsize,
}

#[derive(Clone)]
pub(super) struct StoredDirectory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StoredDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredDirectory")
    }
}

/// A first-in first-out cache of unsealed pieces, bounded in bytes.
#[derive(Default)]
struct PieceCache {
    pieces: HashMap<String, Arc<[u8]>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl PieceCache {
    fn get(&self, blob: &str) -> Option<Arc<[u8]>> {
        self.pieces.get(blob).cloned()
    }

    fn insert(&mut self, blob: &str, bytes: Arc<[u8]>) {
        if self.pieces.contains_key(blob) {
            return;
        }
        self.bytes += bytes.len();
        self.pieces.insert(blob.to_string(), bytes);
        self.order.push_back(blob.to_string());
        while self.bytes > CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.pieces.remove(&oldest) {
                self.bytes -= evicted.len();
            }
        }
    }
}

fn name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl StoredDirectory {
    /// The stored files `files`, read lazily from `store`; with `scratch`, also writable.
    pub(super) fn new(
        store: &Store,
        (files, piece_bytes): (BTreeMap<String, StoredFile>, usize),
        scratch: Option<&Path>,
    ) -> Result<StoredDirectory, StoreError> {
        if piece_bytes == 0 {
            return Err(super::failed("its pieces are said to be 0 bytes long"));
        }
        let scratch = match scratch {
            Some(dir) => Some((
                dir.to_path_buf(),
                MmapDirectory::open(dir).map_err(super::failed)?,
            )),
            None => None,
        };
        Ok(StoredDirectory {
            shared: Arc::new(Shared {
                store: store.clone(),
                piece_bytes,
                files: Mutex::new(files),
                cache: Mutex::new(PieceCache::default()),
                scratch,
                written: Mutex::new(BTreeSet::new()),
                unsealed: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    fn stored(&self, path: &Path) -> Option<StoredFile> {
        self.shared
            .files
            .lock()
            .ok()
            .and_then(|files| files.get(&name(path)).cloned())
    }

    fn is_written(&self, path: &Path) -> bool {
        self.shared
            .written
            .lock()
            .is_ok_and(|written| written.contains(&name(path)))
    }

    fn scratch(&self) -> io::Result<&MmapDirectory> {
        self.shared
            .scratch
            .as_ref()
            .map(|(_, dir)| dir)
            .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "read-only index"))
    }

    /// Seals the files written since the directory was opened, and returns the index's files
    /// as they now are: those kept from the store and the new ones. Lock files are the
    /// writer's, not the index's.
    pub(super) fn save(&self, kind: &str) -> Result<BTreeMap<String, StoredFile>, StoreError> {
        let mut files = self
            .shared
            .files
            .lock()
            .map_err(|_| super::failed("the index's file list is poisoned"))?
            .clone();
        let written: Vec<String> = self
            .shared
            .written
            .lock()
            .map_err(|_| super::failed("the index's file list is poisoned"))?
            .iter()
            .cloned()
            .collect();
        let Some((dir, _)) = &self.shared.scratch else {
            return Ok(files);
        };
        // A piece at a time: a merged segment's postings can be hundreds of MiB.
        let mut piece = vec![0; self.shared.piece_bytes];
        for file in written.iter().filter(|f| !f.ends_with(".lock")) {
            let mut reading = std::fs::File::open(dir.join(file)).map_err(super::failed)?;
            let mut stored = StoredFile {
                len: 0,
                pieces: Vec::new(),
                tail: None,
            };
            loop {
                let filled = fill(&mut reading, &mut piece).map_err(super::failed)?;
                if filled == 0 {
                    break;
                }
                stored
                    .pieces
                    .push(self.shared.store.put_blob(kind, &piece[..filled])?);
                stored.len += filled as u64;
                if filled < piece.len() {
                    break;
                }
            }
            stored.tail = Some(read_tail(&mut reading, stored.len).map_err(super::failed)?);
            files.insert(file.clone(), stored);
        }
        Ok(files)
    }

    pub(super) fn piece_bytes(&self) -> usize {
        self.shared.piece_bytes
    }

    /// How many pieces have been unsealed from the store.
    pub(super) fn unsealed(&self) -> usize {
        self.shared
            .unsealed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn piece(&self, blob: &str) -> io::Result<Arc<[u8]>> {
        if let Some(bytes) = self.shared.cache.lock().ok().and_then(|c| c.get(blob)) {
            return Ok(bytes);
        }
        let bytes: Arc<[u8]> = self.shared.store.get_blob(blob).map_err(io_error)?.into();
        self.shared
            .unsealed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut cache) = self.shared.cache.lock() {
            cache.insert(blob, bytes.clone());
        }
        Ok(bytes)
    }
}

/// Reads until `buf` is full or the file ends; how many bytes it holds.
fn fill(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Fails a read of `range` that does not lie within a file of `len` bytes.
fn within(range: &Range<usize>, len: usize, file: &str) -> io::Result<()> {
    if range.end > len || range.start > range.end {
        return Err(io_error(format!(
            "a read of bytes {range:?} is past the end of {file} ({len} bytes)"
        )));
    }
    Ok(())
}

/// The last [`TAIL_BYTES`] of a file `len` bytes long (all of a shorter one).
fn read_tail(file: &mut std::fs::File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let start = len.saturating_sub(TAIL_BYTES as u64);
    file.seek(io::SeekFrom::Start(start))?;
    let mut tail = vec![0; (len - start) as usize];
    file.read_exact(&mut tail)?;
    Ok(tail)
}

/// A stored file, read piece by piece.
#[derive(Debug)]
struct StoredHandle {
    directory: StoredDirectory,
    name: String,
    file: StoredFile,
    /// The file's tail as kept in the list, read without unsealing a piece.
    tail: Option<OwnedBytes>,
}

impl HasLen for StoredHandle {
    fn len(&self) -> usize {
        self.file.len as usize
    }
}

impl FileHandle for StoredHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        within(&range, self.file.len as usize, &self.name)?;
        if range.is_empty() {
            return Ok(OwnedBytes::empty());
        }
        if let Some(tail) = &self.tail {
            let tail_start = self.file.len as usize - tail.len();
            if range.start >= tail_start {
                return Ok(tail.slice(range.start - tail_start..range.end - tail_start));
            }
        }
        let size = self.directory.shared.piece_bytes;
        let first = range.start / size;
        let last = (range.end - 1) / size;
        let piece = |index: usize| -> io::Result<Arc<[u8]>> {
            let blob = self
                .file
                .pieces
                .get(index)
                .ok_or_else(|| io_error(format!("{} lacks its piece {index}", self.name)))?;
            let bytes = self.directory.piece(blob)?;
            // Every piece but the last is whole: a shorter one would shift every read after it.
            let expected = size.min(self.file.len as usize - index * size);
            if bytes.len() != expected {
                return Err(io_error(format!(
                    "piece {index} of {} holds {} bytes, not {expected}",
                    self.name,
                    bytes.len()
                )));
            }
            Ok(bytes)
        };
        if first == last {
            let offset = first * size;
            return Ok(
                OwnedBytes::new(piece(first)?).slice(range.start - offset..range.end - offset)
            );
        }
        let mut bytes = Vec::with_capacity(range.len());
        for index in first..=last {
            let offset = index * size;
            let whole = piece(index)?;
            let from = range.start.saturating_sub(offset);
            let to = (range.end - offset).min(whole.len());
            bytes.extend_from_slice(&whole[from..to]);
        }
        Ok(OwnedBytes::new(bytes))
    }
}

impl Directory for StoredDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if self.is_written(path) {
            let scratch = self
                .scratch()
                .map_err(|e| OpenReadError::wrap_io_error(e, path.into()))?;
            return scratch.get_file_handle(path);
        }
        match self.stored(path) {
            Some(mut file) => {
                let tail = file
                    .tail
                    .take()
                    .filter(|tail| tail.len() as u64 <= file.len)
                    .map(OwnedBytes::new);
                Ok(Arc::new(StoredHandle {
                    directory: self.clone(),
                    name: name(path),
                    file,
                    tail,
                }))
            }
            None => Err(OpenReadError::FileDoesNotExist(path.to_path_buf())),
        }
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if self.is_written(path) {
            if let Ok(mut written) = self.shared.written.lock() {
                written.remove(&name(path));
            }
            let scratch = self.scratch().map_err(|e| DeleteError::IoError {
                io_error: Arc::new(e),
                filepath: path.into(),
            })?;
            return scratch.delete(path);
        }
        let removed = self
            .shared
            .files
            .lock()
            .is_ok_and(|mut files| files.remove(&name(path)).is_some());
        if removed {
            Ok(())
        } else {
            Err(DeleteError::FileDoesNotExist(path.to_path_buf()))
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.is_written(path) || self.stored(path).is_some())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.exists(path).unwrap_or(false) {
            return Err(OpenWriteError::FileAlreadyExists(path.to_path_buf()));
        }
        let scratch = self
            .scratch()
            .map_err(|e| OpenWriteError::wrap_io_error(e, path.into()))?;
        let writer = scratch.open_write(path)?;
        if let Ok(mut written) = self.shared.written.lock() {
            written.insert(name(path));
        }
        Ok(writer)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        if self.is_written(path) {
            let scratch = self
                .scratch()
                .map_err(|e| OpenReadError::wrap_io_error(e, path.into()))?;
            return scratch.atomic_read(path);
        }
        let handle = self.get_file_handle(path)?;
        let bytes = handle
            .read_bytes(0..handle.len())
            .map_err(|e| OpenReadError::wrap_io_error(e, path.into()))?;
        Ok(bytes.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.scratch()?.atomic_write(path, data)?;
        if let Ok(mut written) = self.shared.written.lock() {
            written.insert(name(path));
        }
        // A file written anew replaces the stored one of its name.
        if let Ok(mut files) = self.shared.files.lock() {
            files.remove(&name(path));
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        match &self.shared.scratch {
            Some((_, scratch)) => scratch.sync_directory(),
            None => Ok(()),
        }
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        match &self.shared.scratch {
            Some((_, scratch)) => scratch.acquire_lock(lock),
            // Nothing is written through a read-only directory, so nothing needs excluding.
            None => Ok(DirectoryLock::from(Box::new(()))),
        }
    }

    fn watch(&self, _: WatchCallback) -> tantivy::Result<WatchHandle> {
        // The index changes only through this process's writer, which reloads its readers.
        Ok(WatchHandle::empty())
    }
}
