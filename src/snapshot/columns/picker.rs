//! Reading a few records of a stored segment by Id (`IdsLookup`: a diff's older versions,
//! search's candidates) without putting the whole segment back together.

use super::{MAGIC, TOMBSTONE, WHOLE, body_of, parse};
use crate::snapshot::segment::{self, Entry};
use crate::store::StoreError;

/// A stored segment opened to read a few of its records by Id: one in columns is not put back
/// together whole, only the records asked for, whose values are found by counting the 0s
/// that end the values before them (a pass over each column when Ids come in order).
pub struct Picker {
    bytes: Vec<u8>,
    layout: Layout,
}

enum Layout {
    Framed(Vec<Entry>),
    Columns {
        keys: Vec<(usize, usize)>,
        /// Each record's Id and where its body is: the index of its values in the columns, a
        /// whole body's range, or nothing (a tombstone).
        records: Vec<((usize, usize), Place)>,
        /// Each column's range, and where the last pick left it: the next value's index and
        /// offset.
        columns: Vec<((usize, usize), (usize, usize))>,
    },
}

#[derive(Clone, Copy)]
enum Place {
    Values(usize),
    Whole(usize, usize),
    Deleted,
}

impl Picker {
    pub fn open(blob: &str, bytes: Vec<u8>) -> Result<Picker, StoreError> {
        if bytes.get(..4) != Some(MAGIC) {
            let entries = segment::index(blob, &bytes)?;
            return Ok(Picker {
                bytes,
                layout: Layout::Framed(entries),
            });
        }
        let corrupt = |reason: &str| StoreError::CorruptBlob {
            id: blob.to_string(),
            reason: reason.to_string(),
        };
        let base = bytes.as_ptr() as usize;
        let range = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            (start, start + part.len())
        };
        let parsed = parse(&bytes).map_err(corrupt)?;
        let keys = parsed.keys.iter().map(|key| range(key)).collect();
        let columns = parsed.columns.iter().map(|c| (range(c), (0, 0))).collect();
        let mut whole = parsed.whole;
        let mut in_columns = 0;
        let mut records = Vec::with_capacity(parsed.records.len());
        for (id, shape) in &parsed.records {
            if std::str::from_utf8(id).is_err() {
                return Err(corrupt("a record id is not UTF-8"));
            }
            let place = match *shape {
                TOMBSTONE => Place::Deleted,
                WHOLE => {
                    let length = whole
                        .u32()
                        .ok_or_else(|| corrupt("truncated whole record"))?;
                    let body = whole
                        .take(length)
                        .ok_or_else(|| corrupt("truncated whole record"))?;
                    let (start, end) = range(body);
                    Place::Whole(start, end)
                }
                _ => {
                    in_columns += 1;
                    Place::Values(in_columns - 1)
                }
            };
            records.push((range(id), place));
        }
        if whole.at != bytes.len() {
            return Err(corrupt("bytes left over after the last record"));
        }
        Ok(Picker {
            layout: Layout::Columns {
                keys,
                records,
                columns,
            },
            bytes,
        })
    }

    /// The record `id`: None when the segment does not hold it, Some(None) when it holds its
    /// deletion. Errs when its values cannot be found (a damaged segment).
    pub fn pick(&mut self, id: &[u8]) -> Result<Option<Option<Vec<u8>>>, &'static str> {
        let bytes = &self.bytes;
        match &mut self.layout {
            Layout::Framed(entries) => Ok(entries
                .binary_search_by(|e| bytes[e.id.0..e.id.1].cmp(id))
                .ok()
                .map(|at| {
                    entries[at]
                        .body
                        .map(|(start, end)| bytes[start..end].to_vec())
                })),
            Layout::Columns {
                keys,
                records,
                columns,
            } => {
                let Ok(at) =
                    records.binary_search_by(|((start, end), _)| bytes[*start..*end].cmp(id))
                else {
                    return Ok(None);
                };
                let wanted = match records[at].1 {
                    Place::Deleted => return Ok(Some(None)),
                    Place::Whole(start, end) => return Ok(Some(Some(bytes[start..end].to_vec()))),
                    Place::Values(wanted) => wanted,
                };
                let mut values = Vec::with_capacity(columns.len());
                for ((start, end), (index, offset)) in columns.iter_mut() {
                    let column = &bytes[*start..*end];
                    if wanted < *index {
                        (*index, *offset) = (0, 0);
                    }
                    let from = skip_values(column, *offset, wanted - *index)
                        .ok_or("a column ends early")?;
                    let length = memchr::memchr(0, &column[from..]).ok_or("a column ends early")?;
                    values.push(&column[from..from + length]);
                    (*index, *offset) = (wanted + 1, from + length + 1);
                }
                let keys: Vec<&[u8]> = keys
                    .iter()
                    .map(|&(start, end)| &bytes[start..end])
                    .collect();
                let mut body = Vec::new();
                body_of(&keys, &values, &mut body);
                Ok(Some(Some(body)))
            }
        }
    }
}

impl Drop for Picker {
    fn drop(&mut self) {
        crate::store::buffers::give_back(std::mem::take(&mut self.bytes));
    }
}

/// Where the value `skip` values after the one at `at` starts, each value ended by a 0:
/// whole 64-byte chunks are counted (which the compiler does many bytes at a time) while they
/// hold fewer 0s than are left to pass.
fn skip_values(column: &[u8], mut at: usize, mut skip: usize) -> Option<usize> {
    while skip > 0 {
        while let Some(chunk) = column.get(at..at + 64) {
            let ends = chunk.iter().filter(|&&b| b == 0).count();
            if ends >= skip {
                break;
            }
            skip -= ends;
            at += 64;
        }
        at += memchr::memchr(0, column.get(at..)?)? + 1;
        skip -= 1;
    }
    Some(at)
}
