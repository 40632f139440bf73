//! The encrypted store and snapshots over a real directory: round trips, incremental chains
//! with compaction against a model, keys, tampering, and writes cut off at any point.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cairn::snapshot::writer::load_manifest;
use cairn::snapshot::{Change, ObjectReader, Outcome, SnapshotManifest, SnapshotWriter, Source};
use cairn::store::backend::{Backend, LocalBackend};
use cairn::store::crypto::MasterKey;
use cairn::store::keys::KdfParams;
use cairn::store::{Store, StoreError};
use cairn_sim::org::Rng;
use common::s3::{S3_KEY_ID, S3_SECRET, S3Server, s3_server};

fn record(id: &str, generation: u64) -> Vec<u8> {
    format!("{{\"Id\":\"{id}\",\"Name\":\"Account {id}\",\"Generation\":{generation},\"Padding\":\"{}\"}}", "x".repeat(200)).into_bytes()
}

fn id(n: u64) -> String {
    format!("001{n:012}AAA")
}

fn read_all(store: &Store, manifest: &SnapshotManifest, object: &str) -> BTreeMap<String, Vec<u8>> {
    let entry = manifest.objects.get(object).cloned().unwrap_or_default();
    ObjectReader::new(store, object, &entry)
        .map(|r| r.expect("record"))
        .collect()
}

fn local(dir: &std::path::Path) -> Box<dyn Backend> {
    Box::new(LocalBackend::new(dir))
}

fn finish(writer: SnapshotWriter<'_>) -> (String, SnapshotManifest) {
    writer
        .finish(
            "2026-01-01T00:00:00Z",
            Source {
                kind: "salesforce".into(),
                account: "00D000000000001AAA".into(),
                api_version: "62.0".into(),
            },
            None,
            Outcome::Complete,
        )
        .expect("snapshot")
}

#[test]
fn a_full_snapshot_reads_back_byte_for_byte_and_nothing_is_plaintext() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let records: BTreeMap<String, Vec<u8>> =
        (0..20_000).map(|n| (id(n), record(&id(n), 0))).collect();
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", records.clone().into_iter().map(Ok))
        .expect("write");
    let (snapshot, _) = finish(writer);
    let manifest = load_manifest(&store, &snapshot).expect("manifest");
    assert!(
        manifest.objects["Account"].base.len() > 1,
        "several segments"
    );
    assert_eq!(read_all(&store, &manifest, "Account"), records);
    // Nothing readable on disk: no record Id, no field value.
    for path in store.backend().list("").expect("list") {
        let bytes = store.backend().get(&path).expect("get").expect("exists");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("001000000000") && !text.contains("Account 0"),
            "{path} holds plaintext"
        );
    }
}

#[test]
fn an_incremental_chain_with_compaction_matches_the_model_at_every_snapshot() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let mut rng = Rng::new(11);
    let mut model: BTreeMap<String, Vec<u8>> =
        (0..3000).map(|n| (id(n), record(&id(n), 0))).collect();
    let mut writer = SnapshotWriter::new(&store, "acme", None)
        .expect("writer")
        .max_deltas(3);
    writer
        .full_object("Account", model.clone().into_iter().map(Ok))
        .expect("write");
    let (mut parent_id, mut parent) = finish(writer);
    let mut history = vec![(parent_id.clone(), model.clone())];
    let mut next = 3000;
    let mut compacted = false;
    for generation in 1..=12u64 {
        let mut changes: BTreeMap<String, Change> = BTreeMap::new();
        for _ in 0..60 {
            match rng.below(3) {
                0 => {
                    let key = id(next);
                    next += 1;
                    changes.insert(
                        key.clone(),
                        Change::Upsert(key.clone(), record(&key, generation)),
                    );
                }
                1 => {
                    let key = id(rng.below(next));
                    changes.insert(
                        key.clone(),
                        Change::Upsert(key.clone(), record(&key, generation)),
                    );
                }
                _ => {
                    let key = id(rng.below(next));
                    changes.insert(key.clone(), Change::Delete(key));
                }
            }
        }
        for change in changes.values() {
            match change {
                Change::Upsert(key, body) => {
                    model.insert(key.clone(), body.clone());
                }
                Change::Delete(key) => {
                    model.remove(key);
                }
            }
        }
        let mut writer = SnapshotWriter::new(&store, "acme", Some((&parent_id, &parent)))
            .expect("writer")
            .max_deltas(3);
        writer
            .changes("Account", changes.into_values())
            .expect("changes");
        let (id_, manifest) = finish(writer);
        // A compaction marks what it folded; later snapshots carry the mark along.
        compacted |= manifest.objects["Account"].folded != parent.objects["Account"].folded;
        assert!(
            manifest.objects["Account"].deltas.len() <= 3,
            "compaction bounds the deltas"
        );
        assert_eq!(manifest.parent.as_deref(), Some(parent_id.as_str()));
        assert_eq!(
            read_all(&store, &manifest, "Account"),
            model,
            "generation {generation}"
        );
        history.push((id_.clone(), model.clone()));
        parent_id = id_;
        parent = manifest;
    }
    assert!(compacted, "the chain was compacted at least once");
    // Older snapshots are untouched by later ones.
    for (snapshot, expected) in &history {
        let manifest = load_manifest(&store, snapshot).expect("manifest");
        assert_eq!(
            &read_all(&store, &manifest, "Account"),
            expected,
            "snapshot {snapshot}"
        );
    }
}

#[test]
fn keys_open_the_store_and_wrong_ones_say_so() {
    let dir = tempfile::tempdir().expect("dir");
    let master = MasterKey::generate().expect("key");
    let store = Store::init(local(dir.path()), master.clone()).expect("init");
    let params = KdfParams::insecure_for_tests();
    let ops = store
        .add_key_file("ops passphrase", "ops", params, "2026-01-01T00:00:00Z")
        .expect("key file");
    let ci = store
        .add_key_file("ci passphrase", "ci", params, "2026-01-01T00:00:00Z")
        .expect("key file");
    assert_eq!(store.key_files().expect("list").len(), 2);
    let blob = store.put_blob("segment", b"hello").expect("blob");

    let by_ci = Store::open_with_passphrase(local(dir.path()), "ci passphrase").expect("ci opens");
    assert_eq!(by_ci.get_blob(&blob).expect("read"), b"hello");
    assert!(matches!(
        Store::open_with_passphrase(local(dir.path()), "nope"),
        Err(StoreError::NoKeyFileOpens { .. })
    ));
    assert!(matches!(
        Store::open(local(dir.path()), MasterKey::generate().expect("key")),
        Err(StoreError::WrongKey { .. })
    ));
    assert!(matches!(
        Store::init(local(dir.path()), master.clone()),
        Err(StoreError::AlreadyExists { .. })
    ));
    let empty = tempfile::tempdir().expect("dir");
    assert!(matches!(
        Store::open(local(empty.path()), master.clone()),
        Err(StoreError::NotAStore { .. })
    ));

    store.remove_key_file(&ops.id).expect("remove");
    assert!(matches!(
        Store::open_with_passphrase(local(dir.path()), "ops passphrase"),
        Err(StoreError::NoKeyFileOpens { .. })
    ));
    assert!(matches!(
        store.remove_key_file(&ci.id),
        Err(StoreError::LastKeyFile { .. })
    ));
    for error in [
        StoreError::WrongKey {
            location: "x".into(),
        },
        StoreError::LastKeyFile { id: "x".into() },
    ] {
        assert!(!error.guidance().is_empty());
    }
}

#[test]
fn a_flipped_byte_anywhere_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", (0..500).map(|n| Ok((id(n), record(&id(n), 0)))))
        .expect("write");
    let (snapshot, manifest) = finish(writer);
    let segment = manifest.objects["Account"].base[0].blob.clone();
    let path = cairn::store::blob_path(&segment);
    let mut bytes = store.backend().get(&path).expect("get").expect("exists");
    let original = bytes.clone();
    for at in [3, 10, bytes.len() / 2, bytes.len() - 1] {
        bytes.clone_from(&original);
        bytes[at] ^= 0x40;
        store.backend().put(&path, &bytes).expect("tamper");
        let error = ObjectReader::new(&store, "Account", &manifest.objects["Account"])
            .find_map(Result::err)
            .expect("the damage is found");
        assert!(
            matches!(&error, StoreError::CorruptBlob { id, .. } if *id == segment),
            "{error}"
        );
    }
    store.backend().put(&path, &original).expect("restore");
    let manifest_path = cairn::store::snapshot_path(&snapshot);
    let mut sealed = store
        .backend()
        .get(&manifest_path)
        .expect("get")
        .expect("exists");
    sealed[20] ^= 1;
    store
        .backend()
        .put(&manifest_path, &sealed)
        .expect("tamper");
    assert!(
        matches!(load_manifest(&store, &snapshot), Err(StoreError::BadManifest { id, .. }) if id == snapshot)
    );
}

/// A damaged blob heals instead of spreading: writing the same content again (the next full
/// backup of unchanged records) replaces the copy that no longer verifies.
#[test]
fn a_damaged_blob_is_written_again_when_its_content_comes_again() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let records = || (0..500).map(|n| Ok((id(n), record(&id(n), 0))));
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer.full_object("Account", records()).expect("write");
    let (_, first) = finish(writer);
    let segment = first.objects["Account"].base[0].blob.clone();
    let path = cairn::store::blob_path(&segment);
    for damage in ["flip", "truncate"] {
        let mut bytes = store.backend().get(&path).expect("get").expect("exists");
        match damage {
            "flip" => bytes[40] ^= 0x01,
            _ => bytes.truncate(bytes.len() / 2),
        }
        store.backend().put(&path, &bytes).expect("damage");
        assert!(store.get_blob(&segment).is_err(), "{damage}: damaged");
        let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
        writer.full_object("Account", records()).expect("write");
        let (_, again) = finish(writer);
        assert_eq!(
            again.objects["Account"].base[0].blob, segment,
            "same content, same id"
        );
        assert_eq!(
            read_all(&store, &again, "Account"),
            read_all(&store, &first, "Account"),
            "{damage}: healed, and the older snapshot reads again too"
        );
    }
}

#[test]
fn records_out_of_order_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    let result = writer.full_object(
        "Account",
        [
            Ok((id(2), record(&id(2), 0))),
            Ok((id(1), record(&id(1), 0))),
        ],
    );
    assert!(matches!(result, Err(StoreError::Unordered { .. })));
}

/// A backend whose writes stop working after a number of them, as if the process died.
struct Dying {
    inner: LocalBackend,
    writes_left: Arc<AtomicUsize>,
}

impl Backend for Dying {
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(StoreError::Backend {
                location: "dying".into(),
                message: "the process was killed".into(),
            });
        }
        self.inner.put(path, bytes)
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(path)
    }
    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.inner.exists(path)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.inner.delete(path)
    }
    fn location(&self) -> String {
        self.inner.location()
    }
}

#[test]
fn a_write_cut_off_anywhere_leaves_the_last_snapshot_intact() {
    let mut rng = Rng::new(5);
    for trial in 0..24 {
        let dir = tempfile::tempdir().expect("dir");
        let master = MasterKey::generate().expect("key");
        let store = Store::init(local(dir.path()), master.clone()).expect("init");
        let records: BTreeMap<String, Vec<u8>> =
            (0..8000).map(|n| (id(n), record(&id(n), 0))).collect();
        let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
        writer
            .full_object("Account", records.clone().into_iter().map(Ok))
            .expect("write");
        let (good, good_manifest) = finish(writer);

        let writes_left = Arc::new(AtomicUsize::new(rng.below(8) as usize));
        let dying = Store::open(
            Box::new(Dying {
                inner: LocalBackend::new(dir.path()),
                writes_left,
            }),
            master.clone(),
        )
        .expect("open");
        let snapshots_before = dying.list_snapshots().expect("list").len();
        // Even taking the backup lock is a write that can be cut off.
        if let Ok(writer) = SnapshotWriter::new(&dying, "acme", Some((&good, &good_manifest))) {
            let mut writer = writer.max_deltas(1);
            let changes = (0..4000)
                .step_by(3)
                .map(|n| Change::Upsert(id(n), record(&id(n), 1)));
            let outcome = writer
                .changes("Account", changes)
                .and_then(|()| writer.changes("Account", [Change::Delete(id(1))]));
            if outcome.is_ok() {
                let _ = finish_result(writer);
            }
        }
        // Whatever happened, the store opens and the good snapshot reads back whole.
        let store = Store::open(local(dir.path()), master).expect("reopen");
        let manifest = load_manifest(&store, &good).expect("the good manifest");
        assert_eq!(
            read_all(&store, &manifest, "Account"),
            records,
            "trial {trial}"
        );
        for snapshot in store.list_snapshots().expect("list") {
            let manifest =
                load_manifest(&store, &snapshot).expect("every manifest in the store reads");
            for entry in manifest.objects.values() {
                for segment in entry.segments() {
                    assert!(
                        store.blob_exists(&segment.blob).expect("exists"),
                        "a manifest names a blob that was never written"
                    );
                }
            }
        }
        assert!(snapshots_before <= 1);
    }
}

fn finish_result(writer: SnapshotWriter<'_>) -> Result<(String, SnapshotManifest), StoreError> {
    writer.finish(
        "2026-01-02T00:00:00Z",
        Source::default(),
        None,
        Outcome::Partial {
            reason: "test".into(),
        },
    )
}

#[test]
fn prune_frees_only_what_no_snapshot_uses_and_never_during_a_backup() {
    use cairn::ops::prune::prune;
    use cairn::store::lock::LockKind;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let records: BTreeMap<String, Vec<u8>> =
        (0..6000).map(|n| (id(n), record(&id(n), 0))).collect();
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", records.clone().into_iter().map(Ok))
        .expect("write");
    let (first, first_manifest) = finish(writer);
    let mut writer =
        SnapshotWriter::new(&store, "acme", Some((&first, &first_manifest))).expect("writer");
    writer
        .changes("Account", [Change::Upsert(id(5), record(&id(5), 1))])
        .expect("changes");
    let (second, second_manifest) = finish(writer);
    // Blobs of an interrupted backup: written, never named by a manifest.
    store.put_blob("segment", b"CRS1 orphan").expect("orphan");

    assert_eq!(
        prune(&store, cairn::time::now_ms(), true)
            .expect("dry run")
            .deleted,
        1
    );
    assert_eq!(
        store.list_blobs().expect("list").len(),
        first_manifest.objects["Account"].base.len() + 2
    );
    // Forget the first snapshot: the second still uses its base, so only the orphan goes.
    store
        .backend()
        .delete(&cairn::store::snapshot_path(&first))
        .expect("forget");
    let report = prune(&store, cairn::time::now_ms(), false).expect("prune");
    assert_eq!(report.deleted, 1);
    let mut expected = records.clone();
    expected.insert(id(5), record(&id(5), 1));
    assert_eq!(
        read_all(&store, &second_manifest, "Account"),
        expected,
        "the second snapshot is whole"
    );
    assert_eq!(store.list_snapshots().expect("list"), vec![second.clone()]);
    assert_eq!(
        load_manifest(&store, &second).expect("manifest"),
        second_manifest
    );

    // A running backup holds the store against prune, and a prune against backups.
    let writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    assert!(matches!(
        prune(&store, cairn::time::now_ms(), false),
        Err(StoreError::Locked { .. })
    ));
    drop(writer);
    let held = store
        .lock(LockKind::Prune, cairn::time::now_ms())
        .expect("prune lock");
    assert!(matches!(
        SnapshotWriter::new(&store, "acme", None),
        Err(StoreError::Locked { .. })
    ));
    drop(held);
    // Another machine's lock that was not refreshed within the time its holder promised
    // belongs to a process that died: prune takes it over. A live one blocks, and only
    // `unlock --force` removes it.
    let now = cairn::time::now_ms();
    let foreign = |refreshed: i64| {
        serde_json::json!({
            "kind": "backup", "holder": "pid 4242 on ci-runner-2", "createdMs": refreshed,
            "refreshedMs": refreshed, "staleAfterMs": 60_000, "pid": 4242,
            "machine": {"host": "ci-runner-2", "boot": "b0", "pidNamespace": "pid:[1]"}
        })
        .to_string()
    };
    let backend = store.backend();
    backend
        .put(
            "locks/backup-00000000000000aa",
            foreign(now - 61_000).as_bytes(),
        )
        .expect("stale lock");
    prune(&store, now, false).expect("a stale lock does not block");
    assert!(store.locks().expect("locks").is_empty(), "taken over");
    backend
        .put("locks/backup-00000000000000bb", foreign(now).as_bytes())
        .expect("live lock");
    assert!(matches!(
        prune(&store, now, false),
        Err(StoreError::Locked { .. })
    ));
    assert!(
        store.unlock(false).expect("unlock").is_empty(),
        "live: kept"
    );
    let removed = store.unlock(true).expect("unlock --force");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].2, cairn::store::lock::Liveness::Live);
}

/// Where a test store lives, for each kind of backend.
struct Place {
    kind: &'static str,
    dir: tempfile::TempDir,
    s3: Option<S3Server>,
}

impl Place {
    fn new(kind: &'static str) -> Place {
        let dir = tempfile::tempdir().expect("dir");
        if kind == "git" {
            git2::Repository::init(dir.path()).expect("git init");
        }
        let s3 = (kind == "s3").then(s3_server);
        Place { kind, dir, s3 }
    }

    fn backend(&self) -> Box<dyn Backend> {
        match self.kind {
            "local" => Box::new(LocalBackend::new(self.dir.path().join("store"))),
            "git" => Box::new(
                cairn::store::git::GitBackend::open(self.dir.path(), "refs/cairn/store", None)
                    .expect("git backend"),
            ),
            "s3" => {
                let server = self.s3.as_ref().expect("server");
                Box::new(
                    cairn::store::s3::S3Backend::new(&cairn::store::s3::S3Settings {
                        bucket: "backups".into(),
                        prefix: "acme/".into(),
                        region: None,
                        endpoint: Some(server.endpoint.clone()),
                        access_key_id: S3_KEY_ID.into(),
                        secret_access_key: S3_SECRET.into(),
                    })
                    .expect("S3 backend"),
                )
            }
            other => panic!("no backend {other}"),
        }
    }
}

#[rstest::rstest]
fn snapshots_round_trip_through_every_backend(#[values("local", "git", "s3")] kind: &'static str) {
    use cairn::ops::prune::prune;
    let place = Place::new(kind);
    let dir = &place.dir;
    let master = MasterKey::generate().expect("key");
    let store = Store::init(place.backend(), master.clone()).expect("init");
    store
        .add_key_file(
            "pw",
            "ops",
            cairn::store::keys::KdfParams::insecure_for_tests(),
            "now",
        )
        .expect("key file");
    let mut model: BTreeMap<String, Vec<u8>> =
        (0..5000).map(|n| (id(n), record(&id(n), 0))).collect();
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", model.clone().into_iter().map(Ok))
        .expect("write");
    let (first, first_manifest) = finish(writer);
    let mut writer =
        SnapshotWriter::new(&store, "acme", Some((&first, &first_manifest))).expect("writer");
    writer
        .changes(
            "Account",
            [
                Change::Delete(id(3)),
                Change::Upsert(id(7), record(&id(7), 1)),
                Change::Upsert(id(9000), record(&id(9000), 1)),
            ],
        )
        .expect("changes");
    let (second, _) = finish(writer);
    model.remove(&id(3));
    model.insert(id(7), record(&id(7), 1));
    model.insert(id(9000), record(&id(9000), 1));

    // Reopened from scratch, with a passphrase: everything reads back.
    let reopened = Store::open_with_passphrase(place.backend(), "pw").expect("reopen");
    let manifest = load_manifest(&reopened, &second).expect("manifest");
    assert_eq!(read_all(&reopened, &manifest, "Account"), model);
    assert_eq!(reopened.list_snapshots().expect("list").len(), 2);
    reopened
        .backend()
        .delete(&cairn::store::snapshot_path(&first))
        .expect("forget");
    prune(&reopened, cairn::time::now_ms(), false).expect("prune");
    assert_eq!(
        read_all(&reopened, &manifest, "Account"),
        model,
        "pruning kept what the second snapshot uses"
    );
    let report =
        cairn::ops::check::check(&reopened, cairn::ops::check::ReadData::All).expect("check");
    assert!(!report.has_errors(), "{:?}", report.findings);
    if let Some(server) = &place.s3 {
        let bucket = server._root.path().join("backups/acme");
        assert!(
            bucket.join("config").is_file(),
            "the objects are in the S3 server's bucket, under the prefix"
        );
        assert!(bucket.join("snapshots").join(&second).is_file());
    }
    if kind == "git" {
        let repo = git2::Repository::open(dir.path()).expect("repo");
        assert!(
            repo.head().is_err(),
            "the store ref leaves the branches alone"
        );
        assert!(
            std::fs::read_dir(dir.path())
                .expect("dir")
                .all(|e| e.expect("entry").file_name() == ".git"),
            "and the work tree"
        );
    }
}

#[test]
fn check_names_a_damaged_manifest_and_the_blobs_it_can_no_longer_vouch_for() {
    use cairn::ops::check::{ReadData, Severity, check};
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(local(dir.path()), MasterKey::generate().expect("key")).expect("init");
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object("Account", (0..300).map(|n| Ok((id(n), record(&id(n), 0)))))
        .expect("write");
    let (snapshot, _) = finish(writer);
    let path = cairn::store::snapshot_path(&snapshot);
    let original = store.backend().get(&path).expect("get").expect("exists");
    for at in [0, 8, original.len() / 2, original.len() - 1] {
        let mut damaged = original.clone();
        damaged[at] ^= 0x10;
        store.backend().put(&path, &damaged).expect("damage");
        let report = check(&store, ReadData::All).expect("check");
        let finding = report
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .unwrap_or_else(|| panic!("byte {at}: no error in {:?}", report.findings));
        assert!(
            finding
                .what
                .contains(&format!("snapshot {snapshot} cannot be read")),
            "{}",
            finding.what
        );
        assert_eq!(finding.affects, vec![format!("snapshot {snapshot}")]);
        // Its segments now belong to no readable snapshot: reported, never silently deleted.
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.what.contains("belong to no snapshot"))
        );
        let refused = cairn::ops::prune::prune(&store, cairn::time::now_ms(), false);
        assert!(
            matches!(refused, Err(StoreError::BadManifest { .. })),
            "prune must not guess what an unreadable manifest needs"
        );
    }
    store.backend().put(&path, &original).expect("repair");
    assert!(!check(&store, ReadData::All).expect("check").has_errors());
}

/// Two runners' clones write to the git store at once and both push: the second push is
/// rejected, fetches, merges and pushes again, and a third clone sees every object of both
/// (and not what one of them deleted). Where both wrote one path (the same content sealed
/// twice), the merge keeps one copy instead of failing.
#[test]
fn git_stores_of_two_runners_merge_on_push_and_keep_each_others_objects() {
    use cairn::store::git::{GitBackend, GitRemote};
    let root = tempfile::tempdir().expect("dir");
    let git = common::git;
    git(root.path(), &["init", "--quiet", "--bare", "remote.git"]);
    let clone = |name: &str| {
        git(root.path(), &["clone", "--quiet", "remote.git", name]);
        let dir = root.path().join(name);
        GitBackend::open(
            &dir,
            "refs/cairn/store",
            Some(GitRemote {
                name: "origin".into(),
                push: true,
            }),
        )
        .expect("git backend")
    };
    let seed = clone("seed");
    seed.put("config", b"store").expect("put");
    seed.put("data/00/old", b"old").expect("put");
    assert!(seed.publish().expect("push").is_some());

    let a = clone("a");
    let b = clone("b");
    assert_eq!(a.get("config").expect("get"), Some(b"store".to_vec()));
    a.put("data/aa/from-a", b"a").expect("put");
    a.put("snapshots/same", b"sealed by a").expect("put");
    b.put("data/bb/from-b", b"b").expect("put");
    b.put("snapshots/same", b"sealed by b").expect("put");
    b.delete("data/00/old").expect("prune on one side");
    a.publish().expect("a pushes first");
    b.publish().expect("b is rejected, merges and pushes");

    let reader = clone("reader");
    let listed = reader.list("").expect("list");
    assert_eq!(
        listed,
        [
            "config",
            "data/aa/from-a",
            "data/bb/from-b",
            "snapshots/same"
        ],
        "both runners' objects, without the one b deleted"
    );
    assert_eq!(
        reader.get("snapshots/same").expect("get"),
        Some(b"sealed by b".to_vec()),
        "where both wrote one path, the merging runner's copy is kept"
    );
    // The runner that pushed first catches up on its next open.
    let a_again = GitBackend::open(
        &root.path().join("a"),
        "refs/cairn/store",
        Some(GitRemote {
            name: "origin".into(),
            push: true,
        }),
    )
    .expect("reopen");
    assert_eq!(a_again.list("").expect("list"), listed);
}

/// A process killed while moving the store's ref leaves git's lock file behind; the next
/// writer finds it stale and removes it, instead of failing every write from then on.
#[test]
fn a_ref_lock_left_by_a_killed_writer_does_not_block_the_store() {
    use cairn::store::backend::Backend;
    use cairn::store::git::GitBackend;
    let root = tempfile::tempdir().expect("dir");
    common::git(root.path(), &["init", "--quiet", "repo"]);
    let dir = root.path().join("repo");
    let store = GitBackend::open(&dir, "refs/cairn/store", None).expect("git backend");
    store.put("config", b"store").expect("put");

    let lock = dir.join(".git/refs/cairn/store.lock");
    let file = std::fs::File::create(&lock).expect("lock file");
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    file.set_modified(an_hour_ago).expect("age the lock");
    drop(file);

    store
        .put("data/00/after", b"after")
        .expect("a write after the kill");
    assert!(!lock.exists(), "the stale lock is gone");
    assert_eq!(
        store.get("data/00/after").expect("get"),
        Some(b"after".to_vec())
    );
}
