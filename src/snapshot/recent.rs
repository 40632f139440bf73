//! The versions the next incremental will fetch again: records modified in the overlap window
//! before an object's sync time, as their Id and a digest of the version (the record's
//! canonical body, or the fact of its deletion). A refetched row whose (Id, digest) is listed
//! is exactly what the snapshot holds; SystemModstamp alone would miss a deletion or a second
//! edit within the same millisecond.

use sha2::{Digest as _, Sha256};

use super::sorter::Row;
use crate::store::{Store, StoreError};

/// 128 bits of SHA-256: collisions are not a concern at these counts.
type VersionDigest = [u8; 16];

fn digest(row: &Row) -> VersionDigest {
    let mut hasher = Sha256::new();
    if row.deleted {
        // Bodies are JSON objects: this cannot be one.
        hasher.update(b"\0deleted");
    } else {
        hasher.update(&row.body);
    }
    let full = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn unhex(text: &str) -> Option<VersionDigest> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Past this many (a mass update just before a backup), no list is kept and the next
/// incremental compares those records with the snapshot's segments instead.
pub const RECENT_LIMIT: usize = 100_000;

#[derive(Debug, Default)]
pub struct RecentVersions {
    from_ms: i64,
    versions: Vec<(String, VersionDigest)>,
    overflowed: bool,
}

impl RecentVersions {
    /// Collects the versions stamped at or after `from_ms`.
    pub fn since(from_ms: i64) -> RecentVersions {
        RecentVersions {
            from_ms,
            ..RecentVersions::default()
        }
    }

    /// Lists the row's version when its SystemModstamp is in the window.
    pub fn note(&mut self, row: &Row) {
        if row.stamp < self.from_ms || self.overflowed {
            return;
        }
        if self.versions.len() >= RECENT_LIMIT {
            self.overflowed = true;
            self.versions = Vec::new();
            return;
        }
        self.versions.push((row.id.clone(), digest(row)));
    }

    /// The list, or `None` when it grew past [`RECENT_LIMIT`].
    pub fn finish(mut self) -> Option<RecentVersions> {
        if self.overflowed {
            return None;
        }
        self.versions.sort();
        Some(self)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.versions.len() * (20 + 33));
        for (id, version) in &self.versions {
            out.extend_from_slice(id.as_bytes());
            out.push(b'\t');
            out.extend_from_slice(crate::store::crypto::hex(version).as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// A list stored by `SnapshotWriter::set_recent`.
    pub fn load(store: &Store, blob: &str) -> Result<RecentVersions, StoreError> {
        let bytes = store.get_blob(blob)?;
        RecentVersions::parse(&bytes).map_err(|reason| StoreError::CorruptBlob {
            id: blob.to_string(),
            reason,
        })
    }

    /// A list from its stored text: `Id<TAB>digest` lines.
    pub fn parse(bytes: &[u8]) -> Result<RecentVersions, String> {
        let text = String::from_utf8_lossy(bytes);
        let mut versions = Vec::new();
        for line in text.lines() {
            let parsed = line
                .split_once('\t')
                .and_then(|(id, version)| Some((id.to_string(), unhex(version)?)));
            let Some(version) = parsed else {
                return Err(format!(
                    "a recent-versions line is not `Id<TAB>digest`: {line:?}"
                ));
            };
            versions.push(version);
        }
        versions.sort();
        Ok(RecentVersions {
            from_ms: i64::MIN,
            versions,
            overflowed: false,
        })
    }

    /// Whether this exact version of the record is listed.
    pub fn contains(&self, row: &Row) -> bool {
        let version = digest(row);
        self.versions
            .binary_search_by(|(id, listed)| id.as_str().cmp(&row.id).then(listed.cmp(&version)))
            .is_ok()
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, stamp: i64, deleted: bool, body: &str) -> Row {
        Row {
            id: id.into(),
            deleted,
            created: false,
            revisit: false,
            stamp,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn exact_versions_in_the_window_are_listed_and_too_many_list_none() {
        let mut recent = RecentVersions::since(1_000);
        recent.note(&row("b", 999, false, "{\"v\":1}"));
        recent.note(&row("c", 1_500, false, "{\"v\":1}"));
        recent.note(&row("a", 1_000, false, "{\"v\":2}"));
        let recent = recent.finish().expect("a list");
        assert_eq!(recent.len(), 2);
        assert!(recent.contains(&row("a", 1_000, false, "{\"v\":2}")));
        assert!(recent.contains(&row("c", 1_500, false, "{\"v\":1}")));
        assert!(
            !recent.contains(&row("c", 1_500, false, "{\"v\":9}")),
            "another edit in the same millisecond"
        );
        assert!(
            !recent.contains(&row("c", 1_500, true, "")),
            "deleted in the same millisecond"
        );
        assert!(
            !recent.contains(&row("b", 999, false, "{\"v\":1}")),
            "before the window"
        );

        let stored = String::from_utf8(recent.encode()).expect("text");
        assert_eq!(stored.lines().count(), 2);
        assert!(
            stored.starts_with("a\t") && stored.contains("\nc\t"),
            "{stored}"
        );

        let mut many = RecentVersions::since(0);
        for n in 0..=RECENT_LIMIT {
            many.note(&row(&format!("{n:018}"), 5, false, "{}"));
        }
        assert!(many.finish().is_none());
    }
}
