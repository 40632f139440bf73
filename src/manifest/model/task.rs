//! The typed BackupTask, mirroring `schemas/task.schema.json`. Field defaults here equal the
//! schema's `default`s; a test holds the two together.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "cairn/v1")]
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    BackupTask,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupTask {
    pub api_version: ApiVersion,
    pub kind: TaskKind,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default = "default_schedule")]
    pub schedule: String,
    pub source: Source,
    #[serde(default)]
    pub objects: Objects,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub files: FileBodies,
    #[serde(default)]
    pub search: Search,
    #[serde(default)]
    pub full_backup: FullBackup,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default = "default_alerts")]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

pub fn default_schedule() -> String {
    "0 3 * * *".to_string()
}

/// Production or Sandbox: fixed for the life of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Sandbox,
}

/// Where a task's data comes from: one kind of source, chosen by `type`. A new kind is a new
/// variant with its own settings (and its connector in `project::connect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    Salesforce(SalesforceSource),
}

impl Source {
    /// The kind, as manifests and snapshots name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Salesforce(_) => "salesforce",
        }
    }

    /// Production or sandbox: fixed for the life of the task.
    pub fn environment(&self) -> Environment {
        match self {
            Source::Salesforce(source) => source.environment,
        }
    }

    /// The account the task may only back up, when the manifest pins one.
    pub fn pinned_account(&self) -> Option<&str> {
        match self {
            Source::Salesforce(source) => source.org_id.as_deref(),
        }
    }
}

/// A Salesforce org and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SalesforceSource {
    pub environment: Environment,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub login_url: Option<String>,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default = "default_api_usage_limit_percent")]
    pub api_usage_limit_percent: u8,
    pub auth: Auth,
}

pub fn default_api_version() -> String {
    "65.0".to_string()
}

pub fn default_api_usage_limit_percent() -> u8 {
    75
}

/// Exactly one authentication method; secrets are environment variable names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Auth {
    Jwt(JwtAuth),
    RefreshToken(RefreshTokenAuth),
    ClientCredentials(ClientCredentialsAuth),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCredentialsAuth {
    pub client_id_env: String,
    pub client_secret_env: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuth {
    pub client_id_env: String,
    pub username: String,
    pub private_key_env: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshTokenAuth {
    pub client_id_env: String,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    pub refresh_token_env: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objects {
    #[serde(default = "match_everything")]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn match_everything() -> Vec<String> {
    vec!["*".to_string()]
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            include: match_everything(),
            exclude: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub types: MetadataTypes,
    #[serde(default)]
    pub commit_source: bool,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            enabled: true,
            types: MetadataTypes::default(),
            commit_source: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataTypes {
    #[serde(default = "match_everything")]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for MetadataTypes {
    fn default() -> Self {
        MetadataTypes {
            include: match_everything(),
            exclude: Vec::new(),
        }
    }
}

/// `files`: which file bodies are backed up, and what of the budget they may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileBodies {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "file_objects")]
    pub objects: Vec<String>,
    #[serde(default)]
    pub max_size_mb: Option<u64>,
    #[serde(default = "default_file_budget")]
    pub budget_percent: u8,
}

fn file_objects() -> Vec<String> {
    ["ContentVersion", "Attachment", "Document"]
        .map(String::from)
        .to_vec()
}

fn default_file_budget() -> u8 {
    50
}

impl Default for FileBodies {
    fn default() -> Self {
        FileBodies {
            enabled: true,
            objects: file_objects(),
            max_size_mb: None,
            budget_percent: default_file_budget(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Search {
    #[serde(default = "yes")]
    pub index: bool,
}

impl Default for Search {
    fn default() -> Self {
        Search { index: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FullBackup {
    #[serde(default = "default_full_every_days")]
    pub every_days: u32,
    #[serde(default = "yes")]
    pub count_check: bool,
}

fn default_full_every_days() -> u32 {
    7
}

impl Default for FullBackup {
    fn default() -> Self {
        FullBackup {
            every_days: default_full_every_days(),
            count_check: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Which snapshots to keep. Missing rules inside a given `retention` are off (0); a task with no
/// `retention` at all gets the default policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    #[serde(default)]
    pub keep_last: u32,
    #[serde(default)]
    pub keep_hourly: u32,
    #[serde(default)]
    pub keep_daily: u32,
    #[serde(default)]
    pub keep_weekly: u32,
    #[serde(default)]
    pub keep_monthly: u32,
    #[serde(default)]
    pub keep_yearly: u32,
    #[serde(default = "default_keep_at_least_good")]
    pub keep_at_least_good: u32,
    #[serde(default)]
    pub auto_archived_days: Option<u32>,
}

fn default_keep_at_least_good() -> u32 {
    3
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 0,
            keep_hourly: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            keep_yearly: 0,
            keep_at_least_good: default_keep_at_least_good(),
            auto_archived_days: None,
        }
    }
}

impl Retention {
    /// Whether any rule keeps a snapshot at all.
    pub fn keeps_anything(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        .iter()
        .any(|&n| n > 0)
    }
}

/// Data-loss thresholds for one object (or a glob of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alert {
    #[serde(default = "every_object")]
    pub object: String,
    #[serde(default)]
    pub deleted_percent: Option<f64>,
    #[serde(default)]
    pub deleted_count: Option<u64>,
    #[serde(default)]
    pub modified_percent: Option<f64>,
    #[serde(default)]
    pub modified_count: Option<u64>,
    /// Metadata components instead of records: a glob on `Type:FullName`.
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub components_added: Option<u64>,
    #[serde(default)]
    pub components_changed: Option<u64>,
    #[serde(default)]
    pub components_deleted: Option<u64>,
}

fn every_object() -> String {
    "*".to_string()
}

pub fn default_alerts() -> Vec<Alert> {
    vec![Alert {
        object: every_object(),
        deleted_percent: Some(5.0),
        deleted_count: None,
        modified_percent: None,
        modified_count: None,
        metadata: None,
        components_added: None,
        components_changed: None,
        components_deleted: None,
    }]
}

impl Alert {
    pub fn has_threshold(&self) -> bool {
        self.deleted_percent.is_some()
            || self.deleted_count.is_some()
            || self.modified_percent.is_some()
            || self.modified_count.is_some()
            || self.components_added.is_some()
            || self.components_changed.is_some()
            || self.components_deleted.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Success,
    Partial,
    Failure,
    Warning,
    Disconnected,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    pub channel: Channel,
    #[serde(default = "default_events")]
    pub events: Vec<Event>,
    #[serde(default)]
    pub template: Option<String>,
}

pub fn default_events() -> Vec<Event> {
    vec![
        Event::Partial,
        Event::Failure,
        Event::Warning,
        Event::Disconnected,
        Event::Archived,
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Channel {
    Slack(SlackChannel),
    Webhook(WebhookChannel),
    Email(EmailChannel),
    GithubSummary(GithubSummaryChannel),
    File(FileChannel),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackChannel {
    pub webhook_url_env: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookChannel {
    pub url_env: String,
    #[serde(default)]
    pub bearer_token_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailChannel {
    pub to: Vec<String>,
    pub from: String,
    pub smtp: Smtp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "yes")]
    pub starttls: bool,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSummaryChannel {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileChannel {
    pub path: String,
}
