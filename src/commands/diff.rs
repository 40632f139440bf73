//! `cairn diff`: what changed between two snapshots of a task, record by record, decrypted
//! locally (nothing is written anywhere). Snapshots are named by id (or a prefix), `latest`,
//! `latest~N`, or a date (the newest snapshot taken on or before it).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use super::snapshot_access::{TaskSnapshots, resolve};
use crate::diff::{self, Kind, ObjectStats};
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::snapshot::writer::load_manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    /// One JSON object per changed record, then one with the statistics.
    Json,
    Markdown,
}

#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub dir: PathBuf,
    pub task: Option<String>,
    /// Default `latest~1`.
    pub from: Option<String>,
    /// Default `latest`.
    pub to: Option<String>,
    pub object: Option<String>,
    pub values: bool,
    pub format: DiffFormat,
}

/// A value as JSON (which escapes C0 controls), with DEL and C1 controls escaped too.
fn show(value: &Value) -> String {
    crate::text::printable(&value.to_string()).into_owned()
}

pub fn diff(options: &DiffOptions, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(&options.dir, env)?;
    let task = TaskSnapshots::open(&project, options.task.as_deref())?;
    let from = resolve(
        &task.status.snapshots,
        options.from.as_deref().unwrap_or("latest~1"),
    )?;
    let to_spec = options.to.as_deref().unwrap_or("latest");
    let to = resolve(&task.status.snapshots, to_spec)?;
    if from.id == to.id {
        return Err(super::snapshot_access::usage(
            format!(
                "{} and {to_spec} are the same snapshot, {} ({}): there is nothing to compare",
                options.from.as_deref().unwrap_or("latest~1"),
                super::snapshot_access::short_id(&from.id),
                from.time
            ),
            "a date names the newest snapshot taken on or before it; give an earlier date, latest~N or an id for the older end (`cairn snapshots` lists them)",
        ));
    }
    let store = project.store()?;
    let older = load_manifest(store, &from.id)?;
    let newer = load_manifest(store, &to.id)?;

    let mut changes = Vec::new();
    let stats = diff::diff(
        store,
        &older,
        &newer,
        options.object.as_deref(),
        options.values || options.format == DiffFormat::Json,
        &mut |c| changes.push(c),
    )?;
    let schema = diff::schema_diff(store, &older, &newer, options.object.as_deref())?;
    let short = |id: &str| id[..id.len().min(12)].to_string();
    let mut out = String::new();
    match options.format {
        DiffFormat::Json => {
            for change in &changes {
                let mut value = serde_json::to_value(change).unwrap_or(Value::Null);
                if !options.values
                    && let Some(fields) = value.get_mut("fields")
                {
                    // Names only: values stay on this machine unless asked for.
                    *fields = Value::Array(
                        change
                            .fields
                            .iter()
                            .map(|f| Value::String(f.field.clone()))
                            .collect(),
                    );
                }
                let _ = writeln!(out, "{value}");
            }
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({"from": from.id, "to": to.id, "stats": stats, "schemaChanged": !schema.is_empty()})
            );
        }
        DiffFormat::Text | DiffFormat::Markdown => {
            let markdown = options.format == DiffFormat::Markdown;
            let _ = writeln!(
                out,
                "{}diff {}: {} ({}) -> {} ({})\n",
                if markdown { "### " } else { "" },
                task.id,
                short(&from.id),
                from.time,
                short(&to.id),
                to.time
            );
            if markdown {
                out.push_str("```diff\n");
            }
            let mut current = "";
            for change in &changes {
                if change.object != current {
                    let _ = writeln!(out, "{}", change.object);
                    current = &change.object;
                }
                let names: Vec<&str> = change.fields.iter().map(|f| f.field.as_str()).collect();
                let label = file_label(change).unwrap_or_default();
                match change.change {
                    Kind::Modified => {
                        let _ = writeln!(out, "M {}{label}  {}", change.id, names.join(", "));
                    }
                    kind => {
                        let _ = writeln!(out, "{} {}{label}", kind.marker(), change.id);
                    }
                }
                if options.values {
                    for field in &change.fields {
                        match change.change {
                            Kind::Modified => match text_diff(&field.before, &field.after) {
                                Some(lines) => {
                                    let _ = write!(out, "      {}:\n{lines}", field.field);
                                }
                                None => {
                                    let _ = writeln!(
                                        out,
                                        "      {}: {} -> {}",
                                        field.field,
                                        show(&field.before),
                                        show(&field.after)
                                    );
                                }
                            },
                            Kind::Added if !field.after.is_null() => {
                                let _ =
                                    writeln!(out, "      {}: {}", field.field, show(&field.after));
                            }
                            Kind::Deleted if !field.before.is_null() => {
                                let _ =
                                    writeln!(out, "      {}: {}", field.field, show(&field.before));
                            }
                            _ => {}
                        }
                    }
                }
            }
            if markdown {
                out.push_str("```\n");
            }
            out.push('\n');
            for (object, s) in &stats {
                if let Some(note) = s.coverage_note() {
                    let _ = writeln!(out, "{object}: {note}");
                } else if s.changed() > 0 || options.object.is_some() {
                    let _ = writeln!(out, "{}", footer(object, s));
                }
            }
            let unchanged = stats
                .values()
                .filter(|s| s.changed() == 0 && s.coverage.is_none())
                .count();
            if unchanged > 0 && options.object.is_none() {
                let _ = writeln!(out, "{unchanged} objects unchanged");
            }
            if !schema.is_empty() {
                let _ = write!(
                    out,
                    "\nSchema changes:\n{}{schema}{}",
                    if markdown { "```diff\n" } else { "" },
                    if markdown { "```\n" } else { "" }
                );
            }
        }
    }
    Ok(out)
}

/// Two versions of a text of several lines (a component's source, a long text field) as a
/// unified diff, indented under its field; None for other values.
fn text_diff(before: &Value, after: &Value) -> Option<String> {
    let (Value::String(before), Value::String(after)) = (before, after) else {
        return None;
    };
    if !before.contains('\n') && !after.contains('\n') {
        return None;
    }
    let diff = similar::TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(before.as_str(), after.as_str());
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        for line in hunk.to_string().lines() {
            let _ = writeln!(out, "        {}", crate::text::printable(line));
        }
    }
    Some(out)
}

fn footer(object: &str, s: &ObjectStats) -> String {
    match s.files {
        Some(bytes) => format!(
            "{object}: {} added ({}), {} deleted ({}), {} changed ({} -> {}) (of {} files)",
            s.added,
            crate::text::size(bytes.added),
            s.deleted,
            crate::text::size(bytes.deleted),
            s.modified,
            crate::text::size(bytes.changed_before),
            crate::text::size(bytes.changed_after),
            s.before
        ),
        None => format!(
            "{object}: {} added, {} deleted, {} modified (of {} records)",
            s.added, s.deleted, s.modified, s.before
        ),
    }
}

/// A file's name and size, from its body row, for a change's line.
fn file_label(change: &diff::RecordChange) -> Option<String> {
    if !crate::snapshot::files::is_body_object(&change.object) {
        return None;
    }
    let body = crate::snapshot::files::FileBody::parse(change.body.as_deref()?).ok()?;
    let held = match &body.missing {
        None => String::new(),
        Some(missing) => format!(", not held: {}", missing.reason),
    };
    Some(format!(
        "  {} ({}{held})",
        crate::text::printable(&body.name),
        crate::text::size(body.size)
    ))
}
