use super::*;
use proptest::prelude::*;

fn segment(records: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = segment::SegmentBuilder::default();
    for (id, body) in records {
        builder.push(id, *body);
    }
    builder.finish().0
}

fn round_trip(framed: &[u8]) -> Vec<u8> {
    let stored = with_stored(framed, <[u8]>::to_vec);
    let (back, entries) = open("b", stored).expect("opens");
    assert_eq!(
        entries.len(),
        segment::index("b", framed).expect("framed").len()
    );
    back
}

#[test]
fn records_of_the_same_fields_go_in_columns_and_come_back_byte_for_byte() {
    let framed = segment(&[
        (
            "001A",
            Some(br#"{"Id":"001A","Name":"Acme","N":1.5,"Tags":["a","b"]}"#),
        ),
        ("001B", None),
        (
            "001C",
            Some(br#"{"Id":"001C","Name":"Q\"uote, }","N":null,"Tags":{"x":[1,{"y":"]"}]}}"#),
        ),
        ("001D", Some(br#"{"Id":"001D","Other":1}"#)),
        (
            "001E",
            Some(br#"{ "Id":"001E","Name":"spaced","N":2,"Tags":[]}"#),
        ),
        ("001F", Some(b"not JSON at all")),
    ]);
    let stored = with_stored(&framed, <[u8]>::to_vec);
    assert_eq!(&stored[..4], MAGIC, "stored in columns");
    assert!(
        memchr::memmem::find(&stored, b"\"Name\"").is_some()
            && memchr::memmem::find_iter(&stored, b"\"Name\"").count() == 2,
        "a key is written once for the columns (and once in the record kept whole)"
    );
    assert_eq!(round_trip(&framed), framed);
}

#[test]
fn records_are_picked_by_id_forwards_and_back() {
    let records: Vec<(String, Option<Vec<u8>>)> = (0..500)
        .map(|n| {
            let id = format!("001{n:05}");
            let body = match n % 50 {
                7 => None,
                9 => Some(br#"{"Other":1}"#.to_vec()),
                _ => Some(
                    format!(
                        r#"{{"Id":"{id}","Name":"N{}","Amount":{n}}}"#,
                        "x".repeat(n % 90)
                    )
                    .into_bytes(),
                ),
            };
            (id, body)
        })
        .collect();
    let listed: Vec<(&str, Option<&[u8]>)> = records
        .iter()
        .map(|(id, body)| (id.as_str(), body.as_deref()))
        .collect();
    let stored = with_stored(&segment(&listed), <[u8]>::to_vec);
    assert_eq!(&stored[..4], MAGIC);
    let mut picker = Picker::open("b", stored).expect("opens");
    for (id, body) in records
        .iter()
        .step_by(3)
        .chain(records.iter().rev().step_by(11))
    {
        assert_eq!(picker.pick(id.as_bytes()), Ok(Some(body.clone())), "{id}");
    }
    assert_eq!(picker.pick(b"001"), Ok(None));
}

#[test]
fn a_segment_with_no_record_for_columns_is_kept_as_framed() {
    let framed = segment(&[("1", Some(b"[1,2]")), ("2", None), ("3", Some(b"{}"))]);
    assert!(with_stored(&framed, |stored| stored == framed.as_slice()));
    assert_eq!(round_trip(&framed), framed);
}

#[test]
fn damaged_column_segments_are_errors_not_panics() {
    let framed = segment(&[
        ("001A", Some(br#"{"Id":"001A","Name":"Acme"}"#)),
        ("001B", Some(br#"{"Id":"001B","Name":"Beta"}"#)),
        ("001C", Some(br#"{"Other":true}"#)),
    ]);
    let stored = with_stored(&framed, <[u8]>::to_vec);
    for cut in 4..stored.len() {
        assert!(open("b", stored[..cut].to_vec()).is_err(), "cut at {cut}");
        assert!(
            Picker::open("b", stored[..cut].to_vec()).is_err(),
            "picker, cut at {cut}"
        );
    }
    for at in 4..stored.len() {
        let mut flipped = stored.clone();
        flipped[at] ^= 0x5a;
        // Any answer but a panic: a flipped value byte still frames.
        let _ = open("b", flipped.clone());
        if let Ok(mut picker) = Picker::open("b", flipped) {
            for id in ["001A", "001B", "001C"] {
                let _ = picker.pick(id.as_bytes());
            }
        }
    }
    let mut not_text = stored.clone();
    let at = not_text
        .windows(4)
        .position(|w| w == b"001B")
        .expect("an Id");
    not_text[at + 3] = 0xff;
    assert!(
        Picker::open("b", not_text).is_err(),
        "an Id that is not UTF-8"
    );
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,:{}\\[\\]é]{0,12}".prop_map(|s| serde_json::to_string(&s).expect("str")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_string()),
        Just("[1,\"]\",{\"a\":\"}\"}]".to_string()),
    ]
}

proptest! {
    #[test]
    fn any_segment_comes_back_as_it_was_framed(
        records in proptest::collection::vec(
            (proptest::collection::vec(value(), 0..4), 0u8..6), 0..20)
    ) {
        let keys = ["\"Id\"", "\"Name\"", "\"A\\\"b\"", "\"C\""];
        let bodies: Vec<Option<Vec<u8>>> = records.iter().map(|(values, kind)| match kind {
            0 => None,
            1 => Some(b"raw body, not JSON".to_vec()),
            _ => {
                let fields: Vec<String> = values.iter().zip(keys).map(|(v, k)| format!("{k}:{v}")).collect();
                Some(format!("{{{}}}", fields.join(",")).into_bytes())
            }
        }).collect();
        let ids: Vec<String> = (0..bodies.len()).map(|n| format!("{n:04}")).collect();
        let listed: Vec<(&str, Option<&[u8]>)> = ids.iter().map(String::as_str).zip(bodies.iter().map(|b| b.as_deref())).collect();
        let framed = segment(&listed);
        prop_assert_eq!(round_trip(&framed), framed.clone());
        // Picked one by one, in any order, each record is what the framed segment holds.
        let mut picker = Picker::open("b", with_stored(&framed, <[u8]>::to_vec)).expect("opens");
        let mut order: Vec<usize> = (0..listed.len()).collect();
        order.sort_by_key(|n| (n * 7) % (listed.len().max(1)));
        for n in order {
            let picked = picker.pick(listed[n].0.as_bytes()).expect("picks");
            prop_assert_eq!(picked, Some(listed[n].1.map(<[u8]>::to_vec)));
        }
        prop_assert_eq!(picker.pick(b"none").expect("picks"), None);
    }
}
