//! `template/render`: a notification's template does not render: a syntax error, or a variable
//! the context does not have. Checked against a sample context, before any run needs it.

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;
use crate::notify::{NotificationContext, render_source};
use crate::plan::render::{COMMENT_TEMPLATE, render_sample_comment};

const RULE: &str = "template/render";

pub fn check(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    check_plan_comment(files, context, out);
    let sample = NotificationContext::sample();
    for file in files {
        let notifications = format!("{}/notifications", file.settings_pointer());
        for (item, _) in list_items(file, &notifications) {
            let pointer = format!("{item}/template");
            let Some(template) = file.str_at(&pointer) else {
                continue;
            };
            let Some(source) = context.template_sources.get(template) else {
                continue; // template/missing says so
            };
            if let Err(problem) = render_source(template, source, &sample) {
                out.push(
                    file.error(RULE, format!("template `{template}` does not render"))
                        .at(file.value_span(&pointer))
                        .pointer(pointer)
                        .label(problem)
                        .help("templates see: event, outcome, task {id, name, environment}, run {finished_at, snapshot, api_calls, records, message}, alerts [{object, reason}], connection {connected, reason}"),
                );
            }
        }
    }
}

/// The repository's own pull-request comment template, which no manifest names: reported on
/// cairn.yaml.
fn check_plan_comment(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    let Some(source) = context.template_sources.get(COMMENT_TEMPLATE) else {
        return;
    };
    let Err(problem) = render_sample_comment(source) else {
        return;
    };
    let Some(repository) = files
        .iter()
        .find(|file| file.kind == ManifestKind::Repository)
    else {
        return;
    };
    out.push(
        repository
            .error(RULE, format!("template `{COMMENT_TEMPLATE}` does not render"))
            .at(repository.value_span("/kind"))
            .pointer("/kind".to_string())
            .label(problem)
            .help("the plan comment template sees: summary, base, head, changes, refused, tasks [{id, name, action, changes, refused, due, suspended, connected, disconnectedReason, wouldForget, archiveDays}], sections, part {number, total}, state"),
    );
}
