//! Where the fields of a record's JSON lie, for [`super::columns`]: only a body written
//! exactly as `{"key":value,...}` (no white space between tokens, no 0 byte) is split, so that
//! putting its keys and values back together gives the same bytes.

/// The keys (quotes included) of a body written exactly as `{"key":value,...}`, or None when
/// it is not (white space between tokens, not an object, a 0 byte anywhere).
pub(crate) fn keys_of<'b>(body: &'b [u8], keys: &mut Vec<&'b [u8]>) -> Option<()> {
    keys.clear();
    if memchr::memchr(0, body).is_some() || body.first() != Some(&b'{') {
        return None;
    }
    let mut at = 1;
    if body.get(at) == Some(&b'}') {
        return (at + 1 == body.len()).then_some(());
    }
    loop {
        let key_end = string_end(body, at)?;
        if body.get(key_end) != Some(&b':') {
            return None;
        }
        keys.push(&body[at..key_end]);
        let value_end = value_end(body, key_end + 1)?;
        match body.get(value_end)? {
            b',' => at = value_end + 1,
            b'}' if value_end + 1 == body.len() => return Some(()),
            _ => return None,
        }
    }
}

/// Where the values of a body written exactly as `{` `keys[0]` `:` value `,` … `}` lie, or None
/// when it is not.
pub(crate) fn split_as(
    body: &[u8],
    keys: &[&[u8]],
    values: &mut Vec<(usize, usize)>,
) -> Option<()> {
    values.clear();
    if body.first() != Some(&b'{') || memchr::memchr(0, body).is_some() {
        return None;
    }
    let mut at = 1;
    for (n, key) in keys.iter().enumerate() {
        if n > 0 {
            (body.get(at) == Some(&b',')).then_some(())?;
            at += 1;
        }
        (body.get(at..)?.starts_with(key) && body.get(at + key.len()) == Some(&b':'))
            .then_some(())?;
        at += key.len() + 1;
        let end = value_end(body, at)?;
        values.push((at, end));
        at = end;
    }
    (body.get(at) == Some(&b'}') && at + 1 == body.len()).then_some(())
}

/// Just past the string starting at `at` (its opening quote).
fn string_end(body: &[u8], at: usize) -> Option<usize> {
    if body.get(at) != Some(&b'"') {
        return None;
    }
    let mut at = at + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', body.get(at..)?)?;
        match body[at] {
            b'"' => return Some(at + 1),
            _ => at += 2,
        }
    }
}

/// Just past the value starting at `at`: a string, an object or array (brackets counted
/// outside strings), or anything else up to the next `,` or `}`.
fn value_end(body: &[u8], at: usize) -> Option<usize> {
    match *body.get(at)? {
        b'"' => string_end(body, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match *body.get(at)? {
                    b'"' => {
                        at = string_end(body, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        // A number or a literal: a few bytes, quicker to walk than to search.
        _ => {
            let end = at + body[at..].iter().position(|&b| b == b',' || b == b'}')?;
            (end > at).then_some(end)
        }
    }
}
