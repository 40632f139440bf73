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

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_five_fields_and_nicknames_only() {
        assert!(parse("0 3 * * *").is_ok());
        assert!(parse("*/15 1-5 * * MON-FRI").is_ok());
        assert!(parse("@daily").is_ok());
        assert!(parse("0 0 3 * * *").is_err());
        assert!(parse("61 3 * * *").is_err());
        assert!(parse("daily").is_err());
        assert!(parse("").is_err());
    }
}
