//! Templates: the built-in minijinja templates, rendering with a step limit, and the contract
//! each kind of template is checked against before any run needs it. Below notify, plan and
//! manifest, which all render or check templates; it knows their contexts only as the sample
//! data in `samples/` (notify and plan test that their real contexts have the same shape).

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The pull-request comment `cairn plan --format github` posts.
pub(crate) const COMMENT_TEMPLATE: &str = "plan-comment.md.j2";

pub(crate) const BUILTIN: [(&str, &str); 6] = [
    (
        "run-summary.md.j2",
        include_str!("builtin/run-summary.md.j2"),
    ),
    ("failure.md.j2", include_str!("builtin/failure.md.j2")),
    (
        "disconnected.md.j2",
        include_str!("builtin/disconnected.md.j2"),
    ),
    ("alert.md.j2", include_str!("builtin/alert.md.j2")),
    ("archived.md.j2", include_str!("builtin/archived.md.j2")),
    (COMMENT_TEMPLATE, include_str!("builtin/plan-comment.md.j2")),
];

/// What a notification template sees, filled in (`notify::NotificationContext`).
pub(crate) const NOTIFICATION_SAMPLE: &str = include_str!("samples/notification.json");
/// What the plan comment template sees, filled in (`plan::render`'s comment context).
pub(crate) const COMMENT_SAMPLE: &str = include_str!("samples/plan-comment.json");

pub(crate) const NOTIFICATION_CONTEXT: &str = "templates see: event, outcome, task {id, name, environment}, run {finished_at, snapshot, api_calls, records, message}, alerts [{object, reason}], connection {connected, reason}";
pub(crate) const COMMENT_CONTEXT: &str = "the plan comment template sees: summary, base, head, changes, refused, tasks [{id, name, action, changes, refused, due, suspended, connected, disconnectedReason, wouldForget, archiveDays}], sections, part {number, total}, state";

/// Template steps one rendering may take: far more than any report needs, and reached in well
/// under a second by a runaway loop, so a template can never hang validate, plan or apply.
pub(crate) const TEMPLATE_FUEL: u64 = 5_000_000;

/// Renders a template: the config repository's `templates/<name>` when it exists, else the
/// built-in one. Undefined variables are errors.
pub(crate) fn render(
    config_dir: &Path,
    name: &str,
    context: &impl Serialize,
) -> Result<String, String> {
    let own = config_dir.join("templates").join(name);
    let source = match std::fs::read_to_string(&own) {
        Ok(text) => text,
        Err(_) => BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| format!("no template {name} in templates/ nor built in"))?,
    };
    render_source(name, &source, context)
}

pub(crate) fn render_source(
    name: &str,
    source: &str,
    context: &impl Serialize,
) -> Result<String, String> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_fuel(Some(TEMPLATE_FUEL));
    // Names the undefined expression in errors; minijinja otherwise does so only in debug
    // builds, and users run release ones.
    environment.set_debug(true);
    environment
        .add_template(name, source)
        .map_err(|e| describe(&e))?;
    let template = environment.get_template(name).map_err(|e| describe(&e))?;
    template
        .render(minijinja::value::Serde(context))
        .map_err(|e| describe(&e))
}

/// Whether a template of this name renders against its sample context; the problem and what
/// the template may use when it does not.
pub(crate) fn check(name: &str, source: &str) -> Result<(), (String, &'static str)> {
    let (sample, help) = if name == COMMENT_TEMPLATE {
        (COMMENT_SAMPLE, COMMENT_CONTEXT)
    } else {
        (NOTIFICATION_SAMPLE, NOTIFICATION_CONTEXT)
    };
    let context: serde_json::Value =
        serde_json::from_str(sample).map_err(|e| (format!("the sample context: {e}"), help))?;
    render_source(name, source, &context)
        .map(|_| ())
        .map_err(|problem| (problem, help))
}

/// A minijinja error with where it happened (`name:line`).
fn describe(error: &minijinja::Error) -> String {
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "templates/{}: rendering stopped after {TEMPLATE_FUEL} steps: a loop in the template runs away (nested loops over large ranges?); make it do less",
            error.name().unwrap_or("?")
        );
    }
    match (error.name(), error.line()) {
        (Some(name), Some(line)) => format!(
            "templates/{name}:{line}: {}",
            error.detail().unwrap_or(&error.to_string())
        ),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// A runaway template stops with a clear error instead of hanging the command.
    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let source =
                "{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}";
            let _ = sender.send(super::render_source("report.md.j2", source, &()));
        });
        let rendered = receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the rendering stopped");
        let problem = rendered.expect_err("out of fuel");
        assert!(
            problem.starts_with("templates/report.md.j2: rendering stopped after"),
            "{problem}"
        );
    }

    /// Every built-in template renders against its own sample.
    #[test]
    fn the_built_in_templates_render_against_their_samples() {
        for (name, source) in super::BUILTIN {
            assert_eq!(super::check(name, source), Ok(()), "{name}");
        }
    }
}
