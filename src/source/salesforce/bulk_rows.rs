//! Bulk API 2.0 results into rows: each record's canonical bytes written straight from its CSV
//! cells, exactly as [`super::fetch::canonical`] writes them from REST's JSON.
//!
//! A full backup reads every record of the org here, so the common cells take a short way: a
//! record with nothing to escape has its text cells copied as they are, and datetimes already
//! in the store's form, integers and whole-number doubles are checked and copied rather than
//! parsed and written again. Anything else takes the general way, [`write_cell`].

use serde_json::Value;

use super::bulk_csv::{CsvError, CsvReader};
use super::fetch::{
    created_after, is_canonical_datetime_bytes, revisited, stamp_ms, write_datetime, write_string,
};
use crate::snapshot::sorter::Row;
use crate::source::{FetchError, Field, SourceError};
use crate::store::StoreError;

/// What describe says a field holds, as far as writing its value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Boolean,
    Int,
    /// double, currency and percent: JSON numbers written as serde_json writes an f64.
    Double,
    Datetime,
    Text,
}

impl CellKind {
    pub fn of(describe_type: &str) -> CellKind {
        match describe_type {
            "boolean" => CellKind::Boolean,
            "int" => CellKind::Int,
            "double" | "currency" | "percent" => CellKind::Double,
            "datetime" => CellKind::Datetime,
            _ => CellKind::Text,
        }
    }
}

/// Reads a Bulk results page (CSV with a header row) and hands each record to `push` as a row.
pub fn read_rows(
    input: impl std::io::Read,
    fields: &[Field],
    since_ms: Option<i64>,
    push: &mut dyn FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), FetchError> {
    let broken = |e: CsvError| -> FetchError {
        SourceError::Network(format!("unreadable Bulk CSV: {e}")).into()
    };
    // `{"Name":` or `,"Name":`, ready to copy.
    let keys: Vec<Vec<u8>> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut key = vec![if i == 0 { b'{' } else { b',' }];
            key.extend_from_slice(
                serde_json::to_string(&f.name)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            key.push(b':');
            key
        })
        .collect();
    let keys_len: usize = keys.iter().map(Vec::len).sum();
    let kinds: Vec<CellKind> = fields.iter().map(|f| CellKind::of(&f.kind)).collect();
    let mut reader = CsvReader::new(input, b',');
    let headers: Vec<String> = match reader.next_record().map_err(broken)? {
        Some(header) => (0..header.len())
            .filter_map(|i| header.get(i).map(str::to_string))
            .collect(),
        None => return Ok(()),
    };
    let column = |name: &str| headers.iter().position(|h| h == name);
    let columns: Vec<Option<usize>> = fields.iter().map(|f| column(&f.name)).collect();
    let (id_column, deleted_column, created_column, stamp_column) = (
        column("Id"),
        column("IsDeleted"),
        column("CreatedDate"),
        column("SystemModstamp"),
    );
    while let Some(row) = reader.next_record().map_err(broken)? {
        let mut out = Vec::with_capacity(row.bytes() + keys_len + 8);
        // One check for the whole record: then no cell needs escaping (quotes inside cells
        // are doubled, which `plain` sees).
        let plain = !has_backslash_or_control(row.content());
        for (i, key) in keys.iter().enumerate() {
            out.extend_from_slice(key);
            let Some(column) = columns[i] else {
                out.extend_from_slice(b"null");
                continue;
            };
            let copied = plain
                && row
                    .plain(column)
                    .is_some_and(|cell| copy_cell(&mut out, kinds[i], cell));
            if !copied {
                write_cell(&mut out, kinds[i], row.get(column).unwrap_or(""));
            }
        }
        if keys.is_empty() {
            out.push(b'{');
        }
        out.push(b'}');
        let stamp = stamp_ms(stamp_column.and_then(|c| row.get(c)));
        push(Row {
            id: id_column
                .and_then(|c| row.get(c))
                .unwrap_or_default()
                .to_string(),
            deleted: deleted_column.and_then(|c| row.get(c)) == Some("true"),
            created: created_after(created_column.and_then(|c| row.get(c)), since_ms),
            revisit: revisited(stamp, since_ms),
            stamp,
            body: out,
        })?;
    }
    Ok(())
}

/// Writes a cell whose bytes need no escaping when it is already what [`write_cell`] would
/// write (or a quoted copy of it); false, writing nothing, otherwise.
fn copy_cell(out: &mut Vec<u8>, kind: CellKind, cell: &[u8]) -> bool {
    let quoted = |out: &mut Vec<u8>| {
        out.push(b'"');
        out.extend_from_slice(cell);
        out.push(b'"');
    };
    match kind {
        _ if cell.is_empty() => out.extend_from_slice(b"null"),
        CellKind::Text => quoted(out),
        CellKind::Datetime if is_canonical_datetime_bytes(cell) => quoted(out),
        // i64 keeps every integer of up to 18 digits as it is written.
        CellKind::Int if is_integer(cell, 18) && cell != b"-0" => out.extend_from_slice(cell),
        // An f64 holds every integer of up to 15 digits exactly, and serde_json writes it back
        // in the same digits with `.0`.
        CellKind::Double if is_integer(cell, 15) => {
            out.extend_from_slice(cell);
            out.extend_from_slice(b".0");
        }
        _ => return false,
    }
    true
}

/// Whether JSON would escape any of these bytes besides quotes. Whole chunks are tested without
/// stopping early, which the compiler turns into vector instructions.
fn has_backslash_or_control(bytes: &[u8]) -> bool {
    bytes.chunks(32).any(|chunk| {
        chunk
            .iter()
            .fold(false, |found, &b| found | (b < 0x20) | (b == b'\\'))
    })
}

/// An optional `-` and 1 to `max_digits` digits, without leading zeros.
fn is_integer(cell: &[u8], max_digits: usize) -> bool {
    let digits = cell.strip_prefix(b"-").unwrap_or(cell);
    (1..=max_digits).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
}

/// Writes a Bulk CSV cell as the canonical JSON that REST's value would give: empty is null
/// (CSV cannot tell null from empty, and Salesforce stores no empty text), numbers and booleans
/// typed by describe, datetimes in UTC with `Z`.
pub fn write_cell(out: &mut Vec<u8>, kind: CellKind, cell: &str) {
    let json = |out: &mut Vec<u8>, value: &Value| {
        let _ = serde_json::to_writer(&mut *out, value);
    };
    if cell.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    match kind {
        CellKind::Boolean => out.extend_from_slice(if cell == "true" { b"true" } else { b"false" }),
        CellKind::Int => match cell.parse::<i64>() {
            Ok(n) => json(out, &Value::from(n)),
            Err(_) => write_string(out, cell),
        },
        CellKind::Double => match cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => json(out, &Value::Number(n)),
            None => write_string(out, cell),
        },
        CellKind::Datetime => write_datetime(out, cell),
        CellKind::Text => write_string(out, cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn general(kind: CellKind, cell: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_cell(&mut out, kind, cell);
        out
    }

    fn short_way(kind: CellKind, cell: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        copy_cell(&mut out, kind, cell.as_bytes()).then_some(out)
    }

    const KINDS: [CellKind; 5] = [
        CellKind::Boolean,
        CellKind::Int,
        CellKind::Double,
        CellKind::Datetime,
        CellKind::Text,
    ];

    proptest! {
        /// Whenever the short way writes a cell, it writes what the general way writes.
        #[test]
        fn copied_cells_are_written_as_the_general_way_writes_them(
            cell in prop_oneof![
                "-?[0-9]{1,20}",
                "-?[0-9]{1,16}\\.[0-9]{0,3}",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}(Z|\\+0000)",
                "[a-zA-Z ,ü🏔]{0,12}",
                Just(String::new()),
                Just("true".to_string()),
                Just("-0".to_string()),
            ],
        ) {
            for kind in KINDS {
                if let Some(copied) = short_way(kind, &cell) {
                    let written = general(kind, &cell);
                    prop_assert_eq!(
                        String::from_utf8_lossy(&copied),
                        String::from_utf8_lossy(&written),
                        "{:?} {:?}", kind, cell
                    );
                }
            }
        }
    }

    #[test]
    fn whole_number_doubles_at_the_edges_are_copied_exactly() {
        for cell in [
            "0",
            "-0",
            "7",
            "999999999999999",
            "-100000000000000",
            "136950000",
        ] {
            assert_eq!(
                short_way(CellKind::Double, cell),
                Some(general(CellKind::Double, cell)),
                "{cell}"
            );
        }
        for cell in ["1000000000000000", "007", "1.5", "1e5"] {
            assert_eq!(short_way(CellKind::Double, cell), None, "{cell}");
        }
        assert_eq!(short_way(CellKind::Int, "-0"), None);
        assert_eq!(short_way(CellKind::Int, "007"), None);
    }

    #[test]
    fn a_page_reads_to_the_rows_the_general_way_gives() {
        let fields: Vec<Field> = [
            ("Id", "id"),
            ("IsDeleted", "boolean"),
            ("Name", "string"),
            ("Employees", "int"),
            ("Revenue", "currency"),
            ("SystemModstamp", "datetime"),
            ("Missing__c", "string"),
        ]
        .iter()
        .map(|(name, kind)| Field {
            name: name.to_string(),
            kind: kind.to_string(),
        })
        .collect();
        let csv = "\"Id\",\"IsDeleted\",\"Name\",\"Employees\",\"Revenue\",\"SystemModstamp\"\n\
            \"001A\",\"false\",\"Acme\",\"12\",\"1500000\",\"2024-05-01T10:00:00.000Z\"\n\
            \"001B\",\"true\",\"Say \"\"hi\"\"\",\"007\",\"1.5\",\"2024-05-01T12:00:00.000+0000\"\n\
            \"001C\",\"false\",\"back\\slash\",,\"-0\",\n\
            \"001D\",\"false\",\"two\nlines\",\"-3\",\"2E3\",\"2024-05-01T10:00:00Z\"\n";
        let mut rows = Vec::new();
        read_rows(csv.as_bytes(), &fields, None, &mut |row| {
            rows.push(row);
            Ok(())
        })
        .expect("readable");
        let bodies: Vec<String> = rows
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        assert_eq!(
            bodies,
            [
                r#"{"Id":"001A","IsDeleted":false,"Name":"Acme","Employees":12,"Revenue":1500000.0,"SystemModstamp":"2024-05-01T10:00:00.000Z","Missing__c":null}"#,
                r#"{"Id":"001B","IsDeleted":true,"Name":"Say \"hi\"","Employees":7,"Revenue":1.5,"SystemModstamp":"2024-05-01T12:00:00.000Z","Missing__c":null}"#,
                r#"{"Id":"001C","IsDeleted":false,"Name":"back\\slash","Employees":null,"Revenue":-0.0,"SystemModstamp":null,"Missing__c":null}"#,
                r#"{"Id":"001D","IsDeleted":false,"Name":"two\nlines","Employees":-3,"Revenue":2000.0,"SystemModstamp":"2024-05-01T10:00:00.000Z","Missing__c":null}"#,
            ]
        );
        assert_eq!(
            rows.iter()
                .map(|r| (r.id.as_str(), r.deleted))
                .collect::<Vec<_>>(),
            [
                ("001A", false),
                ("001B", true),
                ("001C", false),
                ("001D", false)
            ]
        );
    }
}
