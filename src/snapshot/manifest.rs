//! The snapshot manifest: what a snapshot holds and where. It is sealed in the store, and the
//! sealed form is what gets committed to git.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A segment blob and what it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRef {
    pub blob: String,
    pub records: u64,
    pub first: String,
    pub last: String,
    /// Plaintext bytes.
    pub bytes: u64,
}

/// Changes since the layer below: upserts and deletions, in Id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    pub upserts: u64,
    pub deletes: u64,
    pub segments: Vec<SegmentRef>,
}

/// What a compaction folded: the parent's layers, whose records the entry's base and first
/// `deltas` deltas now hold exactly; the deltas after them are the change since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Folded {
    /// [`ObjectEntry::layers_digest`] of the layers folded.
    pub from: String,
    pub deltas: usize,
}

/// One object's records: a base plus deltas, oldest first. Reading merges them; compaction
/// folds the deltas (into one delta, or with the base into a new base) when there are too many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEntry {
    /// The fields the records hold, in order: when they change, the next backup of the object
    /// is a full one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Records in the base.
    pub base_records: u64,
    pub base: Vec<SegmentRef>,
    pub deltas: Vec<Delta>,
    /// Live records after the deltas, as the connector counted them; what the count check
    /// compares with the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// The time up to which the object's records are current: the next incremental starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The blob of the object's normalised schema document (fields, types), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// When the object was last fetched in full (not compacted: fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
    /// The blob listing the records modified in the last overlap window before `until` (Id
    /// and a digest of the version): the next incremental fetches them again, and knows them
    /// unchanged without reading the segments (`snapshot::recent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<String>,
    /// What of the object the records cover beyond its fields (`ObjectPlan::scope`: the
    /// metadata types chosen); when it changes, the next backup of the object is a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For an object of file bodies: how many of its rows wait for a body the next backup
    /// fetches (`snapshot::files::FileBody::waiting`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending: u64,
    /// Set by the compaction that made the layers under the newest deltas: a diff against the
    /// snapshot whose layers it folded reads only the deltas after (`diff::changes_over`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded: Option<Folded>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ObjectEntry {
    /// Names the entry's layers (its base's and deltas' segments, in order): equal digests,
    /// equal layers.
    pub fn layers_digest(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for segment in &self.base {
            hasher.update(b"base ");
            hasher.update(segment.blob.as_bytes());
            hasher.update(b"\n");
        }
        for delta in &self.deltas {
            hasher.update(b"delta\n");
            for segment in &delta.segments {
                hasher.update(segment.blob.as_bytes());
                hasher.update(b"\n");
            }
        }
        crate::store::crypto::hex(&hasher.finalize().as_bytes()[..16])
    }

    /// Whether this entry is `older` plus more deltas on the same layers.
    pub fn extends(&self, older: &ObjectEntry) -> bool {
        older.base == self.base
            && self.deltas.len() >= older.deltas.len()
            && self.deltas[..older.deltas.len()] == older.deltas[..]
    }

    /// This entry's deltas that hold its change from `older`, when it is `older` plus them:
    /// more deltas on the same layers, or deltas over a compaction of `older`'s layers.
    pub fn changes_over(&self, older: &ObjectEntry) -> Option<&[Delta]> {
        if self.extends(older) {
            return self.deltas.get(older.deltas.len()..);
        }
        let folded = self.folded.as_ref()?;
        if folded.from != older.layers_digest() {
            return None;
        }
        self.deltas.get(folded.deltas..)
    }

    /// Every blob the entry needs: its segments, schema document and recent-versions list.
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.segments()
            .map(|s| s.blob.as_str())
            .chain(self.schema.as_deref())
            .chain(self.recent.as_deref())
    }

    pub fn segments(&self) -> impl Iterator<Item = &SegmentRef> {
        self.base
            .iter()
            .chain(self.deltas.iter().flat_map(|d| d.segments.iter()))
    }

    /// Only the segments (of the base and of each delta) whose Id range holds one of `ids`
    /// (sorted): what reading those records needs.
    pub fn restricted_to(&self, ids: &[String]) -> ObjectEntry {
        let touches = |segment: &SegmentRef| {
            let start = ids.partition_point(|id| id.as_str() < segment.first.as_str());
            ids.get(start)
                .is_some_and(|id| id.as_str() <= segment.last.as_str())
        };
        ObjectEntry {
            base: self.base.iter().filter(|s| touches(s)).cloned().collect(),
            deltas: self
                .deltas
                .iter()
                .map(|d| Delta {
                    upserts: d.upserts,
                    deletes: d.deletes,
                    segments: d.segments.iter().filter(|s| touches(s)).cloned().collect(),
                })
                .collect(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Outcome {
    Complete,
    /// Some data was not backed up (the API budget ran out, say); the reason says what.
    Partial {
        reason: String,
    },
}

/// Where a snapshot's data came from. Snapshots written before sources had kinds name only
/// a Salesforce org (`orgId`): they read as `kind: salesforce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default = "salesforce")]
    pub kind: String,
    /// The account at the source (a Salesforce org id).
    #[serde(alias = "orgId")]
    pub account: String,
    pub api_version: String,
}

fn salesforce() -> String {
    "salesforce".into()
}

impl Default for Source {
    fn default() -> Source {
        Source {
            kind: salesforce(),
            account: String::new(),
            api_version: String::new(),
        }
    }
}

/// The time span the data reflects (SystemModstamp window of an incremental).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub from: Option<String>,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotManifest {
    pub version: u32,
    pub task: String,
    /// When the snapshot was taken, RFC 3339 UTC.
    pub time: String,
    pub parent: Option<String>,
    pub source: Source,
    pub window: Option<Window>,
    pub outcome: Outcome,
    pub objects: BTreeMap<String, ObjectEntry>,
}

impl SnapshotManifest {
    /// One object's entry of a manifest's JSON, the rest skipped over unparsed: a manifest
    /// grows with the org (a segment listed per 4 MiB of records), and a search that reads a
    /// block of one object needs that object's entry alone.
    pub fn object_entry(json: &[u8], object: &str) -> serde_json::Result<Option<ObjectEntry>> {
        let entry = OnlyKey {
            key: object,
            seed: std::marker::PhantomData::<ObjectEntry>,
        };
        let objects = OnlyKey {
            key: "objects",
            seed: entry,
        };
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let found = serde::de::DeserializeSeed::deserialize(objects, &mut deserializer)?;
        deserializer.end()?;
        Ok(found.flatten())
    }
}

/// A map of which the value at `key` is read by `seed`, every other value skipped unparsed.
struct OnlyKey<'k, S> {
    key: &'k str,
    seed: S,
}

impl<'de, S: serde::de::DeserializeSeed<'de>> serde::de::DeserializeSeed<'de> for OnlyKey<'_, S> {
    type Value = Option<S::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: serde::de::DeserializeSeed<'de>> serde::de::Visitor<'de> for OnlyKey<'_, S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a map with {:?}", self.key)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seed = Some(self.seed);
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match seed.take_if(|_| key == self.key) {
                Some(seed) => found = Some(map.next_value_seed(seed)?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, segments: usize) -> ObjectEntry {
        ObjectEntry {
            fields: vec!["Id".into(), "Name".into()],
            base_records: segments as u64 * 10,
            base: (0..segments)
                .map(|n| SegmentRef {
                    blob: format!("{object}-{n}"),
                    records: 10,
                    first: format!("{object}{n:03}a"),
                    last: format!("{object}{n:03}z"),
                    bytes: 4096,
                })
                .collect(),
            until: Some("2026-12-02T00:00:00.000Z".into()),
            ..ObjectEntry::default()
        }
    }

    #[test]
    fn one_object_entry_reads_as_the_whole_manifest_has_it() {
        let manifest = SnapshotManifest {
            version: 1,
            task: "acme".into(),
            time: "2026-12-02T00:00:00Z".into(),
            parent: None,
            source: Source::default(),
            window: None,
            outcome: Outcome::Partial {
                reason: "objects: {\"Account\": …}".into(),
            },
            objects: ["Account", "Contact", "Opportunity"]
                .iter()
                .enumerate()
                .map(|(n, name)| (name.to_string(), entry(name, n + 1)))
                .collect(),
        };
        let json = serde_json::to_vec(&manifest).expect("JSON");
        for (name, whole) in &manifest.objects {
            assert_eq!(
                SnapshotManifest::object_entry(&json, name)
                    .expect("parses")
                    .as_ref(),
                Some(whole),
                "{name}"
            );
        }
        assert_eq!(
            SnapshotManifest::object_entry(&json, "Lead").expect("parses"),
            None
        );
        assert!(SnapshotManifest::object_entry(&json[..json.len() - 1], "Account").is_err());
        assert!(SnapshotManifest::object_entry(b"[]", "Account").is_err());
    }
}
