//! Reading a few records of a stored segment by Id (`IdsLookup`: a diff's older versions,
//! search's candidates) without putting the whole segment back together.

use std::sync::Mutex;

use super::{MAGIC, TOMBSTONE, WHOLE, body_of, parse_with, record_count};
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
        let mut records = spare_table();
        records.reserve(record_count(&bytes));
        let (mut in_columns, mut ids_are_text) = (0, true);
        let parsed = parse_with(&bytes, |id, shape| {
            ids_are_text &= std::str::from_utf8(id).is_ok();
            let place = match shape {
                TOMBSTONE => Place::Deleted,
                // Found below, where the whole records lie.
                WHOLE => Place::Whole(0, 0),
                _ => {
                    in_columns += 1;
                    Place::Values(in_columns - 1)
                }
            };
            records.push((range(id), place));
        });
        let parsed = match parsed {
            Ok(parsed) if ids_are_text => parsed,
            failed => {
                give_back_table(records);
                return Err(corrupt(failed.err().unwrap_or("a record id is not UTF-8")));
            }
        };
        let keys = parsed.keys.iter().map(|key| range(key)).collect();
        let columns = parsed.columns.iter().map(|c| (range(c), (0, 0))).collect();
        let mut whole = parsed.whole;
        let mut damage = None;
        for (_, place) in records.iter_mut() {
            if let Place::Whole(start, end) = place {
                match whole.u32().and_then(|length| whole.take(length)) {
                    Some(body) => (*start, *end) = range(body),
                    None => {
                        damage = Some("truncated whole record");
                        break;
                    }
                }
            }
        }
        if damage.is_none() && whole.at != bytes.len() {
            damage = Some("bytes left over after the last record");
        }
        if let Some(reason) = damage {
            give_back_table(records);
            return Err(corrupt(reason));
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
        if let Layout::Columns { records, .. } = &mut self.layout {
            give_back_table(std::mem::take(records));
        }
    }
}

/// A segment's table of records (`Layout::Columns`): tens of KiB, made for every segment a
/// diff opens; freed memory goes back to the system at once (`main.rs`), so a fresh table
/// costs a page fault per 4 KiB. Tables of dropped pickers are kept for the next.
type Table = Vec<((usize, usize), Place)>;

static SPARE_TABLES: Mutex<Vec<Table>> = Mutex::new(Vec::new());

/// Tables kept: one per picker that may be open at once beyond those kept open.
const TABLES_KEPT: usize = 4;

fn spare_table() -> Table {
    SPARE_TABLES
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default()
}

fn give_back_table(mut table: Table) {
    table.clear();
    if let Ok(mut spare) = SPARE_TABLES.lock()
        && spare.len() < TABLES_KEPT
    {
        spare.push(table);
    }
}

/// Where the value `skip` values after the one at `at` starts, each value ended by a 0:
/// whole 64-byte chunks are counted (which the compiler does many bytes at a time) while they
/// hold fewer 0s than are left to pass.
fn skip_values(column: &[u8], mut at: usize, mut skip: usize) -> Option<usize> {
    while skip > 0 {
        while let Some(chunk) = column.get(at..at + 64) {
            // Summed as bytes (64 at most), which vectorises: counted as usize it did not.
            let ends = usize::from(chunk.iter().map(|&b| u8::from(b == 0)).sum::<u8>());
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
