//! `task/duplicate-id`: two task files with one id would write the same snapshots and state;
//! `restore/duplicate-id`: two restore files with one id would share one record of having run,
//! so the second would never run.

use std::collections::HashMap;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const TASK_RULE: &str = "task/duplicate-id";
const RESTORE_RULE: &str = "restore/duplicate-id";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for (kind, rule, word) in [
        (ManifestKind::Task, TASK_RULE, "task"),
        (ManifestKind::Restore, RESTORE_RULE, "restore"),
    ] {
        let mut first_seen: HashMap<&str, &ManifestFile> = HashMap::new();
        for file in files.iter().filter(|f| f.kind == kind) {
            let Some(id) = file.str_at("/id") else {
                continue;
            };
            let Some(first) = first_seen.get(id) else {
                first_seen.insert(id, file);
                continue;
            };
            let first_at = first
                .value_span("/id")
                .map(|s| format!("{}:{}:{}", first.display, s.start.line, s.start.col + 1))
                .unwrap_or_else(|| first.display.clone());
            out.push(
                file.error(
                    rule,
                    format!("{word} id `{id}` is already used by {}", first.display),
                )
                .at(file.value_span("/id"))
                .pointer("/id")
                .label("duplicate id")
                .help(format!(
                    "every {word} needs its own id (the first is at {first_at}); give this {word} a new id, or delete one of the files"
                )),
            );
        }
    }
}
