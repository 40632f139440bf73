//! "Index all data for search": a tantivy index per task of every record version the backups
//! captured, plus a marker for each deletion, so searches also find records deleted since.
//! Each backup adds only its change. The index holds blocks of versions (`block`): each
//! block's Ids and the distinct words of their text; a search reads the candidate blocks'
//! records back from the snapshots and checks them exactly (`query`, `read_back`).
//!
//! At rest the index is in the store like any data: every index file as sealed pieces (keyed
//! ids, so unchanged segment files are stored once), a sealed list of them, and a pointer
//! `search/<task>` naming that list. It is read in place, lazily (`stored_directory`): a query
//! unseals the pieces it reads into memory. Adding to it writes the new segments into a private
//! temporary directory, removed afterwards. Only Ids and pointers are stored in the index,
//! never record text.

mod block;
mod merge_policy;
mod packed;
mod plain_record;
mod query;
mod read_back;
mod record_text;
pub mod scratch;
mod stored_directory;

pub use block::{BLOCK_RECORDS, BlockChannel, BlockSink, BlockWriter, ThrottledWriter};
pub use read_back::{SnapshotVersions, VersionSource, Versions};
pub use record_text::record_text;
pub use stored_directory::{PIECE_BYTES, StoredFile};

use std::collections::BTreeMap;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing,
    TextOptions, Value as _,
};
use tantivy::{Index, IndexWriter, ReloadPolicy, Term};

use packed::{FORMAT, Packed};
use stored_directory::StoredDirectory;

use crate::store::{Store, StoreError};

/// The index writer's memory budget, for its one thread: bounded so an apply's memory does not
/// grow with the org. On 2 cores one indexing thread with the whole budget indexes as fast as
/// two with half each (fewer, larger segments to merge) and holds less; blocks index few terms,
/// so 32 MiB index a 1M-record org as fast as 64 did, 10-15 MiB lower at the peak
/// (benches/apply.rs).
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

pub(crate) fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        location: "search index".into(),
        message: e.to_string(),
    }
}

/// An error of the index itself (its list or files do not parse or open), not of the storage:
/// what is wrong with it, if so.
pub fn index_error(e: &StoreError) -> Option<&str> {
    match e {
        StoreError::Backend { location, message } if location == "search index" => Some(message),
        _ => None,
    }
}

fn is_index_error(e: &StoreError) -> bool {
    index_error(e).is_some()
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
    /// A block's Ids, in the order written (`block::decode_ids`).
    records: Field,
    text: Field,
}

/// How words are cut, in blocks and in queries (lower-cased, long tokens dropped).
const TOKENIZER: &str = "default";

/// How the index reads a block's text: words `TOKENIZER` cut already, one space apart.
const WORDS_TOKENIZER: &str = "whitespace";

/// Candidate blocks a search may read per hit asked for: a query whose words are common but
/// whose matches are rare stops there and says more may match.
const BLOCKS_PER_HIT: usize = 16;

/// Candidate blocks a search reads even when the first ones held the hits asked for, so that
/// the count is exact when the candidates are few (neighbouring blocks share segments).
const BLOCKS_COUNTED: usize = 8;

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Each word of a block once: no frequencies or positions (the exact check has them). No
    // lengths either: blocks that hold the same words of a query score the same, so they are
    // read in the order they were indexed, neighbours together (they share segments).
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let fields = Fields {
        object: builder.add_text_field("object", STRING | STORED),
        // A block's Ids by their keys (`block::id_key`), and a deletion marker's whole Id:
        // searched, never read back.
        id: builder.add_text_field("id", STRING),
        snapshot: builder.add_text_field("snapshot", STRING | STORED),
        // Read from the hits, never searched: stored only.
        time: builder.add_i64_field("time", STORED),
        // Only deletion markers carry it (`deleted`).
        kind: builder.add_text_field("kind", STRING),
        records: builder.add_bytes_field("records", STORED),
        text: builder.add_text_field("text", words),
    };
    (builder.build(), fields)
}

/// A task's index, read from the store as it is used.
pub struct SearchIndex {
    /// Where new segments are written, for an index being added to; removed (with the
    /// unsealed files) when the index is dropped.
    scratch: Option<scratch::Scratch>,
    directory: StoredDirectory,
    index: Index,
    fields: Fields,
    /// The blobs of the stored index this one was opened from (its list and its pieces):
    /// what saving a new version supersedes.
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
    /// The version's stored JSON, as read back to check it.
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl SearchIndex {
    /// Whether the task has an index in the store.
    pub fn exists(store: &Store, task: &str) -> Result<bool, StoreError> {
        store.backend().exists(&pointer(task))
    }

    /// The task's index to add to, or a new empty one with why it is empty when there should
    /// have been one: an unreadable index is derived data, rebuilt rather than a reason to fail
    /// a run.
    pub fn open_or_new(
        store: &Store,
        task: &str,
    ) -> Result<(SearchIndex, Option<String>), StoreError> {
        if !SearchIndex::exists(store, task)? {
            let empty = SearchIndex::empty(store)?;
            return Ok((empty, Some("the task had no search index".into())));
        }
        match SearchIndex::open_version(store, task, true) {
            Ok(index) => Ok((index, None)),
            // Storage that does not answer is not damage: the run fails and the index stays.
            Err(e @ StoreError::Backend { .. }) if !is_index_error(&e) => Err(e),
            Err(e) => {
                let mut empty = SearchIndex::empty(store)?;
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

    /// A new, empty index to add to.
    pub fn empty(store: &Store) -> Result<SearchIndex, StoreError> {
        SearchIndex::empty_cut_at(store, PIECE_BYTES)
    }

    /// A new, empty index whose files are stored in pieces of `piece_bytes`.
    fn empty_cut_at(store: &Store, piece_bytes: usize) -> Result<SearchIndex, StoreError> {
        let scratch = scratch::Scratch::new().map_err(failed)?;
        let directory =
            StoredDirectory::new(store, (BTreeMap::new(), piece_bytes), Some(scratch.path()))?;
        let (schema, fields) = schema();
        let index = Index::create(directory.clone(), schema, tantivy::IndexSettings::default())
            .map_err(failed)?;
        Ok(SearchIndex {
            scratch: Some(scratch),
            directory,
            index,
            fields,
            superseded: Vec::new(),
        })
    }

    /// The task's index from the store, to search: nothing is read until a query needs it.
    pub fn open(store: &Store, task: &str) -> Result<SearchIndex, StoreError> {
        SearchIndex::open_version(store, task, false)
    }

    fn open_version(store: &Store, task: &str, writable: bool) -> Result<SearchIndex, StoreError> {
        // An apply of the task may replace the index (and delete the pieces it supersedes)
        // while it is read: then the pointer has moved, and the new version is read instead.
        let mut attempts = 0;
        loop {
            let pointed = store.backend().get(&pointer(task))?;
            let opened = match &pointed {
                Some(id) => SearchIndex::open_list(
                    store,
                    task,
                    String::from_utf8_lossy(id).trim(),
                    writable,
                ),
                None if writable => SearchIndex::empty(store),
                None => Err(StoreError::Backend {
                    location: format!("search/{task}"),
                    message: "the task has no search index".into(),
                }),
            };
            match opened {
                Err(e @ StoreError::MissingBlob { .. }) => {
                    attempts += 1;
                    let now = store.backend().get(&pointer(task))?;
                    if attempts >= 3 || now == pointed {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    fn open_list(
        store: &Store,
        task: &str,
        list: &str,
        writable: bool,
    ) -> Result<SearchIndex, StoreError> {
        let packed = Packed::read(store, list)?;
        if writable {
            // An apply reads little of the index it adds to, so a damaged or missing piece
            // would be carried into every later version: each is checked (read and
            // authenticated, not unsealed), and an index that fails is rebuilt.
            for blob in packed.blobs() {
                store.verify_blob(blob).map_err(|e| match e {
                    // Gone because another apply replaced the index (`open_version` retries), or
                    // storage that does not answer: not damage.
                    e @ (StoreError::MissingBlob { .. } | StoreError::Backend { .. }) => e,
                    e => failed(format!("its piece {blob}: {e}")),
                })?;
            }
        }
        let mut superseded: Vec<String> = Vec::new();
        if packed.task == task {
            superseded.extend(packed.blobs().cloned());
        }
        superseded.push(list.to_string());
        let scratch = if writable {
            Some(scratch::Scratch::new().map_err(failed)?)
        } else {
            None
        };
        let directory = StoredDirectory::new(
            store,
            (packed.files, packed.piece_bytes),
            scratch.as_ref().map(scratch::Scratch::path),
        )?;
        let index = Index::open(directory.clone()).map_err(failed)?;
        let (expected, fields) = schema();
        if index.schema() != expected {
            return Err(failed("its fields are not the ones this cairn indexes"));
        }
        Ok(SearchIndex {
            scratch,
            directory,
            index,
            fields,
            superseded,
        })
    }

    /// How many pieces of the stored index have been read so far.
    pub fn pieces_read(&self) -> usize {
        self.directory.unsealed()
    }

    pub fn writer(&self) -> Result<IndexWriter, StoreError> {
        let writer = self
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(failed)?;
        writer.set_merge_policy(Box::new(merge_policy::by_like_size()));
        Ok(writer)
    }

    /// A writer of one snapshot's versions into blocks (`snapshot` captured them at `time`).
    pub fn blocks(&self, snapshot: &str, time: i64) -> Result<BlockWriter, StoreError> {
        Ok(BlockWriter::new(
            self.fields,
            self.analyzer()?,
            snapshot,
            time,
        ))
    }

    fn analyzer(&self) -> Result<tantivy::tokenizer::TextAnalyzer, StoreError> {
        self.index
            .tokenizers()
            .get(TOKENIZER)
            .ok_or_else(|| failed("its tokenizer is missing"))
    }

    /// Commits the writer and seals the index files it wrote into the store (files already
    /// there, unchanged segments, are not written again), and deletes the pieces of the
    /// version this one replaces that it no longer uses, once the pointer names the new version
    /// (a run killed before leaves them to prune, which `check` counts).
    pub fn save(
        self,
        store: &Store,
        task: &str,
        mut writer: IndexWriter,
    ) -> Result<(), StoreError> {
        writer.commit().map_err(failed)?;
        writer.wait_merging_threads().map_err(failed)?;
        let packed = Packed {
            format: FORMAT,
            piece_bytes: self.directory.piece_bytes(),
            files: self.directory.save(&format!("search-file:{task}"))?,
            task: task.to_string(),
        };
        let list = serde_json::to_vec(&packed).map_err(failed)?;
        let id = store.put_blob(&format!("search-list:{task}"), &list)?;
        store.backend().put(&pointer(task), id.as_bytes())?;
        let kept: std::collections::BTreeSet<&String> = packed.blobs().chain([&id]).collect();
        for blob in self.superseded.iter().filter(|b| !kept.contains(b)) {
            store.backend().delete(&crate::store::blob_path(blob))?;
        }
        drop(self.scratch);
        Ok(())
    }

    /// The record versions matching `request.query`, best first, read back through
    /// `versions`; and how many match, exactly when every candidate block was read.
    pub fn search(
        &self,
        request: &SearchRequest<'_>,
        versions: &mut dyn VersionSource,
    ) -> Result<SearchOutcome, StoreError> {
        let reader = self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(failed)?;
        let searcher = reader.searcher();
        let (ast, _) = tantivy::query_grammar::parse_query_lenient(request.query);
        let mut analyzer = self.analyzer()?;
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                query::loosened(&ast, self.fields, &mut analyzer),
            ),
            (Occur::MustNot, term(self.fields.kind, "deleted")),
        ];
        if let Some(object) = request.object {
            clauses.push((Occur::Must, term(self.fields.object, object)));
        }
        if let Some(snapshot) = request.snapshot {
            clauses.push((Occur::Must, term(self.fields.snapshot, snapshot)));
        }
        let limit = request.limit.max(1);
        let (blocks, candidate_blocks) = searcher
            .search(
                &BooleanQuery::new(clauses),
                &(
                    TopDocs::with_limit((limit * BLOCKS_PER_HIT).max(BLOCKS_COUNTED))
                        .order_by_score(),
                    tantivy::collector::Count,
                ),
            )
            .map_err(failed)?;
        let mut exact = query::Exact::new(request.query)?;
        let mut every_block_read = blocks.len() == candidate_blocks;
        let mut batch = BLOCKS_COUNTED.min(blocks.len());
        let mut next = 0;
        let (best, matched) = loop {
            for (_, address) in &blocks[next..next + batch] {
                let doc: TantivyDocument = searcher.doc(*address).map_err(failed)?;
                let text = |field: Field| {
                    doc.get_first(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let object = text(self.fields.object);
                let ids = doc
                    .get_first(self.fields.records)
                    .and_then(|v| v.as_bytes())
                    .and_then(block::decode_ids)
                    .ok_or_else(|| failed("a block's record Ids do not read"))?;
                let time = doc
                    .get_first(self.fields.time)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                let Some((snapshot, time)) = versions.locate(&text(self.fields.snapshot), time)
                else {
                    continue;
                };
                let mut sorted = ids;
                sorted.sort();
                let Some(read) = versions.read(&snapshot, &object, &sorted)? else {
                    every_block_read = false;
                    continue;
                };
                for (id, body) in read {
                    exact.add(query::Candidate {
                        object: object.clone(),
                        id,
                        snapshot: snapshot.clone(),
                        time,
                        body,
                    });
                }
            }
            next += batch;
            let (best, matched) = exact.matches(limit)?;
            if next >= blocks.len() || matched >= limit {
                every_block_read &= next >= blocks.len();
                break (best, matched);
            }
            // Twice as many blocks each round: a rare match costs a few rounds, not one per block.
            batch = (batch * 2).min(blocks.len() - next);
        };
        let mut hits = Vec::with_capacity(best.len());
        for (score, key) in best {
            let Some(found) = exact.take(key) else {
                continue;
            };
            hits.push(Hit {
                object: found.object,
                id: found.id,
                snapshot: found.snapshot,
                time: found.time,
                score,
                deleted_at: None,
                body: found.body,
            });
        }
        // Was each record deleted after the version found? Unscored (no statistics gathered
        // from every segment), the marker's term first: a segment without deletions is left as
        // soon as it is found to have none, its Ids not looked up.
        for hit in &mut hits {
            let deletions = BooleanQuery::new(vec![
                (Occur::Must, term(self.fields.kind, "deleted")),
                (Occur::Must, term(self.fields.id, &hit.id)),
            ]);
            let found = searcher
                .search(&deletions, &tantivy::collector::DocSetCollector)
                .map_err(failed)?;
            for address in found {
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
        Ok(SearchOutcome {
            hits,
            matched,
            exactly: every_block_read,
        })
    }
}

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub object: Option<&'a str>,
    /// Only versions this snapshot captured.
    pub snapshot: Option<&'a str>,
    pub limit: usize,
}

impl<'a> SearchRequest<'a> {
    pub fn new(query: &'a str, limit: usize) -> Self {
        SearchRequest {
            query,
            object: None,
            snapshot: None,
            limit,
        }
    }
}

/// What a search found.
#[derive(Debug)]
pub struct SearchOutcome {
    pub hits: Vec<Hit>,
    /// The versions matching among the blocks read.
    pub matched: usize,
    /// Whether every block that may hold a match was read: `matched` is then the count.
    pub exactly: bool,
}

/// Each task's index as stored: the task, and its list blob with the blobs it names, or why
/// the list could not be read (an unreadable index is rebuilt by the task's next apply).
pub fn stored_indexes(store: &Store) -> Result<Vec<StoredIndex>, StoreError> {
    let mut indexes = Vec::new();
    for path in store.backend().list("search")? {
        let Some(id) = store.backend().get(&path)? else {
            continue;
        };
        let task = path.trim_start_matches("search/").to_string();
        let list = String::from_utf8_lossy(&id).trim().to_string();
        let files = Packed::read(store, &list).map(|packed| packed.blobs().cloned().collect());
        indexes.push(StoredIndex { task, list, files });
    }
    Ok(indexes)
}

pub struct StoredIndex {
    pub task: String,
    pub list: String,
    /// The blobs of the index's files (their pieces).
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

#[cfg(test)]
mod tests;
