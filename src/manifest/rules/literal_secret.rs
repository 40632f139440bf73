//! `secret/literal`: a token, key or password written into a manifest. Manifests are committed
//! and reviewed in pull requests, so secrets are referenced by environment variable name only.
//! The value is never echoed: the diagnostic says what it looks like, and the snippet masks it.

use serde_json::Value;

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::{Diagnostic, display_path};
use crate::manifest::yaml::escape_token;

pub const RULE: &str = "secret/literal";

/// Key names whose values are secrets when given literally (compared without case or `_`/`-`).
const SECRET_KEY_WORDS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "accesskey",
    "passphrase",
];

pub(super) fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files {
        let mut stack: Vec<(String, Option<&str>, &Value)> =
            vec![(String::new(), None, &file.doc.value)];
        while let Some((pointer, key, value)) = stack.pop() {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        let child = format!("{pointer}/{}", escape_token(k));
                        if let Some(what) = looks_like_secret(k) {
                            out.push(found(file, &child, true, what));
                        }
                        stack.push((child, Some(k.as_str()), v));
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        stack.push((format!("{pointer}/{i}"), None, v));
                    }
                }
                Value::String(text) => {
                    if let Some(what) = classify(key, text) {
                        out.push(found(file, &pointer, false, &what));
                    }
                }
                _ => {}
            }
        }
    }
}

fn found(file: &ManifestFile, pointer: &str, in_key: bool, what: &str) -> Diagnostic {
    let span = if in_key {
        file.doc.spans.key_span(pointer)
    } else {
        file.value_span(pointer)
    };
    file.error(
        RULE,
        format!("`{}` holds {what}", display_path(pointer)),
    )
    .at(span)
    .pointer(pointer)
    .label("secret value, not shown")
    .help("secrets never go in manifests: put it in an environment variable (a CI secret) and give that variable's name in the matching `...Env` key; if this was ever committed, rotate the secret")
}

/// What a string value is, if it is a secret given literally.
fn classify(key: Option<&str>, text: &str) -> Option<String> {
    if let Some(what) = looks_like_secret(text) {
        return Some(what.to_string());
    }
    let key = key?;
    let normal: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    if normal.ends_with("env") {
        // An `...Env` key should name a variable. A long value that is no variable name is the
        // secret itself pasted in the wrong place.
        return (text.chars().count() >= 16 && !is_plausible_variable_name(text)).then(|| {
            "what looks like the secret itself, not the name of an environment variable".to_string()
        });
    }
    if !text.is_empty() && SECRET_KEY_WORDS.iter().any(|w| normal.contains(w)) {
        return Some(format!("a literal `{key}`"));
    }
    None
}

/// An environment variable name as people write them: a letter or `_` first, then letters,
/// digits and `_`, and not mostly digits without any `_` (which is what hex secrets look like).
fn is_plausible_variable_name(text: &str) -> bool {
    let well_formed = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let digit_heavy = !text.contains('_') && text.len() >= 16 && digits * 4 >= text.len();
    well_formed && !digit_heavy
}

/// Recognises the shapes of common credentials. Also used to mask tokens on any source line
/// that a diagnostic quotes.
pub fn looks_like_secret(text: &str) -> Option<&'static str> {
    let text = text.trim();
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if text.len() < 16 {
        return None;
    }
    let token_chars = |s: &str| {
        s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '!' | '/' | '+' | '=')
        })
    };
    if text.starts_with("00D") && text.contains('!') && text.len() >= 40 && token_chars(text) {
        return Some("a Salesforce access token");
    }
    if text.starts_with("5Aep8") && text.len() >= 40 && token_chars(text) {
        return Some("a Salesforce refresh token");
    }
    if text.starts_with("3MVG9") && text.len() >= 60 && token_chars(text) {
        return Some("a connected app consumer key");
    }
    if text.starts_with("eyJ") && text.matches('.').count() == 2 && token_chars(text) {
        return Some("a JSON Web Token");
    }
    if (text.starts_with("AKIA") || text.starts_with("ASIA"))
        && text.len() == 20
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Some("an AWS access key id");
    }
    if ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return Some("a GitHub token");
    }
    if ["xoxb-", "xoxp-", "xoxa-", "xoxs-"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return Some("a Slack token");
    }
    if text.starts_with("https://hooks.slack.com/") {
        return Some("a Slack webhook URL (the URL itself is the credential)");
    }
    if let Some((_, rest)) = text.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Some("a URL with a password in it");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_credentials_by_shape() {
        let cases = [
            (
                "-----BEGIN PRIVATE KEY-----\nMIIE...",
                Some("a private key"),
            ),
            (
                "00D5g000004XyZa!ARcAQBx7dG2xU4k3v9aQ.Yh1Ukf7mXo0pQ",
                Some("a Salesforce access token"),
            ),
            (
                "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrBLlqBfwm3Zc3xoJ3gYj6w",
                Some("a Salesforce refresh token"),
            ),
            (
                "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl",
                Some("a JSON Web Token"),
            ),
            ("AKIAIOSFODNN7EXAMPLE", Some("an AWS access key id")),
            (
                "https://user:pw@smtp.example.com",
                Some("a URL with a password in it"),
            ),
            ("https://acme.my.salesforce.com", None),
            ("SF_CLIENT_ID", None),
            ("Acme Production", None),
        ];
        for (text, expected) in cases {
            assert_eq!(looks_like_secret(text), expected, "{text}");
        }
    }

    #[test]
    fn secret_keys_and_misused_env_keys() {
        assert_eq!(
            classify(Some("password"), "hunter2").as_deref(),
            Some("a literal `password`")
        );
        assert_eq!(classify(Some("passwordEnv"), "SMTP_PASSWORD"), None);
        assert!(classify(Some("clientSecretEnv"), "9F8E7D6C5B4A3F2E1D0C").is_some());
        assert!(classify(Some("clientSecretEnv"), "E1F4A9C2B7D80F3A6E5B4C1D").is_some());
        assert_eq!(classify(Some("clientIdEnv"), "SF_PROD_CLIENT_ID_2"), None);
        assert_eq!(classify(Some("clientIdEnv"), "my-var"), None);
        assert_eq!(classify(Some("name"), "Acme token rotation"), None);
    }
}
