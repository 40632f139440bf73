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

/// Open segments an [`IdsLookup`] keeps for the next lookup: neighbouring Ids share them.
const SEGMENTS_KEPT: usize = 4;

/// Lookups of chosen Ids as an object entry holds them, the newest layer first: the first
/// layer holding an Id says what it is, so Ids an incremental captured are read from its own
/// small delta, not the base under it. The last few segments read stay open.
#[derive(Default)]
pub struct IdsLookup {
    segments: Vec<(String, columns::Picker)>,
}

impl IdsLookup {
    /// The segment `blob`, opened, last in the list of those kept.
    fn segment(&mut self, store: &Store, blob: &str) -> Result<&mut columns::Picker, StoreError> {
        if let Some(at) = self.segments.iter().position(|(b, _)| b == blob) {
            let kept = self.segments.remove(at);
            self.segments.push(kept);
        } else {
            let opened = columns::Picker::open(blob, store.get_blob(blob)?)?;
            if self.segments.len() >= SEGMENTS_KEPT {
                self.segments.remove(0);
            }
            self.segments.push((blob.to_string(), opened));
        }
        let (_, opened) = self
            .segments
            .last_mut()
            .ok_or_else(|| StoreError::MissingBlob {
                id: blob.to_string(),
            })?;
        Ok(opened)
    }

    /// The bodies of `ids` in `entry`, in Id order; an Id it does not hold, or holds as a
    /// deletion, is left out.
    pub fn read(
        &mut self,
        store: &Store,
        entry: &ObjectEntry,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let layers = entry
            .deltas
            .iter()
            .rev()
            .map(|delta| &delta.segments)
            .chain([&entry.base]);
        let mut remaining: Vec<&String> = ids.iter().collect();
        let mut found = Vec::new();
        for segment in layers.flatten() {
            if remaining.is_empty() {
                break;
            }
            let within = |id: &&String| {
                id.as_str() >= segment.first.as_str() && id.as_str() <= segment.last.as_str()
            };
            if !remaining.iter().any(within) {
                continue;
            }
            let opened = self.segment(store, &segment.blob)?;
            let mut damaged = None;
            remaining.retain(|id| {
                if !within(id) || damaged.is_some() {
                    return true;
                }
                match opened.pick(id.as_bytes()) {
                    Ok(None) => true,
                    Ok(Some(body)) => {
                        found.extend(body.map(|body| ((*id).clone(), body)));
                        false
                    }
                    Err(reason) => {
                        damaged = Some(reason);
                        true
                    }
                }
            });
            if let Some(reason) = damaged {
                return Err(StoreError::CorruptBlob {
                    id: segment.blob.clone(),
                    reason: reason.to_string(),
                });
            }
        }
        found.sort();
        Ok(found)
    }
}
