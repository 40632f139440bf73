//! `schedule/cron`: a schedule is a five-field cron expression in UTC, or a nickname.

use croner::parser::{CronParser, Seconds, Year};

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;

const RULE: &str = "schedule/cron";

pub fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let pointer = format!("{}/schedule", file.settings_pointer());
        let Some(schedule) = file.str_at(&pointer) else {
            continue;
        };
        if let Err(problem) = parse(schedule) {
            out.push(
                file.error(RULE, "`schedule` is not a valid cron expression")
                    .at(file.value_span(&pointer))
                    .pointer(pointer)
                    .label(problem)
                    .help("write five fields, minute hour day-of-month month day-of-week, in UTC: `0 3 * * *` is daily at 03:00; @hourly, @daily, @weekly and @monthly also work"),
            );
        }
    }
}

/// Checks a schedule; the error says what is wrong with it.
pub fn parse(schedule: &str) -> Result<croner::Cron, String> {
    let trimmed = schedule.trim();
    if !trimmed.starts_with('@') {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(format!("has {fields} fields, expected 5"));
        }
    }
    if let Some(problem) = out_of_range_field(trimmed) {
        return Err(problem);
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(trimmed)
        .map_err(|e| match e {
            croner::errors::CronError::EmptyPattern => "empty".to_string(),
            other => other.to_string().trim_end_matches('.').to_string(),
        })
}

/// The first number outside its field's range, named: croner only says "out of bounds".
fn out_of_range_field(schedule: &str) -> Option<String> {
    const FIELDS: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    for (field, (name, low, high)) in schedule.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            let range = part.split('/').next().unwrap_or_default();
            for number in range.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                if number < low || number > high {
                    return Some(format!("{name} {number} is outside {low}-{high}"));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::parse;

    #[rstest]
    #[case::daily("0 3 * * *")]
    #[case::ranges_steps_and_names("*/15 1-5 * * MON-FRI")]
    #[case::lists("0,30 8,20 1,15 * *")]
    #[case::nickname("@daily")]
    #[case::nickname_any_case("@Weekly")]
    fn accepted(#[case] schedule: &str) {
        assert!(
            parse(schedule).is_ok(),
            "{schedule}: {:?}",
            parse(schedule).err()
        );
    }

    #[rstest]
    #[case::empty("", "has 0 fields, expected 5")]
    #[case::a_word("daily", "has 1 fields, expected 5")]
    #[case::with_seconds("0 0 3 * * *", "has 6 fields, expected 5")]
    #[case::minute("61 3 * * *", "minute 61 is outside 0-59")]
    #[case::hour("0 24 * * *", "hour 24 is outside 0-23")]
    #[case::day_zero("0 3 0 * *", "day of month 0 is outside 1-31")]
    #[case::month("0 3 * 13 *", "month 13 is outside 1-12")]
    #[case::weekday("0 3 * * 8", "day of week 8 is outside 0-7")]
    fn refused(#[case] schedule: &str, #[case] problem: &str) {
        assert_eq!(parse(schedule).err().as_deref(), Some(problem));
    }
}
