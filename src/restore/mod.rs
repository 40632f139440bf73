//! The restore engine, the same for every source: records chosen from a snapshot, compared
//! with what the source holds now, as a plan (create or update, field by field), then applied
//! in the connector's batches. Deleted records are created again parents first; lookups to
//! records created in the same restore are rewritten from old to new Ids, and those that
//! cannot be known yet (self and circular references) are set in a second pass. Every failure
//! is reported with its record; what succeeded stays. The connector (`crate::source::Connector`)
//! reads and writes; the engine never knows which service it is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::source::{Connector, FieldInfo, RecordWrite, SourceError, WriteOutcome};

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
    Update {
        object: String,
        id: String,
        changes: Vec<FieldChange>,
    },
    Unchanged {
        object: String,
        id: String,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestorePlan {
    pub steps: Vec<Step>,
    /// Into another account than the snapshot's.
    pub other_account: bool,
}

impl RestorePlan {
    pub fn count(&self, action: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| {
                matches!(
                    (s, action),
                    (Step::Create { .. }, "create")
                        | (Step::Update { .. }, "update")
                        | (Step::Unchanged { .. }, "unchanged")
                )
            })
            .count()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResult {
    /// (object, Id in the snapshot, new Id)
    pub created: Vec<(String, String, String)>,
    /// (object, Id)
    pub updated: Vec<(String, String)>,
    /// (object, Id in the snapshot, why)
    pub failed: Vec<(String, String, String)>,
}

/// Values equal as a source means them: datetimes in any offset, numbers in any form.
fn same(a: &Value, b: &Value) -> bool {
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

/// Compares the chosen records with the source and decides each one's step. `only` restricts
/// updates to these fields (a rollback of a mass update); `other_account` creates everything.
pub async fn plan<C: Connector>(
    connector: &C,
    chosen: &[Chosen],
    schemas: &Schemas,
    only: Option<&[String]>,
    other_account: bool,
) -> Result<RestorePlan, SourceError> {
    let empty = BTreeMap::new();
    let mut by_object: BTreeMap<&str, Vec<&Chosen>> = BTreeMap::new();
    for c in chosen {
        by_object.entry(c.object.as_str()).or_default().push(c);
    }
    let mut steps = Vec::new();
    for (object, records) in by_object {
        let infos = schemas.get(object).unwrap_or(&empty);
        let creatable = |record: &Map<String, Value>| -> Map<String, Value> {
            record
                .iter()
                .filter(|(name, value)| {
                    !value.is_null() && infos.get(*name).is_some_and(|i| i.createable)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if other_account {
            for c in records {
                steps.push(Step::Create {
                    object: object.to_string(),
                    id: c.id.clone(),
                    fields: creatable(&c.record),
                });
            }
            continue;
        }
        let updateable: Vec<String> = infos
            .iter()
            .filter(|(name, i)| i.updateable && only.is_none_or(|o| o.iter().any(|f| f == *name)))
            .map(|(name, _)| name.clone())
            .collect();
        let ids: Vec<String> = records.iter().map(|c| c.id.clone()).collect();
        let now = connector.read_records(object, &updateable, &ids).await?;
        for c in records {
            match now.get(&c.id) {
                None => steps.push(Step::Create {
                    object: object.to_string(),
                    id: c.id.clone(),
                    fields: creatable(&c.record),
                }),
                Some(live) => {
                    let changes: Vec<FieldChange> = updateable
                        .iter()
                        .filter_map(|field| {
                            let restored = c.record.get(field).cloned().unwrap_or(Value::Null);
                            let current = live.get(field).cloned().unwrap_or(Value::Null);
                            (!same(&restored, &current)).then(|| FieldChange {
                                field: field.clone(),
                                current,
                                restored,
                            })
                        })
                        .collect();
                    steps.push(if changes.is_empty() {
                        Step::Unchanged {
                            object: object.to_string(),
                            id: c.id.clone(),
                        }
                    } else {
                        Step::Update {
                            object: object.to_string(),
                            id: c.id.clone(),
                            changes,
                        }
                    });
                }
            }
        }
    }
    Ok(RestorePlan {
        steps,
        other_account,
    })
}

/// Objects ordered parents first: an object comes after every other object of the set it
/// looks up. Objects in a cycle keep name order (their lookups wait for the second pass).
fn parents_first(objects: &BTreeSet<String>, schemas: &Schemas) -> Vec<String> {
    let empty = BTreeMap::new();
    let needs = |object: &str| -> BTreeSet<String> {
        schemas
            .get(object)
            .unwrap_or(&empty)
            .values()
            .flat_map(|i| i.reference_to.iter().cloned())
            .filter(|parent| parent != object && objects.contains(parent))
            .collect()
    };
    let mut order = Vec::new();
    let mut left: BTreeSet<String> = objects.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|o| needs(o).iter().all(|p| !left.contains(p)))
            .cloned()
            .collect();
        let next = if ready.is_empty() {
            left.iter().take(1).cloned().collect()
        } else {
            ready
        };
        for o in next {
            left.remove(&o);
            order.push(o);
        }
    }
    order
}

/// Writes records in the connector's batches; one outcome per record, in order. A source
/// that answers fewer outcomes than records leaves the rest failed, never assumed written.
async fn write<C: Connector>(
    connector: &C,
    writes: Vec<RecordWrite>,
) -> Result<Vec<WriteOutcome>, SourceError> {
    let mut outcomes = Vec::with_capacity(writes.len());
    for batch in writes.chunks(connector.write_batch().max(1)) {
        let mut answers = connector.write_records(batch).await?;
        answers.resize_with(batch.len(), || {
            Err("no result returned for this record".into())
        });
        outcomes.extend(answers);
    }
    Ok(outcomes)
}

/// Executes a plan. An error from the source (its budget spent, say) stops it; what was done
/// is in the result.
pub async fn apply<C: Connector>(
    connector: &C,
    plan: &RestorePlan,
    schemas: &Schemas,
) -> Result<RestoreResult, SourceError> {
    let mut result = RestoreResult::default();
    let empty = BTreeMap::new();

    // Updates first: they need no Ids from anywhere.
    let mut updated_ids = Vec::new();
    let mut updates = Vec::new();
    for step in &plan.steps {
        if let Step::Update {
            object,
            id,
            changes,
        } = step
        {
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
    }
    for ((object, id), outcome) in updated_ids
        .into_iter()
        .zip(write(connector, updates).await?)
    {
        match outcome {
            Ok(_) => result.updated.push((object, id)),
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
    for object in parents_first(&objects, schemas) {
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
        // Each object's batch goes before the next object's: children need their parents' Ids.
        for (old_id, outcome) in old_ids.into_iter().zip(write(connector, records).await?) {
            match outcome {
                Ok(new) => {
                    mapped.insert(old_id.clone(), new.clone());
                    result.created.push((object.clone(), old_id, new));
                }
                Err(why) => result.failed.push((object.clone(), old_id, why)),
            }
        }
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
    for ((object, new_id), outcome) in keys.into_iter().zip(write(connector, writes).await?) {
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
