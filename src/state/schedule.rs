//! When a task is due: its cron schedule (UTC) has fired since its last success.

use crate::manifest::rules::cron;

/// The first time after `after_ms` that the schedule fires, in ms; None for a schedule that
/// does not parse (validate reports it) or never fires again.
pub(crate) fn next_after(schedule: &str, after_ms: i64) -> Option<i64> {
    let cron = cron::parse(schedule).ok()?;
    let start = jiff::Timestamp::from_millisecond(after_ms)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC);
    let next = cron.find_next_occurrence(&start, false).ok()?;
    Some(next.timestamp().as_millisecond())
}

/// Due when never run, or when the schedule fired between the last success and now.
pub(crate) fn is_due(schedule: &str, last_success_ms: Option<i64>, now_ms: i64) -> bool {
    match last_success_ms {
        None => true,
        Some(last) => next_after(schedule, last).is_some_and(|next| next <= now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2025-06-15T12:00:00Z
    const NOON: i64 = 1_749_988_800_000;

    #[test]
    fn daily_at_three_is_due_once_three_has_passed() {
        assert_eq!(next_after("0 3 * * *", NOON), Some(NOON + 15 * HOUR));
        assert!(!is_due("0 3 * * *", Some(NOON), NOON + 14 * HOUR));
        assert!(is_due("0 3 * * *", Some(NOON), NOON + 15 * HOUR));
        assert!(is_due("0 3 * * *", None, NOON));
        assert!(is_due("@hourly", Some(NOON), NOON + HOUR));
        assert!(!is_due("not cron", Some(NOON), NOON + 100 * HOUR));
    }
}
