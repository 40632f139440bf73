//! `cairn schema`: print an embedded JSON Schema, for editors and tools that cannot reach the
//! repository's schemas/ directory.

use crate::manifest::schema::{REPOSITORY_SCHEMA, RESTORE_SCHEMA, TASK_SCHEMA};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// The BackupTask schema (tasks/*.yaml).
    Task,
    /// The Repository schema (cairn.yaml).
    Repository,
    /// The Restore schema (restores/*.yaml).
    Restore,
    /// All of them, as the Markdown manifest reference the README embeds.
    Reference,
}

pub fn schema(kind: SchemaKind) -> String {
    match kind {
        SchemaKind::Task => TASK_SCHEMA.to_string(),
        SchemaKind::Repository => REPOSITORY_SCHEMA.to_string(),
        SchemaKind::Restore => RESTORE_SCHEMA.to_string(),
        SchemaKind::Reference => crate::manifest::reference::reference(),
    }
}
