//! `object/name-syntax`: object patterns must be Salesforce API names or globs of them, so a
//! typo such as a label (`Sales Order`) is caught before a backup silently skips it.

use serde_json::Value;

use super::{ManifestFile, RuleContext, list_items};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "object/name-syntax";

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let mut patterns = Vec::new();
        if file.kind == ManifestKind::Task {
            patterns.extend(list_items(file, "/objects/include"));
            patterns.extend(list_items(file, "/objects/exclude"));
        }
        let alerts = format!("{}/alerts", file.settings_pointer());
        for (item, _) in list_items(file, &alerts) {
            let pointer = format!("{item}/object");
            if let Some(value) = file.get(&pointer) {
                patterns.push((pointer, value));
            }
        }
        for (pointer, value) in patterns {
            let Value::String(pattern) = value else {
                continue;
            };
            if let Err(problem) = check_pattern(pattern) {
                out.push(
                    file.error(RULE, "not a valid object API name or pattern")
                        .at(file.value_span(&pointer))
                        .pointer(pointer)
                        .label(problem)
                        .help("use API names such as `Account` or `Invoice__c` (Setup > Object Manager shows them), with `*` and `?` as wildcards"),
                );
            }
        }
    }
}

/// API names: letters, digits and underscores, starting with a letter, no trailing or tripled
/// underscore, `__` only before a suffix or after a namespace.
pub(super) fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.contains(char::is_whitespace) {
        return Err("API names have no spaces; this looks like a label".to_string());
    }
    if let Some(bad) = pattern
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?')))
    {
        return Err(format!("`{bad}` cannot appear in an API name"));
    }
    let first = pattern.chars().next().unwrap_or('_');
    if !(first.is_ascii_alphabetic() || first == '*' || first == '?') {
        return Err("an API name starts with a letter".to_string());
    }
    if pattern.contains("___") {
        return Err("an API name never has three underscores in a row".to_string());
    }
    if pattern.ends_with('_') {
        return Err("an API name does not end with an underscore".to_string());
    }
    if pattern.matches("__").count() > 2 {
        return Err("too many `__` separators".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_pattern;

    #[test]
    fn api_names_and_globs() {
        for ok in [
            "Account",
            "*",
            "*__c",
            "ns__Invoice__c",
            "Account?",
            "*History",
        ] {
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "Sales Order",
            "Account.Name",
            "1Account",
            "Bad___c",
            "Invoice_",
            "a__b__c__d",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
