//! Diffs between snapshots on the simulator: edits, deletes, undeletes and a new field, across
//! adjacent and non-adjacent snapshots, a compaction and a fresh full backup, always equal to a
//! brute-force comparison of the two snapshots' records.

use crate::common;

use common::org::{Records, admin, connector, records};
use std::collections::{BTreeMap, BTreeSet};

use cairn::backup::{BackupOptions, backup};
use cairn::diff::{self, Kind, RecordChange};
use cairn::snapshot::SnapshotManifest;
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::crypto::MasterKey;
use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

const T0: i64 = 1_749_988_800_000;
const HOUR: i64 = 3_600_000;

/// (object, id, change, changed field names), compared the slow way.
type Line = (String, String, Kind, Vec<String>);

fn brute_force(a: &Records, b: &Records) -> BTreeSet<Line> {
    let mut out = BTreeSet::new();
    let objects: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let empty = BTreeMap::new();
    for object in objects {
        let (x, y) = (
            a.get(object).unwrap_or(&empty),
            b.get(object).unwrap_or(&empty),
        );
        for (id, body) in x {
            match y.get(id) {
                None => {
                    out.insert((object.clone(), id.clone(), Kind::Deleted, vec![]));
                }
                Some(other) if other != body => {
                    let (p, q): (Value, Value) = (
                        serde_json::from_slice(body).expect("json"),
                        serde_json::from_slice(other).expect("json"),
                    );
                    // A field one snapshot lacks (added or removed since) whose value is empty
                    // or false is a schema change, not a change of the record.
                    let empty =
                        |v: Option<&Value>| matches!(v, Some(Value::Null | Value::Bool(false)));
                    let mut names: Vec<String> = p
                        .as_object()
                        .expect("object")
                        .keys()
                        .chain(q.as_object().expect("object").keys())
                        .filter(|k| p.get(*k) != q.get(*k))
                        .filter(|k| {
                            let (before, after) = (p.get(*k), q.get(*k));
                            !(before.is_none() && empty(after) || after.is_none() && empty(before))
                        })
                        .cloned()
                        .collect();
                    names.sort();
                    names.dedup();
                    if !names.is_empty() {
                        out.insert((object.clone(), id.clone(), Kind::Modified, names));
                    }
                }
                Some(_) => {}
            }
        }
        for id in y.keys().filter(|id| !x.contains_key(*id)) {
            out.insert((object.clone(), id.clone(), Kind::Added, vec![]));
        }
    }
    out
}

fn fast(store: &Store, a: &SnapshotManifest, b: &SnapshotManifest) -> (BTreeSet<Line>, bool) {
    let mut lines = BTreeSet::new();
    let stats = diff::diff(store, a, b, None, false, &mut |c: RecordChange| {
        let names = match c.change {
            Kind::Modified => c.fields.iter().map(|f| f.field.clone()).collect(),
            _ => vec![],
        };
        lines.insert((c.object, c.id, c.change, names));
    })
    .expect("diff");
    let incremental = stats.values().any(|s| s.incremental);
    (lines, incremental)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_equal_a_brute_force_comparison() {
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 31,
                population: Population::spread(1500),
                clock: Clock::fixed(T0),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(
        Box::new(LocalBackend::new(dir.path())),
        MasterKey::generate().expect("key"),
    )
    .expect("store");
    let options = BackupOptions {
        full_every_days: 0,
        ..BackupOptions::new("acme")
    };
    let at = |ms: i64| cairn::time::format_datetime_z(ms);
    let client = connector(&sim);
    let s1 = backup(&client, &store, &options, None, &at(T0))
        .await
        .expect("s1");
    let r1 = records(&store, &s1.manifest);

    // Edits, deletes (with master-detail cascades) and a new Lead.
    let accounts: Vec<&String> = r1["Account"].keys().collect();
    for id in accounts.iter().take(6) {
        admin(
            &sim,
            Method::PATCH,
            &format!("records/Account/{id}"),
            json!({"Phone": "+1 555 0100"}),
        )
        .await;
    }
    let contacts: Vec<&String> = r1["Contact"].keys().collect();
    for id in contacts.iter().take(4) {
        admin(
            &sim,
            Method::DELETE,
            &format!("records/Contact/{id}"),
            json!({}),
        )
        .await;
    }
    admin(
        &sim,
        Method::POST,
        "records/Lead",
        json!({"LastName": "New", "Company": "N", "Status": "Open - Not Contacted"}),
    )
    .await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
    let s2 = backup(
        &client,
        &store,
        &options,
        Some((&s1.snapshot, &s1.manifest)),
        &at(T0 + HOUR),
    )
    .await
    .expect("s2");
    let r2 = records(&store, &s2.manifest);

    // An undelete, more edits of the same records, and a new field (a schema change).
    admin(
        &sim,
        Method::POST,
        &format!("records/Contact/{}/undelete", contacts[0]),
        json!({}),
    )
    .await;
    admin(
        &sim,
        Method::PATCH,
        &format!("records/Account/{}", accounts[0]),
        json!({"Name": "Renamed Inc."}),
    )
    .await;
    admin(
        &sim,
        Method::POST,
        "fields/Lead",
        json!({"name": "Region__c", "type": "string"}),
    )
    .await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
    let s3 = backup(
        &client,
        &store,
        &options,
        Some((&s2.snapshot, &s2.manifest)),
        &at(T0 + 2 * HOUR),
    )
    .await
    .expect("s3");
    let r3 = records(&store, &s3.manifest);
    // The same moment, as a fresh full backup (a different base for every object).
    let full = backup(&client, &store, &options, None, &at(T0 + 2 * HOUR))
        .await
        .expect("fresh full");

    for (name, a, ra, b, rb, expect_incremental) in [
        ("s1 -> s2", &s1.manifest, &r1, &s2.manifest, &r2, true),
        ("s2 -> s3", &s2.manifest, &r2, &s3.manifest, &r3, true),
        (
            "s1 -> s3 (non-adjacent)",
            &s1.manifest,
            &r1,
            &s3.manifest,
            &r3,
            true,
        ),
        (
            "s3 -> s1 (backwards)",
            &s3.manifest,
            &r3,
            &s1.manifest,
            &r1,
            true,
        ),
        (
            "s1 -> fresh full",
            &s1.manifest,
            &r1,
            &full.manifest,
            &r3,
            false,
        ),
    ] {
        let (lines, incremental) = fast(&store, a, b);
        assert_eq!(lines, brute_force(ra, rb), "{name}");
        assert!(!lines.is_empty(), "{name}");
        if expect_incremental {
            assert!(incremental, "{name} follows the change");
        }
    }
    let (s2_s3, _) = fast(&store, &s2.manifest, &s3.manifest);
    assert!(
        s2_s3.contains(&("Contact".into(), contacts[0].clone(), Kind::Added, vec![])),
        "the undeleted contact is back"
    );
    // The new, empty field is a schema change, shown once; no Lead is modified by it.
    assert!(
        !s2_s3.iter().any(|(object, ..)| object == "Lead"),
        "{s2_s3:?}"
    );
    let schema = diff::schema_diff(&store, &s2.manifest, &s3.manifest, None).expect("schema diff");
    assert!(
        schema.contains("+++ b/Lead.yaml") && schema.contains("+  name: Region__c"),
        "{schema}"
    );
    assert!(!schema.contains("Account.yaml"), "{schema}");
    // A field's type changes (Text to Long Text Area): the schema diff shows it, records stay.
    admin(
        &sim,
        Method::PATCH,
        "fields/Lead/Region__c",
        json!({"type": "textarea"}),
    )
    .await;
    admin(&sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
    let s4 = backup(
        &client,
        &store,
        &options,
        Some((&s3.snapshot, &s3.manifest)),
        &at(T0 + 3 * HOUR),
    )
    .await
    .expect("s4");
    let schema = diff::schema_diff(&store, &s3.manifest, &s4.manifest, None).expect("schema diff");
    assert!(
        schema.contains("-  type: string") && schema.contains("+  type: textarea"),
        "{schema}"
    );
    let (lines, _) = fast(&store, &s3.manifest, &s4.manifest);
    assert_eq!(lines, brute_force(&r3, &records(&store, &s4.manifest)));
}

/// A chain of deltas folded by compaction, into one delta (small changes) or with the base
/// into a new base (large ones): every diff within the chain equals the brute-force
/// comparison, and a snapshot against its parent reads only its own change across a fold.
#[rstest::rstest]
#[case::small_changes_fold_into_one_delta(50, false)]
#[case::large_changes_fold_into_a_new_base(2, true)]
fn diffs_across_a_compaction_equal_a_brute_force_comparison(
    #[case] every: u32,
    #[case] new_base: bool,
) {
    use cairn::snapshot::{Change, Outcome, SnapshotWriter, Source};
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::init(
        Box::new(LocalBackend::new(dir.path())),
        MasterKey::generate().expect("key"),
    )
    .expect("store");
    let source = || Source {
        kind: "salesforce".into(),
        account: "00D".into(),
        api_version: "62.0".into(),
    };
    let id = |n: u32| format!("001{n:015}");
    let body = |n: u32, g: u32| {
        format!("{{\"Id\":\"{}\",\"Name\":\"n{n}\",\"Gen\":{g}}}", id(n)).into_bytes()
    };
    let mut writer = SnapshotWriter::new(&store, "t", None)
        .expect("writer")
        .max_deltas(2);
    writer
        .full_object("Account", (0..3000).map(|n| Ok((id(n), body(n, 0)))))
        .expect("full");
    let (mut parent_id, mut parent) = writer
        .finish("2026-01-01T00:00:00Z", source(), None, Outcome::Complete)
        .expect("s0");
    let mut chain = vec![parent.clone()];
    for generation in 1..=4u32 {
        let mut writer = SnapshotWriter::new(&store, "t", Some((&parent_id, &parent)))
            .expect("writer")
            .max_deltas(2);
        let mut changes: Vec<Change> = (0..3000)
            .filter(|n| n % (every + generation) == 0)
            .map(|n| Change::Upsert(id(n), body(n, generation)))
            .collect();
        changes.extend(
            (0..3000)
                .filter(|n| n % 997 == generation)
                .map(|n| Change::Delete(id(n))),
        );
        changes.push(Change::Upsert(
            id(5000 + generation),
            body(5000 + generation, generation),
        ));
        changes.sort_by(|a, b| {
            let key = |c: &Change| match c {
                Change::Upsert(i, _) | Change::Delete(i) => i.clone(),
            };
            key(a).cmp(&key(b))
        });
        changes.dedup_by(|a, b| {
            let key = |c: &Change| match c {
                Change::Upsert(i, _) | Change::Delete(i) => i.clone(),
            };
            key(a) == key(b)
        });
        writer.changes("Account", changes).expect("delta");
        let (id_next, next) = writer
            .finish(
                &format!("2026-01-0{}T00:00:00Z", generation + 1),
                source(),
                None,
                Outcome::Complete,
            )
            .expect("snapshot");
        chain.push(next.clone());
        parent_id = id_next;
        parent = next;
    }
    // max_deltas(2): the third delta folded the two before it.
    let folded = &chain[3].objects["Account"];
    assert!(folded.folded.is_some(), "generation 3 was a compaction");
    assert_eq!(folded.base != chain[2].objects["Account"].base, new_base);
    for pair in chain.windows(2) {
        let (_, incremental) = fast(&store, &pair[0], &pair[1]);
        assert!(
            incremental,
            "a snapshot against its parent reads only its change"
        );
    }
    let all: Vec<Records> = chain.iter().map(|m| records(&store, m)).collect();
    for i in 0..chain.len() {
        for j in 0..chain.len() {
            if i == j {
                continue;
            }
            let (lines, _) = fast(&store, &chain[i], &chain[j]);
            assert_eq!(lines, brute_force(&all[i], &all[j]), "snapshot {i} -> {j}");
        }
    }
}
