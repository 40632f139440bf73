//! `cairn diff` on large snapshots (issue 7):
//!
//!     cargo bench --bench diff                                   # 1,000,000 Accounts
//!     CAIRN_BENCH_RECORDS=200000 cargo bench --bench diff
//!
//! Diffs a full snapshot against incrementals with 1%, 0.1% and 0.01% of its records changed
//! (adjacent snapshots: the merge-join reads only the change), and against a fresh full
//! snapshot of the same 1% change (different bases: both are read in full).

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use cairn::diff;
use cairn::snapshot::{Change, Outcome, SnapshotManifest, SnapshotWriter, Source};
use cairn::store::Store;
use cairn_sim::org::Rng;
use common::{account, id};

fn source() -> Source {
    Source {
        kind: "salesforce".into(),
        account: "00D5g0000000001AAA".into(),
        api_version: "62.0".into(),
    }
}

/// The median of three runs, in seconds, and the number of changes found.
fn time_diff(store: &Store, a: &SnapshotManifest, b: &SnapshotManifest) -> (f64, u64) {
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let stats = diff::diff(store, a, b, None, false, &mut |_| {}).expect("diff");
        times.push(started.elapsed().as_secs_f64());
        found = stats.values().map(|s| s.changed()).sum();
    }
    times.sort_by(f64::total_cmp);
    (times[1], found)
}

fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let records: u64 = std::env::var("CAIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (_dir, store) = common::bench_store();
    let mut writer = SnapshotWriter::new(&store, "bench", None).expect("writer");
    writer
        .full_object("Account", (0..records).map(|n| Ok((id(n), account(n, 0)))))
        .expect("full");
    let (base_id, base) = writer
        .finish("2026-01-01T00:00:00Z", source(), None, Outcome::Complete)
        .expect("manifest");

    println!("diff benchmark: {records} Accounts; each row the median of 3 runs");
    println!("| diff | changed records | time | goal |");
    println!("|---|---:|---|---|");
    let mut one_percent = BTreeSet::new();
    for (share, label) in [(100, "1%"), (1000, "0.1%"), (10_000, "0.01%")] {
        let mut rng = Rng::new(share);
        let changed: BTreeSet<u64> = std::iter::from_fn(|| Some(rng.below(records)))
            .take((records / share) as usize)
            .collect();
        let mut writer =
            SnapshotWriter::new(&store, "bench", Some((&base_id, &base))).expect("writer");
        writer
            .changes(
                "Account",
                changed
                    .iter()
                    .map(|&n| Change::Upsert(id(n), account(n, 1))),
            )
            .expect("incremental");
        let (_, next) = writer
            .finish("2026-01-02T00:00:00Z", source(), None, Outcome::Complete)
            .expect("manifest");
        let (time, found) = time_diff(&store, &base, &next);
        assert_eq!(found, changed.len() as u64);
        println!(
            "| adjacent snapshots, {label} changed | {found} | {:.0} ms | {} |",
            time * 1000.0,
            if share == 100 {
                "<= 500 ms"
            } else {
                "grows with the change"
            }
        );
        if share == 100 {
            one_percent = changed;
        }
    }
    // The same 1% change, but as a fresh full snapshot: nothing shared, both read in full.
    let mut writer = SnapshotWriter::new(&store, "bench", None).expect("writer");
    writer
        .full_object(
            "Account",
            (0..records).map(|n| {
                let generation = u64::from(one_percent.contains(&n));
                Ok((id(n), account(n, generation)))
            }),
        )
        .expect("fresh full");
    let (_, fresh) = writer
        .finish("2026-01-02T00:00:00Z", source(), None, Outcome::Complete)
        .expect("manifest");
    let (time, found) = time_diff(&store, &base, &fresh);
    assert_eq!(found, one_percent.len() as u64);
    println!(
        "| unrelated bases (full merge-join), 1% changed | {found} | {:.0} ms | |",
        time * 1000.0
    );
}
