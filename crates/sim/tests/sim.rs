//! The simulator over real HTTP: the documented shapes, headers, status codes and error codes.

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::Value;

const V: &str = "v62.0";
/// 2025-06-15T12:00:00Z, so date windows are deterministic.
const NOW: i64 = 1_749_988_800_000;

async fn start(records: usize, api_max: u64) -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 42,
                population: Population::spread(records),
                api_max,
                clock: Clock::fixed(NOW),
                ..OrgOptions::default()
            },
            bulk_delay_ms: 0,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts")
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(sim: &Simulator) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: sim.url(),
            token: sim.credentials.access_token.clone(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// The first page of `soql` through `resource` (query or queryAll), 200 records a page.
    async fn first_page(&self, resource: &str, soql: &str) -> Value {
        self.http
            .get(format!("{}/services/data/{V}/{resource}", self.base))
            .query(&[("q", soql)])
            .header("Sforce-Query-Options", "batchSize=200")
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("JSON")
    }
}

/// The query resource's path for a SOQL text (spaces and quotes encoded).
fn query(soql: &str) -> String {
    format!(
        "/services/data/{V}/query?q={}",
        soql.replace(' ', "+").replace('\'', "%27")
    )
}

/// A REST error body is an array of {message, errorCode}.
fn error_code(body: &Value) -> &str {
    body.as_array()
        .and_then(|a| a.first())
        .and_then(|e| e["errorCode"].as_str())
        .unwrap_or_else(|| panic!("not a REST error array: {body}"))
}

#[tokio::test]
async fn versions_need_no_session_and_are_not_counted() {
    let sim = start(100, 1000).await;
    let response = reqwest::get(format!("{}/services/data/", sim.url()))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("Sforce-Limit-Info").is_none());
    let versions: Value = response.json().await.expect("JSON");
    let list = versions.as_array().expect("array");
    assert!(list.iter().any(|v| v["version"] == "62.0"
        && v["url"] == "/services/data/v62.0"
        && v["label"] == "Winter '25"));
    let client = Client::new(&sim);
    let (_, limits) = client.json(&format!("/services/data/{V}/limits")).await;
    assert_eq!(
        limits["DailyApiRequests"]["Remaining"], 999,
        "only the limits call counted"
    );
}

#[tokio::test]
async fn every_counted_call_moves_limits_and_the_limit_info_header_together() {
    let sim = start(100, 5).await;
    let client = Client::new(&sim);
    for used in 1..=5u64 {
        let response = client.get(&format!("/services/data/{V}/limits")).await;
        assert_eq!(response.status(), 200);
        let header = response.headers()["Sforce-Limit-Info"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert_eq!(header, format!("api-usage={used}/5"));
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["DailyApiRequests"]["Remaining"], 5 - used);
    }
    let (status, body) = client.json(&format!("/services/data/{V}/sobjects")).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(body[0]["message"], "TotalRequests Limit exceeded.");
}

#[tokio::test]
async fn a_bad_session_is_a_401_with_a_json_array() {
    let sim = start(100, 100).await;
    let response = reqwest::Client::new()
        .get(format!("{}/services/data/{V}/limits", sim.url()))
        .bearer_auth("00Dnope!nope")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
}

/// `/limits/recordCount` counts each object's live records, for the objects asked for (names
/// the org lacks left out), or for every object.
#[tokio::test]
async fn record_counts_leave_out_the_recycle_bin() {
    let sim = start(1000, 100).await;
    let client = Client::new(&sim);
    let (_, accounts) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Id+FROM+Account"
        ))
        .await;
    let total = accounts["totalSize"].as_u64().expect("totalSize");
    let first = accounts["records"][0]["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let deleted = reqwest::Client::new()
        .delete(format!("{}/__sim/records/Account/{first}", sim.url()))
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success());
    let (status, body) = client
        .json(&format!(
            "/services/data/{V}/limits/recordCount?sObjects=Account,Nope__c,Contact"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let counts = body["sObjects"].as_array().expect("sObjects");
    assert_eq!(counts.len(), 2, "{body}");
    assert_eq!(counts[0]["name"], "Account");
    assert_eq!(counts[0]["count"].as_u64(), Some(total - 1), "{body}");
    assert_eq!(counts[1]["name"], "Contact");
    let (_, all) = client
        .json(&format!("/services/data/{V}/limits/recordCount"))
        .await;
    assert!(
        all["sObjects"].as_array().expect("sObjects").len() > 2,
        "{all}"
    );
}

/// Header names go out in Salesforce's Title-Case over HTTP/1.1, for clients that read them
/// through a case-sensitive map.
#[tokio::test]
async fn response_header_names_are_title_case_on_the_wire() {
    use std::io::{Read, Write};
    let sim = start(100, 100).await;
    let request = format!(
        "GET /services/data/{V}/limits HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        sim.credentials.access_token
    );
    let addr = sim.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).expect("connect");
        socket.write_all(request.as_bytes()).expect("send");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).expect("read");
        answer
    })
    .await
    .expect("join");
    let answer = String::from_utf8_lossy(&answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for name in ["Content-Type: ", "Sforce-Limit-Info: ", "Content-Length: "] {
        assert!(
            head.lines().any(|l| l.starts_with(name)),
            "no {name:?} header line in:\n{head}"
        );
    }
}

/// The official CLI keeps an instance URL that ends in a slash and asks for
/// `//services/data/...`; Salesforce answers it as the single-slash path.
#[tokio::test]
async fn repeated_slashes_in_a_path_reach_the_same_resource() {
    let sim = start(100, 100).await;
    let client = Client::new(&sim);
    for path in [
        format!("//services/data/{V}/limits"),
        format!("//services//data/{V}/query?q=SELECT+Id+FROM+Account+LIMIT+1"),
    ] {
        let (status, body) = client.json(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = client.json("//services/data/v62.0/nothing").await;
    assert_eq!((status, error_code(&body)), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn unknown_versions_objects_and_paths_are_not_found() {
    let sim = start(100, 100).await;
    let client = Client::new(&sim);
    for path in [
        "/services/data/v20.0/limits",
        "/services/data/v99.0/limits",
        "/services/data/v62.0/sobjects/Nope/describe",
        "/services/data/v62.0/nothing",
    ] {
        let (status, body) = client.json(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_code(&body), "NOT_FOUND", "{path}");
    }
}

#[tokio::test]
async fn describe_has_compound_polymorphic_and_master_detail_fields() {
    let sim = start(100, 100).await;
    let client = Client::new(&sim);
    let (_, global) = client.json(&format!("/services/data/{V}/sobjects")).await;
    let names: Vec<&str> = global["sobjects"]
        .as_array()
        .expect("sobjects")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for object in [
        "Account",
        "Contact",
        "Opportunity",
        "Case",
        "Lead",
        "User",
        "Task",
        "Invoice__c",
    ] {
        assert!(
            names.contains(&object),
            "{object} missing from describeGlobal"
        );
    }
    let (_, account) = client
        .json(&format!("/services/data/{V}/sobjects/Account/describe"))
        .await;
    let field = |describe: &Value, name: &str| {
        describe["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name}"))
    };
    assert_eq!(field(&account, "BillingAddress")["type"], "address");
    assert_eq!(
        field(&account, "BillingCity")["compoundFieldName"],
        "BillingAddress"
    );
    let (_, task) = client
        .json(&format!("/services/data/{V}/sobjects/task/describe"))
        .await;
    assert_eq!(field(&task, "WhatId")["polymorphicForeignKey"], true);
    let (_, invoice) = client
        .json(&format!("/services/data/{V}/sobjects/Invoice__c/describe"))
        .await;
    assert_eq!(field(&invoice, "Account__c")["cascadeDelete"], true);
    assert_eq!(field(&invoice, "Invoice_Number__c")["externalId"], true);
    let (_, organization) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+IsSandbox,OrganizationType+FROM+Organization"
        ))
        .await;
    assert_eq!(organization["records"][0]["IsSandbox"], false);
}

#[tokio::test]
async fn query_pages_follow_next_records_url_and_batch_size() {
    let sim = start(10_000, 100_000).await;
    let client = Client::new(&sim);
    let (_, count) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+COUNT()+FROM+Contact"
        ))
        .await;
    let total = count["totalSize"].as_u64().expect("count") as usize;
    assert!(total > 2500, "{total}");
    assert_eq!(count["records"], serde_json::json!([]));

    let mut seen = std::collections::BTreeSet::new();
    let first = client
        .http
        .get(format!("{}/services/data/{V}/query", client.base))
        .query(&[(
            "q",
            "SELECT Id, Name, Account.Name FROM Contact ORDER BY Id",
        )])
        .header("Sforce-Query-Options", "batchSize=500")
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("query");
    let mut page: Value = first.json().await.expect("JSON");
    let mut pages = 1;
    loop {
        assert_eq!(page["totalSize"].as_u64(), Some(total as u64));
        for record in page["records"].as_array().expect("records") {
            assert_eq!(record["attributes"]["type"], "Contact");
            assert!(
                seen.insert(record["Id"].as_str().expect("Id").to_string()),
                "a record came twice"
            );
        }
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        assert_eq!(page["records"].as_array().map(Vec::len), Some(500));
        let next = page["nextRecordsUrl"]
            .as_str()
            .expect("nextRecordsUrl")
            .to_string();
        assert!(next.starts_with(&format!("/services/data/{V}/query/01g")));
        page = client.json(&next).await.1;
        pages += 1;
    }
    assert_eq!(seen.len(), total);
    assert_eq!(pages, total.div_ceil(500));
    let (status, body) = client
        .json(&format!("/services/data/{V}/query/01gNOPE-500"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn soql_errors_carry_the_documented_codes() {
    let sim = start(100, 1000).await;
    let client = Client::new(&sim);
    let cases = [
        ("SELECT Foo FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM ProcessInstanceHistory", "INVALID_TYPE"),
    ];
    for (soql, code) in cases {
        let response = client
            .http
            .get(format!("{}/services/data/{V}/query", client.base))
            .query(&[("q", soql)])
            .bearer_auth(&client.token)
            .send()
            .await
            .expect("query");
        assert_eq!(response.status(), 400, "{soql}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(error_code(&body), code, "{soql}");
    }
}

/// An admin request with a misspelt field is refused, not taken as a request to do nothing.
#[tokio::test]
async fn a_misspelt_admin_field_is_refused() {
    let sim = start(10, 100_000).await;
    let client = Client::new(&sim);
    let post = |body: Value| {
        client
            .http
            .post(format!("{}/__sim/clock", client.base))
            .json(&body)
            .send()
    };
    let misspelt = post(serde_json::json!({"advance_ms": 86_400_000}))
        .await
        .expect("clock");
    assert_eq!(misspelt.status(), 400);
    let before: Value = post(serde_json::json!({}))
        .await
        .expect("clock")
        .json()
        .await
        .expect("JSON");
    let moved: Value = post(serde_json::json!({"advanceMs": 86_400_000}))
        .await
        .expect("clock")
        .json()
        .await
        .expect("JSON");
    assert_ne!(before["now"], moved["now"], "{before} {moved}");
}

/// A cursor can be read for two days of the org's time, however many others are open.
#[tokio::test]
async fn cursors_last_two_days_without_a_cap_on_how_many_are_open() {
    let sim = start(3_000, 100_000).await;
    let client = Client::new(&sim);
    let open = || async {
        let page = client.first_page("query", "SELECT Id FROM Contact").await;
        page["nextRecordsUrl"]
            .as_str()
            .expect("more than one page")
            .to_string()
    };
    let first = open().await;
    // More cursors than the old per-user cap ever allowed.
    for _ in 0..600 {
        open().await;
    }
    let advance = |ms: i64| {
        client
            .http
            .post(format!("{}/__sim/clock", client.base))
            .json(&serde_json::json!({"advanceMs": ms}))
            .send()
    };
    advance(2 * 86_400_000 - 60_000).await.expect("clock");
    let (status, body) = client.json(&first).await;
    assert_eq!(status, 200, "still readable before two days: {body}");
    advance(120_000).await.expect("clock");
    let (status, body) = client.json(&first).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "INVALID_QUERY_LOCATOR");
}

/// An object describe marks not queryable is listed and described, and refused in FROM with
/// Salesforce's wording.
#[tokio::test]
async fn objects_describe_marks_not_queryable_are_refused_in_from() {
    let sim = start(100, 1000).await;
    let client = Client::new(&sim);
    let (_, global) = client.json(&format!("/services/data/{V}/sobjects")).await;
    let history = global["sobjects"]
        .as_array()
        .expect("sobjects")
        .iter()
        .find(|o| o["name"] == "ProcessInstanceHistory")
        .unwrap_or_else(|| panic!("not listed: {global}"));
    assert_eq!(history["queryable"], false);
    assert_eq!(history["retrieveable"], false);
    let (status, _) = client
        .json(&format!(
            "/services/data/{V}/sobjects/ProcessInstanceHistory/describe"
        ))
        .await;
    assert_eq!(status, 200);
    let (status, body) = client
        .json(&query("SELECT Id FROM ProcessInstanceHistory"))
        .await;
    assert_eq!(status, 400);
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("entity type ProcessInstanceHistory does not support query"),
        "{body}"
    );
}

#[tokio::test]
async fn where_order_and_limit_select_the_right_records() {
    let sim = start(2000, 10_000).await;
    let client = Client::new(&sim);
    let (_, all) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Id,AnnualRevenue,Industry+FROM+Account"
        ))
        .await;
    let records = all["records"].as_array().expect("records").clone();
    let expected: usize = records
        .iter()
        .filter(|r| {
            r["Industry"] == "Energy"
                && r["AnnualRevenue"]
                    .as_f64()
                    .is_some_and(|x| x > 100_000_000.0)
        })
        .count();
    let (_, filtered) = client
        .json(&format!("/services/data/{V}/query?q=SELECT+Id,AnnualRevenue+FROM+Account+WHERE+Industry+%3D+'energy'+AND+AnnualRevenue+%3E+100000000+ORDER+BY+AnnualRevenue+DESC"))
        .await;
    let got = filtered["records"].as_array().expect("records");
    assert_eq!(got.len(), expected);
    assert!(
        got.windows(2)
            .all(|w| w[0]["AnnualRevenue"].as_f64() >= w[1]["AnnualRevenue"].as_f64())
    );
    let (_, limited) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Id+FROM+Account+ORDER+BY+Id+LIMIT+3+OFFSET+2"
        ))
        .await;
    let ids: Vec<&Value> = limited["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["Id"])
        .collect();
    let mut sorted: Vec<&Value> = records.iter().map(|r| &r["Id"]).collect();
    sorted.sort_by_key(|v| v.as_str().map(str::to_string));
    assert_eq!(ids, sorted[2..5].to_vec());
}

#[tokio::test]
async fn get_updated_windows_follow_the_rules() {
    let sim = start(1000, 10_000).await;
    let client = Client::new(&sim);
    let window = |start: &str, end: &str| {
        format!(
            "/services/data/{V}/sobjects/Account/updated/?start={}&end={}",
            start.replace('+', "%2B").replace(':', "%3A"),
            end.replace('+', "%2B").replace(':', "%3A")
        )
    };
    let (status, body) = client
        .json(&window(
            "2025-05-17T00:00:00+00:00",
            "2025-06-15T12:00:00+00:00",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["latestDateCovered"], "2025-06-15T12:00:00.000+0000");
    let mut updated: Vec<String> = body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    // The same window as SOQL finds the same records.
    let (_, same) = client
        .json(&format!("/services/data/{V}/query?q=SELECT+Id+FROM+Account+WHERE+SystemModstamp+%3E%3D+2025-05-17T00:00:00Z+AND+SystemModstamp+%3C+2025-06-15T12:00:00Z+ORDER+BY+Id"))
        .await;
    let mut expected: Vec<String> = same["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["Id"].as_str().map(str::to_string))
        .collect();
    updated.sort();
    expected.sort();
    assert!(
        !expected.is_empty(),
        "the generated org has no recent changes to compare"
    );
    assert_eq!(updated, expected);
    let (status, body) = client
        .json(&window(
            "2025-06-10T00:00:00+00:00",
            "2025-06-01T00:00:00+00:00",
        ))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "INVALID_REPLICATION_DATE")
    );
    let (status, body) = client
        .json(&window(
            "2025-01-01T00:00:00+00:00",
            "2025-06-01T00:00:00+00:00",
        ))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "INVALID_REPLICATION_DATE")
    );
    let deleted = format!(
        "/services/data/{V}/sobjects/Account/deleted/?start=2025-06-10T00%3A00%3A00%2B00%3A00&end=2025-06-15T00%3A00%3A00%2B00%3A00"
    );
    let (status, body) = client.json(&deleted).await;
    assert_eq!(status, 200);
    assert_eq!(body["deletedRecords"], serde_json::json!([]));
    assert!(body["earliestDateAvailable"].is_string());
}

#[tokio::test]
async fn bulk_query_pages_csv_by_locator_until_null() {
    let sim = start(10_000, 100_000).await;
    let client = Client::new(&sim);
    let create = client
        .http
        .post(format!("{}/services/data/{V}/jobs/query", client.base))
        .bearer_auth(&client.token)
        .json(&serde_json::json!({"operation": "queryAll", "query": "SELECT Id, Name, Owner.Name, CreatedDate FROM Account"}))
        .send()
        .await
        .expect("create");
    assert_eq!(create.status(), 200);
    let job: Value = create.json().await.expect("JSON");
    assert_eq!(job["state"], "UploadComplete");
    assert!(
        job["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("750") && id.len() == 18)
    );
    let id = job["id"].as_str().expect("id").to_string();
    let (_, info) = client
        .json(&format!("/services/data/{V}/jobs/query/{id}"))
        .await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["jobType"], "V2Query");
    let processed = info["numberRecordsProcessed"].as_u64().expect("processed");

    let mut locator: Option<String> = None;
    let mut rows = 0u64;
    loop {
        let mut url = format!("/services/data/{V}/jobs/query/{id}/results?maxRecords=700");
        if let Some(l) = &locator {
            url.push_str(&format!("&locator={l}"));
        }
        let response = client.get(&url).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/csv");
        let count: u64 = response.headers()["Sforce-NumberOfRecords"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        let next = response.headers()["Sforce-Locator"]
            .to_str()
            .expect("ascii")
            .to_string();
        let body = response.text().await.expect("text");
        let mut lines = body.lines();
        assert_eq!(
            lines.next(),
            Some("\"Id\",\"Name\",\"Owner.Name\",\"CreatedDate\"")
        );
        let data: Vec<&str> = lines.collect();
        assert_eq!(data.len() as u64, count);
        assert!(
            data.iter()
                .all(|l| l.starts_with("\"001") && l.ends_with("Z\"")),
            "{:?}",
            data.first()
        );
        rows += count;
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    assert_eq!(rows, processed);
    let (_, count) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+COUNT()+FROM+Account"
        ))
        .await;
    assert_eq!(Some(rows), count["totalSize"].as_u64());

    let results_v61 = client
        .get(&format!("/services/data/v61.0/jobs/query/{id}/results"))
        .await;
    assert_eq!(results_v61.status(), 409);
    let delete = client
        .http
        .delete(format!("{}/services/data/{V}/jobs/query/{id}", client.base))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), 204);
    let (status, _) = client
        .json(&format!("/services/data/{V}/jobs/query/{id}"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bulk_refuses_what_bulk_cannot_do() {
    let sim = start(100, 1000).await;
    let client = Client::new(&sim);
    for query in [
        "SELECT COUNT() FROM Account",
        "SELECT Id, BillingAddress FROM Account",
        "SELECT Nope FROM Account",
    ] {
        let response = client
            .http
            .post(format!("{}/services/data/{V}/jobs/query", client.base))
            .bearer_auth(&client.token)
            .json(&serde_json::json!({"operation": "query", "query": query}))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("JSON");
        assert!(body[0]["errorCode"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn refresh_tokens_mint_sessions_until_revoked() {
    let sim = start(100, 1000).await;
    let http = reqwest::Client::new();
    let token = |refresh: &str| {
        http.post(format!("{}/services/oauth2/token", sim.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", sim.credentials.client_id.as_str()),
            ])
            .send()
    };
    let response = token(&sim.credentials.refresh_token).await.expect("token");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["instance_url"], sim.url());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let access = body["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    assert!(access.starts_with("00D") && access.contains('!'));
    let limits = http
        .get(format!("{}/services/data/{V}/limits", sim.url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("limits");
    assert_eq!(limits.status(), 200);

    let revoke = http
        .post(format!("{}/services/oauth2/revoke", sim.url()))
        .form(&[("token", sim.credentials.refresh_token.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 200);
    let response = token(&sim.credentials.refresh_token).await.expect("token");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );
    let limits = http
        .get(format!("{}/services/data/{V}/limits", sim.url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("limits");
    assert_eq!(
        limits.status(),
        401,
        "sessions of a revoked refresh token end with it"
    );

    let unsupported = http
        .post(format!("{}/services/oauth2/token", sim.url()))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("token");
    assert_eq!(unsupported.status(), 400);
    let body: Value = unsupported.json().await.expect("JSON");
    assert_eq!(body["error"], "unsupported_grant_type");
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}/__sim/{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("admin");
        assert_eq!(response.status(), 200, "admin {path}");
        response.json().await.expect("JSON")
    }
}

fn first_id(page: &Value) -> String {
    page["records"][0]["Id"]
        .as_str()
        .expect("a record")
        .to_string()
}

#[tokio::test]
async fn single_record_crud_with_the_documented_statuses() {
    use reqwest::Method;
    let sim = start(200, 10_000).await;
    let client = Client::new(&sim);
    let (status, created) = client
        .send(
            Method::POST,
            &format!("/services/data/{V}/sobjects/Account"),
            Some(serde_json::json!({"Name": "Restored Co", "Industry": "Energy"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], serde_json::json!([]));
    let id = created["id"].as_str().expect("id").to_string();
    let (status, record) = client
        .send(
            Method::GET,
            &format!("/services/data/{V}/sobjects/Account/{id}?fields=Name,Industry"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            record["Name"].as_str(),
            record["attributes"]["type"].as_str()
        ),
        (Some("Restored Co"), Some("Account"))
    );
    let (status, _) = client
        .send(
            Method::PATCH,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            Some(serde_json::json!({"Industry": null})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, record) = client
        .send(
            Method::GET,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            None,
        )
        .await;
    assert_eq!(record["Industry"], Value::Null);
    assert_ne!(record["CreatedDate"], Value::Null);

    let (status, body) = client
        .send(
            Method::POST,
            &format!("/services/data/{V}/sobjects/Account"),
            Some(serde_json::json!({"Industry": "Energy"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        serde_json::json!([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}])
    );
    let (status, body) = client
        .send(
            Method::PATCH,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            Some(serde_json::json!({"CreatedDate": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    );
    let response = client
        .http
        .post(format!(
            "{}/services/data/{V}/sobjects/Account",
            client.base
        ))
        .bearer_auth(&client.token)
        .body("Name=x")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 415);
    let response = client
        .http
        .post(format!(
            "{}/services/data/{V}/sobjects/Account",
            client.base
        ))
        .bearer_auth(&client.token)
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "JSON_PARSER_ERROR");

    let (status, _) = client
        .send(
            Method::DELETE,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = client
        .send(
            Method::GET,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "ENTITY_IS_DELETED"));
    let (status, body) = client
        .send(
            Method::DELETE,
            &format!("/services/data/{V}/sobjects/Account/001000000000000AAA"),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "NOT_FOUND"));
    let (_, all) = client
        .json(&format!(
            "/services/data/{V}/queryAll?q=SELECT+Id,IsDeleted+FROM+Account+WHERE+Id+%3D+'{id}'"
        ))
        .await;
    assert_eq!(
        all["records"][0]["IsDeleted"], true,
        "queryAll sees the recycle bin"
    );
    let (_, live) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Id+FROM+Account+WHERE+Id+%3D+'{id}'"
        ))
        .await;
    assert_eq!(live["totalSize"], 0, "query does not");
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    use reqwest::Method;
    let sim = start(200, 10_000).await;
    let client = Client::new(&sim);
    let (_, accounts) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Id+FROM+Account+LIMIT+1"
        ))
        .await;
    let account = first_id(&accounts);
    let path = format!("/services/data/{V}/sobjects/Invoice__c/Invoice_Number__c/EXT-77");
    let (status, body) = client
        .send(
            Method::PATCH,
            &path,
            Some(serde_json::json!({"Name": "INV-77", "Account__c": account})),
        )
        .await;
    assert_eq!((status, &body["created"]), (201, &Value::Bool(true)));
    let (status, again) = client
        .send(
            Method::PATCH,
            &path,
            Some(serde_json::json!({"Amount__c": 12.5})),
        )
        .await;
    assert_eq!((status, &again["created"]), (200, &Value::Bool(false)));
    assert_eq!(again["id"], body["id"]);
}

#[tokio::test]
async fn collections_report_per_record_and_roll_back_all_or_none() {
    use reqwest::Method;
    let sim = start(200, 10_000).await;
    let client = Client::new(&sim);
    let path = format!("/services/data/{V}/composite/sobjects");
    let records = serde_json::json!([
        {"attributes": {"type": "Account"}, "Name": "One"},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
        {"attributes": {"type": "Account"}, "Name": "Three"},
    ]);
    let (_, before) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+COUNT()+FROM+Account"
        ))
        .await;
    let (status, results) = client
        .send(
            Method::POST,
            &path,
            Some(serde_json::json!({"allOrNone": true, "records": records})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(
        results[1]["errors"][0]["fields"],
        serde_json::json!(["LastName"])
    );
    for i in [0, 2] {
        assert_eq!(results[i]["success"], false);
        assert_eq!(
            results[i]["errors"][0]["statusCode"],
            "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        );
    }
    let (_, after) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+COUNT()+FROM+Account"
        ))
        .await;
    assert_eq!(
        before["totalSize"], after["totalSize"],
        "nothing was committed"
    );

    let (_, results) = client
        .send(
            Method::POST,
            &path,
            Some(serde_json::json!({"allOrNone": false, "records": records})),
        )
        .await;
    assert_eq!(
        (
            results[0]["success"].as_bool(),
            results[1]["success"].as_bool(),
            results[2]["success"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    let id = results[0]["id"].as_str().expect("id").to_string();
    let (_, updated) = client.send(Method::PATCH, &path, Some(serde_json::json!({"records": [{"attributes": {"type": "Account"}, "id": id, "Phone": "+1 555 0100"}]}))).await;
    assert_eq!(updated[0]["success"], true);

    let too_many: Vec<Value> = (0..201)
        .map(|i| serde_json::json!({"attributes": {"type": "Account"}, "Name": format!("N{i}")}))
        .collect();
    let (status, body) = client
        .send(
            Method::POST,
            &path,
            Some(serde_json::json!({"records": too_many})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "EXCEEDED_ID_LIMIT"));
    let (status, deleted) = client
        .send(
            Method::DELETE,
            &format!("{path}?ids={id},001000000000000AAA"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            deleted[0]["success"].as_bool(),
            deleted[1]["success"].as_bool()
        ),
        (Some(true), Some(false))
    );
}

#[tokio::test]
async fn the_admin_api_changes_the_org_as_users_would() {
    use reqwest::Method;
    let sim = start(300, 10_000).await;
    let client = Client::new(&sim);
    let (_, page) = client.json(&format!("/services/data/{V}/query?q=SELECT+Id,Name,SystemModstamp+FROM+Account+ORDER+BY+Id+LIMIT+1")).await;
    let id = first_id(&page);
    client
        .admin(
            Method::POST,
            "clock",
            serde_json::json!({"advanceMs": 60_000}),
        )
        .await;
    client
        .admin(
            Method::PATCH,
            &format!("records/Account/{id}"),
            serde_json::json!({"Name": "Renamed"}),
        )
        .await;
    let (_, record) = client
        .send(
            Method::GET,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            None,
        )
        .await;
    assert_eq!(record["Name"], "Renamed");
    assert_eq!(
        record["SystemModstamp"], "2025-06-15T12:01:00.000+0000",
        "the write is stamped with the simulated clock"
    );

    client
        .admin(
            Method::DELETE,
            &format!("records/Account/{id}"),
            serde_json::json!({}),
        )
        .await;
    let deleted = format!(
        "/services/data/{V}/sobjects/Account/deleted/?start=2025-06-15T00%3A00%3A00%2B00%3A00&end=2025-06-15T13%3A00%3A00%2B00%3A00"
    );
    let (_, body) = client.json(&deleted).await;
    assert_eq!(body["deletedRecords"][0]["id"], id.as_str());
    client
        .admin(
            Method::POST,
            &format!("records/Account/{id}/undelete"),
            serde_json::json!({}),
        )
        .await;
    let (_, body) = client.json(&deleted).await;
    assert_eq!(body["deletedRecords"], serde_json::json!([]));

    client
        .admin(
            Method::POST,
            "fields/Account",
            serde_json::json!({"name": "Region__c", "type": "string"}),
        )
        .await;
    let (_, describe) = client
        .json(&format!("/services/data/{V}/sobjects/Account/describe"))
        .await;
    assert!(
        describe["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "Region__c" && f["custom"] == true)
    );
    let (status, _) = client
        .send(
            Method::PATCH,
            &format!("/services/data/{V}/sobjects/Account/{id}"),
            Some(serde_json::json!({"Region__c": "EMEA"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, region) = client
        .json(&format!(
            "/services/data/{V}/query?q=SELECT+Region__c+FROM+Account+WHERE+Region__c+!%3D+null"
        ))
        .await;
    assert_eq!(region["totalSize"], 1);
}

#[tokio::test]
async fn injected_faults_return_the_documented_errors() {
    use reqwest::Method;
    let sim = start(100, 10_000).await;
    let client = Client::new(&sim);
    let limits = format!("/services/data/{V}/limits");
    for (kind, status, code) in [
        ("REQUEST_LIMIT_EXCEEDED", 403, "REQUEST_LIMIT_EXCEEDED"),
        ("SERVER_UNAVAILABLE", 503, "SERVER_UNAVAILABLE"),
        ("INVALID_SESSION_ID", 401, "INVALID_SESSION_ID"),
    ] {
        client
            .admin(
                Method::PUT,
                "faults",
                serde_json::json!([{"kind": kind, "times": 1}]),
            )
            .await;
        let (got, body) = client.json(&limits).await;
        assert_eq!((got, error_code(&body)), (status, code), "{kind}");
        let (got, _) = client.json(&limits).await;
        assert_eq!(got, 200, "{kind} hit only once");
    }
    // Query faults hit queries only.
    let query = format!("/services/data/{V}/query?q=SELECT+Id+FROM+Account+LIMIT+1");
    for (kind, code) in [
        ("QUERY_TIMEOUT", "QUERY_TIMEOUT"),
        ("OPERATION_TOO_LARGE", "OPERATION_TOO_LARGE"),
    ] {
        client
            .admin(
                Method::PUT,
                "faults",
                serde_json::json!([{"kind": kind, "times": 1}]),
            )
            .await;
        let (got, _) = client.json(&limits).await;
        assert_eq!(got, 200, "{kind} is not a fault of /limits");
        let (got, body) = client.json(&query).await;
        assert_eq!((got, error_code(&body)), (400, code), "{kind}");
    }
    client
        .admin(
            Method::PUT,
            "faults",
            serde_json::json!([{"kind": "UNABLE_TO_LOCK_ROW"}]),
        )
        .await;
    let (got, _) = client.json(&limits).await;
    assert_eq!(got, 200, "reads are not locked");
    let (got, body) = client
        .send(
            Method::POST,
            &format!("/services/data/{V}/sobjects/Account"),
            Some(serde_json::json!({"Name": "x"})),
        )
        .await;
    assert_eq!((got, error_code(&body)), (400, "UNABLE_TO_LOCK_ROW"));

    client
        .admin(
            Method::PUT,
            "faults",
            serde_json::json!([{"kind": "CONNECTION_RESET"}]),
        )
        .await;
    let broken = client
        .http
        .get(format!("{}{limits}", client.base))
        .bearer_auth(&client.token)
        .send()
        .await;
    let failed = match broken {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "the connection should drop mid-response");

    client
        .admin(
            Method::PUT,
            "faults",
            serde_json::json!([{"kind": "SLOW", "delayMs": 300}]),
        )
        .await;
    let started = std::time::Instant::now();
    let (got, _) = client.json(&limits).await;
    assert_eq!(got, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    client
        .admin(Method::DELETE, "faults", serde_json::json!({}))
        .await;

    client
        .admin(
            Method::PUT,
            "api-usage",
            serde_json::json!({"used": 10_000}),
        )
        .await;
    let (got, body) = client.json(&limits).await;
    assert_eq!((got, error_code(&body)), (403, "REQUEST_LIMIT_EXCEEDED"));
}

#[tokio::test]
async fn expired_sessions_revoked_tokens_and_a_deleted_org() {
    use reqwest::Method;
    let sim = start(100, 10_000).await;
    let client = Client::new(&sim);
    let limits = format!("/services/data/{V}/limits");
    client
        .admin(Method::POST, "sessions/expire", serde_json::json!({}))
        .await;
    let (got, body) = client.json(&limits).await;
    assert_eq!((got, error_code(&body)), (401, "INVALID_SESSION_ID"));
    let refresh = || {
        client
            .http
            .post(format!("{}/services/oauth2/token", client.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", sim.credentials.refresh_token.as_str()),
                ("client_id", sim.credentials.client_id.as_str()),
            ])
            .send()
    };
    assert_eq!(
        refresh().await.expect("token").status(),
        200,
        "a refresh token outlives sessions"
    );
    client
        .admin(Method::POST, "refresh-tokens/revoke", serde_json::json!({}))
        .await;
    let body: Value = refresh().await.expect("token").json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant");
    client
        .admin(Method::DELETE, "org", serde_json::json!({}))
        .await;
    let body: Value = refresh().await.expect("token").json().await.expect("JSON");
    assert_eq!(
        (body["error"].as_str(), body["error_description"].as_str()),
        (Some("invalid_grant"), Some("inactive organization"))
    );
}

async fn start_with_bulk_delay(delay_ms: u64) -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 9,
                population: Population::spread(500),
                clock: Clock::fixed(NOW),
                ..OrgOptions::default()
            },
            bulk_delay_ms: delay_ms,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts")
}

#[tokio::test]
async fn bulk_jobs_move_through_their_states_and_can_be_aborted() {
    use reqwest::Method;
    let sim = start_with_bulk_delay(400).await;
    let client = Client::new(&sim);
    let jobs = format!("/services/data/{V}/jobs/query");
    let create = || {
        client.send(Method::POST, &jobs, Some(serde_json::json!({"operation": "query", "query": "SELECT Id FROM Contact", "columnDelimiter": "PIPE", "lineEnding": "CRLF"})))
    };
    let (_, job) = create().await;
    let id = job["id"].as_str().expect("id").to_string();
    let (_, info) = client.json(&format!("{jobs}/{id}")).await;
    assert!(
        matches!(
            info["state"].as_str(),
            Some("UploadComplete" | "InProgress")
        ),
        "{info}"
    );
    let (status, body) = client.json(&format!("{jobs}/{id}/results")).await;
    assert_eq!((status, error_code(&body)), (412, "JOB_NOT_COMPLETE"));
    let mut states = vec![info["state"].as_str().unwrap_or_default().to_string()];
    // Poll as clients do, until the job finishes.
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (_, info) = client.json(&format!("{jobs}/{id}")).await;
        let state = info["state"].as_str().unwrap_or_default().to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "JobComplete" {
            break;
        }
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("JobComplete"),
        "{states:?}"
    );
    assert!(states.contains(&"InProgress".to_string()), "{states:?}");
    let response = client.get(&format!("{jobs}/{id}/results")).await;
    let body = response.text().await.expect("CSV");
    assert!(
        body.starts_with("\"Id\"\r\n\"003"),
        "CRLF line endings: {body:?}"
    );

    let (status, body) = client
        .json(&format!("{jobs}/{id}/results?locator=!!!"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "INVALID_LOCATOR"));

    let (_, job) = create().await;
    let id = job["id"].as_str().expect("id").to_string();
    let (status, aborted) = client
        .send(
            Method::PATCH,
            &format!("{jobs}/{id}"),
            Some(serde_json::json!({"state": "Aborted"})),
        )
        .await;
    assert_eq!((status, aborted["state"].as_str()), (200, Some("Aborted")));
    let (_, info) = client.json(&format!("{jobs}/{id}")).await;
    assert_eq!(info["state"], "Aborted");
    let (status, _) = client.json(&format!("{jobs}/{id}/results")).await;
    assert_eq!(status, 412);
    let (_, listed) = client.json(&jobs).await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(2));

    let response = client
        .http
        .post(format!("{}{jobs}", client.base))
        .bearer_auth(&client.token)
        .body("query=SELECT Id FROM Account")
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 415);
    let (status, body) = client
        .send(
            Method::POST,
            &jobs,
            Some(serde_json::json!({"operation": "delete", "query": "SELECT Id FROM Account"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "INVALIDJOB"));
}

#[tokio::test]
async fn wrong_methods_get_the_documented_405() {
    use reqwest::Method;
    let sim = start(100, 1000).await;
    let client = Client::new(&sim);
    let (status, body) = client
        .send(Method::DELETE, &format!("/services/data/{V}/limits"), None)
        .await;
    assert_eq!((status, error_code(&body)), (405, "METHOD_NOT_ALLOWED"));
    assert!(
        body[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("HTTP Method 'DELETE' not allowed."))
    );
}

#[tokio::test]
async fn query_locators_can_be_read_again_across_pages() {
    let sim = start(2000, 1_000_000).await;
    let client = Client::new(&sim);
    let query = |batch: &'static str| {
        client
            .http
            .get(format!("{}/services/data/{V}/query", client.base))
            .query(&[("q", "SELECT Id FROM Contact ORDER BY Id")])
            .header("Sforce-Query-Options", batch)
            .bearer_auth(&client.token)
            .send()
    };
    let first: Value = query("batchSize=200")
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    let next = first["nextRecordsUrl"]
        .as_str()
        .expect("more pages")
        .to_string();
    let (_, once) = client.json(&next).await;
    let (_, twice) = client.json(&next).await;
    assert_eq!(
        once["records"], twice["records"],
        "a page reads the same twice"
    );
    let then = once["nextRecordsUrl"]
        .as_str()
        .expect("a third page")
        .to_string();
    let cursor = |url: &str| {
        url.rsplit('/')
            .next()
            .and_then(|l| l.split('-').next())
            .map(str::to_string)
    };
    assert_eq!(cursor(&next), cursor(&then), "one cursor id across pages");
}

#[tokio::test]
async fn a_bulk_job_can_fail() {
    use reqwest::Method;
    let sim = start(100, 10_000).await;
    let client = Client::new(&sim);
    client
        .admin(
            Method::PUT,
            "faults",
            serde_json::json!([{"kind": "BULK_JOB_FAILED", "times": 1}]),
        )
        .await;
    let jobs = format!("/services/data/{V}/jobs/query");
    let (_, job) = client
        .send(
            Method::POST,
            &jobs,
            Some(serde_json::json!({"operation": "query", "query": "SELECT Id FROM Account"})),
        )
        .await;
    let id = job["id"].as_str().expect("id");
    let (_, info) = client.json(&format!("{jobs}/{id}")).await;
    assert_eq!(info["state"], "Failed");
    assert!(info["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, body) = client.json(&format!("{jobs}/{id}/results")).await;
    assert_eq!((status, error_code(&body)), (412, "JOB_NOT_COMPLETE"));
    let (_, next) = client
        .send(
            Method::POST,
            &jobs,
            Some(serde_json::json!({"operation": "query", "query": "SELECT Id FROM Account"})),
        )
        .await;
    let (_, info) = client
        .json(&format!("{jobs}/{}", next["id"].as_str().expect("id")))
        .await;
    assert_eq!(info["state"], "JobComplete", "the fault struck once");
}

/// Query cursors and Bulk jobs keep what they matched when the query ran; a record purged from
/// the recycle bin since is left out of every page read afterwards, and the others still come.
#[tokio::test]
async fn records_purged_after_a_query_ran_drop_out_of_its_pages_and_results() {
    use reqwest::Method;
    let sim = start(3000, 1_000_000).await;
    let client = Client::new(&sim);
    let first = client
        .first_page("queryAll", "SELECT Id FROM Account")
        .await;
    let ids = |page: &Value| -> Vec<String> {
        page["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["Id"].as_str().expect("Id").to_string())
            .collect()
    };
    let second_url = first["nextRecordsUrl"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = ids(&client.json(&second_url).await.1);
    let (_, job) = client
        .send(
            Method::POST,
            &format!("/services/data/{V}/jobs/query"),
            Some(serde_json::json!({"operation": "queryAll", "query": "SELECT Id FROM Account"})),
        )
        .await;
    let job = job["id"].as_str().expect("job id").to_string();
    let bulk_rows = |body: String| -> Vec<String> {
        body.lines()
            .skip(1)
            .map(|line| line.trim_matches('"').to_string())
            .collect()
    };
    let results = format!("/services/data/{V}/jobs/query/{job}/results");
    let before = bulk_rows(client.get(&results).await.text().await.expect("CSV"));
    assert_eq!(
        before.len() as u64,
        first["totalSize"].as_u64().expect("total")
    );

    let purged = [&second[0], &second[7], &second[199]];
    for id in purged {
        let (status, _) = client
            .send(
                Method::DELETE,
                &format!("/services/data/{V}/sobjects/Account/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    client
        .admin(Method::POST, "recycle-bin/empty", serde_json::json!({}))
        .await;
    let (status, _) = client
        .send(
            Method::POST,
            &format!("/services/data/{V}/sobjects/Account"),
            Some(serde_json::json!({"Name": "Made after the purge"})),
        )
        .await;
    assert_eq!(status, 201);

    let left = |all: &[String]| -> Vec<String> {
        all.iter()
            .filter(|id| !purged.contains(id))
            .cloned()
            .collect()
    };
    let again = ids(&client.json(&second_url).await.1);
    assert_eq!(again, left(&second), "the page again, without the purged");
    let response = client.get(&results).await;
    let counted: usize = response.headers()["Sforce-NumberOfRecords"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    let after = bulk_rows(response.text().await.expect("CSV"));
    assert_eq!(
        after,
        left(&before),
        "the results again, without the purged"
    );
    assert_eq!(counted, after.len());
}

#[tokio::test]
async fn fields_functions_expand_and_need_a_limit_where_salesforce_asks_for_one() {
    let sim = start(200, 10_000).await;
    let client = Client::new(&sim);
    let (status, page) = client
        .json(&query("SELECT FIELDS(ALL) FROM Invoice__c LIMIT 5"))
        .await;
    assert_eq!(status, 200, "{page}");
    let record = page["records"][0].as_object().expect("a record");
    for field in ["Id", "Name", "Account__c", "CreatedDate"] {
        assert!(record.contains_key(field), "{field} in {page}");
    }
    let (_, custom) = client
        .json(&query("SELECT FIELDS(CUSTOM) FROM Invoice__c LIMIT 5"))
        .await;
    let custom = custom["records"][0].as_object().expect("a record");
    assert!(custom.contains_key("Account__c") && !custom.contains_key("CreatedDate"));
    let (status, standard) = client
        .json(&query("SELECT FIELDS(STANDARD) FROM Account"))
        .await;
    assert_eq!(status, 200, "STANDARD needs no LIMIT: {standard}");
    assert!(standard["records"][0]["Name"].is_string());

    for unbounded in [
        "SELECT FIELDS(ALL) FROM Account",
        "SELECT FIELDS(CUSTOM) FROM Account LIMIT 201",
    ] {
        let (status, body) = client.json(&query(unbounded)).await;
        assert_eq!(status, 400, "{unbounded}");
        assert_eq!(error_code(&body), "MALFORMED_QUERY");
        assert!(
            body[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("LIMIT of at most 200")),
            "{body}"
        );
    }
}

/// SOAP and Bulk 1.0 clients read errors in their own XML, even from APIs the simulator does
/// not serve.
#[tokio::test]
async fn unserved_soap_and_bulk_v1_paths_answer_in_their_own_xml() {
    let sim = start(50, 1_000).await;
    let http = reqwest::Client::new();
    let envelope = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:enterprise.soap.sforce.com"><soapenv:Body><urn:describeGlobal/></soapenv:Body></soapenv:Envelope>"#;
    let response = http
        .post(format!("{}/services/Soap/c/62.0", sim.url()))
        .header("Content-Type", "text/xml; charset=UTF-8")
        .header("SOAPAction", "\"\"")
        .body(envelope)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 500);
    assert!(
        response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/xml"))
    );
    let text = response.text().await.expect("body");
    let fault = sfsoap::Message::parse(&text)
        .expect("a SOAP message")
        .fault()
        .expect("a fault");
    assert!(
        fault.message.contains("describeGlobal"),
        "{}",
        fault.message
    );

    let response = http
        .post(format!("{}/services/async/62.0/job", sim.url()))
        .header("X-SFDC-Session", &sim.credentials.access_token)
        .body("<jobInfo/>")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let text = response.text().await.expect("body");
    assert!(
        text.contains("<exceptionCode>FeatureNotEnabled</exceptionCode>"),
        "{text}"
    );
}

#[tokio::test]
async fn parent_to_child_subqueries_nest_each_parents_children() {
    let sim = start(2_000, 10_000).await;
    let client = Client::new(&sim);
    let (status, page) = client
        .json(&query(
            "SELECT Id, Name, (SELECT Id, LastName FROM Contacts ORDER BY LastName DESC LIMIT 2) FROM Account LIMIT 200",
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let accounts = page["records"].as_array().expect("records");
    let mut with_children = 0;
    for account in accounts {
        let id = account["Id"].as_str().expect("Id");
        let (_, count) = client
            .json(&query(&format!(
                "SELECT COUNT() FROM Contact WHERE AccountId = '{id}'"
            )))
            .await;
        let expected = count["totalSize"].as_u64().expect("count").min(2);
        let contacts = &account["Contacts"];
        if expected == 0 {
            assert!(contacts.is_null(), "{account}");
            continue;
        }
        with_children += 1;
        assert_eq!(contacts["totalSize"], expected, "{account}");
        assert_eq!(contacts["done"], true);
        let records = contacts["records"].as_array().expect("child records");
        assert_eq!(records[0]["attributes"]["type"], "Contact");
        if let [first, second] = records.as_slice() {
            assert!(
                first["LastName"].as_str() >= second["LastName"].as_str(),
                "ORDER BY LastName DESC: {contacts}"
            );
        }
    }
    assert!(with_children > 0, "some accounts have contacts: {page}");

    let (status, body) = client
        .json(&query("SELECT Id, (SELECT Id FROM Nothings) FROM Account"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "INVALID_TYPE"), "{body}");

    let (status, body) = client
        .send(
            reqwest::Method::POST,
            &format!("/services/data/{V}/jobs/query"),
            Some(serde_json::json!({
                "operation": "query",
                "query": "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            })),
        )
        .await;
    assert_eq!(status, 400, "the Bulk API takes no subqueries: {body}");
}

#[tokio::test]
async fn semi_joins_and_to_label_filter_and_name_as_salesforce_does() {
    let sim = start(2_000, 10_000).await;
    let client = Client::new(&sim);
    let total = |page: &Value| page["totalSize"].as_u64().expect("totalSize");
    let (_, all) = client.json(&query("SELECT COUNT() FROM Account")).await;
    let (status, with) = client
        .json(&query(
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
        ))
        .await;
    assert_eq!(status, 200, "{with}");
    let (_, without) = client
        .json(&query(
            "SELECT COUNT() FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)",
        ))
        .await;
    assert!(total(&with) > 0 && total(&without) > 0, "{with} {without}");
    assert_eq!(total(&with) + total(&without), total(&all));
    // Each account the semi-join found has a contact.
    let first = with["records"][0]["Id"].as_str().expect("Id");
    let (_, contacts) = client
        .json(&query(&format!(
            "SELECT COUNT() FROM Contact WHERE AccountId = '{first}'"
        )))
        .await;
    assert!(total(&contacts) > 0);

    let (status, body) = client
        .json(&query(
            "SELECT Id FROM Account WHERE Id IN (SELECT LastName FROM Contact)",
        ))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MALFORMED_QUERY"),
        "{body}"
    );

    let (status, page) = client
        .json(&query("SELECT Id, toLabel(Industry) FROM Account LIMIT 3"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["records"][0]
            .as_object()
            .is_some_and(|r| r.contains_key("Industry")),
        "{page}"
    );
}

#[tokio::test]
async fn typeof_chooses_a_polymorphic_parents_fields_by_its_type() {
    let sim = start(2_000, 10_000).await;
    let client = Client::new(&sim);
    let soql = "SELECT Id, WhatId, TYPEOF What WHEN Account THEN Name, Industry WHEN Opportunity THEN Amount ELSE Subject END FROM Task WHERE WhatId != null LIMIT 90";
    let (status, page) = client.json(&query(soql)).await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().expect("records");
    assert!(!records.is_empty(), "{page}");
    let mut types = std::collections::BTreeSet::new();
    for record in records {
        let what = &record["What"];
        let parent = record["WhatId"].as_str().expect("WhatId");
        assert!(
            what["attributes"]["url"]
                .as_str()
                .is_some_and(|url| url.ends_with(parent)),
            "{record}"
        );
        let kind = what["attributes"]["type"].as_str().expect("a type");
        let mut keys: Vec<&str> = what
            .as_object()
            .expect("the parent")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let expected: &[&str] = match kind {
            "Account" => &["Industry", "Name", "attributes"],
            "Opportunity" => &["Amount", "attributes"],
            // ELSE, on the types no WHEN names.
            _ => &["Subject", "attributes"],
        };
        assert_eq!(keys, expected, "{record}");
        types.insert(kind.to_string());
    }
    assert!(
        types.len() >= 3,
        "accounts, opportunities and cases: {types:?}"
    );

    let (status, body) = client
        .json(&query(
            "SELECT Id, TYPEOF Account WHEN Account THEN Name END FROM Contact",
        ))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "INVALID_FIELD"),
        "{body}"
    );
    let (status, body) = client
        .send(
            reqwest::Method::POST,
            &format!("/services/data/{V}/jobs/query"),
            Some(serde_json::json!({"operation": "query", "query": soql})),
        )
        .await;
    assert_eq!(status, 400, "the Bulk API takes no TYPEOF: {body}");
}

#[tokio::test]
async fn aggregate_queries_group_and_name_their_columns() {
    let sim = start(2_000, 10_000).await;
    let client = Client::new(&sim);
    let (_, all) = client.json(&query("SELECT COUNT() FROM Account")).await;
    let (status, grouped) = client
        .json(&query(
            "SELECT Industry, COUNT(Id), COUNT_DISTINCT(Name) names FROM Account GROUP BY Industry ORDER BY Industry",
        ))
        .await;
    assert_eq!(status, 200, "{grouped}");
    let rows = grouped["records"].as_array().expect("rows");
    assert!(rows.len() > 1, "{grouped}");
    let mut sum = 0;
    for row in rows {
        assert_eq!(row["attributes"]["type"], "AggregateResult");
        assert!(row.as_object().is_some_and(|r| r.contains_key("Industry")));
        let industry = row["Industry"].as_str();
        let counted = row["expr0"].as_u64().expect("expr0");
        assert!(row["names"].as_u64().is_some_and(|n| n <= counted), "{row}");
        let filter = match industry {
            Some(name) => format!("Industry = '{name}'"),
            None => "Industry = null".to_string(),
        };
        let (_, alone) = client
            .json(&query(&format!(
                "SELECT COUNT() FROM Account WHERE {filter}"
            )))
            .await;
        assert_eq!(alone["totalSize"].as_u64(), Some(counted), "{row}");
        sum += counted;
    }
    assert_eq!(Some(sum), all["totalSize"].as_u64());

    let (status, total) = client.json(&query("SELECT COUNT(Id) FROM Account")).await;
    assert_eq!(status, 200, "{total}");
    assert_eq!(total["records"][0]["expr0"], all["totalSize"]);

    let (status, body) = client
        .json(&query(
            "SELECT Name, COUNT(Id) FROM Account GROUP BY Industry",
        ))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MALFORMED_QUERY"),
        "{body}"
    );
    assert!(
        body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Field must be grouped or aggregated: Name")),
        "{body}"
    );
}
