//! The search index on 1,000,000 Accounts (issue 8):
//!
//!     cargo bench --bench search
//!     CAIRN_BENCH_RECORDS=200000 cargo bench --bench search
//!
//! Reports the index build rate (records indexed, committed and sealed into the store), the
//! latency of searches (p50, p99 over 200 queries), and the index's size against the data.

mod common;

use std::time::Instant;

use cairn::search::{SearchIndex, SearchRequest, VersionSource, Versions};
use cairn::store::StoreError;
use cairn_sim::org::Rng;
use common::{account, id};

/// The records as the benchmark made them, read back without a snapshot: what this measures
/// is the index (benches/apply.rs measures search through the snapshots).
struct Generated;

impl VersionSource for Generated {
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
                .filter_map(|id| {
                    let n: u64 = id.get(5..15)?.parse().ok()?;
                    Some((id.clone(), account(n, 0)))
                })
                .collect(),
        ))
    }
}

fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let records: u64 = std::env::var("CAIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (dir, store) = common::bench_store();
    let raw_bytes: u64 = (0..records).map(|n| account(n, 0).len() as u64).sum();

    let started = Instant::now();
    let mut text_bytes = 0usize;
    for n in 0..records {
        text_bytes += cairn::search::record_text(&account(n, 0)).len();
    }
    let text_time = started.elapsed().as_secs_f64();
    let before = common::dir_bytes(dir.path());
    let started = Instant::now();
    let index = SearchIndex::empty(&store).expect("index");
    let mut writer = index.writer().expect("writer");
    let mut blocks = index.blocks("snapshot1", 0).expect("blocks");
    for n in 0..records {
        blocks
            .add_record(&mut writer, "Account", &id(n), &account(n, 0))
            .expect("add");
    }
    blocks.finish(&mut writer).expect("blocks");
    let adding = started.elapsed().as_secs_f64();
    index.save(&store, "bench", writer).expect("save");
    let build = started.elapsed().as_secs_f64();
    let index_bytes = common::dir_bytes(dir.path()) - before;

    let started = Instant::now();
    let index = SearchIndex::open(&store, "bench").expect("reopen");
    let open_time = started.elapsed().as_secs_f64();
    let cities = [
        "Paris", "Lagos", "Osaka", "Lima", "Oslo", "Pune", "Austin", "Tartu",
    ];
    let mut rng = Rng::new(7);
    let mut times = Vec::new();
    for q in 0..200 {
        let query = match q % 3 {
            0 => format!("\"Account {} Holdings\"", rng.below(records)),
            1 => format!("{} AND renewal", cities[rng.below(8) as usize]),
            _ => format!("{:04}", rng.below(10_000)),
        };
        let started = Instant::now();
        let request = SearchRequest {
            object: Some("Account"),
            ..SearchRequest::new(&query, 20)
        };
        let hits = index.search(&request, &mut Generated).expect("search").hits;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!hits.is_empty() || q % 3 == 2, "{query}");
    }
    times.sort_by(f64::total_cmp);
    let percentile = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];

    println!(
        "search benchmark: {records} Accounts ({:.0} MiB of JSON)",
        raw_bytes as f64 / 1048576.0
    );
    println!("| measure | result | goal |");
    println!("|---|---|---|");
    println!(
        "| index build (index, commit, seal into the store) | {:.0} records/s ({build:.1} s) | >= 100,000 records/s |",
        records as f64 / build
    );
    println!(
        "| search latency, 200 queries (20 hits, exact check of the candidate blocks, deletion check) | p50 {:.1} ms, p99 {:.1} ms | p50 <= 20 ms |",
        percentile(0.5),
        percentile(0.99)
    );
    println!(
        "| of which handing documents to the indexer / committing and sealing | {adding:.1} s / {:.1} s | |",
        build - adding
    );
    println!(
        "| making the text of each record alone (JSON read; {:.0} MiB) | {text_time:.1} s | |",
        text_bytes as f64 / 1048576.0
    );
    println!(
        "| opening the index (unseal into a temporary directory) | {:.0} ms | |",
        open_time * 1000.0
    );
    println!(
        "| index size in the store | {:.1} MiB ({:.1}% of the JSON) | |",
        index_bytes as f64 / 1048576.0,
        100.0 * index_bytes as f64 / raw_bytes as f64
    );
}
