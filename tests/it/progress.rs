//! What `cairn apply` says while it works, where its user sees it: bars under a terminal,
//! bounded timestamped lines in CI, JSON event lines with `--format json`, nothing with `-q`.
//! The org answers with a distant org's latency, so the run lasts long enough to be watched.

use crate::common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use common::deployment::{Deployment, StoreKind, succeeded, text};

fn slow_org(runtime: &tokio::runtime::Runtime) -> Simulator {
    runtime
        .block_on(Simulator::start(
            SimOptions {
                org: OrgOptions {
                    seed: 27,
                    population: Population::spread(12_000),
                    ..OrgOptions::default()
                },
                latency_ms: 25,
                ..SimOptions::default()
            },
            0,
        ))
        .expect("simulator")
}

/// `2026-12-01T16:20:03Z ` at the start of a line.
fn timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && &b[19..21] == b"Z "
        && b[..19]
            .iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16].contains(&i) || c.is_ascii_digit())
}

/// Counts such as `1,200/4,000 records` or `36/600 files`: a bar that knows its length.
fn has_counted_bar(output: &str) -> bool {
    output.match_indices('/').any(|(at, _)| {
        let before = output[..at].chars().next_back();
        let after = &output[at + 1..];
        let digits: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        before.is_some_and(|c| c.is_ascii_digit())
            && !digits.is_empty()
            && [" records", " files"]
                .iter()
                .any(|unit| after[digits.len()..].starts_with(unit))
    })
}

#[test]
fn apply_on_a_terminal_draws_bars_and_prints_the_outcome_once_they_are_gone() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = slow_org(&runtime);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    // `script` gives the command a pseudo-terminal and copies what it draws to its stdout.
    let command = format!(
        "{} apply --now 2>&1; echo \"exit=$?\"",
        env!("CARGO_BIN_EXE_cairn")
    );
    let mut script = Command::new("script");
    script
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(deployment.clone_dir("a"))
        .env_remove("CI")
        .env_remove("CAIRN_PASSPHRASE")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .envs(deployment.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let output = script.output().expect("script (util-linux) runs the apply");
    let drawn = String::from_utf8_lossy(&output.stdout);
    assert!(drawn.contains("exit=0"), "{drawn}");
    // Bars are drawn and redrawn in place (cursor up, clear line) ...
    assert!(drawn.contains("\x1b[2K"), "no bar was drawn:\n{drawn}");
    assert!(drawn.contains("acme Account"), "{drawn}");
    assert!(has_counted_bar(&drawn), "no bar with its count:\n{drawn}");
    // ... and gone before the outcome is printed, which comes last and whole.
    let outcome = drawn.rfind("success").expect("the outcome");
    assert!(
        !drawn[outcome..].contains("\x1b[2K"),
        "a bar was drawn over the outcome:\n{}",
        &drawn[outcome..]
    );
}

fn apply(deployment: &Deployment, args: &[&str], envs: &[(&str, &str)]) -> (Output, Duration) {
    let started = Instant::now();
    let output = deployment
        .command("a", args)
        .env_remove("CI")
        .envs(envs.iter().copied())
        .output()
        .expect("cairn");
    (output, started.elapsed())
}

#[test]
fn apply_in_ci_prints_timestamped_lines_at_a_bounded_pace_and_a_line_per_object() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = slow_org(&runtime);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let interval = Duration::from_millis(300);
    let (output, took) = apply(
        &deployment,
        &["apply", "--now"],
        &[("CI", "true"), ("CAIRN_PROGRESS_INTERVAL", "0.3s")],
    );
    succeeded(&output, "apply");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.iter().all(|l| timestamped(l)),
        "every line starts with its UTC time:\n{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "no terminal codes in a log:\n{stderr}"
    );
    for object in ["Account", "Contact", "Opportunity", "Attachment"] {
        let own = |l: &&&str| l[21..].starts_with(&format!("acme {object}: "));
        let ended: Vec<_> = lines
            .iter()
            .filter(own)
            .filter(|l| l.contains("full, "))
            .collect();
        assert_eq!(ended.len(), 1, "one summary line for {object}:\n{stderr}");
        let progress = lines
            .iter()
            .filter(own)
            .filter(|l| l.contains("/s"))
            .count();
        let bound = (took.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
        assert!(
            progress <= bound,
            "{progress} progress lines for {object} in {took:?} at one per {interval:?}:\n{stderr}"
        );
    }
    // The file downloads last long enough to be reported while they run, with their count.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" files") && l.contains(" of ") && l.contains(" left)")),
        "no progress line while files were downloaded:\n{stderr}"
    );
    // The outcome is on stdout, not mixed into the log.
    assert!(
        text(&output.stdout).contains("success"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn quiet_says_nothing_and_json_says_it_in_events_beside_a_json_outcome() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = slow_org(&runtime);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let (json, _) = apply(
        &deployment,
        &["apply", "--now", "--format", "json"],
        &[("CI", "true"), ("CAIRN_PROGRESS_INTERVAL", "0.2s")],
    );
    succeeded(&json, "apply --format json");
    let outcome: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("stdout is one JSON document");
    assert!(outcome.is_object(), "{outcome}");
    let events: Vec<serde_json::Value> = text(&json.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished: Vec<_> = events.iter().filter(|e| e["event"] == "finished").collect();
    let started = events.iter().filter(|e| e["event"] == "started").count();
    assert_eq!(started, finished.len(), "every step that starts ends");
    let account = finished
        .iter()
        .find(|e| e["step"] == "Account")
        .expect("Account's step");
    assert_eq!(account["task"], "acme");
    assert_eq!(account["unit"], "records");
    assert!(account["done"].as_u64().is_some_and(|n| n > 0), "{account}");
    assert!(events.iter().all(|e| e["time"].is_string()));

    let (quiet, _) = apply(&deployment, &["apply", "--now", "-q"], &[("CI", "true")]);
    succeeded(&quiet, "apply -q");
    assert_eq!(text(&quiet.stderr), "", "-q prints nothing while working");
}

#[test]
fn a_restore_says_how_many_records_it_wrote_as_it_goes() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = common::deployment::simulator(&runtime, 41);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    let gone = common::deployment::back_up_a_deletion(&runtime, &sim, &deployment);
    let (restored, _) = apply(
        &deployment,
        &[
            "restore",
            "--task",
            "acme",
            "--id",
            &gone,
            "--snapshot",
            "latest~1",
            "--yes",
        ],
        &[("CI", "true")],
    );
    succeeded(&restored, "restore");
    let stderr = text(&restored.stderr);
    assert!(
        stderr.lines().any(|l| timestamped(l)
            && l[21..].starts_with("acme restore: 1 undeleted, 0 created, 0 updated, 0 failed")),
        "{stderr}"
    );
}
