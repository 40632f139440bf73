//! `restore/empty-selection`: a restore chooses its records by object, Ids or field values; a
//! `select` that names none of them would choose nothing (or, read loosely, everything).

use serde_json::Value;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "restore/empty-selection";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files.iter().filter(|f| f.kind == ManifestKind::Restore) {
        let Some(Value::Object(select)) = file.get("/select") else {
            continue;
        };
        let chooses = |key: &str| match select.get(key) {
            Some(Value::String(_)) => true,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::Object(fields)) => !fields.is_empty(),
            _ => false,
        };
        if chooses("object") || chooses("ids") || chooses("where") {
            continue;
        }
        out.push(
            file.error(RULE, "`select` chooses no record")
                .at(file.key_span("/select"))
                .pointer("/select")
                .label("nothing named here")
                .help("name an `object` (all of its records), `ids`, or `where` field values, such as `where: {LastName: Okafor}`"),
        );
    }
}
