//! Metadata components as a snapshot holds them: rows of one object ([`METADATA_OBJECT`]), Id
//! `Type:FullName`, each with its files by path (text as it is, other bytes in base64). Read
//! back here for what needs the files themselves: the source tree committed to the state
//! branch, `cairn export --metadata`, and restore's deploy package.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::manifest::SnapshotManifest;
use super::reader::ObjectReader;
use crate::store::{Store, StoreError};

/// The object whose rows are the source's metadata components; no record object can have this
/// name (Salesforce's custom objects end in `__c`, and it has no standard one so named).
pub const METADATA_OBJECT: &str = "Metadata";

/// One component, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub full_name: String,
    #[serde(default)]
    pub last_modified_date: String,
    #[serde(default)]
    pub problem: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    binary_files: BTreeMap<String, String>,
}

impl Component {
    pub fn parse(body: &[u8]) -> Result<Component, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a metadata component: {e}"))
    }

    /// The paths of its files, text and binary, in order (as `files` would give them).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        let mut paths: Vec<&str> = self
            .files
            .keys()
            .chain(self.binary_files.keys())
            .map(String::as_str)
            .filter(|p| safe_path(p))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        paths.into_iter()
    }

    /// Its files by path, as bytes. A path that would leave the directory it is written
    /// under is not a path a retrieve gives, and is left out.
    pub fn files(&self) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut out = BTreeMap::new();
        for (path, text) in &self.files {
            if safe_path(path) {
                out.insert(path.clone(), text.clone().into_bytes());
            }
        }
        for (path, encoded) in &self.binary_files {
            if safe_path(path) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("{}: {path} is not base64: {e}", self.id))?;
                out.insert(path.clone(), bytes);
            }
        }
        Ok(out)
    }
}

/// A relative path of plain names: no `..`, no root, no empty part.
pub fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Every component of the snapshot, in Id order (none when it has no metadata).
pub fn read_all(store: &Store, manifest: &SnapshotManifest) -> Result<Vec<Component>, StoreError> {
    let Some(entry) = manifest.objects.get(METADATA_OBJECT) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for record in ObjectReader::new(store, METADATA_OBJECT, entry) {
        let (id, body) = record?;
        out.push(
            Component::parse(&body).map_err(|reason| StoreError::CorruptBlob {
                id: id.clone(),
                reason,
            })?,
        );
    }
    Ok(out)
}
