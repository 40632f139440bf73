//! "Index all data for search": a tantivy index per task of every record version the backups
//! captured (object, Id, snapshot, time, and the text of every field), plus a marker for each
//! deletion, so searches also find records deleted since. Each backup adds only its change.
//!
//! At rest the index is in the store like any data: every index file a sealed blob (keyed ids,
//! so unchanged segment files are stored once), a sealed list of them, and a pointer
//! `search/<task>` naming that list. It is unpacked for use into a private temporary directory
//! that is removed afterwards; only Ids and pointers are stored in the index, never record
//! text, which is read back from the snapshot for snippets.

mod record_text;
pub mod scratch;

pub use record_text::record_text;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument, Value as _,
};
use tantivy::{Index, IndexWriter, Term};

use crate::store::{Store, StoreError};

/// The index writer's memory budget (tantivy wants at least 15 MB per thread): fewer, larger
/// segments index about 1.6x faster than at 64 MiB on 2 cores (benches/search.rs).
const WRITER_MEMORY: usize = 256 * 1024 * 1024;

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        location: "search index".into(),
        message: e.to_string(),
    }
}

/// An error of the index itself (its list or files do not parse or open), not of the storage.
fn is_index_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend { location, .. } if location == "search index")
}

fn pointer(task: &str) -> String {
    format!("search/{task}")
}

#[derive(Clone, Copy)]
struct Fields {
    object: Field,
    id: Field,
    snapshot: Field,
    time: Field,
    kind: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        object: builder.add_text_field("object", STRING | STORED),
        id: builder.add_text_field("id", STRING | STORED),
        snapshot: builder.add_text_field("snapshot", STRING | STORED),
        time: builder.add_i64_field("time", INDEXED | STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        text: builder.add_text_field("text", TEXT),
    };
    (builder.build(), fields)
}

/// The sealed list of a task's index files.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Packed {
    files: BTreeMap<String, String>,
    /// The task whose blobs these are: written under a kind of the task's own
    /// (`search-file:<task>`), so no other index shares them and a superseded one can be
    /// deleted as soon as the next list replaces it. Absent in lists from before: their blobs
    /// may be shared and are left to prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<String>,
}

/// A task's index, unpacked into a private temporary directory.
pub struct SearchIndex {
    /// Removed (with the unsealed files) when the index is dropped.
    dir: scratch::Scratch,
    index: Index,
    fields: Fields,
    /// The blobs of the stored index this one was opened from (its list and, when they are
    /// the task's own, its files): what saving a new version supersedes.
    superseded: Vec<String>,
}

/// One match.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub object: String,
    pub id: String,
    pub snapshot: String,
    /// The snapshot's time, ms since the epoch.
    pub time: i64,
    pub score: f32,
    /// When the record was deleted after this version (the deleting snapshot's time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

impl SearchIndex {
    /// Whether the task has an index in the store.
    pub fn exists(store: &Store, task: &str) -> Result<bool, StoreError> {
        store.backend().exists(&pointer(task))
    }

    /// The task's index, or a new empty one with why it is empty when there should have been
    /// one: an unreadable index is derived data, rebuilt rather than a reason to fail a run.
    pub fn open_or_new(
        store: &Store,
        task: &str,
    ) -> Result<(SearchIndex, Option<String>), StoreError> {
        if !SearchIndex::exists(store, task)? {
            let empty = SearchIndex::empty()?;
            return Ok((empty, Some("the task had no search index".into())));
        }
        match SearchIndex::open(store, task) {
            Ok(index) => Ok((index, None)),
            // Storage that does not answer is not damage: the run fails and the index stays.
            Err(e @ StoreError::Backend { .. }) if !is_index_error(&e) => Err(e),
            Err(e) => {
                let mut empty = SearchIndex::empty()?;
                // The unreadable list goes with the rebuild (its files are not known: prune's).
                if let Some(id) = store.backend().get(&pointer(task))? {
                    empty.superseded = vec![String::from_utf8_lossy(&id).trim().to_string()];
                }
                Ok((
                    empty,
                    Some(format!("the search index could not be read ({e})")),
                ))
            }
        }
    }

    /// A new, empty index.
    pub fn empty() -> Result<SearchIndex, StoreError> {
        let dir = scratch::Scratch::new().map_err(failed)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir.path(), schema).map_err(failed)?;
        Ok(SearchIndex {
            dir,
            index,
            fields,
            superseded: Vec::new(),
        })
    }

    /// The task's index from the store, or a new empty one.
    pub fn open(store: &Store, task: &str) -> Result<SearchIndex, StoreError> {
        // An apply of the task may replace the index (and delete the files it supersedes)
        // while it is read: then the pointer has moved, and the new version is read instead.
        let mut attempts = 0;
        loop {
            let before = store.backend().get(&pointer(task))?;
            match SearchIndex::open_version(store, task, before.as_deref()) {
                Err(e @ StoreError::MissingBlob { .. }) => {
                    attempts += 1;
                    let now = store.backend().get(&pointer(task))?;
                    if attempts >= 3 || now == before {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    fn open_version(
        store: &Store,
        task: &str,
        pointed: Option<&[u8]>,
    ) -> Result<SearchIndex, StoreError> {
        let dir = scratch::Scratch::new().map_err(failed)?;
        let (schema, fields) = schema();
        let mut superseded = Vec::new();
        let index = match pointed {
            Some(id) => {
                let list_id = String::from_utf8_lossy(id).trim().to_string();
                let list = store.get_blob(&list_id)?;
                let packed: Packed = serde_json::from_slice(&list).map_err(failed)?;
                for (name, blob) in &packed.files {
                    let safe = Path::new(name)
                        .file_name()
                        .filter(|n| n.to_string_lossy() == *name)
                        .ok_or_else(|| {
                            failed(format!("an index file has an unsafe name: {name}"))
                        })?;
                    dir.write(Path::new(safe), &store.get_blob(blob)?)
                        .map_err(failed)?;
                }
                if packed.task.as_deref() == Some(task) {
                    superseded.extend(packed.files.into_values());
                }
                superseded.push(list_id);
                Index::open_in_dir(dir.path()).map_err(failed)?
            }
            None => Index::create_in_dir(dir.path(), schema).map_err(failed)?,
        };
        Ok(SearchIndex {
            dir,
            index,
            fields,
            superseded,
        })
    }

    pub fn writer(&self) -> Result<IndexWriter, StoreError> {
        self.index.writer(WRITER_MEMORY).map_err(failed)
    }

    pub fn add_record(
        &self,
        writer: &IndexWriter,
        object: &str,
        id: &str,
        snapshot: &str,
        time: i64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, object);
        doc.add_text(self.fields.id, id);
        doc.add_text(self.fields.snapshot, snapshot);
        doc.add_i64(self.fields.time, time);
        doc.add_text(self.fields.kind, "record");
        doc.add_text(self.fields.text, record_text(body));
        writer.add_document(doc).map_err(failed)?;
        Ok(())
    }

    pub fn add_deletion(
        &self,
        writer: &IndexWriter,
        object: &str,
        id: &str,
        snapshot: &str,
        time: i64,
    ) -> Result<(), StoreError> {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, object);
        doc.add_text(self.fields.id, id);
        doc.add_text(self.fields.snapshot, snapshot);
        doc.add_i64(self.fields.time, time);
        doc.add_text(self.fields.kind, "deleted");
        writer.add_document(doc).map_err(failed)?;
        Ok(())
    }

    /// Commits the writer and seals every index file into the store; files already there
    /// (unchanged segments) are not written again, and those of the version this one
    /// replaces that it no longer uses are deleted, once the pointer names the new version
    /// (a run killed before leaves them to prune, which `check` counts).
    pub fn save(
        self,
        store: &Store,
        task: &str,
        mut writer: IndexWriter,
    ) -> Result<(), StoreError> {
        writer.commit().map_err(failed)?;
        writer.wait_merging_threads().map_err(failed)?;
        let mut packed = Packed {
            files: BTreeMap::new(),
            task: Some(task.to_string()),
        };
        let file_kind = format!("search-file:{task}");
        for entry in std::fs::read_dir(self.dir.path()).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Lock files are the writer's, not the index's.
            if name.ends_with(".lock") || !entry.path().is_file() {
                continue;
            }
            let bytes = std::fs::read(entry.path()).map_err(failed)?;
            packed
                .files
                .insert(name, store.put_blob(&file_kind, &bytes)?);
        }
        let list = serde_json::to_vec(&packed).map_err(failed)?;
        let id = store.put_blob(&format!("search-list:{task}"), &list)?;
        store.backend().put(&pointer(task), id.as_bytes())?;
        let kept: std::collections::BTreeSet<&String> =
            packed.files.values().chain([&id]).collect();
        for blob in self.superseded.iter().filter(|b| !kept.contains(b)) {
            store.backend().delete(&crate::store::blob_path(blob))?;
        }
        Ok(())
    }

    /// The records matching `query`, best first: `limit` hits after the object and snapshot
    /// filters, and how many match in all. Deleted records carry the time of their deletion.
    pub fn search(
        &self,
        query: &str,
        object: Option<&str>,
        snapshot: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Hit>, usize), StoreError> {
        let reader = self.index.reader().map_err(failed)?;
        let searcher = reader.searcher();
        // A record's Id finds its versions too: it is what restore asks for.
        let parser = QueryParser::for_index(&self.index, vec![self.fields.text, self.fields.id]);
        let (text_query, _) = parser.parse_query_lenient(query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        clauses.push((Occur::Must, term(self.fields.kind, "record")));
        if let Some(object) = object {
            clauses.push((Occur::Must, term(self.fields.object, object)));
        }
        if let Some(snapshot) = snapshot {
            clauses.push((Occur::Must, term(self.fields.snapshot, snapshot)));
        }
        let combined = BooleanQuery::new(clauses);
        let (top, matched) = searcher
            .search(
                &combined,
                &(
                    TopDocs::with_limit(limit.max(1)).order_by_score(),
                    tantivy::collector::Count,
                ),
            )
            .map_err(failed)?;
        let mut hits = Vec::new();
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let time = doc
                .get_first(self.fields.time)
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            hits.push(Hit {
                object: text(self.fields.object),
                id: text(self.fields.id),
                snapshot: text(self.fields.snapshot),
                time,
                score,
                deleted_at: None,
            });
        }
        // Was each record deleted after the version found?
        for hit in &mut hits {
            let deletions = BooleanQuery::new(vec![
                (Occur::Must, term(self.fields.id, &hit.id)),
                (Occur::Must, term(self.fields.kind, "deleted")),
            ]);
            let found = searcher
                .search(&deletions, &TopDocs::with_limit(16).order_by_score())
                .map_err(failed)?;
            for (_, address) in found {
                let doc: TantivyDocument = searcher.doc(address).map_err(failed)?;
                let at = doc
                    .get_first(self.fields.time)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                if at > hit.time && hit.deleted_at.is_none_or(|d| at < d) {
                    hit.deleted_at = Some(at);
                }
            }
        }
        Ok((hits, matched))
    }
}

/// Each task's index as stored: the task, and its list blob with the files it names, or why
/// the list could not be read (an unreadable index is rebuilt by the task's next apply).
pub fn stored_indexes(store: &Store) -> Result<Vec<StoredIndex>, StoreError> {
    let mut indexes = Vec::new();
    for path in store.backend().list("search")? {
        let Some(id) = store.backend().get(&path)? else {
            continue;
        };
        let task = path.trim_start_matches("search/").to_string();
        let list = String::from_utf8_lossy(&id).trim().to_string();
        let files = store.get_blob(&list).and_then(|bytes| {
            serde_json::from_slice::<Packed>(&bytes)
                .map(|packed| packed.files.into_values().collect())
                .map_err(failed)
        });
        indexes.push(StoredIndex { task, list, files });
    }
    Ok(indexes)
}

pub struct StoredIndex {
    pub task: String,
    pub list: String,
    pub files: Result<Vec<String>, StoreError>,
}

/// Every blob the stored indexes use (an unreadable index's files are not known: derived
/// data, rebuilt whole by the next apply, so nothing of it needs keeping).
pub fn referenced_blobs(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut blobs = Vec::new();
    for index in stored_indexes(store)? {
        blobs.push(index.list);
        if let Ok(files) = index.files {
            blobs.extend(files);
        }
    }
    Ok(blobs)
}
