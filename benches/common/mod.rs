//! Measuring helpers and synthetic records shared by the benchmarks.

#![allow(dead_code)]

use cairn_sim::org::Rng;

/// The allocator the `cairn` binary runs with (src/main.rs), so benchmarks measure the same;
/// each benchmark's `main` sets its options as the binary does, first thing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A field of /proc/self/status in MiB (`VmRSS:` now, `VmHWM:` the peak).
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Bytes of every file under a directory.
/// CPU seconds this process has used, user and system, all threads (from /proc/self/stat,
/// in clock ticks of 10 ms); 0 where that file is missing.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) close with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

pub fn dir_bytes(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

/// A synthetic Account's Id.
pub fn id(n: u64) -> String {
    format!("0015g{n:010}AAA")
}

/// An Account as canonical JSON, about 500 bytes.
pub fn account(n: u64, generation: u64) -> Vec<u8> {
    let cities = [
        "Paris", "Lagos", "Osaka", "Lima", "Oslo", "Pune", "Austin", "Tartu",
    ];
    format!(
        concat!(
            "{{\"Id\":\"{id}\",\"Name\":\"Account {n} Holdings\",\"Type\":\"Customer - Direct\",\"Industry\":\"Energy\",",
            "\"AnnualRevenue\":{rev},\"NumberOfEmployees\":{emp},\"Phone\":\"+1 555 {phone:04}\",",
            "\"Website\":\"https://www.example.com/accounts/{n}\",\"BillingStreet\":\"{street} Main Street\",",
            "\"BillingCity\":\"{city}\",\"BillingPostalCode\":\"{zip:05}\",\"BillingCountry\":\"FR\",",
            "\"OwnerId\":\"0055g0000000001AAA\",\"CreatedDate\":\"2024-03-0{day}T10:11:12.000+0000\",",
            "\"LastModifiedDate\":\"2025-06-1{day}T08:09:10.000+0000\",\"SystemModstamp\":\"2025-06-1{day}T08:09:10.000+0000\",",
            "\"External_Key__c\":\"{key:016x}{key2:016x}\",",
            "\"Description\":\"Key account in the {city} region, generation {generation}; renewal due next quarter.\"}}"
        ),
        id = id(n),
        n = n,
        rev = (n * 7919) % 90_000_000 + 100_000,
        emp = n % 20_000,
        phone = n % 10_000,
        street = n % 999 + 1,
        city = cities[(n % 8) as usize],
        zip = n % 99_999,
        day = n % 9 + 1,
        generation = generation,
        // Real records carry values that do not compress (keys, free text): 32 hex digits here.
        key = Rng::new(n ^ generation.rotate_left(32)).next_u64(),
        key2 = Rng::new(!n).next_u64(),
    )
    .into_bytes()
}

/// A new store under target/ (benchmark data is large; /tmp may be a small tmpfs).
pub fn bench_store() -> (tempfile::TempDir, cairn::store::Store) {
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
        .expect("a directory under target/");
    let store = cairn::store::Store::init(
        Box::new(cairn::store::backend::LocalBackend::new(dir.path())),
        cairn::store::crypto::MasterKey::generate().expect("key"),
    )
    .expect("init");
    (dir, store)
}

/// A Salesforce connector logged in to the simulator with its refresh token, allowed 90% of
/// the org's API allocation.
pub fn connector(
    sim: &cairn_sim::server::Simulator,
) -> cairn::source::salesforce::SalesforceConnector {
    connector_with(sim, cairn::source::salesforce::FetchSettings::new("62.0"))
}

/// As [`connector`], with these fetch settings (metadata types, say).
#[allow(dead_code)]
pub fn connector_with(
    sim: &cairn_sim::server::Simulator,
    settings: cairn::source::salesforce::FetchSettings,
) -> cairn::source::salesforce::SalesforceConnector {
    use cairn::source::salesforce::{
        Credentials, Environment, LoginConfig, SalesforceClient, SalesforceConnector,
    };
    SalesforceConnector::new(
        SalesforceClient::new(
            LoginConfig {
                environment: Environment::Production,
                login_url: Some(sim.url()),
                api_version: "62.0".into(),
                credentials: Credentials::RefreshToken {
                    client_id: sim.credentials.client_id.clone(),
                    client_secret: None,
                    refresh_token: zeroize::Zeroizing::new(sim.credentials.refresh_token.clone()),
                },
            },
            90,
            reqwest::Client::new(),
        ),
        settings,
    )
}
