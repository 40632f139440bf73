//! "Did you mean ...?" for misspelled keys and values.

/// The candidate the input was most likely meant to be, if any is close enough. Case, `_`, `-`
/// and spaces are ignored, so `api_usage_limit_percent` finds `apiUsageLimitPercent`.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = normalize(input);
    if wanted.is_empty() {
        return None;
    }
    let threshold = match wanted.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let normal = normalize(candidate);
            let distance = if normal == wanted {
                0
            } else if wanted.chars().count() >= 3 && normal.starts_with(&wanted) {
                // A truncated word: `env` for `environment`.
                threshold
            } else {
                strsim::damerau_levenshtein(&wanted, &normal)
            };
            let similar = strsim::jaro_winkler(&wanted, &normal) >= 0.88;
            (distance <= threshold || similar).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_misspellings_case_and_separator_changes() {
        let keys = ["environment", "apiUsageLimitPercent", "auth", "orgId"];
        assert_eq!(did_you_mean("enviroment", keys), Some("environment"));
        assert_eq!(
            did_you_mean("api_usage_limit_percent", keys),
            Some("apiUsageLimitPercent")
        );
        assert_eq!(did_you_mean("Auth", keys), Some("auth"));
        assert_eq!(did_you_mean("env", keys), Some("environment"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(
            did_you_mean("failed", ["success", "failure", "warning"]),
            Some("failure")
        );
        assert_eq!(did_you_mean("", keys), None);
    }
}
