//! `source/full-api-budget` (warning): letting backups use the whole daily API allocation can
//! starve the org's other integrations.

use serde_json::Value;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "source/full-api-budget";
const POINTER: &str = "/source/apiUsageLimitPercent";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files.iter().filter(|f| f.kind == ManifestKind::Task) {
        if file.get(POINTER).and_then(Value::as_i64) == Some(100) {
            out.push(
                file.warning(RULE, "backups may use the org's whole daily API allocation")
                    .at(file.value_span(POINTER))
                    .pointer(POINTER)
                    .label("100% leaves nothing for other integrations")
                    .help("a backup that reaches the limit blocks every other API client of the org until the next day; 75 (the default) or less keeps headroom"),
            );
        }
    }
}
