//! A segment: a run of one object's records in ascending Id order, framed so reading needs no
//! parsing: `CRS1`, then per record `[u32 id length][id][u32 body length][body]`, where a body
//! length of u32::MAX marks a tombstone (the record was deleted). Bodies are the records'
//! canonical JSON, opaque here.

use crate::store::StoreError;

const MAGIC: &[u8; 4] = b"CRS1";
const TOMBSTONE: u32 = u32::MAX;
/// Segments are cut at about this many plaintext bytes: large enough to compress well, small
/// enough that reading holds little in memory.
pub const TARGET_BYTES: usize = 4 * 1024 * 1024;
/// A delta's segments are cut smaller: a search reads a delta's records back a block (128
/// Ids spread over its whole range) at a time, from one segment per delta, so a smaller cut
/// keeps what that read decompresses the same as the org grows (at 1M a day's delta of an
/// object is about 1 MiB in all; at 10M 4 MiB segments made each read four times the work).
pub const DELTA_TARGET_BYTES: usize = 1024 * 1024;

/// Collects records into a segment.
pub struct SegmentBuilder {
    buf: Vec<u8>,
    records: u64,
    first: Option<String>,
    last: Option<String>,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        SegmentBuilder::reusing(Vec::new())
    }
}

impl SegmentBuilder {
    /// A builder writing into `buf` (cleared), a finished segment's buffer given back. A new
    /// buffer grows as records come, so an object of a few records never holds a segment's
    /// worth of memory.
    pub fn reusing(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.extend_from_slice(MAGIC);
        SegmentBuilder {
            buf,
            records: 0,
            first: None,
            last: None,
        }
    }
}

impl SegmentBuilder {
    /// Adds a record (body) or a tombstone (None). Ids must ascend; the writer checks.
    pub fn push(&mut self, id: &str, body: Option<&[u8]>) {
        let adding = 8 + id.len() + body.map_or(0, <[u8]>::len);
        let needed = self.buf.len() + adding;
        if needed > self.buf.capacity() {
            // Doubling would take the last step from 4 MiB to 8 for the record that fills
            // the segment: grow to just past the target instead (the segment ends there).
            let doubled = (self.buf.capacity() * 2).max(needed);
            let wanted = doubled.min(needed.max(TARGET_BYTES + 64 * 1024));
            self.buf.reserve_exact(wanted - self.buf.len());
        }
        self.buf.extend_from_slice(&(id.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(id.as_bytes());
        match body {
            Some(body) => {
                self.buf
                    .extend_from_slice(&(body.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(body);
            }
            None => self.buf.extend_from_slice(&TOMBSTONE.to_le_bytes()),
        }
        self.records += 1;
        if self.first.is_none() {
            self.first = Some(id.to_string());
        }
        // Written over, not allocated anew: a segment takes thousands of records.
        let last = self.last.get_or_insert_with(String::new);
        last.clear();
        last.push_str(id);
    }

    /// Plaintext bytes so far (the frame's header included).
    pub fn plaintext_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The segment's bytes, its record count, and its first and last Ids.
    pub fn finish(self) -> (Vec<u8>, u64, String, String) {
        (
            self.buf,
            self.records,
            self.first.unwrap_or_default(),
            self.last.unwrap_or_default(),
        )
    }
}

/// One entry of a decoded segment: byte ranges into the segment.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub id: (usize, usize),
    /// None for a tombstone.
    pub body: Option<(usize, usize)>,
}

/// Checks a segment's framing and indexes its entries.
pub fn index(blob: &str, bytes: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let entries = frames(bytes).map_err(|reason| StoreError::CorruptBlob {
        id: blob.to_string(),
        reason: reason.to_string(),
    })?;
    match entries
        .iter()
        .all(|e| std::str::from_utf8(&bytes[e.id.0..e.id.1]).is_ok())
    {
        true => Ok(entries),
        false => Err(StoreError::CorruptBlob {
            id: blob.to_string(),
            reason: "a record id is not UTF-8".to_string(),
        }),
    }
}

/// A segment's entries, its Ids not checked (as a segment just built needs).
pub fn frames(bytes: &[u8]) -> Result<Vec<Entry>, &'static str> {
    let corrupt = |reason: &'static str| reason;
    if bytes.get(..4) != Some(MAGIC) {
        return Err(corrupt("not a record segment"));
    }
    let mut entries = Vec::new();
    let mut at = 4;
    let read_u32 = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    while at < bytes.len() {
        let id_len = read_u32(at).ok_or_else(|| corrupt("truncated record header"))? as usize;
        let id_start = at + 4;
        let id_end = id_start
            .checked_add(id_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt("truncated record id"))?;
        let body_len = read_u32(id_end).ok_or_else(|| corrupt("truncated record length"))?;
        let body_start = id_end + 4;
        let (body, next) = if body_len == TOMBSTONE {
            (None, body_start)
        } else {
            let end = body_start
                .checked_add(body_len as usize)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| corrupt("truncated record body"))?;
            (Some((body_start, end)), end)
        };
        entries.push(Entry {
            id: (id_start, id_end),
            body,
        });
        at = next;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_records_and_tombstones() {
        let mut builder = SegmentBuilder::default();
        builder.push("001A", Some(b"{\"Id\":\"001A\"}"));
        builder.push("001B", None);
        let (bytes, count, first, last) = builder.finish();
        assert_eq!((count, first.as_str(), last.as_str()), (2, "001A", "001B"));
        let entries = index("b", &bytes).expect("valid");
        assert_eq!(&bytes[entries[0].id.0..entries[0].id.1], b"001A");
        assert!(entries[1].body.is_none());
        for cut in 5..bytes.len() {
            if let Ok(entries) = index("b", &bytes[..cut]) {
                assert!(
                    entries.len() < 2,
                    "a truncated segment cannot read whole at {cut}"
                );
            }
        }
    }
}
