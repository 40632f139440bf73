//! `cairn` as a user runs it: exit codes, output formats, reading manifests from git history, and
//! errors that say what to do.

use crate::common;

use std::path::Path;

use common::{Test, repo_root};

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n";

fn task(id: &str, environment: &str) -> String {
    format!(
        "apiVersion: cairn/v1\nkind: BackupTask\nid: {id}\nname: {id}\nsource:\n  type: salesforce\n  environment: {environment}\n  auth:\n    jwt:\n      clientIdEnv: SF_CLIENT_ID\n      username: backup@acme.example\n      privateKeyEnv: SF_PRIVATE_KEY\n"
    )
}

#[test]
fn the_quickstart_example_is_valid() {
    Test::new()
        .args([
            "validate",
            &repo_root().join("examples/quickstart").to_string_lossy(),
        ])
        .run()
        .status(0)
        .stdout_has("valid: 3 files checked (2 tasks)");
}

#[test]
fn a_valid_repository_exits_zero_and_an_invalid_one_one() {
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .file("tasks/a.yaml", task("a-task", "production"));
    test.run_with(&["validate"]).status(0);
    let test = test.file("tasks/b.yaml", task("b-task", "staging"));
    test.run_with(&["validate"])
        .status(1)
        .stdout_has("tasks/b.yaml:7:16")
        .stdout_has("invalid: 1 error");
}

#[test]
fn paths_are_shown_as_the_user_named_the_directory() {
    let test = Test::new()
        .file("config/cairn.yaml", REPOSITORY)
        .file("config/tasks/a.yaml", task("a-task", "prod"));
    test.run_with(&["validate", "config", "--format", "github"])
        .status(1)
        .stdout_has("::error file=config/tasks/a.yaml,line=7,col=16,endLine=7,endColumn=19,title=schema/enum::");
}

#[test]
fn json_output_has_positions_paths_and_a_summary() {
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .file("tasks/a.yaml", task("a-task", "prod"));
    let ran = test.run_with(&["validate", "--format", "json"]).status(1);
    let report = ran.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["summary"]["errors"], 1);
    assert_eq!(report["summary"]["files"], 2);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["rule"], "schema/enum");
    assert_eq!(diagnostic["file"], "tasks/a.yaml");
    assert_eq!(diagnostic["path"], "/source/environment");
    assert_eq!(
        (diagnostic["line"].as_u64(), diagnostic["column"].as_u64()),
        (Some(7), Some(16))
    );
    assert_eq!(
        (
            diagnostic["endLine"].as_u64(),
            diagnostic["endColumn"].as_u64()
        ),
        (Some(7), Some(19))
    );
    assert_eq!(diagnostic["label"], "did you mean `production`?");
}

#[test]
fn github_output_escapes_newlines_and_reports_warnings_as_warnings() {
    let test = Test::new().file("cairn.yaml", REPOSITORY).file(
        "tasks/a.yaml",
        task("a-task", "production").replace(
            "  environment: production\n",
            "  environment: production\n  apiUsageLimitPercent: 100\n",
        ),
    );
    let ran = test.run_with(&["validate", "--format", "github"]).status(0);
    let first = ran.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("::warning file=tasks/a.yaml,line=8,col=25,"),
        "{first}"
    );
    assert!(first.contains("%0Ahelp: "), "{first}");
}

#[test]
fn colour_is_used_only_when_asked_or_on_a_terminal() {
    let test = Test::new()
        .file("cairn.yaml", REPOSITORY)
        .file("tasks/a.yaml", task("a-task", "prod"));
    let plain = test.run_with(&["validate"]);
    assert!(
        !plain.stdout.contains('\u{1b}'),
        "escape codes in piped output"
    );
    let coloured = test.run_with(&["validate", "--color", "always"]);
    assert!(
        coloured.stdout.contains("\u{1b}["),
        "no colour with --color always"
    );
}

fn commit_all(repo: &git2::Repository, message: &str) -> git2::Oid {
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let signature = git2::Signature::now("test", "test@example.com").expect("signature");
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .expect("commit")
}

#[test]
fn rev_reads_the_manifests_of_a_commit_not_the_work_tree() {
    let test = Test::new()
        .file("config/cairn.yaml", REPOSITORY)
        .file("config/tasks/a.yaml", task("a-task", "production"));
    let repo = git2::Repository::init(test.path()).expect("git init");
    let good = commit_all(&repo, "a valid task");
    let test = test.file("config/tasks/a.yaml", task("a-task", "prod"));
    let bad = commit_all(&repo, "a broken task");
    // The work tree now gets a third version, valid again, and an uncommitted broken file.
    let test = test
        .file("config/tasks/a.yaml", task("a-task", "sandbox"))
        .file("config/tasks/new.yaml", "id: [");

    test.run_with(&["validate", "config"])
        .status(1)
        .stdout_has("config/tasks/new.yaml");
    test.run_with(&["validate", "config", "--rev", "HEAD"])
        .status(1)
        .stdout_has("config/tasks/a.yaml:7:16")
        .stdout_has("2 files checked");
    test.run_with(&["validate", "config", "--rev", &good.to_string()])
        .status(0)
        .stdout_has("valid: 2 files checked (1 task)");
    test.run_with(&["validate", "config", "--rev", "HEAD~1"])
        .status(0);
    assert_ne!(good, bad);

    // From inside the config directory, with the repository found by walking up.
    let inside = test.path().join("config");
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["validate", "--rev", "HEAD~1"])
        .current_dir(&inside)
        .output()
        .expect("run cairn");
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
}

#[test]
fn rev_errors_say_what_to_do() {
    let test = Test::new().file("cairn.yaml", REPOSITORY);
    test.run_with(&["validate", "--rev", "HEAD"])
        .status(1)
        .stderr_has("is not inside a git repository")
        .stderr_has("help: --rev reads manifests from git history");
    let repo = git2::Repository::init(test.path()).expect("git init");
    commit_all(&repo, "first");
    test.run_with(&["validate", "--rev", "no-such-branch"])
        .status(1)
        .stderr_has("revision `no-such-branch` does not exist")
        .stderr_has("help: give a branch, tag or commit that exists");
    let test = test.file("later/cairn.yaml", REPOSITORY);
    test.run_with(&["validate", "later", "--rev", "HEAD"])
        .status(1)
        .stderr_has("does not exist at revision `HEAD`");
}

#[test]
fn a_missing_directory_or_a_file_is_a_clear_error() {
    Test::new()
        .run_with(&["validate", "nowhere"])
        .status(1)
        .stderr_has("cannot read nowhere")
        .stderr_has("help: ");
    Test::new()
        .file("cairn.yaml", REPOSITORY)
        .run_with(&["validate", "cairn.yaml"])
        .status(1)
        .stderr_has("cairn.yaml is not a directory")
        .stderr_has("help: pass the directory that holds cairn.yaml");
}

#[test]
fn usage_errors_exit_one_and_help_exits_zero() {
    Test::new()
        .run_with(&["validate", "--format", "xml"])
        .status(1)
        .stderr_has("xml");
    Test::new().run_with(&["frobnicate"]).status(1);
    Test::new().run_with(&["--help"]).status(0);
}

/// `restore --apply` asks before it writes into an org; with no terminal to ask on (a script,
/// CI) it refuses and points at `--yes`, before reading anything.
#[test]
fn restore_apply_asks_and_without_a_terminal_wants_yes() {
    Test::new()
        .run_with(&[
            "restore",
            "--task",
            "acme",
            "--id",
            "0015g0000000001AAA",
            "--apply",
        ])
        .status(1)
        .stderr_has("no terminal to ask on")
        .stderr_has("add --yes");
}

/// Every subcommand that reads a config repository takes it the same way, `--dir DIR` (or
/// `-C DIR`, before or after the subcommand); the positional directory older scripts give is
/// still read where it was, and giving two different ones is an error.
#[test]
fn the_config_directory_is_given_one_way_everywhere() {
    let test = Test::new();
    let missing = test.path().join("no-such-config");
    let missing = missing.to_string_lossy();
    let commands: &[&[&str]] = &[
        &["validate"],
        &["plan"],
        &["apply"],
        &["status"],
        &["diff"],
        &["search", "acme"],
        &["restore", "--task", "acme", "--id", "001"],
        &["report", "--out", "report.html"],
        &["export", "--format", "csv", "--out", "export"],
        &["snapshots"],
        &["check"],
        &["repair"],
        &["forget"],
        &["prune"],
        &["unlock"],
        &["key", "list"],
        &["key", "add", "--label", "l"],
        &["key", "remove", "k1"],
        &["key", "raw"],
        &["auth", "login", "--task", "acme"],
    ];
    for command in commands {
        for place in ["after", "before"] {
            let mut args: Vec<&str> = Vec::new();
            if place == "before" {
                args.extend(["-C", &missing]);
            }
            args.extend(command.iter());
            if place == "after" {
                args.extend(["--dir", &missing]);
            }
            let ran = test.run_with(&args).status(1);
            assert!(
                ran.stderr.contains("no-such-config"),
                "cairn {args:?} did not read the directory it was given:\n{}",
                ran.stderr
            );
        }
    }
    test.run_with(&["plan", "--dir", "a", "b"])
        .status(1)
        .stderr_has("two config directories given: --dir a and b");
    test.run_with(&["plan", &missing])
        .status(1)
        .stderr_has("no-such-config");
}

#[test]
fn help_lists_only_commands_that_work() {
    assert_eq!(
        common::help_commands(),
        [
            "demo",
            "init",
            "add",
            "auth",
            "validate",
            "plan",
            "apply",
            "status",
            "snapshots",
            "diff",
            "search",
            "restore",
            "export",
            "report",
            "check",
            "repair",
            "forget",
            "prune",
            "unlock",
            "key",
            "plan-comment",
            "schema",
            "sim",
            "completions",
            "man",
            "version",
            "help"
        ]
    );
}

#[test]
fn completions_man_pages_and_version_come_from_the_command_line_itself() {
    let bash = Test::new().run_with(&["completions", "bash"]).status(0);
    // The script is one bash accepts, and it completes the subcommands.
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &bash.stdout])
        .status()
        .expect("bash");
    assert!(checked.success(), "bash -n rejected the completion script");
    assert!(bash.stdout.contains("restore") && bash.stdout.contains("--read-data"));
    let zsh = Test::new().run_with(&["completions", "zsh"]).status(0);
    assert!(
        zsh.stdout.starts_with("#compdef cairn"),
        "{}",
        &zsh.stdout[..40]
    );
    for shell in ["fish", "powershell"] {
        let ran = Test::new().run_with(&["completions", shell]).status(0);
        assert!(ran.stdout.contains("apply"), "{shell}");
    }
    Test::new()
        .run_with(&["completions", "tcsh"])
        .status(1)
        .stderr_has("possible values: bash, elvish, fish, powershell, zsh");

    let man = Test::new().run_with(&["man"]).status(0);
    assert!(man.stdout.contains(".TH cairn 1"), "{}", man.stdout);
    let pages = Test::new();
    pages.run_with(&["man", "--out", "pages"]).status(0);
    for page in [
        "cairn.1",
        "cairn-apply.1",
        "cairn-restore.1",
        "cairn-key-add.1",
    ] {
        let text = std::fs::read_to_string(pages.path().join("pages").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }

    let version = Test::new()
        .run_with(&["version", "--format", "json"])
        .status(0);
    let version: serde_json::Value = serde_json::from_str(&version.stdout).expect("JSON");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let commit = version["commit"].as_str().expect("commit");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    let flag = Test::new().run_with(&["--version"]).status(0);
    assert!(flag.stdout.contains(commit), "{}", flag.stdout);
}

#[test]
fn schema_prints_the_embedded_schemas_byte_for_byte() {
    for (kind, file) in [
        ("task", "task.schema.json"),
        ("repository", "repository.schema.json"),
    ] {
        let ran = Test::new().run_with(&["schema", kind]).status(0);
        let on_disk =
            std::fs::read_to_string(repo_root().join("schemas").join(file)).expect("schema file");
        assert_eq!(ran.stdout, on_disk, "{file}");
    }
}

#[test]
fn every_example_manifest_names_its_schema_for_editors() {
    let example = repo_root().join("examples/quickstart");
    let mut files = vec![example.join("cairn.yaml")];
    for entry in std::fs::read_dir(example.join("tasks")).expect("tasks dir") {
        files.push(entry.expect("entry").path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let modeline = text.lines().next().unwrap_or_default();
        let schema = modeline
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{} lacks the modeline", file.display()));
        let target = file.parent().unwrap_or(Path::new(".")).join(schema);
        assert!(
            target.is_file(),
            "{} points at {}",
            file.display(),
            target.display()
        );
    }
}

#[test]
fn sim_serve_prints_working_credentials_and_stops_on_interrupt() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "sim",
            "serve",
            "--port",
            "0",
            "--records",
            "300",
            "--seed",
            "7",
            "--sandbox",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the simulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let field = |name: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {name} in:\n{banner}"))
            .to_string()
    };
    assert!(banner.contains("sandbox org"), "{banner}");
    assert!(
        banner.contains("JWT audience   https://test.salesforce.com"),
        "{banner}"
    );
    let url = field("instance URL");
    let token = field("access token");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let organization: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{url}/services/data/v62.0/query?q=SELECT+IsSandbox+FROM+Organization"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(organization["records"][0]["IsSandbox"], true);
    // Ctrl-C stops it cleanly.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sim_serve_explains_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port().to_string();
    Test::new()
        .run_with(&["sim", "serve", "--port", &port, "--records", "10"])
        .status(1)
        .stderr_has("the simulator could not start")
        .stderr_has("help: if the port");
}

/// `cairn init` in an empty directory scaffolds a config repository (valid as written), makes
/// the store and key; `cairn add salesforce` writes a valid task, and refuses to overwrite one.
#[test]
fn init_scaffolds_a_repository_and_add_writes_a_valid_task() {
    let test = Test::new().env("CAIRN_PASSPHRASE", "correct horse battery staple");
    test.run_with(&["init"])
        .status(0)
        .stdout_has("Wrote ./cairn.yaml")
        .stdout_has("Wrote ./.github/workflows/cairn-plan.yml")
        .stdout_has("Created the encrypted store");
    test.run_with(&[
        "add",
        "salesforce",
        "--name",
        "Acme Production",
        "--environment",
        "production",
    ])
    .status(0)
    .stdout_has("Wrote ./tasks/acme-production.yaml")
    .stdout_has("cairn auth login --task acme-production");
    test.run_with(&[
        "add",
        "salesforce",
        "--name",
        "Acme UAT",
        "--environment",
        "sandbox",
        "--id",
        "acme-uat",
    ])
    .status(0);
    test.run_with(&["validate"])
        .status(0)
        .stdout_has("valid: 3 files checked (2 tasks)");
    let task = std::fs::read_to_string(test.path().join("tasks/acme-uat.yaml")).expect("task");
    assert!(task.contains("environment: sandbox") && task.contains("SF_ACME_UAT_REFRESH_TOKEN"));
    test.run_with(&[
        "add",
        "salesforce",
        "--name",
        "Acme UAT",
        "--environment",
        "sandbox",
        "--id",
        "acme-uat",
    ])
    .status(1)
    .stderr_has("exists already");
    // Initialising again keeps what is there.
    test.run_with(&["init"])
        .status(1)
        .stderr_has("already exists");
}
