//! File bodies as a snapshot holds them. A record's body field (ContentVersion's `VersionData`,
//! an Attachment's `Body`) is kept in an object of its own, named `Object.Field` (no object of
//! a source has a dot in its name), whose rows are [`FileBody`]: the file's name, size, MD5 and
//! the chunks its bytes were cut into. Chunks are content-defined (FastCDC, with gear tables
//! seeded from the store's key), so versions that differ by an edit share most of them, and are
//! stored once each as ordinary sealed blobs. Being rows, bodies have the bases, deltas,
//! retention and reading that records have; `check` and `prune` follow the chunks they name.

use std::collections::BTreeSet;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::manifest::SnapshotManifest;
use crate::store::{Store, StoreError};

/// Chunk sizes: small files are one chunk; large ones are cut about every MiB, never into
/// pieces under 256 KiB nor over 4 MiB (what one read holds in memory).
pub const MIN_CHUNK: usize = 256 * 1024;
pub const AVERAGE_CHUNK: usize = 1024 * 1024;
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// The blob kind chunks are stored as (part of their keyed id).
pub const CHUNK_KIND: &str = "chunk";

/// The snapshot object holding the bodies of `object`'s `field`.
pub fn body_object(object: &str, field: &str) -> String {
    format!("{object}.{field}")
}

/// The record object and field a body object holds; None for an object of records.
pub fn body_object_parts(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
}

pub fn is_body_object(name: &str) -> bool {
    body_object_parts(name).is_some()
}

/// One chunk of a body: its blob and its plaintext length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub blob: String,
    pub size: u64,
}

/// Why a body is not in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    pub reason: String,
    /// The next backup fetches it again (the budget ran out, the download failed); otherwise
    /// it stays out until the record or the task's settings change (too large, say).
    pub retry: bool,
}

/// One record's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FileBody {
    #[serde(rename = "Id")]
    pub id: String,
    /// The file's name (its path on the client, an attachment's name).
    pub name: String,
    /// The record the file belongs to, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Bytes, as the source gives the size (and, once held, as stored).
    pub size: u64,
    /// The MD5 of the bytes held, lowercase hex; None while the body is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// What the source says of the body's version when it gives no checksum (the record's
    /// last change): a new one means the body may have changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Missing>,
}

impl FileBody {
    pub fn parse(bytes: &[u8]) -> Result<FileBody, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a file body row: {e}"))
    }

    /// A row of body object `object`, as stored: one that does not parse is damage, named.
    pub fn read(object: &str, id: &str, bytes: &[u8]) -> Result<FileBody, StoreError> {
        FileBody::parse(bytes).map_err(|reason| StoreError::CorruptBlob {
            id: String::new(),
            reason: format!("the body row of {id} in {object}: {reason}"),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn is_held(&self) -> bool {
        self.missing.is_none()
    }

    /// Whether the next backup fetches it again.
    pub fn waiting(&self) -> bool {
        self.missing.as_ref().is_some_and(|m| m.retry)
    }
}

/// Cuts a body that arrives in pieces into content-defined chunks, and digests it, holding at
/// most one maximal chunk and the piece that arrived.
pub struct BodyCutter {
    seed: u64,
    /// Bytes not cut yet, from `start` on. Cut chunks are only stepped over; the rest moves to
    /// the front when the buffer is full, so a body reuses one buffer (a kept one,
    /// `store::buffers`) instead of a new one per chunk.
    buffer: Vec<u8>,
    start: usize,
    md5: Md5,
    size: u64,
}

impl BodyCutter {
    pub fn new(seed: u64) -> BodyCutter {
        BodyCutter {
            seed,
            buffer: Vec::new(),
            start: 0,
            md5: Md5::new(),
            size: 0,
        }
    }

    /// Takes the next piece; returns the chunks it completed, in order (each in a kept
    /// buffer: hand it back to `store::buffers` once stored).
    pub fn push(&mut self, piece: &[u8]) -> Vec<Vec<u8>> {
        self.md5.update(piece);
        self.size += piece.len() as u64;
        self.make_room(piece.len());
        self.buffer.extend_from_slice(piece);
        let mut chunks = Vec::new();
        // A cut is final only when a whole maximal chunk lies ahead of it: with less, more
        // bytes could move it.
        while self.buffer.len() - self.start >= MAX_CHUNK {
            chunks.push(self.cut_one());
        }
        chunks
    }

    /// The last chunks, the body's size and its MD5 in lowercase hex.
    pub fn finish(mut self) -> (Vec<Vec<u8>>, u64, String) {
        let mut chunks = Vec::new();
        while self.start < self.buffer.len() {
            chunks.push(self.cut_one());
        }
        crate::store::buffers::give_back(self.buffer);
        let md5 = crate::store::crypto::hex(&self.md5.finalize());
        (chunks, self.size, md5)
    }

    /// Room for `more` bytes: what was cut is dropped from the front first, and a body past
    /// the smallest chunk moves to a kept buffer that holds a maximal chunk and a piece.
    fn make_room(&mut self, more: usize) {
        if self.buffer.len() + more <= self.buffer.capacity() {
            return;
        }
        self.buffer.drain(..self.start);
        self.start = 0;
        let needed = self.buffer.len() + more;
        if needed > self.buffer.capacity() && needed > MIN_CHUNK {
            let mut larger = crate::store::buffers::take(needed.max(2 * MAX_CHUNK));
            larger.extend_from_slice(&self.buffer);
            crate::store::buffers::give_back(std::mem::replace(&mut self.buffer, larger));
        }
    }

    fn cut_one(&mut self) -> Vec<u8> {
        let rest = &self.buffer[self.start..];
        let end = cut_point(rest, self.seed);
        let mut chunk = crate::store::buffers::take(end);
        chunk.extend_from_slice(&rest[..end]);
        self.start += end;
        chunk
    }
}

/// Where the first chunk of `data` ends.
fn cut_point(data: &[u8], seed: u64) -> usize {
    if data.len() <= MIN_CHUNK {
        return data.len();
    }
    let window = &data[..data.len().min(MAX_CHUNK)];
    let chunker = fastcdc::v2020::FastCDC::with_level_and_seed(
        window,
        MIN_CHUNK,
        AVERAGE_CHUNK,
        MAX_CHUNK,
        fastcdc::v2020::Normalization::Level1,
        seed,
    );
    let (_, end) = chunker.cut(0, window.len());
    end.clamp(1, window.len())
}

/// Reads a held body back chunk by chunk, checking each chunk's length, and the whole body's
/// size and MD5 at its end: a body is never given back other than it was stored. Owns its
/// handles (both cheap to copy), so it can move to a blocking thread.
pub struct BodyReader {
    store: Store,
    body: FileBody,
    next: usize,
    md5: Md5,
    size: u64,
    failed: bool,
}

impl BodyReader {
    pub fn new(store: &Store, body: &FileBody) -> BodyReader {
        BodyReader {
            store: store.clone(),
            body: body.clone(),
            next: 0,
            md5: Md5::new(),
            size: 0,
            failed: false,
        }
    }

    fn damaged(&self, blob: &str, reason: String) -> StoreError {
        StoreError::CorruptBlob {
            id: blob.to_string(),
            reason: format!("{} of {}: {reason}", self.body.name, self.body.id),
        }
    }

    fn read_next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(chunk) = self.body.chunks.get(self.next) else {
            let md5 = crate::store::crypto::hex(&std::mem::take(&mut self.md5).finalize());
            let last = self.body.chunks.last().map_or("", |c| c.blob.as_str());
            if self.size != self.body.size {
                return Err(self.damaged(
                    last,
                    format!("{} bytes read, {} stored", self.size, self.body.size),
                ));
            }
            if let Some(expected) = &self.body.md5
                && *expected != md5
            {
                return Err(self.damaged(last, format!("MD5 {md5}, {expected} stored")));
            }
            return Ok(None);
        };
        self.next += 1;
        let bytes = self.store.get_blob(&chunk.blob)?;
        if bytes.len() as u64 != chunk.size {
            let (blob, size) = (chunk.blob.clone(), chunk.size);
            return Err(self.damaged(
                &blob,
                format!("a chunk of {} bytes where {size} were stored", bytes.len()),
            ));
        }
        self.md5.update(&bytes);
        self.size += bytes.len() as u64;
        Ok(Some(bytes))
    }

    /// The body as a stream of its chunks, each read on a blocking thread: what an upload
    /// sends, one chunk in memory at a time.
    pub fn into_stream(
        self,
    ) -> impl futures_core::Stream<Item = Result<bytes::Bytes, StoreError>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |reader| async move {
            let mut reader = reader?;
            let read = tokio::task::spawn_blocking(move || {
                let next = reader.next();
                (next, reader)
            })
            .await;
            match read {
                Ok((Some(Ok(bytes)), reader)) => Some((
                    Ok(bytes::Bytes::from_owner(crate::store::buffers::Kept(bytes))),
                    Some(reader),
                )),
                Ok((Some(Err(e)), _)) => Some((Err(e), None)),
                Ok((None, _)) => None,
                Err(e) => Some((
                    Err(StoreError::Backend {
                        location: String::new(),
                        message: format!("the thread reading a file body stopped: {e}"),
                    }),
                    None,
                )),
            }
        })
    }
}

impl Iterator for BodyReader {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.read_next() {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => {
                self.failed = true;
                None
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The body rows of one segment of a body object (`object`, for errors), in Id order.
pub fn segment_bodies(
    store: &Store,
    object: &str,
    blob: &str,
) -> Result<Vec<FileBody>, StoreError> {
    let (bytes, entries) = super::columns::open(blob, store.get_blob(blob)?)?;
    let mut bodies = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = String::from_utf8_lossy(&bytes[entry.id.0..entry.id.1]);
        // A tombstone names no chunk.
        let Some((start, end)) = entry.body else {
            continue;
        };
        bodies.push(FileBody::read(object, &id, &bytes[start..end])?);
    }
    Ok(bodies)
}

/// The chunks a snapshot's bodies name, including those only its deltas' older rows name (a
/// later layer replacing a row does not free what the earlier one holds until compaction
/// drops it).
pub fn referenced_chunks(
    store: &Store,
    manifest: &SnapshotManifest,
) -> Result<BTreeSet<String>, StoreError> {
    let mut chunks = BTreeSet::new();
    for (name, entry) in manifest.objects.iter().filter(|(n, _)| is_body_object(n)) {
        for segment in entry.segments() {
            for body in segment_bodies(store, name, &segment.blob)? {
                chunks.extend(body.chunks.into_iter().map(|c| c.blob));
            }
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    fn cut(data: &[u8], piece: usize, seed: u64) -> (Vec<Vec<u8>>, u64, String) {
        let mut cutter = BodyCutter::new(seed);
        let mut chunks = Vec::new();
        for part in data.chunks(piece.max(1)) {
            chunks.extend(cutter.push(part));
        }
        let (last, size, md5) = cutter.finish();
        chunks.extend(last);
        (chunks, size, md5)
    }

    #[test]
    fn chunks_rebuild_the_body_and_do_not_depend_on_how_it_arrived() {
        let data = pseudo_random(9 * 1024 * 1024 + 77, 5);
        let (whole, size, md5) = cut(&data, data.len(), 1);
        assert_eq!(whole.concat(), data);
        assert_eq!(size, data.len() as u64);
        assert_eq!(md5, crate::store::crypto::hex(&Md5::digest(&data)));
        assert!(whole.len() >= 3, "a 9 MiB body is cut: {}", whole.len());
        for chunk in &whole[..whole.len() - 1] {
            assert!((MIN_CHUNK..=MAX_CHUNK).contains(&chunk.len()));
        }
        for piece in [1000, 65_536, 3 * 1024 * 1024 + 1] {
            let (pieces, _, _) = cut(&data, piece, 1);
            assert_eq!(pieces, whole, "arriving {piece} bytes at a time");
        }
    }

    #[test]
    fn an_edit_leaves_most_chunks_as_they_were() {
        let data = pseudo_random(16 * 1024 * 1024, 9);
        let mut edited = data.clone();
        // Sixteen bytes inserted in the middle.
        edited.splice(8_000_000..8_000_000, [7u8; 16]);
        let (before, _, _) = cut(&data, 65_536, 3);
        let (after, _, _) = cut(&edited, 65_536, 3);
        let before: BTreeSet<&Vec<u8>> = before.iter().collect();
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(
            shared + 2 >= after.len(),
            "{shared} of {} chunks shared",
            after.len()
        );
    }

    #[test]
    fn the_cuts_depend_on_the_key() {
        let data = pseudo_random(12 * 1024 * 1024, 2);
        let (a, _, _) = cut(&data, data.len(), 1);
        let (b, _, _) = cut(&data, data.len(), 2);
        assert_ne!(
            a.iter().map(Vec::len).collect::<Vec<_>>(),
            b.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn empty_and_small_bodies_are_one_chunk_or_none() {
        let (chunks, size, md5) = cut(&[], 10, 1);
        assert!(chunks.is_empty());
        assert_eq!(
            (size, md5.as_str()),
            (0, "d41d8cd98f00b204e9800998ecf8427e")
        );
        let (chunks, _, _) = cut(b"abc", 1, 1);
        assert_eq!(chunks, vec![b"abc".to_vec()]);
    }
}
