//! Metadata backup of a large simulated org (issue 25):
//!
//!     cargo bench --bench metadata           # CAIRN_BENCH_COMPONENTS=… for another size
//!
//! A full backup of every component (listed, then retrieved in chunks under the 10,000-file
//! limit): wall time, API calls, retrieves. Then one Apex class edited and one flow deleted:
//! the incremental's API calls and retrieves, which should not grow with the org.

mod common;

use std::time::Instant;

use cairn::backup::{BackupOptions, backup};
use cairn::source::salesforce::{FetchSettings, MetadataScope};
use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

const T0: i64 = 1_749_988_800_000;

fn metadata_calls(sim: &Simulator) -> std::collections::BTreeMap<String, u64> {
    sim.state.metadata_calls.lock().expect("counts").clone()
}

fn delta(
    after: &std::collections::BTreeMap<String, u64>,
    before: &std::collections::BTreeMap<String, u64>,
) -> String {
    after
        .iter()
        .map(|(op, n)| format!("{op} {}", n - before.get(op).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let extra: usize = std::env::var("CAIRN_BENCH_COMPONENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 1,
                population: Population::spread(200),
                api_max: 1_000_000,
                clock: Clock::fixed(T0),
                extra_metadata: extra,
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator");
    let components = sim.state.metadata.read().expect("metadata").len();
    let (_dir, store) = common::bench_store();
    let connector = common::connector_with(
        &sim,
        FetchSettings {
            metadata: Some(MetadataScope {
                include: vec!["*".into()],
                exclude: Vec::new(),
            }),
            ..FetchSettings::new("62.0")
        },
    );
    // Metadata only: no record object is chosen.
    let options = BackupOptions {
        include: Vec::new(),
        ..BackupOptions::new("bench")
    };
    let at = |ms: i64| cairn::time::format_datetime_z(ms);

    let before = metadata_calls(&sim);
    let started = Instant::now();
    let full = backup(&connector, &store, &options, None, &at(T0))
        .await
        .expect("full backup");
    let full_time = started.elapsed().as_secs_f64();
    let stored = full.manifest.objects["Metadata"].base_records;
    println!(
        "full: {components} components in the org, {stored} backed up in {full_time:.2} s, {} API calls ({})",
        full.api_calls,
        delta(&metadata_calls(&sim), &before)
    );

    // An admin edits a class and deletes a flow, an hour later.
    {
        let mut org = sim.state.org.write().expect("org");
        org.clock.advance(3_600_000);
    }
    {
        let mut metadata = sim.state.metadata.write().expect("metadata");
        let now = T0 + 3_600_000;
        if let Some(class) = metadata.iter_mut().find(|c| c.kind == "ApexClass") {
            class.source.push_str("\n// edited\n");
            class.modified = now;
        }
        if let Some(at) = metadata.iter().position(|c| c.kind == "Flow") {
            metadata.remove(at);
        }
    }
    let before = metadata_calls(&sim);
    let started = Instant::now();
    let incremental = backup(
        &connector,
        &store,
        &options,
        Some((&full.snapshot, &full.manifest)),
        &at(T0 + 3_600_000),
    )
    .await
    .expect("incremental");
    let run = incremental
        .objects
        .iter()
        .find(|o| o.object == "Metadata")
        .expect("the metadata object");
    println!(
        "incremental after 1 edit + 1 deletion: {:.2} s, {} API calls ({}), {} modified, {} deleted",
        started.elapsed().as_secs_f64(),
        incremental.api_calls,
        delta(&metadata_calls(&sim), &before),
        run.modified,
        run.deleted
    );
}
