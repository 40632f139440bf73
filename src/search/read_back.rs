//! Reading the versions a candidate block names back from the snapshots, to check them
//! exactly and to show them: only the segments that hold them (`IdsLookup`).

use std::collections::HashMap;

use crate::snapshot::ids_lookup::IdsLookup;
use crate::snapshot::{ObjectEntry, SnapshotManifest};
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

/// The task's snapshots in the store.
pub struct SnapshotVersions<'s> {
    store: &'s Store,
    /// The snapshots that exist, oldest first, with their times; empty when not known (then
    /// every snapshot is taken to exist).
    existing: Vec<(i64, String)>,
    /// Each snapshot's manifest as JSON (None: it does not open), of which only the entries
    /// of objects searched are parsed: at 10M records a manifest is half a megabyte.
    manifests: HashMap<String, Option<Vec<u8>>>,
    entries: HashMap<(String, String), Option<ObjectEntry>>,
    lookup: IdsLookup,
}

impl<'s> SnapshotVersions<'s> {
    pub fn new(store: &'s Store, mut existing: Vec<(i64, String)>) -> Self {
        existing.sort();
        SnapshotVersions {
            store,
            existing,
            manifests: HashMap::new(),
            entries: HashMap::new(),
            lookup: IdsLookup::default(),
        }
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
        let manifests = &mut self.manifests;
        let entry = self
            .entries
            .entry((snapshot.to_string(), object.to_string()))
            .or_insert_with(|| {
                let json = manifests
                    .entry(snapshot.to_string())
                    .or_insert_with(|| store.get_snapshot(snapshot).ok());
                json.as_deref()
                    .and_then(|json| SnapshotManifest::object_entry(json, object).ok())
                    .flatten()
            });
        let Some(entry) = entry.as_ref() else {
            return Ok(None);
        };
        self.lookup.read(store, entry, ids).map(Some)
    }
}
