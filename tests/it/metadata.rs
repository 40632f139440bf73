//! Metadata backup end to end: the simulated org's Metadata API, the real `cairn` binary,
//! and what a reviewer sees — the change summary, `cairn diff`, and with `commitSource` the
//! components' files on the state branch.

use crate::common;
use crate::gitops::{DAY, T0, at, fleet_with_acme_and, run, simulator_of, state_file};

use common::git;
use common::org::admin;
use reqwest::Method;
use serde_json::{Value, json};

/// The Metadata API calls the org has served, by operation.
async fn metadata_calls(sim: &cairn_sim::server::Simulator) -> Value {
    admin(sim, Method::GET, "state", Value::Null).await["metadataCalls"].clone()
}

/// `cairn export --metadata` of the latest snapshot: where it wrote, and what it said.
async fn export_metadata(fleet: &crate::gitops::Fleet) -> (std::path::PathBuf, String) {
    let out = fleet.root.path().join("exported");
    let export = run(
        fleet,
        &[
            "export",
            "--metadata",
            "--out",
            out.to_str().expect("UTF-8"),
        ],
    )
    .await;
    assert_eq!(export.code, 0, "{}{}", export.stdout, export.stderr);
    (out, export.stdout)
}

fn calls(counts: &Value, operation: &str) -> u64 {
    counts[operation].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apex_edit_and_a_deleted_flow_show_in_the_summary_the_diff_and_git() {
    let sim = simulator_of(41, 300).await;
    let fleet = fleet_with_acme_and(
        &sim,
        "metadata:\n  commitSource: true\n",
        "Back up acme's metadata, source committed",
    )
    .await;
    let first = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let files = git(
        &fleet.config(),
        &["ls-tree", "-r", "--name-only", "cairn-state"],
    );
    assert!(
        files.contains("state/acme/metadata/classes/AccountService.cls\n"),
        "{files}"
    );
    assert!(
        files.contains("state/acme/metadata/flows/Lead_Assignment.flow-meta.xml\n"),
        "{files}"
    );
    assert!(
        files.contains(
            "state/acme/metadata/reports/Sales_Reports/Pipeline_By_Stage.report-meta.xml\n"
        ),
        "{files}"
    );
    // In Salesforce's source format: an object decomposed, a field in a file of its own.
    assert!(
        files.contains("state/acme/metadata/objects/Invoice__c/fields/Amount__c.field-meta.xml\n")
            && files
                .contains("state/acme/metadata/objects/Invoice__c/Invoice__c.object-meta.xml\n")
            && files.contains(
                "state/acme/metadata/objects/Invoice__c/validationRules/Name_Required.validationRule-meta.xml\n"
            ),
        "{files}"
    );
    let coverage = state_file(&fleet, "state/acme/coverage.yaml");
    assert!(
        coverage.contains("metadataTypes:\n- ApexClass\n"),
        "{coverage}"
    );

    // An admin edits a class and deletes a flow.
    let before = state_file(&fleet, "state/acme/metadata/classes/AccountService.cls");
    let edited = before.replacen('{', "{\n    // Discounts need a manager's approval.", 1);
    assert_ne!(edited, before);
    admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
    admin(
        &sim,
        Method::PUT,
        "metadata/ApexClass/AccountService",
        json!({ "source": edited }),
    )
    .await;
    admin(
        &sim,
        Method::DELETE,
        "metadata/Flow/Lead_Assignment",
        Value::Null,
    )
    .await;
    let calls_before = metadata_calls(&sim).await;
    let second = run(&fleet, &["apply", "--at", &at(T0 + DAY)]).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let calls_after = metadata_calls(&sim).await;
    // An incremental retrieves only the one changed component: one retrieve.
    assert_eq!(
        calls(&calls_after, "retrieve") - calls(&calls_before, "retrieve"),
        1,
        "{calls_before} -> {calls_after}"
    );

    let status = state_file(&fleet, "state/acme/status.yaml");
    let snapshot = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("- id: "))
        .expect("latest snapshot")
        .to_string();
    let summary = state_file(&fleet, &format!("state/acme/diffs/{snapshot}.md"));
    assert!(summary.contains("## Metadata changes"), "{summary}");
    assert!(
        summary.contains("- M `ApexClass:AccountService` changed: `classes/AccountService.cls`"),
        "{summary}"
    );
    assert!(
        summary.contains("- - `Flow:Lead_Assignment` deleted"),
        "{summary}"
    );

    // git diff of the state branch shows the edited line and the flow's file removed.
    let git_diff = git(
        &fleet.config(),
        &[
            "diff",
            "cairn-state~1",
            "cairn-state",
            "--",
            "state/acme/metadata",
        ],
    );
    assert!(
        git_diff.contains("+    // Discounts need a manager's approval."),
        "{git_diff}"
    );
    assert!(
        git_diff.contains("deleted file mode 100644\n")
            && git_diff.contains("state/acme/metadata/flows/Lead_Assignment.flow-meta.xml"),
        "{git_diff}"
    );

    let diff = run(&fleet, &["diff", "--object", "Metadata", "--values"]).await;
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
    assert!(
        diff.stdout
            .contains("M ApexClass:AccountService  classes/AccountService.cls"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("        +    // Discounts need a manager's approval."),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("- Flow:Lead_Assignment"),
        "{}",
        diff.stdout
    );

    // The deleted flow comes back from the first snapshot: the plan, validated by the org,
    // then the deploy.
    let has_flow = |sim: &cairn_sim::server::Simulator| {
        sim.state
            .metadata
            .read()
            .expect("metadata")
            .iter()
            .any(|c| c.kind == "Flow" && c.full_name == "Lead_Assignment")
    };
    assert!(!has_flow(&sim));
    let args = [
        "restore",
        "--task",
        "acme",
        "--snapshot",
        "latest~1",
        "--metadata",
        "Flow:Lead_Assignment",
        "--metadata",
        "ApexClass:AccountService",
    ];
    let plan = run(&fleet, &args).await;
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("+ Flow:Lead_Assignment  create (the org no longer has it)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("~ ApexClass:AccountService  update: classes/AccountService.cls\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(": Succeeded (2 components)"),
        "{}",
        plan.stdout
    );
    assert!(!has_flow(&sim), "a plan changes nothing");
    let applied = run(&fleet, &[&args[..], &["--yes"]].concat()).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(applied.stdout.contains("Restored."), "{}", applied.stdout);
    assert!(has_flow(&sim));
    let class = sim
        .state
        .metadata
        .read()
        .expect("metadata")
        .iter()
        .find(|c| c.kind == "ApexClass" && c.full_name == "AccountService")
        .map(|c| c.source.clone());
    assert_eq!(
        class.as_deref(),
        Some(before.as_str()),
        "the class as it was"
    );

    // Components are not records: a record restore of them says how they go back.
    let as_records = run(
        &fleet,
        &["restore", "--task", "acme", "--object", "Metadata"],
    )
    .await;
    assert_ne!(as_records.code, 0);
    assert!(
        as_records.stderr.contains("--metadata Type:FullName"),
        "{}",
        as_records.stderr
    );

    // The export is a metadata-format tree with its package.xml.
    let (out, _) = export_metadata(&fleet).await;
    let package = std::fs::read_to_string(out.join("package.xml")).expect("package.xml");
    assert!(
        package.contains("<members>AccountService</members>")
            && package.contains("<name>ApexClass</name>"),
        "{package}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("classes/AccountService.cls")).expect("class"),
        edited
    );
    assert!(
        !out.join("flows/Lead_Assignment.flow").exists(),
        "deleted in the latest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieves_over_the_limit_are_split_and_nothing_is_skipped_unseen() {
    let sim = simulator_of(43, 200).await;
    // Text no compressor shrinks much: a component too large for any retrieve on its own.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let noise: String = (0..24_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'!' + (seed % 90) as u8)
        })
        .collect();
    admin(
        &sim,
        Method::PUT,
        "metadata/StaticResource/Huge_Resource",
        json!({ "source": noise }),
    )
    .await;
    admin(
        &sim,
        Method::PUT,
        "metadata-limits",
        json!({"maxFiles": 10_000, "maxZippedBytes": 12_000}),
    )
    .await;
    let fleet = fleet_with_acme_and(
        &sim,
        "metadata:\n  enabled: true\n",
        "Back up acme's metadata",
    )
    .await;
    let applied = run(&fleet, &["apply", "--at", &at(T0)]).await;
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains("metadata component StaticResource:Huge_Resource is not in the backup"),
        "{}",
        applied.stdout
    );
    let coverage = state_file(&fleet, "state/acme/coverage.yaml");
    assert!(
        coverage.contains(
            "componentsLeftOut:\n  StaticResource:Huge_Resource: 'too large to retrieve on its own"
        ),
        "{coverage}"
    );
    let retrieves = calls(&metadata_calls(&sim).await, "retrieve");
    assert!(
        retrieves >= 3,
        "the one planned chunk was split: {retrieves} retrieves"
    );

    // Incrementals that do not touch it (the second's window no longer reaches back to its
    // last change) still say it is missing.
    for day in [1, 2] {
        admin(&sim, Method::POST, "clock", json!({"advanceMs": DAY})).await;
        let next = run(&fleet, &["apply", "--at", &at(T0 + day * DAY)]).await;
        assert_eq!(next.code, 0, "{}{}", next.stdout, next.stderr);
        assert!(next.stdout.contains("incremental"), "{}", next.stdout);
    }
    let coverage = state_file(&fleet, "state/acme/coverage.yaml");
    assert!(
        coverage.contains("StaticResource:Huge_Resource: 'too large to retrieve on its own"),
        "{coverage}"
    );

    // Every other component the org lists is in the backup, files and all.
    let (out, export) = export_metadata(&fleet).await;
    let listed: Vec<(String, String)> = sim
        .state
        .metadata
        .read()
        .expect("metadata")
        .iter()
        .filter(|c| c.kind != "CustomField" && c.full_name != "Huge_Resource")
        .map(|c| (c.kind.clone(), c.file_name.clone()))
        .collect();
    assert!(
        export.starts_with(&format!("{} metadata components", listed.len())),
        "{} listed: {export}",
        listed.len()
    );
    for (kind, file) in &listed {
        let path = if kind.ends_with("Folder") {
            out.join(format!("{file}-meta.xml"))
        } else {
            out.join(file)
        };
        assert!(path.is_file(), "{kind} {file}");
    }
}
