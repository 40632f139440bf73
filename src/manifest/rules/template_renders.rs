//! `template/render`: a template does not render: a syntax error, or a variable the context
//! does not have. Checked against a sample context, before any run needs it: the templates
//! manifests name, and the repository's own versions of the built-in ones.

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;
use crate::templates::BUILTIN;

const RULE: &str = "template/render";

pub(super) fn check(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    check_overrides(files, context, out);
    for file in files {
        for (pointer, template) in named_templates(file) {
            let Some(source) = context.template_sources.get(template) else {
                continue; // template/missing says so
            };
            if let Err((problem, help)) = crate::templates::check(template, source) {
                out.push(
                    file.error(RULE, format!("template `{template}` does not render"))
                        .at(file.value_span(&pointer))
                        .pointer(pointer)
                        .label(problem)
                        .help(help),
                );
            }
        }
    }
}

/// The templates a manifest's notifications name, with the pointer to each `template`.
fn named_templates(file: &ManifestFile) -> Vec<(String, &str)> {
    let notifications = format!("{}/notifications", file.settings_pointer());
    list_items(file, &notifications)
        .into_iter()
        .filter_map(|(item, _)| {
            let pointer = format!("{item}/template");
            let name = file.str_at(&pointer)?;
            Some((pointer, name))
        })
        .collect()
}

/// The repository's own versions of built-in templates (the plan comment, or a notification
/// template used by default), which no manifest names: reported on cairn.yaml.
fn check_overrides(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    let Some(repository) = files
        .iter()
        .find(|file| file.kind == ManifestKind::Repository)
    else {
        return;
    };
    let named: Vec<&str> = files
        .iter()
        .flat_map(|file| named_templates(file).into_iter().map(|(_, name)| name))
        .collect();
    for (name, _) in BUILTIN {
        let Some(source) = context.template_sources.get(name) else {
            continue;
        };
        // A template a manifest names is reported there.
        if named.contains(&name) {
            continue;
        }
        if let Err((problem, help)) = crate::templates::check(name, source) {
            out.push(
                repository
                    .error(RULE, format!("template `{name}` does not render"))
                    .at(repository.value_span("/kind"))
                    .pointer("/kind".to_string())
                    .label(problem)
                    .help(help),
            );
        }
    }
}
