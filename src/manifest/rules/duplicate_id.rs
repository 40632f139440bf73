//! `task/duplicate-id`: two task files with one id would write the same snapshots and state.

use std::collections::HashMap;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "task/duplicate-id";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    let mut first_seen: HashMap<&str, &ManifestFile> = HashMap::new();
    for file in files.iter().filter(|f| f.kind == ManifestKind::Task) {
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
            file.error(RULE, format!("task id `{id}` is already used by {}", first.display))
                .at(file.value_span("/id"))
                .pointer("/id")
                .label("duplicate id")
                .help(format!(
                    "every task needs its own id (the first is at {first_at}); give this task a new id, or delete one of the files"
                )),
        );
    }
}
