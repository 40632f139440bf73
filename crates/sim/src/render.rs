//! Records out, as the REST API writes them (JSON with `attributes`, parent paths nested,
//! address compounds as objects) and as Bulk API 2.0 writes them (quoted CSV). Written by hand
//! into a buffer: field order must follow the query, and a million rows must be cheap.

use std::fmt::Write as _;

use super::catalog::FieldType;
use super::org::{Org, Record, Value};
use super::soql::{FieldPath, resolve};
use sftime as time;

pub fn json_string(out: &mut String, text: &str) {
    out.push('"');
    // Nearly all text has nothing to escape: copied whole. Whole chunks are tested without
    // stopping early, which the compiler turns into vector instructions.
    let plain = !text.as_bytes().chunks(32).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    });
    if plain {
        out.push_str(text);
        out.push('"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn json_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Num(x) if x.is_finite() => {
            let _ = write!(out, "{x:?}");
        }
        Value::Num(_) => out.push_str("null"),
        Value::Text(s) => json_string(out, s),
        Value::DateTime(ms) => {
            out.push('"');
            time::push_datetime(out, *ms, "+0000");
            out.push('"');
        }
        Value::Date(days) => json_string(out, &time::format_date(*days)),
        // A body is never inlined: own_field gives its URL instead.
        Value::Blob(_) => out.push_str("null"),
    }
}

/// Where a record's file body is read from, as query results and record reads give it.
pub fn blob_url(org: &Org, object: usize, id: &str, field: &str, version: &str) -> String {
    let def = &org.catalog.objects[object];
    format!(
        "/services/data/v{version}/{}/{}/{id}/{field}",
        def.resource, def.name
    )
}

pub fn attributes(out: &mut String, org: &Org, object: usize, id: &str, version: &str) {
    let def = &org.catalog.objects[object];
    let name = &def.name;
    out.push_str("\"attributes\":{\"type\":");
    json_string(out, name);
    let _ = write!(
        out,
        ",\"url\":\"/services/data/v{version}/{}/{name}/{id}\"}}",
        def.resource
    );
}

/// One record as the REST API returns it for these fields.
pub fn json_record(
    out: &mut String,
    org: &Org,
    object: usize,
    record: &Record,
    fields: &[FieldPath],
    version: &str,
) {
    out.push('{');
    attributes(out, org, object, record.id(), version);
    if fields.iter().all(|path| path.hops.is_empty()) {
        // No parent fields: nothing to group (the common case, and a million times a backup).
        for path in fields {
            out.push(',');
            own_field(out, org, record, path, version);
        }
        out.push('}');
        return;
    }
    // Paths sharing a first hop share one nested parent object, so group them.
    let mut done = vec![false; fields.len()];
    for i in 0..fields.len() {
        if done[i] {
            continue;
        }
        let path = &fields[i];
        out.push(',');
        if path.hops.is_empty() {
            done[i] = true;
            own_field(out, org, record, path, version);
            continue;
        }
        let (hop_object, hop_field) = path.hops[0];
        let lookup = &org.catalog.objects[hop_object].fields[hop_field];
        json_string(out, lookup.relationship_name.as_deref().unwrap_or_default());
        out.push(':');
        let Some((parent_object, parent_record)) = parent_of(org, &record.values()[hop_field])
        else {
            out.push_str("null");
            for (j, other) in fields.iter().enumerate().skip(i) {
                if other.hops.first() == Some(&(hop_object, hop_field)) {
                    done[j] = true;
                }
            }
            continue;
        };
        let sub: Vec<FieldPath> = fields
            .iter()
            .enumerate()
            .skip(i)
            .filter(|(_, other)| other.hops.first() == Some(&(hop_object, hop_field)))
            .map(|(j, other)| {
                done[j] = true;
                FieldPath {
                    display: other
                        .display
                        .split_once('.')
                        .map_or(String::new(), |(_, r)| r.to_string()),
                    hops: other.hops[1..].to_vec(),
                    field: other.field,
                }
            })
            .collect();
        json_record(out, org, parent_object, parent_record, &sub, version);
    }
    out.push('}');
}

/// The record a lookup's value names, with its object.
fn parent_of<'o>(org: &'o Org, lookup: &Value) -> Option<(usize, &'o Record)> {
    let Value::Text(id) = lookup else {
        return None;
    };
    let object = org.catalog.by_key_prefix(id)?;
    let row = org.tables[object].find(id)?;
    Some((object, &org.tables[object].records[row]))
}

/// A TYPEOF's parent record: its attributes and the fields the branch of its type chose, or
/// null when the lookup is empty.
pub fn polymorphic_parent(
    out: &mut String,
    org: &Org,
    record: &Record,
    type_of: &crate::soql::TypeOf,
    version: &str,
) {
    let Some((object, parent)) = parent_of(org, &record.values()[type_of.field]) else {
        out.push_str("null");
        return;
    };
    let fields = type_of
        .branches
        .iter()
        .find(|(t, _)| *t == object)
        .map_or(&[][..], |(_, fields)| fields.as_slice());
    json_record(out, org, object, parent, fields, version);
}

/// `"name":value` for a field of the record itself.
fn own_field(out: &mut String, org: &Org, record: &Record, path: &FieldPath, version: &str) {
    let field = &org.catalog.objects[path.field.0].fields[path.field.1];
    json_string(out, &field.name);
    out.push(':');
    if field.field_type == FieldType::Address {
        address(out, org, record, path.field.0, &field.name);
    } else if field.field_type == FieldType::Base64 {
        match record.values().get(path.field.1) {
            Some(Value::Blob(_)) => json_string(
                out,
                &blob_url(org, path.field.0, record.id(), &field.name, version),
            ),
            _ => out.push_str("null"),
        }
    } else {
        let value = resolve(org, record, path);
        json_value(out, value.as_deref().unwrap_or(&Value::Null));
    }
}

fn address(out: &mut String, org: &Org, record: &Record, object: usize, compound: &str) {
    let def = &org.catalog.objects[object];
    let part = |suffix: &str| {
        def.fields
            .iter()
            .position(|f| {
                f.compound_field_name.as_deref() == Some(compound) && f.name.ends_with(suffix)
            })
            .map_or(&Value::Null, |i| &record.values()[i])
    };
    let parts = [
        ("city", part("City")),
        ("country", part("Country")),
        ("geocodeAccuracy", &Value::Null),
        ("latitude", part("Latitude")),
        ("longitude", part("Longitude")),
        ("postalCode", part("PostalCode")),
        ("state", part("State")),
        ("street", part("Street")),
    ];
    if parts.iter().all(|(_, v)| matches!(v, Value::Null)) {
        out.push_str("null");
        return;
    }
    out.push('{');
    for (i, (key, value)) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{key}\":");
        json_value(out, value);
    }
    out.push('}');
}

/// Bulk API 2.0 CSV options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvFormat {
    pub delimiter: u8,
    pub crlf: bool,
}

impl CsvFormat {
    pub fn delimiter_from(name: &str) -> Option<u8> {
        Some(match name {
            "COMMA" => b',',
            "TAB" => b'\t',
            "PIPE" => b'|',
            "SEMICOLON" => b';',
            "CARET" => b'^',
            "BACKQUOTE" => b'`',
            _ => return None,
        })
    }

    fn end_line(&self, out: &mut Vec<u8>) {
        if self.crlf {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b'\n');
        }
    }
}

pub fn csv_header(out: &mut Vec<u8>, fields: &[FieldPath], format: CsvFormat) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(format.delimiter);
        }
        csv_quoted(out, field.display.as_bytes());
    }
    format.end_line(out);
}

fn csv_quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    if text.contains(&b'"') {
        for &b in text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
    } else {
        out.extend_from_slice(text);
    }
    out.push(b'"');
}

/// One row: every value quoted, null as an empty cell.
pub fn csv_row(
    out: &mut Vec<u8>,
    org: &Org,
    record: &Record,
    fields: &[FieldPath],
    format: CsvFormat,
    scratch: &mut String,
) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(format.delimiter);
        }
        let value = resolve(org, record, field);
        match value.as_deref().unwrap_or(&Value::Null) {
            Value::Null => {}
            Value::Text(s) => csv_quoted(out, s.as_bytes()),
            Value::DateTime(ms) => {
                out.push(b'"');
                time::write_datetime_z(out, *ms);
                out.push(b'"');
            }
            other => {
                scratch.clear();
                match other {
                    Value::Bool(b) => scratch.push_str(if *b { "true" } else { "false" }),
                    Value::Int(n) => {
                        let _ = write!(scratch, "{n}");
                    }
                    Value::Num(x) => {
                        let _ = write!(scratch, "{x}");
                    }
                    Value::Date(days) => scratch.push_str(&time::format_date(*days)),
                    // Bulk queries refuse file bodies (bulk::create).
                    Value::Null | Value::Text(_) | Value::DateTime(_) | Value::Blob(_) => {}
                }
                csv_quoted(out, scratch.as_bytes());
            }
        }
    }
    format.end_line(out);
}
