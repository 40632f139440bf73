//! Deciding how each object is fetched this run: in full (and why) or as an incremental window
//! since it was last current, reaching back into the last window by an overlap.

use super::BackupOptions;
use crate::source::{FetchWindow, ObjectPlan};

/// How one object is fetched this run.
pub(super) struct Job<'a> {
    pub(super) plan: &'a ObjectPlan,
    /// Why in full; None for an incremental.
    pub(super) full_reason: Option<String>,
    pub(super) window: FetchWindow,
}

const DAY_MS: i64 = 86_400_000;
/// How far each incremental window reaches back into the previous one.
pub const WINDOW_OVERLAP_MS: i64 = 5 * 60_000;

pub(super) fn plan_job<'a>(
    plan: &'a ObjectPlan,
    previous: Option<&crate::snapshot::ObjectEntry>,
    snapshot_until: Option<&str>,
    now: &str,
    now_ms: i64,
    options: &BackupOptions,
) -> Job<'a> {
    let field_names: Vec<&str> = plan.fields.iter().map(|f| f.name.as_str()).collect();
    let since = previous.and_then(|p| p.until.as_deref().or(snapshot_until));
    let since_ms = since.and_then(crate::time::parse_datetime);
    let full_age_days = previous
        .and_then(|p| p.full_at.as_deref())
        .and_then(crate::time::parse_datetime)
        .map(|at| (now_ms - at) / DAY_MS);
    let full_reason = if let Some(reason) = options.full_because.get(&plan.name) {
        Some(reason.clone())
    } else if !plan.incremental {
        Some(
            plan.always_full
                .clone()
                .unwrap_or_else(|| "the object has no SystemModstamp".to_string()),
        )
    } else if plan.removals_unseen && !options.count_check {
        Some(
            "its removals leave no trace but a lower count, and the count check is off".to_string(),
        )
    } else if previous.is_none() || since_ms.is_none() {
        Some("first backup of the object".to_string())
    } else if previous.is_some_and(|p| p.fields != field_names) {
        Some("its fields changed".to_string())
    } else if previous.is_some_and(|p| p.scope != plan.scope) {
        Some("what it covers changed".to_string())
    } else if since_ms.is_some_and(|since| since - WINDOW_OVERLAP_MS > now_ms) {
        // The last window ended beyond the org's present by more than the overlap (it was
        // bounded by a clock ahead of the org's, before windows followed the org's clock): a
        // window from there would skip what changed in between.
        Some("the last window ended in the org's future (clocks disagreed)".to_string())
    } else if options.full_every_days > 0 {
        match full_age_days {
            None => Some("no full fetch on record".to_string()),
            Some(days) if days >= i64::from(options.full_every_days) => Some(format!(
                "the periodic full fetch is due (last one {days} days ago)"
            )),
            Some(_) => None,
        }
    } else {
        None
    };
    match (full_reason, since_ms) {
        // Windows overlap: a change committed late with an earlier stamp, or in the very
        // millisecond a window ended, is still seen.
        (None, Some(since_ms)) => Job {
            plan,
            full_reason: None,
            window: FetchWindow::Changes {
                since_ms,
                from_ms: since_ms - WINDOW_OVERLAP_MS,
                to: now.to_string(),
            },
        },
        (reason, _) => Job {
            plan,
            full_reason: Some(reason.unwrap_or_else(|| "first backup of the object".into())),
            window: FetchWindow::Full,
        },
    }
}

/// The objects the source now lists in part where the parent had them under another recorded
/// scope (whole), and why they stay as the parent has them: a fetch could not tell what went
/// out of sight from what was deleted.
pub(super) fn held_back<'a>(
    plans: &'a [ObjectPlan],
    parent: Option<&crate::snapshot::SnapshotManifest>,
) -> (Vec<&'a str>, Option<String>) {
    let held: Vec<&ObjectPlan> = plans
        .iter()
        .filter(|plan| {
            plan.narrowed.is_some()
                && parent
                    .and_then(|m| m.objects.get(&plan.name))
                    .is_some_and(|previous| {
                        previous.scope.is_some() && previous.scope != plan.scope
                    })
        })
        .collect();
    let names: Vec<&str> = held.iter().map(|plan| plan.name.as_str()).collect();
    let reason = held.first().and_then(|plan| plan.narrowed.as_ref()).map(|why| {
        format!(
            "{} kept as the last backup had them: {why}, and a fetch now would take what is out of sight for deleted",
            names.join(", ")
        )
    });
    (names, reason)
}
