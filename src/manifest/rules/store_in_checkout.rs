//! `store/inside-checkout` (warning): a workflow runs `cairn apply` while the store is a local
//! directory inside the repository. A CI runner's checkout is thrown away after each job (and
//! `git clean`ed on self-hosted runners), so every backup kept there would be lost; apply
//! refuses to run so.

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "store/inside-checkout";
const POINTER: &str = "/store/local/path";

/// Whether a path written in cairn.yaml stays inside the directory it is relative to.
fn stays_inside(path: &str) -> bool {
    if path.starts_with('/') || path.starts_with('~') || path.contains(':') {
        return false;
    }
    let mut depth: i64 = 0;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

pub(super) fn check(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    let Some(workflow) = context.workflows.iter().find(|w| w.runs_apply) else {
        return;
    };
    for file in files.iter().filter(|f| f.kind == ManifestKind::Repository) {
        let Some(path) = file.str_at(POINTER) else {
            continue;
        };
        if !stays_inside(path) {
            continue;
        }
        out.push(
            file.warning(
                RULE,
                format!("{} runs `cairn apply` with the store inside the checkout", workflow.rel),
            )
            .at(file.value_span(POINTER))
            .pointer(POINTER)
            .label("the runner throws this directory away after every job")
            .help("use `store: {git: {}}` (the data lives on the remote's refs/cairn/store; small orgs) or `store: {s3: {bucket: ...}}` (large ones); a local store suits only a self-hosted runner, at a path outside the checkout such as /var/lib/cairn/store"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::stays_inside;

    #[test]
    fn paths_that_leave_the_repository_are_told_apart() {
        for inside in [".cairn/store", "store", "./a/../b", "a/b/.."] {
            assert!(stays_inside(inside), "{inside}");
        }
        for outside in [
            "../store",
            "/var/lib/cairn",
            "~/store",
            "a/../../b",
            "C:\\store",
        ] {
            assert!(!stays_inside(outside), "{outside}");
        }
    }
}
