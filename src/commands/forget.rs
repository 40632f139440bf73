//! `cairn forget`: apply each task's retention policy to its snapshots. A dry run lists every
//! snapshot, kept or removed, with the rules that keep it. Forgetting removes snapshot
//! manifests only; `cairn prune` then deletes the blobs nothing refers to any more.
//!
//! The state branch says which snapshots a task has: forget removes the same ones from it, in
//! one commit pushed like apply's. A manifest in the store that no run recorded (its run was
//! killed, or failed to commit) is an orphan: never counted by the policy, and removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::gitops::Change;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::snapshot::manifest::Outcome;
use crate::snapshot::writer::load_manifest;
use crate::state::retention::{self, Candidate};
use crate::time;

#[derive(Debug, Clone)]
pub struct ForgetOptions {
    pub dir: PathBuf,
    /// Only these tasks (all when empty).
    pub tasks: Vec<String>,
    pub dry_run: bool,
    /// Forget these snapshots (ids or unique prefixes), whatever the policy says.
    pub snapshots: Vec<String>,
    /// How long to wait for running backups (a snapshot they build on is never removed).
    pub wait: std::time::Duration,
}

/// A snapshot forget keeps or removes, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForgetRow {
    pub id: String,
    pub time: String,
    pub keep: bool,
    /// The rules that keep it; for a removed one, why it goes when not by the policy alone
    /// (named, orphan).
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForgetTask {
    pub task: String,
    pub snapshots: Vec<ForgetRow>,
}

/// What forget kept and removed (or would, in a dry run), task by task.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForgetOutcome {
    pub dry_run: bool,
    pub tasks: Vec<ForgetTask>,
    pub kept: usize,
    pub removed: usize,
    /// Snapshots of tasks no longer in the config repository, kept until archiving purges
    /// them.
    pub others: usize,
    /// What made the removals durable beyond this machine (the git store's push).
    pub published: Option<String>,
    /// The state branch got a commit; whether it was pushed.
    pub state_committed: Option<bool>,
}

impl Report for ForgetOutcome {
    fn text(&self) -> String {
        let mut out = String::new();
        for task in &self.tasks {
            let _ = writeln!(
                out,
                "task {} ({} snapshots):",
                task.task,
                task.snapshots.len()
            );
            for row in &task.snapshots {
                let _ = match (row.keep, row.why.is_empty()) {
                    (true, _) => writeln!(out, "  keep    {}  {}  {}", row.id, row.time, row.why),
                    (false, true) => writeln!(out, "  remove  {}  {}", row.id, row.time),
                    (false, false) => {
                        writeln!(out, "  remove  {}  {}  ({})", row.id, row.time, row.why)
                    }
                };
            }
        }
        if self.others > 0 {
            let _ = writeln!(
                out,
                "{} snapshots belong to tasks that are no longer in the config repository; they are kept until archiving purges them",
                self.others
            );
        }
        let _ = write!(out, "{} kept, {} ", self.kept, self.removed);
        out.push_str(if self.dry_run {
            "to remove (dry run: nothing was removed)\n"
        } else {
            "removed; run `cairn prune` to free their data\n"
        });
        out.push_str(&super::published_line(self.published.as_deref()));
        if let Some(pushed) = self.state_committed {
            let pushed = if pushed { " (pushed)" } else { "" };
            let _ = writeln!(out, "state committed{pushed}");
        }
        out
    }
}

pub fn forget(options: &ForgetOptions, env: Env<'_>) -> Result<ForgetOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    project.require_valid()?;
    let config = project.config();
    let store = project.store()?;
    let _alone = match options.dry_run {
        true => None,
        false => Some(store_access::lock(
            store,
            crate::store::lock::LockKind::Forget,
            options.wait,
        )?),
    };
    // Outside a git repository there is no state branch: only the store changes.
    let state = project.fetch_state_if_git()?;
    let mut by_task: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for id in store.list_snapshots()? {
        let manifest = load_manifest(store, &id)?;
        let time = time::parse_datetime(&manifest.time).unwrap_or(0);
        by_task
            .entry(manifest.task.clone())
            .or_default()
            .push(Candidate {
                id,
                time,
                complete: manifest.outcome == Outcome::Complete,
            });
    }
    let named = resolve_named(&options.snapshots, &by_task, &options.tasks)?;
    let mut tasks = Vec::new();
    let (mut kept, mut removed) = (0, 0);
    let mut changes = Vec::new();
    for loaded in &config.tasks {
        let task = &loaded.task;
        if !options.tasks.is_empty() && !options.tasks.contains(&task.id) {
            continue;
        }
        let all = by_task.remove(&task.id).unwrap_or_default();
        let status = match &state {
            Some(state) => crate::project::read_status(state, &task.id)?,
            None => None,
        };
        // With no state for the task there is nothing to tell orphans by: all count.
        let recorded = |id: &str| {
            status
                .as_ref()
                .is_none_or(|s| s.snapshots.iter().any(|row| row.id == id))
        };
        let (candidates, orphans): (Vec<Candidate>, Vec<Candidate>) =
            all.into_iter().partition(|c| recorded(&c.id));
        let decisions =
            retention::decide(&task.retention, &candidates).map_err(|_| Error::InvalidConfig {
                dir: options.dir.clone(),
            })?;
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        for decision in decisions {
            let time = time::format_datetime_z(decision.time);
            if decision.keep && !named.contains(&decision.id) {
                kept += 1;
                rows.push(ForgetRow {
                    id: decision.id,
                    time,
                    keep: true,
                    why: decision.reasons.join(", "),
                });
            } else {
                let why = if decision.keep { "named" } else { "" };
                gone.push(decision.id.clone());
                rows.push(ForgetRow {
                    id: decision.id,
                    time,
                    keep: false,
                    why: why.into(),
                });
            }
        }
        for orphan in orphans {
            gone.push(orphan.id.clone());
            rows.push(ForgetRow {
                id: orphan.id,
                time: time::format_datetime_z(orphan.time),
                keep: false,
                why: "orphan: no run recorded it".into(),
            });
        }
        tasks.push(ForgetTask {
            task: task.id.clone(),
            snapshots: rows,
        });
        removed += gone.len();
        if options.dry_run || gone.is_empty() {
            continue;
        }
        for id in &gone {
            store.backend().delete(&crate::store::snapshot_path(id))?;
            changes.push(Change::remove(format!(
                "state/{}/snapshots/{id}.enc",
                task.id
            )));
        }
        if let Some(mut status) = status {
            status.snapshots.retain(|row| !gone.contains(&row.id));
            changes.push(status.write(&task.id));
        }
    }
    let others: usize = by_task
        .iter()
        .filter(|(task, _)| options.tasks.is_empty() || options.tasks.contains(task))
        .map(|(_, snapshots)| snapshots.len())
        .sum();
    let mut published = None;
    let mut state_committed = None;
    if !options.dry_run {
        published = store.publish()?;
        // Store first, then state, as apply does: the state never names what the remote lacks.
        let message = format!("cairn forget: {removed} snapshots removed");
        if let Some(state) = &state {
            state_committed = project
                .commit_state(state, &changes, &message)?
                .map(|(_, pushed)| pushed);
        }
    }
    Ok(ForgetOutcome {
        dry_run: options.dry_run,
        tasks,
        kept,
        removed,
        others,
        published,
        state_committed,
    })
}

/// The snapshots `--snapshot` names, each by its id or a unique prefix of at least 8
/// characters, among the chosen tasks' snapshots.
fn resolve_named(
    wanted: &[String],
    by_task: &BTreeMap<String, Vec<Candidate>>,
    tasks: &[String],
) -> Result<Vec<String>, Error> {
    let mut named = Vec::new();
    for text in wanted {
        let matches: Vec<&str> = by_task
            .iter()
            .filter(|(task, _)| tasks.is_empty() || tasks.contains(task))
            .flat_map(|(_, candidates)| candidates.iter().map(|c| c.id.as_str()))
            .filter(|id| text.len() >= 8 && id.starts_with(text.as_str()))
            .collect();
        match matches.as_slice() {
            [one] => named.push(one.to_string()),
            [] => {
                return Err(Error::Usage {
                    message: format!("no snapshot {text} in the store"),
                    next: "`cairn snapshots` lists them; give an id or a prefix of at least 8 characters".into(),
                });
            }
            _ => {
                return Err(Error::Usage {
                    message: format!("{text} names {} snapshots", matches.len()),
                    next: "give more of the id".into(),
                });
            }
        }
    }
    Ok(named)
}
