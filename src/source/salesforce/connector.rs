//! Salesforce as a [`Connector`]: the engine's questions answered with the REST and Bulk APIs.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value};

use super::client::SalesforceClient;
use super::discovery::discover;
use super::fetch::{FetchSettings, fetch, full_soql, org_count, query_pages, select, url_encode};
use super::links::{LINK_OBJECT, fetch_links};
use super::restore::is_id;
use super::{metadata, restore};
use crate::snapshot::components::Component;
use crate::source::{
    Account, BodyStream, Connection, Connector, Coverage, DeployReport, FetchError, FetchWindow,
    FieldInfo, Files, METADATA_OBJECT, ObjectPlan, RecordWrite, RowSink, SourceError, Upload,
    WriteOutcome,
};

pub struct SalesforceConnector {
    client: SalesforceClient,
    settings: FetchSettings,
    /// Documents a restore made anew for versions whose document was gone.
    documents: std::sync::Mutex<MadeDocuments>,
}

/// Old document Id -> the new one made for its versions; and the pairs not yet handed to the
/// restore engine.
#[derive(Default)]
struct MadeDocuments {
    made: BTreeMap<String, String>,
    unreported: Vec<(String, String)>,
}

impl SalesforceConnector {
    pub fn new(client: SalesforceClient, settings: FetchSettings) -> SalesforceConnector {
        SalesforceConnector {
            client,
            settings,
            documents: Default::default(),
        }
    }

    fn made_documents(&self) -> std::sync::MutexGuard<'_, MadeDocuments> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn client(&self) -> &SalesforceClient {
        &self.client
    }
}

impl SalesforceConnector {
    /// The first page of a query's answer.
    async fn query(&self, soql: &str) -> Result<Value, SourceError> {
        let path = format!(
            "/services/data/v{}/query?q={}",
            self.settings.api_version,
            url_encode(soql)
        );
        self.client.call(Method::GET, &path, None).await
    }

    /// A version comes back as a new version of its document while the org has the document
    /// (or the one this restore made in its place), and as a new document (published on its
    /// record again) once the document is gone; a version names one or the other, never both.
    /// The gone document's Id when a new one is to be made.
    async fn place_version(
        &self,
        fields: &mut Map<String, Value>,
    ) -> Result<Option<String>, SourceError> {
        let Some(document) = fields
            .get("ContentDocumentId")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let made = self.made_documents().made.get(&document).cloned();
        if let Some(made) = made {
            fields.insert("ContentDocumentId".into(), Value::String(made));
            fields.remove("FirstPublishLocationId");
            return Ok(None);
        }
        let found = match is_id(&document) {
            true => {
                let soql = format!("SELECT Id FROM ContentDocument WHERE Id = '{document}'");
                self.query(&soql).await?["totalSize"].as_u64().unwrap_or(0) > 0
            }
            false => false,
        };
        if found {
            fields.remove("FirstPublishLocationId");
            Ok(None)
        } else {
            fields.remove("ContentDocumentId");
            Ok(Some(document))
        }
    }

    /// Notes the document the org made for a version created in place of `gone`'s.
    async fn note_made_document(&self, gone: String, version: &str) {
        // Without the answer the version still stands; links to the gone document then fail
        // with the org's own error, each reported.
        if !is_id(version) {
            return;
        }
        let soql = format!("SELECT ContentDocumentId FROM ContentVersion WHERE Id = '{version}'");
        let Ok(found) = self.query(&soql).await else {
            return;
        };
        if let Some(new) = found["records"][0]["ContentDocumentId"].as_str() {
            let mut documents = self.made_documents();
            documents.made.insert(gone.clone(), new.to_string());
            documents.unreported.push((gone, new.to_string()));
        }
    }

    /// A link the org already has stands for the one a restore would create again: its Id.
    async fn existing_link(&self, fields: &Map<String, Value>) -> Option<String> {
        let quoted = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .filter(|id| is_id(id))
        };
        let soql = format!(
            "SELECT Id FROM {LINK_OBJECT} WHERE ContentDocumentId = '{}' AND LinkedEntityId = '{}'",
            quoted("ContentDocumentId")?,
            quoted("LinkedEntityId")?
        );
        let found = self.query(&soql).await.ok()?;
        found["records"][0]["Id"].as_str().map(str::to_string)
    }
}

/// The coverage entry for files the running user cannot see.
pub const FILES_NOT_VISIBLE: &str = "not visible";

/// Why some files may be out of the running user's sight, or None when it sees them all.
/// Salesforce leaves files out of queries without an error when the user lacks "Query All
/// Files"; the same permission lifts the filter ContentDocumentLink queries otherwise need,
/// so one query of links without a filter tells (one call).
async fn files_out_of_sight(
    connector: &SalesforceConnector,
) -> Result<Option<String>, SourceError> {
    match connector
        .query(&format!("SELECT Id FROM {LINK_OBJECT} LIMIT 1"))
        .await
    {
        Ok(_) => Ok(None),
        Err(SourceError::Api { status, message, .. })
            if status == 400 && message.contains("requires a filter") =>
        {
            Ok(Some(
                "the backup user lacks the Query All Files permission, so files it neither owns nor sees through a record (private files, libraries it is not a member of) are not listed to it and are not in the backup; give it Query All Files (which needs View All Data) to back up every file".into(),
            ))
        }
        Err(SourceError::Api {
            status, message, ..
        }) if (400..500).contains(&status) && status != 401 => Ok(Some(format!(
            "whether the backup user sees every file could not be told ({message}); without the Query All Files permission, files it cannot see are not in the backup"
        ))),
        Err(e) => Err(e),
    }
}

impl Connector for SalesforceConnector {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn api_version(&self) -> &str {
        &self.settings.api_version
    }

    async fn check_connection(&self) -> Connection {
        self.client.check_connection().await
    }

    async fn prepare(&self) -> Result<(), SourceError> {
        self.client.refresh_budget().await.map(|_| ())
    }

    async fn account(&self) -> Result<Account, SourceError> {
        let org = self.query("SELECT Id, IsSandbox FROM Organization").await?;
        Ok(Account {
            id: org["records"][0]["Id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            sandbox: org["records"][0]["IsSandbox"].as_bool(),
        })
    }

    async fn discover(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> Result<(Vec<ObjectPlan>, Coverage), SourceError> {
        let version = &self.settings.api_version;
        let (mut plans, mut coverage) = discover(&self.client, version, include, exclude).await?;
        if let Some(scope) = &self.settings.metadata
            && let Some(plan) = metadata::plan(&self.client, version, scope, &mut coverage).await?
        {
            plans.push(plan);
        }
        let is_file_object =
            |name: &str| matches!(name, "ContentVersion" | "ContentDocument" | LINK_OBJECT);
        if plans.iter().any(|p| is_file_object(&p.name)) {
            // What the file objects' rows cover is recorded: a backup after the permission is
            // granted fetches them in full (files come into sight whatever their last change),
            // and one after it is taken away keeps them as they were.
            let out_of_sight = match files_out_of_sight(self).await {
                // Nothing more is fetched this run: what the rows would cover is moot.
                Err(
                    SourceError::BudgetExhausted { .. } | SourceError::DailyLimitReached { .. },
                ) => return Ok((plans, coverage)),
                other => other?,
            };
            for plan in plans.iter_mut().filter(|p| is_file_object(&p.name)) {
                plan.scope = Some(match out_of_sight {
                    None => "every file".into(),
                    Some(_) => "the files the backup user can see".into(),
                });
                plan.narrowed = out_of_sight.as_ref().map(|_| {
                    "the backup user lacks Query All Files, so the org lists only the files it can see".into()
                });
                // Without the permission links are listed only under a document's Id: no
                // window of changes can be asked for, so each backup reads them all.
                if plan.name == LINK_OBJECT && out_of_sight.is_some() {
                    plan.incremental = false;
                    plan.always_full = Some(
                        "without Query All Files, Salesforce lists links only by document, with no trace of a removed one".into(),
                    );
                }
            }
            if let Some(why) = out_of_sight {
                coverage
                    .files_left_out
                    .push((FILES_NOT_VISIBLE.to_string(), why));
            }
        }
        Ok((plans, coverage))
    }

    fn server_time_bounds(&self) -> Option<(i64, i64)> {
        self.client.server_time_bounds()
    }

    async fn fetch<S: RowSink>(
        &self,
        object: &ObjectPlan,
        window: &FetchWindow,
        sink: S,
    ) -> Result<S, FetchError> {
        if object.name == METADATA_OBJECT {
            return metadata::fetch(
                &self.client,
                &self.settings.api_version,
                object,
                window,
                sink,
            )
            .await;
        }
        let soql = match window {
            FetchWindow::Full => full_soql(object),
            FetchWindow::Changes { from_ms, to, .. } => format!(
                "{} WHERE SystemModstamp > {} AND SystemModstamp <= {to}",
                select(object),
                crate::time::format_datetime_z(*from_ms)
            ),
        };
        if object.name == LINK_OBJECT {
            return match window {
                FetchWindow::Full => fetch_links(&self.client, &self.settings, object, sink).await,
                // A window is planned only when the org lists links without a filter.
                FetchWindow::Changes { .. } => {
                    query_pages(&self.client, &self.settings, object, &soql, sink).await
                }
            };
        }
        fetch(
            &self.client,
            &self.settings,
            object,
            &soql,
            window.since_ms(),
            sink,
        )
        .await
    }

    async fn count(&self, object: &ObjectPlan, at: &str) -> Result<Option<u64>, SourceError> {
        // Every metadata fetch lists all components: its deletions need no count to be found.
        // Neither do links read whole by document (and not countable without a filter).
        if object.name == METADATA_OBJECT
            || (object.name == LINK_OBJECT && object.narrowed.is_some())
        {
            return Ok(None);
        }
        org_count(&self.client, &self.settings, object, at).await
    }

    fn api_calls(&self) -> u64 {
        self.client.budget().calls
    }

    async fn read_body(
        &self,
        object: &str,
        id: &str,
        field: &str,
    ) -> Result<BodyStream, SourceError> {
        // sObject Blob Retrieve: the raw bytes, one call per body.
        let path = format!(
            "/services/data/v{}/sobjects/{}/{}/{}",
            self.settings.api_version,
            url_encode(object),
            url_encode(id),
            url_encode(field)
        );
        let response = self.client.request(Method::GET, &path, None, &[]).await?;
        let pieces = futures_util::stream::unfold(Some(response), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(piece)) => Some((Ok(piece), Some(response))),
                Ok(None) => None,
                Err(e) => Some((
                    Err(SourceError::Network(format!(
                        "the download broke off: {}",
                        crate::text::error_chain(&e)
                    ))),
                    None,
                )),
            }
        });
        Ok(Box::pin(pieces))
    }

    async fn create_with_body(
        &self,
        object: &str,
        fields: &Map<String, Value>,
        upload: &Upload,
    ) -> Result<WriteOutcome, SourceError> {
        let mut fields = fields.clone();
        let gone_document = match object {
            "ContentVersion" => self.place_version(&mut fields).await?,
            _ => None,
        };
        let path = format!(
            "/services/data/v{}/sobjects/{}/",
            self.settings.api_version,
            url_encode(object)
        );
        match self
            .client
            .create_with_body(object, &path, &Value::Object(fields), upload)
            .await
        {
            Ok(answer) => Ok(match answer["id"].as_str() {
                Some(id) => {
                    if let Some(gone) = gone_document {
                        self.note_made_document(gone, id).await;
                    }
                    Ok(id.to_string())
                }
                None => Err(format!("the org answered without an Id: {answer}")),
            }),
            // The org refused this record (a 4xx with its error): the others go on.
            Err(SourceError::Api {
                status,
                code,
                message,
            }) if (400..500).contains(&status) && status != 401 => {
                Ok(Err(format!("{code}: {message}")))
            }
            Err(e) => Err(e),
        }
    }

    fn budget_share(&self, percent: u8) -> Option<u64> {
        let budget = self.client.budget();
        (budget.max > 0).then(|| budget.ceiling() * u64::from(percent) / 100)
    }

    fn field_infos(&self, schema: &Value) -> BTreeMap<String, FieldInfo> {
        restore::field_infos(schema)
    }

    async fn describe(&self, object: &str) -> Result<Value, SourceError> {
        let path = format!(
            "/services/data/v{}/sobjects/{object}/describe",
            self.settings.api_version
        );
        self.client.call(Method::GET, &path, None).await
    }

    async fn read_records(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
        restore::current(
            &self.client,
            &self.settings.api_version,
            object,
            fields,
            ids,
        )
        .await
    }

    async fn write_records(
        &self,
        writes: &[RecordWrite],
    ) -> Result<Vec<WriteOutcome>, SourceError> {
        let mut outcomes = restore::write(&self.client, &self.settings.api_version, writes).await?;
        for (write, outcome) in writes.iter().zip(outcomes.iter_mut()) {
            if write.object == LINK_OBJECT
                && write.id.is_none()
                && outcome
                    .as_ref()
                    .is_err_and(|why| why.contains("DUPLICATE_VALUE"))
                && let Some(id) = self.existing_link(&write.fields).await
            {
                *outcome = Ok(id);
            }
        }
        Ok(outcomes)
    }

    fn makes(&self, object: &str) -> Vec<String> {
        match object {
            "ContentVersion" => vec!["ContentDocument".to_string()],
            _ => Vec::new(),
        }
    }

    fn take_made(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.made_documents().unreported)
    }

    fn write_batch(&self) -> usize {
        restore::CHUNK
    }

    async fn read_state(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<crate::source::Held, SourceError> {
        restore::state(
            &self.client,
            &self.settings.api_version,
            object,
            fields,
            ids,
        )
        .await
    }

    async fn read_recycled(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
        Ok(self.read_state(object, fields, ids).await?.recycled)
    }

    async fn undelete(&self, ids: &[String]) -> Result<Vec<WriteOutcome>, SourceError> {
        restore::undelete(&self.client, &self.settings.api_version, ids).await
    }

    fn undelete_batch(&self) -> usize {
        restore::UNDELETE_CHUNK
    }

    async fn read_components(
        &self,
        components: &[Component],
    ) -> Result<BTreeMap<String, Files>, SourceError> {
        metadata::current(&self.client, &self.settings.api_version, components).await
    }

    fn source_files(&self, component: &Component) -> Result<Files, String> {
        metadata::source_format::source_files(component)
    }

    async fn deploy_components(
        &self,
        components: &[Component],
        check_only: bool,
    ) -> Result<DeployReport, SourceError> {
        metadata::deploy_back(
            &self.client,
            &self.settings.api_version,
            components,
            check_only,
        )
        .await
    }

    async fn created_since(
        &self,
        object: &str,
        since: i64,
        fields: &[String],
    ) -> Result<Vec<(String, Map<String, Value>)>, SourceError> {
        restore::created_since(
            &self.client,
            &self.settings.api_version,
            object,
            since,
            fields,
        )
        .await
    }

    fn account_word(&self) -> &'static str {
        "org"
    }

    /// Org Ids compare by their first 15 characters: the 18-character form adds a checksum.
    fn same_account(&self, a: &str, b: &str) -> bool {
        a.get(..15).is_some_and(|a| Some(a) == b.get(..15))
    }
}
