//! Restore beyond the recycle bin and the journal (those are in `gitops`): restore as code (a
//! `kind: Restore` manifest reviewed in a pull request, planned with the restore's own plan
//! where credentials are, and carried out once by `cairn apply` however often apply runs after
//! it), and what the target org's permissions let a restore write.

use crate::gitops::{
    DAY, Fleet, HOUR, T0, at, count, delete_family, family, fleet_with_acme, run, simulator_of,
    soql, state_file,
};

use crate::common::git;

/// The snapshot ids of task acme, newest last, from the state branch.
fn snapshot_ids(fleet: &Fleet) -> Vec<String> {
    let status: serde_yaml::Value =
        serde_yaml::from_str(&state_file(fleet, "state/acme/status.yaml")).expect("YAML");
    status["snapshots"]
        .as_sequence()
        .expect("snapshots")
        .iter()
        .filter_map(|row| row["id"].as_str().map(str::to_string))
        .collect()
}

fn restore_manifest(id: &str, snapshot: &str, account: &str) -> String {
    format!(
        "apiVersion: cairn/v1\nkind: Restore\nid: {id}\ntask: acme\nsnapshot: {snapshot}\nselect:\n  ids: [{account}]\nwithChildren: 1\nreason: INC-42, the account deleted by mistake\n"
    )
}

/// Removes a file from the remote's state branch, as if the run that wrote it had been killed
/// before its state commit.
fn drop_from_remote_state(fleet: &Fleet, path: &str) {
    let root = fleet.root.path();
    git(
        root,
        &[
            "clone",
            "--quiet",
            "--branch",
            "cairn-state",
            "remote.git",
            "state-edit",
        ],
    );
    let clone = root.join("state-edit");
    git(&clone, &["rm", "--quiet", path]);
    git(
        &clone,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "lose the record",
        ],
    );
    git(&clone, &["push", "--quiet", "origin", "cairn-state"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_manifest_merged_in_a_pull_request_runs_once_across_three_applies() {
    let sim = simulator_of(23, 400).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let snapshot = snapshot_ids(&fleet).pop().expect("a snapshot");
    let (account, contacts, opportunities) = family(&sim).await;
    let name = soql(
        &sim,
        &format!("SELECT Name FROM Account WHERE Id = '{account}'"),
    )
    .await[0]["Name"]
        .as_str()
        .expect("Name")
        .to_string();
    delete_family(&sim, &account, &contacts, &opportunities).await;

    // The pull request: a restore manifest, pinned to the snapshot.
    git(
        &fleet.config(),
        &["checkout", "--quiet", "-b", "restore-acme"],
    );
    fleet.write(
        "restores/bring-back-acme.yaml",
        &restore_manifest("bring-back-acme", &snapshot[..12], &account),
    );
    fleet.commit("Restore the account deleted by mistake");
    let plan = run(&fleet, &["plan", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    for expected in [
        "+ restore bring-back-acme  \"INC-42, the account deleted by mistake\"".to_string(),
        format!("records with Id {account}, with their children, from snapshot"),
        "runs once, at the next apply".into(),
        "| Account: 1 to undelete (original Ids)".into(),
        format!("| Contact: {} to undelete (original Ids)", contacts.len()),
        "| Account 1\n".into(),
        format!("|   └ Contact {} (by AccountId)", contacts.len()),
        "1 restore(s) to carry out".into(),
    ] {
        assert!(
            plan.stdout.contains(&expected),
            "{expected}\n{}",
            plan.stdout
        );
    }
    assert!(
        !plan.stdout.contains(&name),
        "a plan posted on a pull request shows no record values:\n{}",
        plan.stdout
    );
    // A fork's pull request has no secrets: the manifest is still checked and shown.
    let mut no_secrets = fleet.env.clone();
    no_secrets.retain(|(k, _)| k != "CAIRN_PASSPHRASE");
    let unkeyed_plan = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(fleet.config())
        .args(["plan", "--at", &at(T0 + HOUR)])
        .env_remove("CAIRN_KEY")
        .env_remove("CAIRN_PASSPHRASE")
        .env_remove("GITHUB_ACTIONS")
        .envs(no_secrets.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("cairn");
    let unkeyed_out = String::from_utf8_lossy(&unkeyed_plan.stdout);
    assert_eq!(unkeyed_plan.status.code(), Some(2), "{unkeyed_out}");
    assert!(
        unkeyed_out.contains("+ restore bring-back-acme")
            && unkeyed_out.contains("planned against the org where its credentials"),
        "{unkeyed_out}"
    );
    // Nothing was written by planning.
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Account WHERE Id = '{account}'")
        )
        .await,
        0
    );

    // Merged.
    git(&fleet.config(), &["checkout", "--quiet", "main"]);
    git(
        &fleet.config(),
        &["merge", "--quiet", "--ff-only", "restore-acme"],
    );
    git(&fleet.config(), &["push", "--quiet", "origin", "main"]);

    let first = run(&fleet, &["apply", "--at", &at(T0 + HOUR)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // The account, its contacts and opportunities, and what its delete took along (its
    // master-detail invoices): all of them as the plan counted them, all with their own Ids.
    let planned: usize = plan
        .stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("| ")?
                .split_once(" records from snapshot")
        })
        .and_then(|(n, _)| n.parse().ok())
        .expect("the restore's plan counts its records");
    assert!(
        planned >= 1 + contacts.len() + opportunities.len(),
        "{}",
        plan.stdout
    );
    let undeleted = planned;
    assert!(
        first
            .stdout
            .contains("restore  restores/bring-back-acme into acme (org ")
            && first.stdout.contains(&format!(
                "{undeleted} undeleted, 0 created, 0 updated, 0 failed of {planned} records"
            )),
        "{}",
        first.stdout
    );
    let record = state_file(&fleet, "state/acme/restores/bring-back-acme.yaml");
    assert!(record.contains("end: completed"), "{record}");
    assert!(
        record.contains(&format!("undeleted: {undeleted}")),
        "{record}"
    );
    assert!(
        record.contains(&format!("snapshot: {snapshot}")),
        "{record}"
    );
    assert!(!record.contains(&name), "{record}");

    for later in [T0 + 2 * HOUR, T0 + 3 * HOUR] {
        let again = run(&fleet, &["apply", "--at", &at(later)]).await;
        assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
        assert!(
            !again.stdout.contains("bring-back-acme"),
            "{}",
            again.stdout
        );
        assert!(
            again.stdout.contains("nothing committed"),
            "{}",
            again.stdout
        );
    }
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Account WHERE Id = '{account}'")
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Contact WHERE AccountId = '{account}'")
        )
        .await,
        contacts.len(),
        "every contact back once, under its own Id"
    );
    let plan = run(&fleet, &["plan", "--at", &at(T0 + 3 * HOUR)]).await;
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    assert!(!plan.stdout.contains("bring-back-acme"), "{}", plan.stdout);

    // The record lost (a run killed before its state commit): the store's journal knows the
    // restore finished, so the next apply records it and writes nothing into the org.
    drop_from_remote_state(&fleet, "state/acme/restores/bring-back-acme.yaml");
    delete_family(&sim, &account, &contacts, &opportunities).await;
    let recorded = run(&fleet, &["apply", "--at", &at(T0 + 4 * HOUR)]).await;
    assert_eq!(recorded.code, 0, "{}{}", recorded.stdout, recorded.stderr);
    assert!(
        recorded
            .stdout
            .contains("carried out by an earlier run; recorded now"),
        "{}",
        recorded.stdout
    );
    assert_eq!(
        count(
            &sim,
            &format!("SELECT Id FROM Account WHERE Id = '{account}'")
        )
        .await,
        0,
        "a restore manifest never runs twice"
    );
    assert!(
        state_file(&fleet, "state/acme/restores/bring-back-acme.yaml").contains("end: completed")
    );

    // Editing a manifest that ran does nothing, and the plan says so.
    git(&fleet.config(), &["checkout", "--quiet", "-b", "edit"]);
    fleet.write(
        "restores/bring-back-acme.yaml",
        &restore_manifest("bring-back-acme", &snapshot, &account)
            .replace("withChildren: 1", "withChildren: 2"),
    );
    fleet.commit("Edit a restore that ran");
    let plan = run(&fleet, &["plan", "--at", &at(T0 + DAY / 2)]).await;
    assert!(
        plan.stdout.contains("! restore bring-back-acme")
            && plan.stdout.contains("this edit has no effect"),
        "{}",
        plan.stdout
    );
    // A snapshot the task does not have fails the plan, with or without credentials.
    fleet.write(
        "restores/wrong-snapshot.yaml",
        &restore_manifest("wrong-snapshot", "ffff0000", &account),
    );
    let plan = run(&fleet, &["plan", "--at", &at(T0 + DAY / 2)]).await;
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("! cannot run as written: no snapshot `ffff0000`")
            && plan.stdout.contains("1 restore(s) that cannot run"),
        "{}",
        plan.stdout
    );
}

/// Where the org grants "Set Audit Fields upon Record Creation", a record created again gets
/// its CreatedDate back; where it does not, the plan says the field cannot be restored. The
/// target org's permissions decide, not those the backup saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_created_again_keeps_its_created_date_where_the_org_allows_it() {
    use crate::common::org::admin;
    use reqwest::Method;
    use serde_json::json;
    let sim = simulator_of(29, 400).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let (account, contacts, opportunities) = family(&sim).await;
    let created = |rows: Vec<serde_json::Value>| {
        rows[0]["CreatedDate"]
            .as_str()
            .expect("CreatedDate")
            .to_string()
    };
    let original = created(
        soql(
            &sim,
            &format!("SELECT CreatedDate FROM Account WHERE Id = '{account}'"),
        )
        .await,
    );
    delete_family(&sim, &account, &contacts, &opportunities).await;
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;

    let restore = ["restore", "--task", "acme", "--id", account.as_str()];
    let without = run(&fleet, &restore).await;
    assert!(
        without.stdout.contains(
            "cannot get these fields back (not settable on create): CreatedById, CreatedDate"
        ),
        "{}",
        without.stdout
    );

    admin(
        &sim,
        Method::PUT,
        "permissions",
        json!({"setAuditFields": true}),
    )
    .await;
    let plan = run(&fleet, &restore).await;
    assert!(
        !plan.stdout.contains("CreatedDate"),
        "settable now: nothing to say about it\n{}",
        plan.stdout
    );
    let args: Vec<&str> = restore.iter().copied().chain(["--yes"]).collect();
    let applied = run(&fleet, &args).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let new_id = applied
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("created Account {account} -> ")))
        .expect("the new Id")
        .trim()
        .to_string();
    let again = created(
        soql(
            &sim,
            &format!("SELECT CreatedDate FROM Account WHERE Id = '{new_id}'"),
        )
        .await,
    );
    assert_eq!(
        again, original,
        "the record created again keeps its CreatedDate"
    );
}

/// Files whose records were deleted and purged come back with their bodies: an Attachment
/// on its record, and a ContentVersion, whose document is gone, as a new document published
/// on its record again; the bytes are those of the backup, streamed from its chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_created_again_get_their_bodies_back() {
    use crate::common::org::admin;
    use reqwest::Method;
    use serde_json::json;
    let sim = simulator_of(31, 600).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let body = |object: &'static str, id: String| {
        let sim = &sim;
        async move {
            reqwest::Client::new()
                .get(format!(
                    "{}/services/data/v62.0/sobjects/{object}/{id}/{}",
                    sim.url(),
                    if object == "ContentVersion" {
                        "VersionData"
                    } else {
                        "Body"
                    }
                ))
                .bearer_auth(&sim.credentials.access_token)
                .send()
                .await
                .expect("a body")
                .bytes()
                .await
                .expect("bytes")
                .to_vec()
        }
    };
    let attachment = soql(&sim, "SELECT Id, ParentId FROM Attachment LIMIT 1").await;
    let attachment_id = attachment[0]["Id"].as_str().expect("Id").to_string();
    let parent = attachment[0]["ParentId"]
        .as_str()
        .expect("parent")
        .to_string();
    let version = soql(
        &sim,
        "SELECT Id, ContentDocumentId, FirstPublishLocationId FROM ContentVersion WHERE IsLatest = true LIMIT 1",
    )
    .await;
    let version_id = version[0]["Id"].as_str().expect("Id").to_string();
    let document = version[0]["ContentDocumentId"]
        .as_str()
        .expect("doc")
        .to_string();
    let published = version[0]["FirstPublishLocationId"]
        .as_str()
        .expect("published on a record")
        .to_string();
    let tab_document = soql(&sim, "SELECT Id, FolderId FROM Document LIMIT 1").await;
    let document_id = tab_document[0]["Id"].as_str().expect("Id").to_string();
    let folder = tab_document[0]["FolderId"]
        .as_str()
        .expect("a folder")
        .to_string();
    let attachment_bytes = body("Attachment", attachment_id.clone()).await;
    let version_bytes = body("ContentVersion", version_id.clone()).await;
    let document_bytes = body("Document", document_id.clone()).await;
    assert!(!attachment_bytes.is_empty() && !version_bytes.is_empty());
    assert!(!document_bytes.is_empty());

    admin(
        &sim,
        Method::DELETE,
        &format!("records/Attachment/{attachment_id}"),
        json!({}),
    )
    .await;
    admin(
        &sim,
        Method::DELETE,
        &format!("records/ContentDocument/{document}"),
        json!({}),
    )
    .await;
    admin(
        &sim,
        Method::DELETE,
        &format!("records/Document/{document_id}"),
        json!({}),
    )
    .await;
    admin(&sim, Method::POST, "recycle-bin/empty", json!({})).await;

    for (object, id, bytes) in [
        ("Attachment", &attachment_id, &attachment_bytes),
        ("ContentVersion", &version_id, &version_bytes),
        ("Document", &document_id, &document_bytes),
    ] {
        let applied = run(&fleet, &["restore", "--task", "acme", "--id", id, "--yes"]).await;
        assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
        let new_id = applied
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("created {object} {id} -> ")))
            .unwrap_or_else(|| panic!("a new {object}:\n{}", applied.stdout))
            .trim()
            .to_string();
        assert_eq!(
            &body(object, new_id.clone()).await,
            bytes,
            "{object}'s bytes"
        );
        match object {
            "Attachment" => {
                let again = soql(
                    &sim,
                    &format!("SELECT ParentId FROM Attachment WHERE Id = '{new_id}'"),
                )
                .await;
                assert_eq!(again[0]["ParentId"].as_str(), Some(parent.as_str()));
            }
            "Document" => {
                let again = soql(
                    &sim,
                    &format!("SELECT FolderId FROM Document WHERE Id = '{new_id}'"),
                )
                .await;
                assert_eq!(again[0]["FolderId"].as_str(), Some(folder.as_str()));
            }
            _ => {
                let again = soql(
                    &sim,
                    &format!("SELECT ContentDocumentId FROM ContentVersion WHERE Id = '{new_id}'"),
                )
                .await;
                let new_document = again[0]["ContentDocumentId"].as_str().expect("a document");
                assert_ne!(new_document, document, "a new document");
                let links = soql(
                    &sim,
                    &format!(
                        "SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{new_document}'"
                    ),
                )
                .await;
                assert!(
                    links
                        .iter()
                        .any(|l| l["LinkedEntityId"].as_str() == Some(published.as_str())),
                    "published on its record again: {links:?}"
                );
            }
        }
    }
}

/// `cairn export --files` writes every held body as OBJECT/ID/NAME, byte for byte, and indexes
/// every file the snapshot knows in files.csv.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_files_writes_every_body_and_an_index() {
    let sim = simulator_of(37, 600).await;
    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    let out = tempfile::tempdir().expect("dir");
    let out_dir = out.path().to_str().expect("a path");
    let exported = run(
        &fleet,
        &["export", "--task", "acme", "--files", "--out", out_dir],
    )
    .await;
    assert_eq!(exported.code, 0, "{}{}", exported.stdout, exported.stderr);
    let versions = soql(
        &sim,
        "SELECT Id, PathOnClient, Checksum FROM ContentVersion",
    )
    .await;
    let attachments = soql(&sim, "SELECT Id, Name FROM Attachment").await;
    let documents = soql(&sim, "SELECT Id FROM Document").await;
    let index = std::fs::read_to_string(out.path().join("files.csv")).expect("files.csv");
    let mut rows = csv::Reader::from_reader(index.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("a row")).collect();
    assert_eq!(
        rows.len(),
        versions.len() + attachments.len() + documents.len()
    );
    assert!(
        exported
            .stdout
            .starts_with(&format!("{} files of snapshot", rows.len())),
        "{}",
        exported.stdout
    );
    for version in &versions {
        let id = version["Id"].as_str().expect("Id");
        let row = rows.iter().find(|r| &r[1] == id).expect("indexed");
        assert_eq!(&row[0], "ContentVersion");
        assert_eq!(Some(&row[5]), version["Checksum"].as_str());
        let bytes = std::fs::read(out.path().join(&row[6])).expect("the file");
        assert_eq!(
            cairn::store::crypto::hex(&<md5::Md5 as md5::Digest>::digest(&bytes)),
            version["Checksum"].as_str().expect("checksum"),
        );
        assert!(row[6].ends_with(version["PathOnClient"].as_str().expect("name")));
    }
}

/// Deletes a record and empties the recycle bin: it is gone for good, as after 15 days.
async fn purge(sim: &cairn_sim::server::Simulator, object: &str, id: &str) {
    crate::gitops::delete_records(sim, object, &[id.to_string()]).await;
    crate::common::org::admin(
        sim,
        reqwest::Method::POST,
        "recycle-bin/empty",
        serde_json::json!({}),
    )
    .await;
}

/// `cairn restore --id ID --with-children 1 --yes` for task acme.
async fn restore_with_children(fleet: &Fleet, id: &str) -> crate::gitops::Ran {
    run(
        fleet,
        &[
            "restore",
            "--task",
            "acme",
            "--id",
            id,
            "--with-children",
            "1",
            "--yes",
        ],
    )
    .await
}

/// A deleted account, gone from the recycle bin, comes back with its files: its attachments
/// created again with their bytes, and every file that was shared with it (not only the ones
/// first published on it) linked to the new account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_comes_back_with_its_files_and_links() {
    use crate::common::org::admin;
    use reqwest::Method;
    use serde_json::json;
    use std::collections::BTreeSet;
    let sim = simulator_of(41, 600).await;
    // An account with an attachment and a file published elsewhere, shared with it too.
    let attachments = soql(&sim, "SELECT Id, ParentId FROM Attachment").await;
    let account = attachments
        .iter()
        .find_map(|a| a["ParentId"].as_str().filter(|p| p.starts_with("001")))
        .expect("an account with an attachment")
        .to_string();
    let version = soql(
        &sim,
        "SELECT ContentDocumentId, FirstPublishLocationId FROM ContentVersion WHERE IsLatest = true LIMIT 1",
    )
    .await;
    let shared_document = version[0]["ContentDocumentId"]
        .as_str()
        .expect("a document")
        .to_string();
    assert_ne!(
        version[0]["FirstPublishLocationId"].as_str(),
        Some(account.as_str())
    );
    admin(
        &sim,
        Method::POST,
        "records/ContentDocumentLink",
        json!({"ContentDocumentId": shared_document, "LinkedEntityId": account, "ShareType": "V", "Visibility": "AllUsers"}),
    )
    .await;
    let linked_documents = |account: String| {
        let sim = &sim;
        async move {
            soql(
                sim,
                &format!(
                    "SELECT ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId = '{account}'"
                ),
            )
            .await
            .iter()
            .filter_map(|l| l["ContentDocumentId"].as_str().map(str::to_string))
            .collect::<BTreeSet<String>>()
        }
    };
    let documents = linked_documents(account.clone()).await;
    assert!(documents.contains(&shared_document), "{documents:?}");
    let names = |parent: String| {
        let sim = &sim;
        async move {
            soql(
                sim,
                &format!("SELECT Name, BodyLength FROM Attachment WHERE ParentId = '{parent}'"),
            )
            .await
            .iter()
            .map(|a| (a["Name"].to_string(), a["BodyLength"].to_string()))
            .collect::<BTreeSet<(String, String)>>()
        }
    };
    let attached = names(account.clone()).await;
    assert!(!attached.is_empty());

    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    purge(&sim, "Account", &account).await;
    assert!(linked_documents(account.clone()).await.is_empty());

    let applied = restore_with_children(&fleet, &account).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let new_account = applied
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("created Account {account} -> ")))
        .unwrap_or_else(|| panic!("a new account:\n{}", applied.stdout))
        .trim()
        .to_string();
    assert_eq!(
        names(new_account.clone()).await,
        attached,
        "its attachments"
    );
    assert_eq!(
        linked_documents(new_account).await,
        documents,
        "every file it was linked to"
    );
}

/// A deleted file, gone from the recycle bin, comes back whole from its document: every version
/// in one new document, shared again with every record it was shared with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_comes_back_with_its_versions_and_links() {
    use crate::common::org::admin;
    use reqwest::Method;
    use serde_json::json;
    use std::collections::BTreeSet;
    let sim = simulator_of(43, 600).await;
    let accounts: Vec<String> = soql(&sim, "SELECT Id FROM Account LIMIT 2")
        .await
        .iter()
        .filter_map(|a| a["Id"].as_str().map(str::to_string))
        .collect();
    let added = admin(
        &sim,
        Method::POST,
        "files",
        json!({"size": 300_000, "name": "contract.pdf", "parentId": accounts[0]}),
    )
    .await;
    let document = added["contentDocumentId"]
        .as_str()
        .expect("a document")
        .to_string();
    admin(
        &sim,
        Method::POST,
        &format!("files/{document}/versions"),
        json!({}),
    )
    .await;
    admin(
        &sim,
        Method::POST,
        "records/ContentDocumentLink",
        json!({"ContentDocumentId": document, "LinkedEntityId": accounts[1], "ShareType": "V", "Visibility": "AllUsers"}),
    )
    .await;
    let versions_of = |document: String| {
        let sim = &sim;
        async move {
            soql(
                sim,
                &format!(
                    "SELECT Checksum FROM ContentVersion WHERE ContentDocumentId = '{document}' ORDER BY VersionNumber"
                ),
            )
            .await
            .iter()
            .filter_map(|v| v["Checksum"].as_str().map(str::to_string))
            .collect::<Vec<String>>()
        }
    };
    let linked_to = |document: String| {
        let sim = &sim;
        async move {
            soql(
                sim,
                &format!(
                    "SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
                ),
            )
            .await
            .iter()
            .filter_map(|l| l["LinkedEntityId"].as_str().map(str::to_string))
            .collect::<BTreeSet<String>>()
        }
    };
    let versions = versions_of(document.clone()).await;
    assert_eq!(versions.len(), 2);
    let links = linked_to(document.clone()).await;
    assert_eq!(links.len(), 3, "its owner and two accounts: {links:?}");

    let fleet = fleet_with_acme(&sim).await;
    assert_eq!(run(&fleet, &["apply", "--at", &at(T0)]).await.code, 0);
    purge(&sim, "ContentDocument", &document).await;
    assert!(versions_of(document.clone()).await.is_empty());

    let applied = restore_with_children(&fleet, &document).await;
    let new_versions: Vec<&str> = applied
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("created ContentVersion "))
        .collect();
    assert_eq!(
        new_versions.len(),
        2,
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    let new_version = new_versions[0]
        .split(" -> ")
        .nth(1)
        .expect("a new Id")
        .trim();
    let made = soql(
        &sim,
        &format!("SELECT ContentDocumentId FROM ContentVersion WHERE Id = '{new_version}'"),
    )
    .await;
    let new_document = made[0]["ContentDocumentId"]
        .as_str()
        .expect("a document")
        .to_string();
    assert_eq!(
        versions_of(new_document.clone()).await,
        versions,
        "one document, both versions:\n{}",
        applied.stdout
    );
    assert_eq!(linked_to(new_document).await, links, "shared as it was");
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(!applied.stdout.contains("FAILED"), "{}", applied.stdout);
    assert!(
        applied
            .stdout
            .contains("the ContentVersion records restored with it make a new one"),
        "{}",
        applied.stdout
    );
}
