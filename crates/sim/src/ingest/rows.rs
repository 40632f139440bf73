//! An ingest job's rows: the CSV it was sent, read as RFC 4180, and each row written through
//! the same validation as the REST API, succeeding or failing on its own; and the result sets
//! written back as CSV.

use serde_json::{Map, Value as Json};

use super::{IngestJob, Operation, Outcome};
use crate::catalog::FieldType;
use crate::render::CsvFormat;
use crate::write::{self, Journal, WriteError};

pub(super) fn csv_line(out: &mut Vec<u8>, values: &[String], format: CsvFormat) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(format.delimiter);
        }
        out.push(b'"');
        out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(if format.crlf { b"\r\n" } else { b"\n" });
}

/// RFC 4180 CSV: quoted values may hold delimiters, quotes (doubled) and line breaks.
pub(super) fn parse_csv(
    data: &[u8],
    delimiter: u8,
) -> std::result::Result<Vec<Vec<String>>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "The job data is not UTF-8".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = delimiter as char;
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut value = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    value.push('"');
                }
                '"' => quoted = false,
                _ => value.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            c if c == delimiter => row.push(std::mem::take(&mut value)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut value));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => value.push(c),
        }
    }
    if quoted {
        return Err("A quoted value in the job data is never closed".to_string());
    }
    if any {
        row.push(value);
        rows.push(row);
    }
    Ok(rows)
}

/// Writes every row of `data` into the org, each on its own.
pub(super) fn process(org: &mut crate::org::Org, job: &IngestJob, data: &[u8]) -> Outcome {
    let mut rows = match parse_csv(data, job.format.delimiter) {
        Ok(rows) => rows,
        Err(message) => {
            return Outcome {
                error: Some(format!("InvalidBatch : {message}")),
                ..Outcome::default()
            };
        }
    };
    if rows.is_empty() {
        return Outcome {
            error: Some("InvalidBatch : The job data has no header row".to_string()),
            ..Outcome::default()
        };
    }
    let header = rows.remove(0);
    let def = &org.catalog.objects[job.object];
    let columns: Vec<Option<(String, FieldType)>> = header
        .iter()
        .map(|name| {
            def.field(name.trim())
                .map(|(_, field)| (field.name.clone(), field.field_type))
        })
        .collect();
    let position = |wanted: &str| {
        columns
            .iter()
            .position(|c| c.as_ref().is_some_and(|(name, _)| name == wanted))
    };
    let id_column = position("Id");
    let external_column = job.external_id.as_deref().and_then(position);
    // A column the object lacks, or one the operation needs and the header lacks, fails the
    // whole job before any row is written.
    let missing = header
        .iter()
        .zip(&columns)
        .find(|(_, column)| column.is_none())
        .map(|(name, _)| name.clone())
        .or_else(|| {
            let needs_id = matches!(job.operation, Operation::Update | Operation::Delete);
            (needs_id && id_column.is_none()).then(|| "Id".to_string())
        })
        .or_else(|| {
            job.external_id
                .clone()
                .filter(|_| external_column.is_none())
        });
    if let Some(name) = missing {
        return Outcome {
            error: Some(format!("InvalidBatch : Field name not found : {name}")),
            unprocessed: rows,
            header,
            ..Outcome::default()
        };
    }
    let columns: Vec<(String, FieldType)> = columns.into_iter().flatten().collect();
    let mut outcome = Outcome {
        header,
        ..Outcome::default()
    };
    for row in rows {
        if row.len() != columns.len() {
            outcome.failed.push((
                String::new(),
                format!(
                    "TOO_MANY_COLUMNS_OR_TOO_FEW:The row has {} values for {} columns --",
                    row.len(),
                    columns.len()
                ),
                row,
            ));
            continue;
        }
        let given_id = id_column.map(|i| row[i].clone()).unwrap_or_default();
        let fields = row_fields(&columns, &row);
        let mut journal = Journal::new();
        let result = match job.operation {
            Operation::Insert => {
                write::insert(org, job.object, &fields, &mut journal).map(|id| (id, true))
            }
            Operation::Update => {
                let mut changes = fields;
                changes.remove("Id");
                write::update(org, job.object, &given_id, &changes, &mut journal)
                    .map(|()| (given_id.clone(), false))
            }
            Operation::Upsert => {
                let ext = job.external_id.clone().unwrap_or_default();
                let value = external_column.map(|i| row[i].clone()).unwrap_or_default();
                let mut changes = fields;
                changes.remove(&ext);
                write::upsert(org, job.object, &ext, &value, &changes, &mut journal)
            }
            Operation::Delete => write::delete(org, job.object, &given_id, &mut journal)
                .map(|()| (given_id.clone(), false)),
        };
        match result {
            Ok((id, created)) => outcome.succeeded.push((id, created, row)),
            Err(e) => outcome.failed.push((given_id, error_text(&e), row)),
        }
    }
    outcome
}

/// A row as the fields a write takes: empty values left out, `#N/A` as null, numbers and
/// booleans as JSON's own.
fn row_fields(columns: &[(String, FieldType)], row: &[String]) -> Map<String, Json> {
    let mut fields = Map::new();
    for ((name, field_type), value) in columns.iter().zip(row) {
        if value.is_empty() {
            continue;
        }
        let json = if value == "#N/A" {
            Json::Null
        } else {
            match field_type {
                FieldType::Boolean => match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => Json::Bool(true),
                    "false" | "0" | "no" => Json::Bool(false),
                    _ => Json::String(value.clone()),
                },
                FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                    value
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(|| Json::String(value.clone()), Json::Number)
                }
                _ => Json::String(value.clone()),
            }
        };
        fields.insert(name.clone(), json);
    }
    fields
}

/// A row's error as `sf__Error` reads: `CODE:message:fields --`.
fn error_text(e: &WriteError) -> String {
    format!("{}:{}:{} --", e.code, e.message, e.fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_values_may_quote_delimiters_quotes_and_line_breaks() {
        let rows = parse_csv(
            b"Name,Description\r\n\"A, Inc\",\"say \"\"hi\"\"\nthere\"\nB,\n",
            b',',
        )
        .expect("parses");
        assert_eq!(
            rows,
            [
                vec!["Name", "Description"],
                vec!["A, Inc", "say \"hi\"\nthere"],
                vec!["B", ""]
            ]
        );
        assert!(parse_csv(b"Name\n\"never closed\n", b',').is_err());
        assert_eq!(parse_csv(b"a|b", b'|').expect("parses"), [vec!["a", "b"]]);
    }

    #[test]
    fn empty_values_are_left_out_and_na_clears() {
        let columns = vec![
            ("Name".to_string(), FieldType::String),
            ("NumberOfEmployees".to_string(), FieldType::Int),
            ("Phone".to_string(), FieldType::Phone),
        ];
        let row = vec!["Acme".to_string(), "12".to_string(), "#N/A".to_string()];
        let fields = row_fields(&columns, &row);
        assert_eq!(fields["Name"], "Acme");
        assert_eq!(fields["NumberOfEmployees"], 12.0);
        assert_eq!(fields["Phone"], Json::Null);
        let row = vec!["Acme".to_string(), String::new(), String::new()];
        assert_eq!(row_fields(&columns, &row).len(), 1);
    }
}
