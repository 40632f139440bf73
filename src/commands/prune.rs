//! `cairn prune` and `cairn unlock`: free the data of forgotten snapshots and interrupted
//! backups; clear the locks of processes that died.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::ops::prune;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::store::lock::{Liveness, LockKind};

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub dir: PathBuf,
    /// Count what would be deleted; delete nothing.
    pub dry_run: bool,
    /// How long to wait for running backups and forgets.
    pub wait: Duration,
}

/// What prune deleted (or would), and what published the store afterwards.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneOutcome {
    pub dry_run: bool,
    pub deleted: usize,
    pub freed_bytes: u64,
    pub kept: usize,
    /// What made the deletions durable beyond this machine (the git store's push).
    pub published: Option<String>,
}

impl Report for PruneOutcome {
    fn text(&self) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        format!(
            "{verb} {} blobs that no snapshot refers to ({:.1} MiB); {} blobs are in use\n{}",
            self.deleted,
            self.freed_bytes as f64 / 1048576.0,
            self.kept,
            super::published_line(self.published.as_deref())
        )
    }
}

/// Deletes what no snapshot refers to, alone: it waits up to `wait` for running backups and
/// forgets to finish (and refuses after that).
pub fn prune(options: &PruneOptions, env: Env<'_>) -> Result<PruneOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    let _alone = store_access::lock(store, LockKind::Prune, options.wait)?;
    let report = prune::prune(store, crate::time::now_ms(), options.dry_run)?;
    let published = if options.dry_run {
        None
    } else {
        store.publish()?
    };
    Ok(PruneOutcome {
        dry_run: options.dry_run,
        deleted: report.deleted,
        freed_bytes: report.freed_bytes,
        kept: report.kept,
        published,
    })
}

#[derive(Debug, Clone)]
pub struct UnlockOptions {
    pub dir: PathBuf,
    /// Only this lock and the other locks of its run.
    pub lock: Option<String>,
    /// Remove live locks too.
    pub force: bool,
}

/// A lock unlock removed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedLock {
    pub path: String,
    /// Who held it, and since when.
    pub holder: String,
    /// Why it was stale; None for a live lock removed with --force.
    pub stale_because: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockOutcome {
    pub removed: Vec<RemovedLock>,
    /// Live locks left in place (none counted when one lock was named, or with --force).
    pub live_kept: usize,
    pub published: Option<String>,
}

impl Report for UnlockOutcome {
    fn text(&self) -> String {
        let mut out = String::new();
        for lock in &self.removed {
            let _ = match &lock.stale_because {
                Some(why) => writeln!(
                    out,
                    "removed stale lock {}: {} ({why})",
                    lock.path, lock.holder
                ),
                None => writeln!(
                    out,
                    "removed LIVE lock {}: {}; if that process still runs, its run now fails instead of committing",
                    lock.path, lock.holder
                ),
            };
        }
        if self.live_kept > 0 {
            let _ = writeln!(
                out,
                "{} live locks kept (`cairn check` lists them; --force removes them too)",
                self.live_kept
            );
        }
        let _ = writeln!(out, "removed {} locks", self.removed.len());
        out.push_str(&super::published_line(self.published.as_deref()));
        out
    }
}

/// Removes the locks whose holders are gone (or one lock and the rest of its run); live
/// locks only with `force`, naming what that breaks.
pub fn unlock(options: &UnlockOptions, env: Env<'_>) -> Result<UnlockOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    let removed = match &options.lock {
        Some(id) => store.unlock_one(id, options.force)?,
        None => store.unlock(options.force)?,
    };
    let now = crate::time::now_ms();
    let removed = removed
        .iter()
        .map(|(path, info, liveness)| RemovedLock {
            path: path.to_string(),
            holder: info.describe(now),
            stale_because: match liveness {
                Liveness::Stale(why) => Some(why.to_string()),
                Liveness::Live => None,
            },
        })
        .collect();
    let live_kept = match options.lock.is_none() && !options.force {
        true => store.locks()?.len(),
        false => 0,
    };
    Ok(UnlockOutcome {
        removed,
        live_kept,
        published: store.publish()?,
    })
}
