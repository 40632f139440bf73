//! `cairn apply`: every task that is due is backed up, retention applied, and the observed
//! state written to the state branch in one commit. One task failing never stops the others.

mod index;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::backup::{BackupOutcome, backup};
use crate::diff::summary::Triggered;
use crate::error::Error;
use crate::gitops::{Change, StateBranch};
use crate::manifest::model::{BackupTask, Repository};
use crate::project::{Project, connect};
use crate::snapshot::writer::load_manifest;
use crate::source::Connector as _;
use crate::source::{Connection, DisconnectReason};
use crate::state::decision::{TaskDecision, decide, environment_name, forgotten};
use crate::state::schedule;
use crate::state::status::{self, Phase, Run, RunOutcome, SnapshotRow, TaskStatus};
use crate::store::lock::{Lock, LockKind};
use crate::store::{Store, StoreError};

pub use crate::project::Env;

/// The exit code of a run stopped by Ctrl-C or SIGTERM, as shells report a SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dir: PathBuf,
    /// Only these tasks (all when empty).
    pub tasks: Vec<String>,
    /// Run the chosen tasks whether or not they are due.
    pub force: bool,
    /// Say what would run; write nothing.
    pub dry_run: bool,
    /// The time to act at (default: now). Tests and replays set it.
    pub at: Option<String>,
    /// Exit non-zero when a data-loss alert fires.
    pub fail_on_alert: bool,
    /// Run even though manifests have uncommitted changes (the revision is recorded as
    /// `<commit>-dirty`).
    pub allow_dirty: bool,
    /// How long to wait for a prune or forget, or another runner's apply of the same task,
    /// before giving up on a task.
    pub wait: std::time::Duration,
    /// Set by Ctrl-C or SIGTERM: the running backup stops and is recorded as interrupted.
    pub interrupt: Interrupt,
}

/// A request to stop, shared between the signal handler and the run.
#[derive(Clone, Default)]
pub struct Interrupt(std::sync::Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl Interrupt {
    pub fn trigger(&self) {
        self.0.0.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once the run is asked to stop.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interrupt({})", self.is_set())
    }
}

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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    pub results: Vec<TaskResult>,
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
    /// 1 when a task failed (or, with `--fail-on-alert`, raised an alert), 3 when one was
    /// partial, else 0.
    pub fn exit_code(&self) -> u8 {
        let outcomes: Vec<RunOutcome> = self.results.iter().filter_map(|r| r.outcome).collect();
        let alerted = self.fail_on_alert && self.results.iter().any(|r| !r.alerts.is_empty());
        if self.interrupted || outcomes.contains(&RunOutcome::Interrupted) {
            EXIT_INTERRUPTED
        } else if outcomes.contains(&RunOutcome::Failed) || alerted {
            1
        } else if outcomes.contains(&RunOutcome::Partial) {
            3
        } else {
            0
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

/// A run's context: what every task shares.
struct Context<'a> {
    repository: &'a Repository,
    store: &'a Store,
    state: &'a StateBranch,
    revision: Option<String>,
    now: String,
    now_ms: i64,
    env: Env<'a>,
    wait: std::time::Duration,
    interrupt: &'a Interrupt,
    /// The run's shared lock on the store, taken by the first task that works: held from
    /// before any parent is read until the state naming the new data is pushed, so a prune or
    /// forget never removes what this run builds on or has just written.
    store_lock: std::sync::OnceLock<Lock>,
}

impl Context<'_> {
    /// Takes the run's store lock, unless it is held already.
    fn hold_store(&self) -> Result<(), Error> {
        if self.store_lock.get().is_none() {
            let lock = crate::project::store_access::lock(self.store, LockKind::Backup, self.wait)?;
            let _ = self.store_lock.set(lock);
        }
        Ok(())
    }
}

pub async fn apply(options: &ApplyOptions, env: Env<'_>) -> Result<ApplyOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let config = project.config();
    let repository = project.repository()?;
    let now_ms = match &options.at {
        Some(at) => crate::time::parse_datetime(at).ok_or_else(|| Error::Usage {
            message: format!("--at {at:?} is not an ISO 8601 time"),
            next: "write it like 2026-01-31T03:00:00Z".into(),
        })?,
        None => crate::time::now_ms(),
    };
    let now = crate::time::format_datetime_z(now_ms);
    let state = project.fetch_state()?;
    for id in &options.tasks {
        project.task(id)?;
    }
    let chosen = |id: &str| options.tasks.is_empty() || options.tasks.iter().any(|t| t == id);

    let mut results = Vec::new();
    if options.dry_run {
        for loaded in config.tasks.iter().filter(|t| chosen(&t.task.id)) {
            let status = project.status(&loaded.task.id)?;
            let decision = decide(&loaded.task, status.as_ref(), now_ms, options.force);
            results.push(TaskResult {
                task: loaded.task.id.clone(),
                outcome: None,
                message: match &decision {
                    TaskDecision::Suspended => "suspended".into(),
                    TaskDecision::BackUp => "due: would back up (dry run)".into(),
                    TaskDecision::NotDue { .. } => "not due".into(),
                    TaskDecision::Refused { .. } => {
                        format!("refused: {}", decision.refusal().unwrap_or_default())
                    }
                },
                snapshot: None,
                alerts: Vec::new(),
                warnings: Vec::new(),
            });
        }
        return Ok(ApplyOutcome {
            results,
            commit: None,
            store_published: None,
            pushed: false,
            fail_on_alert: options.fail_on_alert,
            interrupted: options.interrupt.is_set(),
            deliveries: Vec::new(),
        });
    }

    // The state records which revision of the manifests ran: it must be one that exists.
    let dirty = state.uncommitted_manifests(&options.dir)?;
    let mut revision = state.config_revision();
    if !dirty.is_empty() {
        if !options.allow_dirty {
            return Err(Error::Usage {
                message: format!(
                    "the manifests have changes that are not committed: {}",
                    dirty.join(", ")
                ),
                next: "commit them first, so the state records the revision that ran; or pass --allow-dirty, and the revision is recorded as <commit>-dirty".into(),
            });
        }
        revision = Some(format!(
            "{}-dirty",
            revision.as_deref().unwrap_or("uncommitted")
        ));
    }
    let store = project.store()?;
    let context = Context {
        repository,
        store,
        state,
        revision,
        now: now.clone(),
        now_ms,
        env,
        wait: options.wait,
        interrupt: &options.interrupt,
        store_lock: std::sync::OnceLock::new(),
    };
    let mut changes = Vec::new();
    let mut task_locks = Vec::new();
    // Notifications wait until the run's data and state are where they are promised to be:
    // a "success" sent before the store was pushed could be false.
    let mut to_notify = Vec::new();
    for loaded in config.tasks.iter().filter(|t| chosen(&t.task.id)) {
        if options.interrupt.is_set() {
            results.push(skipped(&loaded.task.id, "interrupted before it started"));
            continue;
        }
        let (result, task_changes, task_lock) =
            apply_task(&context, &loaded.task, options.force).await;
        task_locks.extend(task_lock);
        let status = task_changes
            .iter()
            .find(|c| c.path == TaskStatus::path(&loaded.task.id))
            .and_then(|c| c.content.as_deref())
            .and_then(|bytes| TaskStatus::parse(bytes).ok());
        to_notify.push((&loaded.task, results.len(), status));
        changes.extend(task_changes);
        results.push(result);
    }
    // Tasks whose manifests are gone: archive, then purge when their time comes.
    if options.tasks.is_empty() && !options.interrupt.is_set() {
        for id in state.list("state")? {
            if config.tasks.iter().any(|t| t.task.id == id) {
                continue;
            }
            if let Some((result, task_changes)) = archive_removed(&context, &id)? {
                changes.extend(task_changes);
                results.push(result);
            }
        }
    }
    // A lost lock means a prune or another runner may have changed what this run wrote or
    // read: nothing of it may be committed.
    if let Err(e) = context
        .store_lock
        .get()
        .into_iter()
        .chain(&task_locks)
        .try_for_each(|lock| lock.ensure_held())
    {
        return Err(e.into());
    }
    let finished = publish_and_commit(store, state, repository, &changes, &results, &now);
    drop(task_locks);
    drop(context);
    let failure = finished
        .as_ref()
        .err()
        .map(|e| format!("{e}; {}", e.guidance()));
    if let Some(why) = &failure {
        for result in results.iter_mut().filter(|r| r.outcome.is_some()) {
            result.outcome = Some(RunOutcome::Failed);
            result.message = why.clone();
            result.snapshot = None;
        }
    }
    let mut deliveries = Vec::new();
    if let Ok(http) = connect::http_client() {
        for (task, index, status) in &to_notify {
            for context in notification_contexts(task, &results[*index], status.as_ref(), &now) {
                deliveries
                    .extend(crate::notify::notify(&options.dir, task, &context, env, &http).await);
            }
        }
    }
    let (store_published, commit, pushed) = finished?;
    Ok(ApplyOutcome {
        results,
        commit: commit.map(|c| c.to_string()),
        store_published,
        pushed,
        fail_on_alert: options.fail_on_alert,
        interrupted: options.interrupt.is_set(),
        deliveries,
    })
}

/// Store first, then state: a state commit never names data the remote lacks, and no success
/// is reported for data that exists only on this machine. Returns what published the store,
/// the state commit, and whether it was pushed.
fn publish_and_commit(
    store: &Store,
    state: &StateBranch,
    repository: &Repository,
    changes: &[Change],
    results: &[TaskResult],
    now: &str,
) -> Result<(Option<String>, Option<git2::Oid>, bool), Error> {
    let store_published = store.publish().map_err(|e| Error::Unpublished {
        detail: e.to_string(),
    })?;
    let message = commit_message(results, now);
    let commit = state.commit(changes, &message)?;
    let mut pushed = false;
    if commit.is_some() && repository.state.push && state.has_remote() {
        state.push(changes, &message)?;
        pushed = true;
    }
    Ok((store_published, commit, pushed))
}

/// The events a task's run raises, each with the context its templates receive.
fn notification_contexts(
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

fn commit_message(results: &[TaskResult], now: &str) -> String {
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

fn skipped(task: &str, message: impl Into<String>) -> TaskResult {
    TaskResult {
        task: task.to_string(),
        outcome: None,
        message: message.into(),
        snapshot: None,
        alerts: Vec::new(),
        warnings: Vec::new(),
    }
}

async fn apply_task(
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
            let message = format!("{e}; {}", e.guidance());
            return (failed(&task.id, &message), Vec::new(), None);
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
            let message = format!("{e}; {}", e.guidance());
            return (failed(&task.id, &message), Vec::new(), Some(lock));
        }
    };
    let (result, changes) = apply_locked_task(context, task, force, status).await;
    (result, changes, Some(lock))
}

async fn apply_locked_task(
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
            let message = decision.refusal().unwrap_or_default();
            return finish_failed(status, task, &message, context);
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
        Err(message) => finish_failed(status, task, &message, context),
    }
}

fn not_due(task: &BackupTask, status: &TaskStatus) -> TaskResult {
    let next = status
        .last_applied_ms()
        .and_then(|last| schedule::next_after(&task.schedule, last))
        .map(crate::time::format_datetime_z)
        .unwrap_or_default();
    skipped(&task.id, format!("not due (next {next})"))
}

fn failed(task: &str, message: &str) -> TaskResult {
    TaskResult {
        task: task.to_string(),
        outcome: Some(RunOutcome::Failed),
        message: message.to_string(),
        snapshot: None,
        alerts: Vec::new(),
        warnings: Vec::new(),
    }
}

fn finish_failed(
    mut status: TaskStatus,
    task: &BackupTask,
    message: &str,
    context: &Context<'_>,
) -> (TaskResult, Vec<Change>) {
    status.set_condition("Ready", false, "Failed", message, &context.now);
    status.record(Run {
        time: context.now.clone(),
        outcome: RunOutcome::Failed,
        revision: context.revision.clone(),
        snapshot: None,
        api_calls: 0,
        records: 0,
        message: Some(message.to_string()),
    });
    (failed(&task.id, message), status_change(&status))
}

fn status_change(status: &TaskStatus) -> Vec<Change> {
    vec![Change::write_merged(
        TaskStatus::path(&status.task),
        status.to_yaml(),
        TaskStatus::merge_replayed,
    )]
}

fn describe(outcome: &BackupOutcome) -> String {
    let records: u64 = outcome.objects.iter().filter_map(|o| o.records).sum();
    let mut text = format!(
        "snapshot {}, {} objects ({} full, {} incremental), {records} records, {} API calls",
        &outcome.snapshot[..outcome.snapshot.len().min(12)],
        outcome.objects.len(),
        outcome.full.len(),
        outcome.incremental.len(),
        outcome.api_calls
    );
    if let crate::snapshot::Outcome::Partial { reason } = &outcome.manifest.outcome {
        let _ = write!(text, "; partial: {reason}");
    }
    text
}

/// What a backup run produced: the backup, the state changes, the alerts it raised and what
/// it could not do as asked (warnings).
type BackupRun = (BackupOutcome, Vec<Change>, Vec<Triggered>, Vec<String>);

/// Connects, backs up, applies retention; updates `status` and returns the state changes.
async fn run_backup(
    context: &Context<'_>,
    task: &BackupTask,
    status: &mut TaskStatus,
) -> Result<BackupRun, String> {
    let now = context.now.clone();
    let connector =
        connect::connector(task, context.env).map_err(|e| format!("{e}; {}", e.guidance()))?;
    match connector.check_connection().await {
        Connection::Connected { org_id, .. } => {
            if let Some(pinned) = task.source.pinned_account()
                && !org_id.starts_with(&pinned[..pinned.len().min(15)])
            {
                let message = format!(
                    "the credentials reach org {org_id}, but the task is pinned to {pinned} (source.orgId)"
                );
                status.set_condition("Connected", false, "WrongOrg", &message, &now);
                return Err(message);
            }
            if status.org_id.as_ref().is_some_and(|known| known != &org_id) {
                let message = format!(
                    "the credentials now reach org {org_id}, but this task backed up org {}: that forces a new lineage; give the task a new id",
                    status.org_id.clone().unwrap_or_default()
                );
                status.set_condition("Connected", false, "WrongOrg", &message, &now);
                return Err(message);
            }
            status.org_id = Some(org_id);
            status.set_condition("Connected", true, "Connected", "", &now);
        }
        // No answer is not a disconnection: the credentials and the org may be fine, so the
        // recorded connection stands and the run fails as unreachable, to be tried again.
        Connection::Disconnected {
            reason: DisconnectReason::Unreachable,
            detail,
        } => {
            return Err(format!(
                "the org could not be reached ({detail}); the connection is as last recorded, and the next run tries again"
            ));
        }
        Connection::Disconnected { reason, detail } => {
            let reason_name = format!("{reason:?}");
            status.set_condition("Connected", false, &reason_name, &detail, &now);
            if reason == DisconnectReason::OrgGone {
                status.phase = Phase::Archived;
                status.archived_at.get_or_insert_with(|| now.clone());
                status.purge_after = purge_after(status);
            }
            return Err(format!(
                "Disconnected ({reason_name}): {detail}; run `cairn auth login --task {}` or fix the connected app, then apply again",
                task.id
            ));
        }
    }
    let parent_id = status
        .last_applied
        .as_ref()
        .and_then(|r| r.snapshot.clone());
    let mut notes = Vec::new();
    let parent = match &parent_id {
        Some(id) => match load_manifest(context.store, id) {
            Ok(manifest) => Some((id.clone(), manifest)),
            // Forgotten or lost: the next backup is a full one.
            Err(StoreError::MissingSnapshot { .. }) => None,
            // Damaged: the same, and said.
            Err(e @ StoreError::BadManifest { .. }) => {
                notes.push(format!(
                    "{e}, so this run was a full backup; `cairn check --read-data` shows what else is affected"
                ));
                None
            }
            Err(e) => return Err(format!("{e}; {}", e.guidance())),
        },
        None => None,
    };
    // A parent whose data is damaged or gone (damage, or a prune that no lock held off) would
    // make every incremental built on it unreadable: the objects it affects start over with a
    // full fetch that depends on none of it, and the others go on incrementally.
    let mut refetch = BTreeMap::new();
    let parent = match parent {
        Some((id, mut manifest)) => {
            let unsound = unsound_blobs(context.store, &manifest)
                .map_err(|e| format!("{e}; {}", e.guidance()))?;
            if !unsound.is_empty() {
                let objects: Vec<String> = unsound
                    .iter()
                    .map(|(object, blobs)| format!("{object} ({blobs})"))
                    .collect();
                notes.push(format!(
                    "the last snapshot {id} has damaged or missing blobs in {}, so this run fetched those objects in full, depending on none of them (and writes again the blobs whose records the org still has); `cairn check --read-data` shows what else is affected",
                    objects.join(", ")
                ));
                for object in unsound.keys() {
                    manifest.objects.remove(object);
                    refetch.insert(
                        object.clone(),
                        format!("the last snapshot's data of {object} is damaged"),
                    );
                }
            }
            Some((id, manifest))
        }
        None => None,
    };
    let options = crate::backup::BackupOptions {
        full_because: refetch,
        ..connect::backup_options(task)
    };
    let outcome = backup(
        &connector,
        context.store,
        &options,
        parent.as_ref().map(|(id, m)| (id.as_str(), m)),
        &now,
    )
    .await
    .map_err(|e| {
        if let crate::backup::BackupError::Source(crate::source::SourceError::Disconnected {
            reason,
            ..
        }) = &e
        {
            status.set_condition(
                "Connected",
                false,
                &format!("{reason:?}"),
                &e.to_string(),
                &now,
            );
        }
        format!("{e}; {}", e.guidance())
    })?;
    crate::snapshot::writer::verify_written(
        context.store,
        &outcome.snapshot,
        parent.as_ref().map(|(_, m)| m),
    )
    .map_err(|e| {
        format!(
            "snapshot {} does not read back from the store: {e}; {}",
            outcome.snapshot,
            e.guidance()
        )
    })?;
    let mut changes = Vec::new();
    let dir = format!("state/{}", task.id);
    let sealed = context
        .store
        .backend()
        .get(&crate::store::snapshot_path(&outcome.snapshot))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "snapshot {} vanished from the store while the run committed it",
                outcome.snapshot
            )
        })?;
    changes.push(Change::write(
        format!("{dir}/snapshots/{}.enc", outcome.snapshot),
        sealed,
    ));
    let (summary, alerts, index_notes) =
        summarise(context, task, &outcome, parent.as_ref(), &status.snapshots)?;
    notes.extend(index_notes);
    changes.push(Change::write(
        format!("{dir}/diffs/{}.md", outcome.snapshot),
        summary,
    ));
    for (object, schema) in &outcome.schemas {
        let yaml = serde_yaml::to_string(schema).unwrap_or_default();
        changes.push(Change::write(format!("{dir}/schema/{object}.yaml"), yaml));
    }
    let known_schemas = context
        .state
        .list(&format!("{dir}/schema"))
        .map_err(|e| e.to_string())?;
    for previous in known_schemas {
        let object = previous.trim_end_matches(".yaml");
        if !outcome.schemas.contains_key(object) {
            changes.push(Change::remove(format!("{dir}/schema/{previous}")));
        }
    }
    changes.push(Change::write(
        status::CoverageFile::path(&task.id),
        coverage_file(&outcome).to_yaml(),
    ));

    let complete = outcome.manifest.outcome == crate::snapshot::Outcome::Complete;
    let records: u64 = outcome
        .objects
        .iter()
        .filter_map(|o| o.records)
        .sum::<u64>();
    status.counts = outcome
        .manifest
        .objects
        .iter()
        .map(|(name, entry)| (name.clone(), entry.records.unwrap_or(entry.base_records)))
        .collect();
    let total: u64 = status.counts.values().sum();
    status.snapshots.insert(
        0,
        SnapshotRow {
            id: outcome.snapshot.clone(),
            time: now.clone(),
            complete,
            records: total,
        },
    );
    // Retention: forget what the policy no longer keeps.
    for decision in forgotten(task, &status.snapshots) {
        context
            .store
            .backend()
            .delete(&crate::store::snapshot_path(&decision.id))
            .map_err(|e| e.to_string())?;
        changes.push(Change::remove(format!(
            "{dir}/snapshots/{}.enc",
            decision.id
        )));
        status.snapshots.retain(|s| s.id != decision.id);
    }
    status.set_condition(
        "Ready",
        complete,
        if complete { "Succeeded" } else { "Partial" },
        if complete {
            ""
        } else {
            "the last backup is partial; the next run resumes it"
        },
        &now,
    );
    status.set_condition("Stale", false, "Fresh", "", &now);
    let warnings = outcome.coverage.warnings();
    status.set_condition(
        "IncludesMatch",
        warnings.is_empty(),
        if warnings.is_empty() {
            "AllMatch"
        } else {
            "UnmatchedInclude"
        },
        &warnings.join("; "),
        &now,
    );
    let alert_text: Vec<String> = alerts.iter().map(|a| a.message.clone()).collect();
    status.set_condition(
        "DataLossAlert",
        !alerts.is_empty(),
        if alerts.is_empty() {
            "WithinThresholds"
        } else {
            "ThresholdCrossed"
        },
        &alert_text.join("; "),
        &now,
    );
    status.record(Run {
        time: now.clone(),
        outcome: if complete {
            RunOutcome::Success
        } else {
            RunOutcome::Partial
        },
        revision: context.revision.clone(),
        snapshot: Some(outcome.snapshot.clone()),
        api_calls: outcome.api_calls,
        records,
        message: match &outcome.manifest.outcome {
            crate::snapshot::Outcome::Partial { reason } => Some(reason.clone()),
            crate::snapshot::Outcome::Complete => None,
        },
    });
    Ok((outcome, changes, alerts, notes))
}

/// The change against the parent (read as a sorted merge-join that follows the change), as
/// the committed summary, and the alerts it raises.
fn summarise(
    context: &Context<'_>,
    task: &BackupTask,
    outcome: &BackupOutcome,
    parent: Option<&(String, crate::snapshot::SnapshotManifest)>,
    history: &[SnapshotRow],
) -> Result<(String, Vec<Triggered>, Vec<String>), String> {
    let empty = crate::snapshot::SnapshotManifest {
        objects: BTreeMap::new(),
        ..outcome.manifest.clone()
    };
    let older = parent.map(|(_, m)| m).unwrap_or(&empty);
    let record_ids = context.repository.state.record_ids;
    let mut ids = Vec::new();
    let fail = |e: StoreError| format!("{e}; {}", e.guidance());
    // The search index takes the same change: one pass over it for both. An index that is
    // gone or unreadable is first rebuilt from the task's earlier snapshots.
    let mut notes = Vec::new();
    let index = if task.search.index {
        let (index, missing) =
            crate::search::SearchIndex::open_or_new(context.store, &task.id).map_err(fail)?;
        let writer = index.writer().map_err(fail)?;
        if let (Some(why), Some((parent_id, parent))) = (missing, parent) {
            let rebuilt = index::rebuild_from_history(
                context.store,
                (&index, &writer),
                history,
                (parent_id, parent),
            )
            .map_err(fail)?;
            let mut note = format!(
                "{why}: it was rebuilt from the task's {} earlier snapshots",
                rebuilt.snapshots
            );
            if !rebuilt.unreadable.is_empty() {
                let _ = write!(
                    note,
                    "; {} could not be read, so versions only they held are not found by search: {}",
                    rebuilt.unreadable.len(),
                    rebuilt.unreadable.join(", ")
                );
            }
            notes.push(note);
        }
        Some((index, writer))
    } else {
        None
    };
    let mut indexing = index.as_ref().map(|(index, writer)| {
        index::Indexing::new(
            context.store,
            (index, writer),
            &outcome.snapshot,
            &outcome.manifest,
        )
    });
    let stats = if parent.is_some() {
        let stats = crate::diff::diff(
            context.store,
            older,
            &outcome.manifest,
            None,
            false,
            &mut |c| {
                if let Some(indexing) = indexing.as_mut() {
                    indexing.change(&c);
                }
                if record_ids {
                    ids.push((c.object, c.id, c.change));
                }
            },
        )
        .map_err(fail)?;
        if let Some(indexing) = &indexing {
            indexing.entered(&outcome.manifest, &stats).map_err(fail)?;
        }
        stats
    } else {
        if let Some(indexing) = &indexing {
            for (object, entry) in &outcome.manifest.objects {
                indexing.whole_object(object, entry).map_err(fail)?;
            }
        }
        // The first snapshot: everything is new; no need to read it back.
        outcome
            .manifest
            .objects
            .iter()
            .map(|(name, entry)| {
                (
                    name.clone(),
                    crate::diff::ObjectStats {
                        added: entry.records.unwrap_or(entry.base_records),
                        ..Default::default()
                    },
                )
            })
            .collect()
    };
    let schema_diff = match parent {
        Some(_) => crate::diff::schema_diff(context.store, older, &outcome.manifest, None)
            .map_err(|e| format!("{e}; {}", e.guidance()))?,
        None => String::new(),
    };
    if let Some(indexing) = indexing {
        indexing.finish().map_err(fail)?;
    }
    if let Some((index, writer)) = index {
        index.save(context.store, &task.id, writer).map_err(fail)?;
    }
    let alerts = crate::diff::summary::alerts(&task.alerts, &stats);
    let text = crate::diff::summary::render(&crate::diff::summary::Summary {
        title: &task.name,
        snapshot: &outcome.snapshot,
        time: &outcome.manifest.time,
        previous: parent.map(|(id, _)| id.as_str()),
        stats: &stats,
        schema_diff: &schema_diff,
        alerts: &alerts,
        ids: (record_ids && parent.is_some()).then_some(ids.as_slice()),
    });
    Ok((text, alerts, notes))
}

fn purge_after(status: &TaskStatus) -> Option<String> {
    let days = status.auto_archived_days?;
    let at = crate::time::parse_datetime(status.archived_at.as_deref()?)?;
    Some(crate::time::format_datetime_z(
        at + i64::from(days) * 86_400_000,
    ))
}

/// Archives a task whose manifest is gone; purges its snapshots once `autoArchivedDays` pass.
fn archive_removed(
    context: &Context<'_>,
    id: &str,
) -> Result<Option<(TaskResult, Vec<Change>)>, Error> {
    let Some(mut status) = crate::project::read_status(context.state, id)? else {
        return Ok(None);
    };
    let now = &context.now;
    match status.phase {
        Phase::Purged => Ok(None),
        Phase::Archived => {
            let due = status
                .purge_after
                .as_deref()
                .and_then(crate::time::parse_datetime)
                .is_some_and(|at| at <= context.now_ms);
            if !due {
                return Ok(None);
            }
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
        Phase::Active | Phase::Suspended => {
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

/// How many of the blobs a snapshot names are missing or damaged: an incremental takes its
/// parent's data as it is, so it is read and authenticated first (on two threads; AES-GCM
/// without decompression, a fraction of what the fetch costs).
/// The objects of a snapshot with blobs that are missing or do not verify, and how many each.
fn unsound_blobs(
    store: &Store,
    manifest: &crate::snapshot::SnapshotManifest,
) -> Result<BTreeMap<String, usize>, StoreError> {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (object, entry) in &manifest.objects {
        for blob in entry.blobs() {
            users.entry(blob).or_default().push(object);
        }
    }
    let named: Vec<&str> = users.keys().copied().collect();
    let half = named.len().div_ceil(2).max(1);
    let unsound: Vec<&str> = std::thread::scope(|scope| {
        let workers: Vec<_> = named
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || -> Result<Vec<&str>, StoreError> {
                    let mut unsound = Vec::new();
                    for blob in chunk {
                        match store.verify_blob(blob) {
                            Ok(()) => {}
                            Err(
                                StoreError::MissingBlob { .. } | StoreError::CorruptBlob { .. },
                            ) => unsound.push(*blob),
                            Err(other) => return Err(other),
                        }
                    }
                    Ok(unsound)
                })
            })
            .collect();
        workers.into_iter().try_fold(Vec::new(), |mut all, worker| {
            all.extend(worker.join().map_err(|_| StoreError::Backend {
                location: store.location(),
                message: "a thread verifying the last snapshot stopped".into(),
            })??);
            Ok::<_, StoreError>(all)
        })
    })?;
    let mut objects = BTreeMap::new();
    for object in unsound.iter().filter_map(|blob| users.get(blob)).flatten() {
        *objects.entry(object.to_string()).or_insert(0) += 1;
    }
    Ok(objects)
}

fn coverage_file(outcome: &BackupOutcome) -> status::CoverageFile {
    let coverage = &outcome.coverage;
    status::CoverageFile {
        backed_up: coverage.backed_up.clone(),
        skipped: coverage.skipped.iter().cloned().collect(),
        unmatched_includes: coverage
            .unmatched
            .iter()
            .map(|(pattern, close)| {
                let said = match close {
                    Some(close) => format!("matches no object; did you mean {close}?"),
                    None => "matches no object".to_string(),
                };
                (pattern.clone(), said)
            })
            .collect(),
        excluded: Some(coverage.excluded.clone()),
    }
}
