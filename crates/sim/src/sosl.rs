//! SOSL through `GET /search?q=…`: `FIND {terms} [IN ALL|NAME|EMAIL|PHONE FIELDS]
//! [RETURNING Object[(fields [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n])], …] [LIMIT n]`.
//! Terms are words (every one must match: a space is AND), "quoted phrases", `*` and `?`
//! wildcards, AND, OR, AND NOT and parentheses; a word matches a whole word of a field, as the
//! search index tokenizes text. Each RETURNING clause is the SOQL it reads like, run by the
//! query engine on the records the terms match. Objects without a RETURNING list give their Ids.

use serde::Deserialize;
use std::sync::Arc;

use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::catalog::{FieldDef, FieldType, ObjectDef};
use super::org::{Org, Record, Value};
use super::render::json_record;
use super::server::{ApiError, State, admit, json_response, poisoned, version, with_limit_info};
use super::soql;

type Result<T> = std::result::Result<T, ApiError>;

/// Salesforce's answer to a search term of fewer than two characters.
const TOO_SHORT: &str = "No search term found. The search term must be longer than one character.";

/// SOSL's own ceiling on the records of one search.
const MAX_RECORDS: usize = 2000;

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

pub async fn search(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<SearchParams>,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let text = params.q.unwrap_or_default();
    let org = state.org.read().map_err(|_| poisoned())?;
    let search = parse(&text, &org)?;
    let mut body = String::from("{\"searchRecords\":[");
    let mut left = search.limit;
    let mut first = true;
    for target in &search.targets {
        if left == 0 {
            break;
        }
        let object = &org.catalog.objects[target.object];
        let fields = searched_fields(object, search.scope);
        let matches = |record: &Record| {
            search
                .terms
                .matches(&|needle: &Needle| fields.iter().any(|&f| needle.found_in(record, f)))
        };
        let mut query = target.clone();
        query.limit = Some(query.limit.unwrap_or(MAX_RECORDS).min(left));
        let hits = super::rest::execute_where(&org, &query, false, &matches);
        let table = &org.tables[query.object];
        let listed = match &query.select {
            soql::Select::Fields(listed) => listed.clone(),
            _ => Vec::new(),
        };
        for record in hits.records(table, 0..hits.len()) {
            if !first {
                body.push(',');
            }
            first = false;
            json_record(&mut body, &org, query.object, record, &listed, &v);
            left -= 1;
        }
    }
    body.push_str("]}");
    Ok(with_limit_info(json_response(StatusCode::OK, body), &info))
}

fn malformed(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_SEARCH", message)
}

/// Which fields the terms are looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Name,
    Email,
    Phone,
}

fn searched_fields(object: &ObjectDef, scope: Scope) -> Vec<usize> {
    let searched = |f: &FieldDef| match scope {
        Scope::All => matches!(
            f.field_type,
            FieldType::String
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        ),
        Scope::Name => matches!(
            f.name.as_str(),
            "Name" | "FirstName" | "LastName" | "Subject" | "CaseNumber"
        ),
        Scope::Email => f.field_type == FieldType::Email,
        Scope::Phone => f.field_type == FieldType::Phone,
    };
    object
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| searched(f))
        .map(|(i, _)| i)
        .collect()
}

struct Search {
    terms: Terms,
    scope: Scope,
    /// Each RETURNING clause as the query it reads like.
    targets: Vec<soql::Query>,
    limit: usize,
}

/// The search expression, as a tree.
#[derive(Debug, Clone, PartialEq)]
enum Terms {
    Needle(Needle),
    And(Box<Terms>, Box<Terms>),
    Or(Box<Terms>, Box<Terms>),
    AndNot(Box<Terms>, Box<Terms>),
}

impl Terms {
    fn matches(&self, found: &dyn Fn(&Needle) -> bool) -> bool {
        match self {
            Terms::Needle(needle) => found(needle),
            Terms::And(a, b) => a.matches(found) && b.matches(found),
            Terms::Or(a, b) => a.matches(found) || b.matches(found),
            Terms::AndNot(a, b) => a.matches(found) && !b.matches(found),
        }
    }
}

/// A word or phrase, as the lowercase words it must find in a row, each perhaps with wildcards.
#[derive(Debug, Clone, PartialEq)]
struct Needle {
    words: Vec<String>,
}

impl Needle {
    fn found_in(&self, record: &Record, field: usize) -> bool {
        let Some(Value::Text(text)) = record.values().get(field) else {
            return false;
        };
        let haystack = words_of(text);
        if self.words.is_empty() || haystack.len() < self.words.len() {
            return false;
        }
        haystack.windows(self.words.len()).any(|window| {
            window
                .iter()
                .zip(&self.words)
                .all(|(word, pattern)| glob(pattern.as_bytes(), word.as_bytes()))
        })
    }
}

/// Text as the index keeps it: lowercase words, split at anything not a letter or digit.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `*` any run of characters, `?` exactly one.
fn glob(pattern: &[u8], word: &[u8]) -> bool {
    match (pattern.first(), word.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], word) || (!word.is_empty() && glob(pattern, &word[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &word[1..]),
        (Some(p), Some(w)) if p == w => glob(&pattern[1..], &word[1..]),
        _ => false,
    }
}

/// The search, or the error Salesforce gives for it: MALFORMED_SEARCH for the SOSL itself, the
/// query's own code (INVALID_TYPE, INVALID_FIELD) for what a RETURNING clause names.
fn parse(text: &str, org: &Org) -> Result<Search> {
    parse_sosl(text, org).map_err(|e| match e {
        Refused::Search(message) => malformed(&message),
        Refused::Query(e) => ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message),
    })
}

enum Refused {
    Search(String),
    Query(soql::QueryError),
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused::Search(message)
    }
}

fn parse_sosl(text: &str, org: &Org) -> std::result::Result<Search, Refused> {
    let rest = text.trim_start();
    let Some(rest) = strip_word(rest, "FIND") else {
        return Err(format!("unexpected token: '{}'", first_word(rest)).into());
    };
    let rest = rest.trim_start();
    let Some(inner_and_rest) = rest.strip_prefix('{') else {
        return Err(
            "No search term found. The search term must be enclosed in braces: FIND {term}"
                .to_string()
                .into(),
        );
    };
    let (inner, mut rest) =
        braced(inner_and_rest).ok_or_else(|| "The search term has no closing brace".to_string())?;
    let terms = terms(&inner)?;
    let mut scope = Scope::All;
    let mut targets = Vec::new();
    let mut limit = MAX_RECORDS;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after) = strip_word(rest, "IN") {
            let (kind, after) = split_word(after.trim_start());
            scope = match kind.to_ascii_uppercase().as_str() {
                "ALL" => Scope::All,
                "NAME" => Scope::Name,
                "EMAIL" => Scope::Email,
                "PHONE" => Scope::Phone,
                _ => return Err(format!("unexpected token: '{kind}'").into()),
            };
            rest = strip_word(after.trim_start(), "FIELDS")
                .ok_or_else(|| format!("unexpected token: '{}'", first_word(after)))?;
        } else if let Some(after) = strip_word(rest, "RETURNING") {
            let (parsed, after) = returning(after, org)?;
            targets = parsed;
            rest = after;
        } else if let Some(after) = strip_word(rest, "LIMIT") {
            let (n, after) = split_word(after.trim_start());
            limit = n
                .parse::<usize>()
                .map_err(|_| format!("unexpected token: '{n}'"))?
                .min(MAX_RECORDS);
            rest = after;
        } else {
            return Err(format!("unexpected token: '{}'", first_word(rest)).into());
        }
    }
    if targets.is_empty() {
        // No RETURNING: every searchable object, by Id.
        for object in org.catalog.objects.iter().filter(|o| o.searchable) {
            let query = soql::parse(
                &format!("SELECT Id FROM {}", object.name),
                &org.catalog,
                org.clock.now(),
            )
            .map_err(Refused::Query)?;
            targets.push(query);
        }
    }
    Ok(Search {
        terms,
        scope,
        targets,
        limit,
    })
}

/// `Object[(…)], …` up to a closing keyword: each clause as the SOQL it reads like.
fn returning<'t>(
    text: &'t str,
    org: &Org,
) -> std::result::Result<(Vec<soql::Query>, &'t str), Refused> {
    let mut targets = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let object = &rest[..end];
        if object.is_empty() {
            return Err(format!("unexpected token: '{}'", first_word(rest)).into());
        }
        rest = rest[end..].trim_start();
        let mut clause = String::from("Id");
        if let Some(open) = rest.strip_prefix('(') {
            let close = closing_paren(open).ok_or_else(|| {
                format!("The RETURNING clause of {object} has no closing parenthesis")
            })?;
            clause = open[..close].trim().to_string();
            rest = open[close + 1..].trim_start();
        }
        let soql_text = soql_of(object, &clause);
        let query =
            soql::parse(&soql_text, &org.catalog, org.clock.now()).map_err(Refused::Query)?;
        if !org.catalog.objects[query.object].searchable {
            return Err(format!("entity type {object} does not support search").into());
        }
        targets.push(query);
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None => return Ok((targets, rest)),
        }
    }
}

/// `Name, Phone WHERE … LIMIT 5` of `Account` as `SELECT Name, Phone FROM Account WHERE … LIMIT 5`.
fn soql_of(object: &str, clause: &str) -> String {
    let upper = clause.to_ascii_uppercase();
    let tail_at = [" WHERE ", " ORDER BY ", " LIMIT ", " OFFSET "]
        .iter()
        .filter_map(|k| upper.find(k))
        .min()
        .unwrap_or(clause.len());
    let fields = clause[..tail_at].trim();
    let fields = if fields.is_empty() { "Id" } else { fields };
    format!("SELECT {fields} FROM {object}{}", &clause[tail_at..])
}

fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => return Some(i),
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The text up to the closing brace (`\}` escapes one), and what follows it.
fn braced(text: &str) -> Option<(String, &str)> {
    let mut inner = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    inner.push(next);
                }
            }
            '}' => return Some((inner, &text[i + 1..])),
            _ => inner.push(c),
        }
    }
    None
}

fn strip_word<'t>(text: &'t str, word: &str) -> Option<&'t str> {
    let head = text.get(..word.len())?;
    let after = &text[word.len()..];
    (head.eq_ignore_ascii_case(word)
        && after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_')))
    .then_some(after)
}

fn split_word(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| c.is_whitespace() || c == ',' || c == '(')
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

fn first_word(text: &str) -> &str {
    let word = split_word(text.trim_start()).0;
    if word.is_empty() { "<EOF>" } else { word }
}

/// The search expression: words and phrases joined by AND (or a space), OR, AND NOT.
fn terms(text: &str) -> std::result::Result<Terms, String> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let parsed = or_terms(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err(format!("unexpected token: '{}'", describe(&tokens[at])));
    }
    Ok(parsed)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Phrase(String),
    Open,
    Close,
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) | Token::Phrase(w) => w.clone(),
        Token::Open => "(".to_string(),
        Token::Close => ")".to_string(),
    }
}

fn tokens(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            chars.next();
            tokens.push(Token::Open);
        } else if c == ')' {
            chars.next();
            tokens.push(Token::Close);
        } else if c == '"' {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            tokens.push(Token::Phrase(phrase));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

fn is_operator(token: Option<&Token>, name: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(name))
}

fn or_terms(tokens: &[Token], at: &mut usize) -> std::result::Result<Terms, String> {
    let mut left = and_terms(tokens, at)?;
    while is_operator(tokens.get(*at), "OR") {
        *at += 1;
        let right = and_terms(tokens, at)?;
        left = Terms::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn and_terms(tokens: &[Token], at: &mut usize) -> std::result::Result<Terms, String> {
    let mut left = unit(tokens, at)?;
    loop {
        match tokens.get(*at) {
            None | Some(Token::Close) => return Ok(left),
            Some(_) if is_operator(tokens.get(*at), "OR") => return Ok(left),
            Some(_) if is_operator(tokens.get(*at), "AND") => {
                *at += 1;
                if is_operator(tokens.get(*at), "NOT") {
                    *at += 1;
                    let right = unit(tokens, at)?;
                    left = Terms::AndNot(Box::new(left), Box::new(right));
                } else {
                    let right = unit(tokens, at)?;
                    left = Terms::And(Box::new(left), Box::new(right));
                }
            }
            Some(_) => {
                let right = unit(tokens, at)?;
                left = Terms::And(Box::new(left), Box::new(right));
            }
        }
    }
}

fn unit(tokens: &[Token], at: &mut usize) -> std::result::Result<Terms, String> {
    let token = tokens.get(*at).cloned();
    *at += 1;
    match token {
        Some(Token::Open) => {
            let inner = or_terms(tokens, at)?;
            if tokens.get(*at) != Some(&Token::Close) {
                return Err("unexpected token: missing ')'".to_string());
            }
            *at += 1;
            Ok(inner)
        }
        Some(Token::Word(word)) | Some(Token::Phrase(word)) => needle(&word),
        Some(Token::Close) => Err("unexpected token: ')'".to_string()),
        None => Err(TOO_SHORT.to_string()),
    }
}

fn needle(text: &str) -> std::result::Result<Terms, String> {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '*' || c == '?'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let letters: usize = words
        .iter()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    if letters < 2 {
        return Err(TOO_SHORT.to_string());
    }
    Ok(Terms::Needle(Needle { words }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needle(words: &[&str]) -> Needle {
        Needle {
            words: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn spaces_are_and_and_operators_nest() {
        assert_eq!(
            terms("acme corp").unwrap(),
            Terms::And(
                Box::new(Terms::Needle(needle(&["acme"]))),
                Box::new(Terms::Needle(needle(&["corp"])))
            )
        );
        assert_eq!(
            terms("(acme OR hooli) AND NOT \"big corp\"").unwrap(),
            Terms::AndNot(
                Box::new(Terms::Or(
                    Box::new(Terms::Needle(needle(&["acme"]))),
                    Box::new(Terms::Needle(needle(&["hooli"])))
                )),
                Box::new(Terms::Needle(needle(&["big", "corp"])))
            )
        );
    }

    #[test]
    fn a_term_of_one_character_is_refused() {
        assert!(
            terms("a")
                .unwrap_err()
                .contains("longer than one character")
        );
        assert!(
            terms("a*")
                .unwrap_err()
                .contains("longer than one character")
        );
        assert!(terms("").is_err());
    }

    #[test]
    fn wildcards_match_within_one_word() {
        assert!(glob(b"acm*", b"acme"));
        assert!(glob(b"ac?e", b"acme"));
        assert!(!glob(b"ac?e", b"acmme"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"acme", b"acmes"));
    }

    #[test]
    fn returning_clauses_read_as_soql() {
        assert_eq!(soql_of("Account", ""), "SELECT Id FROM Account");
        assert_eq!(
            soql_of("Account", "Name, Phone WHERE Industry = 'Energy' LIMIT 5"),
            "SELECT Name, Phone FROM Account WHERE Industry = 'Energy' LIMIT 5"
        );
        assert_eq!(closing_paren("Name WHERE Name = ')') x"), Some(21));
    }

    #[test]
    fn braces_escape_with_a_backslash() {
        assert_eq!(
            braced(r"a\}b} RETURNING Account"),
            Some(("a}b".to_string(), " RETURNING Account"))
        );
        assert_eq!(braced("never closed"), None);
    }
}
