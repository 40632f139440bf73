//! `alert/no-threshold`: an alert with no threshold can never fire.

use serde_json::Value;

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;

const RULE: &str = "alert/no-threshold";
const THRESHOLDS: [&str; 4] = [
    "deletedPercent",
    "deletedCount",
    "modifiedPercent",
    "modifiedCount",
];

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let alerts = format!("{}/alerts", file.settings_pointer());
        for (pointer, alert) in list_items(file, &alerts) {
            let Value::Object(alert) = alert else {
                continue;
            };
            let has_threshold = THRESHOLDS
                .iter()
                .any(|t| alert.get(*t).is_some_and(|v| !v.is_null()));
            if !has_threshold {
                out.push(
                    file.error(RULE, "this alert has no threshold, so it never fires")
                        .at(file
                            .value_span(&pointer)
                            .map(|s| crate::manifest::span::Span::point(s.start)))
                        .pointer(pointer)
                        .label("no deletedPercent, deletedCount, modifiedPercent or modifiedCount")
                        .help("add a threshold, such as `deletedPercent: 5`, or remove the alert"),
                );
            }
        }
    }
}
