//! `cairn search`: full-text search across a task's backups, including records deleted since.
//! Hits come from the encrypted index; snippets from the snapshots, decrypted here.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::Report;
use super::snapshot_access::{TaskSnapshots, resolve, usage};
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::search::{SearchIndex, SearchRequest, SnapshotVersions};

#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub dir: PathBuf,
    pub task: Option<String>,
    pub query: String,
    pub object: Option<String>,
    pub field: Option<String>,
    pub snapshot: Option<String>,
    /// Only records deleted since the version found.
    pub deleted: bool,
    pub limit: usize,
}

/// What a search found: the hits shown, and how many matched in all.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHits {
    pub hits: Vec<Found>,
    /// Record versions the query matched, before --limit (and before --deleted and --field,
    /// which are applied to what the index returns: `matched_exactly` is false then).
    pub matched: usize,
    pub matched_exactly: bool,
    pub limit: usize,
    /// Why a search found nothing, when the query holds no word the index keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Report for SearchHits {
    fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.hits {
            let _ = write!(
                out,
                "{} {}  snapshot {} ({})",
                f.object,
                f.id,
                &f.snapshot[..f.snapshot.len().min(12)],
                f.time
            );
            if let (Some(field), Some(snippet)) = (&f.field, &f.snippet) {
                let _ = write!(out, "  {field}: {}", crate::text::printable(snippet));
            }
            if let Some(at) = &f.deleted_since {
                let _ = write!(out, "  [deleted {at}]");
            }
            out.push('\n');
        }
        let shown = self.hits.len();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let _ = match (self.matched_exactly, shown < self.matched) {
            (true, true) => writeln!(
                out,
                "{shown} of {} hits (--limit {}; raise it to see more)",
                self.matched, self.limit
            ),
            (true, false) => writeln!(out, "{shown} hit{}", plural(shown)),
            (false, _) if shown == self.limit => writeln!(
                out,
                "{shown} hits shown (--limit {}); more may match: raise --limit",
                self.limit
            ),
            (false, _) => writeln!(out, "{shown} hit{}", plural(shown)),
        };
        if let Some(note) = &self.note {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub object: String,
    pub id: String,
    pub snapshot: String,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_since: Option<String>,
}

/// Words of the query, lower-cased, without query syntax.
fn words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
        .filter(|w| !w.is_empty() && !matches!(*w, "AND" | "OR" | "NOT"))
        .map(str::to_lowercase)
        .collect()
}

/// The field (or the given one) a query word matched, and its value around the match. The
/// index matches whole words, so a field holding the word as a word wins over one holding it
/// inside another (`Lee` is the LastName of jlee@acme.example, not its Email); a word found
/// only inside others (a phrase, an address) falls back to the first field holding it.
fn snippet(body: &[u8], words: &[String], only: Option<&str>) -> Option<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    // Each value with its lower-cased text, which positions are counted in (lower-casing can
    // change a text's length).
    let values: Vec<(&String, String, String)> = map
        .iter()
        .filter(|(field, _)| only.is_none_or(|o| o.eq_ignore_ascii_case(field)))
        .filter_map(|(field, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let lower = text.to_lowercase();
            Some((field, text, lower))
        })
        .collect();
    let as_word = values.iter().find_map(|(field, text, lower)| {
        lower
            .split(|c: char| !c.is_alphanumeric())
            .find(|token| words.iter().any(|w| w == token))
            // The token's byte offset in `lower`: a slice of it.
            .map(|token| {
                (
                    *field,
                    text,
                    lower,
                    token.as_ptr() as usize - lower.as_ptr() as usize,
                )
            })
    });
    let (field, text, lower, at) = as_word.or_else(|| {
        values.iter().find_map(|(field, text, lower)| {
            words
                .iter()
                .find_map(|w| lower.find(w.as_str()))
                .map(|at| (*field, text, lower, at))
        })
    })?;
    let chars: Vec<char> = text.chars().collect();
    let position = lower
        .get(..at)
        .map_or(0, |before| before.chars().count())
        .min(chars.len());
    let start = position.saturating_sub(30);
    let end = (position + 50).min(chars.len());
    let mut cut: String = chars[start..end].iter().collect();
    if start > 0 {
        cut.insert(0, '…');
    }
    if end < chars.len() {
        cut.push('…');
    }
    Some((field.clone(), cut))
}

pub fn search(options: &SearchOptions, env: Env<'_>) -> Result<SearchHits, Error> {
    if options.query.trim().is_empty() {
        return Err(usage(
            "the query is empty".into(),
            "give words to look for, such as `cairn search \"Acme Corp\"`",
        ));
    }
    let project = Project::open(&options.dir, env)?;
    let task = TaskSnapshots::open(&project, options.task.as_deref())?;
    if let Ok(manifest) = project.task(&task.id)
        && !manifest.search.index
    {
        return Err(usage(
            format!(
                "search is off for task {} (search.index: false in its manifest)",
                task.id
            ),
            "set search.index: true; the next `cairn apply` builds the index",
        ));
    }
    let store = project.store()?;
    if !SearchIndex::exists(store, &task.id)? {
        return Err(usage(
            format!("task {} has no search index yet", task.id),
            "the next `cairn apply` builds it",
        ));
    }
    let snapshot = match &options.snapshot {
        Some(spec) => Some(resolve(&task.status.snapshots, spec)?.id.clone()),
        None => None,
    };
    // An index that does not open is derived data gone bad, not a storage fault: the next
    // apply rebuilds it from the snapshots.
    let index = match SearchIndex::open(store, &task.id) {
        Ok(index) => index,
        Err(e) => match crate::search::index_error(&e) {
            Some(wrong) => {
                return Err(usage(
                    format!("task {}'s search index cannot be read: {wrong}", task.id),
                    "the task's next `cairn apply` rebuilds it from its snapshots; nothing was lost",
                ));
            }
            None => return Err(e.into()),
        },
    };
    let limit = options.limit.max(1);
    // Filters applied after the query need more candidates.
    let wanted = if options.field.is_some() || options.deleted {
        limit * 10
    } else {
        limit
    };
    // Versions in forgotten snapshots are read from the next snapshot that still exists.
    let existing = task
        .status
        .snapshots
        .iter()
        .map(|row| {
            (
                crate::time::parse_datetime(&row.time).unwrap_or(0),
                row.id.clone(),
            )
        })
        .collect();
    let mut versions = SnapshotVersions::new(store, existing);
    let result = index.search(
        &SearchRequest {
            query: &options.query,
            object: options.object.as_deref(),
            snapshot: snapshot.as_deref(),
            limit: wanted,
        },
        &mut versions,
    )?;
    let words = words(&options.query);
    let mut found = Vec::new();
    let mut hits_seen = 0;
    for hit in result.hits {
        hits_seen += 1;
        if options.deleted && hit.deleted_at.is_none() {
            continue;
        }
        let cut = snippet(&hit.body, &words, options.field.as_deref());
        if options.field.is_some() && cut.is_none() {
            continue;
        }
        found.push(Found {
            object: hit.object,
            id: hit.id,
            snapshot: hit.snapshot,
            time: crate::time::format_datetime_z(hit.time),
            field: cut.as_ref().map(|(f, _)| f.clone()),
            snippet: cut.map(|(_, s)| s),
            deleted_since: hit.deleted_at.map(crate::time::format_datetime_z),
        });
        if found.len() >= limit {
            break;
        }
    }
    let exact =
        result.exactly && !options.deleted && options.field.is_none() && found.len() == hits_seen;
    Ok(SearchHits {
        matched: if exact {
            result.matched
        } else {
            result.matched.max(found.len())
        },
        matched_exactly: exact,
        limit,
        note: (found.is_empty() && only_numbers(&words)).then(|| NUMBERS_NOT_INDEXED.into()),
        hits: found,
    })
}

const NUMBERS_NOT_INDEXED: &str = "number and date fields are not indexed, only text fields: \
    a number is found where text holds it (a phone, an address, a name)";

/// Whether a query's words are all numbers or dates, which only text fields' words can match.
fn only_numbers(words: &[String]) -> bool {
    !words.is_empty()
        && words.iter().all(|word| {
            word.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::{only_numbers, snippet, words};

    #[test]
    fn a_query_of_numbers_or_dates_is_told_why_it_may_find_nothing() {
        for query in ["136950000", "1.5", "2025-06-15", "\"42 17\""] {
            assert!(only_numbers(&words(query)), "{query}");
        }
        for query in ["Acme 42", "v1.5", "", "jlee@acme"] {
            assert!(!only_numbers(&words(query)), "{query}");
        }
    }

    #[test]
    fn the_snippet_names_the_field_that_holds_the_word_as_a_word() {
        let record = br#"{"Email":"jlee@acme.example","FirstName":"Jo","LastName":"Lee"}"#;
        assert_eq!(
            snippet(record, &words("lee"), None),
            Some(("LastName".into(), "Lee".into()))
        );
        // Inside another word only: the first field holding it.
        assert_eq!(
            snippet(record, &words("jlee@acme"), None),
            Some(("Email".into(), "jlee@acme.example".into()))
        );
        assert_eq!(
            snippet(record, &words("lee"), Some("email")),
            Some(("Email".into(), "jlee@acme.example".into()))
        );
        assert_eq!(snippet(record, &words("smith"), None), None);
    }

    #[test]
    fn a_long_value_is_cut_around_the_word_between_chars() {
        let value = format!("{}Wombat{}", "é—".repeat(40), "x".repeat(80));
        let record = serde_json::to_vec(&serde_json::json!({ "Description": value })).unwrap();
        let (field, cut) = snippet(&record, &words("wombat"), None).expect("a snippet");
        assert_eq!(field, "Description");
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(cut.contains("Wombat"), "{cut}");
    }
}
