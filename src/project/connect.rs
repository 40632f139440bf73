//! A task's connector, from its manifest: login settings from `source`, secrets from the
//! environment variables it names (never from the manifest), backup options from the rest.

use zeroize::Zeroizing;

use crate::backup::BackupOptions;
use crate::manifest::model::{Auth, BackupTask, Environment};
use crate::source::SourceError;
use crate::source::salesforce::auth::{Credentials, Environment as OrgKind, LoginConfig};
use crate::source::salesforce::{FetchSettings, SalesforceClient, SalesforceConnector};

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

/// The login settings of a task, with its secrets read from the environment.
pub fn login_config(task: &BackupTask, env: Env<'_>) -> Result<LoginConfig, SourceError> {
    let source = &task.source;
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

/// A client for the task's org, within its API budget.
pub fn client(task: &BackupTask, env: Env<'_>) -> Result<SalesforceClient, SourceError> {
    Ok(SalesforceClient::new(
        login_config(task, env)?,
        task.source.api_usage_limit_percent,
        http_client()?,
    ))
}

/// The task's org as the backup engine's connector.
pub fn connector(task: &BackupTask, env: Env<'_>) -> Result<SalesforceConnector, SourceError> {
    Ok(SalesforceConnector::new(
        client(task, env)?,
        FetchSettings::new(&task.source.api_version),
    ))
}

/// What the backup of this task fetches, and how.
pub fn backup_options(task: &BackupTask) -> BackupOptions {
    BackupOptions {
        include: task.objects.include.clone(),
        exclude: task.objects.exclude.clone(),
        full_every_days: task.full_backup.every_days,
        count_check: task.full_backup.count_check,
        sandbox: Some(task.source.environment == Environment::Sandbox),
        ..BackupOptions::new(&task.id)
    }
}
