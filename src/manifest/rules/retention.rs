//! `retention/empty`: a retention policy that keeps nothing would let `forget` delete every
//! snapshot.

use serde_json::Value;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;

const RULE: &str = "retention/empty";
const KEEP_RULES: [&str; 6] = [
    "keepLast",
    "keepHourly",
    "keepDaily",
    "keepWeekly",
    "keepMonthly",
    "keepYearly",
];

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let pointer = format!("{}/retention", file.settings_pointer());
        let Some(Value::Object(retention)) = file.get(&pointer) else {
            continue;
        };
        let keeps = KEEP_RULES.iter().any(|rule| match retention.get(*rule) {
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            // A wrong type or a negative number is the schema's to report; don't pile on.
            Some(_) => true,
            None => false,
        });
        if !keeps {
            out.push(
                file.error(RULE, "`retention` keeps no snapshots")
                    .at(file.key_span(&pointer))
                    .pointer(pointer)
                    .label("every keep rule is 0 or missing")
                    .help("set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly above 0, or remove `retention` to use the default policy"),
            );
        }
    }
}
