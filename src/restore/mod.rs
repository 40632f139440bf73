//! The restore engine, the same for every source: records chosen from a snapshot, compared
//! with what the source holds now, as a plan (undelete, create or update, field by field),
//! then applied in the connector's batches. Deleted records still in the source's recycle bin
//! come back with their Ids (undelete, parents first, `undelete.rs`); the others are created
//! again parents first; lookups to records created in the same restore are rewritten from old
//! to new Ids, and those that cannot be known yet (self and circular references) are set in a
//! second pass. What each run creates is journaled (`journal.rs`), so nothing is created
//! twice. Every failure is reported with its record; what succeeded stays. The connector
//! (`crate::source::Connector`) reads and writes; the engine never knows which service it is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::source::{Connector, FieldInfo, Held, RecordWrite, SourceError, WriteOutcome};
use crate::store::StoreError;

mod bodies;
pub mod journal;
mod order;
mod planning;
mod settle;
mod undelete;

pub use bodies::SnapshotBodies;
use order::parents_first;
pub use planning::plan;
use settle::Creating;

pub use journal::{Created, Finished, PendingBatch, RunDocument, RunJournal, resolve_pending};
use undelete::undelete;

/// Why a restore stopped: the source refused, or its journal could not be written (then
/// nothing more is sent: a create the journal cannot remember could be made twice).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the restore journal could not be written, so the restore stopped: {0}")]
    Journal(#[from] StoreError),
    #[error("a file body could not be read from the snapshot, so the restore stopped: {0}")]
    Snapshot(StoreError),
}

/// How far the source's clock may be behind what it last said, for finding what a killed run
/// created.
const CLOCK_MARGIN_MS: i64 = 5 * 60_000;

/// Field name -> info, per object.
pub type Schemas = BTreeMap<String, BTreeMap<String, FieldInfo>>;

/// A record chosen from the snapshot.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub object: String,
    pub id: String,
    pub record: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub current: Value,
    pub restored: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Step {
    /// The record is gone from the source (or this is another account): create it.
    Create {
        object: String,
        /// Its Id in the snapshot.
        id: String,
        fields: Map<String, Value>,
    },
    /// The record is in the source's recycle bin: bring it back with its Id (and what its
    /// delete took along), then set the fields where it differs from the snapshot.
    Undelete {
        object: String,
        id: String,
        changes: Vec<FieldChange>,
    },
    Update {
        object: String,
        id: String,
        changes: Vec<FieldChange>,
    },
    Unchanged {
        object: String,
        id: String,
    },
    /// Left as it is, and why (the restore's mode).
    Skipped {
        object: String,
        id: String,
        why: String,
    },
}

/// Which records a restore writes (also the `mode` of a restore manifest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Brings back what is gone and sets back what differs.
    #[default]
    Both,
    /// Brings back what is gone; records still there are left as they are.
    CreateMissing,
    /// Sets back what differs in records still there; nothing gone is brought back.
    UpdateExisting,
}

impl RestorePlan {
    /// The plan with the steps `mode` does not take turned into skips that say why.
    pub fn in_mode(mut self, mode: Mode) -> RestorePlan {
        for step in &mut self.steps {
            let why = match (mode, &*step) {
                (Mode::CreateMissing, Step::Update { .. }) => {
                    "still there; --mode create-missing leaves it as it is"
                }
                (Mode::UpdateExisting, Step::Create { .. } | Step::Undelete { .. }) => {
                    "gone; --mode update-existing brings nothing back"
                }
                _ => continue,
            };
            let (Step::Create { object, id, .. }
            | Step::Undelete { object, id, .. }
            | Step::Update { object, id, .. }) = step
            else {
                continue;
            };
            *step = Step::Skipped {
                object: object.clone(),
                id: id.clone(),
                why: why.to_string(),
            };
        }
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    pub steps: Vec<Step>,
    /// Into another account than the snapshot's.
    pub other_account: bool,
    /// Chosen records an earlier restore created anew: Id in the snapshot -> the record that
    /// stands for it (the steps name the latter).
    pub restored_as: BTreeMap<String, String>,
    /// Everything earlier restores created (snapshot Id -> new Id), for lookups to them.
    #[serde(skip)]
    pub id_map: BTreeMap<String, String>,
    /// Fields with values in the snapshot that a create cannot set (audit fields without the
    /// permission to set them, formulas, system fields), per object.
    pub not_restorable: BTreeMap<String, BTreeSet<String>>,
}

impl RestorePlan {
    pub fn count(&self, action: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| {
                matches!(
                    (s, action),
                    (Step::Create { .. }, "create")
                        | (Step::Undelete { .. }, "undelete")
                        | (Step::Update { .. }, "update")
                        | (Step::Unchanged { .. }, "unchanged")
                        | (Step::Skipped { .. }, "skipped")
                )
            })
            .count()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResult {
    /// (object, Id): back from the recycle bin with its Id.
    pub undeleted: Vec<(String, String)>,
    /// (object, Id in the snapshot, new Id)
    pub created: Vec<(String, String, String)>,
    /// (object, Id)
    pub updated: Vec<(String, String)>,
    /// (object, Id in the snapshot, why)
    pub failed: Vec<(String, String, String)>,
    /// Counts the records written as they are, for whoever watches.
    #[serde(skip)]
    pub(crate) progress: crate::progress::Meter,
}

/// Values equal as a source means them: datetimes in any offset, numbers in any form.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            match (
                crate::time::parse_datetime(x),
                crate::time::parse_datetime(y),
            ) {
                (Some(p), Some(q)) => p == q,
                _ => false,
            }
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

/// Writes records in the connector's batches; one outcome per record, in order. A source
/// that answers fewer outcomes than records leaves the rest failed, never assumed written.
async fn write<C: Connector>(
    connector: &C,
    writes: Vec<RecordWrite>,
    progress: Option<&crate::progress::Meter>,
) -> Result<Vec<WriteOutcome>, SourceError> {
    let mut outcomes = Vec::with_capacity(writes.len());
    for batch in writes.chunks(connector.write_batch().max(1)) {
        let mut answers = connector.write_records(batch).await?;
        answers.resize_with(batch.len(), || {
            Err("no result returned for this record".into())
        });
        outcomes.extend(answers);
        if let Some(meter) = progress {
            meter.add(batch.len() as u64);
        }
    }
    Ok(outcomes)
}

/// The record writes a plan makes (an undelete that also sets fields back is two): what a
/// restore's progress counts to.
pub fn writes(plan: &RestorePlan) -> u64 {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Undelete { changes, .. } => 1 + u64::from(!changes.is_empty()),
            Step::Update { .. } | Step::Create { .. } => 1,
            _ => 0,
        })
        .sum()
}

/// Executes a plan. An error from the source (its budget spent, say) stops it; what was done
/// is in the result.
pub async fn apply<C: Connector>(
    connector: &C,
    plan: &RestorePlan,
    schemas: &Schemas,
    bodies: Option<&SnapshotBodies<'_>>,
    journal: &mut RunJournal<'_>,
) -> Result<RestoreResult, RestoreError> {
    let progress = crate::progress::Meter::default();
    apply_watched(connector, plan, schemas, bodies, journal, &progress).await
}

/// [`apply`], counting the records written on `progress` (to [`writes`] of the plan).
pub async fn apply_watched<C: Connector>(
    connector: &C,
    plan: &RestorePlan,
    schemas: &Schemas,
    bodies: Option<&SnapshotBodies<'_>>,
    journal: &mut RunJournal<'_>,
    progress: &crate::progress::Meter,
) -> Result<RestoreResult, RestoreError> {
    let mut result = RestoreResult {
        progress: progress.clone(),
        ..RestoreResult::default()
    };
    let empty = BTreeMap::new();

    // Undeletes first, parents before children: a child comes back only with its parent, and
    // what a parent's delete took along returns with it.
    let back = undelete(connector, plan, schemas, &mut result).await?;

    // Then updates (of undeleted records too): they need no Ids from anywhere.
    let mut updated_ids = Vec::new();
    let mut updates = Vec::new();
    for step in &plan.steps {
        let (Step::Update {
            object,
            id,
            changes,
        }
        | Step::Undelete {
            object,
            id,
            changes,
        }) = step
        else {
            continue;
        };
        if matches!(step, Step::Undelete { .. }) && (changes.is_empty() || !back.contains(id)) {
            continue;
        }
        updated_ids.push((object.clone(), id.clone()));
        updates.push(RecordWrite {
            object: object.clone(),
            id: Some(id.clone()),
            fields: changes
                .iter()
                .map(|c| (c.field.clone(), c.restored.clone()))
                .collect(),
        });
    }
    for ((object, id), outcome) in updated_ids
        .into_iter()
        .zip(write(connector, updates, Some(progress)).await?)
    {
        match outcome {
            Ok(_) if back.contains(&id) => {}
            Ok(_) => result.updated.push((object, id)),
            Err(why) if back.contains(&id) => result.failed.push((
                object,
                id,
                format!("undeleted, but its fields could not be set back: {why}"),
            )),
            Err(why) => result.failed.push((object, id, why)),
        }
    }

    // Creates, parents first, mapping old Ids to new.
    let creates: Vec<(&String, &String, &Map<String, Value>)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Create { object, id, fields } => Some((object, id, fields)),
            _ => None,
        })
        .collect();
    let restoring: BTreeSet<&str> = creates.iter().map(|(_, id, _)| id.as_str()).collect();
    let objects: BTreeSet<String> = creates.iter().map(|(o, _, _)| (*o).clone()).collect();
    let mut mapped: BTreeMap<String, String> = BTreeMap::new();
    // (object, old Id, field, old target Id): lookups set in the second pass.
    let mut deferred: Vec<(String, String, String, String)> = Vec::new();
    for object in parents_first(&objects, schemas, &|o| connector.makes(o)) {
        let infos = schemas.get(&object).unwrap_or(&empty);
        let mut old_ids = Vec::new();
        let mut records = Vec::new();
        for (_, old_id, fields) in creates.iter().filter(|(o, _, _)| **o == object) {
            let mut record = Map::new();
            for (name, value) in fields.iter() {
                let is_lookup = infos.get(name).is_some_and(|i| !i.reference_to.is_empty());
                match (is_lookup, value.as_str()) {
                    (true, Some(target)) if restoring.contains(target) => {
                        match mapped.get(target) {
                            Some(new) => {
                                record.insert(name.clone(), Value::String(new.clone()));
                            }
                            None => deferred.push((
                                object.clone(),
                                (*old_id).clone(),
                                name.clone(),
                                target.to_string(),
                            )),
                        }
                    }
                    // A record the source made alongside a create (a version's new document).
                    (true, Some(target)) if mapped.contains_key(target) => {
                        record.insert(name.clone(), Value::String(mapped[target].clone()));
                    }
                    // A record an earlier restore created stands for its snapshot record.
                    (true, Some(target)) if plan.id_map.contains_key(target) => {
                        record.insert(name.clone(), Value::String(plan.id_map[target].clone()));
                    }
                    // Another account has none of this account's records.
                    (true, Some(_)) if plan.other_account => {}
                    _ => {
                        record.insert(name.clone(), value.clone());
                    }
                }
            }
            old_ids.push((*old_id).clone());
            records.push(RecordWrite {
                object: object.clone(),
                id: None,
                fields: record,
            });
        }
        // A record with a file body goes in a call of its own, its body streamed with it.
        let mut batched_ids = Vec::new();
        let mut batched = Vec::new();
        let mut single = Vec::new();
        for (old_id, record) in old_ids.into_iter().zip(records) {
            match bodies
                .map(|b| b.upload(&object, &old_id))
                .transpose()
                .map_err(RestoreError::Snapshot)?
                .flatten()
            {
                None => {
                    batched_ids.push(old_id);
                    batched.push(record);
                }
                Some(Ok(upload)) => single.push((old_id, record, upload)),
                Some(Err(why)) => result.failed.push((object.clone(), old_id, why)),
            }
        }
        // Each object's batches go before the next object's: children need their parents'
        // Ids. Each batch is written down before it is sent, and what it made after.
        let mut created = Creating {
            object: &object,
            mapped: &mut mapped,
            result: &mut result,
            journal,
        };
        created.batches(connector, &batched_ids, &batched).await?;
        for (old_id, record, upload) in single {
            created
                .with_body(connector, old_id, record, &upload)
                .await?;
        }
        mapped.extend(connector.take_made());
    }

    // Second pass: self and circular references, now that every new Id is known.
    let mut links: BTreeMap<(String, String), Map<String, Value>> = BTreeMap::new();
    for (object, old_id, field, target) in deferred {
        let (Some(new_id), Some(new_target)) = (mapped.get(&old_id), mapped.get(&target)) else {
            continue;
        };
        links
            .entry((object, new_id.clone()))
            .or_default()
            .insert(field, Value::String(new_target.clone()));
    }
    let (keys, writes): (Vec<(String, String)>, Vec<RecordWrite>) = links
        .into_iter()
        .map(|((object, new_id), fields)| {
            (
                (object.clone(), new_id.clone()),
                RecordWrite {
                    object,
                    id: Some(new_id),
                    fields,
                },
            )
        })
        .unzip();
    for ((object, new_id), outcome) in keys.into_iter().zip(write(connector, writes, None).await?) {
        if let Err(why) = outcome {
            result.failed.push((
                object,
                new_id,
                format!(
                    "created, but its lookups to other restored records could not be set: {why}"
                ),
            ));
        }
    }
    Ok(result)
}
