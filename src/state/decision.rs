//! What a run does with a task, decided once from its manifest, its recorded status and the
//! time: `plan` shows this decision and `apply` carries out the same one, so the two cannot
//! disagree about what is due, what is refused and what retention forgets.

use crate::manifest::model::{BackupTask, Environment};

use super::retention::{self, Candidate};
use super::schedule;
use super::status::{Phase, SnapshotRow, TaskStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskDecision {
    /// `suspend: true`: nothing runs.
    Suspended,
    /// The manifest changed what a task may never change since its backups began.
    Refused {
        field: &'static str,
        before: String,
        after: String,
    },
    /// Not due by its schedule; `next_ms` is when it is (None: unknown).
    NotDue { next_ms: Option<i64> },
    /// Due (or forced): back it up.
    BackUp,
}

impl TaskDecision {
    /// The refusal's message, for apply's result and the plan.
    pub(crate) fn refusal(&self) -> Option<String> {
        match self {
            TaskDecision::Refused {
                field,
                before,
                after,
            } => Some(format!(
                "{field} changed from {before} to {after}: that forces a new lineage; give the task a new id instead"
            )),
            _ => None,
        }
    }
}

pub(crate) fn environment_name(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "production",
        Environment::Sandbox => "sandbox",
    }
}

/// The decision for `task` at `now_ms`; `force` runs a task that is not due.
pub(crate) fn decide(
    task: &BackupTask,
    status: Option<&TaskStatus>,
    now_ms: i64,
    force: bool,
) -> TaskDecision {
    if task.suspend {
        return TaskDecision::Suspended;
    }
    let environment = environment_name(task.source.environment());
    if let Some(status) = status
        && !status.environment.is_empty()
        && status.environment != environment
    {
        return TaskDecision::Refused {
            field: "source.environment",
            before: status.environment.clone(),
            after: environment.to_string(),
        };
    }
    let last = status.and_then(TaskStatus::last_applied_ms);
    if force || schedule::is_due(&task.schedule, last, now_ms) {
        TaskDecision::BackUp
    } else {
        TaskDecision::NotDue {
            next_ms: last.and_then(|l| schedule::next_after(&task.schedule, l)),
        }
    }
}

/// What a run does with a task whose manifest is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemovedDecision {
    /// Active or suspended: archive it (its data is kept for `autoArchivedDays`, or for good).
    Archive,
    /// Archived, and `autoArchivedDays` have passed: remove its snapshots from the store.
    Purge,
    /// Archived and still kept, or purged already: nothing.
    Keep,
}

/// The decision for a task whose manifest is gone, from its recorded status.
pub(crate) fn decide_removed(status: &TaskStatus, now_ms: i64) -> RemovedDecision {
    match status.phase {
        Phase::Active | Phase::Suspended => RemovedDecision::Archive,
        Phase::Archived
            if status
                .purge_after
                .as_deref()
                .and_then(crate::time::parse_datetime)
                .is_some_and(|at| at <= now_ms) =>
        {
            RemovedDecision::Purge
        }
        Phase::Archived | Phase::Purged => RemovedDecision::Keep,
    }
}

/// The snapshots of `snapshots` that the task's retention no longer keeps (none when the
/// policy keeps nothing, which manifests cannot say).
pub(crate) fn forgotten(task: &BackupTask, snapshots: &[SnapshotRow]) -> Vec<retention::Decision> {
    if !task.retention.keeps_anything() {
        return Vec::new();
    }
    let candidates: Vec<Candidate> = snapshots
        .iter()
        .map(|s| Candidate {
            id: s.id.clone(),
            time: crate::time::parse_datetime(&s.time).unwrap_or(0),
            complete: s.complete,
        })
        .collect();
    retention::decide(&task.retention, &candidates)
        .map(|decisions| decisions.into_iter().filter(|d| !d.keep).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::status::{Run, RunOutcome};

    const NOON: &str = "2026-03-02T12:00:00Z";

    fn task(suspend: bool, environment: &str) -> BackupTask {
        let yaml = format!(
            "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nsuspend: {suspend}\nschedule: \"0 3 * * *\"\nsource:\n  type: salesforce\n  environment: {environment}\n  auth:\n    jwt: {{clientIdEnv: A, username: u@x.com, privateKeyEnv: B}}\n"
        );
        match serde_yaml::from_str(&yaml) {
            Ok(task) => task,
            Err(e) => panic!("the test's task does not read: {e}"),
        }
    }

    /// A status whose last backup ran at `last` in `environment`.
    fn status(environment: &str, last: &str) -> TaskStatus {
        TaskStatus {
            environment: environment.into(),
            last_applied: Some(Run {
                time: last.into(),
                outcome: RunOutcome::Success,
                revision: None,
                snapshot: None,
                api_calls: 0,
                files_downloaded: 0,
                files_downloaded_bytes: 0,
                records: 0,
                message: None,
            }),
            ..TaskStatus::default()
        }
    }

    #[rstest::rstest]
    #[case::never_run_is_due(false, "production", None, false, "BackUp")]
    #[case::ran_today_is_not_due(false, "production", Some(("production", "2026-03-02T03:00:00Z")), false, "NotDue")]
    #[case::ran_yesterday_is_due(false, "production", Some(("production", "2026-03-01T03:00:00Z")), false, "BackUp")]
    #[case::force_runs_what_is_not_due(false, "production", Some(("production", "2026-03-02T03:00:00Z")), true, "BackUp")]
    #[case::a_changed_environment_is_refused_even_when_not_due(false, "sandbox", Some(("production", "2026-03-02T03:00:00Z")), false, "Refused")]
    #[case::suspend_comes_before_anything(true, "sandbox", Some(("production", "2026-03-01T03:00:00Z")), true, "Suspended")]
    fn decisions(
        #[case] suspend: bool,
        #[case] environment: &str,
        #[case] recorded: Option<(&str, &str)>,
        #[case] force: bool,
        #[case] expected: &str,
    ) {
        let now = crate::time::parse_datetime(NOON).unwrap_or_default();
        let status = recorded.map(|(environment, last)| status(environment, last));
        let decision = decide(&task(suspend, environment), status.as_ref(), now, force);
        let name = format!("{decision:?}");
        assert!(name.starts_with(expected), "{name}");
        assert_eq!(decision.refusal().is_some(), expected == "Refused");
    }
}
