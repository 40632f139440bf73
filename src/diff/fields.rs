//! The fields that differ between two versions of a record, with their values.

use serde_json::Value;

use super::FieldChange;
use crate::snapshot::json_fields;

pub(super) fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// A record's fields, with a field whose value is a map (a metadata component's files by
/// path) taken apart into its entries, each named by its key: a change names the file.
fn flattened(map: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (field, value) in map {
        match value {
            Value::Object(entries) => out.extend(entries),
            value => {
                out.insert(field, value);
            }
        }
    }
    out
}

pub(super) fn all_fields(body: &[u8], before: bool) -> Vec<FieldChange> {
    match parse(body) {
        Value::Object(map) => flattened(map)
            .into_iter()
            .map(|(field, value)| {
                let (before_value, after_value) = if before {
                    (value, Value::Null)
                } else {
                    (Value::Null, value)
                };
                FieldChange {
                    field,
                    before: before_value,
                    after: after_value,
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The fields whose values differ between two versions of a record, by name.
pub(super) fn changed_fields(before: &[u8], after: &[u8]) -> Vec<FieldChange> {
    changed_as_written(before, after).unwrap_or_else(|| changed_parsed(before, after))
}

/// [`changed_fields`] of any two versions: both parsed whole.
fn changed_parsed(before: &[u8], after: &[u8]) -> Vec<FieldChange> {
    let (Value::Object(a), Value::Object(b)) = (parse(before), parse(after)) else {
        return Vec::new();
    };
    let (a, b) = (flattened(a), flattened(b));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (a.get(name), b.get(name));
            // Canonical records hold every field the object had, so a field on one side only
            // was added or removed between the snapshots: a schema change, shown once by the
            // schema diff. Its empty value (or a checkbox's usual default, false) in a record
            // is not a change of that record.
            let schema_only = |present: Option<&Value>, absent: Option<&Value>| {
                absent.is_none() && matches!(present, Some(Value::Null | Value::Bool(false)))
            };
            if schema_only(x, y) || schema_only(y, x) {
                return None;
            }
            (x != y).then(|| FieldChange {
                field: name.clone(),
                before: x.cloned().unwrap_or(Value::Null),
                after: y.cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// [`changed_fields`] for two versions written alike, as a source's records are: the same keys
/// in the same order, each written exactly as `{"key":value,...}`, no key twice and no value a
/// map. Their values are compared as written, and only those whose bytes differ are parsed
/// (`1.0` and `1.00` are the same number). None when the versions are not written alike.
fn changed_as_written(before: &[u8], after: &[u8]) -> Option<Vec<FieldChange>> {
    let mut keys = Vec::new();
    json_fields::keys_of(before, &mut keys)?;
    let (mut at_before, mut at_after) = (Vec::new(), Vec::new());
    json_fields::split_as(before, &keys, &mut at_before)?;
    json_fields::split_as(after, &keys, &mut at_after)?;
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
        return None;
    }
    let mut changed = Vec::new();
    for ((key, &(a, b)), &(c, d)) in keys.iter().zip(&at_before).zip(&at_after) {
        let (x, y) = (&before[a..b], &after[c..d]);
        if x.first() == Some(&b'{') || y.first() == Some(&b'{') {
            return None;
        }
        if x == y {
            continue;
        }
        let (x, y): (Value, Value) = (
            serde_json::from_slice(x).ok()?,
            serde_json::from_slice(y).ok()?,
        );
        if x != y {
            changed.push(FieldChange {
                field: serde_json::from_slice(key).ok()?,
                before: x,
                after: y,
            });
        }
    }
    changed.sort_by(|p, q| p.field.cmp(&q.field));
    Some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_written_alike_give_the_changes_a_parse_of_both_gives() {
        let cases: [(&[u8], &[u8], bool); 9] = [
            (
                br#"{"Id":"1","Name":"A","N":1}"#,
                br#"{"Id":"1","Name":"B","N":1}"#,
                true,
            ),
            (
                br#"{"Id":"1","Z":"x","A":2}"#,
                br#"{"Id":"1","Z":"y","A":3}"#,
                true,
            ),
            (br#"{"N":1.0,"S":"\u0041"}"#, br#"{"N":1.00,"S":"A"}"#, true),
            (br#"{"N":1.0}"#, br#"{"N":1}"#, true),
            (br#"{"A":null,"B":false}"#, br#"{"A":"x","B":true}"#, true),
            (br#"{"A":"same"}"#, br#"{"A":"same"}"#, true),
            // Not written alike: left to the parse of both.
            (br#"{"A":1,"A":2}"#, br#"{"A":1,"A":3}"#, false),
            (
                br#"{"M":{"f":"1"},"A":1}"#,
                br#"{"M":{"f":"2"},"A":1}"#,
                false,
            ),
            (br#"{"A":1,"B":2}"#, br#"{"B":2,"A":1,"C":null}"#, false),
        ];
        for (before, after, alike) in cases {
            let label = format!(
                "{} -> {}",
                String::from_utf8_lossy(before),
                String::from_utf8_lossy(after)
            );
            assert_eq!(
                changed_as_written(before, after).is_some(),
                alike,
                "{label}"
            );
            let fields = |changes: Vec<FieldChange>| -> Vec<(String, Value, Value)> {
                changes
                    .into_iter()
                    .map(|c| (c.field, c.before, c.after))
                    .collect()
            };
            assert_eq!(
                fields(changed_fields(before, after)),
                fields(changed_parsed(before, after)),
                "{label}"
            );
        }
    }
}
