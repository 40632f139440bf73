//! A plan as text (Terraform's grammar), a pull-request comment (Markdown with a hidden marker,
//! split below GitHub's comment limit), JSON, or a GitHub Actions matrix of the due tasks.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Action, Plan, TaskPlan};

/// The hidden marker a workflow finds its own comment by, to update it in place.
pub const MARKER: &str = "<!-- cairn-plan -->";
/// GitHub refuses comments longer than 65,536 characters; parts stay well below.
pub const COMMENT_LIMIT: usize = 60_000;

fn value(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}

/// The changes that force a new lineage, one line each.
fn lineage_lines(changes: &[super::FieldChange]) -> impl Iterator<Item = String> + '_ {
    changes.iter().map(|change| {
        format!(
            "    ~ {}: {} -> {}   # forces new lineage",
            change.field,
            value(&change.before),
            value(&change.after)
        )
    })
}

fn task_lines(task: &TaskPlan) -> Vec<String> {
    let mut lines = Vec::new();
    let name = if task.name.is_empty() {
        String::new()
    } else {
        format!("  \"{}\"", task.name)
    };
    match task.action {
        Action::Create => {
            lines.push(format!("+ create {}{name}", task.id));
            lines.push("    first full backup at the next apply".into());
        }
        Action::Update => {
            lines.push(format!("~ update {}{name}", task.id));
            for change in &task.changes {
                lines.push(format!(
                    "    ~ {}: {} -> {}",
                    change.field,
                    value(&change.before),
                    value(&change.after)
                ));
            }
        }
        Action::Archive => {
            lines.push(format!("- archive {}{name}", task.id));
            lines.push(match task.archive_days {
                Some(days) => format!(
                    "    its data is kept {days} days (retention.autoArchivedDays), then purged"
                ),
                None => {
                    "    its data is kept (no retention.autoArchivedDays): nothing is purged".into()
                }
            });
        }
        Action::Refused => {
            lines.push(format!("! refused {}{name}", task.id));
            lines.extend(lineage_lines(&task.refused));
            lines.push("    a task's id, environment and org are fixed: add a new task (new file, new id) for the other org, and remove this one to archive it".into());
        }
        Action::Unchanged => {}
    }
    if !task.would_forget.is_empty() && task.action != Action::Archive {
        let list: Vec<String> = task
            .would_forget
            .iter()
            .map(|(id, time)| format!("{} ({time})", &id[..id.len().min(12)]))
            .collect();
        lines.push(format!(
            "    retention would forget {} snapshot(s): {}",
            list.len(),
            list.join(", ")
        ));
    }
    lines
}

fn state_line(plan: &Plan) -> Option<String> {
    let mut notes = Vec::new();
    for task in &plan.tasks {
        if task.action == Action::Archive {
            continue;
        }
        if task.suspended {
            notes.push(format!("{} suspended", task.id));
        } else if task.connected == Some(false) {
            notes.push(format!(
                "{} Disconnected ({})",
                task.id,
                task.disconnected_reason.as_deref().unwrap_or("unknown")
            ));
        } else if task.due {
            notes.push(format!("{} due", task.id));
        }
    }
    (!notes.is_empty()).then(|| format!("Tasks: {}.", notes.join(", ")))
}

fn summary(plan: &Plan) -> String {
    if !plan.has_changes() && !plan.refused() {
        return "No changes. The manifests match what is recorded.".into();
    }
    let mut text = format!(
        "Plan: {} to create, {} to update, {} to archive",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Archive)
    );
    let refused = plan.count(Action::Refused) + usize::from(!plan.repository_refused.is_empty());
    if refused > 0 {
        let _ = write!(text, ", {refused} refused");
    }
    text.push('.');
    text
}

fn body_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    if !plan.repository_refused.is_empty() {
        lines.push("! refused cairn.yaml".into());
        lines.extend(lineage_lines(&plan.repository_refused));
        lines.push("    the store and its key are fixed for a config repository: existing snapshots would become unreadable; copy to a new store instead".into());
    }
    for task in &plan.tasks {
        lines.extend(task_lines(task));
    }
    lines
}

pub fn text(plan: &Plan) -> String {
    let mut out = format!("cairn plan: base {} -> {}\n\n", plan.base, plan.head);
    let lines = body_lines(plan);
    for line in &lines {
        out.push_str(line);
        out.push('\n');
    }
    if !lines.is_empty() {
        out.push('\n');
    }
    if let Some(line) = state_line(plan) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

/// One or more comment bodies, each under [`COMMENT_LIMIT`], each carrying the marker.
pub fn markdown(plan: &Plan) -> Vec<String> {
    let head = format!("{MARKER}\n### cairn plan\n\n**{}**\n\n", summary(plan));
    let mut sections: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let block = |lines: &[String]| format!("```diff\n{}\n```\n", lines.join("\n"));
    for line in body_lines(plan) {
        let starts_task = !line.starts_with(' ');
        let size: usize = current.iter().map(|l| l.len() + 1).sum::<usize>() + line.len();
        if starts_task && size > COMMENT_LIMIT / 2 && !current.is_empty() {
            sections.push(block(&current));
            current.clear();
        }
        // A single line longer than a comment is cut, not dropped.
        let mut line = line;
        if line.len() > COMMENT_LIMIT / 2 {
            let mut cut = COMMENT_LIMIT / 2;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" …");
        }
        current.push(line);
    }
    if !current.is_empty() {
        sections.push(block(&current));
    }
    let footer = state_line(plan)
        .map(|l| format!("\n{l}\n"))
        .unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    let mut part = head.clone();
    for section in sections {
        let wrapped =
            format!("<details open><summary>Changes</summary>\n\n{section}\n</details>\n");
        if part.len() + wrapped.len() + footer.len() > COMMENT_LIMIT && part.len() > head.len() {
            parts.push(part);
            part = head.clone();
        }
        part.push_str(&wrapped);
    }
    part.push_str(&footer);
    parts.push(part);
    let total = parts.len();
    if total > 1 {
        for (i, part) in parts.iter_mut().enumerate() {
            part.insert_str(
                MARKER.len(),
                &format!("\n<!-- cairn-plan part {}/{total} -->", i + 1),
            );
        }
    }
    parts
}

pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

/// `{"include":[{"task":"a"},...]}` for `strategy.matrix`; an empty list when nothing is due.
pub fn matrix(plan: &Plan) -> String {
    let include: Vec<Value> = plan
        .due()
        .into_iter()
        .map(|id| serde_json::json!({ "task": id }))
        .collect();
    serde_json::json!({ "include": include }).to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FieldChange;

    fn task(n: usize) -> TaskPlan {
        TaskPlan {
            id: format!("task-{n:05}"),
            name: format!("Task {n}"),
            action: Action::Update,
            changes: vec![FieldChange {
                field: "objects.exclude".into(),
                before: Value::Null,
                after: Value::String("x".repeat(200)),
            }],
            refused: Vec::new(),
            due: n.is_multiple_of(2),
            suspended: false,
            connected: Some(true),
            disconnected_reason: None,
            would_forget: Vec::new(),
            archive_days: None,
        }
    }

    #[test]
    fn a_long_plan_is_split_into_marked_comments_under_the_limit() {
        let plan = Plan {
            base: "abc".into(),
            head: "work tree".into(),
            tasks: (0..2000).map(task).collect(),
            repository_refused: Vec::new(),
        };
        let parts = markdown(&plan);
        assert!(parts.len() > 5, "{} parts", parts.len());
        for part in &parts {
            assert!(part.len() <= COMMENT_LIMIT, "{}", part.len());
            assert!(part.starts_with(MARKER));
        }
        let updated: std::collections::BTreeSet<&str> = parts
            .iter()
            .flat_map(|p| p.lines())
            .filter_map(|l| l.strip_prefix("~ update "))
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(updated.len(), 2000, "every task in exactly one part");
        assert!(parts[0].contains(&format!("part 1/{}", parts.len())));
    }

    #[test]
    fn a_short_plan_is_one_comment_and_the_matrix_lists_due_tasks() {
        let plan = Plan {
            base: "abc".into(),
            head: "work tree".into(),
            tasks: (0..3).map(task).collect(),
            repository_refused: Vec::new(),
        };
        assert_eq!(markdown(&plan).len(), 1);
        assert_eq!(
            matrix(&plan),
            "{\"include\":[{\"task\":\"task-00000\"},{\"task\":\"task-00002\"}]}\n"
        );
    }
}
