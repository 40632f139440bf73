//! Driving the simulated org from tests: its admin API, a client logged in with its refresh
//! token, and a snapshot's records read back from the store.

use std::collections::BTreeMap;

use cairn::snapshot::{ObjectReader, SnapshotManifest};
use cairn::source::salesforce::Environment;
use cairn::source::salesforce::{Credentials, LoginConfig, SalesforceClient};
use cairn::store::Store;
use cairn_sim::server::Simulator;
use reqwest::Method;
use serde_json::Value;
use zeroize::Zeroizing;

/// Calls the simulator's `/__sim/` API, which must succeed.
pub async fn admin(sim: &Simulator, method: Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}/__sim/{path}", sim.url()))
        .json(&body)
        .send()
        .await
        .expect("admin");
    assert!(
        response.status().is_success(),
        "admin {path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// A client of the simulated org, through its refresh token, allowed 90% of the API budget.
pub fn client(sim: &Simulator) -> SalesforceClient {
    let login = LoginConfig {
        environment: Environment::Production,
        login_url: Some(sim.url()),
        api_version: "62.0".into(),
        credentials: Credentials::RefreshToken {
            client_id: sim.credentials.client_id.clone(),
            client_secret: None,
            refresh_token: Zeroizing::new(sim.credentials.refresh_token.clone()),
        },
    };
    SalesforceClient::new(login, 90, reqwest::Client::new())
}

/// The simulator as the backup engine's connector (records only).
pub fn connector(sim: &Simulator) -> cairn::source::salesforce::SalesforceConnector {
    cairn::source::salesforce::SalesforceConnector::new(
        client(sim),
        cairn::source::salesforce::FetchSettings::new("62.0"),
    )
}

/// The simulator as the connector of `task`: its records, and its metadata as it chooses.
pub fn task_connector(
    sim: &Simulator,
    task: &cairn::manifest::model::BackupTask,
) -> cairn::source::salesforce::SalesforceConnector {
    let metadata = &task.metadata;
    cairn::source::salesforce::SalesforceConnector::new(
        client(sim),
        cairn::source::salesforce::FetchSettings {
            metadata: metadata
                .enabled
                .then(|| cairn::source::salesforce::MetadataScope {
                    include: metadata.types.include.clone(),
                    exclude: metadata.types.exclude.clone(),
                }),
            ..cairn::source::salesforce::FetchSettings::new("62.0")
        },
    )
}

/// Object -> Id -> canonical record bytes.
pub type Records = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Every record of a snapshot. A file body's row is kept without its chunks: their ids are
/// keyed to the store, and the cuts to its key, so two stores hold the same file as different
/// chunks (its size and MD5 say it is the same).
pub fn records(store: &Store, manifest: &SnapshotManifest) -> Records {
    try_records(store, manifest).expect("the snapshot reads back")
}

/// Every record of a snapshot, or why it does not read back whole: a held file body is read
/// back to its end too (its chunks checked against its size and MD5).
pub fn try_records(store: &Store, manifest: &SnapshotManifest) -> Result<Records, String> {
    let mut out = Records::new();
    for (object, entry) in &manifest.objects {
        let body_object = cairn::snapshot::files::is_body_object(object);
        let mut rows = BTreeMap::new();
        for record in ObjectReader::new(store, object, entry) {
            let (id, bytes) = record.map_err(|e| e.to_string())?;
            if !body_object {
                rows.insert(id, bytes);
                continue;
            }
            let mut body = cairn::snapshot::files::FileBody::parse(&bytes)?;
            if body.is_held() {
                for chunk in cairn::snapshot::files::BodyReader::new(store, &body) {
                    chunk.map_err(|e| e.to_string())?;
                }
            }
            body.chunks.clear();
            rows.insert(id, body.encode());
        }
        out.insert(object.clone(), rows);
    }
    Ok(out)
}
