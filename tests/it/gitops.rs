//! The GitOps loop end to end: a config repository with a bare "remote", the simulator as the
//! org, and the real `cairn` binary running plan, apply, status and snapshots.

use crate::common;

use common::git;

use common::org::admin;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

/// 2025-06-15T12:00:00Z, the simulated org's clock at start.
pub(crate) const T0: i64 = 1_749_988_800_000;
pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const DAY: i64 = 24 * HOUR;

pub(crate) fn at(ms: i64) -> String {
    cairn::time::format_datetime_z(ms)
}

async fn simulator(seed: u64) -> Simulator {
    simulator_of(seed, 400).await
}

/// A simulated org of about `records` records, its clock fixed at T0.
pub(crate) async fn simulator_of(seed: u64, records: usize) -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed,
                population: Population::spread(records),
                clock: Clock::fixed(T0),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator")
}

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: ../store\n";

fn task(id: &str, sim: &Simulator, extra: &str) -> String {
    format!(
        "apiVersion: cairn/v1\nkind: BackupTask\nid: {id}\nname: Task {id}\nschedule: \"0 3 * * *\"\nsource:\n  type: salesforce\n  environment: production\n  loginUrl: {}\n  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      refreshTokenEnv: SF_REFRESH_TOKEN_{}\nretention:\n  keepLast: 10\n  autoArchivedDays: 30\n{extra}",
        sim.url(),
        id.replace('-', "_").to_uppercase()
    )
}

/// A bare remote, a clone holding the config, and the environment cairn runs with.
pub(crate) struct Fleet {
    pub(crate) root: tempfile::TempDir,
    pub(crate) env: Vec<(String, String)>,
}

pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Fleet {
    pub(crate) fn new(sim: &Simulator) -> Fleet {
        let root = tempfile::tempdir().expect("dir");
        git(
            root.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        git(root.path(), &["clone", "--quiet", "remote.git", "config"]);
        let fleet = Fleet {
            root,
            env: vec![
                ("CAIRN_PASSPHRASE".into(), "correct horse".into()),
                ("SF_CLIENT_ID".into(), sim.credentials.client_id.clone()),
            ],
        };
        fleet.write("cairn.yaml", REPOSITORY);
        fleet
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.root.path().join("config")
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let path = self.config().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub(crate) fn secret(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    pub(crate) fn commit(&self, message: &str) {
        git(&self.config(), &["add", "-A"]);
        git(&self.config(), &["commit", "--quiet", "-m", message]);
    }

    fn cairn_in(&self, dir: &Path, args: &[&str]) -> Ran {
        let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(dir)
            .args(args)
            .env_remove("CAIRN_KEY")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("cairn");
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn cairn(&self, args: &[&str]) -> Ran {
        self.cairn_in(&self.config(), args)
    }
}

/// Runs cairn on a blocking thread, so the simulator (on this runtime) keeps serving.
pub(crate) async fn run(fleet: &Fleet, args: &[&str]) -> Ran {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let dir = fleet.config();
    let env = fleet.env.clone();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(&dir)
            .args(&args)
            .env_remove("CAIRN_KEY")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("cairn");
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// The fleet with one task "acme", initialised, committed and pushed.
pub(crate) async fn fleet_with_acme(sim: &Simulator) -> Fleet {
    let mut fleet = Fleet::new(sim);
    fleet.secret("SF_REFRESH_TOKEN_ACME", &sim.credentials.refresh_token);
    fleet.write("tasks/acme.yaml", &task("acme", sim, ""));
    let init = fleet.cairn(&["init"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    fleet.commit("Add acme");
    git(&fleet.config(), &["push", "--quiet", "origin", "main"]);
    fleet
}

/// The fleet with "acme" whose manifest also holds `extra` (settings at the top level),
/// committed.
pub(crate) async fn fleet_with_acme_and(sim: &Simulator, extra: &str, message: &str) -> Fleet {
    let fleet = fleet_with_acme(sim).await;
    fleet.write("tasks/acme.yaml", &task("acme", sim, extra));
    fleet.commit(message);
    fleet
}

pub(crate) fn state_file(fleet: &Fleet, path: &str) -> String {
    git(&fleet.config(), &["show", &format!("cairn-state:{path}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_backs_up_commits_state_and_is_a_no_op_until_due() {
    let sim = simulator(1).await;
    let fleet = fleet_with_acme(&sim).await;

    let plan = run(&fleet, &["plan", "--at", &at(T0)]).await;
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("+ create acme"), "{}", plan.stdout);

    let first = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("success  acme"), "{}", first.stdout);
    assert!(first.stdout.contains("(pushed)"), "{}", first.stdout);
    let remote_log = git(
        &fleet.root.path().join("remote.git"),
        &["log", "--oneline", "cairn-state"],
    );
    assert_eq!(remote_log.lines().count(), 1, "{remote_log}");

    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(status.contains("type: Ready\n  status: 'True'"), "{status}");
    assert!(
        status.contains("type: Connected\n  status: 'True'"),
        "{status}"
    );

    // An hour later: not due (daily at 03:00), nothing runs, nothing is committed.
    let second = run(&fleet, &["apply", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(second.code, 0);
    assert!(second.stdout.contains("not due"), "{}", second.stdout);
    assert!(
        second.stdout.contains("nothing committed"),
        "{}",
        second.stdout
    );
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);

    // The next day after 03:00 it is due again: an incremental.
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    let third = run(&fleet, &["apply", "--at", &at(T0 + DAY)]).await;
    assert_eq!(third.code, 0, "{}{}", third.stdout, third.stderr);
    assert!(third.stdout.contains("incremental"), "{}", third.stdout);
    let snapshots = run(&fleet, &["snapshots"]).await;
    assert!(
        snapshots.stdout.contains("2 snapshots"),
        "{}",
        snapshots.stdout
    );
    let status = run(&fleet, &["status", "--format", "json"]).await;
    let rows: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(rows[0]["task"], "acme");
    assert_eq!(rows[0]["connection"], "Connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_are_planned_and_immutable_changes_refused() {
    let sim = simulator(2).await;
    let mut fleet = fleet_with_acme(&sim).await;
    fleet.secret("SF_REFRESH_TOKEN_BETA", &sim.credentials.refresh_token);
    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);

    // A PR that adds a task and changes acme's schedule.
    git(&fleet.config(), &["checkout", "--quiet", "-b", "change"]);
    fleet.write("tasks/beta.yaml", &task("beta", &sim, ""));
    fleet.write(
        "tasks/acme.yaml",
        &task("acme", &sim, "").replace("0 3 * * *", "0 */6 * * *"),
    );
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("+ create beta"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ update acme")
            && plan
                .stdout
                .contains("~ schedule: \"0 3 * * *\" -> \"0 */6 * * *\""),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to create, 1 to update, 0 to archive."),
        "{}",
        plan.stdout
    );
    let matrix = run(
        &fleet,
        &["plan", "--format", "matrix", "--at", &at(T0 + HOUR)],
    )
    .await;
    let matrix: Value = serde_json::from_str(&matrix.stdout).expect("matrix");
    assert_eq!(matrix, json!({"include": [{"task": "beta"}]}));
    let markdown = run(
        &fleet,
        &["plan", "--format", "markdown", "--at", &at(T0 + HOUR)],
    )
    .await;
    assert!(
        markdown.stdout.starts_with("<!-- cairn-plan -->"),
        "{}",
        markdown.stdout
    );
    assert!(
        markdown.stdout.contains("```diff\n~ update acme")
            && markdown.stdout.contains("\n+ create beta"),
        "{}",
        markdown.stdout
    );

    // Flipping the environment is refused, with guidance; exit 1.
    fleet.write(
        "tasks/acme.yaml",
        &task("acme", &sim, "").replace("environment: production", "environment: sandbox"),
    );
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("! refused acme")
            && plan.stdout.contains(
                "~ source.environment: \"production\" -> \"sandbox\"   # forces new lineage"
            ),
        "{}",
        plan.stdout
    );
    // apply refuses it too, and the other task still runs.
    fleet.commit("Flip the environment");
    let apply = run(&fleet, &["apply", "--now", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert!(
        apply.stdout.contains("FAILED   acme") && apply.stdout.contains("forces a new lineage"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("success  beta"), "{}", apply.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_task_is_archived_then_purged_after_its_days() {
    let sim = simulator(3).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    std::fs::remove_file(fleet.config().join("tasks/acme.yaml")).expect("remove");
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("- archive acme"), "{}", plan.stdout);
    assert!(plan.stdout.contains("kept 30 days"), "{}", plan.stdout);

    fleet.commit("Remove acme");
    let archived = run(&fleet, &["apply", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(archived.code, 0, "{}{}", archived.stdout, archived.stderr);
    assert!(archived.stdout.contains("archived"), "{}", archived.stdout);
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(status.contains("phase: Archived"), "{status}");
    let store_snapshots = || {
        std::fs::read_dir(fleet.root.path().join("store/snapshots"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(store_snapshots(), 1);

    // 29 days on: still kept, and plan says nothing of it. 31 days on: plan shows the purge
    // that apply then carries out.
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR + 29 * DAY)]).await;
    assert!(!plan.stdout.contains("acme"), "{}", plan.stdout);
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR + 31 * DAY)]).await;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("- purge acme") && plan.stdout.contains("1 to purge"),
        "{}",
        plan.stdout
    );
    let kept = run(&fleet, &["apply", "--at", &at(T0 + HOUR + 29 * DAY)]).await;
    assert!(kept.stdout.contains("nothing committed"), "{}", kept.stdout);
    assert_eq!(store_snapshots(), 1);
    let purged = run(&fleet, &["apply", "--at", &at(T0 + HOUR + 31 * DAY)]).await;
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    assert!(purged.stdout.contains("purged"), "{}", purged.stdout);
    assert_eq!(store_snapshots(), 0);
    assert!(state_file(&fleet, "state/acme/status.yaml").contains("phase: Purged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_task_fails_alone_and_says_why() {
    let sim = simulator(4).await;
    let mut fleet = fleet_with_acme(&sim).await;
    fleet.secret("SF_REFRESH_TOKEN_BROKEN", "5Aep-not-a-real-token");
    fleet.write("tasks/broken.yaml", &task("broken", &sim, ""));
    fleet.commit("Add broken");
    let apply = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert!(apply.stdout.contains("success  acme"), "{}", apply.stdout);
    assert!(
        apply.stdout.contains("FAILED   broken") && apply.stdout.contains("Disconnected"),
        "{}",
        apply.stdout
    );
    let status = run(&fleet, &["status"]).await;
    assert!(status.stdout.contains("Disconnected"), "{}", status.stdout);
    assert_eq!(status.code, 0, "the recorded status is shown, not checked");
    // Checked live, a Disconnected task fails the command (a scheduled check turns red);
    // a connected one alone does not.
    let checked = run(&fleet, &["status", "--check-connection"]).await;
    assert_eq!(checked.code, 1, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked
            .stdout
            .contains("error: broken is not connected: invalid_grant")
            && checked.stdout.contains("cairn auth login --task broken"),
        "{}",
        checked.stdout
    );
    let acme_only = run(&fleet, &["status", "--check-connection", "--task", "acme"]).await;
    assert_eq!(
        acme_only.code, 0,
        "{}{}",
        acme_only.stdout, acme_only.stderr
    );
    let broken = state_file(&fleet, "state/broken/status.yaml");
    assert!(
        broken.contains("type: Connected\n  status: 'False'"),
        "{broken}"
    );
    assert!(
        !broken.contains("5Aep-not-a-real-token"),
        "no secret in state"
    );
}

/// Two matrix jobs of different tasks, from two clones, push at once: both land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_applies_of_different_tasks_both_land() {
    let sim = simulator(5).await;
    let mut fleet = fleet_with_acme(&sim).await;
    fleet.secret("SF_REFRESH_TOKEN_BETA", &sim.credentials.refresh_token);
    fleet.write("tasks/beta.yaml", &task("beta", &sim, ""));
    fleet.commit("Add beta");
    git(&fleet.config(), &["push", "--quiet", "origin", "main"]);
    // A second job's checkout of the same repository.
    git(
        fleet.root.path(),
        &["clone", "--quiet", "remote.git", "job2"],
    );
    let job2 = fleet.root.path().join("job2");
    let when = at(T0);
    let job1_args = ["apply", "--task", "acme", "--at", when.as_str()];
    let (a, b) = tokio::join!(
        run(&fleet, &job1_args),
        tokio::task::spawn_blocking({
            let env = fleet.env.clone();
            let job2 = job2.clone();
            let when = at(T0);
            move || {
                Command::new(env!("CARGO_BIN_EXE_cairn"))
                    .current_dir(&job2)
                    .args(["apply", "--task", "beta", "--at", &when])
                    .env_remove("CAIRN_KEY")
                    .env_remove("GITHUB_ACTIONS")
                    .env_remove("GITLAB_CI")
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .output()
                    .expect("cairn")
            }
        })
    );
    let b = b.expect("join");
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let remote = fleet.root.path().join("remote.git");
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "cairn-state"]);
    assert!(files.contains("state/acme/status.yaml"), "{files}");
    assert!(files.contains("state/beta/status.yaml"), "{files}");
    assert_eq!(
        git(&remote, &["log", "--oneline", "cairn-state"])
            .lines()
            .count(),
        2
    );
}

/// After three backups the state branch reads as a history of changes, and no record value
/// seeded into the org appears anywhere in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_branch_holds_no_record_data_in_plaintext() {
    let sim = simulator(6).await;
    let fleet = fleet_with_acme(&sim).await;
    let marker = "Zebra-Unicorn-Plaintext-4711";
    admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": marker, "Phone": "+1 555 4711"}),
    )
    .await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    for day in 1..=2 {
        admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
        admin(
            &sim,
            Method::POST,
            "records/Contact",
            json!({"LastName": format!("{marker}-{day}")}),
        )
        .await;
        let ran = run(&fleet, &["apply", "--at", &at(T0 + day * DAY)]).await;
        assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    }
    let log = git(&fleet.config(), &["log", "-p", "cairn-state"]);
    assert_eq!(
        git(&fleet.config(), &["log", "--oneline", "cairn-state"])
            .lines()
            .count(),
        3
    );
    assert!(log.contains("| Contact | 1 | 0 | 0 |"), "{log}");
    assert!(!log.contains(marker), "a record value reached git");
    assert!(!log.contains("555 4711"), "a record value reached git");
    // Nor in any blob, binary or not.
    let objects = git(&fleet.config(), &["rev-list", "--objects", "cairn-state"]);
    for line in objects.lines() {
        let id = line.split_whitespace().next().expect("id");
        let kind = git(&fleet.config(), &["cat-file", "-t", id]);
        if kind.trim() == "blob" {
            let output = Command::new("git")
                .arg("-C")
                .arg(fleet.config())
                .args(["cat-file", "blob", id])
                .output()
                .expect("blob");
            assert!(
                !output
                    .stdout
                    .windows(marker.len())
                    .any(|w| w == marker.as_bytes())
            );
        }
    }
}

/// Another apply holding the task's lock: this one waits (up to --wait), then refuses the task
/// and says who holds it; `cairn unlock --lock` refuses a live lock and `--force` breaks it by
/// id; a lock its holder stopped refreshing is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_locked_by_another_apply_is_refused_until_unlocked() {
    let sim = simulator(7).await;
    let fleet = fleet_with_acme(&sim).await;
    let locks = fleet.root.path().join("store/locks");
    std::fs::create_dir_all(&locks).expect("locks dir");
    let now = cairn::time::now_ms();
    std::fs::write(
        locks.join("task-00aa11bb22cc33dd"),
        json!({"kind": {"task": "acme"}, "holder": "pid 4242 on ci-runner-2", "createdMs": now})
            .to_string(),
    )
    .expect("lock");
    let checked = run(&fleet, &["check"]).await;
    assert!(
        checked.stdout.contains(
            "in progress: locks/task-00aa11bb22cc33dd: apply of task acme (pid 4242 on ci-runner-2"
        ),
        "{}",
        checked.stdout
    );
    let refused = run(&fleet, &["apply", "--at", &at(T0), "--wait", "1s"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stdout.contains("pid 4242 on ci-runner-2")
            && refused
                .stdout
                .contains("cairn unlock --force --lock locks/task-00aa11bb22cc33dd")
            && refused
                .stderr
                .contains("waiting up to 1 s for the apply of task acme"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    let kept = run(&fleet, &["unlock", "--lock", "locks/task-00aa11bb22cc33dd"]).await;
    assert_eq!(kept.code, 1, "{}", kept.stdout);
    assert!(kept.stderr.contains("is live"), "{}", kept.stderr);
    let unlock = run(
        &fleet,
        &["unlock", "--force", "--lock", "locks/task-00aa11bb22cc33dd"],
    )
    .await;
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert!(
        unlock
            .stdout
            .contains("removed LIVE lock locks/task-00aa11bb22cc33dd"),
        "{}",
        unlock.stdout
    );
    // A lock left by a process that died two hours ago does not block.
    std::fs::write(
        locks.join("task-99ee88ff77aa66bb"),
        json!({"kind": {"task": "acme"}, "holder": "pid 1 on gone", "createdMs": now - 2 * HOUR})
            .to_string(),
    )
    .expect("stale lock");
    let checked = run(&fleet, &["check"]).await;
    assert!(
        checked.stdout.contains(
            "warning: stale lock locks/task-99ee88ff77aa66bb: apply of task acme (pid 1 on gone"
        ),
        "{}",
        checked.stdout
    );
    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("took over the stale lock locks/task-99ee88ff77aa66bb"),
        "{}",
        applied.stderr
    );
    assert!(
        std::fs::read_dir(&locks).expect("locks").next().is_none(),
        "the run released its locks"
    );
}

/// The API budget runs out mid-run: the task is partial (exit 3), the next run completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_exhausted_apply_is_partial_and_the_next_one_finishes() {
    let sim = simulator(8).await;
    let fleet = fleet_with_acme(&sim).await;
    let state = admin(&sim, Method::GET, "state", json!({})).await;
    let max = state["apiUsage"]["max"].as_u64().expect("max");
    // 75% may be used by backups; other integrations already used all but 20 calls of it:
    // enough to describe the org's objects, not to read them all.
    admin(
        &sim,
        Method::PUT,
        "api-usage",
        json!({"used": max * 3 / 4 - 20}),
    )
    .await;
    let partial = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(partial.code, 3, "{}{}", partial.stdout, partial.stderr);
    assert!(
        partial.stdout.contains("partial  acme")
            && partial.stdout.contains("API budget")
            // Nothing was read: no snapshot repeats the last one.
            && partial.stdout.contains("nothing was backed up and no snapshot was written"),
        "{}",
        partial.stdout
    );
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(status.contains("reason: Partial"), "{status}");
    admin(&sim, Method::PUT, "api-usage", json!({"used": 0})).await;
    let finished = run(&fleet, &["apply", "--now", "--at", &at(T0)]).await;
    assert_eq!(finished.code, 0, "{}{}", finished.stdout, finished.stderr);
    assert!(
        finished.stdout.contains("success  acme"),
        "{}",
        finished.stdout
    );
}

/// Deleting more than 5% of an object's records raises the default data-loss alert: in the
/// run's output, in status, in the committed summary; `--fail-on-alert` fails the run. Then
/// `cairn diff` shows what changed, with values on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_deletes_raise_an_alert_and_diff_shows_the_change() {
    let sim = simulator(9).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let leads = admin(&sim, Method::GET, "state", json!({})).await;
    let lead_count = leads["records"]["Lead"].as_u64().expect("lead count");
    let doomed = (lead_count as usize / 10).max(2);
    let lead_ids = query_ids(&sim, "SELECT Id FROM Lead").await;
    delete_records(&sim, "Lead", &lead_ids[..doomed]).await;
    let account = query_ids(&sim, "SELECT Id FROM Account").await.remove(0);
    admin(
        &sim,
        Method::PATCH,
        &format!("records/Account/{account}"),
        // A C1 control character (CSI) that a terminal would obey if printed as is.
        json!({"Phone": "+1 555 0100\u{9b}2J"}),
    )
    .await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;

    let apply = run(&fleet, &["apply", "--fail-on-alert", "--at", &at(T0 + DAY)]).await;
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let expected = format!("ALERT  Lead: {doomed} of {lead_count} records deleted");
    assert!(apply.stdout.contains(&expected), "{}", apply.stdout);
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(
        status.contains("type: DataLossAlert\n  status: 'True'"),
        "{status}"
    );
    let files = git(
        &fleet.config(),
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "cairn-state",
            "state/acme/diffs",
        ],
    );
    let latest = files
        .lines()
        .map(str::to_string)
        .find(|f| state_file(&fleet, f).contains("compared with"))
        .expect("a summary against the parent");
    let summary = state_file(&fleet, &latest);
    assert!(
        summary.contains("## Alerts") && summary.contains(&format!("| Lead | 0 | 0 | {doomed} |")),
        "{summary}"
    );
    assert!(
        summary.contains("| Account | 0 | 1 | 0 | Phone (1)"),
        "{summary}"
    );
    assert!(!summary.contains(&account), "no record Ids unless allowed");

    let diff = run(&fleet, &["diff"]).await;
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    assert!(
        diff.stdout.contains(&format!("- {}", lead_ids[0])),
        "{}",
        diff.stdout
    );
    let modified = diff
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("M {account}")))
        .unwrap_or_default();
    assert!(modified.contains("Phone"), "{}", diff.stdout);
    assert!(
        diff.stdout
            .contains(&format!("Lead: 0 added, {doomed} deleted, 0 modified")),
        "{}",
        diff.stdout
    );
    let values = run(
        &fleet,
        &[
            "diff", "latest~1", "latest", "--object", "Account", "--values",
        ],
    )
    .await;
    assert!(
        values.stdout.contains("-> \"+1 555 0100\\u{9b}2J\"") && !values.stdout.contains('\u{9b}'),
        "{}",
        values.stdout
    );
    let json_lines = run(&fleet, &["diff", "--format", "json"]).await;
    let first: Value =
        serde_json::from_str(json_lines.stdout.lines().next().expect("a line")).expect("JSON line");
    assert!(
        first["change"].is_string() && first["id"].is_string(),
        "{first}"
    );
}

/// `cairn export` writes the latest snapshot's records as CSV and JSON lines, one file per
/// object, with every record the org holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_every_record_as_csv_and_jsonl() {
    let sim = simulator(10).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let state = admin(&sim, Method::GET, "state", json!({})).await;
    let accounts = state["records"]["Account"].as_u64().expect("accounts") as usize;
    let out = fleet.root.path().join("export");
    let out_text = out.to_string_lossy().to_string();
    let jsonl = run(&fleet, &["export", "--format", "jsonl", "--out", &out_text]).await;
    assert_eq!(jsonl.code, 0, "{}", jsonl.stderr);
    let lines = std::fs::read_to_string(out.join("Account.jsonl")).expect("Account.jsonl");
    assert_eq!(lines.lines().count(), accounts);
    for line in lines.lines() {
        let record: Value = serde_json::from_str(line).expect("a JSON record per line");
        assert!(
            record["Id"]
                .as_str()
                .is_some_and(|id| id.starts_with("001"))
        );
    }
    let csv = run(
        &fleet,
        &[
            "export", "--format", "csv", "--object", "Account", "--out", &out_text,
        ],
    )
    .await;
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let mut reader = csv::Reader::from_path(out.join("Account.csv")).expect("Account.csv");
    assert_eq!(reader.headers().expect("header").get(0), Some("Id"));
    assert_eq!(reader.records().count(), accounts);
    let missing = run(
        &fleet,
        &[
            "export", "--format", "csv", "--object", "Nope__c", "--out", &out_text,
        ],
    )
    .await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("has no object Nope__c")
            && missing.stderr.contains("its objects are: Account"),
        "{}",
        missing.stderr
    );
}

/// SOQL against the simulated org with its own session: what a user would see.
pub(crate) async fn soql(sim: &Simulator, query: &str) -> Vec<Value> {
    let page: Value = reqwest::Client::new()
        .get(format!("{}/services/data/v62.0/query", sim.url()))
        .query(&[("q", query)])
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    page["records"].as_array().cloned().unwrap_or_default()
}

/// An account that has both contacts and opportunities.
pub(crate) async fn family(sim: &Simulator) -> (String, Vec<String>, Vec<String>) {
    for contact in soql(sim, "SELECT AccountId FROM Contact").await {
        let Some(account) = contact["AccountId"].as_str() else {
            continue;
        };
        let opportunities = soql(
            sim,
            &format!("SELECT Id FROM Opportunity WHERE AccountId = '{account}'"),
        )
        .await;
        if !opportunities.is_empty() {
            let contacts = soql(
                sim,
                &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'"),
            )
            .await;
            let ids = |rows: Vec<Value>| {
                rows.iter()
                    .map(|r| r["Id"].as_str().expect("Id").to_string())
                    .collect()
            };
            return (account.to_string(), ids(contacts), ids(opportunities));
        }
    }
    panic!("no account with contacts and opportunities");
}

/// Deletes the account, its contacts and its opportunities, as a user would.
pub(crate) async fn delete_family(
    sim: &Simulator,
    account: &str,
    contacts: &[String],
    opportunities: &[String],
) {
    delete_records(sim, "Contact", contacts).await;
    delete_records(sim, "Opportunity", opportunities).await;
    delete_records(sim, "Account", &[account.to_string()]).await;
}

async fn delete_contacts(sim: &Simulator, contacts: &[String]) {
    for id in contacts {
        admin(
            sim,
            Method::DELETE,
            &format!("records/Contact/{id}"),
            json!({}),
        )
        .await;
    }
}

pub(crate) async fn count(sim: &Simulator, soql_text: &str) -> usize {
    soql(sim, soql_text).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_comes_back_with_its_ids_from_the_recycle_bin_and_as_new_records_once_purged()
 {
    let sim = simulator(11).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let (account, contacts, opportunities) = family(&sim).await;
    let records = 1 + contacts.len() + opportunities.len();
    let selector = format!("AccountId={account}");
    let restore = [
        "restore", "--task", "acme", "--id", &account, "--where", &selector,
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        restore
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let run_with = |args: Vec<String>| {
        let fleet = &fleet;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(fleet, &args).await
        }
    };

    // Still in the recycle bin: every record comes back with its own Id.
    delete_family(&sim, &account, &contacts, &opportunities).await;
    let plan = run_with(with(&[])).await;
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(&format!(
            "Plan: {records} to undelete, 0 to create, 0 to update"
        )),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("^ undelete Account {account}")),
        "{}",
        plan.stdout
    );
    let json = run_with(with(&["--format", "json"])).await;
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let steps = json["plan"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), records, "{json}");
    assert!(steps.iter().all(|s| s["action"] == "undelete"), "{json}");
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Account WHERE Id = '{account}'")
        )
        .await,
        0
    );

    let applied = run_with(with(&["--yes"])).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains(&format!(
            "Restored: {records} undeleted (original Ids), 0 created, 0 updated, 0 failed."
        )),
        "{}",
        applied.stdout
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Account WHERE Id = '{account}'")
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'")
        )
        .await,
        contacts.len(),
        "the contacts are back under the account's own Id"
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Opportunity WHERE AccountId = '{account}'")
        )
        .await,
        opportunities.len()
    );
    // Done once: the same restore again has nothing to do.
    let again = run_with(with(&["--yes"])).await;
    assert!(
        again.stdout.contains(&format!(
            "Plan: 0 to create, 0 to update, {records} unchanged.\nNothing to do"
        )),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("Restored: 0 created, 0 updated, 0 failed."),
        "{}",
        again.stdout
    );

    // Purged from the recycle bin: they can only be created again, with new Ids, children
    // re-parented to the new account.
    delete_family(&sim, &account, &contacts, &opportunities).await;
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;
    let plan = run_with(with(&[])).await;
    assert!(
        plan.stdout
            .contains(&format!("Plan: {records} to create, 0 to update")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Nothing was changed"),
        "{}",
        plan.stdout
    );
    // What a create cannot set is said, not silently dropped.
    let audit = plan
        .stdout
        .lines()
        .find(|l| l.starts_with("Account records created again cannot get these fields back"))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(
        audit.contains("CreatedDate") && audit.contains("CreatedById"),
        "{audit}"
    );
    let applied = run_with(with(&["--yes"])).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let new_account = applied
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("created Account {account} -> ")))
        .expect("the account's new Id")
        .to_string();
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{new_account}'")
        )
        .await,
        contacts.len()
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Opportunity WHERE AccountId = '{new_account}'")
        )
        .await,
        opportunities.len()
    );
    // Run again: the journal knows what the first run created; nothing is created twice.
    let again = run_with(with(&["--yes"])).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains(&format!(
            "Plan: 0 to create, 0 to update, {records} unchanged."
        )),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains(&format!(
            "{records} of these records were created anew by an earlier restore"
        )),
        "{}",
        again.stdout
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{new_account}'")
        )
        .await,
        contacts.len()
    );
}

/// The org carries out a batch of creates but the answer never arrives (the connection breaks
/// after the commit). The restore stops, saying so; run again, it finds what the lost batch
/// created and creates nothing twice, and the children it creates point at those records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_whose_answer_was_lost_creates_nothing_twice() {
    let sim = simulator(16).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let (account, contacts, opportunities) = family(&sim).await;
    let name = soql(
        &sim,
        &format!("SELECT Name FROM Account WHERE Id = '{account}'"),
    )
    .await
    .remove(0)["Name"]
        .as_str()
        .expect("Name")
        .to_string();
    delete_family(&sim, &account, &contacts, &opportunities).await;
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;
    let by_name = format!(
        "SELECT Id FROM Account WHERE Name = '{}' ORDER BY Id",
        name.replace('\'', "\\'")
    );
    let before = count(&sim, &by_name).await;

    let selector = format!("AccountId={account}");
    let args = [
        "restore", "--task", "acme", "--id", &account, "--where", &selector, "--yes",
    ];
    admin(
        &sim,
        Method::PUT,
        "faults",
        json!([{"kind": "CONNECTION_RESET_AFTER_WRITE", "path": "/composite/sobjects", "method": "POST", "times": 1}]),
    )
    .await;
    let lost = run(&fleet, &args).await;
    admin(&sim, Method::DELETE, "faults", json!({})).await;
    assert_eq!(lost.code, 1, "{}{}", lost.stdout, lost.stderr);
    assert!(
        lost.stderr.contains("run the same restore again"),
        "{}",
        lost.stderr
    );
    assert_eq!(
        count(&sim, &by_name).await,
        before + 1,
        "the org created the account although its answer was lost"
    );

    let resumed = run(&fleet, &args).await;
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed
            .stdout
            .contains("1 of these records were created anew by an earlier restore"),
        "{}",
        resumed.stdout
    );
    let accounts = soql(&sim, &by_name).await;
    assert_eq!(accounts.len(), before + 1, "the account exactly once");
    // Ids grow: the newest account with the name is the one the restore made.
    let new_account = accounts
        .last()
        .and_then(|a| a["Id"].as_str())
        .expect("the new account")
        .to_string();
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{new_account}'")
        )
        .await,
        contacts.len(),
        "the contacts point at the account the lost batch made"
    );
    let third = run(&fleet, &args).await;
    assert!(
        third
            .stdout
            .contains("Restored: 0 created, 0 updated, 0 failed."),
        "{}",
        third.stdout
    );
}

/// Deleting an account takes its invoices (master-detail) along; undeleting it brings them
/// back, and naming them too does not count them twice or fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_detail_children_come_back_with_their_parent() {
    let sim = simulator(14).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let invoices = soql(&sim, "SELECT Id, Account__c FROM Invoice__c").await;
    let account = invoices
        .first()
        .and_then(|i| i["Account__c"].as_str())
        .expect("an invoiced account")
        .to_string();
    let children = count(
        &sim,
        &format!("SELECT Id FROM Invoice__c WHERE Account__c = '{account}'"),
    )
    .await;
    admin(
        &sim,
        Method::DELETE,
        &format!("records/Account/{account}"),
        json!({}),
    )
    .await;
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Invoice__c WHERE Account__c = '{account}'")
        )
        .await,
        0,
        "the invoices went with the account"
    );
    let selector = format!("Account__c={account}");
    // Without their master, the invoices cannot come back: it is still in the recycle bin.
    let alone = run(
        &fleet,
        &["restore", "--task", "acme", "--where", &selector, "--yes"],
    )
    .await;
    assert_eq!(
        alone.code, 1,
        "all failed: {}{}",
        alone.stdout, alone.stderr
    );
    assert_eq!(
        alone
            .stdout
            .matches("its Account__c is in the recycle bin")
            .count(),
        children,
        "{}",
        alone.stdout
    );
    let applied = run(
        &fleet,
        &[
            "restore", "--task", "acme", "--id", &account, "--where", &selector, "--yes",
        ],
    )
    .await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains(&format!(
            "Restored: {} undeleted (original Ids), 0 created, 0 updated, 0 failed.",
            1 + children
        )),
        "{}",
        applied.stdout
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Invoice__c WHERE Account__c = '{account}'")
        )
        .await,
        children
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_update_of_one_field_is_rolled_back_and_nothing_else_changes() {
    let sim = simulator_of(12, 5000).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let accounts = soql(&sim, "SELECT Id, Phone FROM Account").await;
    assert!(accounts.len() >= 1000, "{}", accounts.len());
    let before: std::collections::BTreeMap<String, Value> = accounts
        .iter()
        .map(|a| {
            (
                a["Id"].as_str().expect("Id").to_string(),
                a["Phone"].clone(),
            )
        })
        .collect();
    for id in before.keys().take(1000) {
        admin(
            &sim,
            Method::PATCH,
            &format!("records/Account/{id}"),
            json!({"Phone": "000"}),
        )
        .await;
    }
    // The snapshot's Account schema document is damaged: derived data, described again.
    let store = cairn::store::Store::open_with_passphrase(
        Box::new(cairn::store::backend::LocalBackend::new(
            fleet.root.path().join("store"),
        )),
        "correct horse",
    )
    .expect("store");
    let snapshot = store.list_snapshots().expect("snapshots").remove(0);
    let manifest = cairn::snapshot::writer::load_manifest(&store, &snapshot).expect("manifest");
    let schema = manifest.objects["Account"]
        .schema
        .clone()
        .expect("a schema");
    let schema_path = cairn::store::blob_path(&schema);
    let mut sealed = store
        .backend()
        .get(&schema_path)
        .expect("get")
        .expect("schema blob");
    sealed[25] ^= 0x08;
    store.backend().put(&schema_path, &sealed).expect("damage");
    // A legitimate edit after the mass update must survive the rollback.
    let kept = before.keys().next().expect("an account").clone();
    admin(
        &sim,
        Method::PATCH,
        &format!("records/Account/{kept}"),
        json!({"Name": "Renamed After Backup"}),
    )
    .await;

    let applied = run(
        &fleet,
        &[
            "restore", "--task", "acme", "--object", "Account", "--fields", "Phone", "--yes",
        ],
    )
    .await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains("note: the snapshot's schema document of Account is unreadable"),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("Plan: 0 to create, 1000 to update"),
        "{}",
        applied.stdout
    );
    assert!(
        applied
            .stdout
            .contains("Restored: 0 created, 1000 updated, 0 failed."),
        "{}",
        applied.stdout
    );
    let after = soql(&sim, "SELECT Id, Phone, Name FROM Account").await;
    for account in &after {
        let id = account["Id"].as_str().expect("Id");
        assert_eq!(account["Phone"], before[id], "{id}");
    }
    let renamed = after
        .iter()
        .find(|a| a["Id"] == kept.as_str())
        .expect("kept");
    assert_eq!(renamed["Name"], "Renamed After Backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_restore_into_a_sandbox_org() {
    let sim = simulator(13).await;
    let sandbox = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 99,
                is_sandbox: true,
                population: Population::spread(50),
                clock: Clock::fixed(T0),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("sandbox");
    let mut fleet = fleet_with_acme(&sim).await;
    fleet.secret("SF_REFRESH_TOKEN_UAT", &sandbox.credentials.refresh_token);
    fleet.write(
        "tasks/uat.yaml",
        &task("uat", &sandbox, "suspend: true\n")
            .replace("environment: production", "environment: sandbox"),
    );
    fleet.commit("Add uat");
    assert_eq!(
        run(&fleet, &["apply", "--task", "acme", "--at", &at(T0)])
            .await
            .code,
        0
    );
    let (account, contacts, _) = family(&sim).await;
    let selector = format!("AccountId={account}");
    let applied = run(
        &fleet,
        &[
            "restore",
            "--task",
            "acme",
            "--object",
            "Contact",
            "--where",
            &selector,
            "--to-task",
            "uat",
            "--yes",
        ],
    )
    .await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains("another org: every record is created"),
        "{}",
        applied.stdout
    );
    assert_eq!(
        applied.stdout.matches("created Contact").count(),
        contacts.len(),
        "{}",
        applied.stdout
    );
    let names = soql(
        &sim,
        &format!("SELECT LastName FROM Contact WHERE AccountId = '{account}'"),
    )
    .await;
    for name in names {
        let last = name["LastName"].as_str().expect("LastName");
        let found = soql(
            &sandbox,
            &format!(
                "SELECT Id FROM Contact WHERE LastName = '{}'",
                last.replace('\'', "\\'")
            ),
        )
        .await;
        assert!(!found.is_empty(), "{last} is in the sandbox");
    }
}

/// Invoices whose master account is gone for good (purged from the recycle bin) cannot be
/// created; the contact restored with them can. The result names each failed record and why,
/// and keeps what succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_partly_fails_reports_exactly_which_records() {
    let sim = simulator(14).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let invoice = soql(&sim, "SELECT Id, Account__c FROM Invoice__c")
        .await
        .remove(0);
    let master = invoice["Account__c"].as_str().expect("master").to_string();
    let invoices = soql(
        &sim,
        &format!("SELECT Id FROM Invoice__c WHERE Account__c = '{master}'"),
    )
    .await;
    admin(
        &sim,
        Method::DELETE,
        &format!("records/Account/{master}"),
        json!({}),
    )
    .await;
    let contact = soql(&sim, "SELECT Id FROM Contact").await.remove(0)["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    admin(
        &sim,
        Method::DELETE,
        &format!("records/Contact/{contact}"),
        json!({}),
    )
    .await;
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;

    let selector = format!("Account__c={master}");
    let applied = run(
        &fleet,
        &[
            "restore", "--task", "acme", "--where", &selector, "--id", &contact, "--yes",
        ],
    )
    .await;
    assert_eq!(applied.code, 3, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains(&format!("created Contact {contact} -> ")),
        "{}",
        applied.stdout
    );
    for row in &invoices {
        let id = row["Id"].as_str().expect("Id");
        let line = applied
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("FAILED  Invoice__c {id}: ")))
            .unwrap_or_else(|| panic!("no failure line for {id}: {}", applied.stdout));
        assert!(
            line.contains("INVALID_CROSS_REFERENCE_KEY") || line.contains("ENTITY_IS_DELETED"),
            "{line}"
        );
    }
    assert!(
        applied.stdout.contains(&format!(
            "Restored: 1 created, 0 updated, {} failed.",
            invoices.len()
        )),
        "{}",
        applied.stdout
    );
}

/// Search finds records across backups, with snippets from the snapshots, including a record
/// deleted since; a task with search.index: false says search is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_records_across_backups_including_deleted_ones() {
    let sim = simulator(15).await;
    let fleet = fleet_with_acme(&sim).await;
    let created = admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Quokka Logistics", "Phone": "+1 555 7777"}),
    )
    .await;
    let quokka = created["id"].as_str().expect("id").to_string();
    admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Platypus Unchanged"}),
    )
    .await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    admin(
        &sim,
        Method::DELETE,
        &format!("records/Account/{quokka}"),
        json!({}),
    )
    .await;
    admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Wombat Freight"}),
    )
    .await;
    // A value that would retitle the terminal and ring its bell if printed as is.
    admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Numbat \u{1b}]0;owned\u{7} Haulage"}),
    )
    .await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0 + DAY)]).await.code, 0);

    let numbat = run(&fleet, &["search", "numbat"]).await;
    assert!(
        numbat
            .stdout
            .contains("Name: Numbat \\u{1b}]0;owned\\u{7} Haulage")
            && !numbat.stdout.contains('\u{1b}'),
        "{}",
        numbat.stdout
    );
    let found = run(&fleet, &["search", "quokka"]).await;
    assert_eq!(found.code, 0, "{}", found.stderr);
    assert!(
        found.stdout.contains(&format!("Account {quokka}")),
        "{}",
        found.stdout
    );
    assert!(
        found.stdout.contains("Name: Quokka Logistics"),
        "{}",
        found.stdout
    );
    assert!(
        found.stdout.contains("[deleted 2025-06-16"),
        "{}",
        found.stdout
    );
    assert!(found.stdout.contains("1 hit"), "{}", found.stdout);
    let deleted_only = run(&fleet, &["search", "wombat", "--deleted"]).await;
    assert!(
        deleted_only.stdout.contains("0 hits"),
        "{}",
        deleted_only.stdout
    );
    let wombat = run(
        &fleet,
        &[
            "search", "wombat", "--object", "Account", "--field", "Name", "--format", "json",
        ],
    )
    .await;
    let found: Value = serde_json::from_str(&wombat.stdout).expect("JSON");
    let hits = &found["hits"];
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(hits[0]["snippet"], "Wombat Freight");
    assert_eq!(hits[0]["field"], "Name");
    // The index is in the store, sealed: no readable copy of the text.
    let mut blobs = Vec::new();
    for entry in walk(&fleet.root.path().join("store")) {
        blobs.push(std::fs::read(entry).expect("blob"));
    }
    assert!(!blobs.iter().any(|b| b.windows(6).any(|w| w == b"Quokka")));

    // A hit indexed in a snapshot that retention forgot names the next one that exists.
    let listed = run(&fleet, &["snapshots", "--format", "json"]).await;
    let rows: Value = serde_json::from_str(&listed.stdout).expect("JSON");
    let (newest, oldest) = (
        rows[0]["id"].as_str().expect("id").to_string(),
        rows[1]["id"].as_str().expect("id").to_string(),
    );
    let platypus = run(&fleet, &["search", "platypus"]).await;
    assert!(
        platypus
            .stdout
            .contains(&format!("snapshot {}", &oldest[..12])),
        "{}",
        platypus.stdout
    );
    let forgot = run(&fleet, &["forget", "--snapshot", &oldest]).await;
    assert_eq!(forgot.code, 0, "{}{}", forgot.stdout, forgot.stderr);
    let platypus = run(&fleet, &["search", "platypus"]).await;
    assert!(
        platypus
            .stdout
            .contains(&format!("snapshot {}", &newest[..12]))
            && platypus.stdout.contains("Name: Platypus Unchanged"),
        "{}",
        platypus.stdout
    );
    // Quokka's data was only in the forgotten snapshot (deleted before the next): gone.
    let quokka_gone = run(&fleet, &["search", "quokka"]).await;
    assert!(
        quokka_gone.stdout.contains("0 hits"),
        "{}",
        quokka_gone.stdout
    );

    // An index an earlier version wrote (after an upgrade) is not read: search says so, and
    // what rebuilds it.
    let store = cairn::store::Store::open_with_passphrase(
        Box::new(cairn::store::backend::LocalBackend::new(
            fleet.root.path().join("store"),
        )),
        "correct horse",
    )
    .expect("store");
    let list = store
        .put_blob(
            "search-list:acme",
            br#"{"format":4,"pieceBytes":65536,"files":{},"task":"acme"}"#,
        )
        .expect("list");
    store
        .backend()
        .put("search/acme", list.as_bytes())
        .expect("pointer");
    let earlier = run(&fleet, &["search", "quokka"]).await;
    assert_eq!(earlier.code, 1, "{}", earlier.stderr);
    assert_eq!(
        earlier.stderr,
        "error: task acme's search index cannot be read: it was written by an earlier version of cairn, in a form this one does not read\n  \
         help: the task's next `cairn apply` rebuilds it from its snapshots; nothing was lost\n"
    );

    fleet.write(
        "tasks/acme.yaml",
        &task("acme", &sim, "search:\n  index: false\n"),
    );
    let off = run(&fleet, &["search", "quokka"]).await;
    assert_eq!(off.code, 1);
    assert!(
        off.stderr.contains("search is off for task acme"),
        "{}",
        off.stderr
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A push race made certain: job A reads the state, job B commits and pushes first, then A's
/// push is rejected and must replay its change on B's tip. Both changes land, in order.
#[test]
fn a_rejected_state_push_is_replayed_on_the_new_tip() {
    use cairn::gitops::{Change, StateBranch};
    let root = tempfile::tempdir().expect("dir");
    git(
        root.path(),
        &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
    );
    for job in ["a", "b"] {
        git(root.path(), &["clone", "--quiet", "remote.git", job]);
    }
    let a = StateBranch::open(&root.path().join("a"), "cairn-state", "origin").expect("a");
    let b = StateBranch::open(&root.path().join("b"), "cairn-state", "origin").expect("b");
    // Both start from the same (empty) state.
    a.fetch().expect("a fetch");
    b.fetch().expect("b fetch");
    let b_change = [Change::write("state/beta/status.yaml", "task: beta\n")];
    b.commit(&b_change, "beta").expect("b commit");
    b.push(&b_change, "beta").expect("b push");
    let a_change = [Change::write("state/acme/status.yaml", "task: acme\n")];
    a.commit(&a_change, "acme").expect("a commit");
    a.push(&a_change, "acme").expect("a push, after a replay");
    let remote = root.path().join("remote.git");
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "cairn-state"]);
    assert_eq!(files, "state/acme/status.yaml\nstate/beta/status.yaml\n");
    let log = git(&remote, &["log", "--format=%s", "cairn-state"]);
    assert_eq!(log, "acme\nbeta\n");
}

/// What a test receiver got: (path, Authorization header, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

/// A webhook receiver on 127.0.0.1: records every POST; `/fail` answers 500.
async fn receiver() -> (String, Received) {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode};
    let received: Received = Default::default();
    let app = axum::Router::new()
        .route(
            "/{hook}",
            axum::routing::post(
                |State(log): State<Received>,
                 UrlPath(hook): UrlPath<String>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock().expect("log").push((hook.clone(), auth, value));
                    if hook == "fail" {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Notifications reach real receivers with the rendered template; channels that fail (refused
/// connection, 500) are reported and change nothing in the backup's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_their_channels_and_failing_ones_change_nothing() {
    let sim = simulator(16).await;
    let (url, received) = receiver().await;
    let mut fleet = fleet_with_acme(&sim).await;
    let summary = fleet.root.path().join("step-summary.md");
    fleet.secret("SLACK_URL", &format!("{url}/slack"));
    fleet.secret("HOOK_URL", &format!("{url}/hook"));
    fleet.secret("HOOK_TOKEN", "hook-secret-token");
    fleet.secret("DEAD_URL", "http://127.0.0.1:1/nothing-listens");
    fleet.secret("FAIL_URL", &format!("{url}/fail"));
    fleet.secret("GITHUB_STEP_SUMMARY", &summary.to_string_lossy());
    fleet.write(
        "templates/slack-run.md.j2",
        "*{{ task.name }}*: backup {{ outcome }} ({{ run.records }} records)\n",
    );
    let notifications = "notifications:\n  - channel:\n      slack:\n        webhookUrlEnv: SLACK_URL\n    events: [success]\n    template: slack-run.md.j2\n  - channel:\n      webhook:\n        urlEnv: HOOK_URL\n        bearerTokenEnv: HOOK_TOKEN\n    events: [success]\n  - channel:\n      githubSummary: {}\n    events: [success]\n  - channel:\n      file:\n        path: reports/runs.md\n    events: [success]\n  - channel:\n      webhook:\n        urlEnv: DEAD_URL\n    events: [success]\n  - channel:\n      webhook:\n        urlEnv: FAIL_URL\n    events: [success]\n";
    fleet.write("tasks/acme.yaml", &task("acme", &sim, notifications));
    let validate = run(&fleet, &["validate"]).await;
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    fleet.commit("Notifications");

    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("success  acme"),
        "{}",
        applied.stdout
    );
    for channel in ["slack", "webhook", "githubSummary", "file"] {
        assert!(
            applied
                .stdout
                .contains(&format!("notified acme via {channel} (success)")),
            "{channel}: {}",
            applied.stdout
        );
    }
    assert!(
        applied.stdout.contains(
            "NOT notified acme via webhook (success): could not connect after 3 attempts"
        ),
        "{}",
        applied.stdout
    );
    assert!(
        applied
            .stdout
            .contains("the receiver answered 500 Internal Server Error after 3 attempts"),
        "{}",
        applied.stdout
    );
    assert!(
        !applied.stdout.contains("nothing-listens"),
        "the URL is a secret"
    );

    let log = received.lock().expect("log").clone();
    let slack = log
        .iter()
        .find(|(hook, _, _)| hook == "slack")
        .expect("slack post");
    let records = slack.2["text"].as_str().expect("text");
    assert!(
        records.starts_with("*Task acme*: backup success (") && records.contains(" records)"),
        "{records}"
    );
    let hook = log
        .iter()
        .find(|(hook, _, _)| hook == "hook")
        .expect("webhook post");
    assert_eq!(hook.1, "Bearer hook-secret-token");
    assert_eq!(hook.2["event"], "success");
    assert_eq!(hook.2["task"]["id"], "acme");
    assert!(
        hook.2["text"]
            .as_str()
            .is_some_and(|t| t.contains("### cairn: Task acme — backup success"))
    );
    assert_eq!(
        log.iter().filter(|(hook, _, _)| hook == "fail").count(),
        3,
        "retried"
    );
    let step = std::fs::read_to_string(&summary).expect("step summary");
    assert!(
        step.contains("### cairn: Task acme — backup success"),
        "{step}"
    );
    let file =
        std::fs::read_to_string(fleet.config().join("reports/runs.md")).expect("file channel");
    assert!(file.contains("backup success"), "{file}");
}

/// A real SMTP submission server (aiosmtpd, from tests/clients/requirements.txt) requiring
/// STARTTLS and AUTH, trusting a throwaway CA; it records each message it accepts.
struct SmtpReceiver {
    child: std::process::Child,
    port: u16,
    messages: tempfile::TempDir,
    ca: tempfile::NamedTempFile,
}

impl SmtpReceiver {
    fn start(user: &str, password: &str) -> SmtpReceiver {
        use std::io::{BufRead as _, Write as _};
        let certificates = cairn_sim::tls::certificates().expect("certificates");
        let mut files = Vec::new();
        for pem in [
            &certificates.chain_pem,
            &certificates.key_pem,
            &certificates.ca_pem,
        ] {
            let mut file = tempfile::NamedTempFile::new().expect("temp file");
            file.write_all(pem.as_bytes()).expect("write PEM");
            files.push(file);
        }
        let messages = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/smtp_receiver.py"
            ))
            .arg(files[0].path())
            .arg(files[1].path())
            .args([user, password])
            .arg(messages.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the receiver's port");
        let port = first.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP receiver did not start (run tests/clients/install.sh): {first:?}")
        });
        let ca = files.pop().expect("CA file");
        SmtpReceiver {
            child,
            port,
            messages,
            ca,
        }
    }

    /// Every message accepted so far, in order.
    fn received(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.messages.path())
            .expect("messages dir")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                serde_json::from_str(&std::fs::read_to_string(path).expect("message"))
                    .expect("message JSON")
            })
            .collect()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        // Closing its stdin stops it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Email goes to a real SMTP server over STARTTLS with authentication; a wrong password is
/// reported (and not retried) without changing the backup's outcome or showing the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_over_starttls_with_auth() {
    let sim = simulator(18).await;
    let smtp = SmtpReceiver::start("cairn-mailer", "mail-password-42");
    let mut fleet = fleet_with_acme(&sim).await;
    // A private CA is trusted the standard way.
    fleet.secret("SSL_CERT_FILE", &smtp.ca.path().to_string_lossy());
    fleet.secret("SMTP_USER", "cairn-mailer");
    fleet.secret("SMTP_PASSWORD", "mail-password-42");
    fleet.secret("WRONG_PASSWORD", "wrong-password-7");
    let channel = |to: &str, password: &str| {
        format!(
            "  - channel:\n      email:\n        to: [{to}]\n        from: cairn@example.com\n        smtp:\n          host: localhost\n          port: {}\n          usernameEnv: SMTP_USER\n          passwordEnv: {password}\n    events: [success]\n",
            smtp.port
        )
    };
    let notifications = format!(
        "notifications:\n{}{}",
        channel("ops@example.com, dba@example.com", "SMTP_PASSWORD"),
        channel("audit@example.com", "WRONG_PASSWORD")
    );
    fleet.write("tasks/acme.yaml", &task("acme", &sim, &notifications));
    let validate = run(&fleet, &["validate"]).await;
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    fleet.commit("Email");

    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("notified acme via email (success)"),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains(
            "NOT notified acme via email (success): the SMTP server refused it: permanent error (535)"
        ),
        "{}",
        applied.stdout
    );
    for password in ["mail-password-42", "wrong-password-7"] {
        assert!(!applied.stdout.contains(password) && !applied.stderr.contains(password));
    }

    // The server writes a message before it answers 250, so both are on disk by now.
    let received = smtp.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let mail = &received[0];
    assert_eq!(mail["tls"], true, "sent after STARTTLS");
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["mail_from"], "cairn@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["ops@example.com", "dba@example.com"])
    );
    assert_eq!(mail["subject"], "cairn: Task acme — backup success");
    assert_eq!(mail["content_type"], "text/plain");
    let body = mail["body"].as_str().expect("body");
    assert!(
        body.contains("Snapshot `") && body.contains(" records, ") && body.contains(" API calls."),
        "{body}"
    );
}

/// The HTML report: self-contained (no scripts, no network); what needs attention first (an
/// alert that fired), then changes per run with dates and a mark on the alerting run, one
/// series per object for the totals, the runs, and the latest summary and coverage rendered as
/// HTML, not dumped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_shows_what_needs_attention_first_then_change_over_time() {
    let sim = simulator(17).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    admin(
        &sim,
        Method::POST,
        "records/Lead",
        json!({"LastName": "Later", "Company": "L", "Status": "Open - Not Contacted"}),
    )
    .await;
    // A tenth of the leads deleted: the default alert (5%) fires.
    let lead_ids = query_ids(&sim, "SELECT Id FROM Lead").await;
    let doomed = (lead_ids.len() / 10).max(2);
    delete_records(&sim, "Lead", &lead_ids[..doomed]).await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    let second = run(&fleet, &["apply", "--at", &at(T0 + DAY)]).await;
    assert!(second.stdout.contains("ALERT  Lead:"), "{}", second.stdout);
    let out = fleet.root.path().join("out/report.html");
    let made = run(&fleet, &["report", "--out", &out.to_string_lossy()]).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(made.stdout.contains("2 runs, 1 alert"), "{}", made.stdout);
    let html = std::fs::read_to_string(&out).expect("report");

    // What a reader sees first: the header's counts, then the alert.
    assert!(
        html.contains("2 snapshots kept · 2 runs recorded"),
        "{html}"
    );
    let order: Vec<usize> = [
        "<h2>Needs attention</h2>",
        "<h2>Changes per run</h2>",
        "<h2>Records per object</h2>",
        "<h2>Runs</h2>",
        "<h2>Latest changes</h2>",
        "<h2>Coverage</h2>",
    ]
    .iter()
    .map(|h| html.find(h).unwrap_or_else(|| panic!("{h} missing")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let attention = &html[order[0]..order[1]];
    assert!(
        attention.contains("<strong>ALERT</strong> 2025-06-16") && attention.contains("Lead:"),
        "{attention}"
    );
    // Change over time: a run's deletions as a bar of their own, the alert marked, dates.
    assert!(
        html.contains(&format!(
            "class=\"bar deleted\" data-run=\"06-16 12:00\" data-count=\"{doomed}\""
        )),
        "{html}"
    );
    assert_eq!(html.matches("class=\"alert-mark\"").count(), 1);
    assert!(html.contains("class=\"date\"") && html.contains(">06-15 12:00</text>"));
    assert!(html.contains(&format!("<span class=\"del\">−{doomed}</span>")));
    // Totals second: one series for every object the org lets a backup query (describe
    // marks some not, and ContentDocumentLink Salesforce lists only by Id), and Metadata.
    let global: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/services/data/v62.0/sobjects", sim.url()))
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("describeGlobal")
        .json()
        .await
        .expect("JSON");
    let queryable = global["sobjects"]
        .as_array()
        .expect("sobjects")
        .iter()
        .filter(|o| o["queryable"] == true)
        .count();
    let state = admin(&sim, Method::GET, "state", json!({})).await;
    assert!(state["records"].as_object().expect("objects").len() > queryable);
    assert_eq!(
        html.matches("<polyline class=\"series\"").count(),
        queryable + 1,
        "{html}"
    );
    assert!(html.contains("data-object=\"Metadata\""));
    // The leads the query listed (the one added among them), less those deleted.
    let leads_now = lead_ids.len() - doomed;
    assert!(
        html.contains(&format!(">Lead {leads_now}</text>")),
        "the legend gives the latest count, {leads_now}: {html}"
    );
    // Rendered, not dumped: the summary's table and headings, the coverage as a sentence.
    assert!(html.contains(&format!("<tr><td>Lead</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">{doomed}</td>")), "{html}");
    assert!(!html.contains("| Lead |") && !html.contains("\n## ") && !html.contains("backedUp:"));
    assert!(html.contains("<p>Backed up: "));
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http"),
        "no network references"
    );

    // In a real browser: the DOM it built has the series, the bars and the alert mark, and the
    // screenshot (kept in target/tmp for a look) shows the lines and the mark.
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let dom = chromium(&out, &screenshot);
    let series: Vec<&str> = dom
        .split("<polyline class=\"series\"")
        .skip(1)
        .map(|rest| rest.split("</polyline>").next().unwrap_or(rest))
        .collect();
    assert_eq!(series.len(), queryable + 1, "{dom}");
    for drawn in &series {
        let points = drawn.split("points=\"").nth(1).expect("points");
        let points = points.split('"').next().expect("points");
        assert_eq!(
            points.split(' ').count(),
            2,
            "one point per snapshot: {drawn}"
        );
    }
    assert_eq!(
        dom.matches("<rect class=\"bar ").count(),
        6,
        "three bars a run"
    );
    assert!(
        dom.contains("<td>Lead</td>"),
        "the rendered table in the DOM"
    );
    let line_pixels = pixels_in_colours(&screenshot, &cairn::commands::report::COLOURS);
    // Each line spans the plot, 500 px wide and 2 px thick; the coloured legend text alone is a
    // few dozen pixels.
    assert!(
        line_pixels >= 600,
        "only {line_pixels} pixels in series colours: see {}",
        screenshot.display()
    );
    let mark_pixels = pixels_in_colours(&screenshot, &[cairn::commands::report::ALERT_MARK]);
    assert!(
        mark_pixels >= 30,
        "the alert mark is not drawn ({mark_pixels} pixels): see {}",
        screenshot.display()
    );
    println!("screenshot: {}", screenshot.display());
}

/// The Ids a SOQL query returns (one page).
async fn query_ids(sim: &Simulator, query: &str) -> Vec<String> {
    soql(sim, query)
        .await
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_string())
        .collect()
}

/// Deletes records as a user would (into the Recycle Bin).
pub(crate) async fn delete_records(sim: &Simulator, object: &str, ids: &[String]) {
    for id in ids {
        admin(
            sim,
            Method::DELETE,
            &format!("records/{object}/{id}"),
            json!({}),
        )
        .await;
    }
}

/// Opens a page in headless Chromium (Debian's `chromium`, installed by
/// tests/clients/install.sh; `CHROMIUM` names another), saves a screenshot, and returns the DOM
/// the browser built.
fn chromium(page: &Path, screenshot: &Path) -> String {
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        let output = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1000,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{browser} does not run ({e}): run tests/clients/install.sh, or set CHROMIUM"
                )
            });
        assert!(
            output.status.success(),
            "{browser} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let _ = std::fs::remove_file(screenshot);
    run(&[format!("--screenshot={}", screenshot.display())]);
    assert!(screenshot.is_file(), "no screenshot written");
    run(&["--dump-dom".to_string()])
}

/// Pixels of a PNG within a small distance of any of the `#rrggbb` colours.
fn pixels_in_colours(png_path: &Path, colours: &[&str]) -> usize {
    let targets: Vec<[i32; 3]> = colours
        .iter()
        .map(|hex| {
            let channel =
                |i: usize| i32::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).expect("hex");
            [channel(0), channel(1), channel(2)]
        })
        .collect();
    let file = std::io::BufReader::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buffer).expect("pixels");
    let channels = frame.color_type.samples();
    assert!(channels >= 3, "a colour screenshot");
    buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .filter(|pixel| {
            targets
                .iter()
                .any(|target| (0..3).all(|c| (i32::from(pixel[c]) - target[c]).abs() <= 12))
        })
        .count()
}

/// The state records which revision of the manifests ran, so apply refuses manifests that
/// differ from every commit, unless told, and then says so in the revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_manifest_changes_are_refused_or_recorded_as_dirty() {
    let sim = simulator(19).await;
    let fleet = fleet_with_acme(&sim).await;
    let head = git(&fleet.config(), &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    fleet.write(
        "tasks/acme.yaml",
        &task("acme", &sim, "").replace("name: Task acme", "name: Acme (edited)"),
    );
    fleet.write("tasks/new.yaml", &task("new", &sim, ""));
    let refused = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("not committed: tasks/acme.yaml, tasks/new.yaml")
            && refused.stderr.contains("--allow-dirty"),
        "{}",
        refused.stderr
    );
    let branches = git(&fleet.config(), &["branch", "--list", "cairn-state"]);
    assert!(
        branches.trim().is_empty(),
        "nothing was committed: {branches}"
    );

    let dirty = run(
        &fleet,
        &["apply", "--allow-dirty", "--task", "acme", "--at", &at(T0)],
    )
    .await;
    assert_eq!(dirty.code, 0, "{}{}", dirty.stdout, dirty.stderr);
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(
        status.contains(&format!("revision: {head}-dirty")),
        "{status}"
    );

    // Committed, the revision is the commit itself.
    fleet.commit("Edit acme, add new");
    let head = git(&fleet.config(), &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    let clean = run(
        &fleet,
        &["apply", "--now", "--task", "acme", "--at", &at(T0)],
    )
    .await;
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(status.contains(&format!("revision: {head}\n")), "{status}");
}

/// A task's environment is checked against the org on every run (Organization.IsSandbox): a
/// My Domain login URL reaches either kind, so the login alone proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_task_whose_credentials_reach_production_writes_nothing() {
    let sim = simulator(20).await;
    let fleet = fleet_with_acme(&sim).await;
    fleet.write(
        "tasks/acme.yaml",
        &task("acme", &sim, "").replace("environment: production", "environment: sandbox"),
    );
    fleet.commit("acme is a sandbox, says the manifest");
    let apply = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.contains("FAILED   acme")
            && apply
                .stdout
                .contains("`environment: sandbox`, but its credentials reach a production org"),
        "{}",
        apply.stdout
    );
    let store = fleet.root.path().join("store/snapshots");
    assert!(
        !store.exists() || std::fs::read_dir(&store).expect("dir").next().is_none(),
        "nothing was written to the store"
    );
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(status.contains("outcome: failed"), "{status}");
}

/// Adding a field is an everyday admin task: it is a schema change, shown once, and makes no
/// record "modified" in the diff, the committed summary or the alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_empty_field_is_a_schema_change_not_a_change_of_every_record() {
    let sim = simulator(21).await;
    let fleet = fleet_with_acme_and(
        &sim,
        "alerts:\n  - object: \"*\"\n    modifiedPercent: 50\n",
        "Alert on mass modifications",
    )
    .await;
    let first = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    for (name, kind) in [("Region__c", "string"), ("Priority__c", "boolean")] {
        admin(
            &sim,
            Method::POST,
            "fields/Opportunity",
            json!({"name": name, "type": kind}),
        )
        .await;
    }
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    let second = run(&fleet, &["apply", "--fail-on-alert", "--at", &at(T0 + DAY)]).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(!second.stdout.contains("ALERT"), "{}", second.stdout);

    let diff = run(&fleet, &["diff", "--values", "--object", "Opportunity"]).await;
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    assert!(
        !diff.stdout.contains("Region__c: null -> null"),
        "{}",
        diff.stdout
    );
    assert!(!diff.stdout.contains("\nM "), "{}", diff.stdout);
    let snapshot = second
        .stdout
        .split("snapshot ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("snapshot id")
        .to_string();
    let summaries = git(
        &fleet.config(),
        &["ls-tree", "--name-only", "cairn-state", "state/acme/diffs/"],
    );
    let summary_path = summaries
        .lines()
        .find(|l| l.contains(&snapshot))
        .expect("the run's summary");
    let summary = state_file(&fleet, summary_path);
    assert!(
        summary.contains("Region__c") && summary.contains("Priority__c"),
        "the schema change is shown: {summary}"
    );
    let opportunity = summary
        .lines()
        .find(|l| l.contains("Opportunity"))
        .unwrap_or_default();
    assert!(!opportunity.contains("modified"), "{summary}");
}

/// Files in the org: their records and their bodies are backed up; the links Salesforce lists
/// only by Id are left out, and coverage says which and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_backed_up_with_their_bodies_and_coverage_names_what_is_left_out() {
    let sim = simulator(23).await;
    let fleet = fleet_with_acme(&sim).await;
    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let bodies = count(&sim, "SELECT Id FROM ContentVersion").await
        + count(&sim, "SELECT Id FROM Attachment").await
        + count(&sim, "SELECT Id FROM Document").await;
    assert!(
        applied.stdout.contains("success  acme")
            && applied
                .stdout
                .contains(&format!("; {bodies} files: {bodies} downloaded (")),
        "{}",
        applied.stdout
    );
    let coverage = state_file(&fleet, "state/acme/coverage.yaml");
    // Links too: listed whole each run (the simulator's backup user has Query All Files).
    for object in [
        "Attachment",
        "ContentDocument",
        "ContentDocumentLink",
        "ContentVersion",
    ] {
        assert!(
            coverage.contains(&format!("\n- {object}\n")),
            "{object}: {coverage}"
        );
    }
    assert!(!coverage.contains("not visible"), "{coverage}");
    assert!(
        !coverage.contains("Attachment.Body") && !coverage.contains("VersionData"),
        "the bodies are in the backup: {coverage}"
    );
}

/// A typo in objects.include: plan shows what the change drops and the pattern that matches
/// nothing; apply warns everywhere a reader looks, and the objects that left the backup are a
/// coverage change, never deletions that page everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_include_is_a_coverage_change_and_a_typo_is_named() {
    let sim = simulator(22).await;
    let fleet = fleet_with_acme(&sim).await;
    let first = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let narrowed = "objects:\n  include: [Acount, Contact]\nnotifications:\n  - channel:\n      file:\n        path: reports/warnings.md\n    events: [warning]\n";
    fleet.write("tasks/acme.yaml", &task("acme", &sim, narrowed));

    // Before it merges: what the change does to the backup, from the recorded coverage.
    let plan = run(&fleet, &["plan", "--at", &at(T0 + DAY)]).await;
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(
            "- no longer backs up: Account, Attachment, Case, ContentDocument, ContentDocumentLink, ContentVersion,"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "! objects.include `Acount` matches no object of the org; did you mean `Account`?"
        ),
        "{}",
        plan.stdout
    );

    fleet.commit("Only accounts and contacts (with a typo)");
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    let second = run(&fleet, &["apply", "--fail-on-alert", "--at", &at(T0 + DAY)]).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(!second.stdout.contains("ALERT"), "{}", second.stdout);
    let warning = "objects.include `Acount` matches no object of the org; did you mean `Account`?";
    assert!(
        second.stdout.contains(&format!("WARNING  {warning}")),
        "{}",
        second.stdout
    );

    let coverage = state_file(&fleet, "state/acme/coverage.yaml");
    assert!(
        coverage.contains("unmatchedIncludes:\n  Acount: matches no object; did you mean Account?"),
        "{coverage}"
    );
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(
        status.contains("type: IncludesMatch\n  status: 'False'")
            && status.contains("UnmatchedInclude"),
        "{status}"
    );
    let summaries = git(
        &fleet.config(),
        &["ls-tree", "--name-only", "cairn-state", "state/acme/diffs/"],
    );
    // The second run's summary (the first one compares with nothing).
    let all = summaries
        .lines()
        .map(|path| state_file(&fleet, path))
        .find(|text| text.contains("compared with"))
        .expect("the second summary");
    assert!(all.contains("## Coverage changes"), "{all}");
    assert!(
        all.contains("- Account: no longer backed up (80 records stay in the earlier snapshots"),
        "{all}"
    );
    assert!(!all.contains("| Account |"), "no row of deletions: {all}");
    assert!(
        !all.contains("a/Account.yaml"),
        "no schema removal either: {all}"
    );
    let notified = std::fs::read_to_string(fleet.config().join("reports/warnings.md"))
        .expect("the warning notification");
    assert!(notified.contains("Acount"), "{notified}");

    let diff = run(&fleet, &["diff", "--object", "Account"]).await;
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    assert!(
        diff.stdout.contains("Account: no longer backed up"),
        "{}",
        diff.stdout
    );
    assert!(!diff.stdout.contains("\n- 001"), "{}", diff.stdout);
}

/// An org that does not answer (503 on every call here) fails the run as unreachable: the task
/// stays Connected as last recorded, and no "disconnected" notification goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_org_fails_the_run_without_a_disconnection() {
    let sim = simulator(24).await;
    let events = "notifications:\n  - channel:\n      file:\n        path: reports/events.md\n    events: [disconnected, failure]\n    template: events.md.j2\n";
    let fleet = fleet_with_acme_and(&sim, events, "Record events").await;
    fleet.write("templates/events.md.j2", "{{ event }}: {{ run.message }}\n");
    fleet.commit("Event template");
    let first = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    admin(
        &sim,
        Method::PUT,
        "faults",
        json!([{"kind": "SERVER_UNAVAILABLE"}]),
    )
    .await;
    let down = run(&fleet, &["apply", "--now", "--at", &at(T0)]).await;
    admin(&sim, Method::DELETE, "faults", json!({})).await;
    assert_eq!(down.code, 1, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stdout.contains("FAILED   acme") && down.stdout.contains("could not be reached"),
        "{}",
        down.stdout
    );
    let status = state_file(&fleet, "state/acme/status.yaml");
    assert!(
        status.contains("type: Connected\n  status: 'True'"),
        "the recorded connection stands: {status}"
    );
    let events = std::fs::read_to_string(fleet.config().join("reports/events.md"))
        .expect("the failure notification");
    assert!(events.contains("failure:"), "{events}");
    assert!(!events.contains("disconnected:"), "{events}");
}

/// A broken task manifest stops what acts on tasks (apply), never what reads the backups of
/// the others: restore, diff, search and export still work on the day they are needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_task_manifest_never_blocks_reading_the_backups_of_the_others() {
    let sim = simulator(12).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    assert_eq!(
        run(&fleet, &["apply", "--now", "--at", &at(T0 + HOUR)])
            .await
            .code,
        0
    );
    fleet.write(
        "tasks/broken.yaml",
        "apiVersion: cairn/v1\nkind: BackupTask\nid: [\n",
    );

    let apply = run(&fleet, &["apply", "--now", "--allow-dirty"]).await;
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert!(apply.stderr.contains("have errors"), "{}", apply.stderr);

    for args in [
        &["snapshots"][..],
        &["diff", "--task", "acme"],
        &["search", "Acme", "--task", "acme"],
        &["restore", "--task", "acme", "--object", "Account"],
    ] {
        let ran = run(&fleet, args).await;
        assert_eq!(ran.code, 0, "cairn {args:?}:\n{}{}", ran.stdout, ran.stderr);
    }
}

/// A restore killed (SIGKILL) at random moments, several times, then run to the end: every
/// record exists exactly once, whatever batch each kill interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_anywhere_and_run_again_creates_every_record_exactly_once() {
    let sim = simulator_of(17, 4000).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let contacts: Vec<String> = soql(&sim, "SELECT Id FROM Contact")
        .await
        .iter()
        .map(|c| c["Id"].as_str().expect("Id").to_string())
        .collect();
    assert!(contacts.len() >= 1000, "{}", contacts.len());
    for id in &contacts {
        admin(
            &sim,
            Method::DELETE,
            &format!("records/Contact/{id}"),
            json!({}),
        )
        .await;
    }
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;
    // Each batch of 200 creates takes a while, so kills land between and inside batches.
    admin(
        &sim,
        Method::PUT,
        "faults",
        json!([{"kind": "SLOW", "delayMs": 120, "path": "/composite/sobjects", "method": "POST"}]),
    )
    .await;

    let args = [
        "restore", "--task", "acme", "--object", "Contact", "--yes", "--wait", "30s",
    ];
    let mut rng = cairn_sim::org::Rng::new(23);
    for _ in 0..3 {
        let delay = std::time::Duration::from_millis(100 + rng.below(1200));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(fleet.config())
            .args(args)
            .env_remove("CAIRN_KEY")
            .envs(fleet.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cairn");
        tokio::time::sleep(delay).await;
        let _ = child.kill();
        let _ = child.wait();
    }
    admin(&sim, Method::DELETE, "faults", json!({})).await;
    let finished = run(&fleet, &args).await;
    assert_eq!(finished.code, 0, "{}{}", finished.stdout, finished.stderr);
    let now = soql(&sim, "SELECT Id FROM Contact").await;
    assert_eq!(
        now.len(),
        contacts.len(),
        "every contact exactly once after the kills\n{}",
        finished
            .stdout
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let again = run(&fleet, &args).await;
    assert!(
        again
            .stdout
            .contains("Restored: 0 created, 0 updated, 0 failed."),
        "{}",
        again
            .stdout
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `--with-children` brings back what pointed at a restored account (its contacts and
/// opportunities) as the snapshot had them, without naming them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_children_brings_back_what_pointed_at_the_parent() {
    let sim = simulator(18).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let (account, contacts, opportunities) = family(&sim).await;
    delete_family(&sim, &account, &contacts, &opportunities).await;
    let plan = run(
        &fleet,
        &[
            "restore",
            "--task",
            "acme",
            "--id",
            &account,
            "--with-children",
        ],
    )
    .await;
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("with their children, as they were in the snapshot:")
            && plan.stdout.contains(&format!("Contact {}", contacts.len()))
            && plan
                .stdout
                .contains(&format!("Opportunity {}", opportunities.len())),
        "{}",
        plan.stdout
    );
    let applied = run(
        &fleet,
        &[
            "restore",
            "--task",
            "acme",
            "--id",
            &account,
            "--with-children",
            "--yes",
        ],
    )
    .await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'")
        )
        .await,
        contacts.len()
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Opportunity WHERE AccountId = '{account}'")
        )
        .await,
        opportunities.len()
    );
}

/// `--mode create-missing` brings back only what is gone; `--mode update-existing` only sets
/// back what differs; each says what it skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_mode_writes_only_what_it_names() {
    let sim = simulator(19).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let (account, contacts, _) = family(&sim).await;
    let phone_query = format!("SELECT Phone FROM Account WHERE Id = '{account}'");
    let before = soql(&sim, &phone_query).await.remove(0)["Phone"].clone();
    admin(
        &sim,
        Method::PATCH,
        &format!("records/Account/{account}"),
        json!({"Phone": "000"}),
    )
    .await;
    delete_contacts(&sim, &contacts).await;
    let selector = format!("AccountId={account}");
    let restore_in = async |mode: &str| {
        run(
            &fleet,
            &[
                "restore", "--task", "acme", "--id", &account, "--where", &selector, "--mode",
                mode, "--yes",
            ],
        )
        .await
    };
    let created = restore_in("create-missing").await;
    assert_eq!(created.code, 0, "{}{}", created.stdout, created.stderr);
    assert!(
        created
            .stdout
            .contains("- skip 1: still there; --mode create-missing leaves it as it is"),
        "{}",
        created.stdout
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'")
        )
        .await,
        contacts.len()
    );
    assert_eq!(soql(&sim, &phone_query).await.remove(0)["Phone"], "000");

    delete_contacts(&sim, &contacts).await;
    let updated = restore_in("update-existing").await;
    assert_eq!(updated.code, 0, "{}{}", updated.stdout, updated.stderr);
    assert!(
        updated.stdout.contains(&format!(
            "- skip {}: gone; --mode update-existing brings nothing back",
            contacts.len()
        )),
        "{}",
        updated.stdout
    );
    assert_eq!(soql(&sim, &phone_query).await.remove(0)["Phone"], before);
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'")
        )
        .await,
        0,
        "nothing gone was brought back"
    );
}
