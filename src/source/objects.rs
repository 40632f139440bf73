//! What a source has to back up, as discovery finds it: objects with their fields, and the
//! coverage report of what was chosen, skipped and left out.

use serde::Serialize;
use serde_json::Value;

/// A field as backups see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    /// The describe `type`: string, boolean, int, double, currency, datetime, ...
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectPlan {
    pub name: String,
    /// Queryable fields in describe order; compound fields are left out (their components are
    /// fields of their own).
    pub fields: Vec<Field>,
    /// Whether `SystemModstamp` exists: without it every backup of the object is a full one.
    pub incremental: bool,
    /// Why every backup of it is a full one, when the source says more than "no
    /// SystemModstamp" (links listed whole by document).
    pub always_full: Option<String>,
    /// Whether a removed record leaves no trace a window's query can see (no tombstone): an
    /// incremental then finds removals only through the count check, so without that check
    /// every backup of the object is a full one.
    pub removals_unseen: bool,
    /// Why the source may list only some of its records (the user's sight is narrowed): a
    /// full pass then cannot tell a record out of sight from a deleted one.
    pub narrowed: Option<String>,
    /// The normalised describe, for the schema document.
    pub schema: Value,
    /// What of the object the rows cover beyond its fields (the metadata types chosen): when
    /// it changes, the next backup of the object is a full one.
    pub scope: Option<String>,
    /// Its fields that hold file bodies (read one per call, not with the records).
    pub bodies: Vec<BodyField>,
}

/// A field holding a file body, and the record's fields that describe the body, so a backup
/// can tell a body unchanged without downloading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BodyField {
    pub field: String,
    /// The body's size in bytes.
    pub size_field: Option<String>,
    /// The body's MD5, lowercase hex.
    pub checksum_field: Option<String>,
    /// The file's name.
    pub name_field: Option<String>,
    /// The record the file belongs to.
    pub parent_field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Coverage {
    pub backed_up: Vec<String>,
    /// (object, why it is not backed up)
    pub skipped: Vec<(String, String)>,
    /// (`Object.Field`, why its values are not in the backup) for fields of backed-up objects.
    pub fields_left_out: Vec<(String, String)>,
    /// Include patterns that match no object of the org (a typo, or an object that is gone),
    /// each with the org's object name it most likely meant.
    pub unmatched: Vec<(String, Option<String>)>,
    /// The org's objects that include/exclude leave out: with `backed_up` and `skipped`, every
    /// object of the org, so a plan can tell what a changed include would add or drop.
    pub excluded: Vec<String>,
    /// The metadata types backed up (empty: no metadata backup).
    pub metadata_types: Vec<String>,
    /// `metadata.types.include` patterns that match no type of the org, with a likely meaning.
    pub metadata_unmatched: Vec<(String, Option<String>)>,
    /// (`Type:FullName`, why its files are not in the backup) for components the source listed
    /// but could not give.
    pub components_left_out: Vec<(String, String)>,
    /// (`Object Id (name)`, why its body is not in the backup) for file bodies left out.
    pub files_left_out: Vec<(String, String)>,
}

impl Coverage {
    /// One line per include pattern that matched nothing, for the run's output and reports.
    pub fn warnings(&self) -> Vec<String> {
        let unmatched = |setting: &str, what: &str, list: &[(String, Option<String>)]| {
            list.iter()
                .map(|(pattern, close)| match close {
                    Some(close) => format!(
                        "{setting} `{pattern}` matches no {what} of the org; did you mean `{close}`?"
                    ),
                    None => format!("{setting} `{pattern}` matches no {what} of the org"),
                })
                .collect::<Vec<_>>()
        };
        let mut warnings = unmatched("objects.include", "object", &self.unmatched);
        warnings.extend(unmatched(
            "metadata.types.include",
            "metadata type",
            &self.metadata_unmatched,
        ));
        warnings.extend(self.components_left_out.iter().map(|(component, why)| {
            format!("metadata component {component} is not in the backup: {why}")
        }));
        // Keyed by body object (with counts by reason), or by what the entry is about
        // (`waiting`, `not visible`), whose reason says it all.
        warnings.extend(self.files_left_out.iter().map(|(what, why)| {
            if crate::snapshot::files::is_body_object(what) {
                format!("{what} bodies not in the backup: {why}")
            } else {
                why.clone()
            }
        }));
        warnings
    }
}

/// What restore needs to know of a field: whether it can be written on a new record or an
/// existing one, and which objects it looks up (empty when it is no lookup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldInfo {
    pub createable: bool,
    pub updateable: bool,
    pub reference_to: Vec<String>,
}

/// One record to write back to a source: created when `id` is None, else updated (only the
/// fields given).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    pub object: String,
    pub id: Option<String>,
    pub fields: serde_json::Map<String, Value>,
}

/// A metadata deploy's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployReport {
    /// The source's id of the deploy.
    pub id: String,
    pub success: bool,
    /// As the source says it (`Succeeded`, `Failed`).
    pub status: String,
    /// `Type:FullName` of each component deployed (or, for a validation, that would be).
    pub deployed: Vec<String>,
    /// (`Type:FullName` or what failed, the source's problem).
    pub failures: Vec<(String, String)>,
}

/// The source's answer for one written record: its Id, or why it was refused.
pub type WriteOutcome = Result<String, String>;
