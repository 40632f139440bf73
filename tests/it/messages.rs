//! Errors an operator met that pointed the wrong way, each pinned to what it says now: what
//! failed, why, and a next step that exists (issue 27).

use crate::common;

use std::os::unix::fs::PermissionsExt;

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use common::deployment::{Deployment, StoreKind, back_up_a_deletion, simulator, succeeded, text};
use common::{Test, git};

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n";

/// A task whose org is at `login_url`, with `extra` lines under `source:`.
fn task(login_url: &str, extra: &str) -> String {
    format!(
        "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nsource:\n  type: salesforce\n  environment: production\n  loginUrl: {login_url}\n{extra}  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      refreshTokenEnv: SF_REFRESH_TOKEN\n"
    )
}

#[test]
fn outside_a_git_repository_plan_apply_and_status_say_what_git_is_for_not_to_drop_rev() {
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .file("tasks/acme.yaml", task("https://login.salesforce.com", ""));
    for (command, purpose) in [
        ("plan", "plan compares the manifests with a base revision"),
        ("apply", "state on a branch of the config repository"),
        ("status", "state on a branch of the config repository"),
    ] {
        let ran = test.run_with(&[command]).status(1);
        assert!(
            ran.stderr.contains("is not inside a git repository")
                && ran.stderr.contains(purpose)
                && ran.stderr.contains("git init")
                && !ran.stderr.contains("--rev"),
            "{command}: {}",
            ran.stderr
        );
    }
    // --rev itself still says what --rev needs.
    let ran = test.run_with(&["validate", "--rev", "HEAD"]).status(1);
    assert!(ran.stderr.contains("drop --rev"), "{}", ran.stderr);
}

#[test]
fn validate_outside_a_config_repository_points_at_cairn_init() {
    let ran = Test::new().arg("validate").run().status(1);
    assert!(
        ran.stdout.contains("run `cairn init` here to create one")
            && !ran.stdout.contains("examples/quickstart"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_bad_raw_key_points_at_cairn_key_raw() {
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .env("CAIRN_PASSPHRASE", "correct horse");
    test.run_with(&["init"]).status(0);
    let ran = Test::from_dir(test.path())
        .env("CAIRN_KEY", "not a key")
        .arg("key")
        .arg("list")
        .run()
        .status(1);
    assert!(
        ran.stderr.contains("`cairn key raw` prints it") && !ran.stderr.contains("cairn init"),
        "{}",
        ran.stderr
    );
}

#[test]
fn an_org_that_refuses_the_connection_is_said_with_its_cause_and_no_login_advice() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .file("tasks/acme.yaml", task("http://127.0.0.1:1", ""))
        .env("CAIRN_PASSPHRASE", "correct horse")
        .env("SF_CLIENT_ID", "id")
        .env("SF_REFRESH_TOKEN", "token");
    git(test.path(), &["init", "--quiet", "-b", "main"]);
    test.run_with(&["init"]).status(0);
    git(test.path(), &["add", "-A"]);
    git(test.path(), &["commit", "--quiet", "-m", "acme"]);

    let apply = test.run_with(&["apply", "--now", "-q"]).status(1);
    assert!(
        apply.stdout.contains("could not be reached")
            && apply.stdout.contains("Connection refused")
            && !apply.stdout.contains("auth login"),
        "{}",
        apply.stdout
    );
    let status = test.run_with(&["status", "--check-connection"]).status(1);
    assert!(
        status
            .stdout
            .contains("error: acme is not connected: the org could not be reached")
            && status.stdout.contains("Connection refused")
            && status.stdout.contains("source.loginUrl")
            && !status.stdout.contains("auth login"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_budget_spent_before_anything_is_backed_up_is_partial_and_claims_no_snapshot() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = runtime
        .block_on(Simulator::start(
            SimOptions {
                org: OrgOptions {
                    seed: 3,
                    population: Population::spread(500),
                    api_max: 1000,
                    ..OrgOptions::default()
                },
                ..SimOptions::default()
            },
            0,
        ))
        .expect("simulator");
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let a = deployment.clone_dir("a");
    let manifest = std::fs::read_to_string(a.join("tasks/acme.yaml")).expect("task");
    // 1% of 1,000 calls: the login and the first describes spend it.
    std::fs::write(
        a.join("tasks/acme.yaml"),
        manifest.replace("  auth:\n", "  apiUsageLimitPercent: 1\n  auth:\n"),
    )
    .expect("task");
    git(&a, &["commit", "--quiet", "-am", "1%"]);
    let apply = deployment.cairn("a", &["apply", "--now", "-q"]);
    let stdout = text(&apply.stdout);
    assert_eq!(
        apply.status.code(),
        Some(3),
        "partial, not failed:\n{stdout}"
    );
    assert!(
        stdout.starts_with("partial ")
            && stdout.contains("nothing was backed up and no snapshot was written")
            && !stdout.contains("kept as partial"),
        "{stdout}"
    );
    let snapshots = deployment.cairn("a", &["snapshots", "--format", "json"]);
    succeeded(&snapshots, "snapshots");
    let list: serde_json::Value = serde_json::from_slice(&snapshots.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn after_a_deletion_restore_diff_and_export_point_the_right_way() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 27);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let gone = back_up_a_deletion(&runtime, &sim, &deployment);

    // The deleted record is not in latest: the error says where it is, and that is true.
    let restore = deployment.cairn("a", &["restore", "--task", "acme", "--id", &gone]);
    let stderr = text(&restore.stderr);
    assert_eq!(restore.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("(latest) matches")
            && stderr.contains("--snapshot latest~1")
            && stderr.contains(&format!("cairn search {gone} --deleted --task acme")),
        "{stderr}"
    );
    let search = deployment.cairn("a", &["search", &gone, "--deleted", "--task", "acme"]);
    succeeded(&search, "the search the hint names");
    assert!(
        text(&search.stdout).contains(&gone),
        "{}",
        text(&search.stdout)
    );
    // Search says how many matched when --limit cut the list.
    let limited = deployment.cairn("a", &["search", "Round", "--limit", "1"]);
    succeeded(&limited, "search --limit 1");
    assert!(
        text(&limited.stdout).ends_with("1 of 2 hits (--limit 1; raise it to see more)\n"),
        "{}",
        text(&limited.stdout)
    );
    let json = deployment.cairn(
        "a",
        &["search", "Round", "--limit", "1", "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        (
            json["matched"].as_u64(),
            json["hits"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    let earlier = deployment.cairn(
        "a",
        &[
            "restore",
            "--task",
            "acme",
            "--id",
            &gone,
            "--snapshot",
            "latest~1",
        ],
    );
    succeeded(
        &earlier,
        "the restore plan from the snapshot the hint names",
    );

    // Both snapshots are from today: a date names the newest, the same as latest.
    let today = &cairn::time::format_datetime_z(cairn::time::now_ms())[..10];
    let same = deployment.cairn("a", &["diff", today, "latest"]);
    assert_eq!(same.status.code(), Some(1));
    assert!(
        text(&same.stderr).contains(&format!("{today} and latest are the same snapshot")),
        "{}",
        text(&same.stderr)
    );
    let before = deployment.cairn("a", &["diff", "2001-01-01", "latest"]);
    assert!(
        text(&before.stderr)
            .contains("no snapshot was taken on or before 2001-01-01: the oldest is"),
        "{}",
        text(&before.stderr)
    );

    // Exports hold decrypted records: only their owner may read them.
    let out = deployment.root.join("export");
    for (args, sub) in [
        (vec!["--format", "jsonl"], "records"),
        (vec!["--files"], "files"),
    ] {
        let dir = out.join(sub);
        let dir_text = dir.to_string_lossy().to_string();
        let mut all = vec!["export", "--out", dir_text.as_str()];
        all.extend(args);
        succeeded(&deployment.cairn("a", &all), "export");
        let mut files = 0;
        let mut stack = vec![dir.clone()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(&at).expect("dir") {
                let path = entry.expect("entry").path();
                let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
                if path.is_dir() {
                    assert_eq!(mode, 0o700, "{}", path.display());
                    stack.push(path);
                } else {
                    assert_eq!(mode, 0o600, "{}", path.display());
                    files += 1;
                }
            }
        }
        assert!(files > 1, "{sub}: nothing exported");
    }
}
