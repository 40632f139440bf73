//! Time as cairn reads and writes it: Salesforce's date and datetime text (the `sftime` crate,
//! shared with the simulator), and durations as people type them.

pub use sftime::*;

/// `90s`, `15m`, `1h` or a number of seconds, in milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit_ms) = match text.chars().last()? {
        's' => (&text[..text.len() - 1], 1000.0),
        'm' => (&text[..text.len() - 1], 60_000.0),
        'h' => (&text[..text.len() - 1], 3_600_000.0),
        _ => (text, 1000.0),
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value * unit_ms) as i64)
}
