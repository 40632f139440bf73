//! `state/<task>/status.yaml`: a task's observed state, Flux-style conditions plus the facts a
//! reviewer wants at a glance. Written only by `cairn apply`; read by plan, status and apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Runs kept in `history`.
pub(crate) const HISTORY: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Phase {
    #[default]
    Active,
    Suspended,
    /// Its manifest was removed or its org is gone; data kept until `purgeAfter`.
    Archived,
    /// Archived and past its retention: its snapshots were removed from the store.
    Purged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Success,
    Partial,
    Failed,
    /// Stopped by Ctrl-C or SIGTERM: not the task's health, only its history.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub time: String,
    pub outcome: RunOutcome,
    /// The config repository commit whose manifests the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub api_calls: u64,
    #[serde(default)]
    pub records: u64,
    /// File bodies the run downloaded, and their bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_downloaded: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_downloaded_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRow {
    pub id: String,
    pub time: String,
    pub complete: bool,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub task: String,
    #[serde(default)]
    pub name: String,
    /// production or sandbox, as first backed up: fixed for the task's life.
    #[serde(default)]
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// From the last manifest's `retention.autoArchivedDays`; absent keeps archived data forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_archived_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted: Option<Run>,
    /// The last run that stored a snapshot (complete or partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Run>,
    /// Records per object in the latest snapshot.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// The task's snapshots in the store, newest first.
    #[serde(default)]
    pub snapshots: Vec<SnapshotRow>,
    /// The latest runs, newest first.
    #[serde(default)]
    pub history: Vec<Run>,
}

impl TaskStatus {
    pub fn path(task: &str) -> String {
        format!("state/{task}/status.yaml")
    }

    pub fn parse(bytes: &[u8]) -> Result<TaskStatus, String> {
        serde_yaml::from_slice(bytes).map_err(|e| e.to_string())
    }

    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).unwrap_or_default();
        format!("# Written by `cairn apply`; observed state, not configuration.\n{body}")
    }

    /// The state-branch change that writes this status as task `task`'s. A run that commits
    /// after another replays its changes over the other's (`merge_replayed`), so concurrent
    /// writers never drop each other's snapshots.
    pub fn write(&self, task: &str) -> crate::gitops::Change {
        crate::gitops::Change::write_merged(
            TaskStatus::path(task),
            self.to_yaml(),
            TaskStatus::merge_replayed,
        )
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Sets a condition; its transition time moves only when its status changes.
    pub fn set_condition(
        &mut self,
        kind: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: &str,
    ) {
        let status = if status { "True" } else { "False" };
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(condition) => {
                if condition.status != status {
                    condition.last_transition_time = now.to_string();
                }
                condition.status = status.to_string();
                condition.reason = reason.to_string();
                condition.message = message.to_string();
            }
            None => self.conditions.push(Condition {
                kind: kind.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_time: now.to_string(),
            }),
        }
    }

    pub fn record(&mut self, run: Run) {
        if run.snapshot.is_some() {
            self.last_applied = Some(run.clone());
        }
        if run.outcome != RunOutcome::Interrupted {
            self.last_attempted = Some(run.clone());
        }
        self.history.insert(0, run);
        self.history.truncate(HISTORY);
    }

    /// Joins two runners' versions of one task's status when a state push is replayed on the
    /// other's: every snapshot and run either recorded is kept (a snapshot another runner
    /// pushed is never dropped), except those this run removed on purpose (retention), and the
    /// newer of the two latest runs wins.
    pub fn merge_replayed(base: Option<&[u8]>, theirs: &[u8], ours: &[u8]) -> Vec<u8> {
        let (Ok(theirs), Ok(mut merged)) = (TaskStatus::parse(theirs), TaskStatus::parse(ours))
        else {
            return ours.to_vec();
        };
        let base = base
            .and_then(|b| TaskStatus::parse(b).ok())
            .unwrap_or_default();
        for row in theirs.snapshots.iter() {
            let new_to_us = !base.snapshots.iter().any(|b| b.id == row.id);
            if new_to_us && !merged.snapshots.iter().any(|o| o.id == row.id) {
                merged.snapshots.push(row.clone());
            }
        }
        merged
            .snapshots
            .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
        for run in theirs.history.iter() {
            if !base.history.contains(run) && !merged.history.contains(run) {
                merged.history.push(run.clone());
            }
        }
        merged.history.sort_by(|a, b| b.time.cmp(&a.time));
        merged.history.truncate(HISTORY);
        let newer = |a: &Option<Run>, b: &Option<Run>| match (a, b) {
            (Some(a), Some(b)) => b.time > a.time,
            (None, Some(_)) => true,
            _ => false,
        };
        if newer(&merged.last_applied, &theirs.last_applied) {
            merged.last_applied = theirs.last_applied.clone();
            merged.counts = theirs.counts.clone();
        }
        if newer(&merged.last_attempted, &theirs.last_attempted) {
            merged.last_attempted = theirs.last_attempted.clone();
        }
        merged.to_yaml().into_bytes()
    }

    pub fn last_applied_ms(&self) -> Option<i64> {
        self.last_applied
            .as_ref()
            .and_then(|r| crate::time::parse_datetime(&r.time))
    }

    /// Connected, as of the last check; None when never checked.
    pub fn connected(&self) -> Option<bool> {
        self.condition("Connected").map(|c| c.status == "True")
    }

    /// Healthy, Degraded, Stale, Suspended, Archived or Purged, for people.
    pub fn health(&self, stale: bool) -> &'static str {
        match self.phase {
            Phase::Suspended => "Suspended",
            Phase::Archived => "Archived",
            Phase::Purged => "Purged",
            Phase::Active if stale => "Stale",
            Phase::Active => match self.last_attempted.as_ref().map(|r| r.outcome) {
                Some(RunOutcome::Success) => "Healthy",
                None => "New",
                Some(_) => "Degraded",
            },
        }
    }
}

/// `state/<task>/coverage.yaml`: what the task's last backup covered. Apply writes it; plan
/// reads it to tell what a changed include/exclude will add or drop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CoverageFile {
    pub backed_up: Vec<String>,
    /// Object -> why it is not backed up.
    #[serde(default)]
    pub skipped: BTreeMap<String, String>,
    /// `Object.Field` -> why its values are not in the backup, for objects backed up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields_left_out: BTreeMap<String, String>,
    /// Include patterns that match no object: pattern -> what it most likely meant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unmatched_includes: BTreeMap<String, String>,
    /// The org's other objects, left out by include/exclude; None in files written before it
    /// was recorded.
    #[serde(default)]
    pub excluded: Option<Vec<String>>,
    /// The metadata types backed up through the Metadata API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_types: Vec<String>,
    /// `Type:FullName` -> why the component's files are not in the backup.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components_left_out: BTreeMap<String, String>,
    /// Body object (`ContentVersion.VersionData`) -> how many bodies were left out, and why
    /// (counts and reasons only: a file's name is the org's data); `waiting` -> the bodies the
    /// next run fetches first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_left_out: BTreeMap<String, String>,
}

impl CoverageFile {
    pub(crate) fn path(task: &str) -> String {
        format!("state/{task}/coverage.yaml")
    }

    pub(crate) fn parse(bytes: &[u8]) -> Option<CoverageFile> {
        serde_yaml::from_slice(bytes).ok()
    }

    pub(crate) fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(time: &str, snapshot: &str) -> Run {
        Run {
            time: time.into(),
            outcome: RunOutcome::Success,
            revision: None,
            snapshot: Some(snapshot.into()),
            api_calls: 1,
            files_downloaded: 0,
            files_downloaded_bytes: 0,
            records: 1,
            message: None,
        }
    }

    fn row(id: &str, time: &str) -> SnapshotRow {
        SnapshotRow {
            id: id.into(),
            time: time.into(),
            complete: true,
            records: 1,
        }
    }

    fn status(rows: &[(&str, &str)]) -> TaskStatus {
        let mut status = TaskStatus {
            task: "acme".into(),
            ..TaskStatus::default()
        };
        for (id, time) in rows {
            status.snapshots.insert(0, row(id, time));
            status.record(run(time, id));
        }
        status
    }

    #[test]
    fn a_replayed_status_keeps_the_other_runners_snapshot_and_drops_what_retention_removed() {
        let base = status(&[("a", "2026-01-01T00:00:00Z"), ("b", "2026-01-02T00:00:00Z")]);
        // The other runner pushed snapshot c; this run forgot a and added d.
        let theirs = status(&[
            ("a", "2026-01-01T00:00:00Z"),
            ("b", "2026-01-02T00:00:00Z"),
            ("c", "2026-01-03T00:00:00Z"),
        ]);
        let mut ours = status(&[("b", "2026-01-02T00:00:00Z"), ("d", "2026-01-03T00:05:00Z")]);
        ours.history.retain(|r| r.snapshot.as_deref() != Some("a"));
        let merged = TaskStatus::parse(&TaskStatus::merge_replayed(
            Some(base.to_yaml().as_bytes()),
            theirs.to_yaml().as_bytes(),
            ours.to_yaml().as_bytes(),
        ))
        .expect("merged");
        let ids: Vec<&str> = merged.snapshots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["d", "c", "b"]);
        let runs: Vec<Option<&str>> = merged
            .history
            .iter()
            .map(|r| r.snapshot.as_deref())
            .collect();
        assert_eq!(runs, [Some("d"), Some("c"), Some("b")]);
        assert_eq!(
            merged.last_applied.and_then(|r| r.snapshot),
            Some("d".into())
        );
    }
}
