//! `alert/no-threshold`: an alert with no threshold can never fire.

use serde_json::Value;

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;

const RULE: &str = "alert/no-threshold";
const THRESHOLDS: [&str; 7] = [
    "deletedPercent",
    "deletedCount",
    "modifiedPercent",
    "modifiedCount",
    "componentsAdded",
    "componentsChanged",
    "componentsDeleted",
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
                        .label(if alert.contains_key("metadata") {
                            "no componentsAdded, componentsChanged or componentsDeleted"
                        } else {
                            "no deletedPercent, deletedCount, modifiedPercent or modifiedCount"
                        })
                        .help(if alert.contains_key("metadata") {
                            "add a threshold, such as `componentsChanged: 0` (any change), or remove the alert"
                        } else {
                            "add a threshold, such as `deletedPercent: 5`, or remove the alert"
                        }),
                );
            }
        }
    }
}
