//! Links between files and records (ContentDocumentLink), read in full. With "Query All Files"
//! the org lists them without a filter (one call per 2,000 links), and a backup after the
//! first asks only for the links changed since the last (the connector's window; a removed
//! link leaves no trace, so removals are found by the count check, which then reads them all
//! here). Without it, only under a filter on a document's or a record's Id, so every backup
//! lists the documents the running user can see and asks for their links a batch of Ids at a
//! time: one call per `DOCUMENTS_PER_QUERY` documents, plus one per 2,000 documents listed.

use reqwest::Method;
use serde_json::Value;

use super::client::SalesforceClient;
use super::fetch::{FetchSettings, query_pages, select, url_encode};
use super::restore::is_id;
use crate::source::{FetchError, ObjectPlan, RowSink, SourceError};

/// The object whose records are listed by document.
pub const LINK_OBJECT: &str = "ContentDocumentLink";

/// Document Ids per links query: 200 Ids keep the query's URL near 6 KB, well inside the
/// 16 KB Salesforce takes.
const DOCUMENTS_PER_QUERY: usize = 200;

/// Every link of every document the running user can see, as rows into `into`.
pub(super) async fn fetch_links<S: RowSink>(
    client: &SalesforceClient,
    settings: &FetchSettings,
    plan: &ObjectPlan,
    mut into: S,
) -> Result<S, FetchError> {
    // With "Query All Files" the org lists every link without a filter: one call per page.
    if plan.narrowed.is_none() && plan.scope.is_some() {
        return query_pages(client, settings, plan, &select(plan), into).await;
    }
    let documents = document_ids(client, settings).await?;
    for batch in documents.chunks(DOCUMENTS_PER_QUERY) {
        let ids: Vec<String> = batch.iter().map(|id| format!("'{id}'")).collect();
        let soql = format!(
            "{} WHERE ContentDocumentId IN ({})",
            select(plan),
            ids.join(", ")
        );
        into = query_pages(client, settings, plan, &soql, into).await?;
    }
    Ok(into)
}

/// The Ids of every live document the running user can see, in the org's order.
async fn document_ids(
    client: &SalesforceClient,
    settings: &FetchSettings,
) -> Result<Vec<String>, SourceError> {
    let mut path = format!(
        "/services/data/v{}/query?q={}",
        settings.api_version,
        url_encode("SELECT Id FROM ContentDocument")
    );
    let mut ids = Vec::new();
    loop {
        let page = client.call(Method::GET, &path, None).await?;
        for record in page["records"].as_array().into_iter().flatten() {
            match record["Id"].as_str() {
                // An Id goes into the next query's text: anything but an Id would change its
                // meaning.
                Some(id) if is_id(id) => ids.push(id.to_string()),
                _ => {
                    return Err(SourceError::Network(format!(
                        "the org listed a document without a usable Id: {record}"
                    )));
                }
            }
        }
        match page["nextRecordsUrl"].as_str() {
            Some(next) if page["done"] != Value::Bool(true) => path = next.to_string(),
            _ => return Ok(ids),
        }
    }
}
