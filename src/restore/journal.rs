//! What restores into an account created, kept in the store so that no record is ever created
//! twice: a restore run again continues where it stopped, and a later restore that meets a
//! record an earlier one created uses that record. Each run writes its own sealed document,
//! `restores/<account>/<run>`, and reads everyone's.
//!
//! A batch of creates is written down before it is sent (pending: the source's time and the
//! values sent) and its outcome after. A run killed in between leaves the batch pending; the
//! next run resolves it by asking the source which records it created since then with exactly
//! those values (see `super::resolve_pending`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::same;
use crate::source::{Connector, SourceError};
use crate::store::{Store, StoreError};

const DIR: &str = "restores";

/// A record a restore created in place of one from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub object: String,
    pub new_id: String,
}

/// Creates sent whose outcome was not written down (yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingBatch {
    pub object: String,
    /// The source's time (ms) before the batch was sent, less a margin for clocks.
    pub since: i64,
    /// Each record's Id in the snapshot and the values sent to create it.
    pub records: Vec<(String, Map<String, Value>)>,
}

/// One run's journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDocument {
    /// Id in the snapshot -> the record created for it.
    #[serde(default)]
    pub created: BTreeMap<String, Created>,
    #[serde(default)]
    pub pending: Vec<PendingBatch>,
    /// The restore manifest (`restores/<id>.yaml`) this run carries out, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Set when the run came to its end; a manifest's finished run means it never runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finished>,
}

/// How a run ended, in counts (the org holds the records; the journal holds no values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    /// When, in ms since the epoch (this machine's clock).
    pub at: i64,
    pub undeleted: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
}

/// The finished run of a restore manifest, if one is journaled: its name and how it ended.
pub fn finished_manifest<'a>(
    runs: &'a [(String, RunDocument)],
    manifest: &str,
) -> Option<(&'a str, &'a Finished)> {
    runs.iter().find_map(
        |(name, doc)| match (doc.manifest.as_deref(), doc.finished.as_ref()) {
            (Some(m), Some(finished)) if m == manifest => Some((name.as_str(), finished)),
            _ => None,
        },
    )
}

/// The folder of an account's journals: a digest, so any account id makes a path.
fn folder(account: &str) -> String {
    let digest = blake3::hash(account.as_bytes());
    format!("{DIR}/{}", &digest.to_hex()[..16])
}

/// Every run's journal for the account, by name, oldest first. A journal that does not open
/// is an error: without it, records it created could be created again.
pub fn runs(store: &Store, account: &str) -> Result<Vec<(String, RunDocument)>, StoreError> {
    let dir = folder(account);
    let mut names = store.list_documents(&dir)?;
    names.sort();
    let mut runs = Vec::new();
    for name in names {
        let Some(bytes) = store.get_document(&dir, &name)? else {
            continue;
        };
        let document = serde_json::from_slice(&bytes).map_err(|e| StoreError::Backend {
            location: format!("{dir}/{name}"),
            message: format!("a restore journal does not read: {e}"),
        })?;
        runs.push((name, document));
    }
    Ok(runs)
}

pub fn save(
    store: &Store,
    account: &str,
    name: &str,
    document: &RunDocument,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(document).map_err(|e| StoreError::Compression(e.to_string()))?;
    store.put_document(&folder(account), name, &bytes)
}

/// Snapshot Id -> new Id, from every run.
pub fn id_map(runs: &[(String, RunDocument)]) -> BTreeMap<String, Created> {
    runs.iter()
        .flat_map(|(_, doc)| doc.created.iter())
        .map(|(old, created)| (old.clone(), created.clone()))
        .collect()
}

/// This run's journal, written to the store at every change.
pub struct RunJournal<'a> {
    store: &'a Store,
    account: String,
    name: String,
    document: RunDocument,
}

impl<'a> RunJournal<'a> {
    /// A new run's journal, named so that names sort by start time.
    pub fn start(store: &'a Store, account: &str) -> Result<RunJournal<'a>, StoreError> {
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| StoreError::Random(e.to_string()))?;
        Ok(RunJournal {
            store,
            account: account.to_string(),
            name: format!(
                "{:013}-{}",
                crate::time::now_ms().max(0),
                crate::store::crypto::hex(&random)
            ),
            document: RunDocument::default(),
        })
    }

    /// The run carries out this restore manifest.
    pub fn for_manifest(&mut self, manifest: &str) -> Result<(), StoreError> {
        self.document.manifest = Some(manifest.to_string());
        self.save()
    }

    /// The run's name in the store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes down that the run came to its end, and how.
    pub fn finish(&mut self, finished: Finished) -> Result<(), StoreError> {
        self.document.finished = Some(finished);
        self.save()
    }

    /// Writes down a batch about to be sent.
    pub fn sending(&mut self, batch: PendingBatch) -> Result<(), StoreError> {
        self.document.pending.push(batch);
        self.save()
    }

    /// Writes down what the pending batch created; the batch is no longer pending.
    pub fn settled(&mut self, created: Vec<(String, Created)>) -> Result<(), StoreError> {
        self.document.pending.clear();
        self.document.created.extend(created);
        self.save()
    }

    fn save(&self) -> Result<(), StoreError> {
        save(self.store, &self.account, &self.name, &self.document)
    }
}

/// Settles the pending batches of runs that stopped between sending creates and writing down
/// their outcome: each pending record is matched to a record the source created since the
/// batch was sent with exactly the values sent (each created record matched once). Matched
/// records are written down as created; unmatched ones were not created. Returns whether any
/// run changed (the caller saves them).
pub async fn resolve_pending<C: Connector>(
    connector: &C,
    runs: &mut [(String, RunDocument)],
) -> Result<Vec<String>, SourceError> {
    let mut changed = Vec::new();
    let mut claimed: BTreeSet<String> = runs
        .iter()
        .flat_map(|(_, doc)| doc.created.values().map(|c| c.new_id.clone()))
        .collect();
    for (name, doc) in runs.iter_mut() {
        if doc.pending.is_empty() {
            continue;
        }
        for batch in std::mem::take(&mut doc.pending) {
            let fields: BTreeSet<String> = batch
                .records
                .iter()
                .flat_map(|(_, values)| values.keys().cloned())
                .collect();
            let fields: Vec<String> = fields.into_iter().collect();
            let made = connector
                .created_since(&batch.object, batch.since, &fields)
                .await?;
            for (old, values) in batch.records {
                let found = made.iter().find(|(id, record)| {
                    !claimed.contains(id)
                        && values
                            .iter()
                            .all(|(f, v)| same(v, record.get(f).unwrap_or(&Value::Null)))
                });
                if let Some((new_id, _)) = found {
                    claimed.insert(new_id.clone());
                    doc.created.insert(
                        old,
                        Created {
                            object: batch.object.clone(),
                            new_id: new_id.clone(),
                        },
                    );
                }
            }
        }
        changed.push(name.clone());
    }
    Ok(changed)
}
