//! A deployment as CI runs it, for tests that play one: a bare remote, clones of it with a
//! config repository, the store (a shared directory or the git store), and the simulator as
//! the org; with the checks every such test makes (the newest snapshot holds the org's records,
//! `check --read-data` is clean).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::git;
use super::org::{admin, records, task_connector};

use cairn::backup::backup;
use cairn::manifest::{ConfigTree, load};
use cairn::project::connect::backup_options;
use cairn::snapshot::writer::load_manifest;
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::crypto::MasterKey;
use cairn::store::keys::{encode_raw_key, raw_key};
use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
pub enum StoreKind {
    /// A directory beside the clones, shared by them.
    Shared,
    /// The git store on the remote.
    Git,
}

/// A bare remote, clones of it, and the environment cairn runs with.
pub struct Deployment {
    /// Where it all is; `_owner` removes it when the deployment is dropped.
    pub root: PathBuf,
    _owner: Option<tempfile::TempDir>,
    pub env: Vec<(String, String)>,
    pub key: String,
    pub kind: StoreKind,
}

impl Deployment {
    pub fn new(sim: &Simulator, kind: StoreKind) -> Deployment {
        let root = tempfile::tempdir().expect("dir");
        git(
            root.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        git(root.path(), &["clone", "--quiet", "remote.git", "a"]);
        let key = encode_raw_key(&MasterKey::generate().expect("key"));
        let deployment = Deployment {
            env: vec![
                ("CAIRN_KEY".into(), key.clone()),
                ("SF_CLIENT_ID".into(), sim.credentials.client_id.clone()),
                (
                    "SF_REFRESH_TOKEN_ACME".into(),
                    sim.credentials.refresh_token.clone(),
                ),
            ],
            root: root.path().to_path_buf(),
            _owner: Some(root),
            key,
            kind,
        };
        let store = match kind {
            StoreKind::Shared => "store:\n  local:\n    path: ../store\n",
            StoreKind::Git => "store:\n  git: {}\n",
        };
        let a = deployment.clone_dir("a");
        std::fs::write(
            a.join("cairn.yaml"),
            format!("apiVersion: cairn/v1\nkind: Repository\n{store}"),
        )
        .expect("cairn.yaml");
        std::fs::create_dir_all(a.join("tasks")).expect("tasks");
        std::fs::write(
            a.join("tasks/acme.yaml"),
            format!(
                "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nschedule: \"0 3 * * *\"\nsource:\n  type: salesforce\n  environment: production\n  loginUrl: {}\n  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      refreshTokenEnv: SF_REFRESH_TOKEN_ACME\nretention:\n  keepLast: 3\n",
                sim.url()
            ),
        )
        .expect("task");
        let init = deployment
            .command("a", &["init"])
            .env("CAIRN_PASSPHRASE", "correct horse")
            .output()
            .expect("init");
        assert!(init.status.success(), "{}", text(&init.stderr));
        git(&a, &["add", "-A"]);
        git(&a, &["commit", "--quiet", "-m", "Back up acme"]);
        git(&a, &["push", "--quiet", "origin", "main"]);
        git(&deployment.root, &["clone", "--quiet", "remote.git", "b"]);
        deployment
    }

    pub fn clone_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn command(&self, clone: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
        command
            .current_dir(self.clone_dir(clone))
            .args(args)
            .env_remove("CAIRN_PASSPHRASE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    pub fn cairn(&self, clone: &str, args: &[&str]) -> Output {
        self.command(clone, args).output().expect("cairn")
    }

    pub fn spawn(&self, clone: &str, args: &[&str]) -> Child {
        self.command(clone, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cairn")
    }

    /// The store as every runner finds it: the shared directory, or the remote's git store.
    pub fn store(&self) -> Store {
        self.try_store().expect("store")
    }

    pub fn try_store(&self) -> Result<Store, String> {
        let master = raw_key(&self.key).map_err(|e| e.to_string())?;
        let backend: Box<dyn cairn::store::backend::Backend> = match self.kind {
            StoreKind::Shared => Box::new(LocalBackend::new(self.root.join("store"))),
            StoreKind::Git => Box::new(
                cairn::store::git::GitBackend::open(
                    &self.root.join("remote.git"),
                    "refs/cairn/store",
                    None,
                )
                .map_err(|e| e.to_string())?,
            ),
        };
        Store::open(backend, master).map_err(|e| e.to_string())
    }

    /// The same deployment copied to `root` (its clones' remote pointed at the copy's).
    pub fn at(&self, root: PathBuf) -> Deployment {
        for clone in ["a", "b"] {
            git(
                &root.join(clone),
                &[
                    "remote",
                    "set-url",
                    "origin",
                    root.join("remote.git").to_str().expect("path"),
                ],
            );
        }
        Deployment {
            root,
            _owner: None,
            env: self.env.clone(),
            key: self.key.clone(),
            kind: self.kind,
        }
    }

    /// A file of the remote's state branch.
    pub fn remote_state(&self, path: &str) -> Option<String> {
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(self.root.join("remote.git"))
            .args(["show", &format!("cairn-state:{path}")])
            .output()
            .expect("git");
        output
            .status
            .success()
            .then(|| text(&output.stdout).to_string())
    }

    /// The store's locks, as the holder and where.
    pub fn lock_holders(&self) -> Vec<String> {
        self.store()
            .locks()
            .expect("locks")
            .into_iter()
            .map(|(path, info)| format!("{path} {}", info.holder))
            .collect()
    }
}

pub fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("<not UTF-8>")
}

pub fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

pub fn simulator(runtime: &tokio::runtime::Runtime, seed: u64) -> Simulator {
    runtime
        .block_on(Simulator::start(
            SimOptions {
                org: OrgOptions {
                    seed,
                    population: Population::spread(1200),
                    // Many deployments of one org, each downloading its files: a large org's
                    // daily allocation.
                    api_max: 1_000_000,
                    ..OrgOptions::default()
                },
                ..SimOptions::default()
            },
            0,
        ))
        .expect("simulator")
}

/// Users at work between rounds: a new Account, and the one before it deleted.
pub fn edit_org(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    round: usize,
    last: &mut Option<String>,
) {
    runtime.block_on(async {
        let created = admin(
            sim,
            Method::POST,
            "records/Account",
            json!({"Name": format!("Round {round}")}),
        )
        .await;
        if let Some(id) = last.take() {
            admin(
                sim,
                Method::DELETE,
                &format!("records/Account/{id}"),
                json!({}),
            )
            .await;
        }
        *last = created["id"].as_str().map(str::to_string);
    });
}

/// Two applies in clone a: the first backs up a new Account, the second its deletion. The
/// deleted Account's Id: in `latest~1`, gone from `latest`.
pub fn back_up_a_deletion(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    deployment: &Deployment,
) -> String {
    let mut created = None;
    edit_org(runtime, sim, 0, &mut created);
    let gone = created.clone().expect("an account");
    succeeded(&deployment.cairn("a", &["apply", "--now", "-q"]), "apply");
    edit_org(runtime, sim, 1, &mut created);
    succeeded(&deployment.cairn("a", &["apply", "--now", "-q"]), "apply");
    gone
}

/// The newest snapshot the remote's state names holds exactly what a fault-free full backup
/// of the org reads now.
pub fn newest_snapshot_is_the_org(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    deployment: &Deployment,
) {
    let status = deployment
        .remote_state("state/acme/status.yaml")
        .expect("status on the remote");
    let status: Value = serde_yaml::from_str(&status).expect("status YAML");
    let newest = status["lastApplied"]["snapshot"]
        .as_str()
        .expect("a snapshot")
        .to_string();
    let store = deployment.store();
    let manifest = load_manifest(&store, &newest).expect("newest manifest");
    assert!(
        records(&store, &manifest) == org_records(runtime, sim, deployment),
        "snapshot {newest} differs from the org"
    );
}

/// What a fault-free full backup of the org reads now, with the task's own options.
pub fn org_records(
    runtime: &tokio::runtime::Runtime,
    sim: &Simulator,
    deployment: &Deployment,
) -> super::org::Records {
    let config =
        load(&ConfigTree::work_tree(&deployment.clone_dir("a")).expect("tree")).expect("config");
    let scratch_dir = tempfile::tempdir().expect("dir");
    let scratch = Store::init(
        Box::new(LocalBackend::new(scratch_dir.path())),
        MasterKey::generate().expect("key"),
    )
    .expect("scratch store");
    let fresh = runtime
        .block_on(backup(
            &task_connector(sim, &config.tasks[0].task),
            &scratch,
            &backup_options(&config.tasks[0].task),
            None,
            &cairn::time::format_datetime_z(cairn::time::now_ms()),
        ))
        .expect("fault-free backup");
    records(&scratch, &fresh.manifest)
}

/// `check --read-data` finds no errors (warnings, such as blobs a killed run left, are fine).
pub fn check_is_clean(deployment: &Deployment, clone: &str) {
    let check = deployment.cairn(clone, &["check", "--read-data"]);
    succeeded(&check, "check --read-data");
}
