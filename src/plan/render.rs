//! A plan as text (Terraform's grammar), a pull-request comment (Markdown with a hidden marker,
//! split below GitHub's comment limit), JSON, or a GitHub Actions matrix of the due tasks.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::text::floor_char_boundary;

use serde_json::Value;

use super::{Action, Plan, TaskPlan};

/// The hidden marker a workflow finds its own comment by, to update it in place.
pub(crate) const MARKER: &str = "<!-- cairn-plan -->";
/// GitHub refuses comments longer than 65,536 characters; parts stay well below.
pub(crate) const COMMENT_LIMIT: usize = 60_000;

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

/// What a changed include/exclude does to the backup, judged from the last recorded coverage.
fn coverage_lines(coverage: &super::CoverageForecast) -> Vec<String> {
    let mut lines = Vec::new();
    if !coverage.adds.is_empty() {
        lines.push(format!(
            "    + backs up from now on: {}",
            coverage.adds.join(", ")
        ));
    }
    if !coverage.drops.is_empty() {
        lines.push(format!(
            "    - no longer backs up: {} (their records stay in earlier snapshots; not counted as deleted)",
            coverage.drops.join(", ")
        ));
    }
    for (pattern, close) in &coverage.unmatched {
        lines.push(match close {
            Some(close) => format!(
                "    ! objects.include `{pattern}` matches no object of the org; did you mean `{close}`?"
            ),
            None => format!("    ! objects.include `{pattern}` matches no object of the org"),
        });
    }
    if lines.is_empty() {
        lines.push("    the objects backed up stay the same".into());
    }
    lines
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
            if let Some(coverage) = &task.coverage {
                lines.extend(coverage_lines(coverage));
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
        Action::Purge => {
            lines.push(format!("- purge {}{name}", task.id));
            lines.push("    archived, and its retention.autoArchivedDays have passed: apply removes its snapshots from the store (`cairn prune` then frees the space)".into());
        }
        Action::Refused => {
            lines.push(format!("! refused {}{name}", task.id));
            lines.extend(lineage_lines(&task.refused));
            lines.push("    a task's id, environment and org are fixed: add a new task (new file, new id) for the other org, and remove this one to archive it".into());
        }
        Action::Unchanged => {}
    }
    if !task.would_forget.is_empty() && !matches!(task.action, Action::Archive | Action::Purge) {
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
        if matches!(task.action, Action::Archive | Action::Purge) {
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
    let purged = plan.count(Action::Purge);
    if purged > 0 {
        let _ = write!(text, ", {purged} to purge");
    }
    let refused = plan.count(Action::Refused) + usize::from(!plan.repository_refused.is_empty());
    if refused > 0 {
        let _ = write!(text, ", {refused} refused");
    }
    let unrunnable = plan.restores.iter().filter(|r| r.problem.is_some()).count();
    if unrunnable > 0 {
        let _ = write!(text, ", {unrunnable} restore(s) that cannot run");
    }
    let restores = plan.pending_restores() - unrunnable;
    if restores > 0 {
        let _ = write!(text, ", {restores} restore(s) to carry out");
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
    for restore in &plan.restores {
        lines.extend(super::restores::lines(restore));
    }
    lines
}

pub(crate) fn text(plan: &Plan) -> String {
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

/// The pull-request comment's template: built in, or the config repository's own
/// `templates/plan-comment.md.j2`. Its context (stable; add, never rename):
///
/// ```text
/// summary    "Plan: 1 to create, 0 to update, 0 to archive."
/// base, head the revisions compared
/// changes    whether anything changes;  refused  whether anything is refused
/// tasks      [ { id, name, action (create|update|archive|refused|unchanged), changes and
///              refused [ {field, before, after} ], due, suspended, connected,
///              disconnectedReason, wouldForget [ [snapshot, time] ], archiveDays } ]
/// sections   this comment's share of the plan, as `diff`-style text blocks
/// part       { number, total }: long plans are split over several comments
/// state      "Tasks: acme due, beta suspended." or none
/// ```
use crate::templates::COMMENT_TEMPLATE;

#[derive(Serialize)]
struct CommentContext<'a> {
    summary: String,
    base: &'a str,
    head: &'a str,
    changes: bool,
    refused: bool,
    tasks: &'a [TaskPlan],
    sections: Vec<String>,
    part: Part,
    state: Option<String>,
}

#[derive(Serialize)]
struct Part {
    number: usize,
    total: usize,
}

impl<'a> CommentContext<'a> {
    fn new(plan: &'a Plan, sections: Vec<String>, number: usize, total: usize) -> Self {
        CommentContext {
            summary: summary(plan),
            base: &plan.base,
            head: &plan.head,
            changes: plan.has_changes(),
            refused: plan.refused(),
            tasks: &plan.tasks,
            sections,
            part: Part { number, total },
            state: state_line(plan),
        }
    }
}

/// The plan's lines in blocks of at most half a comment, breaking only between tasks (a
/// single overlong line is cut, not dropped).
fn sections(plan: &Plan) -> Vec<String> {
    let mut sections: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for mut line in body_lines(plan) {
        let starts_task = !line.starts_with(' ');
        let size: usize = current.iter().map(|l| l.len() + 1).sum::<usize>() + line.len();
        if starts_task && size > COMMENT_LIMIT / 2 && !current.is_empty() {
            sections.push(current.join("\n"));
            current.clear();
        }
        if line.len() > COMMENT_LIMIT / 2 {
            line.truncate(floor_char_boundary(&line, COMMENT_LIMIT / 2));
            line.push_str(" …");
        }
        current.push(line);
    }
    if !current.is_empty() {
        sections.push(current.join("\n"));
    }
    sections
}

/// The comment context of a sample plan: what `templates::COMMENT_SAMPLE` holds (`cairn
/// validate` checks the config repository's own comment template against it).
#[cfg(test)]
fn sample_comment_context() -> serde_json::Value {
    let task = |id: &str, action: Action| TaskPlan {
        id: id.into(),
        name: format!("Acme {id}"),
        action,
        changes: vec![super::FieldChange {
            field: "schedule".into(),
            before: Value::String("0 3 * * *".into()),
            after: Value::String("0 2 * * *".into()),
        }],
        refused: Vec::new(),
        due: true,
        suspended: false,
        connected: Some(true),
        disconnected_reason: None,
        would_forget: vec![("0123456789abcdef".into(), "2026-01-31T03:04:05.000Z".into())],
        archive_days: Some(30),
        coverage: None,
    };
    let plan = Plan {
        base: "main".into(),
        head: "work tree".into(),
        tasks: vec![
            task("production", Action::Update),
            task("sandbox", Action::Create),
        ],
        repository_refused: Vec::new(),
        restores: Vec::new(),
    };
    let context = CommentContext::new(&plan, sections(&plan), 1, 1);
    serde_json::to_value(&context).unwrap_or_default()
}

/// One or more comment bodies rendered through the comment template, each under
/// [`COMMENT_LIMIT`], each starting with the marker.
pub(crate) fn markdown(plan: &Plan, config_dir: &Path) -> Result<Vec<String>, String> {
    // Room for the template's own text around the sections.
    const FRAME: usize = 2_000;
    let mut groups: Vec<Vec<String>> = vec![Vec::new()];
    let mut used = 0;
    for section in sections(plan) {
        if used + section.len() + FRAME > COMMENT_LIMIT && used > 0 {
            groups.push(Vec::new());
            used = 0;
        }
        used += section.len();
        if let Some(group) = groups.last_mut() {
            group.push(section);
        }
    }
    let total = groups.len();
    let mut parts = Vec::with_capacity(total);
    for (i, sections) in groups.into_iter().enumerate() {
        let context = CommentContext::new(plan, sections, i + 1, total);
        let mut body = crate::templates::render(config_dir, COMMENT_TEMPLATE, &context)?;
        if !body.ends_with('\n') {
            body.push('\n');
        }
        if body.len() > COMMENT_LIMIT {
            body.truncate(floor_char_boundary(&body, COMMENT_LIMIT - 100));
            body.push_str("\n\n… (cut: the comment limit was reached)\n");
        }
        // The marker is cairn's, not the template's: workflows find their comment by it.
        let marker = if total > 1 {
            format!("{MARKER}\n<!-- cairn-plan part {}/{total} -->\n", i + 1)
        } else {
            format!("{MARKER}\n")
        };
        parts.push(marker + &body);
    }
    Ok(parts)
}

pub(crate) fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

/// `{"include":[{"task":"a"},...]}` for `strategy.matrix`; an empty list when nothing is due.
pub(crate) fn matrix(plan: &Plan) -> String {
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

    /// The sample the template check renders comment templates against
    /// (`templates::COMMENT_SAMPLE`) has the shape of the real context.
    #[test]
    fn the_template_sample_is_a_comment_context() {
        let real = sample_comment_context();
        let sample: Value =
            serde_json::from_str(crate::templates::COMMENT_SAMPLE).expect("sample JSON");
        assert_eq!(
            sample,
            real,
            "{}",
            serde_json::to_string_pretty(&real).unwrap_or_default()
        );
    }

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
            coverage: None,
        }
    }

    #[test]
    fn a_long_plan_is_split_into_marked_comments_under_the_limit() {
        let plan = Plan {
            base: "abc".into(),
            head: "work tree".into(),
            tasks: (0..2000).map(task).collect(),
            repository_refused: Vec::new(),
            restores: Vec::new(),
        };
        let parts = markdown(&plan, Path::new("/no/config")).expect("renders");
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
            restores: Vec::new(),
        };
        let parts = markdown(&plan, Path::new("/no/config")).expect("renders");
        assert_eq!(parts.len(), 1);
        assert!(
            parts[0].starts_with(&format!(
                "{MARKER}\n### cairn plan\n\n**Plan: 0 to create, 3 to update, 0 to archive.**\n\n<details open><summary>Changes</summary>\n\n```diff\n~ update task-00000  \"Task 0\"\n"
            )),
            "{}",
            parts[0]
        );
        assert!(
            parts[0].ends_with("```\n\n</details>\n\nTasks: task-00000 due, task-00002 due.\n"),
            "{}",
            parts[0]
        );
        assert_eq!(
            matrix(&plan),
            "{\"include\":[{\"task\":\"task-00000\"},{\"task\":\"task-00002\"}]}\n"
        );
    }

    #[test]
    fn the_config_repository_can_word_the_comment_its_own_way() {
        let config = tempfile::tempdir().expect("dir");
        std::fs::create_dir(config.path().join("templates")).expect("templates");
        std::fs::write(
            config.path().join("templates").join(COMMENT_TEMPLATE),
            "Backup policy change ({{ part.number }}/{{ part.total }}): {{ summary }}\n{% for t in tasks %}- {{ t.action }} {{ t.id }}{% if t.due %} (due){% endif %}\n{% endfor %}",
        )
        .expect("template");
        let plan = Plan {
            base: "abc".into(),
            head: "work tree".into(),
            tasks: (0..2).map(task).collect(),
            repository_refused: Vec::new(),
            restores: Vec::new(),
        };
        let parts = markdown(&plan, config.path()).expect("renders");
        assert_eq!(
            parts,
            vec![format!(
                "{MARKER}\nBackup policy change (1/1): Plan: 0 to create, 2 to update, 0 to archive.\n- update task-00000 (due)\n- update task-00001\n"
            )]
        );
        std::fs::write(
            config.path().join("templates").join(COMMENT_TEMPLATE),
            "line one\n{{ nothing_like_this }}\n",
        )
        .expect("template");
        let error = markdown(&plan, config.path()).expect_err("undefined variable");
        assert!(
            error.starts_with("templates/plan-comment.md.j2:2: "),
            "{error}"
        );
    }
}
