//! Salesforce as a [`Connector`]: the engine's questions answered with the REST and Bulk APIs.

use reqwest::Method;

use super::client::SalesforceClient;
use super::discovery::discover;
use super::fetch::{FetchSettings, fetch, full_soql, org_count, select, url_encode};
use crate::source::{
    Account, Connection, Connector, Coverage, FetchError, FetchWindow, ObjectPlan, RowSink,
    SourceError,
};

pub struct SalesforceConnector {
    client: SalesforceClient,
    settings: FetchSettings,
}

impl SalesforceConnector {
    pub fn new(client: SalesforceClient, settings: FetchSettings) -> SalesforceConnector {
        SalesforceConnector { client, settings }
    }

    pub fn client(&self) -> &SalesforceClient {
        &self.client
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
        let org = self
            .client
            .call(
                Method::GET,
                &format!(
                    "/services/data/v{}/query?q={}",
                    self.settings.api_version,
                    url_encode("SELECT Id, IsSandbox FROM Organization")
                ),
                None,
            )
            .await?;
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
        discover(&self.client, &self.settings.api_version, include, exclude).await
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
        let soql = match window {
            FetchWindow::Full => full_soql(object),
            FetchWindow::Changes { from_ms, to, .. } => format!(
                "{} WHERE SystemModstamp > {} AND SystemModstamp <= {to}",
                select(object),
                crate::time::format_datetime_z(*from_ms)
            ),
        };
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
        org_count(&self.client, &self.settings, object, at).await
    }

    fn api_calls(&self) -> u64 {
        self.client.budget().calls
    }
}
