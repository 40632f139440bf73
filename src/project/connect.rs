//! A task's connector, from its manifest: the registry of source kinds (`TaskConnector`, one
//! variant per `source.type`), login settings from `source`, secrets from the environment
//! variables it names (never from the manifest), backup options from the rest.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::backup::BackupOptions;
use crate::manifest::model::{Auth, BackupTask, Environment, SalesforceSource, Source};
use crate::snapshot::components::Component;
use crate::source::salesforce::auth::{Credentials, Environment as OrgKind, LoginConfig};
use crate::source::salesforce::{
    FetchSettings, MetadataScope, SalesforceClient, SalesforceConnector,
};
use crate::source::{
    Account, BodyStream, Connection, Connector, Coverage, DeployReport, FetchError, FetchWindow,
    FieldInfo, Files, ObjectPlan, RecordWrite, RowSink, SourceError, WriteOutcome,
};

pub use super::Env;

/// How long one HTTP request may take before it counts as a transient failure.
const REQUEST_TIMEOUT_SECS: u64 = 300;

fn secret(env: Env<'_>, task: &BackupTask, name: &str, field: &str) -> Result<String, SourceError> {
    env(name).ok_or_else(|| {
        SourceError::Config(format!(
            "environment variable {name} (named by source.auth.{field} of task {}) is not set; set it to the secret, for example as a GitHub Actions secret",
            task.id
        ))
    })
}

/// The login settings of a Salesforce task, with its secrets read from the environment.
pub fn login_config(
    task: &BackupTask,
    source: &SalesforceSource,
    env: Env<'_>,
) -> Result<LoginConfig, SourceError> {
    let credentials = match &source.auth {
        Auth::Jwt(jwt) => {
            let key = secret(env, task, &jwt.private_key_env, "jwt.privateKeyEnv")?;
            // The variable may hold the PEM itself or the path of a PEM file.
            let pem = if key.trim_start().starts_with("-----BEGIN") {
                key
            } else {
                std::fs::read_to_string(key.trim()).map_err(|e| {
                    SourceError::Config(format!(
                        "{} holds neither a PEM private key nor the path of a readable one ({e})",
                        jwt.private_key_env
                    ))
                })?
            };
            Credentials::Jwt {
                client_id: secret(env, task, &jwt.client_id_env, "jwt.clientIdEnv")?,
                username: jwt.username.clone(),
                private_key_pem: Zeroizing::new(pem),
            }
        }
        Auth::RefreshToken(refresh) => Credentials::RefreshToken {
            client_id: secret(
                env,
                task,
                &refresh.client_id_env,
                "refreshToken.clientIdEnv",
            )?,
            client_secret: match &refresh.client_secret_env {
                Some(name) => Some(Zeroizing::new(secret(
                    env,
                    task,
                    name,
                    "refreshToken.clientSecretEnv",
                )?)),
                None => None,
            },
            refresh_token: Zeroizing::new(secret(
                env,
                task,
                &refresh.refresh_token_env,
                "refreshToken.refreshTokenEnv",
            )?),
        },
        Auth::ClientCredentials(app) => Credentials::ClientCredentials {
            client_id: secret(
                env,
                task,
                &app.client_id_env,
                "clientCredentials.clientIdEnv",
            )?,
            client_secret: Zeroizing::new(secret(
                env,
                task,
                &app.client_secret_env,
                "clientCredentials.clientSecretEnv",
            )?),
        },
    };
    Ok(LoginConfig {
        environment: match source.environment {
            Environment::Production => OrgKind::Production,
            Environment::Sandbox => OrgKind::Sandbox,
        },
        login_url: source.login_url.clone(),
        api_version: source.api_version.clone(),
        credentials,
    })
}

/// The HTTP client every connector uses.
pub fn http_client() -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The connector of a task's source: what the backup and restore engines, status and
/// reconcile talk to, whatever the source's kind.
pub fn connector(task: &BackupTask, env: Env<'_>) -> Result<TaskConnector, SourceError> {
    match &task.source {
        Source::Salesforce(source) => {
            let client = SalesforceClient::new(
                login_config(task, source, env)?,
                source.api_usage_limit_percent,
                http_client()?,
            );
            let settings = FetchSettings {
                metadata: task.metadata.enabled.then(|| MetadataScope {
                    include: task.metadata.types.include.clone(),
                    exclude: task.metadata.types.exclude.clone(),
                }),
                ..FetchSettings::new(&source.api_version)
            };
            Ok(TaskConnector::Salesforce(SalesforceConnector::new(
                client, settings,
            )))
        }
    }
}

/// One connector per kind of source a manifest can name.
pub enum TaskConnector {
    Salesforce(SalesforceConnector),
}

/// Calls the same method on whichever connector this is.
macro_rules! each {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            TaskConnector::Salesforce($c) => $call,
        }
    };
}

impl Connector for TaskConnector {
    fn kind(&self) -> &'static str {
        each!(self, c => c.kind())
    }

    fn api_version(&self) -> &str {
        each!(self, c => c.api_version())
    }

    async fn check_connection(&self) -> Connection {
        each!(self, c => c.check_connection().await)
    }

    async fn prepare(&self) -> Result<(), SourceError> {
        each!(self, c => c.prepare().await)
    }

    async fn account(&self) -> Result<Account, SourceError> {
        each!(self, c => c.account().await)
    }

    async fn discover(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> Result<(Vec<ObjectPlan>, Coverage), SourceError> {
        each!(self, c => c.discover(include, exclude).await)
    }

    fn server_time_bounds(&self) -> Option<(i64, i64)> {
        each!(self, c => c.server_time_bounds())
    }

    async fn fetch<S: RowSink>(
        &self,
        object: &ObjectPlan,
        window: &FetchWindow,
        sink: S,
    ) -> Result<S, FetchError> {
        each!(self, c => c.fetch(object, window, sink).await)
    }

    async fn count(&self, object: &ObjectPlan, at: &str) -> Result<Option<u64>, SourceError> {
        each!(self, c => c.count(object, at).await)
    }

    fn api_calls(&self) -> u64 {
        each!(self, c => c.api_calls())
    }

    async fn read_body(
        &self,
        object: &str,
        id: &str,
        field: &str,
    ) -> Result<BodyStream, SourceError> {
        each!(self, c => c.read_body(object, id, field).await)
    }

    async fn create_with_body(
        &self,
        object: &str,
        fields: &crate::source::Record,
        upload: &crate::source::Upload,
    ) -> Result<WriteOutcome, SourceError> {
        each!(self, c => c.create_with_body(object, fields, upload).await)
    }

    fn budget_share(&self, percent: u8) -> Option<u64> {
        each!(self, c => c.budget_share(percent))
    }

    fn makes(&self, object: &str) -> Vec<String> {
        each!(self, c => c.makes(object))
    }

    fn take_made(&self) -> Vec<(String, String)> {
        each!(self, c => c.take_made())
    }

    fn field_infos(&self, schema: &Value) -> BTreeMap<String, FieldInfo> {
        each!(self, c => c.field_infos(schema))
    }

    async fn describe(&self, object: &str) -> Result<Value, SourceError> {
        each!(self, c => c.describe(object).await)
    }

    async fn read_records(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
        each!(self, c => c.read_records(object, fields, ids).await)
    }

    async fn write_records(
        &self,
        writes: &[RecordWrite],
    ) -> Result<Vec<WriteOutcome>, SourceError> {
        each!(self, c => c.write_records(writes).await)
    }

    fn write_batch(&self) -> usize {
        each!(self, c => c.write_batch())
    }

    async fn read_state(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<crate::source::Held, SourceError> {
        each!(self, c => c.read_state(object, fields, ids).await)
    }

    async fn read_recycled(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, SourceError> {
        each!(self, c => c.read_recycled(object, fields, ids).await)
    }

    async fn undelete(&self, ids: &[String]) -> Result<Vec<WriteOutcome>, SourceError> {
        each!(self, c => c.undelete(ids).await)
    }

    fn undelete_batch(&self) -> usize {
        each!(self, c => c.undelete_batch())
    }

    async fn created_since(
        &self,
        object: &str,
        since: i64,
        fields: &[String],
    ) -> Result<Vec<(String, Map<String, Value>)>, SourceError> {
        each!(self, c => c.created_since(object, since, fields).await)
    }

    async fn read_components(
        &self,
        components: &[Component],
    ) -> Result<BTreeMap<String, Files>, SourceError> {
        each!(self, c => c.read_components(components).await)
    }

    fn source_files(&self, component: &Component) -> Result<Files, String> {
        each!(self, c => c.source_files(component))
    }

    async fn deploy_components(
        &self,
        components: &[Component],
        check_only: bool,
    ) -> Result<DeployReport, SourceError> {
        each!(self, c => c.deploy_components(components, check_only).await)
    }

    fn account_word(&self) -> &'static str {
        each!(self, c => c.account_word())
    }

    fn same_account(&self, a: &str, b: &str) -> bool {
        each!(self, c => c.same_account(a, b))
    }
}

/// What the backup of this task fetches, and how.
pub fn backup_options(task: &BackupTask) -> BackupOptions {
    BackupOptions {
        include: task.objects.include.clone(),
        exclude: task.objects.exclude.clone(),
        full_every_days: task.full_backup.every_days,
        count_check: task.full_backup.count_check,
        sandbox: Some(task.source.environment() == Environment::Sandbox),
        files: task.files.enabled.then(|| crate::backup::FilesOptions {
            objects: task.files.objects.clone(),
            max_size: task
                .files
                .max_size_mb
                .map(|mb| mb.saturating_mul(1_000_000)),
            budget_percent: task.files.budget_percent,
        }),
        ..BackupOptions::new(&task.id)
    }
}
