//! The text of a record that the index tokenizes: its searchable strings, read straight from
//! the stored JSON.

/// A value worth tokenizing: text people search for. Record Ids (18 characters, letters and
/// digits), dates and timestamps are left out: Ids have their own field, and none is words.
pub(super) fn searchable(text: &[u8]) -> bool {
    let id_like = text.len() == 18 && text.iter().all(u8::is_ascii_alphanumeric);
    let date = text.len() == 10 && date_shaped(text);
    let timestamp = text.len() >= 20 && timestamp_shaped(text);
    // Encoded bytes (a binary file's base64): one endless word nobody searches for.
    let encoded = text.len() > 256 && !text.iter().any(u8::is_ascii_whitespace);
    !id_like && !date && !timestamp && !encoded
}

/// `YYYY-MM-DD` at the start, a month and day in range. No more is checked (not whether the
/// day is in its month): a record holds several dates and timestamps, and parsing each was a
/// share of indexing.
fn date_shaped(text: &[u8]) -> bool {
    number(text, 0..4).is_some()
        && text.get(4) == Some(&b'-')
        && number(text, 5..7).is_some_and(|month| (1..=12).contains(&month))
        && text.get(7) == Some(&b'-')
        && number(text, 8..10).is_some_and(|day| (1..=31).contains(&day))
}

/// `YYYY-MM-DDThh:mm:ss` at the start, then only fractions and a zone.
fn timestamp_shaped(text: &[u8]) -> bool {
    date_shaped(text)
        && text.get(10) == Some(&b'T')
        && number(text, 11..13).is_some()
        && text.get(13) == Some(&b':')
        && number(text, 14..16).is_some()
        && text.get(16) == Some(&b':')
        && number(text, 17..19).is_some()
        && text[19..]
            .iter()
            .all(|b| b.is_ascii_digit() || b".+-:Z".contains(b))
}

/// The decimal number the bytes in `range` spell, if they are all digits.
fn number(text: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    text.get(range)
        .filter(|digits| digits.iter().all(u8::is_ascii_digit))
        .map(|digits| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// The text values of a record as one text: what the index tokenizes. Top-level strings, one
/// per line, and the strings of a map one level down (a metadata component's files by path).
/// Numbers (amounts, counts, percentages: a field typed as one), deeper values, lists,
/// booleans and nulls are not words people search for; leaving numbers out takes a quarter of
/// the words a spread org's index holds (benches/apply.rs), most of them found in one record.
/// Read straight from the JSON without building a `Value`: this runs once per record indexed.
pub fn record_text(body: &[u8]) -> String {
    let mut text = String::with_capacity(body.len());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    if serde::Deserializer::deserialize_any(&mut deserializer, RecordText(&mut text)).is_err() {
        text.clear();
    }
    text
}

/// Visits a record object, appending its searchable values.
struct RecordText<'a>(&'a mut String);

impl<'de> serde::de::Visitor<'de> for RecordText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(FieldText {
                text: &mut *self.0,
                nested: false,
            })?;
        }
        Ok(())
    }
}

/// One field's value: appended when it is a searchable string. A map field's strings are too
/// (`nested`), and deeper maps are passed over.
struct FieldText<'a> {
    text: &'a mut String,
    nested: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldText<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        if searchable(value.as_bytes()) {
            self.text.push_str(value);
            self.text.push('\n');
        }
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            if self.nested {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                map.next_value_seed(FieldText {
                    text: &mut *self.text,
                    nested: true,
                })?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What the text is defined to be, spelled out on a parsed `Value`.
    fn reference(body: &[u8]) -> String {
        let mut text = String::new();
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for value in map.values() {
                match value {
                    Value::String(s) if searchable(s.as_bytes()) => text.push_str(s),
                    Value::Object(nested) => {
                        for s in nested.values().filter_map(Value::as_str) {
                            if searchable(s.as_bytes()) {
                                text.push_str(s);
                                text.push('\n');
                            }
                        }
                        continue;
                    }
                    _ => continue,
                }
                text.push('\n');
            }
        }
        text
    }

    #[test]
    fn the_text_of_a_record_is_its_searchable_strings() {
        let cases: [&[u8]; 10] = [
            br#"{"Id":"001000000000001AAA","Name":"Acme \"Q\" \u00e9t\u00e9","Count":-3,"Big":18446744073709551615,"Rate":100.0,"Tiny":1e-7,"Huge":1.5e300}"#,
            br#"{"Active":true,"Parent":null,"Address":{"City":"Oslo"},"Tags":["a","b"],"When":"2025-06-15T08:09:10.000+0000","Day":"2025-06-15"}"#,
            br#"{}"#,
            br#"[1,2,3]"#,
            br#""just a string""#,
            br#"{"Name":"cut"#,
            b"not json",
            br#"{"Name":"line\nbreak","Esc":"tab\there"}"#,
            "{\"Name\":\"\u{1F600} unicode\"}".as_bytes(),
            br#"{"Id":"ApexClass:Invoice","files":{"classes/Invoice.cls":"public class Invoice {}","deep":{"x":"y"},"n":3},"binaryFiles":{"a.bin":"QUFB"}}"#,
        ];
        // The same values; in the record's own order rather than sorted by field name.
        let lines = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        for body in cases {
            assert_eq!(
                lines(record_text(body)),
                lines(reference(body)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            record_text(
                br#"{"Id":"001000000000001AAA","Name":"Acme","N":7,"Close":"2025-06-15","Seen":"2025-06-15T08:09:10.000+0000","Note":"2025-99-15"}"#
            ),
            "Acme\n2025-99-15\n"
        );
        // Dates and timestamps are known by their shape: text that only starts like one is
        // searched.
        assert_eq!(
            record_text(
                br#"{"At":"2025-06-15T08:09:10Z","Off":"2025-06-15T08:09:10-07:00","Day":"2025-06-32","Said":"2025-06-15T08:09:10 on the phone"}"#
            ),
            "2025-06-32\n2025-06-15T08:09:10 on the phone\n"
        );
    }
}
