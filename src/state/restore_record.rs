//! `state/<task>/restores/<id>.yaml`: that a restore manifest was carried out, when, from which
//! snapshot into which org, and how it ended, in counts. Its presence is what makes `apply`
//! pass the manifest by, and what `plan` shows. No record values: the state branch is readable
//! by everyone who reviews backups.

use serde::{Deserialize, Serialize};

/// How a restore manifest's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreEnd {
    /// Every record planned was written.
    Completed,
    /// Some records failed; the others were written.
    Partial,
    /// Every record planned failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestoreRecord {
    pub id: String,
    /// The manifest's path in the config repository.
    pub manifest: String,
    /// The config repository's commit that held the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub task: String,
    pub target: String,
    pub snapshot: String,
    /// The org written into.
    pub account: String,
    /// The run in the store's restore journal.
    pub run: String,
    pub finished_at: String,
    pub end: RestoreEnd,
    pub records: usize,
    pub undeleted: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    /// The records that failed: object, Id in the snapshot, and the error's code (the
    /// message can quote field values, so it is not kept here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RestoreFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestoreFailure {
    pub object: String,
    pub id: String,
    pub code: String,
}

impl RestoreRecord {
    pub(crate) fn path(task: &str, id: &str) -> String {
        format!("state/{task}/restores/{id}.yaml")
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<RestoreRecord, String> {
        serde_yaml::from_slice(bytes).map_err(|e| e.to_string())
    }

    pub(crate) fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `cairn apply`: this restore manifest was carried out and never runs again.\n{body}"
        )
    }

    pub(crate) fn write(&self) -> crate::gitops::Change {
        crate::gitops::Change::write(RestoreRecord::path(&self.task, &self.id), self.to_yaml())
    }

    /// The end a run with these counts came to.
    pub(crate) fn end_of(written: usize, failed: usize) -> RestoreEnd {
        match (written, failed) {
            (_, 0) => RestoreEnd::Completed,
            (0, _) => RestoreEnd::Failed,
            _ => RestoreEnd::Partial,
        }
    }
}

/// The code of a source's error message: its first word when that is an upper-case code
/// (`DUPLICATE_VALUE: ...`), else a generic one. The rest may quote record values.
pub(crate) fn error_code(message: &str) -> String {
    let first = message
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
        .next()
        .unwrap_or("");
    if first.len() >= 3 && first.contains(|c: char| c.is_ascii_uppercase()) {
        first.to_string()
    } else {
        "ERROR".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_keeps_its_code_and_drops_what_could_quote_values() {
        assert_eq!(
            error_code(
                "DUPLICATE_VALUE: duplicate value found: Email duplicates okafor@example.com"
            ),
            "DUPLICATE_VALUE"
        );
        assert_eq!(error_code("the record is locked by Ana"), "ERROR");
        assert_eq!(error_code(""), "ERROR");
    }

    #[test]
    fn a_run_ends_by_what_was_written_and_what_failed() {
        assert_eq!(RestoreRecord::end_of(3, 0), RestoreEnd::Completed);
        assert_eq!(RestoreRecord::end_of(0, 0), RestoreEnd::Completed);
        assert_eq!(RestoreRecord::end_of(2, 1), RestoreEnd::Partial);
        assert_eq!(RestoreRecord::end_of(0, 4), RestoreEnd::Failed);
    }
}
