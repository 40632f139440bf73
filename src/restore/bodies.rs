//! File bodies a restore writes with the records it creates again: a ContentVersion or an
//! Attachment cannot be created without its body, so each such record goes in a call of its
//! own with its body streamed from the snapshot's chunks (one chunk in memory at a time).

use futures_util::StreamExt as _;

use crate::snapshot::SnapshotManifest;
use crate::snapshot::files::{BodyReader, FileBody, body_object_parts};
use crate::snapshot::reader::RecordLookup;
use crate::source::Upload;
use crate::store::{Store, StoreError};

/// The snapshot a restore reads its records from, for their bodies.
pub struct SnapshotBodies<'a> {
    store: &'a Store,
    manifest: &'a SnapshotManifest,
    /// One lookup per body object, kept across records: creates go in Id order, so each
    /// segment of rows is read once rather than once per record.
    lookups: std::sync::Mutex<std::collections::BTreeMap<String, RecordLookup>>,
}

impl<'a> SnapshotBodies<'a> {
    pub fn new(store: &'a Store, manifest: &'a SnapshotManifest) -> SnapshotBodies<'a> {
        SnapshotBodies {
            store,
            manifest,
            lookups: Default::default(),
        }
    }

    /// The body of record `id` of `object` as an upload: None when the object keeps no body in
    /// the snapshot; an error naming why when the snapshot has none for this record.
    pub fn upload(
        &self,
        object: &str,
        id: &str,
    ) -> Result<Option<Result<Upload, String>>, StoreError> {
        let Some((name, entry)) = self
            .manifest
            .objects
            .iter()
            .find(|(name, _)| body_object_parts(name).is_some_and(|(o, _)| o == object))
        else {
            return Ok(None);
        };
        let Some((_, field)) = body_object_parts(name) else {
            return Ok(None);
        };
        let found = {
            let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            let lookup = lookups
                .entry(name.clone())
                .or_insert_with(|| RecordLookup::new(self.store, entry));
            lookup.find(id)?.map(<[u8]>::to_vec)
        };
        let Some(bytes) = found else {
            return Ok(Some(Err("its file body is not in the snapshot".into())));
        };
        let body = FileBody::read(name, id, &bytes)?;
        if let Some(missing) = &body.missing {
            return Ok(Some(Err(format!(
                "its file body is not in the snapshot: {}",
                missing.reason
            ))));
        }
        let store = self.store.clone();
        let reading = body.clone();
        Ok(Some(Ok(Upload {
            field: field.to_string(),
            file_name: body.name.clone(),
            size: body.size,
            bytes: Box::new(move || {
                BodyReader::new(&store, &reading)
                    .into_stream()
                    .map(|piece| piece.map_err(|e| Box::new(e) as Box<_>))
                    .boxed()
            }),
        })))
    }
}
