//! A backup killed at any moment (SIGKILL, no chance to clean up) never damages the store: it
//! opens, `check --read-data` finds no errors, and the newest snapshot that was finished reads
//! back exactly. The test runs its own binary as the writer and kills it at random times.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn::ops::check::{ReadData, Severity, check};
use cairn::snapshot::writer::load_manifest;
use cairn::snapshot::{Change, ObjectReader, Outcome, SnapshotWriter, Source};
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::keys::{encode_raw_key, raw_key};
use cairn_sim::org::Rng;

const BASE_RECORDS: u64 = 20_000;
/// Snapshot times encode their generation: generation g is taken at minute g.
const EPOCH: &str = "2026-01-01T00:00:00Z";

fn id(n: u64) -> String {
    format!("001{n:012}AAA")
}

fn body(n: u64, generation: u64) -> Vec<u8> {
    format!(
        "{{\"Id\":\"{}\",\"generation\":{generation},\"pad\":\"{}\"}}",
        id(n),
        "z".repeat(150)
    )
    .into_bytes()
}

/// The changes of one generation: the same for writer and checker.
fn changes(generation: u64) -> BTreeMap<String, Change> {
    let mut rng = Rng::new(generation);
    let mut changes = BTreeMap::new();
    for _ in 0..400 {
        let n = rng.below(BASE_RECORDS + 2_000);
        let change = if rng.below(6) == 0 {
            Change::Delete(id(n))
        } else {
            Change::Upsert(id(n), body(n, generation))
        };
        changes.insert(id(n), change);
    }
    changes
}

fn model_at(generation: u64) -> BTreeMap<String, Vec<u8>> {
    let mut model: BTreeMap<String, Vec<u8>> =
        (0..BASE_RECORDS).map(|n| (id(n), body(n, 0))).collect();
    for g in 1..=generation {
        for change in changes(g).into_values() {
            match change {
                Change::Upsert(key, value) => {
                    model.insert(key, value);
                }
                Change::Delete(key) => {
                    model.remove(&key);
                }
            }
        }
    }
    model
}

fn time_of(generation: u64) -> String {
    cairn::time::format_datetime_z(
        cairn::time::parse_datetime(EPOCH).unwrap_or(0) + generation as i64 * 60_000,
    )
}

fn generation_of(time: &str) -> u64 {
    ((cairn::time::parse_datetime(time).unwrap_or(0)
        - cairn::time::parse_datetime(EPOCH).unwrap_or(0))
        / 60_000) as u64
}

/// The writer: runs only when the crash test starts it, and writes generations until killed.
#[test]
fn crash_child_writer() {
    let (Ok(dir), Ok(key)) = (
        std::env::var("CAIRN_CRASH_STORE"),
        std::env::var("CAIRN_CRASH_KEY"),
    ) else {
        return;
    };
    let store = Store::open(
        Box::new(LocalBackend::new(dir)),
        raw_key(&key).expect("key"),
    )
    .expect("open");
    let (mut parent_id, mut parent) = newest(&store);
    let mut generation = generation_of(&parent.time);
    loop {
        generation += 1;
        let mut writer = SnapshotWriter::new(&store, "acme", Some((&parent_id, &parent)))
            .expect("writer")
            .max_deltas(2);
        writer
            .changes("Account", changes(generation).into_values())
            .expect("changes");
        let (id, manifest) = writer
            .finish(
                &time_of(generation),
                Source::default(),
                None,
                Outcome::Complete,
            )
            .expect("finish");
        parent_id = id;
        parent = manifest;
    }
}

fn newest(store: &Store) -> (String, cairn::snapshot::SnapshotManifest) {
    store
        .list_snapshots()
        .expect("list")
        .into_iter()
        .map(|id| {
            let manifest = load_manifest(store, &id).expect("every finished manifest reads");
            (id, manifest)
        })
        .max_by_key(|(_, m)| generation_of(&m.time))
        .expect("at least the base snapshot")
}

#[test]
fn killing_the_writer_at_random_points_never_damages_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let master = cairn::store::crypto::MasterKey::generate().expect("key");
    let store = Store::init(Box::new(LocalBackend::new(dir.path())), master.clone()).expect("init");
    let mut writer = SnapshotWriter::new(&store, "acme", None).expect("writer");
    writer
        .full_object(
            "Account",
            (0..BASE_RECORDS).map(|n| Ok((id(n), body(n, 0)))),
        )
        .expect("base");
    writer
        .finish(&time_of(0), Source::default(), None, Outcome::Complete)
        .expect("finish");

    let me = std::env::current_exe().expect("the test binary");
    let mut rng = Rng::new(2026);
    let mut generations_seen = std::collections::BTreeSet::new();
    for trial in 0..24 {
        let mut child = Command::new(&me)
            .args([
                "crash::crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CAIRN_CRASH_STORE", dir.path())
            .env("CAIRN_CRASH_KEY", encode_raw_key(&master))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        // Killing at a random moment is the point of this test, not a way to wait for something.
        // The window is wide enough that a child (which first starts and reads every manifest)
        // finishes a generation or more before most kills on a slow, shared runner.
        std::thread::sleep(Duration::from_millis(30 + rng.below(600)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        let store = Store::open(Box::new(LocalBackend::new(dir.path())), master.clone())
            .expect("the store opens");
        let report = check(&store, ReadData::All).expect("check runs");
        let errors: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "trial {trial}: {errors:?}");
        let (_, manifest) = newest(&store);
        let generation = generation_of(&manifest.time);
        generations_seen.insert(generation);
        let read: BTreeMap<String, Vec<u8>> =
            ObjectReader::new(&store, "Account", &manifest.objects["Account"])
                .map(|r| r.expect("record"))
                .collect();
        assert_eq!(
            read,
            model_at(generation),
            "trial {trial}: generation {generation} reads back exactly"
        );
    }
    assert!(
        generations_seen.len() > 3,
        "the kills landed at different points: {generations_seen:?}"
    );
}
