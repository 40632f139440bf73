//! What a run reports: each task's result, the run's outcome and exit status, its rendering,
//! and the state commit's message.

use std::fmt::Write as _;

use serde::Serialize;

use super::failure::TaskFailure;
use crate::exit::ExitStatus;
use crate::state::restore_record::RestoreEnd;
use crate::state::status::RunOutcome;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task: String,
    /// None: not due, suspended, or a dry run.
    pub outcome: Option<RunOutcome>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Data-loss thresholds this run crossed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// What the backup could not do as the manifest asks (an include pattern that matches no
    /// object); never fails the run, even with --fail-on-alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What became of a restore manifest (`restores/<id>.yaml`) in this run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRun {
    pub id: String,
    pub target: String,
    /// None: it did not run to its end (an error, or a dry run), and runs on the next apply.
    pub end: Option<RestoreEnd>,
    /// It could not run (the next apply tries again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    pub results: Vec<TaskResult>,
    /// Restore manifests carried out (those carried out before are not listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<RestoreRun>,
    /// The state commit, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What made the store's new data durable beyond this machine (the git store's push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_published: Option<String>,
    pub pushed: bool,
    #[serde(skip)]
    pub fail_on_alert: bool,
    /// Ctrl-C or SIGTERM came while the run worked: what it finished is committed, and it
    /// exits as interrupted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Notifications sent, and those that failed (never affecting the outcome).
    pub deliveries: Vec<crate::notify::Delivery>,
}

impl ApplyOutcome {
    /// Failure when a task failed (or, with `--fail-on-alert`, raised an alert), Partial when
    /// one was partial, Interrupted when a signal stopped the run.
    pub fn exit_status(&self) -> ExitStatus {
        let outcomes: Vec<RunOutcome> = self.results.iter().filter_map(|r| r.outcome).collect();
        let alerted = self.fail_on_alert && self.results.iter().any(|r| !r.alerts.is_empty());
        let restore_failed = self
            .restores
            .iter()
            .any(|r| r.error || r.end == Some(RestoreEnd::Failed));
        let restore_partial = self
            .restores
            .iter()
            .any(|r| r.end == Some(RestoreEnd::Partial));
        if self.interrupted || outcomes.contains(&RunOutcome::Interrupted) {
            ExitStatus::Interrupted
        } else if outcomes.contains(&RunOutcome::Failed) || alerted || restore_failed {
            ExitStatus::Failure
        } else if outcomes.contains(&RunOutcome::Partial) || restore_partial {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let word = match result.outcome {
                Some(RunOutcome::Success) => "success",
                Some(RunOutcome::Partial) => "partial",
                Some(RunOutcome::Failed) => "FAILED ",
                Some(RunOutcome::Interrupted) => "stopped",
                None => "skipped",
            };
            let _ = writeln!(out, "{word}  {:<24} {}", result.task, result.message);
            for alert in &result.alerts {
                let _ = writeln!(out, "  ALERT  {alert}");
            }
            for warning in &result.warnings {
                let _ = writeln!(out, "  WARNING  {warning}");
            }
        }
        for run in &self.restores {
            let word = match (run.error, run.end) {
                (true, _) | (_, Some(RestoreEnd::Failed)) => "FAILED ",
                (_, Some(RestoreEnd::Partial)) => "partial",
                (_, Some(RestoreEnd::Completed)) => "restore",
                (_, None) => "pending",
            };
            let _ = writeln!(
                out,
                "{word}  {:<24} {}",
                format!("restores/{}", run.id),
                run.message
            );
        }
        for delivery in &self.deliveries {
            match &delivery.error {
                None => {
                    let _ = writeln!(
                        out,
                        "notified {} via {} ({})",
                        delivery.task, delivery.channel, delivery.event
                    );
                }
                Some(why) => {
                    let _ = writeln!(
                        out,
                        "NOT notified {} via {} ({}): {why}; the backup is unaffected",
                        delivery.task, delivery.channel, delivery.event
                    );
                }
            }
        }
        if let Some(published) = &self.store_published {
            let _ = writeln!(out, "store: {published}");
        }
        match &self.commit {
            Some(commit) => {
                let _ = writeln!(
                    out,
                    "state committed: {}{}",
                    &commit[..commit.len().min(12)],
                    if self.pushed { " (pushed)" } else { "" }
                );
            }
            None => out.push_str("state unchanged: nothing committed\n"),
        }
        if self.interrupted {
            out.push_str("interrupted: the run stopped early; what it finished is committed above, and the next run does the rest\n");
        }
        out
    }
}

pub(super) fn commit_message(results: &[TaskResult], now: &str) -> String {
    let count = |o: RunOutcome| results.iter().filter(|r| r.outcome == Some(o)).count();
    let mut summary = Vec::new();
    for (outcome, word) in [
        (RunOutcome::Success, "backed up"),
        (RunOutcome::Partial, "partial"),
        (RunOutcome::Failed, "failed"),
        (RunOutcome::Interrupted, "interrupted"),
    ] {
        let n = count(outcome);
        if n > 0 {
            summary.push(format!("{n} {word}"));
        }
    }
    if summary.is_empty() {
        summary.push("state updated".into());
    }
    let mut message = format!("cairn apply {now}: {}\n\n", summary.join(", "));
    for result in results {
        let _ = writeln!(message, "{}: {}", result.task, result.message);
    }
    message
}

pub(super) fn skipped(task: &str, message: impl Into<String>) -> TaskResult {
    TaskResult {
        task: task.to_string(),
        outcome: None,
        message: message.into(),
        snapshot: None,
        alerts: Vec::new(),
        warnings: Vec::new(),
    }
}

pub(super) fn failed(task: &str, failure: &TaskFailure) -> TaskResult {
    TaskResult {
        task: task.to_string(),
        outcome: Some(RunOutcome::Failed),
        message: failure.to_string(),
        snapshot: None,
        alerts: Vec::new(),
        warnings: Vec::new(),
    }
}
