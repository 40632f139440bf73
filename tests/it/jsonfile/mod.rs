//! The backup engine with a second connector (`connector.rs`: a directory of JSON files) that
//! nothing outside this folder knows: a full backup, an incremental of edits, a deletion and a
//! new record, the diff between them, search over what was backed up, and a restore of an edit
//! and of deleted records (a parent and a child that looks it up), all through the same
//! engines and snapshot code Salesforce uses.

mod connector;

use std::collections::BTreeMap;

use cairn::backup::{BackupOptions, backup};
use cairn::diff::Kind;
use cairn::restore::{self, Chosen, Schemas};
use cairn::search::{SearchIndex, SearchRequest, SnapshotVersions};
use cairn::snapshot::ObjectReader;
use cairn::snapshot::reader::find_record;
use cairn::source::Connector;
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::crypto::MasterKey;
use serde_json::{Value, json};

use connector::JsonFiles;

const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

fn write(dir: &std::path::Path, object: &str, records: Value) {
    std::fs::write(
        dir.join(format!("{object}.json")),
        serde_json::to_vec(&json!({ "records": records })).expect("JSON"),
    )
    .expect("write the object's file");
}

fn at(ms: i64) -> String {
    cairn::time::format_datetime_z(ms)
}

/// Id → the record's Name, as the snapshot holds it.
fn names(
    store: &Store,
    manifest: &cairn::snapshot::SnapshotManifest,
    object: &str,
) -> BTreeMap<String, String> {
    ObjectReader::new(store, object, &manifest.objects[object])
        .map(|record| {
            let (id, body) = record.expect("record");
            let value: Value = serde_json::from_slice(&body).expect("body");
            (id, value["Name"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_second_connector_backs_up_diffs_searches_and_restores_through_the_same_engines() {
    let files = tempfile::tempdir().expect("files");
    let data = files.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    write(
        &data,
        "Plant",
        json!([
            {"Id": "p1", "Name": "Fern", "Created": T0 - 9 * HOUR, "Modified": T0 - 9 * HOUR},
            {"Id": "p2", "Name": "Cactus", "Created": T0 - 8 * HOUR, "Modified": T0 - 8 * HOUR},
            {"Id": "p3", "Name": "Orchid", "Created": T0 - 7 * HOUR, "Modified": T0 - 2 * HOUR},
        ]),
    );
    write(
        &data,
        "Pot",
        json!([{"Id": "q1", "Name": "Terracotta", "PlantId": "p2", "Created": T0 - HOUR, "Modified": T0 - HOUR}]),
    );
    let source = JsonFiles::new(data.clone());
    let store_dir = files.path().join("store");
    let store = Store::init(
        Box::new(LocalBackend::new(&store_dir)),
        MasterKey::generate().expect("key"),
    )
    .expect("store");
    let options = BackupOptions::new("garden");

    let first = backup(&source, &store, &options, None, &at(T0))
        .await
        .expect("the first backup");
    assert_eq!(first.full, ["Plant", "Pot"]);
    assert_eq!(first.manifest.source.kind, "jsonfile");
    assert_eq!(
        names(&store, &first.manifest, "Plant"),
        BTreeMap::from([
            ("p1".into(), "Fern".into()),
            ("p2".into(), "Cactus".into()),
            ("p3".into(), "Orchid".into()),
        ])
    );

    // An edit, a deletion (kept as a tombstone, as sources with a recycle bin do) and a new
    // record, all after the first backup.
    write(
        &data,
        "Plant",
        json!([
            {"Id": "p1", "Name": "Maidenhair Fern", "Created": T0 - 9 * HOUR, "Modified": T0 + HOUR},
            {"Id": "p2", "Name": "Cactus", "Created": T0 - 8 * HOUR, "Modified": T0 + HOUR, "Deleted": true},
            {"Id": "p3", "Name": "Orchid", "Created": T0 - 7 * HOUR, "Modified": T0 - 2 * HOUR},
            {"Id": "p4", "Name": "Bonsai", "Created": T0 + HOUR, "Modified": T0 + HOUR},
        ]),
    );
    let second = backup(
        &source,
        &store,
        &options,
        Some((&first.snapshot, &first.manifest)),
        &at(T0 + 2 * HOUR),
    )
    .await
    .expect("the incremental");
    assert_eq!(second.incremental, ["Plant", "Pot"], "{:?}", second.objects);
    let plant = second
        .objects
        .iter()
        .find(|o| o.object == "Plant")
        .expect("Plant ran");
    assert_eq!((plant.added, plant.modified, plant.deleted), (1, 1, 1));

    // The diff reads what changed.
    let mut changes = Vec::new();
    let stats = cairn::diff::diff(
        &store,
        &first.manifest,
        &second.manifest,
        None,
        true,
        &mut |c| changes.push((c.object, c.id, c.change)),
    )
    .expect("diff");
    assert_eq!(
        changes,
        [
            ("Plant".to_string(), "p1".to_string(), Kind::Modified),
            ("Plant".to_string(), "p2".to_string(), Kind::Deleted),
            ("Plant".to_string(), "p4".to_string(), Kind::Added),
        ]
    );
    assert_eq!(stats["Pot"].changed(), 0);

    // Search finds what the backups hold.
    let index = SearchIndex::empty(&store).expect("index");
    let mut writer = index.writer().expect("writer");
    let mut blocks = index.blocks(&second.snapshot, T0).expect("blocks");
    for (object, entry) in &second.manifest.objects {
        for record in ObjectReader::new(&store, object, entry) {
            let (id, body) = record.expect("record");
            blocks
                .add_record(&mut writer, object, &id, &body)
                .expect("add");
        }
    }
    blocks.finish(&mut writer).expect("blocks");
    writer.commit().expect("commit");
    let found = index
        .search(
            &SearchRequest::new("maidenhair", 10),
            &mut SnapshotVersions::new(&store, Vec::new()),
        )
        .expect("search");
    let hits = found.hits;
    assert_eq!((hits.len(), found.matched), (1, 1));
    assert_eq!(
        (hits[0].object.as_str(), hits[0].id.as_str()),
        ("Plant", "p1")
    );

    // The deleted record is still in the first snapshot, and gone from the second.
    assert!(
        find_record(&store, &second.manifest.objects["Plant"], "p2")
            .expect("read")
            .is_none()
    );

    // The pot that held the cactus goes too; a restore from the first snapshot puts the fern's
    // name back and creates the cactus and its pot again, the pot looking up the new cactus.
    write(
        &data,
        "Pot",
        json!([{"Id": "q1", "Name": "Terracotta", "PlantId": "p2", "Created": T0 - HOUR, "Modified": T0 + 3 * HOUR, "Deleted": true}]),
    );
    let mut schemas = Schemas::new();
    let mut chosen = Vec::new();
    for (object, ids) in [("Plant", ["p1", "p2"].as_slice()), ("Pot", &["q1"])] {
        let entry = &first.manifest.objects[object];
        let schema = store
            .get_blob(entry.schema.as_ref().expect("a schema document"))
            .expect("schema");
        let schema: Value = serde_json::from_slice(&schema).expect("schema JSON");
        schemas.insert(object.to_string(), source.field_infos(&schema));
        for id in ids {
            let body = find_record(&store, entry, id)
                .expect("read")
                .expect("in the snapshot");
            let Value::Object(record) = serde_json::from_slice(&body).expect("body") else {
                panic!("{object} {id} is not an object");
            };
            chosen.push(Chosen {
                object: object.to_string(),
                id: id.to_string(),
                record,
            });
        }
    }
    let plan = restore::plan(&source, &chosen, &schemas, None, false, &BTreeMap::new())
        .await
        .expect("plan");
    assert_eq!(
        (
            plan.count("create"),
            plan.count("update"),
            plan.count("unchanged")
        ),
        (2, 1, 0),
        "{:?}",
        plan.steps
    );
    let mut journal = restore::RunJournal::start(&store, "garden").expect("journal");
    let result = restore::apply(&source, &plan, &schemas, None, &mut journal)
        .await
        .expect("apply");
    // The journal remembers what was created: planned again, nothing is created twice.
    let runs = restore::journal::runs(&store, "garden").expect("journals");
    let again = restore::plan(
        &source,
        &chosen,
        &schemas,
        None,
        false,
        &restore::journal::id_map(&runs),
    )
    .await
    .expect("plan again");
    assert_eq!(again.count("create"), 0, "{:?}", again.steps);
    assert!(result.failed.is_empty(), "{:?}", result.failed);
    assert_eq!(result.updated, [("Plant".to_string(), "p1".to_string())]);
    let created: BTreeMap<&str, &str> = result
        .created
        .iter()
        .map(|(_, old, new)| (old.as_str(), new.as_str()))
        .collect();
    let live = |object: &str| -> Vec<Value> {
        let text = std::fs::read(data.join(format!("{object}.json"))).expect("file");
        let file: Value = serde_json::from_slice(&text).expect("JSON");
        file["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter(|r| r["Deleted"] != true)
            .cloned()
            .collect()
    };
    let plants = live("Plant");
    let by_id = |id: &str| plants.iter().find(|r| r["Id"] == id).cloned();
    assert_eq!(by_id("p1").expect("p1")["Name"], "Fern");
    assert_eq!(
        by_id(created["p2"]).expect("the new cactus")["Name"],
        "Cactus"
    );
    let pots = live("Pot");
    assert_eq!(pots.len(), 1, "{pots:?}");
    assert_eq!(pots[0]["Id"], created["q1"]);
    assert_eq!(
        pots[0]["PlantId"], created["p2"],
        "the pot looks up the new cactus"
    );
}

/// What cannot be written back is said, not attempted: records of an object none of whose
/// fields can be set on create (a history object) are skipped with why, and the fields a
/// record created again cannot get back (audit fields) are listed per object.
#[tokio::test]
async fn what_a_restore_cannot_create_is_skipped_or_listed_with_why() {
    use cairn::source::FieldInfo;
    let files = tempfile::tempdir().expect("files");
    write(files.path(), "PlantHistory", json!([]));
    write(files.path(), "Plant", json!([]));
    let source = JsonFiles::new(files.path().to_path_buf());
    let info = |createable: bool| FieldInfo {
        createable,
        updateable: createable,
        reference_to: Vec::new(),
    };
    let mut schemas = Schemas::new();
    schemas.insert(
        "PlantHistory".into(),
        [("Id", false), ("Field", false), ("OldValue", false)]
            .into_iter()
            .map(|(name, c)| (name.to_string(), info(c)))
            .collect(),
    );
    schemas.insert(
        "Plant".into(),
        [("Id", false), ("Name", true), ("CreatedDate", false)]
            .into_iter()
            .map(|(name, c)| (name.to_string(), info(c)))
            .collect(),
    );
    let record = |value: Value| match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    };
    let chosen = vec![
        Chosen {
            object: "PlantHistory".into(),
            id: "h1".into(),
            record: record(json!({"Id": "h1", "Field": "Name", "OldValue": "Fern"})),
        },
        Chosen {
            object: "Plant".into(),
            id: "p9".into(),
            record: record(
                json!({"Id": "p9", "Name": "Fern", "CreatedDate": "2026-01-01T00:00:00.000Z"}),
            ),
        },
    ];
    let plan = restore::plan(&source, &chosen, &schemas, None, false, &BTreeMap::new())
        .await
        .expect("plan");
    let skipped: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            restore::Step::Skipped { id, why, .. } => Some((id.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", plan.steps);
    assert_eq!(skipped[0].0, "h1");
    assert!(
        skipped[0].1.contains("cannot be created again"),
        "{}",
        skipped[0].1
    );
    assert_eq!(plan.count("create"), 1, "{:?}", plan.steps);
    assert_eq!(
        plan.not_restorable
            .get("Plant")
            .map(|f| f.iter().collect::<Vec<_>>()),
        Some(vec![&"CreatedDate".to_string()])
    );
    assert!(!plan.not_restorable.contains_key("PlantHistory"));
}
