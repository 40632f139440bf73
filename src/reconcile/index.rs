//! Keeping a task's search index in step with its snapshots: each backup adds its change, and
//! an index that is gone or unreadable is rebuilt from every snapshot the task still has, so
//! search keeps finding records deleted long ago.

use std::collections::BTreeMap;

use tantivy::IndexWriter;

use crate::diff::{CoverageChange, Kind, ObjectStats, RecordChange};
use crate::search::{BlockWriter, SearchIndex};
use crate::snapshot::writer::load_manifest;
use crate::snapshot::{ObjectEntry, ObjectReader, SnapshotManifest};
use crate::store::{Store, StoreError};

use crate::state::status::SnapshotRow;

/// Adds one snapshot's versions to an index: every change against the snapshot before it.
pub(super) struct Indexing<'a> {
    store: &'a Store,
    writer: &'a mut IndexWriter,
    blocks: BlockWriter,
    error: Option<StoreError>,
}

impl<'a> Indexing<'a> {
    pub(super) fn new(
        store: &'a Store,
        (index, writer): (&'a SearchIndex, &'a mut IndexWriter),
        snapshot: &'a str,
        manifest: &SnapshotManifest,
    ) -> Result<Indexing<'a>, StoreError> {
        let time = crate::time::parse_datetime(&manifest.time).unwrap_or(0);
        Ok(Indexing {
            store,
            writer,
            blocks: index.blocks(snapshot, time)?,
            error: None,
        })
    }

    /// One record's change, as the diff reports it; the first failure is kept for
    /// [`Indexing::finish`] (the diff's callback cannot return it).
    pub(super) fn change(&mut self, change: &RecordChange) {
        // A file's searchable text (title, name, extension, parent) is its record's; its body
        // row adds only chunk ids.
        if crate::snapshot::files::is_body_object(&change.object) {
            return;
        }
        let added = match (&change.change, &change.body) {
            (Kind::Deleted, _) => self
                .blocks
                .add_deletion(self.writer, &change.object, &change.id),
            (_, Some(body)) => {
                self.blocks
                    .add_record(self.writer, &change.object, &change.id, body)
            }
            (_, None) => Ok(()),
        };
        if let Err(e) = added {
            self.error.get_or_insert(e);
        }
    }

    /// Every record of an object, as of this snapshot.
    pub(super) fn whole_object(
        &mut self,
        object: &str,
        entry: &ObjectEntry,
    ) -> Result<(), StoreError> {
        if crate::snapshot::files::is_body_object(object) {
            return Ok(());
        }
        for record in ObjectReader::new(self.store, object, entry) {
            let (id, body) = record?;
            self.blocks.add_record(self.writer, object, &id, &body)?;
        }
        Ok(())
    }

    /// Objects that entered the backup bring records that are not new in the org, but are
    /// new to search.
    pub(super) fn entered(
        &mut self,
        manifest: &SnapshotManifest,
        stats: &BTreeMap<String, ObjectStats>,
    ) -> Result<(), StoreError> {
        for (object, s) in stats {
            if matches!(s.coverage, Some(CoverageChange::Entered { .. }))
                && let Some(entry) = manifest.objects.get(object)
            {
                self.whole_object(object, entry)?;
            }
        }
        Ok(())
    }

    /// Writes the last block, or says the first failure.
    pub(super) fn finish(self) -> Result<(), StoreError> {
        self.error.map_or(Ok(()), Err)?;
        self.blocks.finish(self.writer)
    }
}

/// Indexes `manifest` on top of `older` (the snapshot indexed before it), or whole.
fn index_snapshot(
    store: &Store,
    target: (&SearchIndex, &mut IndexWriter),
    older: Option<&SnapshotManifest>,
    id: &str,
    manifest: &SnapshotManifest,
) -> Result<(), StoreError> {
    let mut indexing = Indexing::new(store, target, id, manifest)?;
    match older {
        None => {
            for (object, entry) in &manifest.objects {
                indexing.whole_object(object, entry)?;
            }
        }
        Some(older) => {
            let stats = crate::diff::diff(store, older, manifest, None, false, &mut |c| {
                indexing.change(&c)
            })?;
            indexing.entered(manifest, &stats)?;
        }
    }
    indexing.finish()
}

/// What a rebuild read: the snapshots indexed, and those it could not read (with why).
pub(super) struct Rebuilt {
    pub snapshots: usize,
    pub unreadable: Vec<String>,
}

/// Rebuilds a lost index from the task's snapshots, oldest first, up to and including
/// `parent` (the snapshot the current run builds on, which the run has verified). A snapshot
/// that does not read is left out, said, and the next one is indexed against the last that
/// did: derived data never fails a backup for the history it cannot recover.
pub(super) fn rebuild_from_history(
    store: &Store,
    (index, writer): (&SearchIndex, &mut IndexWriter),
    rows: &[SnapshotRow],
    (parent_id, parent): (&str, &SnapshotManifest),
) -> Result<Rebuilt, StoreError> {
    let parent_time = crate::time::parse_datetime(&parent.time).unwrap_or(i64::MAX);
    let mut older: Vec<(i64, &str)> = rows
        .iter()
        .filter(|row| row.id != parent_id)
        .map(|row| {
            (
                crate::time::parse_datetime(&row.time).unwrap_or(0),
                row.id.as_str(),
            )
        })
        .filter(|(time, _)| *time <= parent_time)
        .collect();
    older.sort();
    let mut rebuilt = Rebuilt {
        snapshots: 0,
        unreadable: Vec::new(),
    };
    let mut last: Option<SnapshotManifest> = None;
    for (_, id) in older {
        let manifest = match load_manifest(store, id) {
            Ok(manifest) => manifest,
            Err(e) => {
                rebuilt.unreadable.push(format!("{id} ({e})"));
                continue;
            }
        };
        match index_snapshot(store, (index, &mut *writer), last.as_ref(), id, &manifest) {
            Ok(()) => {
                rebuilt.snapshots += 1;
                last = Some(manifest);
            }
            Err(e) => rebuilt.unreadable.push(format!("{id} ({e})")),
        }
    }
    if index_snapshot(
        store,
        (index, &mut *writer),
        last.as_ref(),
        parent_id,
        parent,
    )
    .is_err()
    {
        // Against a damaged older snapshot the change cannot be read; the parent itself can.
        index_snapshot(store, (index, writer), None, parent_id, parent)?;
    }
    rebuilt.snapshots += 1;
    Ok(rebuilt)
}
