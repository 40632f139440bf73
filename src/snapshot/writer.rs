//! Writing a snapshot: segments first, the manifest last, so a crash at any point leaves the
//! previous snapshot intact and at worst some unreferenced blobs for `prune` to collect.

use std::collections::BTreeMap;

use super::columns;
use super::manifest::{Delta, ObjectEntry, Outcome, SegmentRef, SnapshotManifest, Source, Window};
use super::recent::RecentVersions;
use super::segment::{self, SegmentBuilder};
use crate::store::lock::{Lock, LockKind};
use crate::store::{Store, StoreError};

/// Deltas an object may carry before they are folded (`SnapshotWriter::compact`).
pub const MAX_DELTAS: usize = 8;

/// Segments handed to the sealing thread and not yet sealed, at most: room for the records to
/// keep coming while it works through one (each is a segment's worth of memory, per object
/// fetched at once).
const SEALING_DEPTH: usize = 1;

/// One change since the parent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(String, Vec<u8>),
    Delete(String),
}

pub struct SnapshotWriter<'s> {
    store: &'s Store,
    /// Held while writing, so `prune` cannot delete the new blobs before the manifest names them.
    lock: Lock,
    task: String,
    parent: Option<String>,
    objects: BTreeMap<String, ObjectEntry>,
    /// The objects as the parent has them: what a compaction folds.
    parent_objects: BTreeMap<String, ObjectEntry>,
    max_deltas: usize,
}

/// Cuts ascending records into sealed segments. Each full segment is sealed (keyed id, zstd,
/// AES-GCM, write) on a second thread while the next one fills, so producing records (parsing
/// a download, or merging sorted runs) and sealing them use both cores. Owns its handle on the
/// store, so it can live on a blocking thread of its own.
pub struct SegmentSink {
    store: Store,
    object: String,
    /// Plaintext bytes a segment is cut at.
    target: usize,
    builder: SegmentBuilder,
    written: Vec<SegmentRef>,
    previous: Option<String>,
    /// Started at the second segment: an object of one segment is sealed where it is built.
    sealer: Option<Sealer>,
    /// The segments being sealed, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
}

/// What a segment's reference needs besides the blob id the sealing thread answers with.
struct InFlight {
    records: u64,
    first: String,
    last: String,
    bytes: u64,
}

/// The sealing thread: takes one segment's bytes at a time and gives the buffer back, so the
/// builder reuses it instead of faulting in fresh memory for every segment.
struct Sealer {
    segments: std::sync::mpsc::SyncSender<Vec<u8>>,
    sealed: std::sync::mpsc::Receiver<(Result<String, StoreError>, Vec<u8>)>,
    thread: std::thread::JoinHandle<()>,
}

impl Sealer {
    fn start(store: Store) -> std::io::Result<Sealer> {
        let (segments, incoming) = std::sync::mpsc::sync_channel::<Vec<u8>>(SEALING_DEPTH);
        let (done, sealed) = std::sync::mpsc::sync_channel(SEALING_DEPTH);
        let thread = std::thread::Builder::new()
            .name("cairn-seal".into())
            .spawn(move || {
                for mut bytes in incoming {
                    let blob =
                        columns::with_stored(&bytes, |stored| store.put_blob("segment", stored));
                    bytes.clear();
                    // A sink that stopped listening (abandoned) still has every segment it
                    // handed over land before it lets go: see its Drop.
                    let _ = done.send((blob, bytes));
                }
            })?;
        Ok(Sealer {
            segments,
            sealed,
            thread,
        })
    }
}

impl SegmentSink {
    pub fn new(store: &Store, object: &str) -> Self {
        SegmentSink {
            store: store.clone(),
            object: object.to_string(),
            target: segment::TARGET_BYTES,
            builder: SegmentBuilder::default(),
            written: Vec::new(),
            previous: None,
            sealer: None,
            in_flight: std::collections::VecDeque::new(),
        }
    }

    /// A sink for a delta: its segments are cut at [`segment::DELTA_TARGET_BYTES`].
    pub fn for_delta(store: &Store, object: &str) -> Self {
        let mut sink = SegmentSink::new(store, object);
        sink.target = segment::DELTA_TARGET_BYTES;
        sink
    }

    /// Adds a record (or, with no body, a tombstone); Ids must ascend.
    pub fn push(&mut self, id: &str, body: Option<&[u8]>) -> Result<(), StoreError> {
        if let Some(previous) = &self.previous
            && previous.as_str() >= id
        {
            return Err(StoreError::Unordered {
                object: self.object.clone(),
                previous: previous.clone(),
                id: id.to_string(),
            });
        }
        let previous = self.previous.get_or_insert_with(String::new);
        previous.clear();
        previous.push_str(id);
        self.builder.push(id, body);
        if self.builder.plaintext_bytes() >= self.target {
            self.hand_over()?;
        }
        Ok(())
    }

    fn sealer_failed(&self) -> StoreError {
        StoreError::Backend {
            location: format!("segments of {}", self.object),
            message: "the thread sealing segments stopped unexpectedly".into(),
        }
    }

    /// Passes the full segment to the sealing thread, once fewer than [`SEALING_DEPTH`] are
    /// waiting there (which bounds the memory to that many segments and one more).
    fn hand_over(&mut self) -> Result<(), StoreError> {
        let mut spare = match self.in_flight.len() >= SEALING_DEPTH {
            true => self.wait_for_sealing()?,
            false => Vec::new(),
        };
        if spare.capacity() == 0 {
            // An object that filled a segment is likely to fill the next: room for it at once
            // rather than growing (and copying) it step by step.
            spare.reserve(segment::TARGET_BYTES + segment::TARGET_BYTES / 8);
        }
        let builder = std::mem::replace(&mut self.builder, SegmentBuilder::reusing(spare));
        let (bytes, records, first, last) = builder.finish();
        if self.sealer.is_none() {
            let sealer = Sealer::start(self.store.clone()).map_err(|e| StoreError::Backend {
                location: format!("segments of {}", self.object),
                message: format!("could not start a thread to seal segments: {e}"),
            })?;
            self.sealer = Some(sealer);
        }
        let size = bytes.len() as u64;
        let sent = self
            .sealer
            .as_ref()
            .is_some_and(|sealer| sealer.segments.send(bytes).is_ok());
        if !sent {
            return Err(self.sealer_failed());
        }
        self.in_flight.push_back(InFlight {
            records,
            first,
            last,
            bytes: size,
        });
        Ok(())
    }

    /// Waits for the oldest segment in flight, records it, and returns its buffer for reuse.
    fn wait_for_sealing(&mut self) -> Result<Vec<u8>, StoreError> {
        let Some(segment) = self.in_flight.pop_front() else {
            return Ok(Vec::new());
        };
        let answer = self.sealer.as_ref().and_then(|s| s.sealed.recv().ok());
        let Some((blob, buffer)) = answer else {
            return Err(self.sealer_failed());
        };
        self.written.push(SegmentRef {
            blob: blob?,
            records: segment.records,
            first: segment.first,
            last: segment.last,
            bytes: segment.bytes,
        });
        Ok(buffer)
    }

    /// Seals what is left and returns every segment written, in Id order.
    pub fn finish(mut self) -> Result<Vec<SegmentRef>, StoreError> {
        while !self.in_flight.is_empty() {
            self.wait_for_sealing()?;
        }
        let builder = std::mem::take(&mut self.builder);
        if !builder.is_empty() {
            let (bytes, records, first, last) = builder.finish();
            self.written.push(SegmentRef {
                blob: columns::with_stored(&bytes, |stored| {
                    self.store.put_blob("segment", stored)
                })?,
                records,
                first,
                last,
                bytes: bytes.len() as u64,
            });
        }
        Ok(std::mem::take(&mut self.written))
    }
}

impl Drop for SegmentSink {
    fn drop(&mut self) {
        // Finished or abandoned (a failed fetch): the segments in flight still land before the
        // writer's lock is let go, so a prune never races them.
        if let Some(sealer) = self.sealer.take() {
            drop(sealer.segments);
            drop(sealer.sealed);
            let _ = sealer.thread.join();
        }
    }
}

impl<'s> SnapshotWriter<'s> {
    /// A snapshot of `task`; objects not written again keep what the parent had. Fails when a
    /// prune holds the store.
    pub fn new(
        store: &'s Store,
        task: &str,
        parent: Option<(&str, &SnapshotManifest)>,
    ) -> Result<Self, StoreError> {
        Ok(SnapshotWriter {
            lock: store.lock(LockKind::Backup, crate::time::now_ms())?,
            store,
            task: task.to_string(),
            parent: parent.map(|(id, _)| id.to_string()),
            objects: parent.map(|(_, m)| m.objects.clone()).unwrap_or_default(),
            parent_objects: parent.map(|(_, m)| m.objects.clone()).unwrap_or_default(),
            max_deltas: MAX_DELTAS,
        })
    }

    pub fn max_deltas(mut self, max: usize) -> Self {
        self.max_deltas = max.max(1);
        self
    }

    /// Writes every record of an object (ascending Ids) as a new base.
    pub fn full_object<I>(&mut self, object: &str, records: I) -> Result<u64, StoreError>
    where
        I: IntoIterator<Item = Result<(String, Vec<u8>), StoreError>>,
    {
        let (base, count) = write_base(self.store, object, records)?;
        self.set_base(object, base, count);
        Ok(count)
    }

    /// Makes already written segments (ascending, no tombstones) the object's new base,
    /// replacing its base and deltas.
    pub fn set_base(&mut self, object: &str, base: Vec<SegmentRef>, count: u64) {
        let previous = self.objects.remove(object).unwrap_or_default();
        self.objects.insert(
            object.to_string(),
            ObjectEntry {
                fields: previous.fields,
                base_records: count,
                base,
                deltas: Vec::new(),
                records: Some(count),
                schema: previous.schema,
                until: previous.until,
                full_at: previous.full_at,
                recent: previous.recent,
                scope: previous.scope,
                pending: previous.pending,
                folded: None,
            },
        );
    }

    /// Writes the changes to an object since the parent (ascending Ids) as a delta; folds the
    /// deltas into a new base at `finish` when there are more than allowed.
    pub fn changes<I>(&mut self, object: &str, changes: I) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = Change>,
    {
        let mut sink = SegmentSink::new(self.store, object);
        let (mut upserts, mut deletes) = (0, 0);
        for change in changes {
            match &change {
                Change::Upsert(id, body) => {
                    sink.push(id, Some(body))?;
                    upserts += 1;
                }
                Change::Delete(id) => {
                    sink.push(id, None)?;
                    deletes += 1;
                }
            }
        }
        self.add_delta(object, sink.finish()?, upserts, deletes);
        Ok(())
    }

    /// Adds already written segments (ascending, tombstones allowed) as the object's newest
    /// delta; nothing when they hold no change.
    pub fn add_delta(
        &mut self,
        object: &str,
        segments: Vec<SegmentRef>,
        upserts: u64,
        deletes: u64,
    ) {
        let entry = self.objects.entry(object.to_string()).or_default();
        if upserts + deletes > 0 {
            entry.deltas.push(Delta {
                upserts,
                deletes,
                segments,
            });
        }
    }

    /// Records which fields an object's records hold (the source's describe, in order).
    pub fn set_fields(&mut self, object: &str, fields: Vec<String>) {
        self.objects.entry(object.to_string()).or_default().fields = fields;
    }

    /// Records what of the object its records cover beyond its fields.
    pub fn set_scope(&mut self, object: &str, scope: Option<String>) {
        self.objects.entry(object.to_string()).or_default().scope = scope;
    }

    /// Notes that the object's records are current up to `time`, and whether they were just
    /// fetched in full.
    pub fn mark_synced(&mut self, object: &str, time: &str, full: bool) {
        let entry = self.objects.entry(object.to_string()).or_default();
        entry.until = Some(time.to_string());
        if full {
            entry.full_at = Some(time.to_string());
        }
    }

    /// Adjusts the live record count after a delta: `added` records new to the object,
    /// `removed` that were in it. Unknown counts stay unknown.
    pub fn count_changes(&mut self, object: &str, added: u64, removed: u64) {
        if let Some(entry) = self.objects.get_mut(object) {
            entry.records = entry.records.map(|n| (n + added).saturating_sub(removed));
        }
    }

    /// Records the object's schema document (stored once per distinct content).
    pub fn set_schema(&mut self, object: &str, document: &[u8]) -> Result<(), StoreError> {
        let blob = self.store.put_blob("schema", document)?;
        self.objects.entry(object.to_string()).or_default().schema = Some(blob);
        Ok(())
    }

    /// Records the versions the next incremental will fetch again (see `ObjectEntry::recent`);
    /// `None` when there were too many to list.
    pub fn set_recent(
        &mut self,
        object: &str,
        versions: Option<&RecentVersions>,
    ) -> Result<(), StoreError> {
        let blob = match versions {
            Some(versions) => Some(self.store.put_blob("recent", &versions.encode())?),
            None => None,
        };
        self.objects.entry(object.to_string()).or_default().recent = blob;
        Ok(())
    }

    /// An object's entry as the snapshot holds it so far.
    pub fn entry(&self, object: &str) -> Option<&ObjectEntry> {
        self.objects.get(object)
    }

    /// The objects the snapshot holds so far.
    pub fn objects(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// How many of a body object's rows wait for their body (see `ObjectEntry::pending`).
    pub fn set_pending(&mut self, object: &str, pending: u64) {
        if let Some(entry) = self.objects.get_mut(object) {
            entry.pending = pending;
        }
    }

    /// An object's live record count so far, when known.
    pub fn records(&self, object: &str) -> Option<u64> {
        self.objects.get(object).and_then(|e| e.records)
    }

    /// Leaves an object out of this snapshot (it is gone from the source, or no longer chosen).
    pub fn drop_object(&mut self, object: &str) {
        self.objects.remove(object);
    }

    /// Folds an object's layers when it has too many deltas (`compaction::fold`).
    fn compact(&mut self, object: &str) -> Result<(), StoreError> {
        let Some(entry) = self.objects.get(object) else {
            return Ok(());
        };
        let folded = super::compaction::fold(
            self.store,
            object,
            entry,
            self.parent_objects.get(object),
            self.max_deltas,
        )?;
        self.objects.insert(object.to_string(), folded);
        Ok(())
    }

    /// Seals the manifest (after every segment is stored) and returns the snapshot's id.
    pub fn finish(
        mut self,
        time: &str,
        source: Source,
        window: Option<Window>,
        outcome: Outcome,
    ) -> Result<(String, SnapshotManifest), StoreError> {
        let crowded: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, entry)| entry.deltas.len() > self.max_deltas)
            .map(|(object, _)| object.clone())
            .collect();
        for object in crowded {
            self.compact(&object)?;
        }
        // A lost lock means a prune may have run: the blobs this manifest names may be gone.
        self.lock.ensure_held()?;
        if STOPPED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Interrupted);
        }
        let manifest = SnapshotManifest {
            version: 1,
            task: self.task,
            time: time.to_string(),
            parent: self.parent,
            source,
            window,
            outcome,
            objects: self.objects,
        };
        let json =
            serde_json::to_vec(&manifest).map_err(|e| StoreError::Compression(e.to_string()))?;
        let id = self.store.put_snapshot(&json)?;
        Ok((id, manifest))
    }
}

/// Writes records (ascending Ids) as base segments of `object`; the segments and how many
/// records they hold.
pub(super) fn write_base<I>(
    store: &Store,
    object: &str,
    records: I,
) -> Result<(Vec<SegmentRef>, u64), StoreError>
where
    I: IntoIterator<Item = Result<(String, Vec<u8>), StoreError>>,
{
    let mut sink = SegmentSink::new(store, object);
    let mut count = 0;
    for record in records {
        let (id, body) = record?;
        sink.push(&id, Some(&body))?;
        count += 1;
    }
    Ok((sink.finish()?, count))
}

static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops every writer of this process from finishing a snapshot: after Ctrl-C, a backup's
/// threads may still be sealing, but the run is recorded as interrupted, so no manifest may
/// appear that its state does not name.
pub fn stop_writing() {
    STOPPED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Reads a snapshot manifest from the store.
pub fn load_manifest(store: &Store, id: &str) -> Result<SnapshotManifest, StoreError> {
    let bytes = store.get_snapshot(id)?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::BadManifest {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// Reads back a snapshot just written before anyone is told it succeeded: its manifest opens,
/// and every blob it needs that its parent did not is in the store. The parent's blobs were
/// verified when it was written, so the cost follows the change, not the org.
pub fn verify_written(
    store: &Store,
    id: &str,
    parent: Option<&SnapshotManifest>,
) -> Result<SnapshotManifest, StoreError> {
    let manifest = load_manifest(store, id)?;
    let inherited: std::collections::HashSet<&str> = parent
        .into_iter()
        .flat_map(|p| p.objects.values())
        .flat_map(ObjectEntry::blobs)
        .collect();
    let mut checked = std::collections::HashSet::new();
    for blob in manifest.objects.values().flat_map(ObjectEntry::blobs) {
        if inherited.contains(blob) || !checked.insert(blob) {
            continue;
        }
        if !store.blob_exists(blob)? {
            return Err(StoreError::MissingBlob {
                id: blob.to_string(),
            });
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ObjectReader;

    #[test]
    fn segments_sealed_on_the_side_come_back_complete_and_in_order() {
        let (_dir, store) = crate::store::temporary();
        // 64 KiB bodies: a segment every 64 records, so several wait to be sealed at once.
        let records: Vec<(String, Vec<u8>)> = (0..450u32)
            .map(|n| {
                let body = format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(65_000));
                (format!("001{n:015}"), body.into_bytes())
            })
            .collect();
        let mut sink = SegmentSink::new(&store, "Account");
        for (id, body) in &records {
            sink.push(id, Some(body)).expect("push");
        }
        let segments = sink.finish().expect("finish");
        assert!(segments.len() > SEALING_DEPTH + 2, "{}", segments.len());
        assert!(segments.windows(2).all(|w| w[0].last < w[1].first));
        assert_eq!(
            segments.iter().map(|s| s.records).sum::<u64>(),
            records.len() as u64
        );
        let entry = ObjectEntry {
            base: segments,
            ..ObjectEntry::default()
        };
        let read: Vec<(String, Vec<u8>)> = ObjectReader::new(&store, "Account", &entry)
            .map(|r| r.expect("read"))
            .collect();
        assert_eq!(read, records);
    }
}
