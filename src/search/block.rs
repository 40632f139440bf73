//! The index's unit: a block of record versions, not one record. A block is up to
//! [`BLOCK_RECORDS`] consecutive versions of one object captured by one snapshot; its document
//! holds the Ids and each distinct word of their text once, without frequencies or positions.
//! A search finds the blocks that may hold a match and checks their records exactly
//! (`query`): the index stays a fraction of a per-record one to build and to store, since
//! most words repeat between neighbouring records.

use rustc_hash::FxHashSet;
use tantivy::tokenizer::{TextAnalyzer, TokenStream as _};
use tantivy::{IndexWriter, TantivyDocument};

use super::{Fields, failed, record_text};
use crate::store::StoreError;

/// Versions per block: small enough that a block holding a word seldom holds it only in
/// records the query rules out, large enough that its words repeat (benches/apply.rs).
pub const BLOCK_RECORDS: usize = 128;

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
    words: FxHashSet<String>,
    /// Bytes of blocks handed to the writer since it last committed.
    handed: usize,
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
            words: FxHashSet::default(),
            handed: 0,
        }
    }

    /// A version of a record, its body the record's stored JSON.
    pub fn add_record(
        &mut self,
        writer: &mut IndexWriter,
        object: &str,
        id: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        if object != self.object {
            self.flush(writer)?;
            object.clone_into(&mut self.object);
        }
        self.ids.push(id.to_string());
        let text = record_text(body);
        let mut stream = self.analyzer.token_stream(&text);
        while stream.advance() {
            let token = stream.token_mut();
            if !self.words.contains(token.text.as_str()) {
                self.words.insert(std::mem::take(&mut token.text));
            }
        }
        drop(stream);
        if self.ids.len() >= BLOCK_RECORDS {
            self.flush(writer)?;
        }
        Ok(())
    }

    /// A record deleted in this snapshot: a document of its own (deletions are few), which a
    /// hit on an earlier version of the record is checked against.
    pub fn add_deletion(
        &mut self,
        writer: &mut IndexWriter,
        object: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, object);
        doc.add_text(self.fields.id, id);
        doc.add_text(self.fields.snapshot, &self.snapshot);
        doc.add_i64(self.fields.time, self.time);
        doc.add_text(self.fields.kind, "deleted");
        writer.add_document(doc).map_err(failed)?;
        Ok(())
    }

    /// Writes the block being gathered, if any.
    fn flush(&mut self, writer: &mut IndexWriter) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.object, &self.object);
        doc.add_text(self.fields.snapshot, &self.snapshot);
        doc.add_i64(self.fields.time, self.time);
        for id in &self.ids {
            doc.add_text(self.fields.id, id);
        }
        doc.add_bytes(self.fields.records, &encode_ids(&self.ids));
        // Each word once, as text the indexer cuts again into the same words: a block waiting
        // in the indexer's queue holds one string, not a token (and its allocation) per word.
        let mut text = String::with_capacity(self.words.iter().map(|w| w.len() + 1).sum());
        for word in self.words.drain() {
            text.push_str(&word);
            text.push(' ');
        }
        self.handed += text.len() + self.ids.iter().map(|id| id.len() + 4).sum::<usize>();
        doc.add_text(self.fields.text, text);
        self.ids.clear();
        writer.add_document(doc).map_err(failed)?;
        // The writer queues what it is handed (up to thousands of documents) and indexes on
        // its own thread, slower than blocks are made: committing now and then waits for it,
        // so the queue never holds much of the org.
        if self.handed >= HANDED_BEFORE_COMMIT {
            writer.commit().map_err(failed)?;
            self.handed = 0;
        }
        Ok(())
    }

    /// Writes the last block: the snapshot's versions are all in the writer.
    pub fn finish(mut self, writer: &mut IndexWriter) -> Result<(), StoreError> {
        self.flush(writer)
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
