//! `template/missing`: a notification names a template file that the repository does not have.

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;
use crate::text::suggest::did_you_mean;

const RULE: &str = "template/missing";

pub(super) fn check(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let notifications = format!("{}/notifications", file.settings_pointer());
        for (item, _) in list_items(file, &notifications) {
            let pointer = format!("{item}/template");
            let Some(template) = file.str_at(&pointer) else {
                continue;
            };
            if context.templates.iter().any(|t| t == template) {
                continue;
            }
            let label = match did_you_mean(template, context.templates.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "no such file".to_string(),
            };
            let help = if context.templates.is_empty() {
                format!(
                    "{} has no templates; add the file there, or remove `template` to use the built-in one",
                    context.templates_display
                )
            } else {
                format!(
                    "templates in {}: {}",
                    context.templates_display,
                    context.templates.join(", ")
                )
            };
            out.push(
                file.error(
                    RULE,
                    format!(
                        "template `{template}` does not exist in {}",
                        context.templates_display
                    ),
                )
                .at(file.value_span(&pointer))
                .pointer(pointer)
                .label(label)
                .help(help),
            );
        }
    }
}
