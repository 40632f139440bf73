//! A segment as the store keeps it: its records' fields in columns. Records of one object come
//! with the same fields in the same order, so a segment names them once and keeps each field's
//! values together, where they resemble each other: zstd's fast levels then find far longer
//! matches than in record after record of JSON (the 544 MB of a spread org of 1M records:
//! 36.5 MiB stored, against 55.9 MiB as JSON lines at the same level, and 44% fewer bytes to
//! compress; issue 28). A reader of values (the search index) takes them from the columns
//! ([`for_each_record`]) without the JSON put back together.
//!
//! Layout (`CRS2`), all integers u32 little-endian:
//! - `CRS2`, the record count, the field count F;
//! - F times: a field's key as it is written in JSON (quotes and escapes included), then the
//!   byte length of its column;
//! - per record: its Id's length and bytes, and its shape: [`IN_COLUMNS`], [`WHOLE`] or
//!   [`TOMBSTONE`];
//! - the F columns: each value of the field, of each record in columns, as written in JSON,
//!   followed by a 0 byte (which JSON text never holds);
//! - the records kept whole, each as its length and body.
//!
//! A record is in columns only when its body is exactly `{` key `:` value `,` … `}` with the
//! segment's keys: putting it back together gives the same bytes. Any other body (other
//! fields, white space, not JSON at all) is kept whole. Reading gives back the segment as
//! [`super::segment`] frames it (`CRS1`), so what reads records does not know the difference.

mod picker;

pub use picker::Picker;

use super::json_fields::{keys_of, split_as};
use super::segment::{self, Entry};
use crate::store::StoreError;

const MAGIC: &[u8; 4] = b"CRS2";
const IN_COLUMNS: u8 = 0;
const WHOLE: u8 = 1;
const TOMBSTONE: u8 = 2;

/// What putting a segment in columns takes, kept by the thread that seals segments: a segment
/// after another, its buffers' pages are already there.
#[derive(Default)]
struct Scratch {
    values: Vec<(usize, usize)>,
    columns: Vec<Vec<u8>>,
    whole: Vec<u8>,
    shapes: Vec<u8>,
    out: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Calls `seal` with the segment `framed` (as [`segment::SegmentBuilder`] makes it) in columns,
/// or as it is when none of its records fits in them.
pub fn with_stored<R>(framed: &[u8], seal: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with_borrow_mut(|scratch| match in_columns(framed, scratch) {
        Some(()) => seal(&scratch.out),
        None => seal(framed),
    })
}

fn in_columns(framed: &[u8], scratch: &mut Scratch) -> Option<()> {
    let entries = segment::frames(framed).ok()?;
    let Scratch {
        values,
        columns,
        whole,
        shapes,
        out,
    } = scratch;
    let mut keys = Vec::new();
    entries.iter().find_map(|entry| {
        let (start, end) = entry.body?;
        keys_of(&framed[start..end], &mut keys)
    })?;
    if keys.is_empty() {
        return None;
    }
    columns.resize_with(keys.len(), Vec::new);
    columns.iter_mut().for_each(Vec::clear);
    shapes.clear();
    whole.clear();
    for entry in &entries {
        let Some((start, end)) = entry.body else {
            shapes.push(TOMBSTONE);
            continue;
        };
        let body = &framed[start..end];
        if split_as(body, &keys, values).is_some() {
            for (&(start, end), column) in values.iter().zip(columns.iter_mut()) {
                column.extend_from_slice(&body[start..end]);
                column.push(0);
            }
            shapes.push(IN_COLUMNS);
        } else {
            push_u32(whole, body.len());
            whole.extend_from_slice(body);
            shapes.push(WHOLE);
        }
    }
    if !shapes.contains(&IN_COLUMNS) {
        return None;
    }
    out.clear();
    out.extend_from_slice(MAGIC);
    push_u32(out, entries.len());
    push_u32(out, keys.len());
    for (key, column) in keys.iter().zip(columns.iter()) {
        push_u32(out, key.len());
        out.extend_from_slice(key);
        push_u32(out, column.len());
    }
    for (entry, shape) in entries.iter().zip(shapes.iter()) {
        let id = &framed[entry.id.0..entry.id.1];
        push_u32(out, id.len());
        out.extend_from_slice(id);
        out.push(*shape);
    }
    for column in columns.iter() {
        out.extend_from_slice(column);
    }
    out.extend_from_slice(whole);
    Some(())
}

/// A stored segment (`bytes`, blob `blob`, for errors) as [`segment`] frames it, and its
/// entries.
pub fn open(blob: &str, bytes: Vec<u8>) -> Result<(Vec<u8>, Vec<Entry>), StoreError> {
    let framed = match bytes.get(..4) == Some(MAGIC) {
        true => {
            let framed = framed(&bytes);
            crate::store::buffers::give_back(bytes);
            framed.map_err(|reason| StoreError::CorruptBlob {
                id: blob.to_string(),
                reason: reason.to_string(),
            })?
        }
        false => bytes,
    };
    let entries = segment::index(blob, &framed)?;
    Ok((framed, entries))
}

/// One record of a segment, as [`for_each_record`] gives it.
pub enum Record<'a> {
    /// A record in columns: the segment's keys and this record's values, each as written in
    /// JSON; `plain[n]` says that the column of `values[n]` is ASCII without a backslash.
    Fields {
        keys: &'a [&'a [u8]],
        values: &'a [&'a [u8]],
        plain: &'a [bool],
    },
    /// A record kept whole (or in a segment that is not in columns): its body.
    Body(&'a [u8]),
    Deleted,
}

/// A record's body from its keys and values: `{` key `:` value `,` … `}`.
pub fn body_of(keys: &[&[u8]], values: &[&[u8]], into: &mut Vec<u8>) {
    into.push(b'{');
    for (n, (key, value)) in keys.iter().zip(values).enumerate() {
        if n > 0 {
            into.push(b',');
        }
        into.extend_from_slice(key);
        into.push(b':');
        into.extend_from_slice(value);
    }
    into.push(b'}');
}

/// Calls `each` with every record of a stored segment (`bytes`, blob `blob`), in Id order, as
/// it lies: a reader of values need not have the JSON put back together.
pub fn for_each_record(
    blob: &str,
    bytes: &[u8],
    each: &mut dyn FnMut(&str, Record<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let corrupt = |reason: &str| StoreError::CorruptBlob {
        id: blob.to_string(),
        reason: reason.to_string(),
    };
    if bytes.get(..4) != Some(MAGIC) {
        for entry in segment::index(blob, bytes)? {
            // Checked to be UTF-8 by `index`.
            let id = std::str::from_utf8(&bytes[entry.id.0..entry.id.1]).unwrap_or_default();
            match entry.body {
                Some((start, end)) => each(id, Record::Body(&bytes[start..end]))?,
                None => each(id, Record::Deleted)?,
            }
        }
        return Ok(());
    }
    let parsed = parse(bytes).map_err(corrupt)?;
    let plain: Vec<bool> = parsed
        .columns
        .iter()
        .map(|column| column.is_ascii() && memchr::memchr(b'\\', column).is_none())
        .collect();
    walk(parsed, |id, record| {
        let id = std::str::from_utf8(id).map_err(|_| corrupt("a record id is not UTF-8"))?;
        match record {
            Shape::Fields(keys, values) => each(
                id,
                Record::Fields {
                    keys,
                    values,
                    plain: &plain,
                },
            ),
            Shape::Body(body) => each(id, Record::Body(body)),
            Shape::Deleted => each(id, Record::Deleted),
        }
    })
    .map_err(|e| match e {
        Walked::Corrupt(reason) => corrupt(reason),
        Walked::Stopped(e) => e,
    })
}

/// A `CRS2` segment's parts.
struct Parsed<'a> {
    keys: Vec<&'a [u8]>,
    /// Each record's Id and shape.
    records: Vec<(&'a [u8], u8)>,
    columns: Vec<&'a [u8]>,
    /// At the records kept whole.
    whole: Cursor<'a>,
}

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let mut records = Vec::with_capacity(record_count(bytes));
    let Parts {
        keys,
        columns,
        whole,
    } = parse_with(bytes, |id, shape| records.push((id, shape)))?;
    Ok(Parsed {
        keys,
        records,
        columns,
        whole,
    })
}

/// A `CRS2` segment's parts other than its records.
struct Parts<'a> {
    keys: Vec<&'a [u8]>,
    columns: Vec<&'a [u8]>,
    whole: Cursor<'a>,
}

/// How many records a `CRS2` segment says it holds, no more than its bytes could (an Id's
/// length and a shape take 5 bytes): room to make for them.
fn record_count(bytes: &[u8]) -> usize {
    let said = Cursor { bytes, at: 4 }.u32().unwrap_or(0);
    said.min(bytes.len() / 5)
}

/// Parses a `CRS2` segment, handing each record's Id and shape to `each` in order.
fn parse_with<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(&'a [u8], u8),
) -> Result<Parts<'a>, &'static str> {
    let mut at = Cursor { bytes, at: 4 };
    let records = at.u32().ok_or("truncated segment header")?;
    let field_count = at.u32().ok_or("truncated segment header")?;
    let mut keys = Vec::new();
    let mut column_lengths = Vec::new();
    for _ in 0..field_count {
        let length = at.u32().ok_or("truncated field key")?;
        keys.push(at.take(length).ok_or("truncated field key")?);
        column_lengths.push(at.u32().ok_or("truncated field key")?);
    }
    for _ in 0..records {
        let length = at.u32().ok_or("truncated record id")?;
        let id = at.take(length).ok_or("truncated record id")?;
        let shape = at.take(1).ok_or("truncated record id")?[0];
        if shape > TOMBSTONE {
            return Err("a record of no known shape");
        }
        each(id, shape);
    }
    let mut columns = Vec::with_capacity(keys.len());
    for length in column_lengths {
        columns.push(at.take(length).ok_or("truncated column")?);
    }
    Ok(Parts {
        keys,
        columns,
        whole: at,
    })
}

/// A record as [`walk`] finds it.
enum Shape<'a, 'k> {
    Fields(&'k [&'a [u8]], &'k [&'a [u8]]),
    Body(&'a [u8]),
    Deleted,
}

/// Why a [`walk`] ended early: the segment, or what it called.
enum Walked<E> {
    Corrupt(&'static str),
    Stopped(E),
}

/// Calls `each` with every record of a parsed segment, its values cut from the columns.
fn walk<'a, E, F>(parsed: Parsed<'a>, mut each: F) -> Result<(), Walked<E>>
where
    F: for<'k> FnMut(&'a [u8], Shape<'a, 'k>) -> Result<(), E>,
{
    let Parsed {
        keys,
        records,
        mut columns,
        mut whole,
    } = parsed;
    let mut values: Vec<&[u8]> = Vec::with_capacity(keys.len());
    for (id, shape) in records {
        let record = match shape {
            TOMBSTONE => Shape::Deleted,
            WHOLE => {
                let length = whole
                    .u32()
                    .ok_or(Walked::Corrupt("truncated whole record"))?;
                Shape::Body(
                    whole
                        .take(length)
                        .ok_or(Walked::Corrupt("truncated whole record"))?,
                )
            }
            _ => {
                values.clear();
                for column in columns.iter_mut() {
                    let end =
                        memchr::memchr(0, column).ok_or(Walked::Corrupt("a column ends early"))?;
                    values.push(&column[..end]);
                    *column = &column[end + 1..];
                }
                Shape::Fields(&keys, &values)
            }
        };
        each(id, record).map_err(Walked::Stopped)?;
    }
    if whole.at != whole.bytes.len() || columns.iter().any(|c| !c.is_empty()) {
        return Err(Walked::Corrupt("bytes left over after the last record"));
    }
    Ok(())
}

/// Puts a `CRS2` segment's records back together, framed as `CRS1`.
fn framed(bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
    let parsed = parse(bytes)?;
    // Each record in columns is `{`, its keys and values, a `:` each and the `,`s between.
    let count = |wanted: u8| {
        parsed
            .records
            .iter()
            .filter(|(_, shape)| *shape == wanted)
            .count()
    };
    let (in_columns, whole) = (count(IN_COLUMNS), count(WHOLE));
    let values: usize = parsed.columns.iter().map(|c| c.len()).sum::<usize>();
    let keys_bytes: usize = parsed.keys.iter().map(|k| k.len() + 2).sum::<usize>() + 1;
    let framed_bytes = 4
        + parsed
            .records
            .iter()
            .map(|(id, _)| 8 + id.len())
            .sum::<usize>()
        + in_columns * keys_bytes
        + values.saturating_sub(in_columns * parsed.keys.len())
        + (bytes.len() - parsed.whole.at).saturating_sub(4 * whole);
    let mut out = crate::store::buffers::take(framed_bytes);
    out.extend_from_slice(b"CRS1");
    walk(parsed, |id, record| {
        push_u32(&mut out, id.len());
        out.extend_from_slice(id);
        match record {
            Shape::Deleted => out.extend_from_slice(&u32::MAX.to_le_bytes()),
            Shape::Body(body) => {
                push_u32(&mut out, body.len());
                out.extend_from_slice(body);
            }
            Shape::Fields(keys, values) => {
                let length_at = out.len();
                out.extend_from_slice(&[0; 4]);
                body_of(keys, values, &mut out);
                let length = out.len() - length_at - 4;
                out[length_at..length_at + 4].copy_from_slice(&(length as u32).to_le_bytes());
            }
        }
        Ok::<(), ()>(())
    })
    .map_err(|e| match e {
        Walked::Corrupt(reason) => reason,
        Walked::Stopped(()) => "stopped",
    })?;
    Ok(out)
}

fn push_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_le_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(length)?)?;
        self.at += length;
        Some(taken)
    }

    fn u32(&mut self) -> Option<usize> {
        let bytes = self.take(4)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    }
}

#[cfg(test)]
mod tests;
