//! The index at rest: read in place, added to in place, rebuilt when damaged or old.
use super::*;
use crate::store::backend::LocalBackend;
use crate::store::crypto::MasterKey;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(
        Box::new(LocalBackend::new(dir.path())),
        MasterKey::generate().expect("key"),
    )
    .expect("store");
    (dir, store)
}

fn record(n: u64) -> Vec<u8> {
    format!(
        r#"{{"Id":"001{n:015}","Name":"Account {n} Holdings","Phone":"+1 555 {n:07}","City":"{}"}}"#,
        ["Oslo", "Lima", "Pune"][(n % 3) as usize]
    )
    .into_bytes()
}

fn id(n: u64) -> String {
    format!("001{n:015}")
}

fn add(index: &SearchIndex, writer: &mut IndexWriter, range: std::ops::Range<u64>, snapshot: &str) {
    let mut blocks = index.blocks(snapshot, 0).expect("blocks");
    for n in range {
        blocks
            .add_record(writer, "Account", &id(n), &record(n))
            .expect("add");
    }
    blocks.finish(writer).expect("finish");
}

/// Versions kept in memory, as the snapshots would hold them: every record `record(n)`.
struct Records;

impl VersionSource for Records {
    fn locate(&self, snapshot: &str, time: i64) -> Option<(String, i64)> {
        Some((snapshot.to_string(), time))
    }

    fn read(
        &mut self,
        _snapshot: &str,
        _object: &str,
        ids: &[String],
    ) -> Result<Option<Versions>, StoreError> {
        Ok(Some(
            ids.iter()
                .map(|id| {
                    let n: u64 = id[3..].parse().expect("a test Id");
                    (id.clone(), record(n))
                })
                .collect(),
        ))
    }
}

fn search(index: &SearchIndex, query: &str, limit: usize) -> SearchOutcome {
    index
        .search(&SearchRequest::new(query, limit), &mut Records)
        .expect("search")
}

/// An index of records `records` from snapshot s1, saved as task t and opened again.
fn saved(store: &Store, records: std::ops::Range<u64>) -> SearchIndex {
    let index = SearchIndex::empty(store).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, records, "s1");
    index.save(store, "t", writer).expect("save");
    SearchIndex::open(store, "t").expect("open")
}

fn list(store: &Store, task: &str) -> Packed {
    let id = store
        .backend()
        .get(&pointer(task))
        .expect("get")
        .expect("pointer");
    Packed::read(store, String::from_utf8_lossy(&id).trim()).expect("list")
}

#[test]
fn a_query_reads_a_few_pieces_of_the_stored_index_not_all_of_it() {
    let (_dir, store) = store();
    // Small pieces, so that a test-sized index is many of them.
    let index = SearchIndex::empty_cut_at(&store, 4096).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 0..60_000, "s1");
    index.save(&store, "t", writer).expect("save");
    let pieces = list(&store, "t").blobs().count();
    assert!(pieces > 100, "the index is many pieces: {pieces}");

    let index = SearchIndex::open(&store, "t").expect("open");
    assert!(
        index.pieces_read() <= 2,
        "opening reads only the meta files"
    );
    let found = search(&index, "\"Account 4242 Holdings\"", 10);
    assert_eq!((found.matched, found.exactly), (1, true));
    assert_eq!(found.hits[0].id, id(4242));
    let read = index.pieces_read();
    assert!(read * 4 < pieces, "a query read {read} of {pieces} pieces");
    // What was read is plaintext in memory only: nothing was unpacked to disk.
    assert!(index.scratch.is_none());
}

#[test]
fn adding_to_a_stored_index_writes_only_the_new_segments() {
    let (_dir, store) = store();
    let index = SearchIndex::empty(&store).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 0..20_000, "s1");
    index.save(&store, "t", writer).expect("save");
    let first = list(&store, "t");

    let (index, missing) = SearchIndex::open_or_new(&store, "t").expect("open");
    assert_eq!(missing, None);
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 20_000..20_010, "s2");
    index.save(&store, "t", writer).expect("save");
    let second = list(&store, "t");
    // The first segment's files are kept as they were stored; the new ones are small.
    for (name, file) in first.files.iter().filter(|(n, _)| !n.ends_with(".json")) {
        assert_eq!(second.files.get(name), Some(file), "{name}");
    }
    let new: u64 = second
        .files
        .iter()
        .filter(|(name, _)| !first.files.contains_key(*name))
        .map(|(_, file)| file.len)
        .sum();
    let old: u64 = first.files.values().map(|file| file.len).sum();
    assert!(new * 20 < old, "wrote {new} bytes anew beside {old}");
    // The superseded list is gone; every piece the new list names is there.
    for blob in second.blobs() {
        assert!(store.blob_exists(blob).expect("exists"), "{blob}");
    }
    let index = SearchIndex::open(&store, "t").expect("open");
    let found = search(&index, "Holdings", 30_000);
    assert_eq!((found.matched, found.exactly), (20_010, true));
}

#[test]
fn small_additions_are_merged_with_each_other_never_with_the_large_segment() {
    let (_dir, store) = store();
    let index = SearchIndex::empty(&store).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 0..20_000, "s0");
    index.save(&store, "t", writer).expect("save");
    let first = list(&store, "t");
    let segments = |list: &Packed| list.files.keys().filter(|n| n.ends_with(".idx")).count();
    assert_eq!(segments(&first), 1);
    // As many backups of a few records each as it takes to merge them (tantivy merges eight
    // segments of a level), and one more.
    for round in 1..=9u64 {
        let (index, _) = SearchIndex::open_or_new(&store, "t").expect("open");
        let mut writer = index.writer().expect("writer");
        let from = 20_000 + round * 10;
        add(&index, &mut writer, from..from + 10, &format!("s{round}"));
        index.save(&store, "t", writer).expect("save");
    }
    let last = list(&store, "t");
    for (name, file) in first.files.iter().filter(|(n, _)| !n.ends_with(".json")) {
        assert_eq!(last.files.get(name), Some(file), "{name} was merged again");
    }
    assert!(
        segments(&last) < 1 + 9,
        "the small segments were merged: {} segments",
        segments(&last)
    );
    let index = SearchIndex::open(&store, "t").expect("open");
    let found = search(&index, "Holdings", 30_000);
    assert_eq!((found.matched, found.exactly), (20_090, true));
}

#[test]
fn a_damaged_piece_fails_the_query_that_reads_it_and_makes_the_next_apply_rebuild() {
    let (_dir, store) = store();
    let index = SearchIndex::empty_cut_at(&store, 4096).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 0..5_000, "s1");
    index.save(&store, "t", writer).expect("save");
    let packed = list(&store, "t");
    let segment_pieces = packed
        .files
        .iter()
        .filter(|(name, _)| !name.ends_with(".json"))
        .flat_map(|(_, file)| file.pieces.iter());
    for blob in segment_pieces {
        let path = crate::store::blob_path(blob);
        let mut sealed = store.backend().get(&path).expect("get").expect("piece");
        let middle = sealed.len() / 2;
        sealed[middle] ^= 0x20;
        store.backend().put(&path, &sealed).expect("put");
    }
    let index = SearchIndex::open(&store, "t").expect("opened lazily");
    let error = index
        .search(&SearchRequest::new("Holdings", 10), &mut Records)
        .expect_err("unreadable");
    assert!(is_index_error(&error), "{error}");
    let (_, missing) = SearchIndex::open_or_new(&store, "t").expect("rebuilt");
    assert!(missing.expect("why").contains("its piece"));
}

#[test]
fn an_index_of_an_earlier_version_is_rebuilt_not_read() {
    let (_dir, store) = store();
    // The list format before pieces: file name to one blob.
    let list = store
        .put_blob(
            "search-list:t",
            br#"{"files":{"meta.json":"00"},"task":"t"}"#,
        )
        .expect("list");
    store
        .backend()
        .put(&pointer("t"), list.as_bytes())
        .expect("pointer");
    let error = SearchIndex::open(&store, "t").err().expect("not read");
    assert!(
        error.to_string().contains("earlier version of cairn"),
        "{error}"
    );
    let (index, missing) = SearchIndex::open_or_new(&store, "t").expect("rebuilt");
    assert!(missing.expect("why").contains("earlier version"));
    assert_eq!(index.superseded, vec![list]);
}

#[test]
fn a_block_holding_the_words_in_different_records_is_not_a_match() {
    let (_dir, store) = store();
    let index = saved(&store, 0..1_000);
    // Record 4 is in Lima; its block holds Oslo records too.
    let found = search(&index, "\"0000004 Oslo\"", 10);
    assert_eq!((found.matched, found.exactly), (0, true));
    assert!(found.hits.is_empty());
    let found = search(&index, "\"0000003 Oslo\"", 10);
    assert_eq!(found.matched, 1);
    assert_eq!(found.hits[0].id, id(3));
    // Both words in the record, not next to each other: a match without the quotes.
    let found = search(&index, "0000004 Lima", 10);
    assert_eq!(found.hits[0].id, id(4));
    // Excluded words rule out records, not blocks.
    let found = search(&index, "Holdings -Oslo", 1_000);
    assert_eq!((found.matched, found.exactly), (666, true));
    assert!(
        found
            .hits
            .iter()
            .all(|hit| !hit.body.ends_with(b"\"Oslo\"}"))
    );
    // An Id finds its record, not the neighbours indexed under the same key; a field names
    // where to look.
    assert_eq!(block::id_key(&id(777)), block::id_key(&id(778)));
    for query in [id(777), format!("id:{}", id(777))] {
        let found = search(&index, &query, 10);
        assert_eq!(
            (found.matched, found.exactly, found.hits[0].id.as_str()),
            (1, true, id(777).as_str()),
            "{query}"
        );
    }
    let found = search(&index, "object:Account AND Pune", 1_000);
    assert_eq!(found.matched, 333);
}

#[test]
fn a_common_word_reads_a_few_blocks_and_says_more_may_match() {
    let (_dir, store) = store();
    let index = saved(&store, 0..50_000);

    /// Counts the records read back.
    struct Counting(usize);
    impl VersionSource for Counting {
        fn locate(&self, snapshot: &str, time: i64) -> Option<(String, i64)> {
            Records.locate(snapshot, time)
        }
        fn read(
            &mut self,
            snapshot: &str,
            object: &str,
            ids: &[String],
        ) -> Result<Option<Versions>, StoreError> {
            self.0 += ids.len();
            Records.read(snapshot, object, ids)
        }
    }
    let mut counting = Counting(0);
    let found = index
        .search(&SearchRequest::new("Holdings", 20), &mut counting)
        .expect("search");
    assert_eq!(found.hits.len(), 20);
    assert!(!found.exactly && found.matched >= 20);
    assert!(
        counting.0 <= BLOCKS_COUNTED * BLOCK_RECORDS,
        "read {} records for 20 hits",
        counting.0
    );
}

#[test]
fn ascii_text_is_cut_into_the_words_the_analyzer_makes() {
    let (_dir, store) = store();
    let (index, _) = SearchIndex::open_or_new(&store, "acme").expect("index");
    let mut analyzer = index.analyzer().expect("analyzer");
    // Text of every kind a record holds: letters of both cases, digits, punctuation, and runs
    // either side of the longest word the analyzer keeps.
    let alphabet = b"aZ9 .,-_'\"@/\n\tqQ0";
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut text = String::new();
        for _ in 0..next() % 12 {
            let run = match next() % 4 {
                0 => 37 + next() % 6,
                _ => next() % 8,
            };
            for _ in 0..run {
                text.push(alphabet[(next() % alphabet.len() as u64) as usize] as char);
            }
            text.push(alphabet[(next() % 6) as usize + 3] as char);
        }
        let mut expected = Vec::new();
        let mut stream = analyzer.token_stream(&text);
        while stream.advance() {
            expected.push(stream.token().text.clone());
        }
        let cut: Vec<String> = block::ascii_words(text.as_bytes())
            .map(|word| String::from_utf8_lossy(word).to_ascii_lowercase())
            .collect();
        assert_eq!(cut, expected, "{text:?}");
    }
}

#[test]
fn an_id_is_indexed_under_its_first_characters_when_it_is_long() {
    assert_eq!(block::id_key("0015g00000ABCDEFGH"), "0015g00000ABCD");
    assert_eq!(block::id_key("0015g00000ABCDE"), "0015g00000A");
    // Short Ids, or Ids of other letters, are their own key.
    assert_eq!(block::id_key("42"), "42");
    assert_eq!(block::id_key("0015g00000ABCDÉFG"), "0015g00000ABCDÉFG");
}

#[test]
fn a_match_found_in_the_first_blocks_read_is_still_a_match_after_every_block_is_read() {
    let (_dir, store) = store();
    let index = saved(&store, 0..50_000);
    // Every block holds Oslo, the block of record 3 ranks first, and no record matches the
    // other clause: fewer hits than asked for, so every block is read (391, under the 480 a
    // limit of 30 reads), a round at a time.
    let found = search(&index, "\"0000003 Oslo\" OR (Oslo -Holdings)", 30);
    assert_eq!(
        (found.matched, found.exactly, found.hits.len()),
        (1, true, 1)
    );
    assert_eq!(found.hits[0].id, id(3));
    let found = search(&index, "Oslo -Holdings", 30);
    assert_eq!((found.matched, found.exactly), (0, true));
}

#[test]
fn each_files_last_bytes_are_in_the_list_and_a_list_without_them_still_reads() {
    let (_dir, store) = store();
    // Pieces smaller than the tail kept, so that a tail spans several.
    let index = SearchIndex::empty_cut_at(&store, 1024).expect("index");
    let mut writer = index.writer().expect("writer");
    add(&index, &mut writer, 0..20_000, "s1");
    index.save(&store, "t", writer).expect("save");
    let mut packed = list(&store, "t");
    for (name, file) in &packed.files {
        let tail = file
            .tail
            .as_deref()
            .expect("every file written has its tail");
        let mut whole = Vec::new();
        for piece in &file.pieces {
            whole.extend(store.get_blob(piece).expect("piece"));
        }
        assert_eq!(whole.len() as u64, file.len, "{name}");
        let start = whole.len().saturating_sub(stored_directory::TAIL_BYTES);
        assert_eq!(tail, &whole[start..], "{name}");
    }

    // Footers and the tables before them are read from the list: opening unseals no piece.
    let index = SearchIndex::open(&store, "t").expect("open");
    assert_eq!(index.pieces_read(), 0);
    let found = search(&index, "\"Account 4242 Holdings\"", 10);
    assert_eq!(
        (found.matched, found.hits[0].id.as_str()),
        (1, id(4242).as_str())
    );
    let read_with_tails = index.pieces_read();

    // A list written before tails were kept: the same answer, read from the pieces.
    for file in packed.files.values_mut() {
        file.tail = None;
    }
    let without = serde_json::to_vec(&packed).expect("json");
    assert!(!String::from_utf8_lossy(&without).contains("tail"));
    let blob = store.put_blob("search-list:t", &without).expect("put");
    store
        .backend()
        .put(&pointer("t"), blob.as_bytes())
        .expect("pointer");
    let index = SearchIndex::open(&store, "t").expect("open");
    let found = search(&index, "\"Account 4242 Holdings\"", 10);
    assert_eq!(
        (found.matched, found.hits[0].id.as_str()),
        (1, id(4242).as_str())
    );
    assert!(
        index.pieces_read() > read_with_tails,
        "{} pieces without tails, {read_with_tails} with",
        index.pieces_read()
    );
}
