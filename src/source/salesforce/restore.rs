//! Salesforce's side of restore (`crate::restore` plans and drives it): the describe's field
//! flags, the records the org holds now (a SOQL `IN` per 200 Ids), and writes with sObject
//! Collections of 200, each record on its own (`allOrNone: false`).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value};

use super::client::SalesforceClient;
use super::fetch::url_encode;
use crate::source::{FieldInfo, RecordWrite, SourceError, WriteOutcome};

/// sObject Collections take at most this many records per call.
pub const CHUNK: usize = 200;

/// Reads a describe or a schema document (`{"fields":[{"name","createable","updateable",
/// "referenceTo"}]}`).
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

/// An Id as Salesforce writes them: 15 or 18 letters and digits. Anything else cannot be put
/// into a SOQL literal.
fn is_id(value: &str) -> bool {
    (value.len() == 15 || value.len() == 18) && value.chars().all(|c| c.is_ascii_alphanumeric())
}

/// What the org holds now for these records (deleted ones are absent).
pub async fn current(
    client: &SalesforceClient,
    version: &str,
    object: &str,
    fields: &[String],
    ids: &[String],
) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
    let mut found = BTreeMap::new();
    let select: Vec<&str> = std::iter::once("Id")
        .chain(fields.iter().map(String::as_str).filter(|f| *f != "Id"))
        .collect();
    let ids: Vec<&String> = ids.iter().filter(|id| is_id(id)).collect();
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

/// Creates the records without an Id and updates those with one: one sObject Collections call
/// for each (at most [`CHUNK`] records in all), outcomes in the order of `writes`.
pub async fn write(
    client: &SalesforceClient,
    version: &str,
    writes: &[RecordWrite],
) -> Result<Vec<WriteOutcome>, SourceError> {
    let mut outcomes: Vec<WriteOutcome> = vec![Err(String::new()); writes.len()];
    for creating in [true, false] {
        let (positions, records): (Vec<usize>, Vec<Value>) = writes
            .iter()
            .enumerate()
            .filter(|(_, w)| w.id.is_none() == creating)
            .map(|(i, w)| {
                let mut record = Map::new();
                record.insert("attributes".into(), serde_json::json!({ "type": w.object }));
                if let Some(id) = &w.id {
                    record.insert("id".into(), Value::String(id.clone()));
                }
                record.extend(w.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                (i, Value::Object(record))
            })
            .unzip();
        if records.is_empty() {
            continue;
        }
        let body = serde_json::json!({ "allOrNone": false, "records": records });
        let method = if creating {
            Method::POST
        } else {
            Method::PATCH
        };
        let answer = client
            .call(
                method,
                &format!("/services/data/v{version}/composite/sobjects"),
                Some(&body),
            )
            .await?;
        let answers = answer.as_array().cloned().unwrap_or_default();
        for (n, position) in positions.into_iter().enumerate() {
            outcomes[position] = match answers.get(n) {
                Some(a) if a["success"] == true => Ok(a["id"]
                    .as_str()
                    .or(writes[position].id.as_deref())
                    .unwrap_or_default()
                    .to_string()),
                other => Err(why(other.unwrap_or(&Value::Null))),
            };
        }
    }
    Ok(outcomes)
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
