//! Keeping a task's search index in step with its snapshots: each backup adds its change, and
//! an index that is gone or unreadable is rebuilt from every snapshot the task still has, so
//! search keeps finding records deleted long ago.

use std::collections::BTreeMap;

use tantivy::IndexWriter;

use crate::diff::{CoverageChange, Kind, ObjectStats, RecordChange};
use crate::search::SearchIndex;
use crate::snapshot::writer::load_manifest;
use crate::snapshot::{ObjectEntry, ObjectReader, SnapshotManifest};
use crate::store::{Store, StoreError};

use crate::state::status::SnapshotRow;

/// Adds one snapshot's versions to an index: every change against the snapshot before it.
pub(super) struct Indexing<'a> {
    store: &'a Store,
    index: &'a SearchIndex,
    writer: &'a IndexWriter,
    snapshot: &'a str,
    time: i64,
    error: Option<StoreError>,
}

impl<'a> Indexing<'a> {
    pub(super) fn new(
        store: &'a Store,
        (index, writer): (&'a SearchIndex, &'a IndexWriter),
        snapshot: &'a str,
        manifest: &SnapshotManifest,
    ) -> Indexing<'a> {
        Indexing {
            store,
            index,
            writer,
            snapshot,
            time: crate::time::parse_datetime(&manifest.time).unwrap_or(0),
            error: None,
        }
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
            (Kind::Deleted, _) => self.index.add_deletion(
                self.writer,
                &change.object,
                &change.id,
                self.snapshot,
                self.time,
            ),
            (_, Some(body)) => self.index.add_record(
                self.writer,
                &change.object,
                &change.id,
                self.snapshot,
                self.time,
                body,
            ),
            (_, None) => Ok(()),
        };
        if let Err(e) = added {
            self.error.get_or_insert(e);
        }
    }

    /// Every record of an object, as of this snapshot.
    pub(super) fn whole_object(&self, object: &str, entry: &ObjectEntry) -> Result<(), StoreError> {
        if crate::snapshot::files::is_body_object(object) {
            return Ok(());
        }
        for record in ObjectReader::new(self.store, object, entry) {
            let (id, body) = record?;
            self.index
                .add_record(self.writer, object, &id, self.snapshot, self.time, &body)?;
        }
        Ok(())
    }

    /// Objects that entered the backup bring records that are not new in the org, but are
    /// new to search.
    pub(super) fn entered(
        &self,
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

    pub(super) fn finish(self) -> Result<(), StoreError> {
        self.error.map_or(Ok(()), Err)
    }
}

/// Indexes `manifest` on top of `older` (the snapshot indexed before it), or whole.
fn index_snapshot(
    store: &Store,
    target: (&SearchIndex, &IndexWriter),
    older: Option<&SnapshotManifest>,
    id: &str,
    manifest: &SnapshotManifest,
) -> Result<(), StoreError> {
    let mut indexing = Indexing::new(store, target, id, manifest);
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
    target: (&SearchIndex, &IndexWriter),
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
        match index_snapshot(store, target, last.as_ref(), id, &manifest) {
            Ok(()) => {
                rebuilt.snapshots += 1;
                last = Some(manifest);
            }
            Err(e) => rebuilt.unreadable.push(format!("{id} ({e})")),
        }
    }
    if index_snapshot(store, target, last.as_ref(), parent_id, parent).is_err() {
        // Against a damaged older snapshot the change cannot be read; the parent itself can.
        index_snapshot(store, target, None, parent_id, parent)?;
    }
    rebuilt.snapshots += 1;
    Ok(rebuilt)
}
