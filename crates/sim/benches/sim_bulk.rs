//! The simulator must never be the bottleneck (issue 3): serve 1,000,000 Account records
//! through Bulk API 2.0 CSV at >= 500,000 records/s, holding the org in <= 1.5 KB per record.
//!
//!     cargo bench --bench sim_bulk
//!
//! Memory is the growth of the process's resident set while the org is generated; throughput is
//! a real client (reqwest over loopback) creating the job and reading every CSV page.

use std::time::Instant;

/// The allocator the `cairn` binary runs with, so `cairn sim serve`'s memory is what is measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The process's resident set now (`VmRSS:` of /proc/self/status), in bytes.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

const RECORDS: usize = 1_000_000;
const PAGE: usize = 50_000;
const QUERY: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, Phone, Website, \
BillingStreet, BillingCity, BillingPostalCode, BillingCountry, OwnerId, Owner.Name, CreatedDate, \
LastModifiedDate, SystemModstamp FROM Account";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let before = resident_bytes();
    let generated = Instant::now();
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 1,
                population: Population::only("Account", RECORDS),
                api_max: 10_000_000,
                ..OrgOptions::default()
            },
            bulk_delay_ms: 0,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts");
    let generation = generated.elapsed();
    let after = resident_bytes();
    let records = sim.state.org.read().map(|o| o.record_count()).unwrap_or(0);
    println!(
        "org of {records} records generated in {:.2} s; resident memory grew {:.1} MiB = {:.0} bytes per record",
        generation.as_secs_f64(),
        (after - before) as f64 / 1048576.0,
        (after - before) as f64 / records as f64
    );

    let client = reqwest::Client::new();
    let base = format!("{}/services/data/v62.0/jobs/query", sim.url());
    let token = sim.credentials.access_token.clone();
    for run in 1..=3 {
        let started = Instant::now();
        let job: serde_json::Value = client
            .post(&base)
            .bearer_auth(&token)
            .json(&serde_json::json!({"operation": "query", "query": QUERY}))
            .send()
            .await
            .expect("create job")
            .json()
            .await
            .expect("job info");
        let id = job["id"].as_str().expect("job id").to_string();
        let mut locator = String::new();
        let mut rows = 0usize;
        let mut bytes = 0usize;
        loop {
            let mut url = format!("{base}/{id}/results?maxRecords={PAGE}");
            if !locator.is_empty() {
                url.push_str(&format!("&locator={locator}"));
            }
            let response = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("results page");
            let next = response.headers()["Sforce-Locator"]
                .to_str()
                .expect("locator")
                .to_string();
            let body = response.bytes().await.expect("body");
            rows += body.iter().filter(|&&b| b == b'\n').count() - 1;
            bytes += body.len();
            if next == "null" {
                break;
            }
            locator = next;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(rows, RECORDS, "every record served once");
        println!(
            "run {run}: {rows} records ({:.0} MiB of CSV, 17 columns incl. Owner.Name) in {elapsed:.2} s = {:.0} records/s",
            bytes as f64 / 1048576.0,
            rows as f64 / elapsed
        );
    }
    sim.stop().await;
}
