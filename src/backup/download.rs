//! Downloading one file body: streamed from the connector through the chunker into the store
//! (chunks sealed on blocking threads while the next bytes arrive), then checked against the
//! size and MD5 the record gives; tried twice before it waits for the next run.

use futures_util::StreamExt;

use super::BackupError;
use super::budget_reason;
use super::files::Described;
use crate::snapshot::files::{BodyCutter, CHUNK_KIND, ChunkRef, FileBody};
use crate::source::{Connector, SourceError};
use crate::store::{Store, StoreError};

/// Tries of one body before it waits for the next run.
const TRIES: u32 = 2;

/// How a download failed.
pub(super) enum Failure {
    /// The store refused a chunk: the run fails.
    Store(StoreError),
    /// The budget is spent: nothing more is downloaded this run.
    Budget(String),
    /// This body only; tried again (and, failing, left waiting).
    Body(BodyFailure),
}

/// Why one body's download failed: in general (for the coverage report), and in full (for
/// the body's row, which is encrypted).
pub(super) struct BodyFailure {
    pub kind: &'static str,
    pub detail: String,
}

impl Failure {
    fn body(kind: &'static str, detail: String) -> Failure {
        Failure::Body(BodyFailure { kind, detail })
    }
}

/// Where bodies of one field come from and go to.
pub(super) struct Download<'a, C> {
    pub connector: &'a C,
    pub store: &'a Store,
    /// The chunker's seed (`MasterKey::chunker_seed`).
    pub seed: u64,
    pub object: &'a str,
    pub field: &'a str,
    /// Told of the bytes as they arrive.
    pub meter: &'a crate::progress::Meter,
}

impl<C: Connector> Download<'_, C> {
    /// Downloads a body, once more if the first try fails for this body alone.
    pub(super) async fn with_retry(&self, described: &Described) -> Result<FileBody, Failure> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.once(described).await {
                Err(Failure::Body(_)) if tries < TRIES => continue,
                outcome => return outcome,
            }
        }
    }

    /// Streams one body into the store and checks it against what the record says.
    async fn once(&self, described: &Described) -> Result<FileBody, Failure> {
        let Download {
            connector,
            store,
            seed,
            object,
            field,
            meter,
        } = *self;
        let failed = |error: SourceError| {
            let error = BackupError::Source(error);
            match budget_reason(&error, &format!("{object} {}", described.id)) {
                Some(reason) => Failure::Budget(reason),
                None => Failure::body(
                    "the download failed (tried twice; the next run tries again)",
                    format!("the download failed: {error}"),
                ),
            }
        };
        let mut pieces = connector
            .read_body(object, &described.id, field)
            .await
            .map_err(failed)?;
        let mut cutter = BodyCutter::new(seed);
        let mut chunks = Vec::new();
        while let Some(piece) = pieces.next().await {
            let piece = piece.map_err(failed)?;
            meter.add_bytes(piece.len() as u64);
            for chunk in cutter.push(&piece) {
                chunks.push(seal(store, chunk).await?);
            }
        }
        let (last, size, md5) = cutter.finish();
        for chunk in last {
            chunks.push(seal(store, chunk).await?);
        }
        if let Some(expected) = described.size
            && expected != size
        {
            return Err(Failure::body(
                "the download's size differs from the record's (tried twice; the next run tries again)",
                format!("the download has {size} bytes where the record says {expected}"),
            ));
        }
        if let Some(expected) = &described.checksum
            && *expected != md5
        {
            return Err(Failure::body(
                "the download's MD5 differs from the record's checksum (tried twice; the next run tries again)",
                format!("the download's MD5 is {md5} where the record's checksum says {expected}"),
            ));
        }
        Ok(FileBody {
            id: described.id.clone(),
            name: described.name.clone(),
            parent: described.parent.clone(),
            size,
            md5: Some(md5),
            version: described.version.clone(),
            chunks,
            missing: None,
        })
    }
}

/// Stores one chunk (compressing and sealing on a blocking thread).
async fn seal(store: &Store, chunk: Vec<u8>) -> Result<ChunkRef, Failure> {
    let size = chunk.len() as u64;
    let location = store.location();
    let store = store.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let stored = store.put_blob(CHUNK_KIND, &chunk);
        crate::store::buffers::give_back(chunk);
        stored
    })
    .await;
    match sealed {
        Ok(Ok(blob)) => Ok(ChunkRef { blob, size }),
        Ok(Err(e)) => Err(Failure::Store(e)),
        Err(e) => Err(Failure::Store(StoreError::Backend {
            location,
            message: format!("the thread storing a chunk failed: {e}"),
        })),
    }
}
