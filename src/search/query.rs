//! A search in two steps. The block index answers a loosened form of the query (every record
//! the query matches is in a block it finds: phrases become their words, exclusions are left
//! out); then the candidate blocks' records are read back and the query itself runs over them
//! in a small in-memory index, so what is returned matches exactly as written. Blocks are read
//! best first until the hits asked for are found.

use std::collections::HashSet;

use tantivy::directory::RamDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::query_grammar::{Occur as UserOccur, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::tokenizer::{TextAnalyzer, TokenStream as _, TokenizerManager};
use tantivy::{Index, ReloadPolicy, TantivyDocument, Term};

use super::{Fields, failed, record_text};
use crate::store::StoreError;

/// The loosened query over blocks: matches every block holding a record the query matches.
pub(super) fn loosened(
    ast: &UserInputAst,
    fields: Fields,
    analyzer: &mut TextAnalyzer,
) -> Box<dyn Query> {
    match ast {
        UserInputAst::Boost(inner, _) => loosened(inner, fields, analyzer),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(literal) => literal_in_blocks(literal, fields, analyzer),
            // Ranges, sets, regexes: any block may hold a match.
            _ => Box::new(AllQuery),
        },
        UserInputAst::Clause(clauses) => {
            let kept: Vec<(Occur, Box<dyn Query>)> = clauses
                .iter()
                // A block holding an excluded word may hold other records that match.
                .filter(|(occur, _)| *occur != Some(UserOccur::MustNot))
                .map(|(occur, ast)| {
                    let occur = match occur {
                        Some(UserOccur::Must) => Occur::Must,
                        _ => Occur::Should,
                    };
                    (occur, loosened(ast, fields, analyzer))
                })
                .collect();
            if kept.is_empty() {
                Box::new(AllQuery)
            } else {
                Box::new(BooleanQuery::new(kept))
            }
        }
    }
}

fn literal_in_blocks(
    literal: &UserInputLiteral,
    fields: Fields,
    analyzer: &mut TextAnalyzer,
) -> Box<dyn Query> {
    let raw = |field: Field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    };
    let id = || raw(fields.id, super::block::id_key(&literal.phrase));
    match literal.field_name.as_deref() {
        Some("id") => return id(),
        Some("object") => return raw(fields.object, &literal.phrase),
        Some("snapshot") => return raw(fields.snapshot, &literal.phrase),
        Some("text") | None => {}
        // A field this index does not know: left to the exact check.
        Some(_) => return Box::new(AllQuery),
    }
    // A prefix matches words the block index cannot enumerate cheaply: any block may hold one.
    let words = if literal.prefix {
        None
    } else {
        let mut words = Vec::new();
        let mut stream = analyzer.token_stream(&literal.phrase);
        while stream.advance() {
            words.push(std::mem::take(&mut stream.token_mut().text));
        }
        Some(words)
    };
    let text: Box<dyn Query> = match words {
        Some(words) if !words.is_empty() => Box::new(BooleanQuery::new(
            words
                .into_iter()
                .map(|word| -> (Occur, Box<dyn Query>) {
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_text(fields.text, &word),
                            IndexRecordOption::Basic,
                        )),
                    )
                })
                .collect(),
        )),
        _ => Box::new(AllQuery),
    };
    if literal.field_name.is_some() {
        return text;
    }
    // The default fields: the text, and the Id as written.
    Box::new(BooleanQuery::new(vec![
        (Occur::Should, text),
        (Occur::Should, id()),
    ]))
}

/// The in-memory index's starting budget: sized for a few thousand candidate records (its
/// table grows if they need more).
const EXACT_WRITER_MEMORY: usize = 1_000_000;

/// One record version read back from a candidate block.
pub(super) struct Candidate {
    pub object: String,
    pub id: String,
    pub snapshot: String,
    pub time: i64,
    pub body: Vec<u8>,
}

/// The query as written, run over the candidates' records in memory.
pub(super) struct Exact {
    schema: Schema,
    query: Box<dyn Query>,
    object: Field,
    id: Field,
    snapshot: Field,
    text: Field,
    key: Field,
    /// Taken out as they become hits.
    candidates: Vec<Option<Candidate>>,
    /// Each candidate's searchable text, tokenized again each round.
    texts: Vec<String>,
    seen: HashSet<(String, String, String)>,
}

impl Exact {
    pub(super) fn new(query: &str) -> Result<Exact, StoreError> {
        let mut builder = Schema::builder();
        let object = builder.add_text_field("object", STRING);
        let id = builder.add_text_field("id", STRING);
        let snapshot = builder.add_text_field("snapshot", STRING);
        let text = builder.add_text_field("text", TEXT);
        let key = builder.add_u64_field("key", STORED);
        let schema = builder.build();
        let parser = QueryParser::new(schema.clone(), vec![text, id], TokenizerManager::default());
        let (query, _) = parser.parse_query_lenient(query);
        Ok(Exact {
            schema,
            query,
            object,
            id,
            snapshot,
            text,
            key,
            candidates: Vec::new(),
            texts: Vec::new(),
            seen: HashSet::new(),
        })
    }

    /// Adds a version, once: a forgotten snapshot's versions are read from the next one, which
    /// may also have been a candidate itself.
    pub(super) fn add(&mut self, candidate: Candidate) {
        let key = (
            candidate.object.clone(),
            candidate.id.clone(),
            candidate.snapshot.clone(),
        );
        if !self.seen.insert(key) {
            return;
        }
        self.texts.push(record_text(&candidate.body));
        self.candidates.push(Some(candidate));
    }

    /// The versions matching so far, best first (up to `limit`), and how many match.
    ///
    /// Each round indexes every candidate so far in one segment, written in this thread: a
    /// round reads twice the blocks of the last, so all rounds tokenize at most twice what the
    /// last one does, and no indexing threads are started for a query.
    pub(super) fn matches(
        &mut self,
        limit: usize,
    ) -> Result<(Vec<(f32, usize)>, usize), StoreError> {
        let mut writer = Index::builder()
            .schema(self.schema.clone())
            .single_segment_index_writer(RamDirectory::create(), EXACT_WRITER_MEMORY)
            .map_err(failed)?;
        for (key, (candidate, text)) in self.candidates.iter().zip(&self.texts).enumerate() {
            let Some(candidate) = candidate else { continue };
            let mut doc = TantivyDocument::default();
            doc.add_text(self.object, &candidate.object);
            doc.add_text(self.id, &candidate.id);
            doc.add_text(self.snapshot, &candidate.snapshot);
            doc.add_text(self.text, text);
            doc.add_u64(self.key, key as u64);
            writer.add_document(doc).map_err(failed)?;
        }
        let index = writer.finalize().map_err(failed)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(failed)?;
        let searcher = reader.searcher();
        let (top, count) = searcher
            .search(
                &self.query,
                &(
                    tantivy::collector::TopDocs::with_limit(limit.max(1)).order_by_score(),
                    tantivy::collector::Count,
                ),
            )
            .map_err(failed)?;
        let mut best = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed)?;
            let key = doc
                .get_first(self.key)
                .and_then(|v| tantivy::schema::Value::as_u64(&v))
                .ok_or_else(|| failed("a candidate lost its key"))?;
            best.push((score, key as usize));
        }
        Ok((best, count))
    }

    pub(super) fn take(&mut self, key: usize) -> Option<Candidate> {
        self.candidates.get_mut(key).and_then(Option::take)
    }
}
