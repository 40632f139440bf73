//! `cairn apply`: every task that is due is backed up, retention applied, and the observed
//! state written to the state branch in one commit. One task failing never stops the others.

mod archive;
mod backup_run;
mod chunk_audit;
mod failure;
mod index;
mod interrupt;
mod metadata_state;
mod notifications;
mod outcome;
mod task;

use std::path::PathBuf;

use crate::error::Error;
use crate::gitops::{Change, StateBranch};
use crate::manifest::model::Repository;
use crate::project::{Committed, Project, connect};
use crate::state::decision::{TaskDecision, decide};
use crate::state::status::{RunOutcome, TaskStatus};
use crate::store::Store;
use crate::store::lock::{Lock, LockKind};

// `commands::apply` re-exports these; rustc judges the re-export here, not there.
#[allow(unreachable_pub)]
pub use crate::project::Env;
#[allow(unreachable_pub)]
pub use interrupt::Interrupt;
#[allow(unreachable_pub)]
pub use outcome::{ApplyOutcome, RestoreRun, TaskResult};

use archive::archive_removed;
use notifications::notification_contexts;
use outcome::{commit_message, skipped};
use task::apply_task;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dir: PathBuf,
    /// Only these tasks (all when empty).
    pub tasks: Vec<String>,
    /// Run the chosen tasks whether or not they are due.
    pub force: bool,
    /// Say what would run; write nothing.
    pub dry_run: bool,
    /// The time to act at, in ms since the epoch (default: now). Tests and replays set it.
    pub at: Option<i64>,
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
    /// Told of each task's objects, file bodies and search index as they go.
    pub progress: crate::progress::Reporter,
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
    progress: &'a crate::progress::Reporter,
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

pub(crate) async fn apply(options: &ApplyOptions, env: Env<'_>) -> Result<ApplyOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let config = project.config();
    let repository = project.require_valid()?;
    let now_ms = options.at.unwrap_or_else(crate::time::now_ms);
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
            restores: Vec::new(),
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
        progress: &options.progress,
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
    let finished = publish_and_commit(&project, store, state, &changes, &results, &now);
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
    // Made for the first notification only: a client reads the system's root certificates,
    // tens of milliseconds that an apply notifying nobody need not spend.
    let mut http = None;
    for (task, index, status) in to_notify
        .iter()
        .filter(|(t, ..)| !t.notifications.is_empty())
    {
        for context in notification_contexts(task, &results[*index], status.as_ref(), &now) {
            if http.is_none() {
                http = connect::http_client().ok();
            }
            let Some(http) = &http else { break };
            deliveries.extend(crate::notify::notify(&options.dir, task, &context, env, http).await);
        }
    }
    let (store_published, committed) = finished?;
    Ok(ApplyOutcome {
        results,
        restores: Vec::new(),
        commit: committed.map(|(c, _)| c.to_string()),
        store_published,
        pushed: committed.is_some_and(|(_, pushed)| pushed),
        fail_on_alert: options.fail_on_alert,
        interrupted: options.interrupt.is_set(),
        deliveries,
    })
}

/// Store first, then state: a state commit never names data the remote lacks, and no success
/// is reported for data that exists only on this machine. Returns what published the store,
/// and the state commit with whether it was pushed.
fn publish_and_commit(
    project: &Project,
    store: &Store,
    state: &StateBranch,
    changes: &[Change],
    results: &[TaskResult],
    now: &str,
) -> Result<(Option<String>, Option<Committed>), Error> {
    let store_published = store.publish().map_err(|e| Error::Unpublished {
        detail: e.to_string(),
    })?;
    let committed = project.commit_state(state, changes, &commit_message(results, now))?;
    Ok((store_published, committed))
}
