//! The manifest reference: every property of every schema as a Markdown table (path, type,
//! default, description), generated from the schemas so it can never drift from them. The
//! README embeds it; a test keeps the two equal; `cairn schema reference` prints it.

use serde_json::Value;

use super::schema::{ManifestKind, SchemaDoc, conditional_branches, schemas};

/// Nested deeper than this, a property is not listed (the schemas do not go that deep).
const MAX_DEPTH: usize = 8;

fn type_of(node: &Value) -> String {
    if let Some(constant) = node["const"].as_str() {
        return format!("`{constant}`");
    }
    if let Some(values) = node["enum"].as_array() {
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), str::to_string)))
            .collect();
        return names.join(" | ");
    }
    match &node["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if node["oneOf"].is_array() => "one of".into(),
        _ => String::new(),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn walk(doc: SchemaDoc, node: &Value, path: &str, depth: usize, rows: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let (doc, node) = match node["$ref"].as_str() {
        Some(reference) => match schemas().resolve_ref(doc, reference) {
            Some((next, target)) => (next, target),
            None => return,
        },
        None => (doc, node),
    };
    if !path.is_empty()
        && !rows
            .iter()
            .any(|row| row.starts_with(&format!("| `{path}` |")))
    {
        let default = match node.get("default") {
            Some(Value::Object(map)) if map.len() > 3 => "see below".to_string(),
            Some(value) => format!("`{value}`"),
            None => String::new(),
        };
        rows.push(format!(
            "| `{path}` | {} | {} | {} |",
            cell(&type_of(node)),
            cell(&default),
            cell(node["description"].as_str().unwrap_or(""))
        ));
    }
    if let Some(properties) = node["properties"].as_object() {
        for (name, child) in properties {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            walk(doc, child, &child_path, depth + 1, rows);
        }
    }
    if node.get("items").is_some() {
        walk(doc, &node["items"], &format!("{path}[]"), depth + 1, rows);
    }
    // The settings a discriminator chooses (`source.type`) belong to the same place; a
    // property both sides name is listed once.
    for branch in conditional_branches(node) {
        walk(doc, branch, path, depth + 1, rows);
    }
}

/// The whole reference, every kind of manifest.
pub fn reference() -> String {
    let mut out = String::new();
    for (kind, title, file) in [
        (ManifestKind::Repository, "Repository", "cairn.yaml"),
        (ManifestKind::Task, "BackupTask", "tasks/<id>.yaml"),
        (ManifestKind::Restore, "Restore", "restores/<id>.yaml"),
    ] {
        let mut rows = Vec::new();
        walk(
            SchemaDoc::from(kind),
            schemas().schema(kind),
            "",
            0,
            &mut rows,
        );
        out.push_str(&format!(
            "#### {title} (`{file}`)\n\n| property | type | default | description |\n|---|---|---|---|\n"
        ));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}
