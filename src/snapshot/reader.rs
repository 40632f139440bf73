//! Reading an object's records back: the base and its deltas merged in Id order, the newest
//! layer winning, tombstones removing. One segment per layer is held at a time.

use super::columns;
use super::manifest::{ObjectEntry, SegmentRef};
use super::segment::Entry;
use crate::store::{Store, StoreError};

/// A layer (the base or one delta): its segments, read one at a time.
struct Layer {
    segments: Vec<SegmentRef>,
    next_segment: usize,
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    at: usize,
}

impl Drop for Layer {
    fn drop(&mut self) {
        crate::store::buffers::give_back(std::mem::take(&mut self.bytes));
    }
}

impl Layer {
    fn new(segments: Vec<SegmentRef>) -> Self {
        Layer {
            segments,
            next_segment: 0,
            bytes: Vec::new(),
            entries: Vec::new(),
            at: 0,
        }
    }

    /// The current entry, loading the next segment when this one is done.
    fn head(&mut self, store: &Store) -> Result<Option<Entry>, StoreError> {
        while self.at >= self.entries.len() {
            let Some(segment) = self.segments.get(self.next_segment) else {
                return Ok(None);
            };
            crate::store::buffers::give_back(std::mem::take(&mut self.bytes));
            (self.bytes, self.entries) =
                columns::open(&segment.blob, store.get_blob(&segment.blob)?)?;
            self.at = 0;
            self.next_segment += 1;
        }
        Ok(Some(self.entries[self.at]))
    }

    fn id(&self, entry: Entry) -> &[u8] {
        &self.bytes[entry.id.0..entry.id.1]
    }
}

/// The records of one object in a snapshot, ascending by Id.
/// A record's Id and body; no body is a deletion.
pub type Versioned = (String, Option<Vec<u8>>);

pub struct ObjectReader<'s> {
    store: &'s Store,
    /// Oldest (base) first: later layers win.
    layers: Vec<Layer>,
    failed: bool,
    /// Yield deletions (records without a body) too.
    tombstones: bool,
}

impl<'s> ObjectReader<'s> {
    pub fn new(store: &'s Store, _object: &str, entry: &ObjectEntry) -> Self {
        let mut layers = vec![Layer::new(entry.base.clone())];
        layers.extend(entry.deltas.iter().map(|d| Layer::new(d.segments.clone())));
        ObjectReader {
            store,
            layers,
            failed: false,
            tombstones: false,
        }
    }

    /// Reads the layers of `entry` yielding deletions too, as records with no body: what a
    /// delta says, rather than what the object holds.
    pub fn changes(store: &'s Store, entry: &ObjectEntry) -> ChangeReader<'s> {
        let mut reader = ObjectReader::new(store, "", entry);
        reader.tombstones = true;
        ChangeReader(reader)
    }

    fn next_record(&mut self) -> Result<Option<Versioned>, StoreError> {
        loop {
            // The smallest Id among the layers' heads, and the newest layer that has it.
            let mut best: Option<(usize, Entry)> = None;
            for i in 0..self.layers.len() {
                let Some(entry) = self.layers[i].head(self.store)? else {
                    continue;
                };
                let newer_or_smaller = match best {
                    None => true,
                    Some((j, current)) => self.layers[i].id(entry) <= self.layers[j].id(current),
                };
                if newer_or_smaller {
                    best = Some((i, entry));
                }
            }
            let Some((winner, entry)) = best else {
                return Ok(None);
            };
            let id = self.layers[winner].id(entry).to_vec();
            let body = entry
                .body
                .map(|(s, e)| self.layers[winner].bytes[s..e].to_vec());
            // Every layer holding this Id moves past it.
            for layer in &mut self.layers {
                if let Some(head) = layer.head(self.store)?
                    && layer.id(head) == id.as_slice()
                {
                    layer.at += 1;
                }
            }
            if body.is_some() || self.tombstones {
                let id = String::from_utf8(id).map_err(|_| StoreError::CorruptBlob {
                    id: String::new(),
                    reason: "a record id is not UTF-8".into(),
                })?;
                return Ok(Some((id, body)));
            }
        }
    }
}

impl Iterator for ObjectReader<'_> {
    type Item = Result<(String, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some((id, Some(body)))) => Some(Ok((id, body))),
            Ok(Some((_, None))) => unreachable!("tombstones only come through ChangeReader"),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Records and deletions of some layers, in Id order: `(id, None)` is a deletion.
pub struct ChangeReader<'s>(ObjectReader<'s>);

impl Iterator for ChangeReader<'_> {
    type Item = Result<Versioned, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.failed {
            return None;
        }
        match self.0.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(e) => {
                self.0.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One record of an object by Id, reading only the segments whose Id ranges can hold it.
pub fn find_record(
    store: &Store,
    entry: &ObjectEntry,
    id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(RecordLookup::new(store, entry)
        .find(id)?
        .map(<[u8]>::to_vec))
}

/// Point lookups by Id that keep what they read: the merged records of the segments last read
/// stay decoded, so lookups in Id order read each segment once rather than once per record.
pub struct RecordLookup {
    store: Store,
    entry: ObjectEntry,
    /// The segments `records` was read from: a lookup whose Id falls in exactly these has
    /// its answer here (any other segment could hold a newer version or a tombstone).
    loaded: Vec<String>,
    records: Vec<(String, Vec<u8>)>,
}

impl RecordLookup {
    /// Owns its handles (both cheap to copy), so it can move to a blocking thread.
    pub fn new(store: &Store, entry: &ObjectEntry) -> Self {
        RecordLookup {
            store: store.clone(),
            entry: entry.clone(),
            loaded: Vec::new(),
            records: Vec::new(),
        }
    }

    pub fn find(&mut self, id: &str) -> Result<Option<&[u8]>, StoreError> {
        let narrowed = self.entry.restricted_to(&[id.to_string()]);
        let segments: Vec<String> = narrowed.segments().map(|s| s.blob.clone()).collect();
        if segments.is_empty() {
            return Ok(None);
        }
        if segments != self.loaded {
            self.loaded.clear();
            self.records =
                ObjectReader::new(&self.store, "", &narrowed).collect::<Result<_, _>>()?;
            self.loaded = segments;
        }
        Ok(self
            .records
            .binary_search_by(|(found, _)| found.as_str().cmp(id))
            .ok()
            .map(|at| self.records[at].1.as_slice()))
    }
}
