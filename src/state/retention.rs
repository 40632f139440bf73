//! Which snapshots a retention policy keeps, and why. The rules are restic's: keep the newest N;
//! keep the newest snapshot of each of the last N hours, days, ISO weeks, months and years that
//! have one. A guard then keeps the newest complete snapshots until at least N complete ones are
//! kept, so a run of partial backups can never leave nothing good.

use crate::manifest::model::Retention;
use crate::time;

/// What retention needs to know of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub id: String,
    /// Milliseconds since the epoch, UTC.
    pub time: i64,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub id: String,
    pub time: i64,
    pub keep: bool,
    /// The rules that keep it (empty: it is forgotten).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the retention policy keeps no snapshots: every keep rule is 0")]
pub(crate) struct EmptyPolicy;

/// The period a time falls in, as text (`2026-01-05`, `2026-W02`, ...).
type BucketOf = fn(i64) -> String;

/// Decides for every candidate, newest first.
pub(crate) fn decide(
    policy: &Retention,
    candidates: &[Candidate],
) -> Result<Vec<Decision>, EmptyPolicy> {
    if !policy.keeps_anything() {
        return Err(EmptyPolicy);
    }
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let mut decisions: Vec<Decision> = sorted
        .iter()
        .map(|c| Decision {
            id: c.id.clone(),
            time: c.time,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    for (i, decision) in decisions
        .iter_mut()
        .enumerate()
        .take(policy.keep_last as usize)
    {
        decision.reasons.push(format!("last {}", i + 1));
    }
    let buckets: [(&str, u32, BucketOf); 5] = [
        ("hourly", policy.keep_hourly, |t| {
            time::format_datetime_z(t)[..13].to_string()
        }),
        ("daily", policy.keep_daily, |t| {
            time::format_date(t.div_euclid(86_400_000) as i32)
        }),
        ("weekly", policy.keep_weekly, iso_week),
        ("monthly", policy.keep_monthly, |t| {
            time::format_date(t.div_euclid(86_400_000) as i32)[..7].to_string()
        }),
        ("yearly", policy.keep_yearly, |t| {
            time::format_date(t.div_euclid(86_400_000) as i32)[..4].to_string()
        }),
    ];
    for (rule, count, bucket_of) in buckets {
        let mut seen: Vec<String> = Vec::new();
        for decision in decisions.iter_mut() {
            if seen.len() >= count as usize {
                break;
            }
            let bucket = bucket_of(decision.time);
            if !seen.contains(&bucket) {
                decision.reasons.push(format!("{rule} {bucket}"));
                seen.push(bucket);
            }
        }
    }
    for decision in decisions.iter_mut() {
        decision.keep = !decision.reasons.is_empty();
    }
    // The guard: at least N complete snapshots stay.
    let complete = |id: &str| sorted.iter().any(|c| c.id == id && c.complete);
    let mut good = decisions
        .iter()
        .filter(|d| d.keep && complete(&d.id))
        .count();
    for decision in decisions.iter_mut() {
        if good >= policy.keep_at_least_good as usize {
            break;
        }
        if !decision.keep && complete(&decision.id) {
            decision.keep = true;
            decision
                .reasons
                .push(format!("at least {} good", policy.keep_at_least_good));
            good += 1;
        }
    }
    Ok(decisions)
}

/// `2026-W05`: the ISO 8601 week of a time.
fn iso_week(t: i64) -> String {
    let days = t.div_euclid(86_400_000);
    // 1970-01-01 was a Thursday; ISO weeks start on Monday and belong to the year of their
    // Thursday.
    let weekday = (days + 3).rem_euclid(7); // 0 = Monday
    let thursday = days - weekday + 3;
    let (year, _, _) = time::civil_from_days(thursday);
    let jan1 = time::days_from_civil(year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    format!("{year}-W{week:02}")
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn at(text: &str) -> i64 {
        time::parse_datetime(text).expect("a datetime")
    }

    #[rstest]
    #[case::new_year_thursday("2026-01-01T12:00:00Z", "2026-W01")]
    #[case::sunday_before("2025-12-28T12:00:00Z", "2025-W52")]
    #[case::monday_in_week_one("2025-12-29T00:00:00Z", "2026-W01")]
    #[case::long_year("2020-12-31T23:59:59Z", "2020-W53")]
    #[case::early_january_in_last_year("2021-01-03T00:00:00Z", "2020-W53")]
    fn iso_weeks(#[case] when: &str, #[case] week: &str) {
        assert_eq!(iso_week(at(when)), week);
    }

    fn policy(
        last: u32,
        hourly: u32,
        daily: u32,
        weekly: u32,
        monthly: u32,
        yearly: u32,
        good: u32,
    ) -> Retention {
        Retention {
            keep_last: last,
            keep_hourly: hourly,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            keep_yearly: yearly,
            keep_at_least_good: good,
            auto_archived_days: None,
        }
    }

    /// Two snapshots a day at 03:00 and 15:00 for 60 days from 2026-01-01; every fifth is partial.
    fn history() -> Vec<Candidate> {
        (0..120)
            .map(|i| {
                let day = i / 2;
                let hour = if i % 2 == 0 { 3 } else { 15 };
                Candidate {
                    id: format!("s{i:03}"),
                    time: at("2026-01-01T00:00:00Z") + day * 86_400_000 + hour * 3_600_000,
                    complete: i % 5 != 4,
                }
            })
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| format!("{} {}", d.id, d.reasons.join(", ")))
            .collect()
    }

    #[rstest]
    #[case("last_three", policy(3, 0, 0, 0, 0, 0, 1))]
    #[case("daily_week", policy(0, 0, 7, 0, 0, 0, 1))]
    #[case("hourly", policy(0, 4, 0, 0, 0, 0, 1))]
    #[case("weekly_and_monthly", policy(0, 0, 0, 4, 2, 0, 1))]
    #[case("yearly", policy(0, 0, 0, 0, 0, 3, 1))]
    #[case("guard_keeps_good_ones", policy(2, 0, 0, 0, 0, 0, 5))]
    #[case("default_policy", Retention::default())]
    fn retention_table(#[case] name: &str, #[case] policy: Retention) {
        let decisions = decide(&policy, &history()).expect("a policy");
        assert_eq!(decisions.len(), 120);
        insta::assert_snapshot!(format!("retention_{name}"), kept(&decisions).join("\n"));
    }

    #[test]
    fn an_empty_policy_is_refused() {
        assert_eq!(
            decide(&policy(0, 0, 0, 0, 0, 0, 3), &history()),
            Err(EmptyPolicy)
        );
    }

    #[test]
    fn the_guard_counts_only_complete_snapshots() {
        let all_partial: Vec<Candidate> = history()
            .into_iter()
            .map(|c| Candidate {
                complete: false,
                ..c
            })
            .collect();
        let decisions = decide(&policy(1, 0, 0, 0, 0, 0, 3), &all_partial).expect("a policy");
        assert_eq!(
            decisions.iter().filter(|d| d.keep).count(),
            1,
            "nothing complete to guard"
        );
        let decisions = decide(&policy(1, 0, 0, 0, 0, 0, 3), &history()).expect("a policy");
        let good = decisions
            .iter()
            .filter(|d| d.keep && history().iter().any(|c| c.id == d.id && c.complete))
            .count();
        assert_eq!(good, 3);
    }
}
