//! Salesforce's side of restore (`crate::restore` plans and drives it): the describe's field
//! flags, the records the org holds now and those in its recycle bin (SOQL `IN` lists as long
//! as a URI allows, five to a `/composite` call), `undelete` through the partner SOAP API (200 Ids a call), and writes with sObject
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
pub(super) fn is_id(value: &str) -> bool {
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
    read(client, version, "query", object, fields, ids).await
}

/// Where these records are now, in one pass (`queryAll` with `IsDeleted`): live, in the
/// recycle bin, or (absent) purged for good.
pub async fn state(
    client: &SalesforceClient,
    version: &str,
    object: &str,
    fields: &[String],
    ids: &[String],
) -> Result<crate::source::Held, SourceError> {
    let mut with_flag: Vec<String> = fields
        .iter()
        .filter(|f| *f != "IsDeleted")
        .cloned()
        .collect();
    with_flag.push("IsDeleted".into());
    let mut held = crate::source::Held::default();
    for (id, mut record) in read(client, version, "queryAll", object, &with_flag, ids).await? {
        let deleted = record.get("IsDeleted") == Some(&Value::Bool(true));
        if !fields.iter().any(|f| f == "IsDeleted") {
            record.remove("IsDeleted");
        }
        match deleted {
            true => held.recycled.insert(id, record),
            false => held.live.insert(id, record),
        };
    }
    Ok(held)
}

/// The longest query URI sent: Salesforce refuses a URI and headers over 16,384 bytes (414),
/// so long `IN` lists are split; this leaves room for the headers.
const MAX_QUERY_URI: usize = 15_000;

/// Reads records by Id through `resource` (query or queryAll), as many Ids per SOQL `IN` as
/// fit in a URI Salesforce takes (about 400 with a short field list).
async fn read(
    client: &SalesforceClient,
    version: &str,
    resource: &str,
    object: &str,
    fields: &[String],
    ids: &[String],
) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
    let mut found = BTreeMap::new();
    let select: Vec<&str> = std::iter::once("Id")
        .chain(fields.iter().map(String::as_str).filter(|f| *f != "Id"))
        .collect();
    let head = format!("SELECT {} FROM {object} WHERE Id IN (", select.join(", "));
    let fixed = url_encode(&head).len() + 64;
    let ids: Vec<&String> = ids.iter().filter(|id| is_id(id)).collect();
    let mut soqls = Vec::new();
    let mut rest = ids.as_slice();
    while !rest.is_empty() {
        // Each Id costs its 18 characters, two encoded quotes and an encoded comma.
        let fit = (MAX_QUERY_URI.saturating_sub(fixed) / 27).clamp(1, 2000);
        let (chunk, after) = rest.split_at(fit.min(rest.len()));
        rest = after;
        let list: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
        soqls.push(format!("{head}{})", list.join(",")));
    }
    if soqls.len() < 2 || !composite_served(version) {
        for soql in &soqls {
            found.extend(every_page(client, version, resource, soql).await?);
        }
        return Ok(found);
    }
    // Several queries: five to a composite call, their further pages one call each.
    let paths: Vec<String> = soqls
        .iter()
        .map(|soql| {
            format!(
                "/services/data/v{version}/{resource}?q={}",
                url_encode(soql)
            )
        })
        .collect();
    for answer in client.get_many(&paths).await? {
        let page = answer?;
        found.extend(records_of(&page));
        if let Some(next) = page["nextRecordsUrl"]
            .as_str()
            .filter(|_| page["done"] != true)
        {
            found.extend(pages_from(client, next.to_string()).await?);
        }
    }
    Ok(found)
}

/// `/composite` exists from API version 34.0.
fn composite_served(version: &str) -> bool {
    version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 34)
}

/// A query page's records by Id, without their `attributes`.
fn records_of(page: &Value) -> Vec<(String, Map<String, Value>)> {
    page["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|record| {
            let mut map = record.as_object()?.clone();
            let id = record["Id"].as_str()?.to_string();
            map.remove("attributes");
            Some((id, map))
        })
        .collect()
}

/// A query's records by Id, every page of it, without their `attributes`.
async fn every_page(
    client: &SalesforceClient,
    version: &str,
    resource: &str,
    soql: &str,
) -> Result<Vec<(String, Map<String, Value>)>, SourceError> {
    let path = format!(
        "/services/data/v{version}/{resource}?q={}",
        url_encode(soql)
    );
    pages_from(client, path).await
}

/// The records of a query's page at `path` and of every page after it.
async fn pages_from(
    client: &SalesforceClient,
    mut path: String,
) -> Result<Vec<(String, Map<String, Value>)>, SourceError> {
    let mut found = Vec::new();
    loop {
        let page = client.call(Method::GET, &path, None).await?;
        found.extend(records_of(&page));
        match page["nextRecordsUrl"].as_str() {
            Some(next) if page["done"] != true => path = next.to_string(),
            _ => break,
        }
    }
    Ok(found)
}

/// The object's records created at or after `since` (CreatedDate, to the second), with these
/// fields.
pub async fn created_since(
    client: &SalesforceClient,
    version: &str,
    object: &str,
    since: i64,
    fields: &[String],
) -> Result<Vec<(String, Map<String, Value>)>, SourceError> {
    let select: Vec<&str> = std::iter::once("Id")
        .chain(fields.iter().map(String::as_str).filter(|f| *f != "Id"))
        .collect();
    let floor = since - since.rem_euclid(1000);
    let iso = crate::time::format_datetime_z(floor);
    let soql = format!(
        "SELECT {} FROM {object} WHERE CreatedDate >= {}",
        select.join(", "),
        iso.replace(".000Z", "Z")
    );
    every_page(client, version, "query", &soql).await
}

/// The partner API's `undelete` takes at most this many Ids per call.
pub const UNDELETE_CHUNK: usize = 200;

/// Brings records back from the recycle bin with their Ids (SOAP `undelete`, one call per
/// [`UNDELETE_CHUNK`]); what their delete took along comes back with them. One outcome per
/// Id, in order.
pub async fn undelete(
    client: &SalesforceClient,
    _version: &str,
    ids: &[String],
) -> Result<Vec<WriteOutcome>, SourceError> {
    let mut outcomes = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(UNDELETE_CHUNK) {
        let content: String = chunk
            .iter()
            .map(|id| format!("<ids>{}</ids>", sfsoap::escape(id)))
            .collect();
        let answer = client.soap("undelete", &content).await?;
        let results: Vec<&sfsoap::Element> = answer.body.children_named("result").collect();
        for (n, id) in chunk.iter().enumerate() {
            outcomes.push(match results.get(n) {
                Some(result) if result.child_text("success") == Some("true") => Ok(result
                    .child("id")
                    .filter(|e| !e.is_nil())
                    .map_or_else(|| id.clone(), |e| e.text.clone())),
                Some(result) => Err(soap_errors(result)),
                None => Err("no result returned for this record".into()),
            });
        }
    }
    Ok(outcomes)
}

/// A failed SOAP result's `errors`, as `CODE: message`.
fn soap_errors(result: &sfsoap::Element) -> String {
    let errors: Vec<String> = result
        .children_named("errors")
        .map(|e| {
            format!(
                "{}: {}",
                e.child_text("statusCode").unwrap_or("ERROR"),
                e.child_text("message").unwrap_or("")
            )
        })
        .collect();
    if errors.is_empty() {
        "no result returned for this record".into()
    } else {
        errors.join("; ")
    }
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
