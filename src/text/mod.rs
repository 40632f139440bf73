//! Text shown to people. Record values are data from the org, and a terminal obeys the
//! control characters in what it prints (colours, cursor moves, a changed window title, a
//! cleared screen): human output shows them escaped; JSON output escapes them as JSON does.
//! Texts cut to fit a limit (a step summary, a pull-request comment) are cut between chars.

pub mod glob;
pub mod suggest;

use std::borrow::Cow;

/// The largest char boundary of `text` at or below `at` (`at` at most `text.len()`): where
/// a text may be cut to fit a byte limit.
pub fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A size as people read it: `512 bytes`, `3.4 KB`, `1.2 MB`, `2.0 GB` (units of 1024, as
/// Salesforce counts its limits).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An error with every cause under it (`error sending request: client error (Connect):
/// Connection refused`): libraries often say what failed at the top and why only below.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A count as people read it: `1,440`, `300,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1 record`, `12,000 records`.
pub fn plural(n: u64, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{} {word}s", count(n)),
    }
}

/// The text with every control character (C0, DEL, C1) written as `\u{1b}`.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_group_their_thousands() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(1440), "1,440");
        assert_eq!(super::count(300_000), "300,000");
        assert_eq!(super::count(12_345_678), "12,345,678");
    }

    #[test]
    fn sizes_read_in_the_largest_unit_under_1024() {
        assert_eq!(super::size(0), "0 bytes");
        assert_eq!(super::size(1023), "1023 bytes");
        assert_eq!(super::size(1536), "1.5 KB");
        assert_eq!(super::size(500 * 1_048_576), "500.0 MB");
        assert_eq!(super::size(2 * 1_073_741_824), "2.0 GB");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        assert_eq!(super::printable("Okafor"), "Okafor");
        assert_eq!(
            super::printable("a\u{1b}[2Jb\u{9b}c\u{7f}\u{7}é\n"),
            "a\\u{1b}[2Jb\\u{9b}c\\u{7f}\\u{7}é\\u{a}"
        );
    }
}
