//! `cairn search`: full-text search across a task's backups, including records deleted since.
//! Hits come from the encrypted index; snippets from the snapshots, decrypted here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::Report;
use super::snapshot_access::{TaskSnapshots, resolve, usage};
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::search::SearchIndex;
use crate::snapshot::SnapshotManifest;
use crate::snapshot::reader::find_record;
use crate::snapshot::writer::load_manifest;

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

/// What a search found; as JSON, the array of hits.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct SearchHits {
    pub hits: Vec<Found>,
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
        let _ = writeln!(
            out,
            "{} hit{}",
            self.hits.len(),
            if self.hits.len() == 1 { "" } else { "s" }
        );
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

/// The first field (or the given one) whose value holds a query word, and the value around it.
fn snippet(body: &[u8], words: &[String], only: Option<&str>) -> Option<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    for (field, value) in &map {
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(field)) {
            continue;
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let lower = text.to_lowercase();
        if let Some(at) = words.iter().find_map(|w| lower.find(w.as_str())) {
            let chars: Vec<char> = text.chars().collect();
            let position = lower[..at].chars().count();
            let start = position.saturating_sub(30);
            let end = (position + 50).min(chars.len());
            let mut cut: String = chars[start..end].iter().collect();
            if start > 0 {
                cut.insert(0, '…');
            }
            if end < chars.len() {
                cut.push('…');
            }
            return Some((field.clone(), cut));
        }
    }
    None
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
    let index = SearchIndex::open(store, &task.id)?;
    let limit = options.limit.max(1);
    // Filters applied after the query need more candidates.
    let wanted = if options.field.is_some() || options.deleted {
        limit * 10
    } else {
        limit
    };
    let hits = index.search(
        &options.query,
        options.object.as_deref(),
        snapshot.as_deref(),
        wanted,
    )?;
    let words = words(&options.query);
    let mut manifests: BTreeMap<String, Option<SnapshotManifest>> = BTreeMap::new();
    let mut found = Vec::new();
    // The task's snapshots, oldest first: a hit indexed in a snapshot that retention has
    // forgotten is the same version in the next snapshot that still exists (a later change
    // or deletion would have its own hit).
    let mut existing: Vec<(i64, &str)> = task
        .status
        .snapshots
        .iter()
        .map(|row| {
            (
                crate::time::parse_datetime(&row.time).unwrap_or(0),
                row.id.as_str(),
            )
        })
        .collect();
    existing.sort();
    for mut hit in hits {
        if options.deleted && hit.deleted_at.is_none() {
            continue;
        }
        if !existing.is_empty() && !existing.iter().any(|(_, id)| *id == hit.snapshot) {
            match existing.iter().find(|(time, _)| *time >= hit.time) {
                // Deleted by then: no snapshot that still exists holds this version.
                Some((time, _)) if hit.deleted_at.is_some_and(|at| at <= *time) => continue,
                Some((time, id)) => {
                    hit.snapshot = id.to_string();
                    hit.time = *time;
                }
                None => continue,
            }
        }
        let manifest = manifests
            .entry(hit.snapshot.clone())
            .or_insert_with(|| load_manifest(store, &hit.snapshot).ok());
        let body = match manifest.as_ref().and_then(|m| m.objects.get(&hit.object)) {
            Some(entry) => find_record(store, entry, &hit.id)?,
            None => None,
        };
        let cut = body
            .as_deref()
            .and_then(|b| snippet(b, &words, options.field.as_deref()));
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
    Ok(SearchHits { hits: found })
}
