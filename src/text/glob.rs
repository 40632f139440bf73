//! Object name patterns as manifests write them (`objects.include`, alert objects).

/// `*` any run, `?` one character, case-insensitive (API names are).
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_api_names() {
        assert!(glob("*", "Account"));
        assert!(glob("*__c", "Invoice__c"));
        assert!(!glob("*__c", "Account"));
        assert!(glob("acc?unt", "Account"));
        assert!(glob("*History", "AccountHistory"));
        assert!(!glob("Account", "AccountHistory"));
    }
}
