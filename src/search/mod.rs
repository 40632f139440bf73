//! "Index all data for search": a tantivy index per task of every record version the backups
//! captured (object, Id, snapshot, time, and the text of every field), plus a marker for each
//! deletion, so searches also find records deleted since. Each backup adds only its change.
//!
//! At rest the index is in the store like any data: every index file a sealed blob (keyed ids,
//! so unchanged segment files are stored once), a sealed list of them, and a pointer
//! `search/<task>` naming that list. It is unpacked for use into a private temporary directory
//! that is removed afterwards; only Ids and pointers are stored in the index, never record
//! text, which is read back from the snapshot for snippets.

pub mod scratch;

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

/// A value worth tokenizing: text people search for. Record Ids (18 characters, letters and
/// digits) and timestamps are left out: Ids have their own field, and neither is words.
fn searchable(text: &str) -> bool {
    let id_like = text.len() == 18 && text.bytes().all(|b| b.is_ascii_alphanumeric());
    let timestamp = text.len() >= 20 && crate::time::parse_datetime(text).is_some();
    // Encoded bytes (a binary file's base64): one endless word nobody searches for.
    let encoded = text.len() > 256 && !text.bytes().any(|b| b.is_ascii_whitespace());
    !id_like && !timestamp && !encoded
}

/// The text values of a record as one text: what the index tokenizes. Top-level strings and
/// numbers, one per line, and the strings of a map one level down (a metadata component's
/// files by path); deeper values, lists, booleans and nulls are not words people search for.
/// Read straight from the JSON without building a `Value`: this runs once per record indexed.
pub fn record_text(body: &[u8]) -> String {
    let mut text = String::with_capacity(body.len());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    if serde::Deserializer::deserialize_any(&mut deserializer, RecordText(&mut text)).is_err() {
        text.clear();
    }
    text
}

/// Visits a record object, appending its searchable values.
struct RecordText<'a>(&'a mut String);

impl<'de> serde::de::Visitor<'de> for RecordText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(FieldText(&mut *self.0))?;
        }
        Ok(())
    }
}

/// One field's value: appended when it is a searchable string or a number.
struct FieldText<'a>(&'a mut String);

impl FieldText<'_> {
    fn push(self, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = writeln!(self.0, "{value}");
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldText<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        if searchable(value) {
            self.0.push_str(value);
            self.0.push('\n');
        }
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.push(value);
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.push(value);
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        // As serde_json writes it (`100.0`, `1e300`), so numbers are found as they are stored.
        if let Some(number) = serde_json::Number::from_f64(value) {
            self.push(number);
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(NestedText(&mut *self.0))?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// A value inside a map field: appended when it is a searchable string.
struct NestedText<'a>(&'a mut String);

impl<'de> serde::de::DeserializeSeed<'de> for NestedText<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NestedText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        if searchable(value) {
            self.0.push_str(value);
            self.0.push('\n');
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
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
    /// filters. Deleted records carry the time of their deletion.
    pub fn search(
        &self,
        query: &str,
        object: Option<&str>,
        snapshot: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        let reader = self.index.reader().map_err(failed)?;
        let searcher = reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.fields.text]);
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
        let top = searcher
            .search(
                &combined,
                &TopDocs::with_limit(limit.max(1)).order_by_score(),
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
        Ok(hits)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What the text is defined to be, spelled out on a parsed `Value`.
    fn reference(body: &[u8]) -> String {
        let mut text = String::new();
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for value in map.values() {
                match value {
                    Value::String(s) if searchable(s) => text.push_str(s),
                    Value::Number(n) => text.push_str(&n.to_string()),
                    Value::Object(nested) => {
                        for s in nested.values().filter_map(Value::as_str) {
                            if searchable(s) {
                                text.push_str(s);
                                text.push('\n');
                            }
                        }
                        continue;
                    }
                    _ => continue,
                }
                text.push('\n');
            }
        }
        text
    }

    #[test]
    fn the_text_of_a_record_is_its_searchable_strings_and_numbers() {
        let cases: [&[u8]; 10] = [
            br#"{"Id":"001000000000001AAA","Name":"Acme \"Q\" \u00e9t\u00e9","Count":-3,"Big":18446744073709551615,"Rate":100.0,"Tiny":1e-7,"Huge":1.5e300}"#,
            br#"{"Active":true,"Parent":null,"Address":{"City":"Oslo"},"Tags":["a","b"],"When":"2025-06-15T08:09:10.000+0000","Day":"2025-06-15"}"#,
            br#"{}"#,
            br#"[1,2,3]"#,
            br#""just a string""#,
            br#"{"Name":"cut"#,
            b"not json",
            br#"{"Name":"line\nbreak","Esc":"tab\there"}"#,
            "{\"Name\":\"\u{1F600} unicode\"}".as_bytes(),
            br#"{"Id":"ApexClass:Invoice","files":{"classes/Invoice.cls":"public class Invoice {}","deep":{"x":"y"},"n":3},"binaryFiles":{"a.bin":"QUFB"}}"#,
        ];
        // The same values; in the record's own order rather than sorted by field name.
        let lines = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        for body in cases {
            assert_eq!(
                lines(record_text(body)),
                lines(reference(body)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            record_text(br#"{"Id":"001000000000001AAA","Name":"Acme","N":7}"#),
            "Acme\n7\n"
        );
    }
}
