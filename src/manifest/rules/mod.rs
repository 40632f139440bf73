//! Semantic checks that a schema cannot express. One rule per file; each has a stable id and a
//! UI test of its exact output in tests/corpus.

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::schema::ManifestKind;
use super::span::Span;
use super::yaml::Document;

mod alert_threshold;
mod client_credentials_domain;
pub mod cron;
mod duplicate_id;
mod full_api_budget;
pub mod id_format;
mod literal_secret;
mod object_name;
mod restore_selection;
mod restore_task;
mod retention;
mod store_in_checkout;
mod template_exists;
mod template_renders;
mod workflow_secret;

pub use literal_secret::{RULE as LITERAL_SECRET, looks_like_secret};

/// A manifest that parsed as YAML.
pub struct ManifestFile {
    pub kind: ManifestKind,
    /// Path in the config repository, `/`-separated.
    pub rel: String,
    /// Path as shown to the user.
    pub display: String,
    pub doc: Document,
}

impl ManifestFile {
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.doc.value.pointer(pointer)
    }

    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        self.get(pointer).and_then(Value::as_str)
    }

    pub fn value_span(&self, pointer: &str) -> Option<Span> {
        self.doc.spans.value_span(pointer)
    }

    /// The key of a node, or its value when it has no key (a list item).
    pub fn key_span(&self, pointer: &str) -> Option<Span> {
        self.doc
            .spans
            .key_span(pointer)
            .or_else(|| self.value_span(pointer))
    }

    /// Where the settings that repository defaults can also hold live in this file: the task
    /// itself, or `defaults` of cairn.yaml.
    pub fn settings_pointer(&self) -> &'static str {
        match self.kind {
            ManifestKind::Task | ManifestKind::Restore => "",
            ManifestKind::Repository => "/defaults",
        }
    }

    pub fn error(&self, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(rule, self.display.clone(), message)
    }

    pub fn warning(&self, rule: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(rule, self.display.clone(), message)
    }
}

/// What rules may know about the repository beyond the manifests.
pub struct RuleContext<'a> {
    /// File names in templates/.
    pub templates: &'a [String],
    /// Their texts (those that are UTF-8 and not too large).
    pub template_sources: std::collections::BTreeMap<String, String>,
    /// How templates/ is shown to the user.
    pub templates_display: String,
    /// The repository's GitHub Actions workflows.
    pub workflows: &'a [super::workflows::Workflow],
}

type Check = fn(&[ManifestFile], &RuleContext, &mut Vec<Diagnostic>);

/// Every semantic rule, in the order they run.
const RULES: &[Check] = &[
    literal_secret::check,
    id_format::check,
    duplicate_id::check,
    cron::check,
    retention::check,
    alert_threshold::check,
    object_name::check,
    template_exists::check,
    template_renders::check,
    full_api_budget::check,
    workflow_secret::check,
    store_in_checkout::check,
    restore_task::check,
    restore_selection::check,
    client_credentials_domain::check,
];

pub fn check_all(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    for rule in RULES {
        rule(files, context, out);
    }
}

/// The items of a list at `pointer`, with their pointers.
pub fn list_items<'a>(file: &'a ManifestFile, pointer: &str) -> Vec<(String, &'a Value)> {
    match file.get(pointer) {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{pointer}/{i}"), item))
            .collect(),
        _ => Vec::new(),
    }
}
