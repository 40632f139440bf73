//! Every command that reports takes `--format json` and prints JSON a script can read: one
//! document on stdout (`diff`: JSON lines, one per change then the statistics), whatever it
//! says while working on stderr. The README's table of commands lists the same.

use crate::common;

use common::deployment::{Deployment, StoreKind, edit_org, simulator, succeeded, text};
use common::{Test, git};

/// Runs `args` in clone a and parses its stdout as one JSON document.
fn json_of(deployment: &Deployment, args: &[&str]) -> serde_json::Value {
    let output = deployment
        .command("a", args)
        .env("CAIRN_NEW_PASSPHRASE", "another horse")
        .output()
        .expect("cairn");
    let what = args.join(" ");
    assert!(
        output
            .status
            .code()
            .is_some_and(|c| c == 0 || c == 2 || c == 3),
        "{what} exited {:?}:\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}",
            text(&output.stdout)
        )
    })
}

#[test]
fn every_reporting_command_prints_json_with_format_json() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 31);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let mut account = None;
    edit_org(&runtime, &sim, 0, &mut account);
    let first = json_of(&deployment, &["apply", "--now", "-q", "--format", "json"]);
    assert!(first["results"].is_array(), "{first}");
    edit_org(&runtime, &sim, 1, &mut account);
    json_of(&deployment, &["apply", "--now", "-q", "--format", "json"]);
    let out = deployment.root.join("out");
    let out_dir = out.join("records").to_string_lossy().to_string();
    let report = out.join("report.html").to_string_lossy().to_string();

    let commands: Vec<Vec<&str>> = vec![
        vec!["validate"],
        vec!["plan"],
        vec!["apply", "--dry-run"],
        vec!["status"],
        vec!["snapshots"],
        vec!["search", "Round"],
        vec!["restore", "--task", "acme", "--object", "Account"],
        vec!["export", "--as", "jsonl", "--out", &out_dir],
        vec!["report", "--out", &report],
        vec!["check"],
        vec!["repair", "--dry-run"],
        vec!["forget", "--dry-run"],
        vec!["prune", "--dry-run"],
        vec!["unlock"],
        vec!["key", "list"],
        vec!["key", "add", "--label", "second"],
        vec!["key", "raw"],
        vec!["version"],
        vec![
            "add",
            "salesforce",
            "--name",
            "Acme Sandbox",
            "--environment",
            "sandbox",
        ],
    ];
    for args in &commands {
        let mut all = args.clone();
        all.extend(["--format", "json"]);
        let value = json_of(&deployment, &all);
        assert!(
            value.is_object() || value.is_array(),
            "{}: {value}",
            args.join(" ")
        );
    }

    // diff: JSON lines, each a document, the last the statistics.
    let diff = deployment.cairn("a", &["diff", "--format", "json"]);
    succeeded(&diff, "diff");
    let lines: Vec<serde_json::Value> = text(&diff.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 2, "a change and the statistics: {lines:?}");

    // An error, asked for as JSON, is JSON too (on stderr; stdout stays empty).
    let failed = deployment.cairn("a", &["diff", "latest", "latest", "--format", "json"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(failed.stdout.is_empty());
    let error: serde_json::Value = serde_json::from_slice(&failed.stderr).expect("error JSON");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("same snapshot"))
            && error["help"].is_string()
            && error["exitCode"] == 1,
        "{error}"
    );

    // init, in a directory of its own.
    let fresh = Test::new()
        .file(
            "cairn.yaml",
            "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n",
        )
        .env("CAIRN_PASSPHRASE", "correct horse");
    git(fresh.path(), &["init", "--quiet", "-b", "main"]);
    let init = fresh.run_with(&["init", "--format", "json"]).status(0);
    let init: serde_json::Value = serde_json::from_str(&init.stdout).expect("init JSON");
    assert!(init.is_object(), "{init}");
}

#[test]
fn the_readme_table_lists_every_command_with_its_json_and_exit_codes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let rows: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `cairn "))
        .collect();
    let listed: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|l| l["| `cairn ".len()..].split([' ', '`']).next())
        .collect();
    let help = common::help_commands();
    let commands: std::collections::BTreeSet<&str> = help
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(
        listed, commands,
        "the README's table and `cairn --help` differ"
    );
    for row in rows {
        // command | what it does | --format json | exit codes
        let cells = row.replace("\\|", "").matches(" | ").count();
        assert_eq!(cells, 3, "four columns: {row}");
    }
}
