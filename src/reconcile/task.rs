//! One task's run: the decision (`state::decision`) carried out under the task's lock, the
//! status moved through its phases (active, suspended, archived), and a failure recorded.

use super::Context;
use super::backup_run::{describe, run_backup};
use super::failure::TaskFailure;
use super::outcome::{TaskResult, failed, skipped};
use crate::gitops::Change;
use crate::manifest::model::BackupTask;
use crate::state::decision::{TaskDecision, decide, environment_name};
use crate::state::schedule;
use crate::state::status::{Phase, Run, RunOutcome, TaskStatus};
use crate::store::lock::{Lock, LockKind};

pub(super) async fn apply_task(
    context: &Context<'_>,
    task: &BackupTask,
    force: bool,
) -> (TaskResult, Vec<Change>, Option<Lock>) {
    // A task that is not due writes nothing, so it needs no lock: an hourly schedule's idle
    // runs leave the store alone. Whether it is due is decided again under the lock.
    if let Ok(Some(peek)) = crate::project::read_status(context.state, &task.id)
        && peek.phase == Phase::Active
        && matches!(
            decide(task, Some(&peek), context.now_ms, force),
            TaskDecision::NotDue { .. }
        )
    {
        return (not_due(task, &peek), Vec::new(), None);
    }
    // Another runner's apply of this task finishes (state pushed) before this one reads it.
    let lock = context.hold_store().and_then(|()| {
        crate::project::store_access::lock(
            context.store,
            LockKind::Task(task.id.clone()),
            context.wait,
        )
    });
    let lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            let failure = TaskFailure::State(e);
            return (failed(&task.id, &failure), Vec::new(), None);
        }
    };
    let read = context
        .state
        .fetch()
        .and_then(|()| crate::project::read_status(context.state, &task.id));
    let status = match read {
        Ok(status) => status.unwrap_or_else(|| TaskStatus {
            task: task.id.clone(),
            environment: environment_name(task.source.environment()).into(),
            ..TaskStatus::default()
        }),
        Err(e) => {
            let failure = TaskFailure::State(e);
            return (failed(&task.id, &failure), Vec::new(), Some(lock));
        }
    };
    let (result, changes) = apply_locked_task(context, task, force, status).await;
    (result, changes, Some(lock))
}

pub(super) async fn apply_locked_task(
    context: &Context<'_>,
    task: &BackupTask,
    force: bool,
    mut status: TaskStatus,
) -> (TaskResult, Vec<Change>) {
    status.name = task.name.clone();
    status.auto_archived_days = task.retention.auto_archived_days;
    let now = &context.now;
    let decision = decide(task, Some(&status), context.now_ms, force);
    if decision == TaskDecision::Suspended {
        if status.phase == Phase::Suspended {
            return (skipped(&task.id, "suspended"), Vec::new());
        }
        status.phase = Phase::Suspended;
        status.set_condition(
            "Ready",
            false,
            "Suspended",
            "suspend: true in the manifest",
            now,
        );
        return (skipped(&task.id, "suspended"), status_change(&status));
    }
    if matches!(status.phase, Phase::Suspended | Phase::Archived) {
        status.phase = Phase::Active;
        status.archived_at = None;
        status.purge_after = None;
    }
    match decision {
        TaskDecision::NotDue { .. } => return (not_due(task, &status), Vec::new()),
        TaskDecision::Refused { .. } => {
            let failure = TaskFailure::Refused(decision.refusal().unwrap_or_default());
            return finish_failed(status, task, &failure, context);
        }
        TaskDecision::Suspended | TaskDecision::BackUp => {}
    }

    let run = tokio::select! {
        run = run_backup(context, task, &mut status) => Some(run),
        () = context.interrupt.wait() => None,
    };
    let Some(run) = run else {
        // Whatever the stopped backup's threads still write, no snapshot names it.
        crate::snapshot::writer::stop_writing();
        let message = "interrupted (Ctrl-C or SIGTERM) before the backup finished; nothing of it was committed, and the next run starts again from the last snapshot";
        status.record(Run {
            time: context.now.clone(),
            outcome: RunOutcome::Interrupted,
            revision: context.revision.clone(),
            snapshot: None,
            api_calls: 0,
            files_downloaded: 0,
            files_downloaded_bytes: 0,
            records: 0,
            message: Some(message.into()),
        });
        let result = TaskResult {
            outcome: Some(RunOutcome::Interrupted),
            ..skipped(&task.id, message)
        };
        return (result, status_change(&status));
    };
    match run {
        Ok((outcome, mut changes, alerts, notes)) => {
            let result = TaskResult {
                task: task.id.clone(),
                outcome: Some(
                    if outcome.manifest.outcome == crate::snapshot::Outcome::Complete {
                        RunOutcome::Success
                    } else {
                        RunOutcome::Partial
                    },
                ),
                message: describe(&outcome),
                snapshot: Some(outcome.snapshot.clone()),
                alerts: alerts.into_iter().map(|a| a.message).collect(),
                warnings: notes
                    .into_iter()
                    .chain(outcome.coverage.warnings())
                    .collect(),
            };
            changes.extend(status_change(&status));
            (result, changes)
        }
        Err(failure) => finish_failed(status, task, &failure, context),
    }
}

pub(super) fn not_due(task: &BackupTask, status: &TaskStatus) -> TaskResult {
    let next = status
        .last_applied_ms()
        .and_then(|last| schedule::next_after(&task.schedule, last))
        .map(crate::time::format_datetime_z)
        .unwrap_or_default();
    skipped(&task.id, format!("not due (next {next})"))
}

pub(super) fn finish_failed(
    mut status: TaskStatus,
    task: &BackupTask,
    failure: &TaskFailure,
    context: &Context<'_>,
) -> (TaskResult, Vec<Change>) {
    let (outcome, message) = match failure.out_of_budget() {
        true => (
            RunOutcome::Partial,
            format!("nothing was backed up and no snapshot was written: {failure}"),
        ),
        false => (RunOutcome::Failed, failure.to_string()),
    };
    let reason = match outcome {
        RunOutcome::Partial => "Partial",
        _ => "Failed",
    };
    status.set_condition("Ready", false, reason, &message, &context.now);
    status.record(Run {
        time: context.now.clone(),
        outcome,
        revision: context.revision.clone(),
        snapshot: None,
        api_calls: 0,
        files_downloaded: 0,
        files_downloaded_bytes: 0,
        records: 0,
        message: Some(message.clone()),
    });
    let result = TaskResult {
        outcome: Some(outcome),
        message,
        ..failed(&task.id, failure)
    };
    (result, status_change(&status))
}

pub(super) fn status_change(status: &TaskStatus) -> Vec<Change> {
    vec![status.write(&status.task)]
}
