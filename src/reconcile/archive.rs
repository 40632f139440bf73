//! Tasks whose manifests are gone: archived, then purged when `autoArchivedDays` pass.

use super::Context;
use super::outcome::{TaskResult, skipped};
use super::task::status_change;
use crate::error::Error;
use crate::gitops::Change;
use crate::state::decision::{RemovedDecision, decide_removed};
use crate::state::status::{Phase, TaskStatus};

pub(super) fn purge_after(status: &TaskStatus) -> Option<String> {
    let days = status.auto_archived_days?;
    let at = crate::time::parse_datetime(status.archived_at.as_deref()?)?;
    Some(crate::time::format_datetime_z(
        at + i64::from(days) * 86_400_000,
    ))
}

/// Archives a task whose manifest is gone; purges its snapshots once `autoArchivedDays` pass.
pub(super) fn archive_removed(
    context: &Context<'_>,
    id: &str,
) -> Result<Option<(TaskResult, Vec<Change>)>, Error> {
    let Some(mut status) = crate::project::read_status(context.state, id)? else {
        return Ok(None);
    };
    let now = &context.now;
    match decide_removed(&status, context.now_ms) {
        RemovedDecision::Keep => Ok(None),
        RemovedDecision::Purge => {
            context.hold_store()?;
            let mut changes = Vec::new();
            for snapshot in std::mem::take(&mut status.snapshots) {
                context
                    .store
                    .backend()
                    .delete(&crate::store::snapshot_path(&snapshot.id))?;
                changes.push(Change::remove(format!(
                    "state/{id}/snapshots/{}.enc",
                    snapshot.id
                )));
            }
            status.phase = Phase::Purged;
            status.set_condition(
                "Ready",
                false,
                "Purged",
                "archived data removed from the store; `cairn prune` frees the space",
                now,
            );
            changes.extend(status_change(&status));
            Ok(Some((
                skipped(
                    id,
                    "purged: its archived snapshots were removed from the store",
                ),
                changes,
            )))
        }
        RemovedDecision::Archive => {
            status.phase = Phase::Archived;
            status.archived_at = Some(now.clone());
            status.purge_after = purge_after(&status);
            let kept = match &status.purge_after {
                Some(at) => format!("its data is kept until {at}"),
                None => "its data is kept (no autoArchivedDays)".to_string(),
            };
            status.set_condition(
                "Ready",
                false,
                "Archived",
                "the task's manifest was removed",
                now,
            );
            Ok(Some((
                skipped(id, format!("archived: the manifest was removed; {kept}")),
                status_change(&status),
            )))
        }
    }
}
