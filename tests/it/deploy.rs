//! The deployment `cairn init` scaffolds, run the way GitHub runs it: an admin sets the
//! repository up once and pushes; every scheduled run is a fresh shallow clone (as
//! actions/checkout makes) with only the environment the generated workflow maps from the
//! repository's secrets; and a later clone reads every backup from the remote alone.

use crate::common;

use common::git;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use common::org::admin;
use reqwest::Method;
use serde_json::{Value, json};

/// 2025-06-15T12:00:00Z, the simulated org's clock at start.
const T0: i64 = 1_749_988_800_000;
const DAY: i64 = 86_400_000;

fn at(ms: i64) -> String {
    cairn::time::format_datetime_z(ms)
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(self, what: &str) -> Ran {
        assert_eq!(
            self.code, 0,
            "{what}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs the real binary with exactly `env` (plus PATH and HOME, which every runner has).
fn cairn(dir: &Path, args: &[&str], env: &BTreeMap<String, String>) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .envs(env)
        .output()
        .expect("cairn");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The environment GitHub gives the step that runs `cairn apply` in a workflow: the step's,
/// its job's and the workflow's `env`, with `${{ secrets.NAME }}` taken from the repository's
/// secrets (a secret that is not set reads as empty, as on GitHub), plus the runner's own.
fn workflow_env(workflow: &Path, secrets: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(workflow).expect("workflow");
    let workflow: Value = serde_yaml::from_str(&text).expect("workflow YAML");
    let mut env = BTreeMap::new();
    let mut take = |node: &Value| {
        for (name, value) in node["env"].as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or_default();
            let resolved = match value
                .trim()
                .strip_prefix("${{ secrets.")
                .and_then(|v| v.strip_suffix(" }}"))
            {
                Some(secret) => secrets.get(secret).cloned().unwrap_or_default(),
                None => value.to_string(),
            };
            env.insert(name.clone(), resolved);
        }
    };
    take(&workflow);
    let mut found = false;
    for job in workflow["jobs"].as_object().expect("jobs").values() {
        for step in job["steps"].as_array().expect("steps") {
            if step["with"]["command"] == "apply" {
                take(job);
                take(step);
                found = true;
            }
        }
    }
    assert!(
        found,
        "the workflow has no step running cairn apply:\n{text}"
    );
    env.insert("CI".into(), "true".into());
    env.insert("GITHUB_ACTIONS".into(), "true".into());
    env
}

/// A GitHub repository: a bare remote, the repository secrets, the simulated org.
struct Repo {
    root: tempfile::TempDir,
    secrets: BTreeMap<String, String>,
    runs: usize,
}

impl Repo {
    fn new(sim: &Simulator) -> Repo {
        let root = tempfile::tempdir().expect("dir");
        git(
            root.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "SF_ACME_PRODUCTION_CLIENT_ID".to_string(),
            sim.credentials.client_id.clone(),
        );
        secrets.insert(
            "SF_ACME_PRODUCTION_REFRESH_TOKEN".to_string(),
            sim.credentials.refresh_token.clone(),
        );
        Repo {
            root,
            secrets,
            runs: 0,
        }
    }

    fn remote(&self) -> PathBuf {
        self.root.path().join("remote.git")
    }

    /// A fresh clone as actions/checkout makes it: depth 1, the default branch only.
    fn checkout(&self, name: &str) -> PathBuf {
        let url = format!("file://{}", self.remote().display());
        git(
            self.root.path(),
            &["clone", "--quiet", "--depth", "1", &url, name],
        );
        self.root.path().join(name)
    }

    /// The admin's one-time set-up, as the README says: init, add the task, point it at the
    /// org, keep the raw key as a secret, commit and push. The admin's clone is then deleted:
    /// from here on only the remote exists.
    fn set_up(&mut self, sim: &Simulator, store: &[&str], secrets: &[(&str, &str)]) -> Ran {
        for (name, value) in secrets {
            self.secrets.insert(name.to_string(), value.to_string());
        }
        let url = format!("file://{}", self.remote().display());
        git(self.root.path(), &["clone", "--quiet", &url, "admin"]);
        let admin = self.root.path().join("admin");
        let mut env: BTreeMap<String, String> = self.secrets.clone();
        env.insert("CAIRN_PASSPHRASE".into(), "correct horse battery".into());
        let mut init_args = vec!["init"];
        init_args.extend_from_slice(store);
        let init = cairn(&admin, &init_args, &env).ok("cairn init");
        cairn(
            &admin,
            &[
                "add",
                "salesforce",
                "--name",
                "Acme Production",
                "--environment",
                "production",
            ],
            &env,
        )
        .ok("cairn add salesforce");
        // A My Domain login URL, as an org that requires one would have.
        let task = admin.join("tasks/acme-production.yaml");
        let text = std::fs::read_to_string(&task).expect("task");
        let text = text.replace(
            "  # loginUrl: https://acme.my.salesforce.com",
            &format!("  loginUrl: {}  #", sim.url()),
        );
        assert!(text.contains(&sim.url()), "{text}");
        std::fs::write(&task, text).expect("task");
        let raw = cairn(&admin, &["key", "raw"], &env).ok("cairn key raw");
        self.secrets
            .insert("CAIRN_KEY".into(), raw.stdout.trim().to_string());
        git(&admin, &["add", "-A"]);
        git(
            &admin,
            &["commit", "--quiet", "-m", "Back up Acme Production"],
        );
        git(&admin, &["push", "--quiet", "origin", "main"]);
        std::fs::remove_dir_all(&admin).expect("remove the admin's clone");
        init
    }

    /// One scheduled run of the generated apply workflow, at `time`.
    fn scheduled_run(&mut self, time: i64) -> Ran {
        self.runs += 1;
        let checkout = self.checkout(&format!("run-{}", self.runs));
        let env = workflow_env(
            &checkout.join(".github/workflows/cairn-apply.yml"),
            &self.secrets,
        );
        let ran = cairn(
            &checkout,
            &["apply", "--fail-on-alert", "--at", &at(time)],
            &env,
        );
        std::fs::remove_dir_all(&checkout).expect("the runner is thrown away");
        ran
    }

    /// A clone with the key, as someone reading the backups later would have.
    fn reader(&self, name: &str) -> (PathBuf, BTreeMap<String, String>) {
        let dir = self.checkout(name);
        let mut env = self.secrets.clone();
        env.retain(|k, _| !k.starts_with("SF_"));
        (dir, env)
    }
}

fn simulator(runtime: &tokio::runtime::Runtime) -> Simulator {
    runtime
        .block_on(Simulator::start(
            SimOptions {
                org: OrgOptions {
                    seed: 18,
                    population: Population::spread(300),
                    clock: Clock::fixed(T0),
                    ..OrgOptions::default()
                },
                ..SimOptions::default()
            },
            0,
        ))
        .expect("simulator")
}

/// Three scheduled runs with the org changing between them, then everything a reader does,
/// from a fresh clone of the remote alone.
fn three_runs_then_read_from_the_remote(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    repo: &mut Repo,
) {
    // The org's clock and the runner's agree: each run happens at the org's "now".
    let first = repo.scheduled_run(T0);
    let first = first.ok("first scheduled run");
    assert!(
        first.stdout.contains("success  acme-production"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("(pushed)"), "{}", first.stdout);

    runtime.block_on(admin(sim, Method::POST, "clock", json!({"advanceMs": DAY})));
    let created = runtime.block_on(admin(
        sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Quokka Logistics"}),
    ));
    let created = created["id"].as_str().expect("new id").to_string();
    let second = repo.scheduled_run(T0 + DAY).ok("second scheduled run");
    assert!(second.stdout.contains("incremental"), "{}", second.stdout);

    runtime.block_on(admin(sim, Method::POST, "clock", json!({"advanceMs": DAY})));
    runtime.block_on(admin(
        sim,
        Method::PATCH,
        &format!("records/Account/{created}"),
        json!({"Name": "Quokka Freight"}),
    ));
    let third = repo.scheduled_run(T0 + 2 * DAY).ok("third scheduled run");
    assert!(third.stdout.contains("incremental"), "{}", third.stdout);

    let (dir, env) = repo.reader("reader");
    let listed = cairn(&dir, &["snapshots", "--format", "json"], &env).ok("snapshots");
    let rows: Value = serde_json::from_str(&listed.stdout).expect("snapshots JSON");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{}", listed.stdout);
    for row in rows {
        assert_eq!(row["data"], "present", "{}", listed.stdout);
        assert_eq!(row["complete"], true, "{}", listed.stdout);
    }
    let newest_records = rows[0]["records"].as_u64().expect("records");

    let out = dir.join("export");
    cairn(
        &dir,
        &[
            "export",
            "--format",
            "jsonl",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        &env,
    )
    .ok("export");
    let mut exported = 0;
    let mut accounts = String::new();
    for file in std::fs::read_dir(&out).expect("export dir") {
        let path = file.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("jsonl");
        exported += text.lines().count() as u64;
        if path.ends_with("Account.jsonl") {
            accounts = text;
        }
    }
    assert_eq!(exported, newest_records);
    assert!(
        accounts.contains("Quokka Freight"),
        "the last edit is in the newest snapshot:\n{}\n{}",
        accounts
            .lines()
            .filter(|l| l.contains("Quokka"))
            .collect::<Vec<_>>()
            .join("\n"),
        third.stdout
    );

    let diff = cairn(
        &dir,
        &["diff", "latest~2", "latest", "--object", "Account"],
        &env,
    )
    .ok("diff");
    assert!(
        diff.stdout.contains(&format!("+ {created}")),
        "{}",
        diff.stdout
    );
    let found = cairn(&dir, &["search", "Quokka"], &env).ok("search");
    assert!(found.stdout.contains(&created), "{}", found.stdout);
    let plan = cairn(
        &dir,
        &[
            "restore",
            "--task",
            "acme-production",
            "--object",
            "Account",
            "--id",
            &created,
        ],
        &{
            let mut env = env.clone();
            env.extend(repo.secrets.clone());
            env
        },
    )
    .ok("restore plan");
    assert!(plan.stdout.contains("Plan:"), "{}", plan.stdout);
    let checked = cairn(&dir, &["check", "--read-data"], &env).ok("check --read-data");
    assert!(checked.stdout.contains("no errors"), "{}", checked.stdout);
    // Every blob was read: the snapshots' and the search index's, its list among them.
    let counts = checked
        .stdout
        .split_once(" blobs (")
        .and_then(|(_, rest)| rest.split_once(" blobs decrypted"))
        .and_then(|(counts, _)| counts.split_once(" of "))
        .unwrap_or_else(|| panic!("no count of blobs read: {}", checked.stdout));
    assert_eq!(counts.0, counts.1, "{}", checked.stdout);
}

#[test]
fn the_git_store_lives_on_the_remote_and_every_fresh_clone_finds_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    let init = repo.set_up(&sim, &["--store", "git"], &[]);
    assert!(
        init.stdout.contains("refs/cairn/store pushed to origin"),
        "{}",
        init.stdout
    );
    three_runs_then_read_from_the_remote(&runtime, &sim, &mut repo);
    let refs = git(&repo.remote(), &["for-each-ref", "--format=%(refname)"]);
    assert!(refs.contains("refs/cairn/store"), "{refs}");
    assert!(refs.contains("refs/heads/cairn-state"), "{refs}");
}

#[test]
fn an_s3_store_serves_every_fresh_clone() {
    let s3 = common::s3::s3_server();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    repo.set_up(
        &sim,
        &[
            "--store",
            "s3://backups/acme",
            "--s3-endpoint",
            &s3.endpoint,
            "--s3-region",
            "us-east-1",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", common::s3::S3_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", common::s3::S3_SECRET),
        ],
    );
    three_runs_then_read_from_the_remote(&runtime, &sim, &mut repo);
    let refs = git(&repo.remote(), &["for-each-ref", "--format=%(refname)"]);
    assert!(!refs.contains("refs/cairn/store"), "{refs}");
}

#[test]
fn a_local_store_inside_the_checkout_is_refused_on_the_runner() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    let init = repo.set_up(&sim, &["--store", "local:.cairn/store"], &[]);
    assert!(
        init.stdout.contains("inside the checkout"),
        "init warns: {}",
        init.stdout
    );
    let (dir, env) = repo.reader("validate");
    let validated = cairn(&dir, &["validate"], &env);
    assert!(
        validated.stdout.contains("store/inside-checkout"),
        "{}",
        validated.stdout
    );
    let run = repo.scheduled_run(T0);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("inside the checkout, which GitHub Actions throws away"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("success"), "{}", run.stdout);
    let refs = git(&repo.remote(), &["for-each-ref", "--format=%(refname)"]);
    assert!(
        !refs.contains("cairn-state"),
        "nothing was committed: {refs}"
    );
}

#[test]
fn a_store_that_lost_a_snapshots_data_fails_check_and_is_marked_by_snapshots() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    // A self-hosted runner's store: a directory outside every checkout, which outlives them.
    let store = repo.root.path().join("store");
    repo.set_up(
        &sim,
        &["--store", &format!("local:{}", store.display())],
        &[],
    );
    repo.scheduled_run(T0).ok("first run");
    runtime.block_on(admin(
        &sim,
        Method::POST,
        "clock",
        json!({"advanceMs": DAY}),
    ));
    repo.scheduled_run(T0 + DAY).ok("second run");

    let (dir, env) = repo.reader("reader");
    let listed = cairn(&dir, &["snapshots", "--format", "json"], &env).ok("snapshots");
    let rows: Value = serde_json::from_str(&listed.stdout).expect("JSON");
    let newest = rows[0]["id"].as_str().expect("id").to_string();
    let oldest = rows[1]["id"].as_str().expect("id").to_string();
    let key = cairn::store::keys::raw_key(&repo.secrets["CAIRN_KEY"]).expect("raw key");
    let opened = cairn::store::Store::open(
        Box::new(cairn::store::backend::LocalBackend::new(&store)),
        key,
    )
    .expect("store");
    // The oldest snapshot's Account segments go; the newest loses its manifest.
    let manifest = cairn::snapshot::writer::load_manifest(&opened, &oldest).expect("manifest");
    for segment in manifest.objects["Account"].base.iter() {
        std::fs::remove_file(store.join(cairn::store::blob_path(&segment.blob)))
            .expect("delete a blob");
    }
    std::fs::remove_file(store.join(cairn::store::snapshot_path(&newest))).expect("delete");

    let listed = cairn(&dir, &["snapshots"], &env).ok("snapshots");
    let line = |id: &str| {
        listed
            .stdout
            .lines()
            .find(|l| l.contains(&id[..12]))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(&oldest).ends_with("DAMAGED"), "{}", listed.stdout);
    assert!(line(&newest).ends_with("MISSING"), "{}", listed.stdout);
    assert!(
        listed
            .stdout
            .contains("the store lacks data of 2 of these snapshots"),
        "{}",
        listed.stdout
    );

    let checked = cairn(&dir, &["check"], &env);
    assert_eq!(checked.code, 1, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked
            .stdout
            .contains(&format!("affects snapshot {oldest} (Account)")),
        "{}",
        checked.stdout
    );
    assert!(
        checked
            .stdout
            .contains(&format!("snapshot {newest} of task acme-production"))
            && checked.stdout.contains("missing from the store"),
        "{}",
        checked.stdout
    );
    assert!(
        checked.stdout.contains("ERRORS FOUND"),
        "{}",
        checked.stdout
    );
}

/// GitHub's workflow schema, as check-jsonschema ships it (installed by tests/clients/install.sh).
fn check_workflow_schema(files: &[PathBuf]) {
    let output = Command::new("check-jsonschema")
        .arg("--builtin-schema")
        .arg("vendor.github-workflows")
        .args(files)
        .output()
        .expect("check-jsonschema (run tests/clients/install.sh)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn scaffolded_workflows_pass_githubs_schema_and_map_every_secret_a_task_names() {
    let dir = tempfile::tempdir().expect("dir");
    git(dir.path(), &["init", "--quiet", "-b", "main"]);
    let mut env = BTreeMap::new();
    env.insert(
        "CAIRN_PASSPHRASE".to_string(),
        "correct horse battery".to_string(),
    );
    cairn(dir.path(), &["init", "--store", "s3://backups/acme"], &env);
    // init needs a reachable bucket for the store itself; the files are written first.
    for (name, environment) in [("Acme Production", "production"), ("Acme UAT", "sandbox")] {
        cairn(
            dir.path(),
            &[
                "add",
                "salesforce",
                "--name",
                name,
                "--environment",
                environment,
            ],
            &env,
        )
        .ok("cairn add salesforce");
    }
    let workflows: Vec<PathBuf> = std::fs::read_dir(dir.path().join(".github/workflows"))
        .expect("workflows")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(workflows.len(), 2, "{workflows:?}");
    check_workflow_schema(&workflows);

    // Every variable the manifests name is mapped from a secret in the apply step.
    let apply = dir.path().join(".github/workflows/cairn-apply.yml");
    let mapped = workflow_env(&apply, &BTreeMap::new());
    let mut named = Vec::new();
    for file in [
        "cairn.yaml",
        "tasks/acme-production.yaml",
        "tasks/acme-uat.yaml",
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("manifest");
        let value: Value = serde_yaml::from_str(&text).expect("YAML");
        named.extend(cairn::manifest::workflows::named_variables(&value));
    }
    // The key is given as the raw key (keyEnv), which makes the passphrase unneeded.
    named.retain(|(pointer, _)| pointer != "/encryption/passphraseEnv");
    named.extend([
        (String::new(), "AWS_ACCESS_KEY_ID".to_string()),
        (String::new(), "AWS_SECRET_ACCESS_KEY".to_string()),
    ]);
    assert_eq!(named.len(), 7, "{named:?}");
    for (pointer, variable) in &named {
        assert!(
            mapped.contains_key(variable.as_str()),
            "{variable} ({pointer}) is not mapped in:\n{}",
            std::fs::read_to_string(&apply).unwrap_or_default()
        );
    }
    let validated = cairn(dir.path(), &["validate"], &env).ok("validate");
    assert!(
        !validated.stdout.contains("warning"),
        "{}",
        validated.stdout
    );

    // A mapping removed by hand is reported where the task names the variable.
    let text = std::fs::read_to_string(&apply).expect("workflow");
    let without: String = text
        .lines()
        .filter(|l| !l.contains("SF_ACME_UAT_REFRESH_TOKEN"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&apply, without).expect("write");
    let validated = cairn(dir.path(), &["validate"], &env).ok("warnings do not fail validate");
    assert!(
        validated
            .stdout
            .contains("warning[workflow/unmapped-secret]")
            && validated.stdout.contains("tasks/acme-uat.yaml:15:24"),
        "{}",
        validated.stdout
    );
}

#[test]
fn a_run_whose_store_cannot_be_pushed_reports_no_success_and_commits_no_state() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    repo.set_up(&sim, &["--store", "git"], &[]);
    // From now on the remote refuses the store's ref, as a branch protection rule might.
    let hook = repo.remote().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  [ \"$ref\" = refs/cairn/store ] && { echo 'refs/cairn/store is protected' >&2; exit 1; }\ndone\nexit 0\n",
    )
    .expect("hook");
    let mut permissions = std::fs::metadata(&hook).expect("hook").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).expect("chmod");

    let run = repo.scheduled_run(T0);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("success"), "{}", run.stdout);
    assert!(
        run.stderr.contains("could not be pushed") && run.stderr.contains("protected"),
        "{}",
        run.stderr
    );
    let refs = git(&repo.remote(), &["for-each-ref", "--format=%(refname)"]);
    assert!(
        !refs.contains("cairn-state"),
        "no state names data the remote lacks: {refs}"
    );
}

#[test]
fn a_git_store_that_would_not_be_pushed_is_refused_on_the_runner() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime);
    let mut repo = Repo::new(&sim);
    repo.set_up(&sim, &["--store", "git"], &[]);
    let edit = repo.checkout("edit");
    let config = edit.join("cairn.yaml");
    let text = std::fs::read_to_string(&config).expect("cairn.yaml");
    assert!(text.contains("push: true"), "{text}");
    std::fs::write(&config, text.replace("push: true", "push: false")).expect("write");
    git(&edit, &["commit", "--quiet", "-am", "Do not push"]);
    git(&edit, &["push", "--quiet", "origin", "main"]);

    let run = repo.scheduled_run(T0);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the git store would stay on this GitHub Actions runner"),
        "{}",
        run.stderr
    );
    let refs = git(&repo.remote(), &["for-each-ref", "--format=%(refname)"]);
    assert!(!refs.contains("cairn-state"), "{refs}");
}
