//! The damage campaign: every kind of file a store holds, damaged every way a disk, a sync
//! tool or a person damages files (a flipped byte, truncated, deleted, swapped with another of
//! its kind, rolled back to an older version). For each: nothing panics; `check --read-data`
//! finds it (or it is harmless: the data reads back whole); and the next apply either heals it
//! or fails with a message that says what is wrong. An apply never reports success for a
//! snapshot that does not read back as the org's records. The table of outcomes is printed
//! (`cargo test --test it damage:: -- --nocapture`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::deployment::{
    Deployment, StoreKind, edit_org, org_records, simulator, succeeded, text,
};

use cairn::snapshot::writer::load_manifest;
use cairn::store::Store;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Damage {
    Flip,
    Truncate,
    Delete,
    Swap,
    RollBack,
}

/// One kind of store file: where the pristine store has one, another of its kind (for a
/// swap), and its older version (for a roll back), as paths in the store.
struct Kind {
    name: &'static str,
    path: String,
    other: Option<String>,
    older: Option<Vec<u8>>,
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// The newest snapshot of the task, by the state on the remote.
fn newest(deployment: &Deployment) -> Option<String> {
    let status: Value =
        serde_yaml::from_str(&deployment.remote_state("state/acme/status.yaml")?).ok()?;
    status["lastApplied"]["snapshot"]
        .as_str()
        .map(str::to_string)
}

/// Whether the newest snapshot reads back as exactly the org's records now.
fn newest_reads_as_the_org(
    runtime: &tokio::runtime::Runtime,
    sim: &cairn_sim::server::Simulator,
    deployment: &Deployment,
    store: &Store,
) -> Result<(), String> {
    let id = newest(deployment).ok_or("no snapshot in the state")?;
    let manifest = load_manifest(store, &id).map_err(|e| e.to_string())?;
    let snapshot = common::org::try_records(store, &manifest)?;
    if snapshot == org_records(runtime, sim, deployment) {
        Ok(())
    } else {
        Err(format!("snapshot {id} differs from the org"))
    }
}

fn damage(file: &Path, how: Damage, kind: &Kind, store_dir: &Path) -> bool {
    match how {
        Damage::Flip => {
            let Ok(mut bytes) = std::fs::read(file) else {
                return false;
            };
            if bytes.is_empty() {
                return false;
            }
            let at = bytes.len() / 2;
            bytes[at] ^= 0x20;
            std::fs::write(file, bytes).is_ok()
        }
        Damage::Truncate => {
            let Ok(bytes) = std::fs::read(file) else {
                return false;
            };
            std::fs::write(file, &bytes[..bytes.len() / 2]).is_ok()
        }
        Damage::Delete => std::fs::remove_file(file).is_ok(),
        Damage::Swap => match &kind.other {
            Some(other) => std::fs::read(store_dir.join(other))
                .and_then(|bytes| std::fs::write(file, bytes))
                .is_ok(),
            None => false,
        },
        Damage::RollBack => match &kind.older {
            Some(older) => std::fs::write(file, older).is_ok(),
            None => false,
        },
    }
}

fn panicked(output: &Output) -> bool {
    output.status.code() == Some(101) || text(&output.stderr).contains("panicked")
}

#[test]
fn every_kind_of_store_file_damaged_every_way_is_found_and_never_reported_as_success() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 81);
    let pristine = Deployment::new(&sim, StoreKind::Shared);
    let store_dir = pristine.root.join("store");
    let mut last = None;
    edit_org(&runtime, &sim, 0, &mut last);
    succeeded(&pristine.cairn("a", &["apply", "--now"]), "first apply");
    let first_pointer = std::fs::read(store_dir.join("search/acme")).expect("pointer");
    edit_org(&runtime, &sim, 1, &mut last);
    succeeded(&pristine.cairn("a", &["apply", "--now"]), "second apply");

    // Where each kind of file is in the pristine store.
    let store = pristine.store();
    let newest_id = newest(&pristine).expect("newest");
    let snapshots = store.list_snapshots().expect("snapshots");
    let older_id = snapshots
        .iter()
        .find(|s| **s != newest_id)
        .expect("an older snapshot")
        .clone();
    let manifest = load_manifest(&store, &newest_id).expect("manifest");
    let account = &manifest.objects["Account"];
    let contact = &manifest.objects["Contact"];
    let blob = |id: &str| cairn::store::blob_path(id);
    let versions = &manifest.objects["ContentVersion.VersionData"];
    let bodies: Vec<cairn::snapshot::files::FileBody> =
        cairn::snapshot::ObjectReader::new(&store, "", versions)
            .map(|row| {
                cairn::snapshot::files::FileBody::parse(&row.expect("row").1).expect("a body")
            })
            .collect();
    let chunk = |n: usize| bodies[n].chunks[0].blob.clone();
    let list = std::fs::read_to_string(store_dir.join("search/acme")).expect("pointer");
    let index_file = cairn::search::stored_indexes(&store)
        .expect("indexes")
        .remove(0)
        .files
        .expect("files")
        .remove(0);
    let keys: Vec<String> = store
        .backend()
        .list("keys")
        .expect("keys")
        .into_iter()
        .collect();
    let kinds = vec![
        Kind {
            name: "config",
            path: "config".into(),
            other: None,
            older: None,
        },
        Kind {
            name: "key file",
            path: keys[0].clone(),
            other: None,
            older: None,
        },
        Kind {
            name: "newest manifest",
            path: cairn::store::snapshot_path(&newest_id),
            other: Some(cairn::store::snapshot_path(&older_id)),
            older: None,
        },
        Kind {
            name: "older manifest",
            path: cairn::store::snapshot_path(&older_id),
            other: Some(cairn::store::snapshot_path(&newest_id)),
            older: None,
        },
        Kind {
            name: "segment",
            path: blob(&account.base[0].blob),
            other: Some(blob(&contact.base[0].blob)),
            older: None,
        },
        Kind {
            name: "schema document",
            path: blob(account.schema.as_deref().expect("schema")),
            other: Some(blob(contact.schema.as_deref().expect("schema"))),
            older: None,
        },
        Kind {
            name: "recent versions",
            path: blob(account.recent.as_deref().expect("recent")),
            other: Some(blob(account.base[0].blob.as_str())),
            older: None,
        },
        Kind {
            name: "file chunk",
            path: blob(&chunk(0)),
            other: Some(blob(&chunk(1))),
            older: None,
        },
        Kind {
            name: "file body rows",
            path: blob(&versions.base[0].blob),
            other: Some(blob(&account.base[0].blob)),
            older: None,
        },
        Kind {
            name: "index list",
            path: blob(list.trim()),
            other: Some(blob(&index_file)),
            older: None,
        },
        Kind {
            name: "index file",
            path: blob(&index_file),
            other: Some(blob(list.trim())),
            older: None,
        },
        Kind {
            name: "index pointer",
            path: "search/acme".into(),
            other: None,
            older: Some(first_pointer),
        },
    ];
    drop(store);

    let mut table = vec![
        "| file | damage | check --read-data | next apply | newest snapshot | cairn repair |"
            .to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut failures = Vec::new();
    for kind in &kinds {
        for how in [
            Damage::Flip,
            Damage::Truncate,
            Damage::Delete,
            Damage::Swap,
            Damage::RollBack,
        ] {
            // A fresh copy of the deployment, its clones pointed at their own remote.
            let copy = tempfile::tempdir().expect("dir");
            let root = copy.path().join("root");
            copy_tree(&pristine.root, &root);
            let case = pristine.at(root.clone());
            let file: PathBuf = root.join("store").join(&kind.path);
            if !damage(&file, how, kind, &root.join("store")) {
                continue;
            }
            let check = case.cairn("a", &["check", "--read-data"]);
            let found = !check.status.success() || text(&check.stdout).contains("warning:");
            edit_org(&runtime, &sim, 2, &mut None);
            let apply = case.cairn("a", &["apply", "--now"]);
            let applied = apply.status.success();
            let reads = match case.try_store() {
                Ok(store) => newest_reads_as_the_org(&runtime, &sim, &case, &store),
                Err(e) => Err(e),
            };
            let label = format!("{} / {how:?}", kind.name);
            if panicked(&check) || panicked(&apply) {
                failures.push(format!("{label}: a panic"));
            }
            if applied && let Err(why) = &reads {
                failures.push(format!("{label}: apply said success, but {why}"));
            }
            if !found && reads.is_err() {
                failures.push(format!("{label}: check found nothing, yet {reads:?}"));
            }
            if !applied {
                let said = text(&apply.stdout).to_string() + text(&apply.stderr);
                if !said.contains("help:") && !said.contains("FAILED") {
                    failures.push(format!("{label}: apply failed without saying why: {said}"));
                }
            }
            // Then `cairn repair`: afterwards check finds no errors, and an apply succeeds and
            // reads back as the org (a damaged config is past repair: said, and left alone).
            let listed = || {
                case.try_store()
                    .and_then(|s| s.list_snapshots().map_err(|e| e.to_string()))
            };
            let before_dry = listed();
            let dry = case.cairn("a", &["repair", "--dry-run"]);
            if listed() != before_dry || panicked(&dry) {
                failures.push(format!("{label}: repair --dry-run changed the store"));
            }
            let repair = case.cairn("a", &["repair"]);
            if panicked(&repair) {
                failures.push(format!("{label}: repair panicked"));
            }
            let repaired = if repair.status.success() {
                let after = case.cairn("a", &["check", "--read-data"]);
                let again = case.cairn("a", &["apply", "--now"]);
                let reads_after = case
                    .try_store()
                    .and_then(|store| newest_reads_as_the_org(&runtime, &sim, &case, &store));
                if !after.status.success() {
                    failures.push(format!(
                        "{label}: check still finds errors after repair:\n{}",
                        text(&after.stdout)
                    ));
                }
                if !again.status.success() || reads_after.is_err() {
                    failures.push(format!(
                        "{label}: after repair, apply {:?} and {reads_after:?}:\n{}",
                        again.status,
                        text(&again.stdout)
                    ));
                }
                let acted = text(&repair.stdout)
                    .lines()
                    .filter(|l| {
                        l.starts_with("rewrite")
                            || l.starts_with("forget")
                            || l.starts_with("unlist")
                    })
                    .count();
                format!("{acted} snapshots fixed; check clean")
            } else {
                let said = text(&repair.stderr).to_string();
                if !said.contains("help:") {
                    failures.push(format!("{label}: repair failed without saying why: {said}"));
                }
                "refused: store unreadable".to_string()
            };
            table.push(format!(
                "| {} | {how:?} | {} | {} | {} | {repaired} |",
                kind.name,
                if !check.status.success() {
                    "error"
                } else if found {
                    "warning"
                } else {
                    "clean"
                },
                if applied {
                    "success".to_string()
                } else {
                    let said = text(&apply.stdout).to_string() + text(&apply.stderr);
                    format!(
                        "fails: {}",
                        said.lines()
                            .find(|l| l.starts_with("error") || l.starts_with("FAILED"))
                            .unwrap_or("")
                            .chars()
                            .take(70)
                            .collect::<String>()
                            .replace('|', "/")
                    )
                },
                match &reads {
                    Ok(()) => "reads as the org".to_string(),
                    Err(why) => why.chars().take(60).collect::<String>().replace('|', "/"),
                }
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A task's status file on the state branch, damaged by a hand edit, is an error everywhere it
/// is read, with the way back; no command takes it for a task never backed up.
#[test]
fn an_unreadable_status_file_is_an_error_everywhere_never_a_task_without_backups() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = simulator(&runtime, 82);
    let deployment = Deployment::new(&sim, StoreKind::Shared);
    succeeded(&deployment.cairn("a", &["apply", "--now"]), "first apply");

    // Someone edits the status file on the state branch by hand, and pushes.
    let root = &deployment.root;
    common::git(
        root,
        &[
            "clone",
            "--quiet",
            "-b",
            "cairn-state",
            "remote.git",
            "edit",
        ],
    );
    let edit = root.join("edit");
    std::fs::write(
        edit.join("state/acme/status.yaml"),
        "snapshots: [unclosed\n",
    )
    .expect("damage the status file");
    common::git(&edit, &["commit", "--quiet", "-am", "hand edit"]);
    common::git(&edit, &["push", "--quiet", "origin", "cairn-state"]);

    for args in [
        &["status"][..],
        &["snapshots"],
        &["plan"],
        &["diff", "--task", "acme"],
        &["apply", "--now"],
    ] {
        let output = deployment.cairn("b", args);
        // apply reports each task's failure in its results, the others as errors.
        let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(
            !output.status.success(),
            "cairn {args:?} succeeded over a damaged status file:\n{}",
            text(&output.stdout)
        );
        assert!(
            said.contains("state/acme/status.yaml is unreadable")
                && said.contains("git log -p cairn-state -- state/acme/status.yaml"),
            "cairn {args:?} does not name the damage and the way back:\n{said}"
        );
    }
    let check = deployment.cairn("b", &["check"]);
    assert!(!check.status.success(), "check passed over a damaged state");
    assert!(
        text(&check.stdout).contains("state/acme/status.yaml is unreadable"),
        "{}",
        text(&check.stdout)
    );
}
