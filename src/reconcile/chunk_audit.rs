//! Before a backup builds on its parent, the parent's blobs (`unsound_blobs`: each read and
//! authenticated) and the chunks its file bodies name: every one
//! must be in the store, and as many as a run's reading budget allows are read and
//! authenticated (all of them while a task's files are small; otherwise a share that moves on
//! with every run, so damage is found within a few runs without reading gigabytes each time).
//! A body whose chunks are damaged or missing is downloaded again by the run, from the org.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::ObjectReader;
use crate::snapshot::SnapshotManifest;
use crate::snapshot::files::{FileBody, is_body_object};
use crate::store::{Store, StoreError};

/// Bytes of chunks one run reads back before it builds on them.
const READ_BUDGET: u64 = 1024 * 1024 * 1024;

/// The parent's chunks that are missing or do not authenticate, by body object.
pub(super) fn unsound_chunks(
    store: &Store,
    manifest: &SnapshotManifest,
    now_ms: i64,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    // chunk -> (its size, the body objects naming it)
    let mut named: BTreeMap<String, (u64, BTreeSet<&str>)> = BTreeMap::new();
    for (object, entry) in manifest.objects.iter().filter(|(o, _)| is_body_object(o)) {
        for row in ObjectReader::new(store, object, entry) {
            // Damaged rows are the segments' check's to find (it runs first).
            let Ok((_, bytes)) = row else { break };
            let Ok(body) = FileBody::parse(&bytes) else {
                continue;
            };
            for chunk in body.chunks {
                named
                    .entry(chunk.blob)
                    .or_insert_with(|| (chunk.size, BTreeSet::new()))
                    .1
                    .insert(object);
            }
        }
    }
    if named.is_empty() {
        return Ok(BTreeMap::new());
    }
    let stored: BTreeSet<String> = store.list_blobs()?.into_iter().collect();
    let total: u64 = named.values().map(|(size, _)| size).sum();
    // The share of chunks read this run, placed by their ids (uniform hex) from an offset
    // that moves with the hour of the run.
    let share = (READ_BUDGET as f64 / total.max(1) as f64).min(1.0);
    let offset = ((now_ms / 3_600_000) as f64 * 0.618_033_988_7).fract();
    let selected = |chunk: &str| {
        let position = u32::from_str_radix(chunk.get(..8).unwrap_or("0"), 16).unwrap_or(0);
        let place = (position as f64 / f64::from(u32::MAX) - offset).rem_euclid(1.0);
        share >= 1.0 || place < share
    };
    let mut unsound: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (chunk, (_, objects)) in &named {
        let sound = stored.contains(chunk)
            && (!selected(chunk)
                || match store.verify_blob(chunk) {
                    Ok(()) => true,
                    Err(StoreError::MissingBlob { .. } | StoreError::CorruptBlob { .. }) => false,
                    Err(other) => return Err(other),
                });
        if !sound {
            for object in objects {
                unsound
                    .entry(object.to_string())
                    .or_default()
                    .insert(chunk.clone());
            }
        }
    }
    Ok(unsound)
}

/// The objects of a snapshot with blobs that are missing or do not verify, and how many each:
/// an incremental takes its parent's data as it is, so it is read and authenticated first (on
/// two threads; AES-GCM without decompression, a fraction of what the fetch costs).
pub(super) fn unsound_blobs(
    store: &Store,
    manifest: &crate::snapshot::SnapshotManifest,
) -> Result<BTreeMap<String, usize>, StoreError> {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (object, entry) in &manifest.objects {
        for blob in entry.blobs() {
            users.entry(blob).or_default().push(object);
        }
    }
    let named: Vec<&str> = users.keys().copied().collect();
    let half = named.len().div_ceil(2).max(1);
    let unsound: Vec<&str> = std::thread::scope(|scope| {
        let workers: Vec<_> = named
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || -> Result<Vec<&str>, StoreError> {
                    let mut unsound = Vec::new();
                    for blob in chunk {
                        match store.verify_blob(blob) {
                            Ok(()) => {}
                            Err(
                                StoreError::MissingBlob { .. } | StoreError::CorruptBlob { .. },
                            ) => unsound.push(*blob),
                            Err(other) => return Err(other),
                        }
                    }
                    Ok(unsound)
                })
            })
            .collect();
        workers.into_iter().try_fold(Vec::new(), |mut all, worker| {
            all.extend(worker.join().map_err(|_| StoreError::Backend {
                location: store.location(),
                message: "a thread verifying the last snapshot stopped".into(),
            })??);
            Ok::<_, StoreError>(all)
        })
    })?;
    let mut objects = BTreeMap::new();
    for object in unsound.iter().filter_map(|blob| users.get(blob)).flatten() {
        *objects.entry(object.to_string()).or_insert(0) += 1;
    }
    Ok(objects)
}
