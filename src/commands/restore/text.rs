//! What `cairn restore` says: the plan (records, field by field), the tree of children, and
//! what became of each record.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::RestoreOutcome;
use crate::commands::Report;
use crate::exit::ExitStatus;
use crate::restore::{RestorePlan, Step};

/// One row of a restore's tree: `depth` 0 for the records chosen, 1 for their children, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeRow {
    pub depth: usize,
    pub object: String,
    /// The lookup field of `object` that points at the row above (None at depth 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub records: usize,
}

/// Paths from a chosen object down through (object, lookup field) steps, as tree rows in
/// depth-first order.
pub(super) fn tree_rows(paths: &BTreeMap<Vec<(String, String)>, usize>) -> Vec<TreeRow> {
    paths
        .iter()
        .filter_map(|(path, records)| {
            let (object, via) = path.last()?;
            Some(TreeRow {
                depth: path.len() - 1,
                object: object.clone(),
                via: (!via.is_empty()).then(|| via.clone()),
                records: *records,
            })
        })
        .collect()
}

/// The tree, drawn: `Account 1`, then `  └ Contact 2 (AccountId)` below it.
pub(crate) fn render_tree(rows: &[TreeRow], out: &mut String) {
    for row in rows {
        let indent = "  ".repeat(row.depth);
        let via = row
            .via
            .as_deref()
            .map(|v| format!(" (by {v})"))
            .unwrap_or_default();
        let branch = if row.depth == 0 { "" } else { "└ " };
        let _ = writeln!(out, "{indent}{branch}{} {}{via}", row.object, row.records);
    }
}

impl RestoreOutcome {
    /// What is restored from where into where: `12 records from snapshot 3f9a… (time) of
    /// acme into acme (org 00D…)`.
    pub(crate) fn heading(&self) -> String {
        let word = self.account_word;
        format!(
            "{} records from snapshot {} ({}) of {} into {} ({word} {}{})",
            self.records,
            &self.snapshot[..self.snapshot.len().min(12)],
            self.snapshot_time,
            self.task,
            self.target,
            self.account,
            if self.plan.other_account {
                format!(", another {word}: every record is created")
            } else {
                String::new()
            },
        )
    }
}

impl Report for RestoreOutcome {
    /// Success when done (or planned), Partial when some records failed, Failure when all did.
    fn exit_status(&self) -> ExitStatus {
        match &self.result {
            Some(result) if !result.failed.is_empty() => {
                if result.created.is_empty()
                    && result.updated.is_empty()
                    && result.undeleted.is_empty()
                {
                    ExitStatus::Failure
                } else {
                    ExitStatus::Partial
                }
            }
            _ => ExitStatus::Success,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = write!(out, "restore {}\n\n", self.heading());
        if !self.children.is_empty() {
            out.push_str("with their children, as they were in the snapshot:\n");
            render_tree(&self.tree, &mut out);
            out.push('\n');
        }
        if let Some((run, finished)) = &self.finished_before {
            let _ = writeln!(
                out,
                "Nothing to do: this restore was carried out by run {run}, finished {} ({} undeleted, {} created, {} updated, {} failed). A restore manifest runs once; to restore again, add one with a new id.",
                crate::time::format_datetime_z(finished.at),
                finished.undeleted,
                finished.created,
                finished.updated,
                finished.failed
            );
            return out;
        }
        render_plan(&self.plan, &mut out);
        match &self.result {
            Some(result) => {
                out.push('\n');
                for (object, id) in &result.undeleted {
                    let _ = writeln!(out, "undeleted {object} {id}");
                }
                for (object, old, new) in &result.created {
                    let _ = writeln!(out, "created {object} {old} -> {new}");
                }
                for (object, id) in &result.updated {
                    let _ = writeln!(out, "updated {object} {id}");
                }
                for (object, id, why) in &result.failed {
                    let _ = writeln!(out, "FAILED  {object} {id}: {why}");
                }
                let undeleted = match result.undeleted.len() {
                    0 => String::new(),
                    n => format!("{n} undeleted (original Ids), "),
                };
                let _ = writeln!(
                    out,
                    "Restored: {undeleted}{} created, {} updated, {} failed.",
                    result.created.len(),
                    result.updated.len(),
                    result.failed.len()
                );
            }
            None if plan_changes(&self.plan) > 0 => {
                out.push_str(
                    "Nothing was changed. Run again with --apply to carry out this plan.\n",
                );
            }
            None => {}
        }
        out
    }
}

/// How many records the plan changes.
pub(super) fn plan_changes(plan: &RestorePlan) -> usize {
    plan.count("create") + plan.count("update") + plan.count("undelete")
}

/// A value for the printed plan, with control characters escaped.
pub(super) fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => crate::text::printable(s).into_owned(),
        other => crate::text::printable(&other.to_string()).into_owned(),
    }
}

pub(super) fn render_plan(plan: &RestorePlan, out: &mut String) {
    for step in &plan.steps {
        match step {
            Step::Create { object, id, fields } => {
                let name = fields
                    .get("Name")
                    .or_else(|| fields.get("LastName"))
                    .or_else(|| fields.get("Subject"))
                    .map(|v| format!("  ({})", shown(v)))
                    .unwrap_or_default();
                let _ = writeln!(out, "+ create {object} {id}{name}");
            }
            Step::Undelete {
                object,
                id,
                changes,
            }
            | Step::Update {
                object,
                id,
                changes,
            } => {
                match step {
                    Step::Undelete { .. } => {
                        let _ = writeln!(
                            out,
                            "^ undelete {object} {id}  (from the recycle bin, with its Id)"
                        );
                    }
                    _ => {
                        let _ = writeln!(out, "~ update {object} {id}");
                    }
                }
                for change in changes {
                    let _ = writeln!(
                        out,
                        "    {}: {} -> {}",
                        change.field,
                        crate::text::printable(&change.current.to_string()),
                        crate::text::printable(&change.restored.to_string())
                    );
                }
            }
            Step::Unchanged { .. } | Step::Skipped { .. } => {}
        }
    }
    // Skips by their reason (a mode's, or an object a restore does not create), counted.
    let mut skipped: std::collections::BTreeMap<&str, usize> = Default::default();
    for step in &plan.steps {
        if let Step::Skipped { why, .. } = step {
            *skipped.entry(why.as_str()).or_default() += 1;
        }
    }
    for (why, n) in &skipped {
        let _ = writeln!(out, "\n- skip {n}: {why}");
    }
    for (object, fields) in &plan.not_restorable {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "\n{object} records created again cannot get these fields back (not settable on create): {}",
            fields.join(", ")
        );
    }
    if plan
        .not_restorable
        .values()
        .any(|f| f.contains("CreatedDate") || f.contains("CreatedById"))
    {
        let _ = writeln!(
            out,
            "(CreatedDate and CreatedById can be, when the org grants the running user \"Set Audit Fields upon Record Creation\")"
        );
    }
    if !plan.restored_as.is_empty() {
        let _ = writeln!(
            out,
            "\n{} of these records were created anew by an earlier restore: the records it made stand for them (the store's restore journal).",
            plan.restored_as.len()
        );
    }
    let undelete = match plan.count("undelete") {
        0 => String::new(),
        n => format!("{n} to undelete, "),
    };
    let skipped = match plan.count("skipped") {
        0 => String::new(),
        n => format!(", {n} skipped"),
    };
    let _ = writeln!(
        out,
        "\nPlan: {undelete}{} to create, {} to update, {} unchanged{skipped}.",
        plan.count("create"),
        plan.count("update"),
        plan.count("unchanged")
    );
    if plan_changes(plan) == 0 {
        out.push_str("Nothing to do: the org holds these records as the snapshot has them (or as this restore's mode leaves them).\n");
    }
}
