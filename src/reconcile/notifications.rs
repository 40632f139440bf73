//! The events a task's run raises, each with the context its notification templates receive.

use super::outcome::TaskResult;
use crate::manifest::model::BackupTask;
use crate::state::decision::environment_name;
use crate::state::status::{Phase, RunOutcome, TaskStatus};

/// The events a task's run raises, each with the context its templates receive.
pub(super) fn notification_contexts(
    task: &BackupTask,
    result: &TaskResult,
    status: Option<&TaskStatus>,
    now: &str,
) -> Vec<crate::notify::NotificationContext> {
    use crate::notify::{AlertInfo, ConnectionInfo, NotificationContext, RunInfo, TaskInfo};
    let disconnected = status.and_then(TaskStatus::connected) == Some(false);
    let mut events = Vec::new();
    let outcome = match result.outcome {
        Some(RunOutcome::Success) => {
            events.push("success");
            "success"
        }
        Some(RunOutcome::Partial) => {
            events.push("partial");
            "partial"
        }
        Some(RunOutcome::Failed) if disconnected => {
            events.push("disconnected");
            if status.is_some_and(|s| s.phase == Phase::Archived) {
                events.push("archived");
            }
            "failed"
        }
        Some(RunOutcome::Failed) => {
            events.push("failure");
            "failed"
        }
        // The operator stopped it: nothing to tell anyone.
        Some(RunOutcome::Interrupted) | None => return Vec::new(),
    };
    if !result.alerts.is_empty() || !result.warnings.is_empty() {
        events.push("warning");
    }
    let run = status.and_then(|s| s.last_attempted.clone());
    let connection = status.and_then(|s| s.condition("Connected"));
    events
        .into_iter()
        .map(|event| NotificationContext {
            event: event.to_string(),
            outcome: outcome.to_string(),
            task: TaskInfo {
                id: task.id.clone(),
                name: task.name.clone(),
                environment: environment_name(task.source.environment()).to_string(),
            },
            run: RunInfo {
                finished_at: now.to_string(),
                snapshot: result.snapshot.clone(),
                api_calls: run.as_ref().map_or(0, |r| r.api_calls),
                records: run.as_ref().map_or(0, |r| r.records),
                message: result.message.clone(),
            },
            alerts: result
                .alerts
                .iter()
                .map(|a| AlertInfo {
                    object: a.split(':').next().unwrap_or_default().to_string(),
                    reason: a.clone(),
                })
                .chain(result.warnings.iter().map(|w| AlertInfo {
                    object: "objects.include".to_string(),
                    reason: w.clone(),
                }))
                .collect(),
            connection: ConnectionInfo {
                connected: connection.is_some_and(|c| c.status == "True"),
                reason: connection.map(|c| c.reason.clone()).unwrap_or_default(),
            },
        })
        .collect()
}
