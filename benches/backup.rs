//! A Salesforce backup of 1,000,000 Accounts from the simulator (issue 5):
//!
//!     cargo bench --bench backup               # CAIRN_BENCH_RECORDS=… for another size
//!
//! Full backup: wall time, records/s, API calls, peak memory; then 1% of the records changed:
//! the incremental's time, API calls and bytes added. With `restic` installed (Debian package),
//! the same records exported as JSONL are backed up with it too, for the ratio.

mod common;

use std::time::Instant;

use cairn::backup::{BackupOptions, backup};
use cairn::snapshot::ObjectReader;
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::crypto::MasterKey;
use cairn_sim::org::{Clock, OrgOptions, Population, Rng};
use cairn_sim::server::{SimOptions, Simulator};

const T0: i64 = 1_749_988_800_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let records: usize = std::env::var("CAIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 1,
                population: Population::only("Account", records),
                api_max: 100_000_000,
                clock: Clock::fixed(T0),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator");
    let rss_with_org = common::status_mib("VmRSS:");
    let work = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
        .expect("a directory under target/");
    let store_dir = work.path().join("store");
    let store = Store::init(
        Box::new(LocalBackend::new(&store_dir)),
        MasterKey::generate().expect("key"),
    )
    .expect("store");
    let client = common::connector(&sim);
    let options = BackupOptions {
        include: vec!["Account".into()],
        sort_memory: std::env::var("SORT_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(cairn::snapshot::sorter::DEFAULT_MEMORY, |m| m << 20),
        ..BackupOptions::new("bench")
    };
    let at = |ms: i64| cairn::time::format_datetime_z(ms);

    let (started, cpu_before) = (Instant::now(), common::cpu_seconds());
    let full = backup(&client, &store, &options, None, &at(T0))
        .await
        .expect("full backup");
    let full_time = started.elapsed().as_secs_f64();
    let full_cpu = common::cpu_seconds() - cpu_before;
    let full_bytes = common::dir_bytes(&store_dir);
    let backed_up = full.manifest.objects["Account"].base_records;

    // 1% of the Accounts change, at random, an hour later.
    let changed = records / 100;
    {
        let mut org = sim.state.org.write().expect("org");
        org.clock.advance(3_600_000);
        let accounts = org.object_index("Account").expect("Account");
        let mut rng = Rng::new(7);
        for _ in 0..changed {
            let row = rng.below(org.tables[accounts].records.len() as u64) as usize;
            let id = org.tables[accounts].records[row].id().to_string();
            let mut fields = serde_json::Map::new();
            fields.insert(
                "Phone".into(),
                serde_json::json!(format!("+1 555 {}", rng.below(10_000))),
            );
            cairn_sim::write::update(&mut org, accounts, &id, &fields, &mut Vec::new())
                .expect("edit");
        }
    }
    let started = Instant::now();
    let incremental = backup(
        &client,
        &store,
        &options,
        Some((&full.snapshot, &full.manifest)),
        &at(T0 + 3_660_000),
    )
    .await
    .expect("incremental");
    let incremental_time = started.elapsed().as_secs_f64();
    let incremental_bytes = common::dir_bytes(&store_dir) - full_bytes;
    let peak = common::status_mib("VmHWM:");

    println!(
        "backup benchmark: {backed_up} Accounts from the simulator (the process also holds the simulated org: {rss_with_org:.0} MiB resident before the backup)"
    );
    println!("| measure | result | goal |");
    println!("|---|---|---|");
    println!(
        "| full backup | {full_time:.2} s, {:.0} records/s; CPU {full_cpu:.2} s (both cores, the simulator included) | |",
        backed_up as f64 / full_time
    );
    println!(
        "| API calls, full backup (all of it; the Account object: Bulk create, polls, pages) | {} | <= 25 for the object |",
        full.api_calls
    );
    println!(
        "| bytes stored, full | {:.1} MiB | |",
        full_bytes as f64 / 1048576.0
    );
    println!(
        "| incremental, 1% changed ({changed} records) | {incremental_time:.2} s = {:.1}% of the full | <= 10% |",
        100.0 * incremental_time / full_time
    );
    println!("| API calls, incremental | {} | |", incremental.api_calls);
    println!(
        "| bytes added by the incremental | {:.2} MiB ({:.2}% of the full) | |",
        incremental_bytes as f64 / 1048576.0,
        100.0 * incremental_bytes as f64 / full_bytes as f64
    );
    println!(
        "| peak resident memory (simulator org included) | {peak:.0} MiB; the backup's own ≈ {:.0} MiB | |",
        peak - rss_with_org
    );

    // restic on the same records, as JSONL.
    let jsonl = work.path().join("accounts.jsonl");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&jsonl).expect("export"));
        for record in ObjectReader::new(&store, "Account", &full.manifest.objects["Account"]) {
            let (_, body) = record.expect("record");
            file.write_all(&body).expect("write");
            file.write_all(b"\n").expect("write");
        }
    }
    let restic_repo = work.path().join("restic");
    let restic = |args: &[&str]| {
        std::process::Command::new("restic")
            .args(args)
            .env("RESTIC_PASSWORD", "bench")
            .env("RESTIC_REPOSITORY", &restic_repo)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    match restic(&["init"]) {
        Ok(status) if status.success() => {
            let started = Instant::now();
            let ok = restic(&["backup", jsonl.to_str().unwrap_or_default()])
                .map(|s| s.success())
                .unwrap_or(false);
            let restic_time = started.elapsed().as_secs_f64();
            if ok {
                println!(
                    "| restic backup of the same records as JSONL ({:.0} MiB) | {restic_time:.2} s; cairn/restic = {:.2} | <= 0.5 |",
                    std::fs::metadata(&jsonl).map_or(0, |m| m.len()) as f64 / 1048576.0,
                    full_time / restic_time
                );
            } else {
                println!("| restic backup | failed to run | |");
            }
        }
        _ => println!("| restic | not installed (apt-get install restic) | |"),
    }
    sim.stop().await;
}
