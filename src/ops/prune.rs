//! Deleting the blobs no snapshot refers to any more (after `forget`, or left by an interrupted
//! backup), under a prune lock so no backup is writing meanwhile.

use std::collections::BTreeSet;

use crate::snapshot::writer::load_manifest;
use crate::store::lock::LockKind;
use crate::store::{Store, StoreError, blob_path};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: usize,
    pub freed_bytes: u64,
    pub kept: usize,
}

pub fn prune(store: &Store, now_ms: i64, dry_run: bool) -> Result<PruneReport, StoreError> {
    let _lock = store.lock(LockKind::Prune, now_ms)?;
    let mut referenced = BTreeSet::new();
    for id in store.list_snapshots()? {
        // A manifest that cannot be read might need any blob: prune nothing then.
        let manifest = load_manifest(store, &id)?;
        for entry in manifest.objects.values() {
            referenced.extend(entry.blobs().map(str::to_string));
        }
        // File bodies' chunks are named inside their rows; a row that cannot be read might
        // need any chunk, and fails the prune with it.
        referenced.extend(crate::snapshot::files::referenced_chunks(store, &manifest)?);
    }
    referenced.extend(crate::search::referenced_blobs(store)?);
    let mut report = PruneReport::default();
    for blob in store.list_blobs()? {
        if referenced.contains(&blob) {
            report.kept += 1;
            continue;
        }
        let path = blob_path(&blob);
        report.freed_bytes += store.backend().get(&path)?.map_or(0, |b| b.len() as u64);
        report.deleted += 1;
        if !dry_run {
            store.backend().delete(&path)?;
        }
    }
    Ok(report)
}
