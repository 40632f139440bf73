//! `cairn forget`: apply each task's retention policy to its snapshots. A dry run lists every
//! snapshot, kept or removed, with the rules that keep it. Forgetting removes snapshot
//! manifests only; `cairn prune` then deletes the blobs nothing refers to any more.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::store_access::{self, Env};
use crate::error::Error;
use crate::manifest::{ConfigTree, load};
use crate::snapshot::manifest::Outcome;
use crate::snapshot::retention::{self, Candidate};
use crate::snapshot::writer::load_manifest;
use crate::time;

#[derive(Debug, Clone)]
pub struct ForgetOptions {
    pub dir: PathBuf,
    /// Only these tasks (all when empty).
    pub tasks: Vec<String>,
    pub dry_run: bool,
    /// How long to wait for running backups (a snapshot they build on is never removed).
    pub wait: std::time::Duration,
}

pub fn forget(options: &ForgetOptions, env: Env<'_>) -> Result<String, Error> {
    let config = load(&ConfigTree::work_tree(&options.dir)?)?;
    let repository = match &config.repository {
        Some(repository) if !config.has_errors() => repository.clone(),
        _ => {
            return Err(Error::InvalidConfig {
                dir: options.dir.clone(),
            });
        }
    };
    let store = store_access::open(&options.dir, &repository, env)?;
    let _alone = match options.dry_run {
        true => None,
        false => Some(store_access::lock(
            &store,
            crate::store::lock::LockKind::Forget,
            options.wait,
        )?),
    };
    let mut by_task: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for id in store.list_snapshots()? {
        let manifest = load_manifest(&store, &id)?;
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
    let mut out = String::new();
    let (mut kept, mut removed) = (0, 0);
    for loaded in &config.tasks {
        let task = &loaded.task;
        if !options.tasks.is_empty() && !options.tasks.contains(&task.id) {
            continue;
        }
        let candidates = by_task.remove(&task.id).unwrap_or_default();
        let decisions =
            retention::decide(&task.retention, &candidates).map_err(|_| Error::InvalidConfig {
                dir: options.dir.clone(),
            })?;
        let _ = writeln!(out, "task {} ({} snapshots):", task.id, decisions.len());
        for decision in decisions {
            let when = time::format_datetime_z(decision.time);
            if decision.keep {
                kept += 1;
                let _ = writeln!(
                    out,
                    "  keep    {}  {when}  {}",
                    decision.id,
                    decision.reasons.join(", ")
                );
            } else {
                removed += 1;
                let _ = writeln!(out, "  remove  {}  {when}", decision.id);
                if !options.dry_run {
                    store
                        .backend()
                        .delete(&crate::store::snapshot_path(&decision.id))?;
                }
            }
        }
    }
    let others: usize = by_task
        .iter()
        .filter(|(task, _)| options.tasks.is_empty() || options.tasks.contains(task))
        .map(|(_, snapshots)| snapshots.len())
        .sum();
    if others > 0 {
        let _ = writeln!(
            out,
            "{others} snapshots belong to tasks that are no longer in the config repository; they are kept until archiving purges them"
        );
    }
    let _ = write!(out, "{kept} kept, {removed} ");
    out.push_str(if options.dry_run {
        "to remove (dry run: nothing was removed)\n"
    } else {
        "removed; run `cairn prune` to free their data\n"
    });
    if !options.dry_run {
        out.push_str(&store_access::publish(&store)?);
    }
    Ok(out)
}
