//! Keeping a task's search index in step with its snapshots: each backup adds its change, and
//! an index that is gone or unreadable is rebuilt from every snapshot the task still has, so
//! search keeps finding records deleted long ago.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tantivy::IndexWriter;

use crate::diff::{CoverageChange, Kind, ObjectStats, RecordChange};
use crate::progress::Meter;
use crate::search::{BlockChannel, BlockWriter, SearchIndex, ThrottledWriter, failed};
use crate::snapshot::columns::{self, Record};
use crate::snapshot::writer::load_manifest;
use crate::snapshot::{ObjectEntry, ObjectReader, SnapshotManifest};
use crate::store::{Store, StoreError};

use crate::state::status::SnapshotRow;

/// Blocks made and waiting for the thread that hands them to the index writer: enough to keep
/// it busy, few enough (about 6 KiB each) that they hold little.
const BLOCKS_WAITING: usize = 64;

/// Adds one snapshot's versions to an index: every change against the snapshot before it.
pub(super) struct Indexing<'a> {
    store: &'a Store,
    index: &'a SearchIndex,
    sink: ThrottledWriter<'a>,
    snapshot: &'a str,
    time: i64,
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
            index,
            sink: ThrottledWriter::new(writer),
            snapshot,
            time,
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
            (Kind::Deleted, _) => {
                self.blocks
                    .add_deletion(&mut self.sink, &change.object, &change.id)
            }
            (_, Some(body)) => {
                self.blocks
                    .add_record(&mut self.sink, &change.object, &change.id, body)
            }
            (_, None) => Ok(()),
        };
        if let Err(e) = added {
            self.error.get_or_insert(e);
        }
    }

    /// Every record of these objects, as of this snapshot. The objects are read back and cut
    /// into blocks on a thread per core, one object at a time each, while this thread hands
    /// their blocks to the index writer (whose own thread indexes them): reading, parsing and
    /// cutting words is most of what indexing costs, and objects do not depend on each other.
    pub(super) fn whole_objects(
        &mut self,
        objects: &[(&str, &ObjectEntry)],
        meter: Option<&Meter>,
    ) -> Result<(), StoreError> {
        let objects: Vec<&(&str, &ObjectEntry)> = objects
            .iter()
            .filter(|(object, _)| !crate::snapshot::files::is_body_object(object))
            .collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(objects.len());
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (blocks, made) = std::sync::mpsc::sync_channel(BLOCKS_WAITING);
        let store = self.store;
        std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for _ in 0..workers {
                let writer = self.index.blocks(self.snapshot, self.time)?;
                let mut blocks: BlockChannel = blocks.clone();
                let (next, stop, objects) = (&next, &stop, &objects);
                let spawned = std::thread::Builder::new()
                    .name("cairn-index".into())
                    .spawn_scoped(scope, move || {
                        let made =
                            index_objects(store, objects, next, stop, meter, writer, &mut blocks);
                        if made.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        made
                    })
                    .map_err(|e| failed(format!("could not start a thread to index records: {e}")));
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            drop(blocks);
            let mut handed = Ok(());
            for (block, bytes) in made {
                handed = crate::search::BlockSink::take(&mut self.sink, block, bytes);
                if handed.is_err() {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            // The writer's failure first: a thread that stopped because of it says less.
            let mut result = handed;
            for thread in threads {
                let made = thread.join().unwrap_or_else(|_| {
                    Err(failed("a thread indexing records stopped unexpectedly"))
                });
                if result.is_ok() {
                    result = made;
                }
            }
            result
        })
    }

    /// Objects that entered the backup bring records that are not new in the org, but are
    /// new to search.
    pub(super) fn entered(
        &mut self,
        manifest: &SnapshotManifest,
        stats: &BTreeMap<String, ObjectStats>,
    ) -> Result<(), StoreError> {
        let entered: Vec<(&str, &ObjectEntry)> = stats
            .iter()
            .filter(|(_, s)| matches!(s.coverage, Some(CoverageChange::Entered { .. })))
            .filter_map(|(object, _)| {
                manifest
                    .objects
                    .get(object)
                    .map(|entry| (object.as_str(), entry))
            })
            .collect();
        self.whole_objects(&entered, None)
    }

    /// Writes the last block, or says the first failure.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        self.error.map_or(Ok(()), Err)?;
        self.blocks.finish(&mut self.sink)
    }
}

/// One thread's part of [`Indexing::whole_objects`]: the next object not taken yet, until
/// none is left or another thread failed.
fn index_objects(
    store: &Store,
    objects: &[&(&str, &ObjectEntry)],
    next: &AtomicUsize,
    stop: &AtomicBool,
    meter: Option<&Meter>,
    mut writer: BlockWriter,
    blocks: &mut BlockChannel,
) -> Result<(), StoreError> {
    while let Some((object, entry)) = objects.get(next.fetch_add(1, Ordering::Relaxed)) {
        if entry.deltas.is_empty() {
            // Its base alone: each segment's records as they lie, their values read straight
            // from the columns.
            for segment in &entry.base {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let bytes = store.get_blob(&segment.blob)?;
                columns::for_each_record(&segment.blob, &bytes, &mut |id, record| match record {
                    Record::Fields {
                        keys,
                        values,
                        plain,
                    } => writer.add_fields(blocks, object, id, (keys, values, plain)),
                    Record::Body(body) => writer.add_record(blocks, object, id, body),
                    Record::Deleted => Ok(()),
                })?;
                crate::store::buffers::give_back(bytes);
            }
        } else {
            for record in ObjectReader::new(store, object, entry) {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (id, body) = record?;
                writer.add_record(blocks, object, &id, &body)?;
            }
        }
        if let Some(meter) = meter {
            meter.add(entry.records.unwrap_or(entry.base_records));
        }
    }
    writer.finish(blocks)
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
        None => indexing.whole_objects(&every_object(manifest), None)?,
        Some(older) => {
            let stats = crate::diff::diff(store, older, manifest, None, false, &mut |c| {
                indexing.change(&c)
            })?;
            indexing.entered(manifest, &stats)?;
        }
    }
    indexing.finish()
}

/// A snapshot's objects, for indexing whole.
pub(super) fn every_object(manifest: &SnapshotManifest) -> Vec<(&str, &ObjectEntry)> {
    manifest
        .objects
        .iter()
        .map(|(object, entry)| (object.as_str(), entry))
        .collect()
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
