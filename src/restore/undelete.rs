//! Undeletes: records back from the source's recycle bin with their Ids, parents first.

use std::collections::{BTreeMap, BTreeSet};

use super::{RestorePlan, RestoreResult, Schemas, Step, parents_first};
use crate::source::{Connector, SourceError};

/// Brings the plan's recycled records back, parents first, in the connector's batches; returns
/// the Ids that are back. A record refused because it already came back with its parent (a
/// cascade) is back all the same: the source is asked which of the refused ones are live.
pub(super) async fn undelete<C: Connector>(
    connector: &C,
    plan: &RestorePlan,
    schemas: &Schemas,
    result: &mut RestoreResult,
) -> Result<BTreeSet<String>, SourceError> {
    let mut by_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for step in &plan.steps {
        if let Step::Undelete { object, id, .. } = step {
            by_object
                .entry(object.clone())
                .or_default()
                .push(id.clone());
        }
    }
    let mut back = BTreeSet::new();
    let objects: BTreeSet<String> = by_object.keys().cloned().collect();
    for object in parents_first(&objects, schemas, &|o| connector.makes(o)) {
        let mut ids = by_object.remove(&object).unwrap_or_default();
        if !back.is_empty() {
            // What came back with its parent (a cascade) needs no undelete of its own.
            let held = connector.read_state(&object, &[], &ids).await?;
            ids.retain(|id| {
                if held.live.contains_key(id) {
                    back.insert(id.clone());
                    result.undeleted.push((object.clone(), id.clone()));
                    false
                } else {
                    true
                }
            });
        }
        let mut refused = Vec::new();
        for batch in ids.chunks(connector.undelete_batch().max(1)) {
            let mut answers = connector.undelete(batch).await?;
            answers.resize_with(batch.len(), || {
                Err("no result returned for this record".into())
            });
            result.progress.add(batch.len() as u64);
            for (id, answer) in batch.iter().zip(answers) {
                match answer {
                    Ok(_) => {
                        back.insert(id.clone());
                        result.undeleted.push((object.clone(), id.clone()));
                    }
                    Err(why) => refused.push((id.clone(), why)),
                }
            }
        }
        if refused.is_empty() {
            continue;
        }
        let ids: Vec<String> = refused.iter().map(|(id, _)| id.clone()).collect();
        let live = connector.read_records(&object, &[], &ids).await?;
        for (id, why) in refused {
            if live.contains_key(&id) {
                back.insert(id.clone());
                result.undeleted.push((object.clone(), id));
            } else {
                result.failed.push((object.clone(), id, why));
            }
        }
    }
    Ok(back)
}
