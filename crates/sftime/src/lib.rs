//! Salesforce's date and time formats, without a calendar crate: days from civil dates and back
//! (Howard Hinnant's algorithms).

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Now, as milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2013-05-20`
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2013-05-20T20:49:32.000+0000`, the REST API's datetime.
pub fn format_datetime(ms: i64) -> String {
    let mut text = String::with_capacity(28);
    push_datetime(&mut text, ms, "+0000");
    text
}

/// `2013-05-20T20:49:32.000Z`, Bulk API 2.0's datetime.
pub fn format_datetime_z(ms: i64) -> String {
    let mut text = String::with_capacity(24);
    push_datetime(&mut text, ms, "Z");
    text
}

/// Appends a datetime in UTC with this zone designator (`Z` or `+0000`).
pub fn push_datetime(out: &mut String, ms: i64, zone: &str) {
    match datetime_digits(ms) {
        // The digits are ASCII.
        Some(digits) => out.push_str(std::str::from_utf8(&digits).unwrap_or_default()),
        None => {
            let (date, time) = split(ms);
            out.push_str(&format!("{date}T{time}"));
        }
    }
    out.push_str(zone);
}

/// Appends `2013-05-20T20:49:32.000Z` without allocating: Bulk results write millions of these.
pub fn write_datetime_z(out: &mut Vec<u8>, ms: i64) {
    match datetime_digits(ms) {
        Some(digits) => out.extend_from_slice(&digits),
        None => {
            let (date, time) = split(ms);
            out.extend_from_slice(format!("{date}T{time}").as_bytes());
        }
    }
    out.push(b'Z');
}

/// `2013-05-20T20:49:32.000`, written into a fixed array so the output grows once; None for a
/// year that is not four digits.
fn datetime_digits(ms: i64) -> Option<[u8; 23]> {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut text = *b"0000-00-00T00:00:00.000";
    put_digits(&mut text[0..4], y as u32);
    put_digits(&mut text[5..7], m);
    put_digits(&mut text[8..10], d);
    put_digits(&mut text[11..13], (rest / 3_600_000) as u32);
    put_digits(&mut text[14..16], (rest / 60_000 % 60) as u32);
    put_digits(&mut text[17..19], (rest / 1000 % 60) as u32);
    put_digits(&mut text[20..23], (rest % 1000) as u32);
    Some(text)
}

fn split(ms: i64) -> (String, String) {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (h, mi, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    (
        format_date(days as i32),
        format!("{h:02}:{mi:02}:{s:02}.{milli:03}"),
    )
}

/// Writes `n` into `slots` as decimal digits, zero-padded to fill them.
fn put_digits(slots: &mut [u8], mut n: u32) {
    for slot in slots.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `2024-01-01` as days since the epoch.
pub fn parse_date(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let y: i64 = text[..4].parse().ok()?;
    let m: u32 = text[5..7].parse().ok()?;
    let d: u32 = text[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) as i32)
}

/// `2024-01-01T00:00:00Z`, `…00.000+0000`, `…+01:00`, as milliseconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<i64> {
    match parse_utc_millis(text.as_bytes()) {
        Some(parsed) => parsed,
        None => parse_datetime_general(text),
    }
}

fn parse_datetime_general(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let days = parse_date(date)? as i64;
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
        if digits.len() != 4 {
            return None;
        }
        let hours: i64 = digits[..2].parse().ok()?;
        let minutes: i64 = digits[2..].parse().ok()?;
        (clock, sign * (hours * 3_600_000 + minutes * 60_000))
    };
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, frac)) => {
            let frac: String = frac.chars().chain("000".chars()).take(3).collect();
            (hms, frac.parse::<i64>().ok()?)
        }
        None => (clock, 0),
    };
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next().unwrap_or("0").parse().ok()?;
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + millis - offset_ms)
}

/// `2013-05-20T20:49:32.000Z` and `…000+0000`, the forms Salesforce writes, read digit by digit
/// (a backup reads two per record). None when the text has another shape; Some(None) when it
/// has this shape but is no datetime, exactly as the general reading would decide.
fn parse_utc_millis(b: &[u8]) -> Option<Option<i64>> {
    let utc = match b.len() {
        24 => b[23] == b'Z',
        28 => &b[23..] == b"+0000",
        _ => false,
    };
    let shaped = utc
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.';
    if !shaped {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (Some(y), Some(m), Some(d), Some(h), Some(mi), Some(s), Some(milli)) = (
        number(0, 4),
        number(5, 7),
        number(8, 10),
        number(11, 13),
        number(14, 16),
        number(17, 19),
        number(20, 23),
    ) else {
        return None;
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Some(None);
    }
    let days = days_from_civil(y, m as u32, d as u32) as i32 as i64;
    Some(Some(
        days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + milli,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let ms = parse_datetime("2013-05-20T20:49:32.000+0000").expect("datetime");
        assert_eq!(format_datetime(ms), "2013-05-20T20:49:32.000+0000");
        assert_eq!(parse_datetime("2013-05-20T22:49:32+02:00"), Some(ms));
        assert_eq!(parse_datetime("2013-05-20T20:49:32Z"), Some(ms));
        assert_eq!(format_datetime_z(ms), "2013-05-20T20:49:32.000Z");
        let mut out = Vec::new();
        write_datetime_z(&mut out, ms + 7);
        assert_eq!(out, b"2013-05-20T20:49:32.007Z");
        assert_eq!(
            format_date(parse_date("2024-02-29").expect("leap day")),
            "2024-02-29"
        );
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-13-01"), None);
    }

    proptest::proptest! {
        /// The digit-by-digit reading agrees with the general one on every text of its shape,
        /// valid or not.
        #[test]
        fn the_fast_reading_of_utc_datetimes_agrees_with_the_general_one(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}(Z|\\+0000|\\+0100|z)",
        ) {
            proptest::prop_assert_eq!(parse_datetime(&text), parse_datetime_general(&text));
        }
    }

    #[test]
    fn datetimes_before_year_0_or_after_9999_keep_every_digit() {
        let far = days_from_civil(12_345, 6, 7) * 86_400_000 + 1;
        assert_eq!(format_datetime(far), "12345-06-07T00:00:00.001+0000");
        let mut out = Vec::new();
        write_datetime_z(&mut out, far);
        assert_eq!(out, b"12345-06-07T00:00:00.001Z");
        assert_eq!(format_datetime_z(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_datetime_z(days_from_civil(9999, 12, 31) * 86_400_000 + 86_399_999),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
