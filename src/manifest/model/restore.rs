//! The typed Restore manifest, mirroring `schemas/restore.schema.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiVersion;

/// Which records a restore writes: the restore engine's own modes.
pub use crate::restore::Mode as RestoreMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreKind {
    Restore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreManifest {
    pub api_version: ApiVersion,
    pub kind: RestoreKind,
    pub id: String,
    pub task: String,
    pub snapshot: String,
    pub select: Selection,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub mode: RestoreMode,
    #[serde(default)]
    pub with_children: u32,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub reason: String,
}

impl RestoreManifest {
    /// The task whose org the records go into.
    pub fn target_task(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.task)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default, rename = "where")]
    pub where_: BTreeMap<String, Value>,
}

impl Selection {
    /// The `where` conditions as `FIELD=VALUE`, values as text.
    pub fn filters(&self) -> Vec<String> {
        self.where_
            .iter()
            .map(|(field, value)| match value {
                Value::String(text) => format!("{field}={text}"),
                other => format!("{field}={other}"),
            })
            .collect()
    }
}
