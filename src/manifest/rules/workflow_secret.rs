//! `workflow/unmapped-secret` (warning): a manifest names an environment variable that no
//! workflow step running `cairn apply` is given, so the scheduled run cannot read it. GitHub
//! passes a secret to a step only through that step's (or its job's) `env`.

use std::collections::BTreeSet;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;
use crate::manifest::workflows::named_variables;

const RULE: &str = "workflow/unmapped-secret";

pub(super) fn check(files: &[ManifestFile], context: &RuleContext, out: &mut Vec<Diagnostic>) {
    let applying: Vec<&crate::manifest::workflows::Workflow> =
        context.workflows.iter().filter(|w| w.runs_apply).collect();
    if applying.is_empty() {
        return;
    }
    let mapped: BTreeSet<&str> = applying
        .iter()
        .flat_map(|w| w.mapped.iter().map(String::as_str))
        .collect();
    let names: Vec<&str> = applying.iter().map(|w| w.rel.as_str()).collect();
    let where_ = names.join(", ");
    let unmapped = |file: &ManifestFile,
                    pointer: &str,
                    variable: &str,
                    out: &mut Vec<Diagnostic>| {
        out.push(
            file.warning(
                RULE,
                format!("`{variable}` is not given to `cairn apply` by any workflow"),
            )
            .at(file.value_span(pointer).or_else(|| file.key_span(pointer)))
            .pointer(pointer)
            .label(format!("no step of {where_} maps it"))
            .help(format!(
                "add `{variable}: ${{{{ secrets.{variable} }}}}` to the `env:` of the step that runs cairn apply, and the secret to the repository (Settings > Secrets and variables > Actions); without it the scheduled backup fails"
            )),
        );
    };
    for file in files {
        match file.kind {
            ManifestKind::Task => {
                for (pointer, variable) in named_variables(&file.doc.value) {
                    if !mapped.contains(variable.as_str()) {
                        unmapped(file, &pointer, &variable, out);
                    }
                }
            }
            // A restore names tasks, whose secrets are checked in their own files.
            ManifestKind::Restore => {}
            ManifestKind::Repository => {
                let named = |pointer: &str, default: &'static str| {
                    file.str_at(pointer).unwrap_or(default).to_string()
                };
                let key = named("/encryption/keyEnv", "CAIRN_KEY");
                let passphrase = named("/encryption/passphraseEnv", "CAIRN_PASSPHRASE");
                if !mapped.contains(key.as_str()) && !mapped.contains(passphrase.as_str()) {
                    let pointer = if file.get("/encryption/keyEnv").is_some() {
                        "/encryption/keyEnv"
                    } else if file.get("/encryption").is_some() {
                        "/encryption"
                    } else {
                        "/kind"
                    };
                    unmapped(file, pointer, &key, out);
                }
                if file.get("/store/s3").is_some() {
                    for (pointer, default) in [
                        ("/store/s3/accessKeyIdEnv", "AWS_ACCESS_KEY_ID"),
                        ("/store/s3/secretAccessKeyEnv", "AWS_SECRET_ACCESS_KEY"),
                    ] {
                        let variable = named(pointer, default);
                        if !mapped.contains(variable.as_str()) {
                            let at = if file.get(pointer).is_some() {
                                pointer
                            } else {
                                "/store/s3"
                            };
                            unmapped(file, at, &variable, out);
                        }
                    }
                }
            }
        }
    }
}
