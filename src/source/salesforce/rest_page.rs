//! Reading a REST query page's records straight into rows. Building a JSON tree per record
//! (a map of ~40 owned keys and values) cost more than everything else done with it; here each
//! field's value is read once, borrowed where the text needs no unescaping, and written as the
//! record's canonical bytes, exactly as [`super::fetch::canonical`] writes them from a tree.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::fetch::{CanonicalInput, created_after, revisited, stamp_ms, write_canonical_value};
use crate::snapshot::sorter::Row;
use crate::source::Field;
use crate::store::StoreError;

/// Reads `body` (a query page) and hands each record to `push` as a row. A failure of `push`
/// stops the reading and is returned as it was.
pub fn read_records(
    body: &[u8],
    fields: &[Field],
    since_ms: Option<i64>,
    push: &mut dyn FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), PageError> {
    let refused = RefCell::new(None);
    let page = PageSeed {
        record: RecordSeed {
            fields,
            positions: fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.as_str(), i))
                .collect(),
            since_ms,
        },
        push: RefCell::new(push),
        refused: &refused,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let read = page
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Some(e) = refused.into_inner() {
        return Err(PageError::Store(e));
    }
    read.map_err(|e| PageError::Unreadable(e.to_string()))
}

#[derive(Debug)]
pub enum PageError {
    Unreadable(String),
    Store(StoreError),
}

struct PageSeed<'f, 'p, 'r> {
    record: RecordSeed<'f>,
    push: RefCell<&'p mut dyn FnMut(Row) -> Result<(), StoreError>>,
    refused: &'r RefCell<Option<StoreError>>,
}

impl<'de> DeserializeSeed<'de> for &PageSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &PageSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a query page")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            if key.0 == "records" {
                map.next_value_seed(Records(self))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Records<'s, 'f, 'p, 'r>(&'s PageSeed<'f, 'p, 'r>);

impl<'de> DeserializeSeed<'de> for Records<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element_seed(&self.0.record)? {
            let pushed = (self.0.push.borrow_mut())(row);
            if let Err(e) = pushed {
                *self.0.refused.borrow_mut() = Some(e);
                return Err(de::Error::custom("the record could not be kept"));
            }
        }
        Ok(())
    }
}

/// A field's value as the page has it; text borrowed from the page when it can be.
#[derive(Clone)]
enum Cell<'de> {
    Text(Cow<'de, str>),
    Other(Value),
}

struct RecordSeed<'f> {
    fields: &'f [Field],
    /// Where each field's value goes.
    positions: HashMap<&'f str, usize>,
    since_ms: Option<i64>,
}

impl<'de> DeserializeSeed<'de> for &RecordSeed<'_> {
    type Value = Row;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Row, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &RecordSeed<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut cells: Vec<Option<Cell<'de>>> = vec![None; self.fields.len()];
        let (mut id, mut deleted, mut created, mut stamp) = (None, false, false, i64::MIN);
        while let Some(key) = map.next_key::<Key>()? {
            let slot = self.positions.get(key.0.as_ref()).copied();
            let wanted = matches!(
                key.0.as_ref(),
                "Id" | "IsDeleted" | "CreatedDate" | "SystemModstamp"
            );
            if slot.is_none() && !wanted {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let cell = map.next_value::<CellValue>()?.0;
            match (key.0.as_ref(), &cell) {
                ("Id", Cell::Text(text)) => id = Some(text.to_string()),
                ("IsDeleted", Cell::Other(Value::Bool(true))) => deleted = true,
                ("CreatedDate", Cell::Text(text)) => {
                    created = created_after(Some(text), self.since_ms);
                }
                ("SystemModstamp", Cell::Text(text)) => stamp = stamp_ms(Some(text)),
                _ => {}
            }
            if let Some(slot) = slot {
                cells[slot] = Some(cell);
            }
        }
        let mut body = Vec::with_capacity(64 * self.fields.len());
        body.push(b'{');
        for (i, (field, cell)) in self.fields.iter().zip(&cells).enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let value = match cell {
                None => CanonicalInput::Null,
                Some(Cell::Text(text)) => CanonicalInput::Text(text),
                Some(Cell::Other(value)) => CanonicalInput::Value(value),
            };
            write_canonical_value(&mut body, field, value);
        }
        body.push(b'}');
        Ok(Row {
            id: id.unwrap_or_default(),
            deleted,
            created,
            revisit: revisited(stamp, self.since_ms),
            stamp,
            body,
        })
    }
}

/// A map key, borrowed from the page unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor).map(Key)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text))
    }
}

/// Text as borrowed text; anything else (numbers, booleans, null, compound values) as a
/// `Value`, read the way `serde_json` reads it into a tree.
struct CellValue<'de>(Cell<'de>);

impl<'de> de::Deserialize<'de> for CellValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor).map(CellValue)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cell::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cell::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cell::Text(Cow::Owned(text)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Cell::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cell::Other(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cell::Other(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Cell::Other(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Cell::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Cell::Other(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Cell::Other(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Cell::Other(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::salesforce::fetch::canonical;

    /// The reference: the row built from a JSON tree of the record.
    fn from_tree(record: &Value, fields: &[Field], since_ms: Option<i64>) -> Row {
        let stamp = stamp_ms(record["SystemModstamp"].as_str());
        Row {
            id: record["Id"].as_str().unwrap_or_default().to_string(),
            deleted: record["IsDeleted"] == true,
            created: created_after(record["CreatedDate"].as_str(), since_ms),
            revisit: revisited(stamp, since_ms),
            stamp,
            body: canonical(record, fields),
        }
    }

    fn field(name: &str, kind: &str) -> Field {
        Field {
            name: name.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn rows_read_from_the_page_equal_rows_built_from_a_tree() {
        let fields = [
            field("Id", "id"),
            field("Name", "string"),
            field("Description", "textarea"),
            field("AnnualRevenue", "currency"),
            field("NumberOfEmployees", "int"),
            field("Active__c", "boolean"),
            field("CreatedDate", "datetime"),
            field("SystemModstamp", "datetime"),
            field("BillingAddress", "address"),
            field("Missing__c", "string"),
            field("Esc\"aped", "string"),
        ];
        let page = r#"{"totalSize":3,"done":true,"records":[
            {"attributes":{"type":"Account","url":"/services/data/v62.0/sobjects/Account/001A"},
             "Id":"001000000000001AAA","IsDeleted":false,"Name":"Acme \"Quotes\" \u00e9\t\\",
             "Description":"line one\nline two \ud83d\ude00","AnnualRevenue":1.5E7,
             "NumberOfEmployees":-42,"Active__c":true,"CreatedDate":"2025-06-01T10:00:00.000+0000",
             "SystemModstamp":"2025-06-02T11:30:00.000+0200","Other__c":{"deep":[1,2,{"x":null}]},
             "BillingAddress":{"city":"Paris","postalCode":"75001","latitude":48.86},
             "Esc\"aped":"key with a quote"},
            {"Id":"001000000000002AAA","IsDeleted":true,"Name":null,"AnnualRevenue":0,
             "NumberOfEmployees":18446744073709551615,"Active__c":false,
             "CreatedDate":"2025-06-03T00:00:00.000Z","SystemModstamp":"not a date",
             "Description":"","BillingAddress":null},
            {"Id":"001000000000003AAA","Name":"Plain","AnnualRevenue":12.25,
             "CreatedDate":"2025-05-01T00:00:00Z"}
        ]}"#;
        let tree: Value = serde_json::from_str(page).expect("valid JSON");
        for since in [None, Some(1_748_800_000_000)] {
            let want: Vec<Row> = tree["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| from_tree(r, &fields, since))
                .collect();
            let mut got = Vec::new();
            read_records(page.as_bytes(), &fields, since, &mut |row| {
                got.push(row);
                Ok(())
            })
            .expect("readable");
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_broken_page_is_unreadable_and_a_refused_row_stops_the_reading() {
        let fields = [field("Id", "id")];
        let broken = br#"{"records":[{"Id":"001A"},{"Id":"#;
        assert!(matches!(
            read_records(broken, &fields, None, &mut |_| Ok(())),
            Err(PageError::Unreadable(_))
        ));
        let page = br#"{"records":[{"Id":"001A"},{"Id":"001B"}]}"#;
        let mut seen = 0;
        let refused = read_records(page, &fields, None, &mut |_| {
            seen += 1;
            Err(StoreError::Compression("disk full".into()))
        });
        assert!(matches!(refused, Err(PageError::Store(_))));
        assert_eq!(seen, 1);
    }
}
