//! A restore's plan: the chosen records compared with what the source holds now, each given
//! its step (undelete, create, update field by field, or skip with why).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::*;
use crate::source::{Connector, SourceError};

/// Compares the chosen records with the source and decides each one's step. `only` restricts
/// updates to these fields (a rollback of a mass update); `other_account` restores into another
/// account than the snapshot's. `earlier` is what earlier restores into this account created:
/// a record they created stands for its snapshot record (updated, not created again).
pub async fn plan<C: Connector>(
    connector: &C,
    chosen: &[Chosen],
    schemas: &Schemas,
    only: Option<&[String]>,
    other_account: bool,
    earlier: &BTreeMap<String, Created>,
) -> Result<RestorePlan, SourceError> {
    let empty = BTreeMap::new();
    let mut by_object: BTreeMap<&str, Vec<&Chosen>> = BTreeMap::new();
    for c in chosen {
        by_object.entry(c.object.as_str()).or_default().push(c);
    }
    let mut steps = Vec::new();
    let mut restored_as = BTreeMap::new();
    let mut not_restorable: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The chosen object whose creates make records of `object` (a version, its document).
    let chosen_objects: Vec<&str> = by_object.keys().copied().collect();
    let made_by = |object: &str| {
        chosen_objects
            .iter()
            .find(|maker| connector.makes(maker).iter().any(|m| m == object))
            .copied()
    };
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
        let updateable: Vec<String> = infos
            .iter()
            .filter(|(name, i)| i.updateable && only.is_none_or(|o| o.iter().any(|f| f == *name)))
            // Another account's lookups name that account's records, never these.
            .filter(|(_, i)| !other_account || i.reference_to.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        // Where each record is now: an earlier restore's creation, or (in its own account)
        // itself. Another account holds none of the snapshot's records.
        let target = |c: &Chosen| -> Option<String> {
            match earlier.get(&c.id).filter(|e| e.object == object) {
                Some(created) => Some(created.new_id.clone()),
                None => (!other_account).then(|| c.id.clone()),
            }
        };
        let ids: Vec<String> = records.iter().filter_map(|c| target(c)).collect();
        // Live, or deleted but still in the recycle bin (then it comes back with its Id).
        let Held {
            live: now,
            recycled,
        } = if ids.is_empty() {
            Held::default()
        } else {
            connector.read_state(object, &updateable, &ids).await?
        };
        let changes_from = |c: &Chosen, held: &Map<String, Value>| -> Vec<FieldChange> {
            updateable
                .iter()
                .filter_map(|field| {
                    let mut restored = c.record.get(field).cloned().unwrap_or(Value::Null);
                    // A lookup to a record an earlier restore created anew points at that one.
                    if infos.get(field).is_some_and(|i| !i.reference_to.is_empty())
                        && let Some(created) = restored.as_str().and_then(|old| earlier.get(old))
                    {
                        restored = Value::String(created.new_id.clone());
                    }
                    let current = held.get(field).cloned().unwrap_or(Value::Null);
                    (!same(&restored, &current)).then(|| FieldChange {
                        field: field.clone(),
                        current,
                        restored,
                    })
                })
                .collect()
        };
        for c in records {
            let at = target(c);
            let held = at.as_ref().and_then(|id| now.get(id));
            let binned = at.as_ref().and_then(|id| recycled.get(id));
            let Some(at) = at.filter(|_| held.is_some() || binned.is_some()) else {
                // An object none of whose fields can be set on create (a history or system
                // object) cannot have records created at all.
                if !infos.is_empty() && !infos.values().any(|i| i.createable) {
                    let why = match made_by(object) {
                        Some(maker) => format!(
                            "{object} records are not created on their own: the {maker} records restored with it make a new one"
                        ),
                        None => format!(
                            "{object} records cannot be created again: none of its fields can be set on create"
                        ),
                    };
                    steps.push(Step::Skipped {
                        object: object.to_string(),
                        id: c.id.clone(),
                        why,
                    });
                    continue;
                }
                not_restorable
                    .entry(object.to_string())
                    .or_default()
                    .extend(
                        c.record
                            .iter()
                            .filter(|(name, value)| {
                                !value.is_null()
                                    && *name != "Id"
                                    && !infos.get(*name).is_some_and(|i| i.createable)
                            })
                            .map(|(name, _)| name.clone()),
                    );
                steps.push(Step::Create {
                    object: object.to_string(),
                    id: c.id.clone(),
                    fields: creatable(&c.record),
                });
                continue;
            };
            if at != c.id {
                restored_as.insert(c.id.clone(), at.clone());
            }
            match (held, binned) {
                (Some(live), _) => {
                    let changes = changes_from(c, live);
                    steps.push(if changes.is_empty() {
                        Step::Unchanged {
                            object: object.to_string(),
                            id: at,
                        }
                    } else {
                        Step::Update {
                            object: object.to_string(),
                            id: at,
                            changes,
                        }
                    });
                }
                (None, Some(binned)) => steps.push(Step::Undelete {
                    object: object.to_string(),
                    id: at,
                    changes: changes_from(c, binned),
                }),
                (None, None) => unreachable!("filtered above"),
            }
        }
    }
    Ok(RestorePlan {
        steps,
        other_account,
        restored_as,
        id_map: earlier
            .iter()
            .map(|(old, created)| (old.clone(), created.new_id.clone()))
            .collect(),
        not_restorable,
    })
}
