//! The index's unit: a block of record versions, not one record. A block is up to
//! [`BLOCK_RECORDS`] consecutive versions of one object captured by one snapshot; its document
//! holds the Ids and each distinct word of their text once, without frequencies or positions.
//! A search finds the blocks that may hold a match and checks their records exactly
//! (`query`): the index stays a fraction of a per-record one to build and to store, since
//! most words repeat between neighbouring records.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use tantivy::tokenizer::{TextAnalyzer, TokenStream as _};
use tantivy::{IndexWriter, TantivyDocument};

use super::plain_record::{plain_value, plain_values};
use super::{Fields, failed, record_text};
use crate::store::StoreError;

/// Where finished blocks go: the index writer, or a channel to the thread that feeds it.
pub trait BlockSink {
    /// Takes a block's document; `bytes` is about what it holds.
    fn take(&mut self, block: TantivyDocument, bytes: usize) -> Result<(), StoreError>;
}

impl BlockSink for IndexWriter {
    fn take(&mut self, block: TantivyDocument, _: usize) -> Result<(), StoreError> {
        self.add_document(block).map_err(failed)?;
        Ok(())
    }
}

/// Blocks made on other threads, on their way to the one that feeds the writer.
pub type BlockChannel = std::sync::mpsc::SyncSender<(TantivyDocument, usize)>;

impl BlockSink for BlockChannel {
    fn take(&mut self, block: TantivyDocument, bytes: usize) -> Result<(), StoreError> {
        self.send((block, bytes))
            .map_err(|_| failed("the thread feeding the index writer stopped"))
    }
}

/// The index writer, committed now and then. The writer queues what it is handed (up to
/// thousands of documents) and indexes on its own thread, slower than blocks are made:
/// committing waits for it, so the queue never holds much of the org.
pub struct ThrottledWriter<'w> {
    writer: &'w mut IndexWriter,
    /// Bytes of blocks handed to the writer since it last committed.
    handed: usize,
}

impl<'w> ThrottledWriter<'w> {
    pub fn new(writer: &'w mut IndexWriter) -> Self {
        ThrottledWriter { writer, handed: 0 }
    }
}

impl BlockSink for ThrottledWriter<'_> {
    fn take(&mut self, block: TantivyDocument, bytes: usize) -> Result<(), StoreError> {
        self.writer.take(block, bytes)?;
        self.handed += bytes;
        if self.handed >= HANDED_BEFORE_COMMIT {
            self.writer.commit().map_err(failed)?;
            self.handed = 0;
        }
        Ok(())
    }
}

/// Versions per block: small enough that a block holding a word seldom holds it only in
/// records the query rules out, large enough that its words repeat (benches/apply.rs).
pub const BLOCK_RECORDS: usize = 128;

/// Words this long or longer are left out, as the index's analyzer does (`RemoveLongFilter`).
const LONGEST_WORD: usize = 40;

/// Text handed to the index writer between commits.
const HANDED_BEFORE_COMMIT: usize = 16 * 1024 * 1024;

/// Gathers one snapshot's versions into blocks as they come, in any order: a block is written
/// when it is full, when the object changes, and at [`BlockWriter::finish`].
pub struct BlockWriter {
    fields: Fields,
    analyzer: TextAnalyzer,
    snapshot: String,
    time: i64,
    object: String,
    ids: Vec<String>,
    words: BlockWords,
}

impl BlockWriter {
    pub(super) fn new(fields: Fields, analyzer: TextAnalyzer, snapshot: &str, time: i64) -> Self {
        BlockWriter {
            fields,
            analyzer,
            snapshot: snapshot.to_string(),
            time,
            object: String::new(),
            ids: Vec::new(),
            words: BlockWords::default(),
        }
    }

    /// A version of a record, its body the record's stored JSON.
    pub fn add_record(
        &mut self,
        sink: &mut dyn BlockSink,
        object: &str,
        id: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.start_record(sink, object, id)?;
        let words = &mut self.words;
        if !plain_values(body, &mut |value| words.note_ascii(value)) {
            self.note_record_text(body);
        }
        self.end_record(sink)
    }

    /// A version of a record as a segment in columns holds it: its keys and values, each as
    /// written in JSON, and which of its values' columns are ASCII without a backslash. Its
    /// words are those of [`BlockWriter::add_record`] with the record's JSON, read from the
    /// values without the JSON put back together.
    pub fn add_fields(
        &mut self,
        sink: &mut dyn BlockSink,
        object: &str,
        id: &str,
        (keys, values, plain): (&[&[u8]], &[&[u8]], &[bool]),
    ) -> Result<(), StoreError> {
        self.start_record(sink, object, id)?;
        let words = &mut self.words;
        let read = values.iter().zip(plain).all(|(value, &plain)| {
            (plain || (value.is_ascii() && memchr::memchr(b'\\', value).is_none()))
                && plain_value(value, &mut |value| words.note_ascii(value))
        });
        if !read {
            let mut body = Vec::new();
            crate::snapshot::columns::body_of(keys, values, &mut body);
            self.note_record_text(&body);
        }
        self.end_record(sink)
    }

    /// A record of `object` joins the block (a new one when the object changes).
    fn start_record(
        &mut self,
        sink: &mut dyn BlockSink,
        object: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        if object != self.object {
            self.flush(sink)?;
            object.clone_into(&mut self.object);
        }
        self.ids.push(id.to_string());
        Ok(())
    }

    /// Writes the block if the record just added filled it.
    fn end_record(&mut self, sink: &mut dyn BlockSink) -> Result<(), StoreError> {
        match self.ids.len() >= BLOCK_RECORDS {
            true => self.flush(sink),
            false => Ok(()),
        }
    }

    /// The words of a record that is not plain, as the index's analyzer cuts its text.
    fn note_record_text(&mut self, body: &[u8]) {
        let text = record_text(body);
        if text.is_ascii() {
            self.words.note_ascii(text.as_bytes());
        } else {
            let mut stream = self.analyzer.token_stream(&text);
            while stream.advance() {
                self.words.note(stream.token().text.as_bytes());
            }
        }
    }

    /// A record deleted in this snapshot: a document of its own (deletions are few), which a
    /// hit on an earlier version of the record is checked against.
    pub fn add_deletion(
        &mut self,
        sink: &mut dyn BlockSink,
        object: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, object);
        doc.add_text(self.fields.id, id);
        doc.add_text(self.fields.snapshot, &self.snapshot);
        doc.add_i64(self.fields.time, self.time);
        doc.add_text(self.fields.kind, "deleted");
        sink.take(doc, object.len() + id.len())
    }

    /// Writes the block being gathered, if any.
    fn flush(&mut self, sink: &mut dyn BlockSink) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, &self.object);
        doc.add_text(self.fields.snapshot, &self.snapshot);
        doc.add_i64(self.fields.time, self.time);
        let mut keys: Vec<&str> = self.ids.iter().map(|id| id_key(id)).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            doc.add_text(self.fields.id, key);
        }
        doc.add_bytes(self.fields.records, &encode_ids(&self.ids));
        let text = self.words.take_text();
        let bytes = text.len() + self.ids.iter().map(|id| id.len() + 4).sum::<usize>();
        doc.add_text(self.fields.text, text);
        self.ids.clear();
        sink.take(doc, bytes)
    }

    /// Writes the last block: the snapshot's versions are all in the writer.
    pub fn finish(mut self, sink: &mut dyn BlockSink) -> Result<(), StoreError> {
        self.flush(sink)
    }
}

/// The distinct words of a block, gathered as the text the index is handed: each word once,
/// followed by a space, for the index to cut at its spaces only (`WORDS_TOKENIZER`), so that a
/// block waiting in the indexer's queue holds one string, not a token (and its allocation) per
/// word, and its words are not cut and lowercased a second time. Words already there are
/// found by a table of where they lie in the text: no word is allocated on its own.
#[derive(Default)]
struct BlockWords {
    /// The words so far, each followed by a space; UTF-8, as every word noted is.
    text: Vec<u8>,
    /// Where each word lies in `text`: its start and length.
    seen: HashTable<(usize, usize)>,
    hasher: FxBuildHasher,
}

impl BlockWords {
    /// Adds the words of ASCII text, lowercased, as the index's analyzer cuts them.
    fn note_ascii(&mut self, text: &[u8]) {
        let mut lowered = [0u8; LONGEST_WORD];
        for run in ascii_words(text) {
            let word = &mut lowered[..run.len()];
            word.copy_from_slice(run);
            word.make_ascii_lowercase();
            self.note(word);
        }
    }

    /// Adds a word as the index's analyzer gives it (cut and lowercased, UTF-8), unless it is
    /// there. Words are kept as bytes: the text is checked once, when the block is written.
    fn note(&mut self, word: &[u8]) {
        let hash = self.hasher.hash_one(word);
        let text = &self.text;
        let at = |&(start, length): &(usize, usize)| &text[start..start + length];
        if self.seen.find(hash, |place| at(place) == word).is_some() {
            return;
        }
        let place = (self.text.len(), word.len());
        self.text.extend_from_slice(word);
        self.text.push(b' ');
        let (text, hasher) = (&self.text, &self.hasher);
        self.seen.insert_unique(hash, place, |&(start, length)| {
            hasher.hash_one(&text[start..start + length])
        });
    }

    /// The block's words as one text, leaving the set empty for the next block.
    fn take_text(&mut self) -> String {
        self.seen.clear();
        String::from_utf8(std::mem::take(&mut self.text))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// The words of ASCII text exactly as the index's analyzer cuts them (runs of letters and
/// digits under [`LONGEST_WORD`] bytes), before lowercasing, without its per-token machinery:
/// most records are ASCII, and cutting their words is most of what building a block costs.
pub(super) fn ascii_words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| !b.is_ascii_alphanumeric())
        .filter(|run| !run.is_empty() && run.len() < LONGEST_WORD)
}

/// The term a block indexes an Id under: an Id of 15 characters or more (a Salesforce Id,
/// whose last three are a checksum) without its last four, so that the up to 62 Ids a source
/// numbered in a row share one term; an Id's query finds the block by it, and the exact check
/// tells the neighbours apart. A block of 128 such Ids holds a few terms, not 128. Shorter Ids
/// are their own term.
pub(super) fn id_key(id: &str) -> &str {
    match id.len() >= 15 && id.is_ascii() {
        true => &id[..id.len() - 4],
        false => id,
    }
}

/// A block's Ids as stored: each as its length (u32, little-endian) and its bytes, so any Id
/// a source has survives.
fn encode_ids(ids: &[String]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ids.iter().map(|id| id.len() + 4).sum());
    for id in ids {
        bytes.extend_from_slice(&(id.len() as u32).to_le_bytes());
        bytes.extend_from_slice(id.as_bytes());
    }
    bytes
}

/// The Ids of a stored block, or None when they do not decode.
pub(super) fn decode_ids(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    while !bytes.is_empty() {
        let (length, rest) = bytes.split_first_chunk::<4>()?;
        let length = u32::from_le_bytes(*length) as usize;
        let id = rest.get(..length)?;
        ids.push(String::from_utf8(id.to_vec()).ok()?);
        bytes = &rest[length..];
    }
    Some(ids)
}
