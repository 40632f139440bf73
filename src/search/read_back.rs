//! Reading the versions a candidate block names back from the snapshots, to check them
//! exactly and to show them: only the segments that hold them, the newest layer first, so the
//! versions an incremental captured are read from its own small delta.

use std::collections::HashMap;
use std::rc::Rc;

use crate::snapshot::SnapshotManifest;
use crate::snapshot::manifest::SegmentRef;
use crate::snapshot::segment::{self, Entry};
use crate::snapshot::writer::load_manifest;
use crate::store::{Store, StoreError};

/// Record versions read back: each Id with its body, in Id order.
pub type Versions = Vec<(String, Vec<u8>)>;

/// Where a search reads the record versions its candidate blocks name.
pub trait VersionSource {
    /// The snapshot to read a version captured by `snapshot` at `time` from, and its time:
    /// itself, or when retention has forgotten it, the next snapshot that still exists (which
    /// holds the same version unless a later change, indexed on its own, replaced it). None
    /// when no snapshot holds it any more.
    fn locate(&self, snapshot: &str, time: i64) -> Option<(String, i64)>;

    /// The bodies of `ids` (sorted) of `object` as `snapshot` holds them, in Id order; an Id
    /// it does not hold (deleted by then) is left out. None when the snapshot cannot be read.
    fn read(
        &mut self,
        snapshot: &str,
        object: &str,
        ids: &[String],
    ) -> Result<Option<Versions>, StoreError>;
}

/// Decoded segments kept for the next block: neighbouring blocks share segments.
const SEGMENTS_KEPT: usize = 4;

struct Decoded {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Decoded {
    fn id(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.id.0..entry.id.1]
    }
}

/// The task's snapshots in the store.
pub struct SnapshotVersions<'s> {
    store: &'s Store,
    /// The snapshots that exist, oldest first, with their times; empty when not known (then
    /// every snapshot is taken to exist).
    existing: Vec<(i64, String)>,
    manifests: HashMap<String, Option<SnapshotManifest>>,
    segments: Vec<(String, Rc<Decoded>)>,
}

impl<'s> SnapshotVersions<'s> {
    pub fn new(store: &'s Store, mut existing: Vec<(i64, String)>) -> Self {
        existing.sort();
        SnapshotVersions {
            store,
            existing,
            manifests: HashMap::new(),
            segments: Vec::new(),
        }
    }

    fn segment(&mut self, blob: &str) -> Result<Rc<Decoded>, StoreError> {
        if let Some(at) = self.segments.iter().position(|(b, _)| b == blob) {
            let kept = self.segments.remove(at);
            let decoded = kept.1.clone();
            self.segments.push(kept);
            return Ok(decoded);
        }
        let bytes = self.store.get_blob(blob)?;
        let entries = segment::index(blob, &bytes)?;
        let decoded = Rc::new(Decoded { bytes, entries });
        if self.segments.len() >= SEGMENTS_KEPT {
            self.segments.remove(0);
        }
        self.segments.push((blob.to_string(), decoded.clone()));
        Ok(decoded)
    }
}

impl VersionSource for SnapshotVersions<'_> {
    fn locate(&self, snapshot: &str, time: i64) -> Option<(String, i64)> {
        if self.existing.is_empty() || self.existing.iter().any(|(_, id)| id == snapshot) {
            return Some((snapshot.to_string(), time));
        }
        self.existing
            .iter()
            .find(|(at, _)| *at >= time)
            .map(|(at, id)| (id.clone(), *at))
    }

    fn read(
        &mut self,
        snapshot: &str,
        object: &str,
        ids: &[String],
    ) -> Result<Option<Versions>, StoreError> {
        let store = self.store;
        let manifest = self
            .manifests
            .entry(snapshot.to_string())
            .or_insert_with(|| load_manifest(store, snapshot).ok());
        let Some(entry) = manifest.as_ref().and_then(|m| m.objects.get(object)) else {
            return Ok(None);
        };
        // Newest layer first: the first layer holding an Id says what it is (a tombstone: gone).
        let layers: Vec<Vec<SegmentRef>> = entry
            .deltas
            .iter()
            .rev()
            .map(|delta| delta.segments.clone())
            .chain([entry.base.clone()])
            .collect();
        let mut remaining: Vec<&String> = ids.iter().collect();
        let mut found = Vec::new();
        for layer in layers {
            for segment in layer {
                if remaining.is_empty() {
                    break;
                }
                let within = |id: &&String| {
                    id.as_str() >= segment.first.as_str() && id.as_str() <= segment.last.as_str()
                };
                if !remaining.iter().any(within) {
                    continue;
                }
                let decoded = self.segment(&segment.blob)?;
                remaining.retain(|id| {
                    if !within(id) {
                        return true;
                    }
                    let at = decoded
                        .entries
                        .binary_search_by(|e| decoded.id(e).cmp(id.as_bytes()));
                    let Ok(at) = at else {
                        return true;
                    };
                    if let Some((start, end)) = decoded.entries[at].body {
                        found.push(((*id).clone(), decoded.bytes[start..end].to_vec()));
                    }
                    false
                });
            }
        }
        found.sort();
        Ok(Some(found))
    }
}
