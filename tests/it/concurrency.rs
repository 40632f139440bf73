//! Locks, interruptions and concurrency, as a deployment meets them: the real `cairn` binary
//! killed (SIGKILL) or interrupted (SIGINT) at random points of apply, prune and forget, and
//! two clones sharing one store and remote racing each other. After every kill or race the next
//! command succeeds without `cairn unlock`, `check --read-data` is clean, every snapshot a run
//! reported as pushed is in the remote's state branch, and the newest snapshot holds exactly
//! the org's records (compared with a fault-free full backup of the same org).

use crate::common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::deployment::{
    Deployment, StoreKind, check_is_clean, edit_org, newest_snapshot_is_the_org, simulator,
    succeeded, text,
};
use common::org::admin;

use cairn::snapshot::writer::load_manifest;
use cairn_sim::org::Rng;
use cairn_sim::server::Simulator;
use reqwest::Method;
use serde_json::{Value, json};

/// Runs per command in the kill campaign, and rounds per pair in the race tests
/// (`CAIRN_TEST_ROUNDS` sets both, to try a change quickly or to run a longer campaign).
fn rounds(default: usize) -> usize {
    std::env::var("CAIRN_TEST_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Stops a running command at a random moment of its expected run time, with SIGKILL or
/// SIGINT. Returns how it ended.
fn stop_at_random(child: &mut Child, rng: &mut Rng, typical: Duration, interrupt: bool) -> Output {
    let delay = Duration::from_millis(rng.below(typical.as_millis() as u64 * 13 / 10 + 1));
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if interrupt {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    } else {
        let _ = child.kill();
    }
    let output = std::mem::replace(child, Command::new("true").spawn().expect("true"));
    output.wait_with_output().expect("wait")
}

fn time(f: impl FnOnce() -> Output, what: &str) -> Duration {
    let started = Instant::now();
    let output = f();
    succeeded(&output, what);
    started.elapsed()
}

/// A run that Ctrl-C reached after it set up its handler released its locks.
fn interrupted_released_its_locks(deployment: &Deployment, pid: u32, output: &Output) {
    let holders = deployment.lock_holders();
    assert!(
        !holders
            .iter()
            .any(|h| h.ends_with(&format!("pid {pid} on {}", host()))),
        "an interrupted run left its locks: {holders:?}\n{}",
        text(&output.stderr)
    );
}

/// Scratch directories (unsealed search indexes) a process left in the temporary directory.
fn scratch_dirs_of(pid: u32) -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("cairn-search-{pid}-")))
        .collect()
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    Apply,
    Prune,
    Forget,
}

fn kill_campaign(victim: Victim, kind: StoreKind, seed: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, seed);
    let deployment = Deployment::new(&sim, kind);
    let mut rng = Rng::new(seed);
    let mut last = None;
    let apply = ["apply", "--now", "--wait", "0s"];
    let command: &[&str] = match victim {
        Victim::Apply => &apply,
        Victim::Prune => &["prune", "--wait", "0s"],
        Victim::Forget => &["forget", "--wait", "0s"],
    };
    let typical = time(|| deployment.cairn("a", &apply), "the first apply");
    let typical = match victim {
        Victim::Apply => typical,
        _ => time(|| deployment.cairn("a", command), "the first run"),
    };
    let mut interrupted = 0;
    for round in 0..rounds(50) {
        edit_org(&runtime, &sim, round, &mut last);
        if !matches!(victim, Victim::Apply) {
            // Something for prune and forget to do: retention leaves unreferenced data.
            succeeded(&deployment.cairn("a", &apply), "apply");
        }
        let interrupt = rng.below(2) == 0;
        let mut child = deployment.spawn("a", command);
        let pid = child.id();
        let output = stop_at_random(&mut child, &mut rng, typical, interrupt);
        if interrupt && output.status.code().is_some() {
            interrupted += usize::from(output.status.code() == Some(130));
            interrupted_released_its_locks(&deployment, pid, &output);
        }
        // The same command again, without `unlock`: it must work.
        succeeded(
            &deployment.cairn("a", command),
            &format!("{victim:?} after the kill of round {round}"),
        );
        if matches!(victim, Victim::Apply) {
            // No plaintext outlives the killed run once another cairn has started.
            assert_eq!(scratch_dirs_of(pid), Vec::<String>::new(), "round {round}");
        }
        if !matches!(victim, Victim::Apply) {
            succeeded(&deployment.cairn("a", &apply), "apply after the kill");
        }
        check_is_clean(&deployment, "a");
        newest_snapshot_is_the_org(&runtime, &sim, &deployment);
    }
    assert!(
        interrupted > 0,
        "no run was interrupted by Ctrl-C while it ran"
    );
}

#[test]
fn apply_killed_or_interrupted_anywhere_leaves_nothing_stuck_or_damaged() {
    kill_campaign(Victim::Apply, StoreKind::Git, 11);
}

#[test]
fn prune_killed_or_interrupted_anywhere_leaves_nothing_stuck_or_damaged() {
    kill_campaign(Victim::Prune, StoreKind::Shared, 12);
}

#[test]
fn forget_killed_or_interrupted_anywhere_leaves_nothing_stuck_or_damaged() {
    kill_campaign(Victim::Forget, StoreKind::Git, 13);
}

/// The snapshot a run reported as pushed, or None.
fn reported_snapshot(output: &Output) -> Option<String> {
    let outcome: Value = serde_json::from_slice(&output.stdout).ok()?;
    if outcome["pushed"] != json!(true) {
        return None;
    }
    outcome["results"][0]["snapshot"]
        .as_str()
        .map(str::to_string)
}

fn race(other: &[&str], kind: StoreKind, seed: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, seed);
    let deployment = Deployment::new(&sim, kind);
    let mut rng = Rng::new(seed);
    let mut last = None;
    let apply = ["apply", "--now", "--format", "json"];
    succeeded(&deployment.cairn("a", &apply), "the first apply");
    for round in 0..rounds(40) {
        edit_org(&runtime, &sim, round, &mut last);
        let first = deployment.spawn("a", &apply);
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        let second = deployment.spawn("b", other);
        let first = first.wait_with_output().expect("apply");
        let second = second.wait_with_output().expect("other");
        succeeded(&first, &format!("apply of round {round}"));
        succeeded(&second, &format!("{other:?} of round {round}"));
        let mut pushed: Vec<String> = reported_snapshot(&first).into_iter().collect();
        pushed.extend(reported_snapshot(&second));
        assert!(!pushed.is_empty(), "{}", text(&first.stdout));
        let status = deployment
            .remote_state("state/acme/status.yaml")
            .expect("status");
        for snapshot in &pushed {
            assert!(
                status.contains(snapshot.as_str())
                    && deployment
                        .remote_state(&format!("state/acme/snapshots/{snapshot}.enc"))
                        .is_some(),
                "round {round}: snapshot {snapshot} was reported pushed but the remote's state lacks it:\n{status}"
            );
        }
        check_is_clean(&deployment, "b");
        succeeded(&deployment.cairn("b", &apply), "the next apply");
    }
    newest_snapshot_is_the_org(&runtime, &sim, &deployment);
}

#[test]
fn apply_racing_prune_from_another_clone_loses_nothing() {
    race(&["prune"], StoreKind::Shared, 21);
}

#[test]
fn apply_racing_forget_from_another_clone_loses_nothing() {
    race(&["forget"], StoreKind::Git, 22);
}

#[test]
fn the_same_task_applied_from_two_clones_keeps_both_snapshots() {
    race(&["apply", "--now", "--format", "json"], StoreKind::Git, 23);
}

/// A first apply, then an incremental started against an org whose every answer takes
/// `delay_ms`.
fn slow_apply(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    deployment: &Deployment,
    delay_ms: u64,
) -> (Instant, Child) {
    succeeded(
        &deployment.cairn("a", &["apply", "--now"]),
        "the first apply",
    );
    runtime.block_on(admin(
        sim,
        Method::PUT,
        "faults",
        json!([{"kind": "SLOW", "delayMs": delay_ms}]),
    ));
    (Instant::now(), deployment.spawn("a", &["apply", "--now"]))
}

/// A backup that runs far past the stale time keeps its locks alive by refreshing them: a
/// prune from another clone refuses while it runs (or, given time to wait, waits and then
/// runs), and nothing the backup wrote is lost.
#[test]
fn a_backup_slower_than_the_stale_time_keeps_its_lock_and_prune_waits_for_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 31);
    let mut deployment = Deployment::new(&sim, StoreKind::Shared);
    deployment
        .env
        .push(("CAIRN_LOCK_STALE_AFTER".into(), "1s".into()));
    // Every answer takes a while: the backup runs for several seconds.
    let (started, apply) = slow_apply(&runtime, &sim, &deployment, 400);
    let status_before = deployment.remote_state("state/acme/status.yaml");
    let store = deployment.store();
    let backup_lock = || {
        store
            .locks()
            .expect("locks")
            .into_iter()
            .find(|(_, info)| info.kind == cairn::store::lock::LockKind::Backup)
    };
    while backup_lock().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "no lock taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, taken) = backup_lock().expect("lock");
    let patient = deployment.spawn("b", &["prune", "--wait", "2m"]);
    let mut refused_late = false;
    let mut apply = Some(apply);
    let mut refreshed_late = false;
    while let Some(mut running) = apply.take() {
        if running.try_wait().expect("wait").is_some() {
            let output = running.wait_with_output().expect("apply");
            succeeded(&output, "the slow apply");
            break;
        }
        apply = Some(running);
        let prune = deployment.cairn("b", &["prune", "--wait", "0s"]);
        let lock_age = cairn::time::now_ms() - taken.created_ms;
        if prune.status.success() {
            // Only once the backup's state is pushed (then it lets go of its locks, and exits
            // moments later) may prune run.
            assert_ne!(
                deployment.remote_state("state/acme/status.yaml"),
                status_before,
                "prune ran before the backup's state was pushed"
            );
            continue;
        }
        assert!(
            text(&prune.stderr).contains("locked by a backup"),
            "{}",
            text(&prune.stderr)
        );
        refused_late |= lock_age > 3_000;
        if let Some((_, now)) = backup_lock() {
            refreshed_late |= now.refreshed() > taken.created_ms + 2_000;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the backup was not slow enough to outlive its stale time: {:?}",
        started.elapsed()
    );
    assert!(refused_late, "prune was never refused past the stale time");
    assert!(refreshed_late, "the lock was never refreshed");
    let patient = patient.wait_with_output().expect("prune");
    succeeded(&patient, "the waiting prune");
    assert!(
        text(&patient.stderr).contains("waiting up to 2 min for the backup"),
        "{}",
        text(&patient.stderr)
    );
    runtime.block_on(admin(&sim, Method::DELETE, "faults", json!({})));
    check_is_clean(&deployment, "a");
    succeeded(
        &deployment.cairn("a", &["apply", "--now"]),
        "the next apply",
    );
    newest_snapshot_is_the_org(&runtime, &sim, &deployment);
}

/// A last snapshot whose data is gone from the store is never built on: the next apply says
/// so and fetches the objects it affects in full; the snapshot reads back whole.
#[test]
fn an_apply_never_builds_on_a_parent_whose_data_is_gone() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 41);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    succeeded(
        &deployment.cairn("a", &["apply", "--now"]),
        "the first apply",
    );
    let status: Value = serde_yaml::from_str(
        &deployment
            .remote_state("state/acme/status.yaml")
            .expect("status"),
    )
    .expect("YAML");
    let last = status["lastApplied"]["snapshot"]
        .as_str()
        .expect("snapshot")
        .to_string();
    let store = deployment.store();
    let manifest = load_manifest(&store, &last).expect("manifest");
    let lost = &manifest.objects["Account"].base[0].blob;
    std::fs::remove_file(
        deployment
            .root
            .join("store")
            .join(cairn::store::blob_path(lost)),
    )
    .expect("delete a blob");
    let mut last_account = None;
    edit_org(&runtime, &sim, 0, &mut last_account);
    let next = deployment.cairn("a", &["apply", "--now"]);
    succeeded(&next, "the apply after the loss");
    let out = text(&next.stdout);
    // Only the object whose data is gone starts over; the others stay incremental. File
    // bodies are not objects the run fetches: they follow their records.
    let objects = manifest
        .objects
        .keys()
        .filter(|o| !cairn::snapshot::files::is_body_object(o))
        .count();
    assert!(objects > 1, "{manifest:?}");
    assert!(
        out.contains(&format!(
            "WARNING  the last snapshot {last} has damaged or missing blobs in Account (1), so this run fetched those objects in full"
        )) && out.contains(&format!("{objects} objects (1 full, {} incremental)", objects - 1)),
        "{out}"
    );
    newest_snapshot_is_the_org(&runtime, &sim, &deployment);
}

/// Ctrl-C while a backup runs: the run stops, is recorded in the task's history as
/// interrupted (not a failure: the task stays Healthy), its locks are released, and it exits
/// 130; the next run completes.
#[test]
fn ctrl_c_during_a_backup_records_it_as_interrupted_and_releases_the_locks() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 51);
    let deployment = Deployment::new(&sim, StoreKind::Git);
    let (started, apply) = slow_apply(&runtime, &sim, &deployment, 300);
    let pid = apply.id();
    // The backup is under way once its task lock is on the remote.
    while !deployment
        .lock_holders()
        .iter()
        .any(|l| l.starts_with("locks/task-"))
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no lock taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &apply.id().to_string()])
        .status();
    let output = apply.wait_with_output().expect("apply");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("interrupted: stopping the running backup"),
        "{}",
        text(&output.stderr)
    );
    assert!(deployment.lock_holders().is_empty(), "locks left behind");
    assert_eq!(
        scratch_dirs_of(pid),
        Vec::<String>::new(),
        "plaintext left behind"
    );
    let status: Value = serde_yaml::from_str(
        &deployment
            .remote_state("state/acme/status.yaml")
            .expect("status"),
    )
    .expect("YAML");
    assert_eq!(status["history"][0]["outcome"], "interrupted", "{status:?}");
    assert_eq!(status["lastAttempted"]["outcome"], "success", "{status:?}");
    runtime.block_on(admin(&sim, Method::DELETE, "faults", json!({})));
    let rows = deployment.cairn("a", &["status", "--format", "json"]);
    assert!(
        text(&rows.stdout).contains("\"health\": \"Healthy\""),
        "{}",
        text(&rows.stdout)
    );
    succeeded(
        &deployment.cairn("a", &["apply", "--now"]),
        "the next apply",
    );
    check_is_clean(&deployment, "a");
    newest_snapshot_is_the_org(&runtime, &sim, &deployment);
}

/// Forget changes the state branch with the store: a forgotten snapshot leaves the task's
/// status, its state file and `cairn snapshots`; `--snapshot` forgets one by id; a manifest no
/// run recorded (left by a killed run) is an orphan, never counted as the latest, and removed.
#[test]
fn forget_updates_the_state_and_cleans_orphans_of_killed_runs() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 61);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let mut last = None;
    for round in 0..3 {
        edit_org(&runtime, &sim, round, &mut last);
        succeeded(&deployment.cairn("a", &["apply", "--now"]), "apply");
    }
    let status: Value = serde_yaml::from_str(
        &deployment
            .remote_state("state/acme/status.yaml")
            .expect("status"),
    )
    .expect("YAML");
    let ids: Vec<String> = status["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .filter_map(|row| row["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 3, "{status:?}");
    // What a run killed between its manifest and its state commit leaves: a newer manifest.
    let store = deployment.store();
    let mut writer = cairn::snapshot::SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", std::iter::empty())
        .expect("write");
    let (orphan, _) = writer
        .finish(
            "2099-01-01T00:00:00Z",
            cairn::snapshot::Source {
                kind: "salesforce".into(),
                account: "00D000000000001".into(),
                api_version: "62.0".into(),
            },
            None,
            cairn::snapshot::Outcome::Complete,
        )
        .expect("orphan");
    drop(store);
    let middle = &ids[1];
    let forgot = deployment.cairn("a", &["forget", "--snapshot", &middle[..10]]);
    succeeded(&forgot, "forget");
    let out = text(&forgot.stdout);
    assert!(
        out.contains(&format!("remove  {middle}"))
            && out.contains(&format!("remove  {orphan}"))
            && out.contains("(orphan: no run recorded it)")
            && out.contains(&format!("keep    {}", ids[0]))
            && out.contains("state committed (pushed)"),
        "{out}"
    );
    let status: Value = serde_yaml::from_str(
        &deployment
            .remote_state("state/acme/status.yaml")
            .expect("status"),
    )
    .expect("YAML");
    let rows: Vec<&str> = status["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .filter_map(|row| row["id"].as_str())
        .collect();
    assert_eq!(rows, [ids[0].as_str(), ids[2].as_str()], "{status:?}");
    assert!(
        deployment
            .remote_state(&format!("state/acme/snapshots/{middle}.enc"))
            .is_none()
    );
    let listed = deployment.cairn("b", &["snapshots"]);
    assert!(
        !text(&listed.stdout).contains(&middle[..12])
            && !text(&listed.stdout).contains(&orphan[..12]),
        "{}",
        text(&listed.stdout)
    );
    // check and prune agree on what no snapshot or index needs.
    let checked = deployment.cairn("a", &["check"]);
    succeeded(&checked, "check");
    let leftover = text(&checked.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("warning: ")?
                .split(" blobs belong to no snapshot")
                .next()?
                .parse::<usize>()
                .ok()
        })
        .expect("leftovers after forget");
    let dry = deployment.cairn("a", &["prune", "--dry-run"]);
    assert!(
        text(&dry.stdout).starts_with(&format!("would delete {leftover} blobs")),
        "check counts {leftover}: {}",
        text(&dry.stdout)
    );
    succeeded(&deployment.cairn("a", &["prune"]), "prune");
    let checked = deployment.cairn("a", &["check", "--read-data"]);
    succeeded(&checked, "check after prune");
    assert!(
        !text(&checked.stdout).contains("belong to no snapshot"),
        "{}",
        text(&checked.stdout)
    );
    newest_snapshot_is_the_org(&runtime, &sim, &deployment);
}

/// The search index is derived data: damaged or lost, it never fails a backup; the next apply
/// rebuilds it from every snapshot the task has, so records deleted long ago are still found.
/// A clean apply leaves nothing behind: the index files a new version supersedes are deleted.
#[test]
fn a_damaged_or_lost_search_index_is_rebuilt_and_never_fails_a_backup() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 71);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    runtime.block_on(admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Quokka Steady"}),
    ));
    succeeded(
        &deployment.cairn("a", &["apply", "--now"]),
        "the first apply",
    );
    // Round 1 creates "Round 1"; round 2 deletes it. The index changes with every apply.
    let mut last = None;
    for round in 1..=2 {
        edit_org(&runtime, &sim, round, &mut last);
        succeeded(&deployment.cairn("a", &["apply", "--now"]), "a clean apply");
    }
    let checked = deployment.cairn("a", &["check", "--read-data"]);
    succeeded(&checked, "check after clean applies");
    assert!(
        !text(&checked.stdout).contains("belong to no snapshot"),
        "{}",
        text(&checked.stdout)
    );
    let root = deployment.root.join("store");
    let list = std::fs::read_to_string(root.join("search/acme")).expect("index pointer");
    let list_file = root.join(cairn::store::blob_path(list.trim()));
    let mut bytes = std::fs::read(&list_file).expect("list");
    bytes[30] ^= 0x10;
    std::fs::write(&list_file, &bytes).expect("damage");
    let checked = deployment.cairn("a", &["check", "--read-data"]);
    succeeded(&checked, "check (warnings only)");
    assert!(
        text(&checked.stdout).contains("search index list")
            && text(&checked.stdout).contains("affects the search index of task acme"),
        "{}",
        text(&checked.stdout)
    );
    for (round, why) in [
        (3, "the search index could not be read"),
        (4, "the task had no search index"),
    ] {
        edit_org(&runtime, &sim, round, &mut last);
        let applied = deployment.cairn("a", &["apply", "--now"]);
        succeeded(&applied, "apply over a broken index");
        // keepLast 3: the three snapshots before this one (retention forgets the oldest after).
        assert!(
            text(&applied.stdout).contains(&format!("WARNING  {why}"))
                && text(&applied.stdout)
                    .contains("it was rebuilt from the task's 3 earlier snapshots\n"),
            "{}",
            text(&applied.stdout)
        );
        let found = deployment.cairn("a", &["search", "quokka"]);
        assert!(
            text(&found.stdout).contains("Name: Quokka Steady"),
            "round {round}: {}",
            text(&found.stdout)
        );
        // Deleted in an earlier snapshot than the one the rebuild started from.
        let earlier = format!("Round {}", round - 1);
        let found = deployment.cairn("a", &["search", &format!("\"{earlier}\""), "--deleted"]);
        assert!(
            text(&found.stdout).contains("[deleted ") && text(&found.stdout).ends_with("\n1 hit\n"),
            "round {round}: {}",
            text(&found.stdout)
        );
        // Next, the index is lost altogether.
        std::fs::remove_file(root.join("search/acme")).expect("lose the pointer");
    }
    succeeded(&deployment.cairn("a", &["apply", "--now"]), "apply");
    check_is_clean(&deployment, "a");
}
