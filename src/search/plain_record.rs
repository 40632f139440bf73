//! The searchable values of a record read straight off its JSON when the record is plain
//! (ASCII, no escapes): most records are, and reading them without a JSON parser's string
//! checks is most of what cutting a block's words saves. Anything else is left to
//! [`record_text`](super::record_text), whose values these are.

/// Calls `each` with the values [`record_text`](super::record_text) gives a plain record, in
/// the same order. False when the record is not plain (or not a JSON object): the caller reads
/// it with `record_text` instead; values passed before that are the record's too, so the
/// words of a block are never fewer than its records'.
pub(super) fn plain_values(body: &[u8], each: &mut dyn FnMut(&[u8])) -> bool {
    if !body.is_ascii() || memchr::memchr(b'\\', body).is_some() {
        return false;
    }
    let mut scan = Scan { body, at: 0 };
    scan.record(each).is_some()
}

/// Calls `each` with what [`plain_values`] gives for one field's value, as written in JSON
/// (ASCII without a backslash: the caller checks). False when it is not one whole value.
pub(super) fn plain_value(value: &[u8], each: &mut dyn FnMut(&[u8])) -> bool {
    let mut scan = Scan { body: value, at: 0 };
    scan.value(false, each).is_some() && scan.peek().is_none()
}

/// A position in a plain record. Every step returns None where the JSON is not what a record
/// holds.
struct Scan<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(&byte) = self.body.get(self.at) {
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string's contents (no escapes in a plain record), past its closing quote: ASCII
    /// (checked before scanning), so its bytes are its text.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let length = memchr::memchr(b'"', &self.body[self.at..])?;
        let text = &self.body[self.at..self.at + length];
        self.at += length + 1;
        Some(text)
    }

    /// The top-level object: each field's value.
    fn record(&mut self, each: &mut dyn FnMut(&[u8])) -> Option<()> {
        self.fields(&mut |scan| scan.value(false, each))
    }

    /// An object's fields, each value read by `value`.
    fn fields(&mut self, value: &mut dyn FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.string()?;
            self.eat(b':')?;
            value(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// One value: a string passed on when searchable; a map's strings one level down;
    /// anything else passed over.
    fn value(&mut self, nested: bool, each: &mut dyn FnMut(&[u8])) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let text = self.string()?;
                if super::record_text::searchable(text) {
                    each(text);
                }
            }
            b'{' if !nested => self.fields(&mut |scan| scan.value(true, each))?,
            b'{' | b'[' => self.skip_nested()?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.body[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// A number, passed over (numbers are not words: `record_text`), when it is one as JSON
    /// writes it: `-`, an integer without a leading zero, a fraction, an exponent.
    fn number(&mut self) -> Option<()> {
        let digits = |scan: &mut Self| {
            let length = scan.body[scan.at..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(scan.body.len() - scan.at);
            scan.at += length;
            (length > 0).then_some(length)
        };
        self.literal(b"-");
        let leading_zero = self.body.get(self.at) == Some(&b'0');
        if digits(self)? > 1 && leading_zero {
            return None;
        }
        if self.literal(b".").is_some() {
            digits(self)?;
        }
        if matches!(self.body.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.body.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }

    /// A list, or a map below the first level: passed over, strings and all.
    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match *self.body.get(self.at)? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(body: &[u8]) -> Option<String> {
        let mut text = String::new();
        plain_values(body, &mut |value| {
            text.push_str(&String::from_utf8_lossy(value));
            text.push('\n');
        })
        .then_some(text)
    }

    /// A record's values as a segment in columns holds them, each read by `plain_value`; None
    /// when one is not plain or the record is not in columns.
    fn column_values(body: &[u8]) -> Option<String> {
        use crate::snapshot::columns::{self, Record};
        let mut builder = crate::snapshot::segment::SegmentBuilder::default();
        builder.push("001", Some(body));
        let stored = columns::with_stored(&builder.finish().0, <[u8]>::to_vec);
        let mut text = None;
        columns::for_each_record("b", &stored, &mut |_, record| {
            if let Record::Fields { values, plain, .. } = record {
                let mut read = String::new();
                let each = &mut |value: &[u8]| {
                    read.push_str(&String::from_utf8_lossy(value));
                    read.push('\n');
                };
                let all = values
                    .iter()
                    .zip(plain)
                    .all(|(value, &plain)| plain && plain_value(value, each));
                text = all.then_some(read);
            }
            Ok(())
        })
        .expect("a segment just made reads");
        text
    }

    #[test]
    fn a_plain_record_gives_the_values_record_text_gives() {
        let cases: [&[u8]; 8] = [
            br#"{"Id":"001000000000001AAA","Name":"Acme Q","Count":-3,"Big":18446744073709551615,"Huger":123456789012345678901,"Rate":100.0,"Tiny":1e-7,"Huge":1.5e300,"Zero":0,"Neg":-0}"#,
            br#"{"Active":true,"Parent":null,"Address":{"City":"Oslo","N":3,"Deep":{"x":"y"},"L":[1]},"Tags":["a",{"b":"c"}],"When":"2025-06-15T08:09:10.000+0000","Day":"2025-06-15"}"#,
            br#"{}"#,
            br#" { "Name" : "spaced" , "N" : 12 } "#,
            br#"{"Id":"ApexClass:Invoice","files":{"classes/Invoice.cls":"public class Invoice {}","n":3},"binaryFiles":{"a.bin":"QUFB"}}"#,
            br#"{"Brackets":"[{not nested}]","After":"x"}"#,
            br#"{"Float":2.50,"Exp":1E+2,"Small":-0.0}"#,
            br#"{"Empty":"","List":[]}"#,
        ];
        for body in cases {
            let text = super::super::record_text(body);
            assert_eq!(
                values(body).as_deref(),
                Some(text.as_str()),
                "{}",
                String::from_utf8_lossy(body)
            );
            // Written compactly with fields, the record goes in columns and reads the same.
            if body.starts_with(b"{\"") {
                assert_eq!(
                    column_values(body).as_deref(),
                    Some(text.as_str()),
                    "in columns: {}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn a_record_that_is_not_plain_is_left_to_record_text() {
        let cases: [&[u8]; 7] = [
            br#"{"Name":"line\nbreak"}"#,
            "{\"Name\":\"été\"}".as_bytes(),
            br#"[1,2,3]"#,
            br#""just a string""#,
            br#"{"Name":"cut"#,
            b"not json",
            br#"{"N":012}"#,
        ];
        for body in cases {
            assert_eq!(values(body), None, "{}", String::from_utf8_lossy(body));
            assert_eq!(
                column_values(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Records as a source sends them: fields of every kind, in any order, written compactly
    /// or not.
    fn record() -> impl Strategy<Value = serde_json::Value> {
        let scalar = prop_oneof![
            // Mostly plain text; now and then a quote or a backslash (escaped, so not plain).
            "[ !#-\\[\\]-~]{0,30}".prop_map(serde_json::Value::from),
            "[ -~]{0,30}".prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e20f64..1e20).prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.000\\+0000"
                .prop_map(serde_json::Value::from),
        ];
        let value = scalar.prop_recursive(2, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[A-Za-z_]{1,8}", inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[A-Za-z_]{1,12}", value, 0..8)
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn any_record_gives_the_values_record_text_gives(record in record(), pretty: bool) {
            let body = match pretty {
                true => serde_json::to_vec_pretty(&record),
                false => serde_json::to_vec(&record),
            }
            .expect("JSON");
            if let Some(text) = values(&body) {
                prop_assert_eq!(&text, &super::super::record_text(&body));
                // A compact plain record with fields goes in columns, and reads the same there.
                if !pretty && record.as_object().is_some_and(|fields| !fields.is_empty()) {
                    prop_assert_eq!(column_values(&body), Some(text));
                }
            }
        }
    }
}
