//! The Tooling API's read side over real HTTP: its own objects (Apex classes and triggers) under
//! `/tooling/`, queried and described as the data API's are, in their documented shapes.

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::Value;

const V: &str = "v62.0";

async fn start() -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 42,
                population: Population::spread(300),
                clock: Clock::fixed(1_749_988_800_000),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts")
}

async fn get(sim: &Simulator, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/services/data/{V}{path}", sim.url()))
        .query(query)
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn tooling_queries_read_apex_with_its_source() {
    let sim = start().await;
    let (status, body) = get(
        &sim,
        "/tooling/query",
        &[("q", "SELECT Id, Name, Body, ApiVersion FROM ApexClass WHERE Name LIKE '%Test' ORDER BY Name")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let records = body["records"].as_array().expect("records");
    assert!(!records.is_empty());
    assert_eq!(body["totalSize"], records.len());
    for record in records {
        let id = record["Id"].as_str().expect("an Id");
        assert!(id.starts_with("01p"), "{record}");
        assert_eq!(record["attributes"]["type"], "ApexClass");
        assert_eq!(
            record["attributes"]["url"],
            format!("/services/data/{V}/tooling/sobjects/ApexClass/{id}")
        );
        let name = record["Name"].as_str().expect("a name");
        assert!(name.ends_with("Test"));
        assert!(
            record["Body"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("class {name}")),
            "{record}"
        );
    }
    let (_, triggers) = get(
        &sim,
        "/tooling/query",
        &[(
            "q",
            "SELECT Name, TableEnumOrId FROM ApexTrigger WHERE TableEnumOrId = 'Account'",
        )],
    )
    .await;
    assert_eq!(triggers["totalSize"], 1, "{triggers}");
}

#[tokio::test]
async fn tooling_objects_are_not_data_objects_and_the_other_way_round() {
    let sim = start().await;
    let (status, body) = get(&sim, "/query", &[("q", "SELECT Id FROM ApexClass")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    let (status, body) = get(&sim, "/tooling/query", &[("q", "SELECT Id FROM Account")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
}

#[tokio::test]
async fn tooling_sobjects_list_and_describe_their_own_urls() {
    let sim = start().await;
    let (status, body) = get(&sim, "/tooling/sobjects", &[]).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["sobjects"]
        .as_array()
        .expect("sobjects")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["ApexClass", "ApexTrigger"]);
    let (status, body) = get(&sim, "/tooling/sobjects/ApexClass/describe", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "ApexClass");
    assert_eq!(
        body["urls"]["describe"],
        format!("/services/data/{V}/tooling/sobjects/ApexClass/describe")
    );
    assert!(
        body["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "Body" && f["type"] == "textarea")
    );
    let (status, _) = get(&sim, "/tooling/sobjects/Account/describe", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tooling_calls_count_against_the_orgs_daily_allocation() {
    let sim = start().await;
    let used = |body: &Value| -> u64 {
        body["DailyApiRequests"]["Max"].as_u64().expect("Max")
            - body["DailyApiRequests"]["Remaining"]
                .as_u64()
                .expect("Remaining")
    };
    let (_, before) = get(&sim, "/limits", &[]).await;
    get(&sim, "/tooling/query", &[("q", "SELECT Id FROM ApexClass")]).await;
    get(&sim, "/tooling/sobjects", &[]).await;
    let (_, after) = get(&sim, "/limits", &[]).await;
    assert_eq!(
        used(&after),
        used(&before) + 3,
        "two tooling calls and the limits call"
    );
}
