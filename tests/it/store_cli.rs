//! `cairn init`, `cairn key` and `cairn check` as a user runs them.

use crate::common;

use cairn::snapshot::{Outcome, SnapshotWriter, Source};
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::keys::raw_key;
use common::Test;

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n";

fn repo() -> Test {
    Test::new().file("cairn.yaml", REPOSITORY)
}

#[test]
fn init_creates_the_store_and_a_key_file_that_opens_it() {
    let test = repo();
    test.run_with(&["init"])
        .status(1)
        .stderr_has("CAIRN_PASSPHRASE is not set")
        .stderr_has("help: set CAIRN_PASSPHRASE");
    let test = test.env("CAIRN_PASSPHRASE", "first passphrase");
    test.run_with(&["init", "--label", "ops"])
        .status(0)
        .stdout_has("Created the encrypted store at")
        .stdout_has("(\"ops\")");
    assert!(test.path().join(".cairn/store/config").is_file());
    let ignore = std::fs::read_to_string(test.path().join(".gitignore")).expect(".gitignore");
    assert_eq!(ignore, "/.cairn/store/\n", "the store is kept out of git");
    test.run_with(&["init"])
        .status(1)
        .stderr_has("a cairn store already exists");
    test.run_with(&["key", "list"]).status(0).stdout_has("ops");
    test.run_with(&["check"])
        .status(0)
        .stdout_has("checked 0 snapshots");

    // From another directory, naming the repository, with the wrong passphrase.
    let wrong = Test::new().env("CAIRN_PASSPHRASE", "not it");
    wrong
        .run_with(&["key", "list", test.path().to_str().expect("path")])
        .status(1)
        .stderr_has("no key file of the store")
        .stderr_has("help: check the passphrase");
    Test::new()
        .run_with(&["key", "list", test.path().to_str().expect("path")])
        .status(1)
        .stderr_has("no key to open the store");
}

fn raw_of(test: &Test, dir: &str) -> String {
    test.run_with(&["key", "raw", dir])
        .status(0)
        .stdout
        .trim()
        .to_string()
}

#[test]
fn key_files_can_be_added_listed_and_removed_but_never_the_last() {
    let test = repo()
        .env("CAIRN_PASSPHRASE", "ops")
        .env("CAIRN_NEW_PASSPHRASE", "ci");
    test.run_with(&["init", "--label", "ops"]).status(0);
    test.run_with(&["key", "add", "--label", "ci"])
        .status(0)
        .stdout_has("Added key file");
    let dir = test.path().to_str().expect("path").to_string();
    let listed = test.run_with(&["key", "list"]).status(0);
    assert_eq!(listed.stdout.lines().count(), 2, "{}", listed.stdout);
    let json = test
        .run_with(&["key", "list", "--format", "json"])
        .status(0)
        .json();
    let labels: Vec<&str> = json["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["label"].as_str())
        .collect();
    assert_eq!(labels.len(), 2, "{json}");
    assert!(labels.contains(&"ops") && labels.contains(&"ci"), "{json}");
    let ops_id = listed
        .stdout
        .lines()
        .find(|l| l.contains("ops"))
        .and_then(|l| l.split_whitespace().next())
        .expect("ops id")
        .to_string();
    let ci_id = listed
        .stdout
        .lines()
        .find(|l| l.contains("ci"))
        .and_then(|l| l.split_whitespace().next())
        .expect("ci id")
        .to_string();

    let listed = test.run_with(&["key", "list"]).status(0);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&ops_id) && l.ends_with("(in use: this passphrase opens it)")),
        "{}",
        listed.stdout
    );
    // An unreadable key file, listed first, locks no one out.
    std::fs::write(
        test.path().join(".cairn/store/keys/0000.key"),
        "{ not a key",
    )
    .expect("junk");
    let listed = test.run_with(&["key", "list"]).status(0);
    assert!(
        listed.stdout.contains("0000  UNREADABLE"),
        "{}",
        listed.stdout
    );
    // The key in use is not removed from under the passphrase that opened the store.
    test.run_with(&["key", "remove", &ops_id])
        .status(1)
        .stderr_has("is the one this passphrase opens");
    let as_ci = Test::new().env("CAIRN_PASSPHRASE", "ci");
    as_ci.run_with(&["key", "list", &dir]).status(0);
    as_ci.run_with(&["key", "remove", &ops_id, &dir]).status(0);
    as_ci.run_with(&["key", "remove", "0000", &dir]).status(0);
    Test::new()
        .env("CAIRN_PASSPHRASE", "ops")
        .run_with(&["key", "list", &dir])
        .status(1);
    Test::new()
        .env("CAIRN_KEY", &raw_of(&as_ci, &dir))
        .run_with(&["key", "remove", &ci_id, &dir])
        .status(1)
        .stderr_has("the store's last")
        .stderr_has("help: add another key file first");

    let raw = raw_of(&as_ci, &dir);
    Test::new()
        .env("CAIRN_KEY", &raw)
        .run_with(&["check", &dir])
        .status(0);
    Test::new()
        .env("CAIRN_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .run_with(&["check", &dir])
        .status(1)
        .stderr_has("the key does not open the store");
}

#[test]
fn check_read_data_names_a_damaged_blob_and_its_snapshot() {
    let test = repo().env("CAIRN_PASSPHRASE", "pw");
    test.run_with(&["init"]).status(0);
    let raw = test
        .run_with(&["key", "raw"])
        .status(0)
        .stdout
        .trim()
        .to_string();
    let store_dir = test.path().join(".cairn/store");
    let store = Store::open(
        Box::new(LocalBackend::new(&store_dir)),
        raw_key(&raw).expect("raw key"),
    )
    .expect("open");
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object(
            "Account",
            (0..3000u32).map(|n| {
                Ok((
                    format!("001{n:012}AAA"),
                    format!("{{\"n\":{n},\"pad\":\"{}\"}}", "y".repeat(300)).into_bytes(),
                ))
            }),
        )
        .expect("write");
    let (snapshot, manifest) = writer
        .finish(
            "2026-01-01T00:00:00Z",
            Source::default(),
            None,
            Outcome::Complete,
        )
        .expect("finish");
    test.run_with(&["check", "--read-data"])
        .status(0)
        .stdout_has("decrypted and verified")
        .stdout_has("no errors");
    test.run_with(&["check", "--read-data=50%"]).status(0);
    test.run_with(&["check", "--read-data=1/2"]).status(0);
    test.run_with(&["check", "--read-data=200%"])
        .status(1)
        .stderr_has("--read-data");

    let blob = &manifest.objects["Account"].base[0].blob;
    let path = store_dir.join(cairn::store::blob_path(blob));
    let mut bytes = std::fs::read(&path).expect("blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&path, bytes).expect("damage");
    test.run_with(&["check"])
        .status(0)
        .stdout_has("structure only");
    test.run_with(&["check", "--read-data"])
        .status(1)
        .stdout_has(&format!("error: blob {blob} is damaged"))
        .stdout_has(&format!("affects snapshot {snapshot} (Account)"))
        .stdout_has("help: restore the blob");
    // The same outcome as JSON, for scripts: the verdict, and each finding with its place.
    let json = test
        .run_with(&["check", "--read-data", "--format", "json"])
        .status(1)
        .json();
    assert_eq!(json["ok"], false, "{json}");
    assert_eq!(json["dataRead"], true, "{json}");
    let findings = json["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["severity"] == "error"
            && f["affects"][0] == format!("snapshot {snapshot} (Account)")),
        "{json}"
    );
    std::fs::remove_file(&path).expect("lose it");
    test.run_with(&["check"])
        .status(1)
        .stdout_has(&format!("error: blob {blob} is missing"));
}

#[test]
fn forget_applies_the_task_retention_and_prune_frees_the_data() {
    let task = "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nsource:\n  type: salesforce\n  environment: production\n  auth:\n    jwt:\n      clientIdEnv: SF_CLIENT_ID\n      username: backup@acme.example\n      privateKeyEnv: SF_PRIVATE_KEY\nretention:\n  keepLast: 2\n  keepAtLeastGood: 1\n";
    let test = repo()
        .file("tasks/acme.yaml", task)
        .env("CAIRN_PASSPHRASE", "pw");
    test.run_with(&["init"]).status(0);
    let raw = test
        .run_with(&["key", "raw"])
        .status(0)
        .stdout
        .trim()
        .to_string();
    let store = Store::open(
        Box::new(LocalBackend::new(test.path().join(".cairn/store"))),
        raw_key(&raw).expect("raw key"),
    )
    .expect("open");
    let mut snapshots = Vec::new();
    for day in 1..=4u32 {
        let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
        writer
            .full_object(
                "Account",
                (0..200u32).map(move |n| {
                    Ok((
                        format!("001{n:012}AAA"),
                        format!("{{\"day\":{day},\"n\":{n}}}").into_bytes(),
                    ))
                }),
            )
            .expect("write");
        let (id, _) = writer
            .finish(
                &format!("2026-01-0{day}T03:00:00Z"),
                Source::default(),
                None,
                Outcome::Complete,
            )
            .expect("finish");
        snapshots.push(id);
    }
    let dry = test.run_with(&["forget", "--dry-run"]).status(0);
    assert!(
        dry.stdout.contains(&format!(
            "keep    {}  2026-01-04T03:00:00.000Z  last 1",
            snapshots[3]
        )),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(&format!(
            "keep    {}  2026-01-03T03:00:00.000Z  last 2",
            snapshots[2]
        )),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(&format!("remove  {}", snapshots[0])),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("2 kept, 2 to remove (dry run"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        store.list_snapshots().expect("list").len(),
        4,
        "a dry run removes nothing"
    );

    test.run_with(&["forget"])
        .status(0)
        .stdout_has("2 kept, 2 removed");
    assert_eq!(store.list_snapshots().expect("list").len(), 2);
    test.run_with(&["prune", "--dry-run"])
        .status(0)
        .stdout_has("would delete 2 blobs");
    let json = test
        .run_with(&["prune", "--dry-run", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        (json["dryRun"].as_bool(), json["deleted"].as_u64()),
        (Some(true), Some(2)),
        "{json}"
    );
    test.run_with(&["prune"])
        .status(0)
        .stdout_has("deleted 2 blobs");
    test.run_with(&["check", "--read-data"])
        .status(0)
        .stdout_has("no errors");
}

#[test]
fn a_store_on_a_git_ref_of_the_config_repository() {
    let test = Test::new()
        .file(
            "cairn.yaml",
            "apiVersion: cairn/v1\nkind: Repository\nstore:\n  git: {}\n",
        )
        .env("CAIRN_PASSPHRASE", "pw");
    test.run_with(&["init"])
        .status(1)
        .stderr_has("the git store needs a git repository");
    git2::Repository::init(test.path()).expect("git init");
    test.run_with(&["init"])
        .status(0)
        .stdout_has("refs/cairn/store");
    assert!(
        !test.path().join(".gitignore").exists(),
        "nothing to ignore: the store is not in the work tree"
    );
    test.run_with(&["key", "list"]).status(0);
    test.run_with(&["check", "--read-data"])
        .status(0)
        .stdout_has("no errors");
    let repo = git2::Repository::open(test.path()).expect("repo");
    let store_ref = repo
        .find_reference("refs/cairn/store")
        .expect("the store ref");
    let tree = store_ref.peel_to_tree().expect("tree");
    assert!(tree.get_path(std::path::Path::new("config")).is_ok());
}

#[test]
fn an_s3_store_needs_its_credentials_named_in_the_manifest() {
    let test = Test::new()
        .file("cairn.yaml", "apiVersion: cairn/v1\nkind: Repository\nstore:\n  s3:\n    bucket: acme-backups\n    endpoint: http://127.0.0.1:9\n    accessKeyIdEnv: BACKUP_S3_KEY\n    secretAccessKeyEnv: BACKUP_S3_SECRET\n")
        .env("CAIRN_PASSPHRASE", "pw");
    test.run_with(&["init"])
        .status(1)
        .stderr_has("BACKUP_S3_KEY is not set")
        .stderr_has("help: set BACKUP_S3_KEY to the S3 access key id");
    // Credentials given, nothing listening: a clear storage error, not a panic.
    test.env("BACKUP_S3_KEY", "k")
        .env("BACKUP_S3_SECRET", "s")
        .run_with(&["init"])
        .status(1)
        .stderr_has("storage at s3://acme-backups/")
        .stderr_has("help: check that the storage is reachable");
}

/// The commands that only confirm what they did say it as JSON too, with the same facts as
/// their text.
#[test]
fn confirmations_read_as_json_for_scripts() {
    let test = repo()
        .env("CAIRN_PASSPHRASE", "ops")
        .env("CAIRN_NEW_PASSPHRASE", "ci");
    let init = test
        .run_with(&["init", "--label", "ops", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(init["keyLabel"], "ops", "{init}");
    assert_eq!(init["passphraseEnv"], "CAIRN_PASSPHRASE", "{init}");
    assert_eq!(init["gitignored"], "/.cairn/store/", "{init}");
    let store_id = init["storeId"].as_str().expect("store id");
    assert!(
        std::fs::read_to_string(test.path().join(".cairn/store/config"))
            .expect("config")
            .contains(store_id),
        "{init}"
    );

    let added = test
        .run_with(&["key", "add", "--label", "ci", "--format", "json"])
        .status(0)
        .json();
    let id = added["id"].as_str().expect("id").to_string();
    assert_eq!(added["label"], "ci");
    assert!(
        test.path()
            .join(format!(".cairn/store/keys/{id}.key"))
            .is_file()
    );

    let raw = test
        .run_with(&["key", "raw", "--format", "json"])
        .status(0)
        .json();
    let text = test.run_with(&["key", "raw"]).status(0).stdout;
    assert_eq!(raw["key"].as_str(), Some(text.trim()));

    let removed = test
        .run_with(&["key", "remove", &id, "--format", "json"])
        .status(0)
        .json();
    assert_eq!(removed["id"].as_str(), Some(id.as_str()));
    assert!(
        !test
            .path()
            .join(format!(".cairn/store/keys/{id}.key"))
            .exists()
    );

    let repaired = test
        .run_with(&["repair", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(repaired["repaired"], serde_json::json!([]), "{repaired}");
}
