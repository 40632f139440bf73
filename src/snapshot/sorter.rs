//! Puts fetched records into the store's order (ascending Id bytes) with bounded memory.
//! Sources return records in no promised order and a large object does not fit in memory, so
//! rows are gathered up to a byte budget, sorted, and spilled as runs to a private temporary
//! directory; reading merges the runs. Spilled runs are compressed and sealed under a key that
//! exists only in this process, so no record is readable on disk even for the minutes it is
//! there.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};

use crate::store::StoreError;
use crate::store::crypto::{BlobCipher, MasterKey};

/// One fetched record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    /// A tombstone: the record was deleted in the source.
    pub deleted: bool,
    /// Created inside the fetched window (so it cannot be in the parent snapshot).
    pub created: bool,
    /// Last modified before the window began: fetched again only because windows overlap,
    /// so probably unchanged.
    pub revisit: bool,
    /// SystemModstamp in ms since the epoch; `i64::MIN` when the source has none. Each change
    /// of a record moves it, so (Id, stamp) names one version.
    pub stamp: i64,
    pub body: Vec<u8>,
}

impl Row {
    fn weight(&self) -> usize {
        // The two heap allocations and the struct itself.
        self.id.len() + self.body.len() + 80
    }
}

/// Rows held in memory before a run is spilled.
pub const DEFAULT_MEMORY: usize = 64 * 1024 * 1024;
/// Plaintext bytes per sealed chunk of a run.
const CHUNK: usize = 1024 * 1024;

pub struct RowSorter {
    memory: usize,
    buffer: Vec<Row>,
    buffered: usize,
    runs: Vec<File>,
    spill: Option<Spill>,
}

struct Spill {
    dir: tempfile::TempDir,
    cipher: BlobCipher,
}

impl RowSorter {
    pub fn new(memory: usize) -> RowSorter {
        RowSorter {
            memory: memory.max(1),
            buffer: Vec::new(),
            buffered: 0,
            runs: Vec::new(),
            spill: None,
        }
    }

    pub fn push(&mut self, row: Row) -> Result<(), StoreError> {
        self.buffered += row.weight();
        self.buffer.push(row);
        if self.buffered >= self.memory {
            self.spill_run()?;
        }
        Ok(())
    }

    /// How many runs went to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn sort_buffer(&mut self) {
        // Stable, so of two rows with one Id the later fetched wins in `dedup_last`.
        self.buffer.sort_by(|a, b| a.id.cmp(&b.id));
        dedup_last(&mut self.buffer);
    }

    fn spill_run(&mut self) -> Result<(), StoreError> {
        self.sort_buffer();
        if self.spill.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("cairn-sort-")
                .tempdir()
                .map_err(|e| io_error("create a temporary directory for sorting", e))?;
            self.spill = Some(Spill {
                dir,
                cipher: BlobCipher::new(&MasterKey::generate()?),
            });
        }
        let Some(spill) = &self.spill else {
            unreachable!("created above")
        };
        let run = self.runs.len();
        let path = spill.dir.path().join(format!("run-{run}"));
        let file = File::create(&path).map_err(|e| io_error("write a sort run", e))?;
        let mut out = BufWriter::new(file);
        let mut chunk = Vec::with_capacity(CHUNK + 4096);
        let mut number = 0u64;
        for row in self.buffer.drain(..) {
            encode(&row, &mut chunk);
            if chunk.len() >= CHUNK {
                write_chunk(&mut out, &spill.cipher, run, number, &chunk)?;
                number += 1;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            write_chunk(&mut out, &spill.cipher, run, number, &chunk)?;
        }
        out.flush().map_err(|e| io_error("write a sort run", e))?;
        let file = File::open(&path).map_err(|e| io_error("read a sort run", e))?;
        // Unlinked now: the open handle keeps it readable, and nothing is left if we die.
        let _ = std::fs::remove_file(&path);
        self.runs.push(file);
        self.buffered = 0;
        Ok(())
    }

    /// Every row pushed, ascending by Id, one row per Id (the last one pushed).
    pub fn finish(mut self) -> Result<SortedRows, StoreError> {
        if self.runs.is_empty() {
            self.sort_buffer();
            return Ok(SortedRows {
                source: Source::Memory(std::mem::take(&mut self.buffer).into_iter()),
            });
        }
        if !self.buffer.is_empty() {
            self.spill_run()?;
        }
        let Some(spill) = self.spill.take() else {
            unreachable!("runs exist only after a spill")
        };
        let mut runs = Vec::new();
        for (index, file) in std::mem::take(&mut self.runs).into_iter().enumerate() {
            runs.push(RunReader {
                index,
                input: BufReader::new(file),
                rows: Vec::new().into_iter(),
                chunk: 0,
            });
        }
        let mut merge = Merge {
            heap: BinaryHeap::new(),
            heads: (0..runs.len()).map(|_| None).collect(),
            runs,
            cipher: spill.cipher,
            _dir: spill.dir,
        };
        for index in 0..merge.runs.len() {
            merge.advance(index)?;
        }
        Ok(SortedRows {
            source: Source::Merge(Box::new(merge)),
        })
    }
}

fn dedup_last(rows: &mut Vec<Row>) {
    // Keep the last of each run of equal Ids.
    rows.reverse();
    rows.dedup_by(|later, earlier| later.id == earlier.id);
    rows.reverse();
}

fn io_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend {
        location: std::env::temp_dir().display().to_string(),
        message: format!("could not {what}: {e} (set TMPDIR to a directory with free space)"),
    }
}

fn encode(row: &Row, out: &mut Vec<u8>) {
    out.extend_from_slice(&(row.id.len() as u32).to_le_bytes());
    out.extend_from_slice(row.id.as_bytes());
    out.push(u8::from(row.deleted) | (u8::from(row.created) << 1) | (u8::from(row.revisit) << 2));
    out.extend_from_slice(&row.stamp.to_le_bytes());
    out.extend_from_slice(&(row.body.len() as u32).to_le_bytes());
    out.extend_from_slice(&row.body);
}

fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    let mut rows = Vec::new();
    let mut at = 0;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..*at + n)?;
        *at += n;
        Some(slice)
    };
    while at < bytes.len() {
        let id_len = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
        let id = String::from_utf8(take(&mut at, id_len)?.to_vec()).ok()?;
        let flags = take(&mut at, 1)?[0];
        let stamp = i64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
        let body_len = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
        let body = take(&mut at, body_len)?.to_vec();
        rows.push(Row {
            id,
            deleted: flags & 1 != 0,
            created: flags & 2 != 0,
            revisit: flags & 4 != 0,
            stamp,
            body,
        });
    }
    Some(rows)
}

fn chunk_id(run: usize, number: u64) -> String {
    format!("sort-run-{run}-{number}")
}

fn write_chunk(
    out: &mut impl Write,
    cipher: &BlobCipher,
    run: usize,
    number: u64,
    plain: &[u8],
) -> Result<(), StoreError> {
    let sealed = cipher.seal(&chunk_id(run, number), plain)?;
    out.write_all(&(sealed.len() as u64).to_le_bytes())
        .and_then(|_| out.write_all(&sealed))
        .map_err(|e| io_error("write a sort run", e))
}

struct RunReader {
    index: usize,
    input: BufReader<File>,
    rows: std::vec::IntoIter<Row>,
    chunk: u64,
}

impl RunReader {
    fn next_row(&mut self, cipher: &BlobCipher) -> Result<Option<Row>, StoreError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            let mut length = [0u8; 8];
            match self.input.read_exact(&mut length) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(io_error("read a sort run", e)),
            }
            let mut sealed = vec![0u8; u64::from_le_bytes(length) as usize];
            self.input
                .read_exact(&mut sealed)
                .map_err(|e| io_error("read a sort run", e))?;
            let id = chunk_id(self.index, self.chunk);
            let plain = cipher.open(&id, sealed)?;
            self.chunk += 1;
            self.rows = decode(&plain)
                .ok_or_else(|| StoreError::CorruptBlob {
                    id,
                    reason: "a sort run chunk does not decode".into(),
                })?
                .into_iter();
        }
    }
}

struct Merge {
    /// (Id, run) of each run's next row, smallest Id first; of equal Ids the later run comes
    /// first, being the later fetch.
    heap: BinaryHeap<Reverse<(String, Reverse<usize>)>>,
    heads: Vec<Option<Row>>,
    runs: Vec<RunReader>,
    cipher: BlobCipher,
    _dir: tempfile::TempDir,
}

impl Merge {
    fn advance(&mut self, index: usize) -> Result<(), StoreError> {
        let next = self.runs[index].next_row(&self.cipher)?;
        if let Some(row) = &next {
            self.heap.push(Reverse((row.id.clone(), Reverse(index))));
        }
        self.heads[index] = next;
        Ok(())
    }

    fn next_row(&mut self) -> Result<Option<Row>, StoreError> {
        let Some(Reverse((id, Reverse(index)))) = self.heap.pop() else {
            return Ok(None);
        };
        let row = self.heads[index].take();
        self.advance(index)?;
        // Older copies of the same record in earlier runs are superseded.
        while self
            .heap
            .peek()
            .is_some_and(|Reverse((other, _))| *other == id)
        {
            if let Some(Reverse((_, Reverse(older)))) = self.heap.pop() {
                self.advance(older)?;
            }
        }
        Ok(row)
    }
}

enum Source {
    Memory(std::vec::IntoIter<Row>),
    Merge(Box<Merge>),
}

/// Rows in ascending Id order.
pub struct SortedRows {
    source: Source,
}

impl Iterator for SortedRows {
    type Item = Result<Row, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Memory(rows) => rows.next().map(Ok),
            Source::Merge(merge) => merge.next_row().transpose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, body: &str) -> Row {
        Row {
            id: id.to_string(),
            deleted: body.is_empty(),
            created: body.len() % 2 == 1,
            revisit: body.len() % 3 == 1,
            stamp: body.len() as i64 * 1000 - 7,
            body: body.as_bytes().to_vec(),
        }
    }

    fn sorted(memory: usize, rows: &[Row]) -> (Vec<Row>, usize) {
        let mut sorter = RowSorter::new(memory);
        for r in rows {
            sorter.push(r.clone()).expect("push");
        }
        let runs = sorter.spilled_runs();
        let out = sorter
            .finish()
            .expect("finish")
            .collect::<Result<Vec<_>, _>>();
        (out.expect("read"), runs)
    }

    /// The reference: a stable sort keeping the last row of each Id.
    fn expected(rows: &[Row]) -> Vec<Row> {
        let mut all = rows.to_vec();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        dedup_last(&mut all);
        all
    }

    #[test]
    fn spilled_and_in_memory_sorts_agree_with_a_plain_sort() {
        let mut seed = 7u64;
        let mut rows = Vec::new();
        for n in 0..5000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = format!("001{:012}", (seed >> 33) % 3000);
            rows.push(row(&id, &format!("{{\"n\":{n}}}")));
        }
        rows.push(row("001000000000001", ""));
        let want = expected(&rows);
        let (in_memory, runs) = sorted(usize::MAX, &rows);
        assert_eq!(runs, 0);
        assert_eq!(in_memory, want);
        let (spilled, runs) = sorted(20_000, &rows);
        assert!(runs > 10, "only {runs} runs spilled");
        assert_eq!(spilled, want);
    }

    #[test]
    fn a_later_fetch_of_a_record_wins_across_runs() {
        let rows = [
            row("b", "1"),
            row("a", "old"),
            row("c", "3"),
            row("a", "new"),
        ];
        let (out, runs) = sorted(1, &rows);
        assert_eq!(runs, 4);
        let bodies: Vec<_> = out
            .iter()
            .map(|r| (r.id.as_str(), r.body.clone()))
            .collect();
        assert_eq!(
            bodies,
            [
                ("a", b"new".to_vec()),
                ("b", b"1".to_vec()),
                ("c", b"3".to_vec())
            ]
        );
    }

    #[test]
    fn spilled_runs_hold_no_readable_record_data() {
        let mut sorter = RowSorter::new(1);
        sorter.spill_run().expect("empty run");
        sorter.push(row("z", "SECRET-VALUE-123")).expect("push");
        let spill = sorter.spill.as_ref().expect("spilled");
        // The run file is unlinked at once; nothing remains under the spill directory.
        let left: Vec<_> = std::fs::read_dir(spill.dir.path()).expect("list").collect();
        assert!(left.is_empty(), "{left:?}");
        let mut file = sorter.runs.last().expect("run").try_clone().expect("clone");
        let mut bytes = Vec::new();
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.read_to_end(&mut bytes).expect("read");
        assert!(!bytes.is_empty());
        assert!(!bytes.windows(6).any(|w| w == b"SECRET"));
    }
}
