//! The sealed list of a task's index files, which the task's pointer names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{StoredFile, failed};
use crate::store::{Store, StoreError};

/// The version of the list and the index it names: 5 since term dictionaries are written
/// without compressing their blocks (4: blocks index their Ids by key and their words as cut;
/// 3: blocks of versions; 2: index files stored as pieces; an older index is rebuilt, not
/// read).
pub(super) const FORMAT: u32 = 5;

/// The sealed list of a task's index files.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Packed {
    pub(super) format: u32,
    /// The size the files were cut into pieces at (all but each file's last piece).
    #[serde(rename = "pieceBytes")]
    pub(super) piece_bytes: usize,
    pub(super) files: BTreeMap<String, StoredFile>,
    /// The task whose blobs these are: written under a kind of the task's own
    /// (`search-file:<task>`), so no other index shares them and a superseded one can be
    /// deleted as soon as the next list replaces it.
    pub(super) task: String,
}

impl Packed {
    pub(super) fn read(store: &Store, list: &str) -> Result<Packed, StoreError> {
        let bytes = store.get_blob(list)?;
        // Read straight into the list (it is read before every search, and holds every file's
        // tail); only a list that does not read as this format is looked at for its version.
        let read = serde_json::from_slice::<Packed>(&bytes);
        if let Ok(packed) = &read
            && packed.format == FORMAT
        {
            return read.map_err(failed);
        }
        #[derive(Deserialize)]
        struct Version {
            format: Option<serde_json::Value>,
        }
        let version = serde_json::from_slice::<Version>(&bytes).map_err(failed)?;
        if version.format.as_ref().and_then(serde_json::Value::as_u64) != Some(u64::from(FORMAT)) {
            return Err(failed(
                "it was written by an earlier version of cairn, in a form this one does not read",
            ));
        }
        read.map_err(failed)
    }

    pub(super) fn blobs(&self) -> impl Iterator<Item = &String> {
        self.files.values().flat_map(|file| file.pieces.iter())
    }
}
