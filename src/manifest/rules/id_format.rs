//! `task/id-format`: a task id is a slug, because it names directories, refs and snapshots.

use super::{ManifestFile, RuleContext};
use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::schema::ManifestKind;

const RULE: &str = "task/id-format";

pub fn check(files: &[ManifestFile], _: &RuleContext, out: &mut Vec<Diagnostic>) {
    for file in files
        .iter()
        .filter(|f| matches!(f.kind, ManifestKind::Task | ManifestKind::Restore))
    {
        let Some(id) = file.str_at("/id") else {
            continue;
        };
        if is_slug(id) {
            continue;
        }
        let suggestion = slugify(id);
        let label = if is_slug(&suggestion) {
            format!("try `{suggestion}`")
        } else {
            "not a slug".to_string()
        };
        out.push(
            file.error(
                RULE,
                format!("{} `id` must be a lowercase slug", kind_word(file.kind)),
            )
                .at(file.value_span("/id"))
                .pointer("/id")
                .label(label)
                .help(match file.kind {
                    ManifestKind::Restore => "use 2 to 63 lowercase letters, digits and single hyphens, starting with a letter; why the restore is done goes in `reason`",
                    _ => "use 2 to 63 lowercase letters, digits and single hyphens, starting with a letter; the display name goes in `name`",
                }),
        );
    }
}

fn kind_word(kind: ManifestKind) -> &'static str {
    match kind {
        ManifestKind::Restore => "restore",
        _ => "task",
    }
}

pub fn is_slug(id: &str) -> bool {
    let bytes = id.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !id.ends_with('-')
        && !id.contains("--")
}

pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if let Some(ascii) = fold_accent(c) {
            slug.push_str(ascii);
        } else if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    let mut slug: String = slug.chars().take(63).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// Latin letters with accents, as the ASCII a slug can hold.
fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'æ' => "ae",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'ß' => "ss",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_their_suggestions() {
        assert!(is_slug("acme-prod"));
        assert!(is_slug("a1"));
        assert!(!is_slug("Acme Prod"));
        assert!(!is_slug("acme--prod"));
        assert!(!is_slug("-acme"));
        assert!(!is_slug("1acme"));
        assert!(!is_slug("a"));
        assert_eq!(slugify("Acme Prod (EU)"), "acme-prod-eu");
        assert_eq!(slugify("2024_sandbox"), "sandbox");
        assert_eq!(slugify("Café Zürich"), "cafe-zurich");
    }
}
