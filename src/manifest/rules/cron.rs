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
    use super::parse;

    #[test]
    fn accepts_five_fields_and_nicknames_only() {
        assert!(parse("0 3 * * *").is_ok());
        assert!(parse("*/15 1-5 * * MON-FRI").is_ok());
        assert!(parse("@daily").is_ok());
        assert!(parse("0 0 3 * * *").is_err());
        assert_eq!(
            parse("61 3 * * *").unwrap_err(),
            "minute 61 is outside 0-59"
        );
        assert_eq!(parse("0 3 * 13 *").unwrap_err(), "month 13 is outside 1-12");
        assert!(parse("daily").is_err());
        assert!(parse("").is_err());
    }
}
