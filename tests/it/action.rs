//! The GitHub Action's shell steps, run as a runner would: inputs as INPUT_* variables,
//! GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH and an event payload; cairn on PATH.

use crate::common;

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
        self.run_with_path(step, inputs, cwd, &path)
    }

    fn run_with_path(&self, step: &str, inputs: &[(&str, &str)], cwd: &Path, path: &str) -> Ran {
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
            "restore-plan.yml",
            "restore.yml",
            "staleness.yml"
        ]
    );
}

/// Serves the files of a directory over HTTP on an ephemeral port until the test ends, as a
/// release download site does (404 for anything else).
fn file_server(root: PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let file = root.join(path.trim_start_matches('/'));
            let response = match std::fs::read(&file) {
                Ok(body) if !path.contains("..") => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    head.extend(body);
                    head
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{address}")
}

/// The release target the install step picks on this machine.
fn release_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
        ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

/// A release site holding an archive of the binary built for these tests, laid out as the
/// release workflow publishes it; `tamper` breaks its SHA-256 file.
fn release_site(dir: &Path, tamper: bool) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let release = dir.join(format!("v{version}"));
    std::fs::create_dir_all(&release).expect("release dir");
    let archive = format!("cairn-{version}-{}.tar.gz", release_target());
    let binary = Path::new(env!("CARGO_BIN_EXE_cairn"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(release.join(&archive))
        .arg("-C")
        .arg(binary.parent().expect("bin dir"))
        .arg("cairn")
        .status()
        .expect("tar");
    assert!(status.success());
    let bytes = std::fs::read(release.join(&archive)).expect("archive");
    let mut digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if tamper {
        digest = digest.replace(&digest[..4], "0000");
    }
    std::fs::write(
        release.join(format!("{archive}.sha256")),
        format!("{digest}  {archive}\n"),
    )
    .expect("sha256 file");
    file_server(dir.to_path_buf())
}

/// PATH without the test binary's directory, so the step cannot find a cairn already there.
fn path_without_cairn() -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !Path::new(p).join("cairn").exists())
        .collect::<Vec<_>>()
        .join(":")
}

use sha2::Digest as _;

#[test]
fn the_install_step_downloads_this_actions_own_release_and_verifies_it() {
    let runner = Runner::new();
    let site = runner.file("site");
    let url = release_site(&site, false);
    let ran = runner.run_with_path(
        "Install cairn",
        &[("INPUT_VERSION", ""), ("CAIRN_RELEASES", &url)],
        runner.dir.path(),
        &path_without_cairn(),
    );
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    let version = env!("CARGO_PKG_VERSION");
    let installed = runner
        .file("tool-cache")
        .join(format!("cairn/{version}/bin"));
    assert!(
        ran.stdout.contains(&format!("cairn {version}")),
        "the installed binary runs: {}",
        ran.stdout
    );
    let path = std::fs::read_to_string(runner.file("path")).expect("GITHUB_PATH");
    assert_eq!(path.trim(), installed.display().to_string());
    assert!(installed.join("cairn").is_file());
}

#[test]
fn the_install_step_refuses_an_archive_whose_sha256_does_not_match() {
    let runner = Runner::new();
    let url = release_site(&runner.file("site"), true);
    let ran = runner.run_with_path(
        "Install cairn",
        &[
            ("INPUT_VERSION", env!("CARGO_PKG_VERSION")),
            ("CAIRN_RELEASES", &url),
        ],
        runner.dir.path(),
        &path_without_cairn(),
    );
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    assert!(ran.stdout.contains("::error::refusing"), "{}", ran.stdout);
    assert!(
        !runner
            .file("tool-cache")
            .join(format!("cairn/{}/bin/cairn", env!("CARGO_PKG_VERSION")))
            .exists(),
        "nothing was installed"
    );
    assert!(
        std::fs::read_to_string(runner.file("path"))
            .unwrap_or_default()
            .is_empty()
    );

    let missing = runner.run_with_path(
        "Install cairn",
        &[("INPUT_VERSION", "9.9.9"), ("CAIRN_RELEASES", &url)],
        runner.dir.path(),
        &path_without_cairn(),
    );
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing.stdout.contains("cannot download cairn 9.9.9"),
        "{}",
        missing.stdout
    );
}

/// A GitHub REST API for one pull request's comments: list (paged), create, edit, delete.
struct FakeGitHub {
    url: String,
    comments: std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>,
    _runtime: tokio::runtime::Runtime,
}

fn fake_github() -> FakeGitHub {
    use axum::extract::{Path as UrlPath, Query, State};
    use axum::http::StatusCode;
    use axum::routing::{get, patch};
    type Comments = std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>;
    let comments: Comments = Default::default();
    // Someone else's comment, which must never be touched.
    comments
        .lock()
        .expect("lock")
        .push((1, "Looks good to me".into()));
    async fn list(
        State(c): State<Comments>,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> axum::Json<Value> {
        let per_page: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
        let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
        let all = c.lock().expect("lock").clone();
        let rows: Vec<Value> = all
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|(id, body)| serde_json::json!({"id": id, "body": body}))
            .collect();
        axum::Json(Value::Array(rows))
    }
    async fn create(State(c): State<Comments>, axum::Json(body): axum::Json<Value>) -> StatusCode {
        let mut all = c.lock().expect("lock");
        let id = all.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        all.push((id, body["body"].as_str().unwrap_or_default().to_string()));
        StatusCode::CREATED
    }
    async fn edit(
        State(c): State<Comments>,
        UrlPath((_, _, id)): UrlPath<(String, String, u64)>,
        axum::Json(body): axum::Json<Value>,
    ) -> StatusCode {
        let mut all = c.lock().expect("lock");
        match all.iter_mut().find(|(i, _)| *i == id) {
            Some(comment) => {
                comment.1 = body["body"].as_str().unwrap_or_default().to_string();
                StatusCode::OK
            }
            None => StatusCode::NOT_FOUND,
        }
    }
    async fn remove(
        State(c): State<Comments>,
        UrlPath((_, _, id)): UrlPath<(String, String, u64)>,
    ) -> StatusCode {
        let mut all = c.lock().expect("lock");
        let before = all.len();
        all.retain(|(i, _)| *i != id);
        if all.len() < before {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        }
    }
    let app = axum::Router::new()
        .route(
            "/repos/{owner}/{name}/issues/7/comments",
            get(list).post(create),
        )
        .route(
            "/repos/{owner}/{name}/issues/comments/{id}",
            patch(edit).delete(remove),
        )
        .with_state(comments.clone());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeGitHub {
        url,
        comments,
        _runtime: runtime,
    }
}

/// A config repository with `tasks` copies of the quickstart's production task.
fn many_tasks(tasks: usize) -> tempfile::TempDir {
    let repo = config_repository();
    let template =
        std::fs::read_to_string(repo.path().join("tasks/acme-production.yaml")).expect("task");
    std::fs::remove_dir_all(repo.path().join("tasks")).expect("clear");
    std::fs::create_dir_all(repo.path().join("tasks")).expect("tasks");
    for n in 0..tasks {
        let id = format!("acme-production-{n:04}");
        std::fs::write(
            repo.path().join(format!("tasks/{id}.yaml")),
            template.replace("id: acme-production ", &format!("id: {id} ")),
        )
        .expect("task");
    }
    repo
}

#[test]
fn a_long_plan_becomes_one_sticky_comment_per_part_and_stale_parts_go() {
    let github = fake_github();
    let runner = Runner::new();
    let comment = |repo: &Path| {
        let plan = runner.run(
            "Run cairn",
            &[
                ("INPUT_COMMAND", "plan"),
                ("INPUT_ARGS", ""),
                ("INPUT_WORKING_DIRECTORY", "."),
            ],
            repo,
        );
        assert_eq!(plan.code, 0, "{}", plan.stdout);
        let posted = runner.run(
            "Post or update the plan comment",
            &[
                ("GITHUB_API_URL", github.url.as_str()),
                ("GITHUB_REPOSITORY", "acme/backups"),
                ("GITHUB_TOKEN", "test-token"),
                ("PR_NUMBER", "7"),
                ("COMMENT_DIR", plan.outputs["comment-dir"].as_str()),
            ],
            repo,
        );
        assert_eq!(posted.code, 0, "{}", posted.stdout);
        github.comments.lock().expect("lock").clone()
    };

    let long = many_tasks(800);
    let comments = comment(long.path());
    let ours: Vec<&(u64, String)> = comments
        .iter()
        .filter(|(_, b)| b.starts_with("<!-- cairn-plan -->"))
        .collect();
    assert!(ours.len() >= 2, "an 800-task plan needs several comments");
    for (n, (_, body)) in ours.iter().enumerate() {
        assert!(body.len() <= 65_536, "GitHub's limit");
        assert!(
            body.contains(&format!(
                "<!-- cairn-plan part {}/{} -->",
                n + 1,
                ours.len()
            )),
            "{}",
            &body[..200]
        );
    }
    let first_ids: Vec<u64> = ours.iter().map(|(id, _)| *id).collect();

    // The same plan again: the same comments, edited in place (none added).
    let again = comment(long.path());
    let again_ids: Vec<u64> = again
        .iter()
        .filter(|(_, b)| b.starts_with("<!-- cairn-plan -->"))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(again_ids, first_ids);

    // The plan shrinks to one part: part 1 is edited, the stale parts are deleted, and the
    // reviewer's own comment stays.
    let short = config_repository();
    let comments = comment(short.path());
    let ours: Vec<&(u64, String)> = comments
        .iter()
        .filter(|(_, b)| b.starts_with("<!-- cairn-plan -->"))
        .collect();
    assert_eq!(ours.len(), 1, "{comments:?}");
    assert_eq!(ours[0].0, first_ids[0], "part 1 is edited in place");
    assert!(
        ours[0].1.contains("+ create acme-production"),
        "{}",
        ours[0].1
    );
    assert!(!ours[0].1.contains("part 1/"), "{}", ours[0].1);
    assert!(comments.contains(&(1, "Looks good to me".to_string())));
}

#[test]
fn the_action_the_release_and_example_workflows_pass_githubs_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut workflows = vec![root.join(".github/workflows/release.yml")];
    for entry in std::fs::read_dir(root.join("examples/workflows")).expect("examples") {
        workflows.push(entry.expect("entry").path());
    }
    for (schema, files) in [
        ("vendor.github-workflows", workflows),
        ("vendor.github-actions", vec![root.join("action.yml")]),
    ] {
        let output = Command::new("check-jsonschema")
            .arg("--builtin-schema")
            .arg(schema)
            .args(&files)
            .output()
            .expect("check-jsonschema (run tests/clients/install.sh)");
        assert!(
            output.status.success(),
            "{schema}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
