//! The whole `cairn apply` as a user runs it (issue 28): the release binary, a config repository
//! in git, the state branch, search on, against the simulator holding an org spread over
//! fifteen objects (seven of records people search, the files' records, users):
//!
//!     cargo bench --bench apply                 # 1,000,000 records
//!     CAIRN_BENCH_RECORDS=10000000 cargo bench --bench apply
//!
//! Runs, each as its own `cairn` process (so its peak memory is its own; the simulator is
//! `cairn sim serve` in another): a full apply with search on, one with `search.index: false`
//! (into a second store, for the index's share), then 1% of the records changed and an
//! incremental apply, then ten more (`CAIRN_BENCH_DAYS`), each a day (of the org's clock)
//! after another 1% changed, folds of deltas and merges of index segments included (the
//! seventh day's is the weekly full pass, `fullBackup.everyDays`: the slowest); then
//! `cairn search` end to end for a few queries. With `restic` installed (Debian package), the
//! same records, exported as JSON lines, are backed up with it in the same run for the ratios.
//! File bodies and metadata are off, so both tools hold the same records.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");
/// Base64 of 32 bytes: the raw master key a CI deployment holds (no key derivation per run).
const RAW_KEY: &str = "Y2Fpcm4tYmVuY2gtcmF3LWtleS0zMi1ieXRlcy0hISE=";

/// What one child process took: wall seconds, peak resident MiB, and what it printed.
struct Run {
    seconds: f64,
    peak_mib: f64,
    stdout: String,
}

/// Runs a command to its end and measures it. Its peak memory comes from `wait4`, so it is
/// this child's alone (the workspace denies unsafe code; this one system call, in a benchmark
/// only, is the exception: no safe wrapper gives a single child's rusage).
#[allow(unsafe_code)]
// Reaped by wait4 below, which std's `Child::wait` cannot stand in for.
#[allow(clippy::zombie_processes)]
fn run(command: &mut Command) -> Run {
    use std::os::unix::process::ExitStatusExt;
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("start the command");
    let pid = child.id() as libc::pid_t;
    // Read the pipes while it runs (a full pipe would stall it), then reap it with wait4.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    let mut stdout = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    let mut status = 0;
    // SAFETY: a plain system call on our own child, with pointers to locals.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let reaped = libc::wait4(pid, &mut status, 0, &mut usage);
        assert_eq!(reaped, pid, "wait4");
        usage
    };
    let seconds = started.elapsed().as_secs_f64();
    let stderr = errors.join().unwrap_or_default();
    let status = std::process::ExitStatus::from_raw(status);
    assert!(
        status.success(),
        "{command:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    Run {
        seconds,
        // Linux gives ru_maxrss in KiB.
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@cairn.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@cairn.invalid")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// `cairn sim serve` in its own process, and what its banner says.
struct Sim {
    process: std::process::Child,
    url: String,
    client_id: String,
    refresh_token: String,
    access_token: String,
}

impl Sim {
    fn start(records: usize) -> Sim {
        use std::io::BufRead;
        let mut process = Command::new(CAIRN)
            .args(["sim", "serve", "--port", "0", "--seed", "1"])
            .args([
                "--records",
                &records.to_string(),
                "--api-limit",
                "1000000000",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cairn sim serve");
        let banner = std::io::BufReader::new(process.stdout.take().expect("stdout"));
        let mut said = std::collections::BTreeMap::new();
        for line in banner.lines() {
            let line = line.expect("banner");
            if line.starts_with("Stop with") {
                break;
            }
            for name in ["instance URL", "client id", "refresh token", "access token"] {
                if let Some(value) = line.trim().strip_prefix(name) {
                    let value = value.split_whitespace().next().unwrap_or_default();
                    said.insert(name, value.to_string());
                }
            }
        }
        let field = |name: &str| said.get(name).cloned().expect("the banner names it");
        Sim {
            url: field("instance URL"),
            client_id: field("client id"),
            refresh_token: field("refresh token"),
            access_token: field("access token"),
            process,
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A config repository with one task on the simulator, its store initialised.
fn project(root: &Path, sim: &Sim, search: bool) -> PathBuf {
    let config = root.join("config");
    std::fs::create_dir_all(config.join("tasks")).expect("config");
    std::fs::write(
        config.join("cairn.yaml"),
        format!(
            "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: {}\n",
            root.join("store").display()
        ),
    )
    .expect("cairn.yaml");
    std::fs::write(
        config.join("tasks/acme.yaml"),
        format!(
            "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nschedule: \"0 3 * * *\"\n\
             source:\n  type: salesforce\n  environment: production\n  loginUrl: {}\n  \
             apiUsageLimitPercent: 100\n  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      \
             refreshTokenEnv: SF_REFRESH_TOKEN\nfiles:\n  enabled: false\nmetadata:\n  enabled: false\n\
             search:\n  index: {search}\nretention:\n  keepLast: 30\n",
            sim.url
        ),
    )
    .expect("task");
    git(&config, &["init", "--quiet", "-b", "main"]);
    run(cairn(&config, sim).args(["init"]));
    git(&config, &["add", "-A"]);
    git(&config, &["commit", "--quiet", "-m", "Back up Acme"]);
    config
}

fn cairn(config: &Path, sim: &Sim) -> Command {
    let mut command = Command::new(CAIRN);
    command
        .arg("-C")
        .arg(config)
        .env("CAIRN_KEY", RAW_KEY)
        .env("CAIRN_PASSPHRASE", "bench passphrase")
        .env("SF_CLIENT_ID", &sim.client_id)
        .env("SF_REFRESH_TOKEN", &sim.refresh_token)
        .env("NO_COLOR", "1")
        .env_remove("CI");
    command
}

fn apply(config: &Path, sim: &Sim) -> Run {
    run(cairn(config, sim).args(["apply", "--now", "-q"]))
}

/// Changes every hundredth record of the export (each object's records, by Id, from the
/// `day`th), through the REST API as an integration would, 200 to a call.
async fn change_records(sim: &Sim, exported: &Path, day: usize) -> usize {
    use std::io::BufRead;
    let http = reqwest::Client::new();
    let mut changed = 0;
    for (object, field) in [
        ("Account", "Description"),
        ("Contact", "Title"),
        ("Opportunity", "Name"),
        ("Case", "Description"),
        ("Lead", "Company"),
        ("Task", "Subject"),
        ("Invoice__c", "Name"),
    ] {
        let Ok(file) = std::fs::File::open(exported.join(format!("{object}.jsonl"))) else {
            continue;
        };
        let ids: Vec<String> = std::io::BufReader::new(file)
            .lines()
            .skip(day % 100)
            .step_by(100)
            .map(|line| {
                let record: serde_json::Value =
                    serde_json::from_str(&line.expect("a line")).expect("JSON");
                record["Id"].as_str().expect("an Id").to_string()
            })
            .collect();
        for (batch, chunk) in ids.chunks(200).enumerate() {
            let records: Vec<serde_json::Value> = chunk
                .iter()
                .enumerate()
                .map(|(n, id)| {
                    serde_json::json!({
                        "attributes": {"type": object},
                        "Id": id,
                        field: format!("Reviewed on call {batch}-{n}"),
                    })
                })
                .collect();
            let answer: serde_json::Value = http
                .patch(format!(
                    "{}/services/data/v62.0/composite/sobjects",
                    sim.url
                ))
                .bearer_auth(&sim.access_token)
                .json(&serde_json::json!({"allOrNone": false, "records": records}))
                .send()
                .await
                .expect("the simulator answers")
                .json()
                .await
                .expect("JSON");
            changed += answer
                .as_array()
                .map_or(0, |a| a.iter().filter(|r| r["success"] == true).count());
        }
    }
    changed
}

/// Moves the simulator's clock a day on (its admin endpoint).
async fn advance_a_day(sim: &Sim) {
    let answer = reqwest::Client::new()
        .post(format!("{}/__sim/clock", sim.url))
        .bearer_auth(&sim.access_token)
        .json(&serde_json::json!({"advanceMs": 86_400_000}))
        .send()
        .await
        .expect("the simulator answers");
    assert!(answer.status().is_success(), "the clock moves: {answer:?}");
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let records: usize = std::env::var("CAIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let sim = Sim::start(records);
    let work = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
        .expect("a directory under target/");
    let with_search = project(&work.path().join("search-on"), &sim, true);
    let without_search = project(&work.path().join("search-off"), &sim, false);

    let full = apply(&with_search, &sim);
    let store_bytes = common::dir_bytes(&work.path().join("search-on/store"));
    let full_off = apply(&without_search, &sim);
    let store_off_bytes = common::dir_bytes(&work.path().join("search-off/store"));

    // The records of the full backup, for restic and for the Ids to change.
    let exported = work.path().join("export");
    run(cairn(&with_search, &sim)
        .args(["export", "-q", "--out"])
        .arg(&exported));
    let changed = change_records(&sim, &exported, 0).await;
    let incremental = apply(&with_search, &sim);
    // Days after, each changing another 1%: what a schedule pays, folds and merges included.
    let days: usize = std::env::var("CAIRN_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut daily = Vec::new();
    for day in 1..=days {
        // The day's changes, then the nightly apply a day later in the org: changes made
        // minutes before a run are fetched again by the next (its window reaches back five
        // minutes); a day's changes are not.
        change_records(&sim, &exported, day).await;
        advance_a_day(&sim).await;
        daily.push(apply(&with_search, &sim));
    }

    // Search as a user runs it: a word, two words, a phrase, an Id.
    let some_id = first_id(&exported.join("Account.jsonl"));
    let queries = [
        "Holdings".to_string(),
        "Oslo AND renewal".to_string(),
        "\"Reviewed on call\"".to_string(),
        some_id,
    ];
    let mut search_times = Vec::new();
    let mut each_query = vec![Vec::new(); queries.len()];
    let mut search_peak: f64 = 0.0;
    for _ in 0..3 {
        for (n, query) in queries.iter().enumerate() {
            let searched = run(cairn(&with_search, &sim).args(["search", "--limit", "10", query]));
            search_times.push(searched.seconds);
            each_query[n].push(searched.seconds);
            search_peak = search_peak.max(searched.peak_mib);
        }
    }

    let restic = restic_backup(&exported, &work.path().join("restic"));

    println!(
        "apply benchmark: {records} records spread over fifteen objects in `cairn sim serve`; every figure is one `cairn` process"
    );
    println!("| measure | cairn | restic | goal |");
    println!("|---|---|---|---|");
    let ratio = |cairn: f64| match &restic {
        Some(r) => format!("{:.2}× restic", cairn / r.seconds),
        None => "(restic not installed)".into(),
    };
    let restic_seconds = restic
        .as_ref()
        .map_or("—".into(), |r| format!("{:.2} s", r.seconds));
    println!(
        "| full apply, search on | {:.2} s ({}) | {restic_seconds} | ≤ 0.5× |",
        full.seconds,
        ratio(full.seconds)
    );
    println!(
        "| full apply, `search.index: false` | {:.2} s ({}) | | |",
        full_off.seconds,
        ratio(full_off.seconds)
    );
    println!(
        "| peak RSS, full apply search on / off | {:.0} / {:.0} MiB | {} | ≤ 150 MiB (1M), ≤ 160 MiB (10M) |",
        full.peak_mib,
        full_off.peak_mib,
        restic
            .as_ref()
            .map_or("—".into(), |r| format!("{:.0} MiB", r.peak_mib))
    );
    println!(
        "| store incl. index (index alone) | {:.1} MiB ({:.1} MiB) | {} | ≤ 1.0× restic |",
        mib(store_bytes),
        mib(store_bytes.saturating_sub(store_off_bytes)),
        restic.as_ref().map_or("—".into(), |r| format!(
            "{:.1} MiB; cairn/restic = {:.2}",
            mib(r.repository_bytes),
            store_bytes as f64 / r.repository_bytes as f64
        ))
    );
    println!(
        "| incremental apply, 1% changed ({changed} records) | {:.2} s = {:.1}% of the full; peak {:.0} MiB | | ≤ 10% |",
        incremental.seconds,
        100.0 * incremental.seconds / full.seconds,
        incremental.peak_mib
    );
    if !daily.is_empty() {
        let seconds: Vec<f64> = daily.iter().map(|run| run.seconds).collect();
        let slowest = seconds.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {days} incremental applies after it, another 1% each: median (slowest) | {:.2} s = {:.1}% ({:.2} s = {:.1}%); peak {:.0} MiB | | ≤ 10% |",
            median(seconds.clone()),
            100.0 * median(seconds.clone()) / full.seconds,
            slowest,
            100.0 * slowest / full.seconds,
            daily.iter().map(|run| run.peak_mib).fold(0.0, f64::max)
        );
    }
    println!(
        "| `cairn search` end to end, median of {} (slowest) | {:.0} ms ({:.0} ms); peak {:.0} MiB | | ≤ 100 ms at 10M, within 20% of 1M |",
        search_times.len(),
        1000.0 * median(search_times.clone()),
        1000.0 * search_times.iter().cloned().fold(0.0, f64::max),
        search_peak
    );
    if std::env::var_os("CAIRN_BENCH_SHOW").is_some() {
        for (query, times) in queries.iter().zip(each_query) {
            println!("search {query}: median {:.0} ms", 1000.0 * median(times));
        }
        println!("\nthe full apply said:\n{}", full.stdout);
        println!("the incremental said:\n{}", incremental.stdout);
    }
}

fn first_id(jsonl: &Path) -> String {
    use std::io::BufRead;
    let file = std::fs::File::open(jsonl).expect("exported Accounts");
    let line = std::io::BufReader::new(file)
        .lines()
        .next()
        .expect("an Account")
        .expect("a line");
    let first: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    first["Id"].as_str().expect("an Id").to_string()
}

struct Restic {
    seconds: f64,
    peak_mib: f64,
    repository_bytes: u64,
}

/// `restic backup` of the exported records, or None when restic is not installed.
fn restic_backup(exported: &Path, repository: &Path) -> Option<Restic> {
    let restic = || {
        let mut command = Command::new("restic");
        command
            .env("RESTIC_PASSWORD", "bench")
            .env("RESTIC_REPOSITORY", repository)
            .env("RESTIC_CACHE_DIR", repository.with_extension("cache"));
        command
    };
    let installed = restic()
        .arg("version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return None;
    }
    run(restic().arg("init"));
    let backed_up = run(restic().arg("backup").arg(exported));
    Some(Restic {
        seconds: backed_up.seconds,
        peak_mib: backed_up.peak_mib,
        repository_bytes: common::dir_bytes(repository),
    })
}
