//! `restore/unknown-task`: a restore's `task` (whose snapshot it reads) and `target` (whose org it
//! writes) must be tasks of this repository: apply could neither find the snapshot nor connect.

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;
use crate::text::suggest::did_you_mean;

const RULE: &str = "restore/unknown-task";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    let tasks: Vec<&str> = files
        .iter()
        .filter(|f| f.kind == ManifestKind::Task)
        .filter_map(|f| f.str_at("/id"))
        .collect();
    for file in files.iter().filter(|f| f.kind == ManifestKind::Restore) {
        for pointer in ["/task", "/target"] {
            let Some(named) = file.str_at(pointer) else {
                continue;
            };
            if tasks.contains(&named) {
                continue;
            }
            let label = match did_you_mean(named, tasks.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "no task has this id".to_string(),
            };
            let known = if tasks.is_empty() {
                "this repository has no valid task yet".to_string()
            } else {
                format!("the tasks are: {}", tasks.join(", "))
            };
            out.push(
                file.error(
                    RULE,
                    format!("`{}` names no task of this repository", &pointer[1..]),
                )
                .at(file.value_span(pointer))
                .pointer(pointer)
                .label(label)
                .help(format!("give the `id` of a task in tasks/ ({known})")),
            );
        }
    }
}
