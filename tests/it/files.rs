//! File bodies from the simulator into the store: every version's and attachment's bytes,
//! checked against the org's checksums; an incremental downloads only the new and changed
//! bodies; a share of the budget bounds the downloads and what waits is fetched next; `check`
//! and `prune` follow the chunks.

use std::collections::BTreeMap;

use crate::common;

use base64::Engine as _;
use cairn::backup::{BackupOptions, BackupOutcome, FilesOptions, backup};
use cairn::snapshot::files::{BodyReader, FileBody};
use cairn::snapshot::{ObjectReader, Outcome, SnapshotManifest};
use cairn::source::salesforce::{FetchSettings, SalesforceConnector};
use cairn::store::Store;
use cairn::store::backend::LocalBackend;
use cairn::store::crypto::MasterKey;
use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

/// 2025-06-15T12:00:00Z
const T0: i64 = 1_749_988_800_000;
const HOUR: i64 = 3_600_000;

fn at(ms: i64) -> String {
    cairn::time::format_datetime_z(ms)
}

fn options(files: FilesOptions) -> BackupOptions {
    BackupOptions {
        include: [
            "Account",
            "ContentVersion",
            "Attachment",
            "ContentDocument",
            "Document",
        ]
        .map(String::from)
        .to_vec(),
        files: Some(files),
        ..BackupOptions::new("acme")
    }
}

async fn simulator(records: usize, api_max: u64) -> Simulator {
    simulator_with(OrgOptions {
        seed: 4,
        population: Population::spread(records),
        api_max,
        clock: Clock::fixed(T0),
        ..OrgOptions::default()
    })
    .await
}

async fn simulator_with(org: OrgOptions) -> Simulator {
    Simulator::start(
        SimOptions {
            org,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator")
}

fn connector(sim: &Simulator) -> SalesforceConnector {
    SalesforceConnector::new(common::org::client(sim), FetchSettings::new("62.0"))
}

fn new_store(dir: &std::path::Path) -> Store {
    Store::init(
        Box::new(LocalBackend::new(dir)),
        MasterKey::generate().expect("key"),
    )
    .expect("store")
}

/// A body object's rows by Id.
fn bodies(store: &Store, manifest: &SnapshotManifest, object: &str) -> BTreeMap<String, FileBody> {
    let entry = manifest.objects.get(object).expect("the body object");
    ObjectReader::new(store, object, entry)
        .map(|row| {
            let (id, bytes) = row.expect("row");
            (id, FileBody::parse(&bytes).expect("a body row"))
        })
        .collect()
}

fn read_back(store: &Store, body: &FileBody) -> Vec<u8> {
    BodyReader::new(store, body)
        .collect::<Result<Vec<_>, _>>()
        .expect("the body reads back")
        .concat()
}

/// The org's records of an object with these fields, by Id.
async fn org_records(sim: &Simulator, soql: &str) -> BTreeMap<String, Value> {
    crate::gitops::soql(sim, soql)
        .await
        .into_iter()
        .map(|r| (r["Id"].as_str().expect("Id").to_string(), r))
        .collect()
}

async fn org_body(sim: &Simulator, object: &str, id: &str, field: &str) -> Vec<u8> {
    reqwest::Client::new()
        .get(format!(
            "{}/services/data/v62.0/sobjects/{object}/{id}/{field}",
            sim.url()
        ))
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("body")
        .bytes()
        .await
        .expect("bytes")
        .to_vec()
}

#[tokio::test]
async fn every_body_is_kept_and_an_incremental_downloads_only_what_changed() {
    let sim = simulator(1500, 1_000_000).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let client = connector(&sim);

    let first = backup(
        &client,
        &store,
        &options(FilesOptions::default()),
        None,
        &at(T0),
    )
    .await
    .expect("first backup");
    assert_eq!(first.manifest.outcome, Outcome::Complete);
    let versions = org_records(
        &sim,
        "SELECT Id, Checksum, ContentSize, PathOnClient, ContentDocumentId FROM ContentVersion",
    )
    .await;
    let attachments = org_records(&sim, "SELECT Id, BodyLength, Name FROM Attachment").await;
    assert!(versions.len() > 20 && attachments.len() > 10);
    let held = bodies(&store, &first.manifest, "ContentVersion.VersionData");
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        versions.keys().collect::<Vec<_>>()
    );
    for (id, version) in &versions {
        let body = &held[id];
        assert!(body.is_held(), "{id}: {body:?}");
        assert_eq!(body.md5.as_deref(), version["Checksum"].as_str());
        assert_eq!(Some(body.size), version["ContentSize"].as_u64());
        assert_eq!(Some(body.name.as_str()), version["PathOnClient"].as_str());
        assert_eq!(
            body.parent.as_deref(),
            version["ContentDocumentId"].as_str()
        );
    }
    // A few bodies byte for byte.
    for id in versions.keys().take(3) {
        let org = org_body(&sim, "ContentVersion", id, "VersionData").await;
        assert_eq!(read_back(&store, &held[id]), org);
    }
    let held_attachments = bodies(&store, &first.manifest, "Attachment.Body");
    assert_eq!(held_attachments.len(), attachments.len());
    // The Documents tab's files, known by their size alone (Document has no checksum).
    let documents = org_records(&sim, "SELECT Id, BodyLength, Name, FolderId FROM Document").await;
    assert!(!documents.is_empty());
    let held_documents = bodies(&store, &first.manifest, "Document.Body");
    assert_eq!(
        held_documents.keys().collect::<Vec<_>>(),
        documents.keys().collect::<Vec<_>>()
    );
    for (id, document) in &documents {
        let body = &held_documents[id];
        assert_eq!(Some(body.size), document["BodyLength"].as_u64());
        assert_eq!(body.parent.as_deref(), document["FolderId"].as_str());
        assert_eq!(
            read_back(&store, body),
            org_body(&sim, "Document", id, "Body").await
        );
    }
    let pruned = cairn::ops::prune::prune(&store, cairn::time::now_ms(), true).expect("prune");
    assert_eq!(pruned.deleted, 0, "after the first: {pruned:?}");
    let downloads = (versions.len() + attachments.len() + documents.len()) as u64;
    assert_eq!(first.files.downloaded, downloads);
    assert_eq!(first.files.api_calls, downloads, "one call per body");

    // A new version of one document (an edit of its latest), and one attachment deleted.
    let (edited_id, edited) = versions.iter().next().expect("a version");
    let mut bytes = org_body(&sim, "ContentVersion", edited_id, "VersionData").await;
    bytes.extend_from_slice(b" -- signed");
    let document = edited["ContentDocumentId"].as_str().expect("document");
    let created = common::org::admin(
        &sim,
        Method::POST,
        "records/ContentVersion",
        json!({
            "ContentDocumentId": document,
            "PathOnClient": "signed.pdf",
            "Title": "signed",
            "VersionData": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }),
    )
    .await;
    let new_version = created["id"].as_str().expect("id").to_string();
    // Made in the very millisecond the first backup's window ended (the org's clock has not
    // moved): the incremental counts it new, so the count check agrees.
    common::org::admin(
        &sim,
        Method::POST,
        "records/Account",
        json!({"Name": "Edge"}),
    )
    .await;

    let (gone, _) = attachments.iter().next().expect("an attachment");
    common::org::admin(
        &sim,
        Method::DELETE,
        &format!("records/Attachment/{gone}"),
        json!({}),
    )
    .await;
    common::org::admin(&sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;

    let second = backup(
        &client,
        &store,
        &options(FilesOptions::default()),
        Some((&first.snapshot, &first.manifest)),
        &at(T0 + HOUR),
    )
    .await
    .expect("incremental");
    assert_eq!(second.manifest.outcome, Outcome::Complete);
    for run in &second.objects {
        assert!(!run.full, "{run:?}");
    }
    let accounts = second.objects.iter().find(|r| r.object == "Account");
    assert_eq!(accounts.map(|r| r.added), Some(1));
    assert_eq!(second.files.downloaded, 1, "{:?}", second.files);
    assert_eq!(second.files.api_calls, 1);
    assert_eq!(second.files.deleted, 1);
    let held = bodies(&store, &second.manifest, "ContentVersion.VersionData");
    assert_eq!(read_back(&store, &held[&new_version]), bytes);
    assert_eq!(held.len(), versions.len() + 1);
    let held_attachments = bodies(&store, &second.manifest, "Attachment.Body");
    assert!(!held_attachments.contains_key(gone.as_str()));
    assert_eq!(held_attachments.len(), attachments.len() - 1);

    // check --read-data reads every chunk; prune frees nothing a snapshot needs.
    let report = cairn::ops::check::check(&store, cairn::ops::check::ReadData::All).expect("check");
    assert!(!report.has_errors(), "{:?}", report.findings);
    let pruned = cairn::ops::prune::prune(&store, cairn::time::now_ms(), false).expect("prune");
    assert_eq!(pruned.deleted, 0, "{pruned:?}");
    assert_eq!(read_back(&store, &held[&new_version]), bytes);
}

#[tokio::test]
async fn downloads_keep_to_their_share_of_the_budget_and_what_waits_comes_next() {
    // 90% of 1,000 daily calls for the task; 5% of that for files: 45 downloads a run.
    let sim = simulator(1500, 1_000).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let client = connector(&sim);
    let files = FilesOptions {
        budget_percent: 5,
        ..FilesOptions::default()
    };
    let first = backup(&client, &store, &options(files.clone()), None, &at(T0))
        .await
        .expect("first backup");
    let Outcome::Partial { reason } = &first.manifest.outcome else {
        panic!("a partial backup: {:?}", first.manifest.outcome);
    };
    assert!(reason.contains("wait for the next run"), "{reason}");
    assert!(
        reason.contains("files.budgetPercent 5%"),
        "the reason names the setting: {reason}"
    );
    assert!(first.files.api_calls <= 45 + 3, "{:?}", first.files);
    assert!(first.files.waiting > 0, "{:?}", first.files);
    let waiting_rows = |manifest: &SnapshotManifest| {
        [
            "ContentVersion.VersionData",
            "Attachment.Body",
            "Document.Body",
        ]
        .iter()
        .flat_map(|o| bodies(&store, manifest, o).into_values())
        .filter(FileBody::waiting)
        .count() as u64
    };
    assert_eq!(waiting_rows(&first.manifest), first.files.waiting);
    // The records are all there: files never starve them.
    let versions = org_records(&sim, "SELECT Id FROM ContentVersion").await;
    assert_eq!(
        common::org::records(&store, &first.manifest)["ContentVersion"].len(),
        versions.len()
    );

    // The next run, with nothing changed in the org, fetches what waited.
    common::org::admin(&sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
    let second = backup(
        &client,
        &store,
        &options(files),
        Some((&first.snapshot, &first.manifest)),
        &at(T0 + HOUR),
    )
    .await
    .expect("second backup");
    assert_eq!(
        second.manifest.outcome,
        Outcome::Complete,
        "{:?}",
        second.files
    );
    assert_eq!(second.files.downloaded, first.files.waiting);
    assert_eq!(second.files.waiting, 0);
    assert_eq!(waiting_rows(&second.manifest), 0);
    for object in [
        "ContentVersion.VersionData",
        "Attachment.Body",
        "Document.Body",
    ] {
        for body in bodies(&store, &second.manifest, object).values() {
            assert!(body.is_held(), "{body:?}");
            read_back(&store, body);
        }
    }
}

#[tokio::test]
async fn bodies_over_the_size_limit_are_left_out_and_said_so() {
    let sim = simulator(1500, 1_000_000).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let client = connector(&sim);
    let limit = 64 * 1024;
    let files = FilesOptions {
        max_size: Some(limit),
        ..FilesOptions::default()
    };
    let outcome = backup(&client, &store, &options(files), None, &at(T0))
        .await
        .expect("backup");
    // Left out by the task's own setting: the backup is complete.
    assert_eq!(outcome.manifest.outcome, Outcome::Complete);
    let versions = org_records(&sim, "SELECT Id, ContentSize FROM ContentVersion").await;
    let large = versions
        .values()
        .filter(|v| v["ContentSize"].as_u64().is_some_and(|s| s > limit))
        .count();
    assert!(large > 0 && large < versions.len());
    let held = bodies(&store, &outcome.manifest, "ContentVersion.VersionData");
    let left_out: Vec<&FileBody> = held.values().filter(|b| !b.is_held()).collect();
    assert_eq!(left_out.len(), large);
    for body in left_out {
        assert!(!body.waiting(), "not fetched again until the limit changes");
        assert!(body.size > limit);
    }
    let (object, why) = outcome
        .coverage
        .files_left_out
        .iter()
        .find(|(o, _)| o == "ContentVersion.VersionData")
        .expect("the coverage report says so");
    assert_eq!(object, "ContentVersion.VersionData");
    assert_eq!(
        why,
        &format!("{large} left out: over files.maxSizeMb (64.0 KB)")
    );
}

/// Every link of every document, as the org lists them one document at a time.
async fn org_links(sim: &Simulator) -> BTreeMap<String, Value> {
    let documents = org_records(sim, "SELECT Id FROM ContentDocument").await;
    let mut links = BTreeMap::new();
    for document in documents.keys() {
        links.extend(
            org_records(
                sim,
                &format!(
                    "SELECT Id, ContentDocumentId, LinkedEntityId, ShareType FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
                ),
            )
            .await,
        );
    }
    links
}

/// The snapshot's links by Id, as rows.
fn held_links(store: &Store, manifest: &SnapshotManifest) -> BTreeMap<String, Value> {
    let entry = manifest
        .objects
        .get("ContentDocumentLink")
        .expect("links are in the snapshot");
    ObjectReader::new(store, "ContentDocumentLink", entry)
        .map(|row| {
            let (id, bytes) = row.expect("row");
            (id, serde_json::from_slice(&bytes).expect("a JSON row"))
        })
        .collect()
}

/// The org's clock moved on an hour (to `T0 + hours` hours), then a backup on `parent`.
async fn backup_hours_later(
    sim: &Simulator,
    store: &Store,
    options: &BackupOptions,
    parent: &BackupOutcome,
    hours: i64,
) -> BackupOutcome {
    common::org::admin(sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
    let outcome = backup(
        &connector(sim),
        store,
        options,
        Some((&parent.snapshot, &parent.manifest)),
        &at(T0 + hours * HOUR),
    )
    .await
    .expect("a backup on the last one");
    assert_eq!(outcome.manifest.outcome, Outcome::Complete);
    outcome
}

/// With "Query All Files" the org lists links without a filter: a backup asks only for the
/// links changed since the last one, and finds a removed link (which leaves no trace) by the
/// count check, which then reads them all.
#[tokio::test]
async fn links_follow_each_change_with_query_all_files() {
    links_follow_each_change(true).await;
}

/// Without it, links are listed only by document: every backup reads them all.
#[tokio::test]
async fn links_follow_each_change_listed_by_document() {
    links_follow_each_change(false).await;
}

async fn links_follow_each_change(query_all_files: bool) {
    let sim = simulator_with(OrgOptions {
        seed: 4,
        population: Population::spread(1500),
        api_max: 1_000_000,
        clock: Clock::fixed(T0),
        query_all_files,
        ..OrgOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let client = connector(&sim);
    let options = BackupOptions {
        include: ["Account", "ContentDocument", "ContentDocumentLink"]
            .map(String::from)
            .to_vec(),
        ..BackupOptions::new("acme")
    };
    let first = backup(&client, &store, &options, None, &at(T0))
        .await
        .expect("first backup");
    assert_eq!(first.manifest.outcome, Outcome::Complete);
    assert!(
        !first
            .coverage
            .skipped
            .iter()
            .any(|(o, _)| o == "ContentDocumentLink"),
        "{:?}",
        first.coverage.skipped
    );
    let links = org_links(&sim).await;
    assert!(links.len() > 40, "{}", links.len());
    let held = held_links(&store, &first.manifest);
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        links.keys().collect::<Vec<_>>()
    );
    for (id, link) in &links {
        assert_eq!(held[id]["LinkedEntityId"], link["LinkedEntityId"], "{id}");
        assert_eq!(held[id]["ContentDocumentId"], link["ContentDocumentId"]);
    }
    let links_run = |outcome: &BackupOutcome| {
        outcome
            .objects
            .iter()
            .find(|r| r.object == "ContentDocumentLink")
            .expect("links were fetched")
            .clone()
    };

    // One document shared with one more account.
    let (document, account) = {
        let any = links.values().next().expect("a link");
        let accounts = org_records(&sim, "SELECT Id FROM Account LIMIT 50").await;
        let linked: Vec<&str> = links
            .values()
            .filter(|l| l["ContentDocumentId"] == any["ContentDocumentId"])
            .filter_map(|l| l["LinkedEntityId"].as_str())
            .collect();
        let account = accounts
            .keys()
            .find(|a| !linked.contains(&a.as_str()))
            .expect("an account the document is not shared with")
            .clone();
        (
            any["ContentDocumentId"]
                .as_str()
                .expect("document")
                .to_string(),
            account,
        )
    };
    let shared = common::org::admin(
        &sim,
        Method::POST,
        "records/ContentDocumentLink",
        json!({"ContentDocumentId": document, "LinkedEntityId": account, "ShareType": "V", "Visibility": "AllUsers"}),
    )
    .await;
    let shared = shared["id"].as_str().expect("a new link").to_string();
    let second = backup_hours_later(&sim, &store, &options, &first, 1).await;
    let held = held_links(&store, &second.manifest);
    assert!(held.contains_key(&shared), "the new link is kept");
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        org_links(&sim).await.keys().collect::<Vec<_>>()
    );
    let run = links_run(&second);
    match query_all_files {
        true => assert_eq!(
            (run.full, run.fetched, run.added),
            (false, 1, 1),
            "only the new link is fetched: {run:?}"
        ),
        false => assert!(
            run.full
                && run
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains("by document")),
            "{run:?}"
        ),
    }

    // One link taken away: no query shows it, but the org counts one link fewer.
    let unshared = links
        .iter()
        .find(|(_, l)| l["ShareType"] == "V" && l["ContentDocumentId"] != document.as_str())
        .map(|(id, _)| id.clone())
        .expect("a link to a record");
    common::org::admin(
        &sim,
        Method::DELETE,
        &format!("records/ContentDocumentLink/{unshared}"),
        json!({}),
    )
    .await;
    let third = backup_hours_later(&sim, &store, &options, &second, 2).await;
    let held = held_links(&store, &third.manifest);
    assert!(held.contains_key(&shared), "the new link is still kept");
    assert!(!held.contains_key(&unshared), "the removed link is gone");
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        org_links(&sim).await.keys().collect::<Vec<_>>()
    );
    let run = links_run(&third);
    let expected_reason = match query_all_files {
        true => "count check",
        false => "by document",
    };
    assert!(
        run.full
            && run
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(expected_reason)),
        "{run:?}"
    );
}

/// A removed link shows only in the count: with the count check off, each backup reads them
/// all rather than keep a removed one.
#[tokio::test]
async fn links_are_read_whole_when_the_count_check_is_off() {
    let sim = simulator(1500, 1_000_000).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let options = BackupOptions {
        include: ["ContentDocument", "ContentDocumentLink"]
            .map(String::from)
            .to_vec(),
        count_check: false,
        ..BackupOptions::new("acme")
    };
    let first = backup(&connector(&sim), &store, &options, None, &at(T0))
        .await
        .expect("first backup");
    let second = backup_hours_later(&sim, &store, &options, &first, 1).await;
    let reasons: BTreeMap<&str, Option<&str>> = second
        .objects
        .iter()
        .map(|r| (r.object.as_str(), r.reason.as_deref()))
        .collect();
    assert_eq!(reasons["ContentDocument"], None, "{reasons:?}");
    assert!(
        reasons["ContentDocumentLink"].is_some_and(|r| r.contains("count check is off")),
        "{reasons:?}"
    );
}

/// Grants or withdraws the backup user's "Query All Files", then lets an hour pass.
async fn query_all_files(sim: &Simulator, on: bool) {
    common::org::admin(
        sim,
        Method::PUT,
        "permissions",
        json!({"queryAllFiles": on}),
    )
    .await;
    common::org::admin(sim, Method::POST, "clock", json!({"advanceMs": HOUR})).await;
}

/// Without "Query All Files" the org lists only the files the backup user can see, with no
/// error: coverage says so, and once the permission is granted the next backup fetches the
/// file objects in full and finds what was out of sight.
#[tokio::test]
async fn files_out_of_the_users_sight_are_said_so_and_come_once_visible() {
    let sim = simulator_with(OrgOptions {
        seed: 4,
        population: Population::spread(1500),
        api_max: 1_000_000,
        clock: Clock::fixed(T0),
        query_all_files: false,
        ..OrgOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let store = new_store(dir.path());
    let client = connector(&sim);
    let private = common::org::admin(
        &sim,
        Method::POST,
        "files",
        json!({"size": 5000, "name": "salaries.xlsx", "private": true}),
    )
    .await;
    let private = private["id"].as_str().expect("a version").to_string();

    let first = backup(
        &client,
        &store,
        &options(FilesOptions::default()),
        None,
        &at(T0),
    )
    .await
    .expect("first backup");
    let not_visible = |coverage: &cairn::source::Coverage| {
        coverage
            .files_left_out
            .iter()
            .find(|(what, _)| what == "not visible")
            .map(|(_, why)| why.clone())
    };
    let why = not_visible(&first.coverage).expect("coverage names the files out of sight");
    assert!(why.contains("Query All Files"), "{why}");
    assert!(
        first.coverage.warnings().iter().any(|w| w == &why),
        "{:?}",
        first.coverage.warnings()
    );
    let held = bodies(&store, &first.manifest, "ContentVersion.VersionData");
    assert!(!held.contains_key(&private));

    query_all_files(&sim, true).await;
    let second = backup(
        &client,
        &store,
        &options(FilesOptions::default()),
        Some((&first.snapshot, &first.manifest)),
        &at(T0 + HOUR),
    )
    .await
    .expect("second backup");
    assert_eq!(second.manifest.outcome, Outcome::Complete);
    assert_eq!(not_visible(&second.coverage), None);
    let versions = second
        .objects
        .iter()
        .find(|r| r.object == "ContentVersion")
        .expect("versions fetched");
    assert!(versions.full, "{versions:?}");
    let held = bodies(&store, &second.manifest, "ContentVersion.VersionData");
    assert_eq!(held.get(&private).map(|b| b.size), Some(5000));
    assert!(held[&private].is_held());

    // The permission taken away again: the file is out of sight, not deleted, so the file
    // objects stay as the last backup had them and the run says why it is partial.
    query_all_files(&sim, false).await;
    let third = backup(
        &client,
        &store,
        &options(FilesOptions::default()),
        Some((&second.snapshot, &second.manifest)),
        &at(T0 + 2 * HOUR),
    )
    .await
    .expect("third backup");
    let Outcome::Partial { reason } = &third.manifest.outcome else {
        panic!("a partial backup: {:?}", third.manifest.outcome);
    };
    assert!(
        reason.contains("ContentVersion") && reason.contains("Query All Files"),
        "{reason}"
    );
    assert!(!third.objects.iter().any(|r| r.object == "ContentVersion"));
    let held = bodies(&store, &third.manifest, "ContentVersion.VersionData");
    assert!(held.contains_key(&private), "kept, not taken for deleted");
    assert_eq!(
        third.manifest.objects["ContentVersion"].records,
        second.manifest.objects["ContentVersion"].records
    );
}
