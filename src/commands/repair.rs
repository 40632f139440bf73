//! `cairn repair`: what `check` found damaged, made consistent again. A store holds one copy
//! of each blob, so lost data cannot come back from the store: it comes back from the org, by
//! the next apply (which backs up again whatever its last snapshot no longer has). Repair makes
//! every snapshot honest about what it still holds, and says what it does:
//! - a snapshot whose manifest does not open is forgotten;
//! - a snapshot that names damaged or missing segments keeps its other objects and loses those
//!   (rewritten as partial, with the reason; a new id, as snapshots are content-addressed);
//! - damaged derived data (schema documents, recent-version lists) is dropped from the
//!   manifest, to be written again by the next apply;
//! - the state branch follows: rows renamed or removed, in one commit pushed as apply's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::gitops::Change;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::snapshot::manifest::{Outcome, SnapshotManifest};
use crate::snapshot::writer::load_manifest;
use crate::store::lock::LockKind;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct RepairOptions {
    pub dir: PathBuf,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
    pub wait: Duration,
}

/// What repair does to one snapshot.
enum Fix {
    /// Its manifest does not open: forgotten.
    Forget { why: String },
    /// Rewritten without what is lost.
    Rewrite {
        manifest: Box<SnapshotManifest>,
        lost: Vec<String>,
        dropped_derived: usize,
    },
}

/// One thing repair did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Repaired {
    /// Its manifest does not open: the snapshot is forgotten.
    #[serde(rename_all = "camelCase")]
    Forget { snapshot: String, why: String },
    /// Rewritten without what is lost; `new_id` is None in a dry run.
    #[serde(rename_all = "camelCase")]
    Rewrite {
        snapshot: String,
        task: String,
        lost: Vec<String>,
        dropped_derived: usize,
        new_id: Option<String>,
    },
    /// Listed in the state but gone from the store: no longer listed.
    #[serde(rename_all = "camelCase")]
    Unlist { snapshot: String, task: String },
}

/// What `repair` found and did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairOutcome {
    pub repaired: Vec<Repaired>,
    pub dry_run: bool,
    pub published: Option<String>,
    /// The state branch got a commit; whether it was pushed.
    pub state_committed: Option<bool>,
}

impl Report for RepairOutcome {
    fn text(&self) -> String {
        let mut out = String::new();
        for repaired in &self.repaired {
            match repaired {
                Repaired::Forget { snapshot, why } => {
                    let _ = writeln!(out, "forget   snapshot {snapshot}: {why}");
                }
                Repaired::Rewrite {
                    snapshot,
                    task,
                    lost,
                    dropped_derived,
                    new_id,
                } => {
                    let mut what = Vec::new();
                    if !lost.is_empty() {
                        what.push(format!(
                            "loses {} (their data is damaged or missing)",
                            lost.join(", ")
                        ));
                    }
                    if *dropped_derived > 0 {
                        what.push(format!(
                            "drops {dropped_derived} damaged schema or recent-version documents (written again by the next apply)"
                        ));
                    }
                    let _ = write!(
                        out,
                        "rewrite  snapshot {snapshot} of task {task}: {}",
                        what.join("; ")
                    );
                    match new_id {
                        Some(new_id) => {
                            let _ = writeln!(out, " -> {new_id}");
                        }
                        None => out.push('\n'),
                    }
                }
                Repaired::Unlist { snapshot, task } => {
                    let _ = writeln!(
                        out,
                        "unlist   snapshot {snapshot} of task {task}: the store does not have it"
                    );
                }
            }
        }
        if self.repaired.is_empty() {
            out.push_str("nothing to repair: every snapshot's data is whole\n");
            return out;
        }
        if self.dry_run {
            out.push_str("dry run: nothing was changed\n");
            return out;
        }
        out.push_str(&super::published_line(self.published.as_deref()));
        if let Some(pushed) = self.state_committed {
            let pushed = if pushed { " (pushed)" } else { "" };
            let _ = writeln!(out, "state committed{pushed}");
        }
        out.push_str("next: `cairn apply` backs up again what was lost (a full pass of those objects), and `cairn prune` frees the damaged data\n");
        out
    }
}

pub fn repair(options: &RepairOptions, env: Env<'_>) -> Result<RepairOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    // Alone, as prune and forget are: no backup builds on what is being rewritten.
    let _alone = store_access::lock(store, LockKind::Forget, options.wait)?;
    let state = project.fetch_state_if_git()?;

    let mut repaired = Vec::new();
    let mut fixes: BTreeMap<String, (String, Fix)> = BTreeMap::new();
    let mut sound = BTreeMap::new();
    for id in store.list_snapshots()? {
        match load_manifest(store, &id) {
            Ok(manifest) => {
                if let Some(fix) = examine(store, &manifest, &mut sound)? {
                    fixes.insert(id, (manifest.task.clone(), fix));
                }
            }
            Err(e @ (StoreError::BadManifest { .. } | StoreError::CorruptBlob { .. })) => {
                // The task is unknown without the manifest; the state says it, if any does.
                fixes.insert(id, (String::new(), Fix::Forget { why: e.to_string() }));
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Old id -> the new id, its sealed manifest and whether it is complete; None: forgotten.
    let mut renamed: BTreeMap<String, Option<(String, Vec<u8>, bool)>> = BTreeMap::new();
    for (id, (task, fix)) in &fixes {
        match fix {
            Fix::Forget { why } => {
                repaired.push(Repaired::Forget {
                    snapshot: id.clone(),
                    why: why.clone(),
                });
                if !options.dry_run {
                    store.backend().delete(&crate::store::snapshot_path(id))?;
                }
                renamed.insert(id.clone(), None);
            }
            Fix::Rewrite {
                manifest,
                lost,
                dropped_derived,
            } => {
                let mut rewrite = |new_id| {
                    repaired.push(Repaired::Rewrite {
                        snapshot: id.clone(),
                        task: task.clone(),
                        lost: lost.clone(),
                        dropped_derived: *dropped_derived,
                        new_id,
                    })
                };
                if options.dry_run {
                    rewrite(None);
                    continue;
                }
                let json = serde_json::to_vec(manifest.as_ref())
                    .map_err(|e| StoreError::Compression(e.to_string()))?;
                let new_id = store.put_snapshot(&json)?;
                let sealed = store
                    .backend()
                    .get(&crate::store::snapshot_path(&new_id))?
                    .ok_or_else(|| StoreError::MissingSnapshot { id: new_id.clone() })?;
                if new_id != *id {
                    store.backend().delete(&crate::store::snapshot_path(id))?;
                }
                rewrite(Some(new_id.clone()));
                let complete = manifest.outcome == Outcome::Complete;
                renamed.insert(id.clone(), Some((new_id, sealed, complete)));
            }
        }
    }

    // The state follows the store.
    let mut changes = Vec::new();
    if let Some(state) = &state {
        for task in state.list("state")? {
            let Some(mut status) = crate::project::read_status(state, &task)? else {
                continue;
            };
            let stored: BTreeSet<String> = store.list_snapshots()?.into_iter().collect();
            let mut touched = false;
            let mut rows = Vec::new();
            for mut row in std::mem::take(&mut status.snapshots) {
                let enc = |id: &str| format!("state/{task}/snapshots/{id}.enc");
                match renamed.get(&row.id) {
                    Some(Some((new_id, sealed, complete))) => {
                        changes.push(Change::remove(enc(&row.id)));
                        changes.push(Change::write(enc(new_id), sealed.clone()));
                        for run in status
                            .last_applied
                            .iter_mut()
                            .chain(status.history.iter_mut())
                        {
                            if run.snapshot.as_deref() == Some(row.id.as_str()) {
                                run.snapshot = Some(new_id.clone());
                            }
                        }
                        row.id = new_id.clone();
                        row.complete = *complete;
                        rows.push(row);
                        touched = true;
                    }
                    Some(None) => {
                        changes.push(Change::remove(enc(&row.id)));
                        touched = true;
                    }
                    // Listed but gone from the store (and not by this repair): the state stops
                    // promising it.
                    None if !options.dry_run && !stored.contains(&row.id) => {
                        repaired.push(Repaired::Unlist {
                            snapshot: row.id.clone(),
                            task: task.clone(),
                        });
                        changes.push(Change::remove(enc(&row.id)));
                        touched = true;
                    }
                    None => rows.push(row),
                }
            }
            status.snapshots = rows;
            if touched {
                changes.push(status.write(&task));
            }
        }
    }

    let mut outcome = RepairOutcome {
        repaired,
        dry_run: options.dry_run,
        published: None,
        state_committed: None,
    };
    if outcome.repaired.is_empty() || options.dry_run {
        return Ok(outcome);
    }
    outcome.published = store.publish()?;
    if let Some(state) = &state {
        let message = format!("cairn repair: {} snapshots repaired", fixes.len());
        outcome.state_committed = project
            .commit_state(state, &changes, &message)?
            .map(|(_, pushed)| pushed);
    }
    Ok(outcome)
}

/// What is wrong with a snapshot's data, and the manifest without it; None when it is whole.
/// `sound` remembers each blob's verdict, as snapshots share most of their blobs.
fn examine(
    store: &Store,
    manifest: &SnapshotManifest,
    sound: &mut BTreeMap<String, bool>,
) -> Result<Option<Fix>, StoreError> {
    let mut check = |blob: &str| -> Result<bool, StoreError> {
        if let Some(verdict) = sound.get(blob) {
            return Ok(*verdict);
        }
        let verdict = match store.verify_blob(blob) {
            Ok(()) => true,
            Err(StoreError::MissingBlob { .. } | StoreError::CorruptBlob { .. }) => false,
            Err(other) => return Err(other),
        };
        sound.insert(blob.to_string(), verdict);
        Ok(verdict)
    };
    let mut repaired = manifest.clone();
    let mut lost = Vec::new();
    let mut dropped_derived = 0;
    for (object, entry) in &manifest.objects {
        let mut whole = true;
        for segment in entry.segments() {
            whole &= check(&segment.blob)?;
        }
        if !whole {
            lost.push(object.clone());
            repaired.objects.remove(object);
            continue;
        }
        let Some(fixed) = repaired.objects.get_mut(object) else {
            continue;
        };
        if let Some(schema) = &entry.schema
            && !check(schema)?
        {
            fixed.schema = None;
            dropped_derived += 1;
        }
        if let Some(recent) = &entry.recent
            && !check(recent)?
        {
            fixed.recent = None;
            dropped_derived += 1;
        }
    }
    if lost.is_empty() && dropped_derived == 0 {
        return Ok(None);
    }
    if !lost.is_empty() {
        let reason = format!(
            "repaired: {} lost to damage in the store; the next apply backs them up again",
            lost.join(", ")
        );
        repaired.outcome = Outcome::Partial { reason };
    }
    Ok(Some(Fix::Rewrite {
        manifest: Box::new(repaired),
        lost,
        dropped_derived,
    }))
}
