//! `cairn prune` and `cairn unlock`: free the data of forgotten snapshots and interrupted
//! backups; clear the locks of processes that died.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::ops::prune;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::store::lock::{Liveness, LockKind};

/// Deletes what no snapshot refers to, alone: it waits up to `wait` for running backups and
/// forgets to finish (and refuses after that).
pub fn prune(dir: &Path, dry_run: bool, wait: Duration, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    let _alone = store_access::lock(store, LockKind::Prune, wait)?;
    let report = prune::prune(store, crate::time::now_ms(), dry_run)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    let published = if dry_run {
        String::new()
    } else {
        store_access::publish(store)?
    };
    Ok(format!(
        "{verb} {} blobs that no snapshot refers to ({:.1} MiB); {} blobs are in use\n{published}",
        report.deleted,
        report.freed_bytes as f64 / 1048576.0,
        report.kept
    ))
}

/// Removes the locks whose holders are gone (or one lock and the rest of its run); live
/// locks only with `force`, naming what that breaks.
pub fn unlock(dir: &Path, id: Option<&str>, force: bool, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    let removed = match id {
        Some(id) => store.unlock_one(id, force)?,
        None => store.unlock(force)?,
    };
    let now = crate::time::now_ms();
    let mut out = String::new();
    for (path, info, liveness) in &removed {
        let _ = match liveness {
            Liveness::Stale(why) => writeln!(
                out,
                "removed stale lock {path}: {} ({why})",
                info.describe(now)
            ),
            Liveness::Live => writeln!(
                out,
                "removed LIVE lock {path}: {}; if that process still runs, its run now fails instead of committing",
                info.describe(now)
            ),
        };
    }
    if id.is_none() && !force {
        let live = store.locks()?.len();
        if live > 0 {
            let _ = writeln!(
                out,
                "{live} live locks kept (`cairn check` lists them; --force removes them too)"
            );
        }
    }
    let _ = writeln!(out, "removed {} locks", removed.len());
    out.push_str(&store_access::publish(store)?);
    Ok(out)
}
