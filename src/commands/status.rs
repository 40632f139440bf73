//! `cairn status`: one row per task, readable at a glance — connection, health, last backup,
//! next due, API calls — from the state branch (no credentials needed), or with
//! `--check-connection` a live login check.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::source::{Connection, Connector};
use crate::state::schedule;

#[derive(Debug, Clone)]
pub struct StatusOptions {
    pub dir: PathBuf,
    pub tasks: Vec<String>,
    pub check_connection: bool,
    /// The time to judge staleness at (default: now).
    pub at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub task: String,
    pub name: String,
    pub connection: String,
    pub health: String,
    pub last_backup: Option<String>,
    pub last_outcome: Option<String>,
    pub next_due: Option<String>,
    pub api_calls: Option<u64>,
    pub records: u64,
    pub message: Option<String>,
}

/// The status table, and whether a connection checked live (`--check-connection`) is down:
/// a check that finds a task Disconnected fails, so a scheduled check turns red. As JSON, the
/// array of rows.
#[derive(Debug, Clone)]
pub struct StatusOutcome {
    pub rows: Vec<StatusRow>,
    /// Each task a live check found not connected, with why and what to do.
    pub disconnected: Vec<(String, String)>,
}

impl Serialize for StatusOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(serializer)
    }
}

impl Report for StatusOutcome {
    /// Failure when a checked task is Disconnected.
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::from_ok(self.disconnected.is_empty())
    }

    fn text(&self) -> String {
        let mut out = format!(
            "{:<24} {:<28} {:<10} {:<25} {:<25} {:>9} {:>10}\n",
            "TASK", "CONNECTION", "HEALTH", "LAST BACKUP", "NEXT DUE", "API CALLS", "RECORDS"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<24} {:<28} {:<10} {:<25} {:<25} {:>9} {:>10}",
                row.task,
                row.connection,
                row.health,
                row.last_backup.as_deref().unwrap_or("never"),
                row.next_due.as_deref().unwrap_or("-"),
                row.api_calls
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                row.records
            );
            if let Some(message) = &row.message
                && row.health != "Healthy"
            {
                let _ = writeln!(out, "    {message}");
            }
        }
        for (task, problem) in &self.disconnected {
            let _ = writeln!(out, "error: {task} is not connected: {problem}");
        }
        out
    }
}

pub async fn status(options: &StatusOptions, env: Env<'_>) -> Result<StatusOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let config = project.config();
    // An unreachable remote still leaves the local state to show.
    let state = project.state_fetched_if_reachable()?;
    let now = options.at.unwrap_or_else(crate::time::now_ms);
    let mut ids: Vec<String> = config.tasks.iter().map(|t| t.task.id.clone()).collect();
    for id in state.list("state")? {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut rows = Vec::new();
    let mut disconnected = Vec::new();
    for id in ids {
        if !options.tasks.is_empty() && !options.tasks.contains(&id) {
            continue;
        }
        let task = config
            .tasks
            .iter()
            .find(|t| t.task.id == id)
            .map(|t| &t.task);
        let status = project.status(&id)?.unwrap_or_default();
        let schedule_text = task.map(|t| t.schedule.as_str()).unwrap_or("0 3 * * *");
        let last = status.last_applied_ms();
        let next_due = last.and_then(|l| schedule::next_after(schedule_text, l));
        // Stale: a whole further schedule period passed after the run that was due.
        let stale = next_due
            .and_then(|next| schedule::next_after(schedule_text, next))
            .is_some_and(|after| after <= now);
        let mut connection = match status.connected() {
            Some(true) => "Connected".to_string(),
            Some(false) => format!(
                "Disconnected ({})",
                status
                    .condition("Connected")
                    .map(|c| c.reason.as_str())
                    .unwrap_or("")
            ),
            None => "Unknown".to_string(),
        };
        if options.check_connection
            && let Some(task) = task
        {
            let (live, problem) = match crate::project::connect::connector(task, env) {
                Ok(connector) => match connector.check_connection().await {
                    Connection::Connected { .. } => ("Connected".to_string(), None),
                    Connection::Disconnected {
                        reason: crate::source::DisconnectReason::Unreachable,
                        detail,
                    } => (
                        "Unreachable".to_string(),
                        Some(format!(
                            "the org could not be reached ({detail}); check the network and source.loginUrl (the credentials were not tried)"
                        )),
                    ),
                    Connection::Disconnected { reason, detail } => (
                        format!("Disconnected ({reason:?})"),
                        Some(format!(
                            "{detail}; run `cairn auth login --task {id}`, or fix the connected app"
                        )),
                    ),
                },
                Err(e) => (
                    "Disconnected (Config)".to_string(),
                    Some(format!("{e}; {}", e.guidance())),
                ),
            };
            connection = live;
            if let Some(problem) = problem {
                disconnected.push((id.clone(), problem));
            }
        }
        let mut health = status.health(stale).to_string();
        if task.is_some_and(|t| t.suspend) {
            health = "Suspended".into();
        }
        rows.push(StatusRow {
            task: id.clone(),
            name: task.map(|t| t.name.clone()).unwrap_or(status.name.clone()),
            connection,
            health,
            last_backup: status.last_applied.as_ref().map(|r| r.time.clone()),
            last_outcome: status
                .last_attempted
                .as_ref()
                .map(|r| format!("{:?}", r.outcome).to_lowercase()),
            next_due: match last {
                None if task.is_some() => Some("now".to_string()),
                _ => next_due.map(crate::time::format_datetime_z),
            },
            api_calls: status.last_attempted.as_ref().map(|r| r.api_calls),
            records: status.counts.values().sum(),
            message: status
                .last_attempted
                .as_ref()
                .and_then(|r| r.message.clone()),
        });
    }
    Ok(StatusOutcome { rows, disconnected })
}
