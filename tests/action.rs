//! The GitHub Action's shell steps, run as a runner would: inputs as INPUT_* variables,
//! GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH and an event payload; cairn on PATH.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn steps() -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml"))
        .expect("action.yml");
    let action: serde_yaml::Value = serde_yaml::from_str(&text).expect("action.yml is YAML");
    action["runs"]["steps"]
        .as_sequence()
        .expect("steps")
        .clone()
}

fn script(name: &str) -> String {
    steps()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("no step {name}"))
        .to_string()
}

struct Runner {
    dir: tempfile::TempDir,
}

struct Ran {
    code: i32,
    stdout: String,
    outputs: BTreeMap<String, String>,
    summary: String,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, step: &str, inputs: &[(&str, &str)], cwd: &Path) -> Ran {
        let binary_dir = Path::new(env!("CARGO_BIN_EXE_cairn"))
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let path = format!(
            "{}:{}",
            binary_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::fs::write(
            self.file("event.json"),
            r#"{"action":"opened","pull_request":{"number":7,"head":{"ref":"change"},"base":{"ref":"main"}}}"#,
        )
        .expect("event");
        let runner_temp = self.file("runner-temp");
        std::fs::create_dir_all(&runner_temp).expect("runner temp");
        let output = Command::new("bash")
            .arg("-c")
            .arg(script(step))
            .current_dir(cwd)
            .env("PATH", path)
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary.md"))
            .env("GITHUB_PATH", self.file("path"))
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.file("event.json"))
            .env("GITHUB_ACTION_PATH", env!("CARGO_MANIFEST_DIR"))
            .env("RUNNER_TOOL_CACHE", self.file("tool-cache"))
            .env("RUNNER_TEMP", &runner_temp)
            .env_remove("CAIRN_KEY")
            .env_remove("CAIRN_PASSPHRASE")
            .envs(inputs.iter().copied())
            .output()
            .expect("bash");
        let outputs = std::fs::read_to_string(self.file("output"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
            outputs,
            summary: std::fs::read_to_string(self.file("summary.md")).unwrap_or_default(),
        }
    }
}

/// The quickstart config repository, committed in a git repository of its own.
fn config_repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("repo");
    common::copy_dir(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart")),
        repo.path(),
    );
    for args in [
        vec!["init", "--quiet", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "config",
        ],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(&args)
            .status()
            .expect("git");
        assert!(status.success());
    }
    repo
}

#[test]
fn the_install_step_keeps_a_cairn_of_the_asked_version() {
    let runner = Runner::new();
    let ran = runner.run(
        "Install cairn",
        &[("INPUT_VERSION", env!("CARGO_PKG_VERSION"))],
        runner.dir.path(),
    );
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains(&format!("cairn {} is installed", env!("CARGO_PKG_VERSION"))),
        "{}",
        ran.stdout
    );
}

#[test]
fn plan_writes_outputs_the_summary_and_the_comment() {
    let runner = Runner::new();
    let repo = config_repository();
    let ran = runner.run(
        "Run cairn",
        &[
            ("INPUT_COMMAND", "plan"),
            ("INPUT_ARGS", ""),
            ("INPUT_WORKING_DIRECTORY", "."),
        ],
        repo.path(),
    );
    assert_eq!(
        ran.code, 0,
        "plan with changes is not a failure: {}",
        ran.stdout
    );
    assert_eq!(ran.outputs["exit-code"], "2");
    assert_eq!(ran.outputs["changed"], "true");
    let matrix: Value = serde_json::from_str(&ran.outputs["due-tasks"]).expect("matrix JSON");
    assert!(
        matrix["include"]
            .as_array()
            .is_some_and(|tasks| !tasks.is_empty()),
        "{matrix}"
    );
    assert!(
        Path::new(&ran.outputs["comment-file"]).starts_with(runner.file("runner-temp")),
        "files go to RUNNER_TEMP, which the runner cleans: {}",
        ran.outputs["comment-file"]
    );
    let comment = std::fs::read_to_string(&ran.outputs["comment-file"]).expect("comment file");
    assert!(comment.starts_with("<!-- cairn-plan -->"), "{comment}");
    assert!(comment.contains("+ create acme-production"), "{comment}");
    assert!(
        ran.summary.starts_with("## cairn plan") && ran.summary.contains("<!-- cairn-plan -->"),
        "{}",
        ran.summary
    );
}

#[test]
fn validate_reports_problems_as_github_annotations_and_fails() {
    let runner = Runner::new();
    let repo = config_repository();
    let task = repo.path().join("tasks/acme-production.yaml");
    let text = std::fs::read_to_string(&task)
        .expect("task")
        .replace("environment: production", "environment: prod");
    std::fs::write(&task, text).expect("break it");
    let ran = runner.run(
        "Run cairn",
        &[
            ("INPUT_COMMAND", "validate"),
            ("INPUT_ARGS", ""),
            ("INPUT_WORKING_DIRECTORY", "."),
        ],
        repo.path(),
    );
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    assert_eq!(ran.outputs["exit-code"], "1");
    assert!(
        ran.stdout
            .contains("::error file=tasks/acme-production.yaml,line="),
        "{}",
        ran.stdout
    );
    assert!(ran.summary.contains("## cairn validate"));
}

#[test]
fn an_unknown_command_is_refused() {
    let runner = Runner::new();
    let ran = runner.run(
        "Run cairn",
        &[
            ("INPUT_COMMAND", "destroy"),
            ("INPUT_ARGS", ""),
            ("INPUT_WORKING_DIRECTORY", "."),
        ],
        runner.dir.path(),
    );
    assert_eq!(ran.code, 1);
    assert!(
        ran.stdout.contains("::error::unknown command 'destroy'"),
        "{}",
        ran.stdout
    );
}

#[test]
fn the_example_workflows_are_valid_yaml_that_use_the_action() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workflows"));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("workflows") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let workflow: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            workflow["jobs"].as_mapping().is_some_and(|j| !j.is_empty()),
            "{}",
            path.display()
        );
        assert!(
            text.contains("cairn-backup/cairn@v0") || text.contains("cairn "),
            "{}",
            path.display()
        );
        names.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    assert_eq!(
        names,
        [
            "apply.yml",
            "fanout.yml",
            "plan.yml",
            "restore.yml",
            "staleness.yml"
        ]
    );
}
