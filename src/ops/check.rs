//! Verifying a store: structure first (every manifest opens, every blob it names exists), then
//! with `--read-data` the blobs themselves (decrypt, decompress, check the records' framing and
//! order against the manifest). Every finding names the snapshots and objects it affects.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::snapshot::columns;
use crate::snapshot::manifest::SegmentRef;
use crate::snapshot::writer::load_manifest;
use crate::store::lock::Liveness;
use crate::store::{Store, StoreError};

/// Which blobs `--read-data` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// A share of the blobs, 0 to 100, chosen by id so repeated runs cover the same ones.
    Percent(f64),
    /// Part n of m (1-based): run m checks, n = 1..m, to read everything over time.
    Part {
        n: u32,
        of: u32,
    },
}

impl FromStr for ReadData {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text == "all" {
            return Ok(ReadData::All);
        }
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent
                .parse()
                .map_err(|_| format!("`{text}` is not a percentage"))?;
            return if (0.0..=100.0).contains(&value) && value > 0.0 {
                Ok(ReadData::Percent(value))
            } else {
                Err("a percentage is above 0 and at most 100".to_string())
            };
        }
        if let Some((n, of)) = text.split_once('/') {
            let n: u32 = n.parse().map_err(|_| format!("`{text}` is not n/m"))?;
            let of: u32 = of.parse().map_err(|_| format!("`{text}` is not n/m"))?;
            return if of >= 1 && (1..=of).contains(&n) {
                Ok(ReadData::Part { n, of })
            } else {
                Err("n/m needs 1 <= n <= m".to_string())
            };
        }
        Err(format!(
            "`{text}`: use all, a percentage such as 10%, or a part such as 2/5"
        ))
    }
}

impl ReadData {
    fn selects(&self, blob: &str) -> bool {
        // Blob ids are uniformly distributed hex: their first 8 digits place them.
        let position = u32::from_str_radix(blob.get(..8).unwrap_or("0"), 16).unwrap_or(0);
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Percent(p) => (position as f64) < (p / 100.0) * (u32::MAX as f64 + 1.0),
            ReadData::Part { n, of } => position % of == n - 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    /// `snapshot (Object)` for each affected place.
    pub affects: Vec<String>,
    pub next: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub snapshots: usize,
    pub blobs: usize,
    pub blobs_read: usize,
    pub findings: Vec<Finding>,
    /// The live locks: runs in progress, which are no damage.
    pub live_locks: Vec<String>,
}

impl CheckReport {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

pub fn check(store: &Store, read_data: ReadData) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    for (id, why) in store.key_files_readable()?.unreadable {
        report.findings.push(Finding {
            severity: Severity::Warning,
            what: format!("key file {id} is unreadable: {why}"),
            affects: vec![format!("the passphrase of key file {id}")],
            next: format!("the other key files still open the store; restore keys/{id}.key from a copy, or `cairn key remove {id}` and add a new one"),
        });
    }
    let now = crate::time::now_ms();
    for (path, lock) in store.locks()? {
        match lock.liveness(now) {
            Liveness::Live => report
                .live_locks
                .push(format!("{path}: {}", lock.describe(now))),
            Liveness::Stale(why) => report.findings.push(Finding {
                severity: Severity::Warning,
                what: format!("stale lock {path}: {} ({why})", lock.describe(now)),
                affects: Vec::new(),
                next: "nothing blocks on it: the next command that needs it takes it over; `cairn unlock` removes it now".into(),
            }),
        }
    }
    // blob -> (its segment description, where it is used)
    let mut referenced: BTreeMap<String, (SegmentRef, Vec<String>)> = BTreeMap::new();
    let mut schemas: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut recents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // segment blob of file body rows -> (its body object, where it is used)
    let mut body_segments: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for snapshot in store.list_snapshots()? {
        report.snapshots += 1;
        let manifest = match load_manifest(store, &snapshot) {
            Ok(manifest) => manifest,
            Err(e) => {
                report.findings.push(Finding {
                    severity: Severity::Error,
                    what: format!("snapshot {snapshot} cannot be read: {e}"),
                    affects: vec![format!("snapshot {snapshot}")],
                    next: "restore this snapshot's manifest from a copy of the store, or forget the snapshot".into(),
                });
                continue;
            }
        };
        if let Some(parent) = &manifest.parent
            && !store
                .backend()
                .exists(&crate::store::snapshot_path(parent))?
        {
            report.findings.push(Finding {
                severity: Severity::Warning,
                what: format!(
                    "snapshot {snapshot} names parent {parent}, which is no longer in the store"
                ),
                affects: vec![format!("snapshot {snapshot}")],
                next: "nothing to do: the snapshot is complete by itself; its parent was forgotten"
                    .into(),
            });
        }
        for (object, entry) in &manifest.objects {
            if let Some(schema) = &entry.schema {
                schemas
                    .entry(schema.clone())
                    .or_default()
                    .push(format!("snapshot {snapshot} ({object} schema)"));
            }
            if let Some(list) = &entry.recent {
                recents
                    .entry(list.clone())
                    .or_default()
                    .push(format!("snapshot {snapshot} ({object} recent versions)"));
            }
            for segment in entry.segments() {
                if crate::snapshot::files::is_body_object(object) {
                    body_segments
                        .entry(segment.blob.clone())
                        .or_insert_with(|| (object.clone(), Vec::new()))
                        .1
                        .push(format!("snapshot {snapshot} ({object})"));
                }
                referenced
                    .entry(segment.blob.clone())
                    .or_insert_with(|| (segment.clone(), Vec::new()))
                    .1
                    .push(format!("snapshot {snapshot} ({object})"));
            }
        }
    }
    let stored: std::collections::BTreeSet<String> = store.list_blobs()?.into_iter().collect();
    report.blobs = stored.len();
    for (blob, (segment, affects)) in &referenced {
        if !stored.contains(blob) {
            report.findings.push(Finding {
                severity: Severity::Error,
                what: format!("blob {blob} is missing"),
                affects: affects.clone(),
                next: "restore the blob from a copy of the store; until then these snapshots cannot be restored in full".into(),
            });
            continue;
        }
        if !read_data.selects(blob) {
            continue;
        }
        report.blobs_read += 1;
        if let Err(problem) = verify_segment(store, blob, segment) {
            report.findings.push(Finding {
                severity: Severity::Error,
                what: format!("blob {blob} is damaged: {problem}"),
                affects: affects.clone(),
                next: "restore the blob from a copy of the store, or forget the affected snapshots"
                    .into(),
            });
        }
    }
    let chunks = check_chunks(store, &stored, read_data, &body_segments, &mut report);
    for (blob, affects) in &schemas {
        let problem = derived_problem(store, &stored, read_data, &mut report, blob, |bytes| {
            serde_json::from_slice::<serde_json::Value>(bytes)
                .map(|_| ())
                .map_err(|_| "is not a schema document".to_string())
        });
        if let Some(problem) = problem {
            report.findings.push(Finding {
                severity: Severity::Warning,
                what: format!("schema document {blob} {problem}"),
                affects: affects.clone(),
                next: "the records are unaffected; the next backup records the schema again, and restore describes the object from the org meanwhile".into(),
            });
        }
    }
    for (blob, affects) in &recents {
        let problem = derived_problem(store, &stored, read_data, &mut report, blob, |bytes| {
            crate::snapshot::recent::RecentVersions::parse(bytes).map(|_| ())
        });
        if let Some(problem) = problem {
            report.findings.push(Finding {
                severity: Severity::Warning,
                what: format!("the list of recent record versions {blob} {problem}"),
                affects: affects.clone(),
                next: "the records are unaffected; the next incremental reads the parent's segments instead (slower, the same result)".into(),
            });
        }
    }
    // Search indexes are derived data: damage to them is a warning, and the next apply of the
    // task rebuilds the index from its snapshots.
    let mut index = std::collections::BTreeSet::new();
    for stored_index in crate::search::stored_indexes(store)? {
        let affects = vec![format!("the search index of task {}", stored_index.task)];
        let rebuilt = "the backups are unaffected; the task's next apply rebuilds its search index from the task's snapshots";
        index.insert(stored_index.list.clone());
        let files = match stored_index.files {
            // Index files with the same content are one blob.
            Ok(files) => {
                // The list itself was read and authenticated to know them.
                report.blobs_read += 1;
                files.into_iter().collect::<std::collections::BTreeSet<_>>()
            }
            Err(e) => {
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    what: format!(
                        "the search index list {} is unreadable: {e}",
                        stored_index.list
                    ),
                    affects,
                    next: rebuilt.into(),
                });
                continue;
            }
        };
        for blob in files {
            let problem =
                derived_problem(store, &stored, read_data, &mut report, &blob, |_| Ok(()));
            if let Some(problem) = problem {
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    what: format!("search index file {blob} {problem}"),
                    affects: affects.clone(),
                    next: rebuilt.into(),
                });
            }
            index.insert(blob);
        }
    }
    let leftovers = stored
        .iter()
        .filter(|b| {
            !referenced.contains_key(*b)
                && !chunks.contains(*b)
                && !schemas.contains_key(*b)
                && !recents.contains_key(*b)
                && !index.contains(*b)
        })
        .count();
    if leftovers > 0 {
        report.findings.push(Finding {
            severity: Severity::Warning,
            what: format!("{leftovers} blobs belong to no snapshot or search index (superseded index files, data of forgotten snapshots or of interrupted backups)"),
            affects: Vec::new(),
            next: "`cairn prune` removes them; they do no harm meanwhile".into(),
        });
    }
    Ok(report)
}

/// Checks the chunks file bodies name: each is there, and with `--read-data` each selected one
/// opens and holds as many bytes as its row says. Returns every chunk named.
fn check_chunks(
    store: &Store,
    stored: &std::collections::BTreeSet<String>,
    read_data: ReadData,
    body_segments: &BTreeMap<String, (String, Vec<String>)>,
    report: &mut CheckReport,
) -> std::collections::BTreeSet<String> {
    // chunk -> (its length, the files and snapshots that use it)
    let mut chunks: BTreeMap<String, (u64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for (segment, (object, used_by)) in body_segments {
        if !stored.contains(segment) {
            // Reported missing with the other segments.
            continue;
        }
        let bodies = match crate::snapshot::files::segment_bodies(store, object, segment) {
            Ok(bodies) => bodies,
            Err(problem) => {
                // A damaged segment `--read-data` reads is reported with the segments.
                if !read_data.selects(segment) {
                    report.findings.push(Finding {
                        severity: Severity::Error,
                        what: format!(
                            "the file body rows in blob {segment} cannot be read: {problem}"
                        ),
                        affects: used_by.clone(),
                        next: "restore the blob from a copy of the store, or forget the affected snapshots".into(),
                    });
                }
                continue;
            }
        };
        for body in &bodies {
            for chunk in &body.chunks {
                let entry = chunks
                    .entry(chunk.blob.clone())
                    .or_insert_with(|| (chunk.size, Default::default()));
                for user in used_by {
                    entry.1.insert(format!("{user}: {} {}", body.id, body.name));
                }
            }
        }
    }
    for (chunk, (size, affects)) in &chunks {
        let affects: Vec<String> = affects.iter().cloned().collect();
        if !stored.contains(chunk) {
            report.findings.push(Finding {
                severity: Severity::Error,
                what: format!("chunk {chunk} of a file body is missing"),
                affects,
                next: "restore the blob from a copy of the store; until then these files cannot be restored".into(),
            });
            continue;
        }
        if !read_data.selects(chunk) {
            continue;
        }
        report.blobs_read += 1;
        let problem = match store.get_blob(chunk) {
            Ok(bytes) if bytes.len() as u64 == *size => None,
            Ok(bytes) => Some(format!(
                "holds {} bytes where its file says {size}",
                bytes.len()
            )),
            Err(StoreError::CorruptBlob { reason, .. }) => Some(reason),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            report.findings.push(Finding {
                severity: Severity::Error,
                what: format!("chunk {chunk} of a file body is damaged: {problem}"),
                affects,
                next: "restore the blob from a copy of the store, or forget the affected snapshots"
                    .into(),
            });
        }
    }
    chunks.into_keys().collect()
}

/// What is wrong with a blob of derived data (schema document, recent-version list, index
/// file): missing, or, when `--read-data` selects it, unreadable or not what `valid` expects.
fn derived_problem(
    store: &Store,
    stored: &std::collections::BTreeSet<String>,
    read_data: ReadData,
    report: &mut CheckReport,
    blob: &str,
    valid: impl Fn(&[u8]) -> Result<(), String>,
) -> Option<String> {
    if !stored.contains(blob) {
        return Some("is missing".to_string());
    }
    if !read_data.selects(blob) {
        return None;
    }
    report.blobs_read += 1;
    match store.get_blob(blob) {
        Ok(bytes) => valid(&bytes).err(),
        Err(e) => Some(format!("is unreadable: {e}")),
    }
}

/// Decrypts a segment and checks its records against the manifest's description of it.
fn verify_segment(store: &Store, blob: &str, segment: &SegmentRef) -> Result<(), String> {
    let bytes = store.get_blob(blob).map_err(|e| match e {
        StoreError::CorruptBlob { reason, .. } => reason,
        other => other.to_string(),
    })?;
    let (bytes, entries) = columns::open(blob, bytes).map_err(|e| e.to_string())?;
    if entries.len() as u64 != segment.records {
        return Err(format!(
            "holds {} records where the manifest says {}",
            entries.len(),
            segment.records
        ));
    }
    let id = |i: usize| &bytes[entries[i].id.0..entries[i].id.1];
    if entries
        .windows(2)
        .any(|w| bytes[w[0].id.0..w[0].id.1] >= bytes[w[1].id.0..w[1].id.1])
    {
        return Err("its records are not in ascending Id order".into());
    }
    if let (Some(_), Some(_)) = (entries.first(), entries.last())
        && (id(0) != segment.first.as_bytes() || id(entries.len() - 1) != segment.last.as_bytes())
    {
        return Err("its first or last Id differs from the manifest".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_data_subsets_parse_and_partition() {
        assert_eq!("all".parse::<ReadData>(), Ok(ReadData::All));
        assert_eq!("10%".parse::<ReadData>(), Ok(ReadData::Percent(10.0)));
        assert_eq!(
            "2/5".parse::<ReadData>(),
            Ok(ReadData::Part { n: 2, of: 5 })
        );
        for bad in ["0%", "101%", "0/3", "4/3", "x", "1/0"] {
            assert!(bad.parse::<ReadData>().is_err(), "{bad}");
        }
        let blobs: Vec<String> = (0..1000u32)
            .map(|i| format!("{:08x}", i.wrapping_mul(2_654_435_761)))
            .collect();
        let parts: usize = (1..=4)
            .map(|n| {
                blobs
                    .iter()
                    .filter(|b| ReadData::Part { n, of: 4 }.selects(b))
                    .count()
            })
            .sum();
        assert_eq!(parts, blobs.len(), "the parts cover every blob once");
        let tenth = blobs
            .iter()
            .filter(|b| ReadData::Percent(10.0).selects(b))
            .count();
        assert!((50..150).contains(&tenth), "{tenth}");
    }
}
