//! `cairn prune` and `cairn unlock`: free the data of forgotten snapshots and interrupted
//! backups; clear the locks of processes that died.

use std::path::Path;

use super::store_access::{self, Env};
use crate::error::Error;
use crate::store::prune;

pub fn prune(dir: &Path, dry_run: bool, env: Env<'_>) -> Result<String, Error> {
    let store = store_access::open_dir(dir, env)?;
    let report = prune::prune(&store, crate::time::now_ms(), dry_run)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    let published = if dry_run {
        String::new()
    } else {
        store_access::publish(&store)?
    };
    Ok(format!(
        "{verb} {} blobs that no snapshot refers to ({:.1} MiB); {} blobs are in use\n{published}",
        report.deleted,
        report.freed_bytes as f64 / 1048576.0,
        report.kept
    ))
}

/// Removes one lock (`id`), or all of them.
pub fn unlock(dir: &Path, id: Option<&str>, env: Env<'_>) -> Result<String, Error> {
    let store = store_access::open_dir(dir, env)?;
    match id {
        Some(id) => {
            store.unlock(id)?;
            Ok(format!(
                "removed lock {id}\n{}",
                store_access::publish(&store)?
            ))
        }
        None => {
            let removed = store.unlock_all()?;
            Ok(format!(
                "removed {removed} locks\n{}",
                store_access::publish(&store)?
            ))
        }
    }
}
