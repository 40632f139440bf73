//! SOSL search and query column metadata over real HTTP, in the shapes Salesforce documents
//! (and the official CLI's `data search` and `data query` read).

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::Value;

const V: &str = "v62.0";

async fn start() -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 42,
                population: Population::spread(3_000),
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

async fn get(sim: &Simulator, path_and_query: &str) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&format!("{}/services/data/{V}", sim.url())).expect("URL");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    url.set_path(&format!("{}{path}", url.path()));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        url.query_pairs_mut().append_pair(key, value);
    }
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn records(body: &Value) -> &Vec<Value> {
    body["searchRecords"]
        .as_array()
        .unwrap_or_else(|| panic!("no searchRecords: {body}"))
}

/// Reads the org's records the plain way, to check what a search found against them.
async fn names(sim: &Simulator, soql: &str) -> Vec<String> {
    let (status, body) = get(sim, &format!("/query?q={soql}")).await;
    assert_eq!(status, 200, "{body}");
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_search_returns_the_records_whose_words_match_with_the_fields_asked_for() {
    let sim = start().await;
    let all = names(&sim, "SELECT Name FROM Account").await;
    let expected: Vec<&String> = all
        .iter()
        .filter(|n| n.split(' ').any(|w| w.eq_ignore_ascii_case("acme")))
        .collect();
    assert!(!expected.is_empty(), "the seed has Acme accounts");
    let (status, body) = get(
        &sim,
        "/search?q=FIND {acme} IN NAME FIELDS RETURNING Account(Name, Industry ORDER BY Name)",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found = records(&body);
    assert_eq!(found.len(), expected.len(), "{body}");
    let mut sorted: Vec<&String> = expected.clone();
    sorted.sort();
    for (record, name) in found.iter().zip(&sorted) {
        assert_eq!(record["attributes"]["type"], "Account");
        assert!(
            record["attributes"]["url"]
                .as_str()
                .unwrap_or_default()
                .contains("/sobjects/Account/")
        );
        assert_eq!(&record["Name"], *name);
        assert!(record.get("Industry").is_some(), "{record}");
        assert!(
            record.get("Phone").is_none(),
            "only the fields asked for: {record}"
        );
    }
}

#[tokio::test]
async fn without_returning_every_object_answers_with_ids_and_a_limit_caps_the_whole_search() {
    let sim = start().await;
    let (status, body) = get(&sim, "/search?q=FIND {acme OR kowalski}").await;
    assert_eq!(status, 200, "{body}");
    let found = records(&body);
    let types: std::collections::BTreeSet<&str> = found
        .iter()
        .map(|r| r["attributes"]["type"].as_str().unwrap_or_default())
        .collect();
    assert!(
        types.contains("Account") && types.contains("Contact"),
        "{types:?}"
    );
    for record in found {
        let mut keys: Vec<&String> = record.as_object().expect("a record").keys().collect();
        keys.sort();
        assert_eq!(keys, ["Id", "attributes"], "{record}");
    }
    let (_, limited) = get(&sim, "/search?q=FIND {acme OR kowalski} LIMIT 7").await;
    assert_eq!(records(&limited).len(), 7);
    let (_, none) = get(&sim, "/search?q=FIND {acme AND NOT acme}").await;
    assert!(records(&none).is_empty());
}

#[tokio::test]
async fn a_returning_where_filters_like_soql_and_wildcards_match_word_starts() {
    let sim = start().await;
    let (_, body) = get(
        &sim,
        "/search?q=FIND {acm*} RETURNING Account(Name, Industry WHERE Industry = 'Energy')",
    )
    .await;
    let found = records(&body);
    let energy_acme = names(
        &sim,
        "SELECT Name FROM Account WHERE Industry = 'Energy' AND Name LIKE 'Acme%'",
    )
    .await;
    assert_eq!(found.len(), energy_acme.len(), "{body}");
    assert!(found.iter().all(|r| r["Industry"] == "Energy"));
}

#[tokio::test]
async fn bad_searches_are_malformed_search_errors() {
    let sim = start().await;
    for q in [
        "/search?q=FIND {a}",
        "/search?q=acme",
        "/search?q=FIND {acme",
        "/search?q=FIND {acme} IN BOGUS FIELDS",
    ] {
        let (status, body) = get(&sim, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body[0]["errorCode"], "MALFORMED_SEARCH", "{q}: {body}");
    }
    // What a RETURNING clause names is checked as a query's would be.
    let (status, body) = get(&sim, "/search?q=FIND {acme} RETURNING Nope__c").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE", "{body}");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Nope__c"),
        "{body}"
    );
}

#[tokio::test]
async fn columns_true_describes_the_columns_without_running_the_query() {
    let sim = start().await;
    let (status, body) = get(
        &sim,
        "/query?q=SELECT Id, Name, Owner.Name, (SELECT LastName FROM Contacts) FROM Account&columns=true",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("records").is_none(), "no records: {body}");
    assert_eq!(body["entityName"], "Account");
    assert_eq!(body["idSelected"], true);
    let columns = body["columnMetadata"].as_array().expect("columnMetadata");
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["columnName"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["Id", "Name", "Owner", "Contacts"]);
    assert_eq!(columns[2]["joinColumns"][0]["columnName"], "Name");
    assert_eq!(columns[2]["foreignKeyName"], "OwnerId");
    assert_eq!(columns[3]["aggregate"], true);
    assert_eq!(columns[3]["joinColumns"][0]["columnName"], "LastName");
    let (status, body) = get(&sim, "/query?q=SELECT Nope FROM Account&columns=true").await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD", "{body}");
}
