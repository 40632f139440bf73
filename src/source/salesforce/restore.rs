//! Granular restore: records chosen from a snapshot, compared with what the org holds now, as a
//! plan (create or update, field by field), then applied with sObject Collections of 200.
//! Deleted records are created again parents first; lookups to records created in the same
//! restore are rewritten from old to new Ids, and those that cannot be known yet (self and
//! circular references) are set in a second pass. Every failure is reported with its record;
//! what succeeded stays.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use super::client::SalesforceClient;
use super::fetch::url_encode;
use crate::source::SourceError;

/// sObject Collections take at most this many records per call.
pub const CHUNK: usize = 200;

/// What the restore knows of a field, from the snapshot's schema document.
#[derive(Debug, Clone, Default)]
pub struct FieldInfo {
    pub createable: bool,
    pub updateable: bool,
    pub reference_to: Vec<String>,
}

/// Field name -> info, per object.
pub type Schemas = BTreeMap<String, BTreeMap<String, FieldInfo>>;

/// Reads a schema document (`{"fields":[{"name","createable","updateable","referenceTo"}]}`).
pub fn field_infos(document: &Value) -> BTreeMap<String, FieldInfo> {
    document["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f["name"].as_str()?.to_string(),
                FieldInfo {
                    createable: f["createable"] == true,
                    updateable: f["updateable"] == true,
                    reference_to: f["referenceTo"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect(),
                },
            ))
        })
        .collect()
}

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
    /// The record is gone from the org (or this is another org): create it.
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
    /// Into another org than the snapshot's.
    pub other_org: bool,
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

fn is_id(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| {
        (s.len() == 15 || s.len() == 18) && s.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// What the org holds now for these records: a SOQL `IN` per 200 Ids (deleted ones are absent).
async fn current(
    client: &SalesforceClient,
    version: &str,
    object: &str,
    fields: &[String],
    ids: &[&str],
) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
    let mut found = BTreeMap::new();
    let select: Vec<&str> = std::iter::once("Id")
        .chain(fields.iter().map(String::as_str).filter(|f| *f != "Id"))
        .collect();
    for chunk in ids.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
        let soql = format!(
            "SELECT {} FROM {object} WHERE Id IN ({})",
            select.join(", "),
            list.join(", ")
        );
        let mut path = format!("/services/data/v{version}/query?q={}", url_encode(&soql));
        loop {
            let page = client.call(Method::GET, &path, None).await?;
            for record in page["records"].as_array().into_iter().flatten() {
                if let (Some(id), Some(map)) = (record["Id"].as_str(), record.as_object()) {
                    let mut map = map.clone();
                    map.remove("attributes");
                    found.insert(id.to_string(), map);
                }
            }
            match page["nextRecordsUrl"].as_str() {
                Some(next) if page["done"] != true => path = next.to_string(),
                _ => break,
            }
        }
    }
    Ok(found)
}

/// Values equal as Salesforce means them: datetimes in any offset, numbers in any form.
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

/// Compares the chosen records with the org and decides each one's step. `only` restricts
/// updates to these fields (a rollback of a mass update); `other_org` creates everything.
pub async fn plan(
    client: &SalesforceClient,
    version: &str,
    chosen: &[Chosen],
    schemas: &Schemas,
    only: Option<&[String]>,
    other_org: bool,
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
        if other_org {
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
        let ids: Vec<&str> = records.iter().map(|c| c.id.as_str()).collect();
        let now = current(client, version, object, &updateable, &ids).await?;
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
    Ok(RestorePlan { steps, other_org })
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

async fn send(
    client: &SalesforceClient,
    version: &str,
    method: Method,
    records: Vec<Value>,
) -> Result<Vec<Value>, SourceError> {
    let body = serde_json::json!({ "allOrNone": false, "records": records });
    let answer = client
        .call(
            method,
            &format!("/services/data/v{version}/composite/sobjects"),
            Some(&body),
        )
        .await?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

fn why(result: &Value) -> String {
    let errors: Vec<String> = result["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e["statusCode"].as_str().unwrap_or("ERROR"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    if errors.is_empty() {
        "no result returned for this record".into()
    } else {
        errors.join("; ")
    }
}

/// Executes a plan. Budget exhaustion stops it; what was done is in the result.
pub async fn apply(
    client: &SalesforceClient,
    version: &str,
    plan: &RestorePlan,
    schemas: &Schemas,
) -> Result<RestoreResult, SourceError> {
    let mut result = RestoreResult::default();
    let empty = BTreeMap::new();

    // Updates first: they need no Ids from anywhere.
    let updates: Vec<(&String, &String, &Vec<FieldChange>)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Update {
                object,
                id,
                changes,
            } => Some((object, id, changes)),
            _ => None,
        })
        .collect();
    for chunk in updates.chunks(CHUNK) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|(object, id, changes)| {
                let mut record = Map::new();
                record.insert("attributes".into(), serde_json::json!({ "type": object }));
                record.insert("id".into(), Value::String((*id).clone()));
                for change in *changes {
                    record.insert(change.field.clone(), change.restored.clone());
                }
                Value::Object(record)
            })
            .collect();
        let answers = send(client, version, Method::PATCH, records).await?;
        for (i, (object, id, _)) in chunk.iter().enumerate() {
            match answers.get(i) {
                Some(a) if a["success"] == true => {
                    result.updated.push(((*object).clone(), (*id).clone()))
                }
                other => result.failed.push((
                    (*object).clone(),
                    (*id).clone(),
                    why(other.unwrap_or(&Value::Null)),
                )),
            }
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
        let mine: Vec<&(&String, &String, &Map<String, Value>)> =
            creates.iter().filter(|(o, _, _)| **o == object).collect();
        for chunk in mine.chunks(CHUNK) {
            let mut records = Vec::new();
            for (_, old_id, fields) in chunk {
                let mut record = Map::new();
                record.insert("attributes".into(), serde_json::json!({ "type": object }));
                for (name, value) in fields.iter() {
                    let is_lookup = infos.get(name).is_some_and(|i| !i.reference_to.is_empty());
                    match (is_lookup, is_id(value)) {
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
                        // Another org has none of this org's records.
                        (true, Some(_)) if plan.other_org => {}
                        _ => {
                            record.insert(name.clone(), value.clone());
                        }
                    }
                }
                records.push(Value::Object(record));
            }
            let answers = send(client, version, Method::POST, records).await?;
            for (i, (_, old_id, _)) in chunk.iter().enumerate() {
                match answers.get(i) {
                    Some(a) if a["success"] == true => {
                        let new = a["id"].as_str().unwrap_or_default().to_string();
                        mapped.insert((*old_id).clone(), new.clone());
                        result
                            .created
                            .push((object.clone(), (*old_id).clone(), new));
                    }
                    other => result.failed.push((
                        object.clone(),
                        (*old_id).clone(),
                        why(other.unwrap_or(&Value::Null)),
                    )),
                }
            }
        }
    }

    // Second pass: self and circular references, now that every new Id is known.
    let mut links: BTreeMap<(String, String), Map<String, Value>> = BTreeMap::new();
    for (object, old_id, field, target) in deferred {
        let (Some(new_id), Some(new_target)) = (mapped.get(&old_id), mapped.get(&target)) else {
            continue;
        };
        let record = links.entry((object.clone(), new_id.clone())).or_default();
        record.insert("attributes".into(), serde_json::json!({ "type": object }));
        record.insert("id".into(), Value::String(new_id.clone()));
        record.insert(field, Value::String(new_target.clone()));
    }
    let links: Vec<((String, String), Map<String, Value>)> = links.into_iter().collect();
    for chunk in links.chunks(CHUNK) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|(_, r)| Value::Object(r.clone()))
            .collect();
        let answers = send(client, version, Method::PATCH, records).await?;
        for (i, ((object, new_id), _)) in chunk.iter().enumerate() {
            if answers.get(i).is_none_or(|a| a["success"] != true) {
                result.failed.push((
                    object.clone(),
                    new_id.clone(),
                    format!(
                        "created, but its lookups to other restored records could not be set: {}",
                        why(answers.get(i).unwrap_or(&Value::Null))
                    ),
                ));
            }
        }
    }
    Ok(result)
}
