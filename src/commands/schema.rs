//! `cairn schema`: print an embedded JSON Schema, for editors and tools that cannot reach the
//! repository's schemas/ directory.

use crate::manifest::schema::{REPOSITORY_SCHEMA, TASK_SCHEMA};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// The BackupTask schema (tasks/*.yaml).
    Task,
    /// The Repository schema (cairn.yaml).
    Repository,
}

pub fn schema(kind: SchemaKind) -> &'static str {
    match kind {
        SchemaKind::Task => TASK_SCHEMA,
        SchemaKind::Repository => REPOSITORY_SCHEMA,
    }
}
