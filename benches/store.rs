//! The store on Salesforce-like records (issue 4):
//!
//!     cargo bench --bench store                                  # 1,000,000 Accounts
//!     CAIRN_BENCH_RECORDS=10000000 cargo bench --bench store     # 10,000,000
//!
//! Reports ingest and read-back rates, bytes stored for a full snapshot and for an incremental
//! with 1% of records changed at random places, and the process's peak resident memory. Records
//! are generated on the fly, so the harness holds none of them.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use cairn::snapshot::{Change, ObjectReader, Outcome, SnapshotWriter, Source};
use cairn_sim::org::Rng;
use common::{account, id};

fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let records: u64 = std::env::var("CAIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (dir, store) = common::bench_store();
    let source = || Source {
        kind: "salesforce".into(),
        account: "00D5g0000000001AAA".into(),
        api_version: "62.0".into(),
    };
    let raw_bytes: u64 = (0..records).map(|n| account(n, 0).len() as u64).sum();

    let started = Instant::now();
    let mut writer = SnapshotWriter::new(&store, "bench", None).expect("writer");
    writer
        .full_object("Account", (0..records).map(|n| Ok((id(n), account(n, 0)))))
        .expect("full snapshot");
    let (full_id, full) = writer
        .finish("2026-01-01T00:00:00Z", source(), None, Outcome::Complete)
        .expect("manifest");
    let ingest = started.elapsed().as_secs_f64();
    let full_bytes = common::dir_bytes(dir.path());

    let started = Instant::now();
    let mut read = 0u64;
    let mut read_bytes = 0u64;
    for record in ObjectReader::new(&store, "Account", &full.objects["Account"]) {
        let (_, body) = record.expect("record");
        read += 1;
        read_bytes += body.len() as u64;
    }
    let reading = started.elapsed().as_secs_f64();
    assert_eq!(read, records);
    assert_eq!(read_bytes, raw_bytes);

    // 1% of the records changed, at random places.
    let mut rng = Rng::new(42);
    let changed: BTreeSet<u64> = std::iter::from_fn(|| Some(rng.below(records)))
        .take((records / 100) as usize)
        .collect();
    let started = Instant::now();
    let mut writer = SnapshotWriter::new(&store, "bench", Some((&full_id, &full))).expect("writer");
    writer
        .changes(
            "Account",
            changed
                .iter()
                .map(|&n| Change::Upsert(id(n), account(n, 1))),
        )
        .expect("incremental");
    writer
        .finish("2026-01-02T00:00:00Z", source(), None, Outcome::Complete)
        .expect("manifest");
    let incremental_time = started.elapsed().as_secs_f64();
    let incremental_bytes = common::dir_bytes(dir.path()) - full_bytes;

    println!(
        "store benchmark: {records} Account records, {:.0} bytes each on average ({:.0} MiB of JSON)",
        raw_bytes as f64 / records as f64,
        raw_bytes as f64 / 1048576.0
    );
    println!("| measure | result | goal |");
    println!("|---|---|---|");
    println!(
        "| ingest (full snapshot) | {:.0} records/s ({ingest:.2} s) | >= 400,000 records/s |",
        records as f64 / ingest
    );
    println!(
        "| read back (merge reader) | {:.0} records/s ({reading:.2} s) | >= 800,000 records/s |",
        records as f64 / reading
    );
    println!(
        "| bytes stored, full | {:.1} MiB ({:.1}% of the JSON) | |",
        full_bytes as f64 / 1048576.0,
        100.0 * full_bytes as f64 / raw_bytes as f64
    );
    println!(
        "| bytes stored, incremental with 1% changed ({} records, {incremental_time:.2} s) | {:.2} MiB = {:.2}% of the full | <= 3% |",
        changed.len(),
        incremental_bytes as f64 / 1048576.0,
        100.0 * incremental_bytes as f64 / full_bytes as f64
    );
    println!(
        "| peak resident memory | {:.0} MiB | <= 150 MB |",
        common::status_mib("VmHWM:")
    );
}
