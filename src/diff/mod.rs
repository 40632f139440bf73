//! What changed between two snapshots, record by record: a sorted merge-join by Id. When the
//! newer snapshot is the older plus deltas (`ObjectEntry::changes_over`: the older one's
//! layers and more deltas, as adjacent incrementals or any two of a chain have, or a compaction
//! of the older one's layers under the newer deltas), only those deltas are read, and of the
//! older one only the segments whose Id ranges hold a changed record; so the cost follows the
//! change, not the size of the org. Otherwise (a full fetch, snapshots far apart across a
//! compaction) both are read in full. Schema changes come from the objects' schema
//! documents, as a unified diff.

mod fields;
pub mod summary;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use fields::{all_fields, changed_fields, parse};

use crate::snapshot::ids_lookup::IdsLookup;
use crate::snapshot::manifest::ObjectEntry;
use crate::snapshot::{ObjectReader, SnapshotManifest};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Added,
    Deleted,
    Modified,
}

impl Kind {
    pub fn marker(self) -> char {
        match self {
            Kind::Added => '+',
            Kind::Deleted => '-',
            Kind::Modified => 'M',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordChange {
    pub object: String,
    pub id: String,
    pub change: Kind,
    /// For a modification, the changed fields with both values; for an addition or deletion,
    /// every field of the record (after, or before).
    pub fields: Vec<FieldChange>,
    /// The newer version of an added or modified record, as stored (for indexing).
    #[serde(skip)]
    pub body: Option<Vec<u8>>,
}

/// Counts for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStats {
    pub added: u64,
    pub deleted: u64,
    pub modified: u64,
    /// Records in the older snapshot.
    pub before: u64,
    /// How often each field changed among modified records.
    pub fields: BTreeMap<String, u64>,
    /// The merge-join read only the change (not both snapshots in full).
    pub incremental: bool,
    /// The object is in only one of the snapshots: it entered or left the backup (the
    /// manifest's include/exclude changed, or the org's object came or went). Its records
    /// are then neither added nor deleted: the org did not change them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageChange>,
    /// For an object of file bodies: the bytes of the files added, deleted and changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileBytes>,
}

/// Bytes of the files a change added, deleted and changed (before and after).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileBytes {
    pub added: u64,
    pub deleted: u64,
    pub changed_before: u64,
    pub changed_after: u64,
}

/// A body row's size (0 when it is not one).
fn body_size(body: &[u8]) -> u64 {
    parse(body)["size"].as_u64().unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CoverageChange {
    /// Backed up in the newer snapshot only; `after` records.
    Entered { after: u64 },
    /// Backed up in the older snapshot only (its records stay there).
    Left,
}

impl ObjectStats {
    pub fn changed(&self) -> u64 {
        self.added + self.deleted + self.modified
    }

    /// How a coverage change reads in summaries and the diff.
    pub fn coverage_note(&self) -> Option<String> {
        match self.coverage? {
            CoverageChange::Entered { after } => Some(format!(
                "backed up from this snapshot on ({after} records; not counted as added)"
            )),
            CoverageChange::Left => Some(format!(
                "no longer backed up ({} records stay in the earlier snapshots; not counted as deleted)",
                self.before
            )),
        }
    }
}

/// Changed records whose older versions are looked up together: each batch opens the older
/// entry's segments that hold them once per layer (the lookup keeps only a few open, so small
/// batches would open a delta again for each), and the bodies of a batch (a few MiB) are all
/// that is held when an incremental changed most of an object.
const CHANGES_LOOKED_UP_AT_ONCE: usize = 16 * 1024;

/// Diffs one object between two snapshots, calling `each` for every changed record (with
/// field values when `values`, else with the changed field names and null values).
pub fn diff_object(
    store: &Store,
    object: &str,
    older: Option<&ObjectEntry>,
    newer: Option<&ObjectEntry>,
    values: bool,
    each: &mut dyn FnMut(RecordChange),
) -> Result<ObjectStats, StoreError> {
    let mut stats = ObjectStats {
        before: older
            .map(|e| e.records.unwrap_or(e.base_records))
            .unwrap_or(0),
        files: crate::snapshot::files::is_body_object(object).then(FileBytes::default),
        ..ObjectStats::default()
    };
    let mut emit =
        |id: String, before: Option<&[u8]>, after: Option<&[u8]>, stats: &mut ObjectStats| {
            let (change, mut fields) = match (before, after) {
                (None, Some(after)) => (
                    Kind::Added,
                    if values {
                        all_fields(after, false)
                    } else {
                        Vec::new()
                    },
                ),
                (Some(before), None) => (
                    Kind::Deleted,
                    if values {
                        all_fields(before, true)
                    } else {
                        Vec::new()
                    },
                ),
                (Some(before), Some(after)) => {
                    if before == after {
                        return;
                    }
                    let fields = changed_fields(before, after);
                    if fields.is_empty() {
                        return; // the same record written differently
                    }
                    (Kind::Modified, fields)
                }
                (None, None) => return,
            };
            if let Some(bytes) = stats.files.as_mut() {
                let size = |body: Option<&[u8]>| body.map_or(0, body_size);
                match change {
                    Kind::Added => bytes.added += size(after),
                    Kind::Deleted => bytes.deleted += size(before),
                    Kind::Modified => {
                        bytes.changed_before += size(before);
                        bytes.changed_after += size(after);
                    }
                }
            }
            match change {
                Kind::Added => stats.added += 1,
                Kind::Deleted => stats.deleted += 1,
                Kind::Modified => {
                    stats.modified += 1;
                    for field in &fields {
                        *stats.fields.entry(field.field.clone()).or_default() += 1;
                    }
                    if !values {
                        for field in &mut fields {
                            field.before = Value::Null;
                            field.after = Value::Null;
                        }
                    }
                }
            }
            each(RecordChange {
                object: object.to_string(),
                id,
                change,
                fields,
                body: after.map(<[u8]>::to_vec),
            });
        };
    match (older, newer) {
        (None, None) => {}
        (None, Some(newer)) => {
            for record in ObjectReader::new(store, object, newer) {
                let (id, body) = record?;
                emit(id, None, Some(&body), &mut stats);
            }
        }
        (Some(older), None) => {
            for record in ObjectReader::new(store, object, older) {
                let (id, body) = record?;
                emit(id, Some(&body), None, &mut stats);
            }
        }
        (Some(older), Some(newer)) if older == newer => {}
        (Some(older), Some(newer)) if newer.changes_over(older).is_some() => {
            stats.incremental = true;
            let extra = ObjectEntry {
                base: Vec::new(),
                deltas: newer.changes_over(older).unwrap_or_default().to_vec(),
                ..newer.clone()
            };
            let changes: Vec<(String, Option<Vec<u8>>)> =
                ObjectReader::changes(store, &extra).collect::<Result<_, _>>()?;
            // The older versions of just the changed Ids, a batch at a time: the segments
            // holding them are read, but not every record of them copied out.
            let mut lookup = IdsLookup::default();
            for batch in changes.chunks(CHANGES_LOOKED_UP_AT_ONCE) {
                let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
                let mut previous = lookup.read(store, older, &ids)?.into_iter().peekable();
                for (id, after) in batch {
                    let mut before = None;
                    while let Some((other, _)) = previous.peek() {
                        match other.as_str().cmp(id.as_str()) {
                            std::cmp::Ordering::Less => {
                                previous.next();
                            }
                            std::cmp::Ordering::Equal => {
                                before = previous.next().map(|(_, body)| body);
                                break;
                            }
                            std::cmp::Ordering::Greater => break,
                        }
                    }
                    emit(id.clone(), before.as_deref(), after.as_deref(), &mut stats);
                }
            }
        }
        (Some(older), Some(newer)) if older.changes_over(newer).is_some() => {
            // Going back in time: the same walk, with the roles swapped.
            let mut swapped = Vec::new();
            let reverse = diff_object(store, object, Some(newer), Some(older), values, &mut |c| {
                swapped.push(c)
            })?;
            stats.added = reverse.deleted;
            stats.deleted = reverse.added;
            stats.modified = reverse.modified;
            stats.fields = reverse.fields;
            stats.files = reverse.files.map(|b| FileBytes {
                added: b.deleted,
                deleted: b.added,
                changed_before: b.changed_after,
                changed_after: b.changed_before,
            });
            stats.incremental = true;
            for mut change in swapped {
                change.change = match change.change {
                    Kind::Added => Kind::Deleted,
                    Kind::Deleted => Kind::Added,
                    Kind::Modified => Kind::Modified,
                };
                for field in &mut change.fields {
                    std::mem::swap(&mut field.before, &mut field.after);
                }
                each(change);
            }
        }
        (Some(older), Some(newer)) => {
            let mut a = ObjectReader::new(store, object, older).peekable();
            let mut b = ObjectReader::new(store, object, newer).peekable();
            loop {
                let order = match (a.peek(), b.peek()) {
                    (None, None) => break,
                    (Some(Err(_)), _) => {
                        if let Some(Err(e)) = a.next() {
                            return Err(e);
                        }
                        continue;
                    }
                    (_, Some(Err(_))) => {
                        if let Some(Err(e)) = b.next() {
                            return Err(e);
                        }
                        continue;
                    }
                    (Some(Ok((x, _))), Some(Ok((y, _)))) => x.cmp(y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                };
                match order {
                    std::cmp::Ordering::Less => {
                        if let Some(Ok((id, body))) = a.next() {
                            emit(id, Some(&body), None, &mut stats);
                        }
                    }
                    std::cmp::Ordering::Greater => {
                        if let Some(Ok((id, body))) = b.next() {
                            emit(id, None, Some(&body), &mut stats);
                        }
                    }
                    std::cmp::Ordering::Equal => {
                        if let (Some(Ok((id, x))), Some(Ok((_, y)))) = (a.next(), b.next()) {
                            emit(id, Some(&x), Some(&y), &mut stats);
                        }
                    }
                }
            }
        }
    }
    Ok(stats)
}

/// Every object of two snapshots (or one object), in name order.
pub fn diff(
    store: &Store,
    older: &SnapshotManifest,
    newer: &SnapshotManifest,
    only: Option<&str>,
    values: bool,
    each: &mut dyn FnMut(RecordChange),
) -> Result<BTreeMap<String, ObjectStats>, StoreError> {
    let mut names: Vec<&String> = older.objects.keys().chain(newer.objects.keys()).collect();
    names.sort();
    names.dedup();
    let mut stats = BTreeMap::new();
    let count = |e: &ObjectEntry| e.records.unwrap_or(e.base_records);
    for name in names {
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(name)) {
            continue;
        }
        match (older.objects.get(name), newer.objects.get(name)) {
            (Some(before), None) => {
                stats.insert(
                    name.clone(),
                    ObjectStats {
                        before: count(before),
                        coverage: Some(CoverageChange::Left),
                        ..ObjectStats::default()
                    },
                );
                continue;
            }
            (None, Some(after)) => {
                stats.insert(
                    name.clone(),
                    ObjectStats {
                        coverage: Some(CoverageChange::Entered {
                            after: count(after),
                        }),
                        ..ObjectStats::default()
                    },
                );
                continue;
            }
            _ => {}
        }
        let object_stats = diff_object(
            store,
            name,
            older.objects.get(name),
            newer.objects.get(name),
            values,
            each,
        )?;
        stats.insert(name.clone(), object_stats);
    }
    Ok(stats)
}

/// The schema document of an object, as YAML for reading and diffing.
pub fn schema_text(store: &Store, entry: Option<&ObjectEntry>) -> Result<String, StoreError> {
    let Some(blob) = entry.and_then(|e| e.schema.as_deref()) else {
        return Ok(String::new());
    };
    let bytes = store.get_blob(blob)?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(serde_yaml::to_string(&value).unwrap_or_default())
}

/// A unified diff of each object's schema document between two snapshots; empty when none
/// changed.
pub fn schema_diff(
    store: &Store,
    older: &SnapshotManifest,
    newer: &SnapshotManifest,
    only: Option<&str>,
) -> Result<String, StoreError> {
    let mut out = String::new();
    let mut names: Vec<&String> = older.objects.keys().chain(newer.objects.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(name)) {
            continue;
        }
        let (a, b) = (older.objects.get(name), newer.objects.get(name));
        // An object in one snapshot only entered or left the backup: a coverage change,
        // which the diff's coverage notes tell in one line, not its whole schema.
        if a.is_none() || b.is_none() {
            continue;
        }
        if a.and_then(|e| e.schema.as_ref()) == b.and_then(|e| e.schema.as_ref()) {
            continue;
        }
        let (before, after) = (schema_text(store, a)?, schema_text(store, b)?);
        if before == after {
            continue;
        }
        let diff = similar::TextDiff::from_lines(&before, &after);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{name}.yaml"), &format!("b/{name}.yaml"))
                .to_string(),
        );
    }
    Ok(out)
}
