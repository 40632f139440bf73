//! The typed Repository (cairn.yaml), mirroring `schemas/repository.schema.json`.

use serde::{Deserialize, Serialize};

use super::task::{
    Alert, ApiVersion, FileBodies, Metadata, Notification, Retention, Search, default_alerts,
    default_schedule,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepositoryKind {
    Repository,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    pub api_version: ApiVersion,
    pub kind: RepositoryKind,
    pub store: Store,
    #[serde(default)]
    pub encryption: Encryption,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub defaults: Defaults,
}

/// Exactly one storage backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Store {
    Local(LocalStore),
    Git(GitStore),
    S3(S3Store),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalStore {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitStore {
    #[serde(rename = "ref", default = "default_store_ref")]
    pub reference: String,
}

fn default_store_ref() -> String {
    "refs/cairn/store".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Store {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_access_key_id_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_access_key_env")]
    pub secret_access_key_env: String,
}

fn default_access_key_id_env() -> String {
    "AWS_ACCESS_KEY_ID".to_string()
}

fn default_secret_access_key_env() -> String {
    "AWS_SECRET_ACCESS_KEY".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Encryption {
    #[serde(default = "default_key_files")]
    pub key_files: Vec<String>,
    #[serde(default = "default_passphrase_env")]
    pub passphrase_env: String,
    #[serde(default = "default_key_env")]
    pub key_env: String,
}

fn default_key_files() -> Vec<String> {
    vec!["keys/".to_string()]
}

fn default_passphrase_env() -> String {
    "CAIRN_PASSPHRASE".to_string()
}

fn default_key_env() -> String {
    "CAIRN_KEY".to_string()
}

impl Default for Encryption {
    fn default() -> Self {
        Encryption {
            key_files: default_key_files(),
            passphrase_env: default_passphrase_env(),
            key_env: default_key_env(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    #[serde(default = "default_state_branch")]
    pub branch: String,
    #[serde(default = "default_remote")]
    pub remote: String,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(default)]
    pub record_ids: bool,
}

fn default_state_branch() -> String {
    "cairn-state".to_string()
}

fn default_remote() -> String {
    "origin".to_string()
}

fn yes() -> bool {
    true
}

impl Default for State {
    fn default() -> Self {
        State {
            branch: default_state_branch(),
            remote: default_remote(),
            push: true,
            record_ids: false,
        }
    }
}

/// What every task gets unless its manifest says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_schedule")]
    pub schedule: String,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default = "default_alerts")]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub notifications: Vec<Notification>,
    #[serde(default)]
    pub search: Search,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub files: FileBodies,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            schedule: default_schedule(),
            retention: Retention::default(),
            alerts: default_alerts(),
            notifications: Vec::new(),
            search: Search::default(),
            metadata: Metadata::default(),
            files: FileBodies::default(),
        }
    }
}
