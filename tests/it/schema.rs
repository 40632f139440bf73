//! The schemas and the typed model describe the same manifests: every property is documented and
//! defaulted, an absent property behaves exactly like its schema default, and the examples survive
//! a trip through schema, model, serde_yaml and the loader unchanged.

use crate::common;

use std::collections::BTreeSet;

use cairn::manifest::model::{BackupTask, Repository, RestoreManifest};
use cairn::manifest::schema::{ManifestKind, schemas};
use cairn::manifest::{ConfigTree, load, yaml};
use serde_json::Value;

use common::{Test, repo_root};

/// A property as the schema declares it.
struct Property {
    /// JSON pointer with `[]` for "any item of this list".
    path: String,
    description: Option<String>,
    default: Option<Value>,
    required: bool,
    /// A branch of a choose-exactly-one object (`auth.jwt`, `channel.slack`): no default.
    choice: bool,
}

fn properties(kind: ManifestKind) -> Vec<Property> {
    let schemas = schemas();
    let mut found = Vec::new();
    let mut stack = vec![(kind, schemas.schema(kind), String::new(), 0)];
    while let Some((doc, node, path, depth)) = stack.pop() {
        assert!(depth < 16, "schema nesting runs away at {path}");
        let (doc, target) = resolve(doc, node);
        if let Some(items) = target.get("items") {
            stack.push((doc, items, format!("{path}/[]"), depth + 1));
        }
        // The settings a discriminator chooses (`allOf: [{if, then}]`) live at the same path.
        for member in target
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(branch) = member.get("then") {
                stack.push((doc, branch, path.clone(), depth + 1));
            }
        }
        let Some(Value::Object(props)) = target.get("properties") else {
            continue;
        };
        let required: BTreeSet<&str> = target
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let choice = target.get("maxProperties") == Some(&Value::from(1));
        for (name, child) in props {
            let (_, child_target) = resolve(doc, child);
            let child_path = format!("{path}/{name}");
            found.push(Property {
                path: child_path.clone(),
                description: child
                    .get("description")
                    .or_else(|| child_target.get("description"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                default: child
                    .get("default")
                    .or_else(|| child_target.get("default"))
                    .cloned(),
                required: required.contains(name.as_str()),
                choice,
            });
            stack.push((doc, child, child_path, depth + 1));
        }
    }
    found
}

/// Follows `$ref`s (also into the task schema from the repository schema), saying which schema
/// the target is in.
fn resolve(mut doc: ManifestKind, mut node: &'static Value) -> (ManifestKind, &'static Value) {
    while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let (file, pointer) = reference.split_once('#').expect("refs have a fragment");
        if file == "task.schema.json" {
            doc = ManifestKind::Task;
        }
        node = schemas()
            .schema(doc)
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    (doc, node)
}

#[test]
fn schemas_are_valid_json_schema_2020_12() {
    for kind in [
        ManifestKind::Task,
        ManifestKind::Repository,
        ManifestKind::Restore,
    ] {
        let schema = schemas().schema(kind);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind:?}"
        );
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("{kind:?} schema is not a valid schema: {e}");
        }
    }
}

#[test]
fn every_property_is_described_and_every_optional_one_defaulted() {
    let mut problems = Vec::new();
    for kind in [
        ManifestKind::Task,
        ManifestKind::Repository,
        ManifestKind::Restore,
    ] {
        for property in properties(kind) {
            if property.description.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{kind:?} {}: no description", property.path));
            }
            if !property.required && !property.choice && property.default.is_none() {
                problems.push(format!(
                    "{kind:?} {}: optional without a default",
                    property.path
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn kitchen_sink(kind: ManifestKind) -> Vec<(String, Value)> {
    let dir = repo_root().join("tests/fixtures/kitchen-sink");
    let prefix = match kind {
        ManifestKind::Task => "task-",
        ManifestKind::Repository => "repository-",
        ManifestKind::Restore => "restore-",
    };
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(dir).expect("kitchen-sink fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with(prefix) && name.ends_with(".yaml") {
            let text = std::fs::read_to_string(&path).expect("read fixture");
            let doc = yaml::parse(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            docs.push((name, doc.value));
        }
    }
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// Pointers of every node, with list indexes written as `[]`.
fn instance_paths(value: &Value, path: String, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}/{key}");
                out.insert(child_path.clone());
                instance_paths(child, child_path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                instance_paths(item, format!("{path}/[]"), out);
            }
        }
        _ => {}
    }
}

/// Serialises the typed model of a document: what cairn makes of it.
fn typed(kind: ManifestKind, value: &Value) -> Value {
    let errors: Vec<String> = schemas()
        .validator(kind)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path().as_str()))
        .collect();
    assert!(errors.is_empty(), "schema rejects {value}: {errors:?}");
    match kind {
        ManifestKind::Task => serde_json::to_value(
            serde_json::from_value::<BackupTask>(value.clone()).expect("model reads a valid task"),
        ),
        ManifestKind::Repository => serde_json::to_value(
            serde_json::from_value::<Repository>(value.clone())
                .expect("model reads a valid repository"),
        ),
        ManifestKind::Restore => serde_json::to_value(
            serde_json::from_value::<RestoreManifest>(value.clone())
                .expect("model reads a valid restore"),
        ),
    }
    .expect("model serialises")
}

/// A real pointer in `value` that matches a `[]` pattern, trying every list index.
fn concrete(value: &Value, pattern: &str) -> Option<String> {
    let Some((head, rest)) = pattern.split_once("/[]") else {
        return value.pointer(pattern).map(|_| pattern.to_string());
    };
    let items = value.pointer(head)?.as_array()?;
    (0..items.len()).find_map(|i| concrete(value, &format!("{head}/{i}{rest}")))
}

fn split_parent(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').expect("a pointer below the root")
}

#[test]
fn an_absent_property_means_its_schema_default_in_the_model() {
    for kind in [
        ManifestKind::Task,
        ManifestKind::Repository,
        ManifestKind::Restore,
    ] {
        let docs = kitchen_sink(kind);
        assert!(!docs.is_empty(), "no kitchen-sink fixtures for {kind:?}");
        let mut covered = BTreeSet::new();
        for (_, doc) in &docs {
            instance_paths(doc, String::new(), &mut covered);
        }
        let uncovered: Vec<String> = properties(kind)
            .into_iter()
            .map(|p| p.path)
            .filter(|p| !covered.contains(p))
            .collect();
        assert!(
            uncovered.is_empty(),
            "no kitchen-sink fixture of {kind:?} sets these; add them to tests/fixtures/kitchen-sink:\n{}",
            uncovered.join("\n")
        );
        for property in properties(kind) {
            let Some(default) = &property.default else {
                continue;
            };
            let (name, doc, pointer) = docs
                .iter()
                .find_map(|(name, d)| concrete(d, &property.path).map(|p| (name, d, p)))
                .expect("covered above");
            let (parent, key) = split_parent(&pointer);

            let mut absent = doc.clone();
            let removed = absent
                .pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .and_then(|p| p.remove(key));
            assert!(removed.is_some(), "{name}: could not remove {pointer}");
            let mut explicit = doc.clone();
            if let Some(p) = explicit.pointer_mut(parent).and_then(Value::as_object_mut) {
                p.insert(key.to_string(), default.clone());
            }
            assert_eq!(
                typed(kind, &absent),
                typed(kind, &explicit),
                "{kind:?} {}: leaving it out is not the same as its schema default {default}",
                property.path
            );
        }
    }
}

#[test]
fn the_examples_round_trip_through_schema_model_and_yaml() {
    let example = repo_root().join("examples/quickstart");
    let config = load(&ConfigTree::work_tree(&example).expect("example exists")).expect("loads");
    assert!(
        config.diagnostics.is_empty(),
        "the quickstart example has diagnostics: {:?}",
        config.diagnostics
    );
    let repository = config.repository.expect("a typed repository");
    assert_eq!(config.tasks.len(), 2);

    // Written back out through serde_yaml and read again by the loader: nothing changes.
    let to_yaml =
        |value: Value| serde_yaml::to_string(&value).expect("serde_yaml writes JSON values");
    let mut test = Test::new().file(
        "cairn.yaml",
        to_yaml(serde_json::to_value(&repository).expect("serialise repository")),
    );
    common::copy_dir(&example.join("templates"), &test.path().join("templates"));
    for loaded in &config.tasks {
        let value = serde_json::to_value(&loaded.task).expect("serialise task");
        assert_eq!(
            typed(ManifestKind::Task, &value),
            value,
            "{} is not stable",
            loaded.path
        );
        test = test.file(&loaded.path, to_yaml(value));
    }
    let again = load(&ConfigTree::work_tree(test.path()).expect("scratch repo")).expect("loads");
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(again.repository.as_ref(), Some(&repository));
    assert_eq!(again.tasks, config.tasks);
}

#[test]
fn repository_defaults_fill_in_what_a_task_leaves_out() {
    let example = repo_root().join("examples/quickstart");
    let config = load(&ConfigTree::work_tree(&example).expect("example exists")).expect("loads");
    let sandbox = config
        .tasks
        .iter()
        .find(|t| t.task.id == "acme-sandbox")
        .expect("the sandbox task");
    let defaults = &config.repository.as_ref().expect("repository").defaults;
    // The sandbox task sets its own retention and search, and takes schedule and alerts from
    // cairn.yaml's defaults.
    assert_eq!(sandbox.task.schedule, defaults.schedule);
    assert_eq!(sandbox.task.alerts, defaults.alerts);
    assert_eq!(sandbox.task.notifications, defaults.notifications);
    assert_eq!(sandbox.task.retention.keep_last, 10);
    assert_ne!(sandbox.task.retention, defaults.retention);
    assert!(!sandbox.task.search.index);
}

/// The README's manifest reference is exactly what the schemas generate.
#[test]
fn the_readme_manifest_reference_matches_the_schemas() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme
        .find("<!-- manifest-reference:start")
        .expect("start marker");
    let body_start = start + readme[start..].find("-->\n").expect("marker end") + 4;
    let end = readme
        .find("<!-- manifest-reference:end -->")
        .expect("end marker");
    assert_eq!(
        &readme[body_start..end],
        cairn::manifest::reference::reference(),
        "regenerate it with `cargo run -- schema reference`"
    );
}
