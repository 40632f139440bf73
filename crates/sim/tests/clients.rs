//! Real third-party clients against the simulator, unchanged but for pointing them at it.
//! `.ci/run` installs them (the workspace's tests/clients/requirements.txt).

use std::process::Command;

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

async fn run_simple_salesforce(tls: bool) {
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 3,
                // 12,000 Accounts for the Bulk 2.0 check, 18,000 Contacts for query paging.
                population: Population::spread(60_000),
                api_max: 1_000_000,
                ..OrgOptions::default()
            },
            bulk_delay_ms: 300,
            tls,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/simple_salesforce_check.py"
    );
    let url = sim.url();
    let token = sim.credentials.access_token.clone();
    let ca = tempfile::NamedTempFile::new().expect("a file for the CA");
    if let Some(pem) = &sim.credentials.ca_certificate {
        std::fs::write(ca.path(), pem).expect("write the CA");
    }
    let ca_path = ca.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(url)
            .arg(token)
            // How requests is told which CA to trust, without a line of code.
            .env("REQUESTS_CA_BUNDLE", ca_path)
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs (install Python 3 and `pip install -r tests/clients/requirements.txt` at the workspace root)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "simple-salesforce check failed (is it installed? `pip install -r tests/clients/requirements.txt` at the workspace root)\n{stdout}\n{stderr}"
    );
    for check in [
        "limits",
        "describeGlobal",
        "query_all follows nextRecordsUrl",
        "bulk2 query",
        "getUpdated",
        "getDeleted",
        "composite with references",
        "child subquery",
        "bulk2 insert",
        "bulk2 successful results",
        "bulk2 update with a failing row",
    ] {
        assert!(
            stdout.contains(&format!("ok   {check}")),
            "{check} did not run:\n{stdout}"
        );
    }
    println!("{stdout}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_works_unchanged_over_https() {
    run_simple_salesforce(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_works_over_http_with_a_session_adapter() {
    run_simple_salesforce(false).await;
}

/// zeep, a general SOAP client, with the part of Salesforce's partner WSDL that `undelete`
/// uses: it builds the envelope itself and checks the answer against the WSDL's types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeep_undeletes_through_the_partner_soap_api() {
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 5,
                population: Population::spread(200),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts");
    let url = sim.url();
    let token = sim.credentials.access_token.clone();
    let http = reqwest::Client::new();
    let accounts: serde_json::Value = http
        .get(format!(
            "{url}/services/data/v65.0/query?q=SELECT+Id+FROM+Account+LIMIT+2"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<String> = accounts["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_string())
        .collect();
    let (deleted, live) = (ids[0].clone(), ids[1].clone());
    let removed = http
        .delete(format!("{url}/__sim/records/Account/{deleted}"))
        .send()
        .await
        .expect("delete");
    assert!(removed.status().is_success(), "{removed:?}");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/zeep_undelete_check.py"
    );
    let soap_url = format!("{url}/services/Soap/u/65.0");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([&soap_url, &token, &deleted, &live])
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs (`pip install -r tests/clients/requirements.txt` at the workspace root)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "zeep check failed (is zeep installed? `pip install -r tests/clients/requirements.txt`)\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok   undelete"), "{stdout}");
    assert!(stdout.contains("ok   a bad session is a fault"), "{stdout}");
    let back: serde_json::Value = http
        .get(format!(
            "{url}/services/data/v65.0/query?q=SELECT+Id+FROM+Account+WHERE+Id+=+'{}'",
            ids[0]
        ))
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    assert_eq!(back["totalSize"], 1, "the record is live again: {back}");
    sim.stop().await;
}
