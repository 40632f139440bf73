//! The broken-manifest corpus (tests/corpus/README.md): every case's diagnostics must be exactly
//! the ones its header expects, at the expected line and column, and its text output must match
//! the snapshot. No secret a case names may appear in any output format.

use crate::common;

use std::path::Path;

use common::{Ran, Test, repo_root};

/// (rule, file, line:col) as a case states it and as `--format json` reports it.
type Finding = (String, String, String);

fn parse_expectation(line: &str, default_file: Option<&str>) -> Option<Finding> {
    let (rule, place) = line.split_once(" @ ")?;
    let (file, position) = match default_file {
        Some(file) => (file.to_string(), place.trim().to_string()),
        None => match place.trim().split_once(':') {
            Some((file, position)) => (file.to_string(), position.to_string()),
            None => (place.trim().to_string(), String::new()),
        },
    };
    Some((rule.trim().to_string(), file, position))
}

fn reported(ran: &Ran) -> Vec<Finding> {
    let report = ran.json();
    let mut found: Vec<Finding> = report["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .iter()
        .map(|d| {
            let position = match (d["line"].as_u64(), d["column"].as_u64()) {
                (Some(line), Some(col)) => format!("{line}:{col}"),
                _ => String::new(),
            };
            (
                d["rule"].as_str().unwrap_or_default().to_string(),
                d["file"].as_str().unwrap_or_default().to_string(),
                position,
            )
        })
        .collect();
    found.sort();
    found
}

fn never_shown(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# never-shown: "))
        .map(str::to_string)
        .collect()
}

/// Runs one case in all three formats and checks it; a wrong set of diagnostics is added to
/// `mismatches` so one run lists every case that is off.
fn check_case(
    test: &Test,
    mut expected: Vec<Finding>,
    secrets: &[String],
    mismatches: &mut Vec<String>,
) -> String {
    let run =
        |format: &str| test.run_with(&["validate", ".", "--format", format, "--color", "never"]);
    let json = run("json");
    let text = run("text");
    let github = run("github");
    expected.sort();
    let found = reported(&json);
    if found != expected {
        mismatches.push(format!(
            "expected {expected:?}\n   found {found:?}\n{}",
            text.stdout
        ));
    }
    let has_error = json.json()["summary"]["errors"].as_u64() != Some(0);
    let code = if has_error { 1 } else { 0 };
    for ran in [&json, &text, &github] {
        assert_eq!(ran.code, code, "exit code of:\n{}", ran.stdout);
        assert!(ran.stderr.is_empty(), "stderr: {}", ran.stderr);
        for secret in secrets {
            assert!(
                !ran.stdout.contains(secret.as_str()),
                "a secret leaked into the output:\n{}",
                ran.stdout
            );
        }
    }
    text.stdout
}

#[test]
fn task_manifest_corpus() {
    let base = repo_root().join("tests/corpus/base");
    let mut cases = 0;
    let mut mismatches = Vec::new();
    insta::glob!("..", "corpus/tasks/*.yaml", |path| {
        cases += 1;
        let name = file_name(path);
        let bytes = std::fs::read(path).expect("read case");
        let sidecar = path.with_extension("yaml.expect");
        let header = match std::fs::read_to_string(&sidecar) {
            Ok(text) => text,
            Err(_) => String::from_utf8_lossy(&bytes)
                .trim_start_matches('\u{feff}')
                .to_string(),
        };
        let file = format!("tasks/{name}");
        let expected: Vec<Finding> = header
            .lines()
            .map(|l| l.strip_prefix("# expect: ").unwrap_or(l))
            .filter_map(|l| parse_expectation(l, Some(&file)))
            .collect();
        let secrets = never_shown(&header);
        let test = Test::from_dir(&base).file(&file, &bytes);
        let output = check_case(&test, expected, &secrets, &mut mismatches);
        insta::assert_snapshot!(output);
    });
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    assert!(cases >= 40, "the corpus shrank to {cases} cases");
}

#[test]
fn repository_corpus() {
    let mut mismatches = Vec::new();
    insta::glob!("..", "corpus/repos/*/EXPECT", |path| {
        let case = path.parent().expect("case directory");
        let expected: Vec<Finding> = std::fs::read_to_string(path)
            .expect("read EXPECT")
            .lines()
            .filter_map(|l| parse_expectation(l, None))
            .collect();
        let mut secrets = Vec::new();
        for file in walk(case) {
            secrets.extend(never_shown(
                &std::fs::read_to_string(&file).unwrap_or_default(),
            ));
        }
        let test = Test::from_dir(case);
        std::fs::remove_file(test.path().join("EXPECT")).expect("drop EXPECT from the copy");
        let output = check_case(&test, expected, &secrets, &mut mismatches);
        insta::assert_snapshot!(output);
    });
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn a_huge_manifest_is_refused_without_parsing_it() {
    let huge = format!("name: \"{}\"\n", "x".repeat(2 * 1024 * 1024));
    let test = Test::from_dir(&repo_root().join("tests/corpus/base")).file("tasks/huge.yaml", huge);
    let mut mismatches = Vec::new();
    let output = check_case(
        &test,
        vec![(
            "yaml/too-large".into(),
            "tasks/huge.yaml".into(),
            "1:1".into(),
        )],
        &[],
        &mut mismatches,
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    insta::assert_snapshot!(output);
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
