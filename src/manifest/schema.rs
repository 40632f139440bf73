//! The embedded JSON Schemas, and schema errors turned into diagnostics that point at the key or
//! value at fault. Messages are written from the schema, never from the value: a value may be a
//! secret pasted in the wrong place.
//!
//! Long because `check` is one match over every kind of schema error, each with its own message
//! and help, and reads best whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, display_path};
use super::span::Span;
use super::yaml::{Document, escape_token};
use crate::text::suggest::did_you_mean;

pub const TASK_SCHEMA: &str = include_str!("../../schemas/task.schema.json");
pub const REPOSITORY_SCHEMA: &str = include_str!("../../schemas/repository.schema.json");
pub const RESTORE_SCHEMA: &str = include_str!("../../schemas/restore.schema.json");

const TASK_FILE: &str = "task.schema.json";

/// Which kind of manifest a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Repository,
    Task,
    Restore,
}

impl ManifestKind {
    pub fn name(self) -> &'static str {
        match self {
            ManifestKind::Repository => "Repository",
            ManifestKind::Task => "BackupTask",
            ManifestKind::Restore => "Restore",
        }
    }
}

pub struct Schemas {
    task: Value,
    repository: Value,
    restore: Value,
    task_validator: Validator,
    repository_validator: Validator,
    restore_validator: Validator,
    /// Property name -> where it is valid, per kind, to say where a misplaced key belongs.
    task_properties: BTreeMap<String, BTreeSet<String>>,
    repository_properties: BTreeMap<String, BTreeSet<String>>,
    restore_properties: BTreeMap<String, BTreeSet<String>>,
}

struct EmbeddedRetriever(Value);

impl jsonschema::Retrieve for EmbeddedRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.path().as_str().ends_with(TASK_FILE) {
            Ok(self.0.clone())
        } else {
            Err(format!("{uri} is not one of cairn's embedded schemas").into())
        }
    }
}

/// The compiled schemas, built once per process.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        // The schemas are part of the binary and covered by tests; failing here is a build bug.
        let task: Value = serde_json::from_str(TASK_SCHEMA).expect("embedded task schema is JSON");
        let repository: Value =
            serde_json::from_str(REPOSITORY_SCHEMA).expect("embedded repository schema is JSON");
        let task_validator = jsonschema::options()
            .with_base_uri(format!("json-schema:///{TASK_FILE}"))
            .build(&task)
            .expect("embedded task schema compiles");
        let repository_validator = jsonschema::options()
            .with_base_uri("json-schema:///repository.schema.json")
            .with_retriever(EmbeddedRetriever(task.clone()))
            .build(&repository)
            .expect("embedded repository schema compiles");
        let restore: Value =
            serde_json::from_str(RESTORE_SCHEMA).expect("embedded restore schema is JSON");
        let restore_validator = jsonschema::options()
            .with_base_uri("json-schema:///restore.schema.json")
            .build(&restore)
            .expect("embedded restore schema compiles");
        let mut schemas = Schemas {
            task_properties: BTreeMap::new(),
            repository_properties: BTreeMap::new(),
            restore_properties: BTreeMap::new(),
            task,
            repository,
            restore,
            task_validator,
            repository_validator,
            restore_validator,
        };
        schemas.task_properties = schemas.property_index(ManifestKind::Task);
        schemas.repository_properties = schemas.property_index(ManifestKind::Repository);
        schemas.restore_properties = schemas.property_index(ManifestKind::Restore);
        schemas
    })
}

impl Schemas {
    pub fn schema(&self, kind: ManifestKind) -> &Value {
        match kind {
            ManifestKind::Repository => &self.repository,
            ManifestKind::Task => &self.task,
            ManifestKind::Restore => &self.restore,
        }
    }

    pub fn validator(&self, kind: ManifestKind) -> &Validator {
        match kind {
            ManifestKind::Repository => &self.repository_validator,
            ManifestKind::Task => &self.task_validator,
            ManifestKind::Restore => &self.restore_validator,
        }
    }

    /// Follows a `$ref` from a schema of `kind` to its target and the schema it lives in.
    pub fn resolve_ref<'a>(
        &'a self,
        kind: SchemaDoc,
        reference: &str,
    ) -> Option<(SchemaDoc, &'a Value)> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = match file {
            "" => kind,
            TASK_FILE => SchemaDoc::Task,
            _ => return None,
        };
        self.doc(doc).pointer(pointer).map(|v| (doc, v))
    }

    fn doc(&self, doc: SchemaDoc) -> &Value {
        match doc {
            SchemaDoc::Task => &self.task,
            SchemaDoc::Repository => &self.repository,
            SchemaDoc::Restore => &self.restore,
        }
    }

    /// The schema node that a validation error's schema path leads to, `$ref`s followed, and
    /// the schema it is in.
    fn node_at(&self, kind: ManifestKind, schema_path: &str) -> Option<(SchemaDoc, &Value)> {
        let mut doc = SchemaDoc::from(kind);
        let mut node = self.doc(doc);
        for token in schema_path.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            if token == "$ref" {
                let (next_doc, next) = self.resolve_ref(doc, node.get("$ref")?.as_str()?)?;
                doc = next_doc;
                node = next;
            } else {
                node = match node {
                    Value::Object(map) => map.get(&token)?,
                    Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
        }
        Some((doc, node))
    }

    /// Every property name in a schema, with the places (display paths) where it is valid.
    fn property_index(&self, kind: ManifestKind) -> BTreeMap<String, BTreeSet<String>> {
        let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut stack = vec![(SchemaDoc::from(kind), self.schema(kind), String::new(), 0)];
        while let Some((doc, node, path, depth)) = stack.pop() {
            if depth > 12 {
                continue;
            }
            if let Some(reference) = node.get("$ref").and_then(Value::as_str)
                && let Some((doc, target)) = self.resolve_ref(doc, reference)
            {
                stack.push((doc, target, path.clone(), depth + 1));
            }
            if let Some(items) = node.get("items") {
                stack.push((doc, items, format!("{path}[]"), depth + 1));
            }
            // A choice by a discriminator (`source.type`): each branch's properties are valid
            // at the same place.
            for branch in conditional_branches(node) {
                stack.push((doc, branch, path.clone(), depth + 1));
            }
            if let Some(Value::Object(properties)) = node.get("properties") {
                for (name, child) in properties {
                    index.entry(name.clone()).or_default().insert(path.clone());
                    let child_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    stack.push((doc, child, child_path, depth + 1));
                }
            }
        }
        index
    }

    fn places_of(&self, kind: ManifestKind, property: &str) -> Option<&BTreeSet<String>> {
        match kind {
            ManifestKind::Repository => self.repository_properties.get(property),
            ManifestKind::Task => self.task_properties.get(property),
            ManifestKind::Restore => self.restore_properties.get(property),
        }
    }
}

/// Which schema file a node lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaDoc {
    Task,
    Repository,
    Restore,
}

impl From<ManifestKind> for SchemaDoc {
    fn from(kind: ManifestKind) -> Self {
        match kind {
            ManifestKind::Repository => SchemaDoc::Repository,
            ManifestKind::Task => SchemaDoc::Task,
            ManifestKind::Restore => SchemaDoc::Restore,
        }
    }
}

/// Validates a document against its kind's schema; every error becomes a diagnostic.
pub fn check(kind: ManifestKind, doc: &Document, file: &str, out: &mut Vec<Diagnostic>) {
    let schemas = schemas();
    for error in schemas.validator(kind).iter_errors(&doc.value) {
        let pointer = error.instance_path().as_str();
        let schema_path = error.schema_path().as_str();
        let keyword_node = schema_path
            .rfind('/')
            .and_then(|i| schemas.node_at(kind, &schema_path[..i]));
        let context = ErrorContext {
            kind,
            doc,
            file,
            pointer,
            schema_doc: keyword_node.map_or(kind.into(), |(d, _)| d),
            node: keyword_node.map(|(_, n)| n),
            instance: doc.value.pointer(pointer),
        };
        context.diagnose(error.kind(), out);
    }
}

struct ErrorContext<'a> {
    kind: ManifestKind,
    doc: &'a Document,
    file: &'a str,
    pointer: &'a str,
    /// The schema file `node` is in.
    schema_doc: SchemaDoc,
    /// The schema object holding the keyword that failed.
    node: Option<&'a Value>,
    instance: Option<&'a Value>,
}

impl ErrorContext<'_> {
    fn subject(&self) -> String {
        if self.pointer.is_empty() {
            format!("the {} manifest", self.kind.name())
        } else {
            format!("`{}`", display_path(self.pointer))
        }
    }

    /// Where to point for this node: a scalar's value, or a container's key (a multi-line
    /// mapping reads better by its name); an empty value points at its key.
    fn span(&self) -> Option<Span> {
        let (_, spans) = self.doc.spans.lookup(self.pointer)?;
        let is_container = matches!(self.instance, Some(Value::Object(_) | Value::Array(_)));
        let empty = spans.value.start == spans.value.end;
        match spans.key {
            Some(key) if is_container || empty => Some(key),
            _ if is_container => Some(Span::point(spans.value.start)),
            _ => Some(spans.value),
        }
    }

    fn diagnostic(&self, rule: &'static str, message: String) -> Diagnostic {
        Diagnostic::error(rule, self.file, message)
            .at(self.span())
            .pointer(self.pointer)
    }

    fn hint(&self) -> Option<String> {
        self.node
            .and_then(|n| n.get("x-cairn-hint"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn property_names(&self) -> Vec<&str> {
        self.node
            .and_then(|n| n.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn diagnose(&self, kind: &ValidationErrorKind, out: &mut Vec<Diagnostic>) {
        let subject = self.subject();
        let diagnostic = match kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    out.push(self.unknown_key(key));
                }
                return;
            }
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                let description = self
                    .node
                    .and_then(|n| n.get("properties"))
                    .and_then(|p| p.get(property))
                    .and_then(|p| describe(p, self.schema_doc));
                let message = if self.pointer.is_empty() {
                    format!("missing the required key `{property}`")
                } else {
                    format!("{subject} is missing the required key `{property}`")
                };
                let mut diagnostic = self
                    .diagnostic("schema/missing-key", message)
                    .label(format!("`{property}` is required here"));
                if self.pointer.is_empty() {
                    // The document as a whole: point at where it starts, not all of it.
                    diagnostic =
                        diagnostic.at(self.doc.spans.value_span("").map(|s| Span::point(s.start)));
                }
                diagnostic.help_opt(description.map(|d| format!("`{property}`: {d}")))
            }
            ValidationErrorKind::Type { kind } => {
                let expected = expected_types(kind);
                let found = found_type(self.instance);
                let message = format!("{subject} must be {expected}, not {found}");
                let help = if self.pointer.is_empty() {
                    Some(format!(
                        "a manifest is a mapping of settings, starting with `apiVersion: cairn/v1` and `kind: {}`",
                        self.kind.name()
                    ))
                } else {
                    type_help(kind, self.instance).or_else(|| self.hint())
                };
                self.diagnostic("schema/type", message)
                    .label(format!("expected {expected}"))
                    .help_opt(help)
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<&str> = options
                    .as_array()
                    .map(|o| o.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let suggestion = self
                    .instance
                    .and_then(Value::as_str)
                    .and_then(|v| did_you_mean(v, options.iter().copied()));
                let label = match (suggestion, self.instance) {
                    (Some(s), _) => format!("did you mean `{s}`?"),
                    (None, Some(Value::Null)) => "no value given".to_string(),
                    _ => "not one of the allowed values".to_string(),
                };
                self.diagnostic(
                    "schema/enum",
                    format!("{subject} must be one of: {}", options.join(", ")),
                )
                .label(label)
                .help_opt(self.node.and_then(|n| describe(n, self.schema_doc)))
            }
            ValidationErrorKind::Constant { expected_value } => {
                let expected = expected_value.as_str().unwrap_or_default();
                self.diagnostic("schema/const", format!("{subject} must be `{expected}`"))
                    .label(format!("expected `{expected}`"))
                    .help(self.const_help(expected))
            }
            ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::ExclusiveMinimum { .. }
            | ValidationErrorKind::ExclusiveMaximum { .. } => {
                let range = self.range_text();
                self.diagnostic("schema/range", format!("{subject} must be {range}"))
                    .label("out of range")
                    .help_opt(self.node.and_then(|n| describe(n, self.schema_doc)))
            }
            ValidationErrorKind::MinLength { limit } => {
                let message = if *limit == 1 {
                    format!("{subject} must not be empty")
                } else {
                    format!("{subject} must be at least {limit} characters long")
                };
                self.diagnostic("schema/length", message).label("too short")
            }
            ValidationErrorKind::MaxLength { limit } => self
                .diagnostic(
                    "schema/length",
                    format!("{subject} must be at most {limit} characters long"),
                )
                .label("too long"),
            ValidationErrorKind::MinItems { limit } => self
                .diagnostic(
                    "schema/items",
                    format!(
                        "{subject} must list at least {}",
                        count_text(*limit, "item")
                    ),
                )
                .label("too few items"),
            ValidationErrorKind::MaxItems { limit } => self
                .diagnostic(
                    "schema/items",
                    format!("{subject} must list at most {}", count_text(*limit, "item")),
                )
                .label("too many items"),
            ValidationErrorKind::UniqueItems => self
                .diagnostic(
                    "schema/items",
                    format!("{subject} lists the same item more than once"),
                )
                .label("remove the repeated item"),
            ValidationErrorKind::Pattern { .. } => {
                let hint = self.hint();
                self.diagnostic(
                    "schema/format",
                    format!("{subject} is not in the expected format"),
                )
                .label("wrong format")
                .help_opt(hint.or_else(|| self.node.and_then(|n| describe(n, self.schema_doc))))
            }
            ValidationErrorKind::MinProperties { .. }
            | ValidationErrorKind::MaxProperties { .. } => {
                let choices = self.property_names();
                let set = self
                    .instance
                    .and_then(Value::as_object)
                    .map_or(0, serde_json::Map::len);
                let label = if set == 0 {
                    "none chosen".to_string()
                } else {
                    format!("{set} chosen")
                };
                self.diagnostic(
                    "schema/choice",
                    format!("{subject} must set exactly one of: {}", choices.join(", ")),
                )
                .label(label)
                .help_opt(self.node.and_then(|n| describe(n, self.schema_doc)))
            }
            other => self
                .diagnostic("schema/invalid", format!("{subject} is not valid here"))
                .label(format!("fails the schema's `{}` rule", keyword_of(other))),
        };
        out.push(diagnostic);
    }

    fn unknown_key(&self, key: &str) -> Diagnostic {
        let pointer = format!("{}/{}", self.pointer, escape_token(key));
        let span = self.doc.spans.key_span(&pointer).or_else(|| self.span());
        let names = self.property_names();
        let suggestion = did_you_mean(key, names.iter().copied());
        let message = if self.pointer.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!("unknown key `{key}` in {}", self.subject())
        };
        let label = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => "not a setting here".to_string(),
        };
        let here = display_path(self.pointer).replace(|c: char| c.is_ascii_digit(), "");
        let elsewhere = schemas().places_of(self.kind, key).and_then(|places| {
            places
                .iter()
                .find(|p| p.replace("[]", "") != here.replace("[]", ""))
        });
        let help = match (suggestion, elsewhere) {
            (None, Some(place)) if place.is_empty() => {
                format!("`{key}` is a top-level setting; move it to the top of the file")
            }
            (None, Some(place)) => format!("`{key}` is a setting of `{place}`; move it there"),
            _ if names.is_empty() => "this mapping takes no keys".to_string(),
            _ => format!("valid keys here: {}", names.join(", ")),
        };
        Diagnostic::error("schema/unknown-key", self.file, message)
            .at(span)
            .pointer(pointer)
            .label(label)
            .help(help)
    }

    fn const_help(&self, expected: &str) -> String {
        let found = self.instance.and_then(Value::as_str);
        match (self.kind, found) {
            (ManifestKind::Task, Some("Repository")) => {
                "this file is in tasks/, which holds BackupTask manifests; the Repository manifest is cairn.yaml at the root".to_string()
            }
            (ManifestKind::Repository, Some("BackupTask")) => {
                "cairn.yaml describes the repository; put each BackupTask in its own file under tasks/".to_string()
            }
            _ => format!("write `{expected}`"),
        }
    }

    fn range_text(&self) -> String {
        let get = |k: &str| self.node.and_then(|n| n.get(k)).and_then(Value::as_f64);
        let fmt = |v: f64| {
            if v.fract() == 0.0 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            }
        };
        let low = get("minimum")
            .map(|v| (v, false))
            .or(get("exclusiveMinimum").map(|v| (v, true)));
        let high = get("maximum")
            .map(|v| (v, false))
            .or(get("exclusiveMaximum").map(|v| (v, true)));
        match (low, high) {
            (Some((l, false)), Some((h, false))) => format!("between {} and {}", fmt(l), fmt(h)),
            (Some((l, true)), Some((h, false))) => {
                format!("more than {} and at most {}", fmt(l), fmt(h))
            }
            (Some((l, exclusive)), None) => {
                format!(
                    "{} {}",
                    if exclusive { "more than" } else { "at least" },
                    fmt(l)
                )
            }
            (None, Some((h, exclusive))) => {
                format!(
                    "{} {}",
                    if exclusive { "less than" } else { "at most" },
                    fmt(h)
                )
            }
            (Some((l, _)), Some((h, _))) => format!("between {} and {}", fmt(l), fmt(h)),
            (None, None) => "within the allowed range".to_string(),
        }
    }
}

/// The `then` of each `allOf: [{if, then}]`: the settings a discriminator (such as
/// `source.type`) chooses.
pub fn conditional_branches(node: &Value) -> impl Iterator<Item = &Value> {
    node.get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|member| member.get("then"))
}

/// The first sentence of a schema node's description (following a `$ref` when it has none).
fn describe(node: &Value, doc: SchemaDoc) -> Option<String> {
    let description = node
        .get("description")
        .and_then(Value::as_str)
        .or_else(|| {
            let reference = node.get("$ref")?.as_str()?;
            let (_, target) = schemas().resolve_ref(doc, reference)?;
            target.get("description")?.as_str()
        })?;
    let first = match description.find(". ") {
        Some(i) => &description[..=i],
        None => description,
    };
    Some(first.to_string())
}

fn count_text(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "empty (null)",
        JsonType::Number => "a number",
        JsonType::Object => "a mapping",
        JsonType::String => "a string",
    }
}

fn expected_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => type_name(*t).to_string(),
        TypeKind::Multiple(set) => {
            let names: Vec<&str> = set.iter().map(type_name).collect();
            names.join(" or ")
        }
    }
}

fn found_type(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "empty",
        Some(Value::Bool(_)) => "true/false",
        Some(Value::Number(n)) if n.is_f64() => "a decimal number",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "a list",
        Some(Value::Object(_)) => "a mapping",
    }
}

/// YAML's own traps, explained.
fn type_help(kind: &TypeKind, found: Option<&Value>) -> Option<String> {
    let wants = |t: JsonType| match kind {
        TypeKind::Single(s) => *s == t,
        TypeKind::Multiple(set) => set.contains(t),
    };
    match found {
        None | Some(Value::Null) => Some(
            "the key is there but has no value: give it one, or remove the key to use the default"
                .to_string(),
        ),
        Some(Value::Number(_) | Value::Bool(_)) if wants(JsonType::String) => Some(
            "YAML reads unquoted numbers and true/false as such: put the value in quotes to make it a string"
                .to_string(),
        ),
        Some(Value::String(_)) if wants(JsonType::Integer) || wants(JsonType::Number) => Some(
            "write the number without quotes".to_string(),
        ),
        Some(Value::String(_)) if wants(JsonType::Boolean) => {
            Some("write true or false, without quotes".to_string())
        }
        Some(Value::String(_)) if wants(JsonType::Array) => {
            Some("write a list: one `- item` per line, or `[a, b]`".to_string())
        }
        Some(Value::Number(n)) if n.is_f64() && wants(JsonType::Integer) => {
            Some("write a whole number, without a decimal point".to_string())
        }
        _ => None,
    }
}

fn keyword_of(kind: &ValidationErrorKind) -> &'static str {
    match kind {
        ValidationErrorKind::AnyOf { .. } => "anyOf",
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => "oneOf",
        ValidationErrorKind::Not { .. } => "not",
        ValidationErrorKind::FalseSchema => "false",
        ValidationErrorKind::Format { .. } => "format",
        ValidationErrorKind::MultipleOf { .. } => "multipleOf",
        ValidationErrorKind::PropertyNames { .. } => "propertyNames",
        ValidationErrorKind::Contains => "contains",
        _ => "schema",
    }
}
