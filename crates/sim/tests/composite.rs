//! `/composite` over real HTTP: subrequests answered as the resources answer alone, references
//! between them, one API call for all of them, the limits, and both `allOrNone` behaviours; and
//! `/composite/tree`: record trees created whole or not at all; and `/composite/batch`:
//! independent subrequests in one call.

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::{Value, json};

const V: &str = "v62.0";

async fn start() -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 7,
                population: Population::spread(200),
                api_max: 10_000,
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

    /// POSTs `body` to a resource under /services/data/vXX.X/: status, answer, limit info.
    async fn post(&self, resource: &str, body: Value) -> (u16, Value, Option<String>) {
        let response = self
            .http
            .post(format!("{}/services/data/{V}/{resource}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let info = response
            .headers()
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, response.json().await.expect("JSON"), info)
    }

    async fn composite(&self, body: Value) -> (u16, Value, Option<String>) {
        self.post("composite", body).await
    }

    async fn tree(&self, object: &str, body: Value) -> (u16, Value, Option<String>) {
        self.post(&format!("composite/tree/{object}"), body).await
    }

    async fn count(&self, soql: &str) -> u64 {
        let response = self
            .http
            .get(format!("{}/services/data/{V}/query", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let body: Value = response.json().await.expect("JSON");
        body["totalSize"].as_u64().expect("totalSize")
    }
}

/// `api-usage=N/M` -> N.
fn used(info: &Option<String>) -> u64 {
    info.as_deref()
        .and_then(|i| i.strip_prefix("api-usage="))
        .and_then(|i| i.split('/').next())
        .and_then(|n| n.parse().ok())
        .expect("Sforce-Limit-Info")
}

#[tokio::test]
async fn subrequests_refer_to_earlier_answers_and_cost_one_call_together() {
    let sim = start().await;
    let client = Client::new(&sim);
    let (_, _, before) = client
        .composite(json!({"compositeRequest": [
            {"method": "GET", "url": format!("/services/data/{V}/limits"), "referenceId": "limits"}
        ]}))
        .await;
    let (status, body, after) = client
        .composite(json!({"compositeRequest": [
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Account"),
             "referenceId": "newAccount", "body": {"Name": "Composite Ltd"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Contact"),
             "referenceId": "newContact",
             "body": {"LastName": "Okafor", "AccountId": "@{newAccount.id}"}},
            {"method": "GET",
             "url": format!("/services/data/{V}/query?q=SELECT+Id,AccountId+FROM+Contact+WHERE+Id='@{{newContact.id}}'"),
             "referenceId": "readBack"},
            {"method": "GET", "url": format!("/services/data/{V}/sobjects/Account/@{{newAccount.id}}"),
             "referenceId": "account"},
        ]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["compositeResponse"]
        .as_array()
        .expect("compositeResponse");
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["httpStatusCode"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, [201, 201, 200, 200], "{body}");
    let account = results[0]["body"]["id"].as_str().expect("id");
    assert!(
        results[0]["httpHeaders"]["Location"]
            .as_str()
            .is_some_and(|l| l.ends_with(account)),
        "{body}"
    );
    assert_eq!(results[1]["referenceId"], "newContact");
    assert_eq!(results[2]["body"]["records"][0]["AccountId"], account);
    assert_eq!(results[3]["body"]["Name"], "Composite Ltd");
    assert_eq!(
        used(&after),
        used(&before) + 1,
        "the whole composite is one call"
    );
}

#[tokio::test]
async fn a_failed_subrequest_halts_what_refers_to_it_or_rolls_back_everything() {
    let sim = start().await;
    let client = Client::new(&sim);
    let accounts = "SELECT COUNT() FROM Account";
    let before = client.count(accounts).await;
    let request = |all_or_none: bool| {
        json!({"allOrNone": all_or_none, "compositeRequest": [
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Account"),
             "referenceId": "kept", "body": {"Name": "Stays unless all or none"}},
            {"method": "POST", "url": format!("/services/data/{V}/sobjects/Contact"),
             "referenceId": "noName", "body": {"FirstName": "Ada"}},
            {"method": "PATCH", "url": format!("/services/data/{V}/sobjects/Contact/@{{noName.id}}"),
             "referenceId": "dependent", "body": {"Title": "CTO"}},
        ]})
    };

    let (status, body, _) = client.composite(request(false)).await;
    assert_eq!(status, 200, "{body}");
    let results = &body["compositeResponse"];
    assert_eq!(results[0]["httpStatusCode"], 201, "{body}");
    assert_eq!(results[1]["httpStatusCode"], 400, "{body}");
    assert_eq!(results[1]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(results[2]["httpStatusCode"], 400, "{body}");
    assert_eq!(results[2]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(client.count(accounts).await, before + 1);

    let (status, body, _) = client.composite(request(true)).await;
    assert_eq!(status, 200, "{body}");
    let results = &body["compositeResponse"];
    for (n, code) in [
        (0, "PROCESSING_HALTED"),
        (1, "REQUIRED_FIELD_MISSING"),
        (2, "PROCESSING_HALTED"),
    ] {
        assert_eq!(results[n]["httpStatusCode"], 400, "{body}");
        assert_eq!(results[n]["body"][0]["errorCode"], code, "{body}");
    }
    assert_eq!(
        client.count(accounts).await,
        before + 1,
        "all or none: the account it created was rolled back"
    );
}

#[tokio::test]
async fn more_than_25_subrequests_or_5_queries_are_refused_whole() {
    let sim = start().await;
    let client = Client::new(&sim);
    let get = |n: usize, path: &str| json!({"method": "GET", "url": format!("/services/data/{V}/{path}"), "referenceId": format!("r{n}")});
    let too_many: Vec<Value> = (0..26).map(|n| get(n, "limits")).collect();
    let (status, body, _) = client
        .composite(json!({"compositeRequest": too_many}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body[0]["errorCode"].is_string(), "{body}");

    let queries: Vec<Value> = (0..6)
        .map(|n| get(n, "query?q=SELECT+Id+FROM+Account+LIMIT+1"))
        .collect();
    let (status, body, _) = client.composite(json!({"compositeRequest": queries})).await;
    assert_eq!(status, 400, "{body}");

    let five: Vec<Value> = (0..5)
        .map(|n| get(n, "queryAll?q=SELECT+Id+FROM+Account+LIMIT+1"))
        .chain((5..25).map(|n| get(n, "limits")))
        .collect();
    let (status, body, _) = client.composite(json!({"compositeRequest": five})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["compositeResponse"].as_array().map(Vec::len), Some(25));

    let twice = json!({"compositeRequest": [get(0, "limits"), get(0, "limits")]});
    let (status, _, _) = client.composite(twice).await;
    assert_eq!(status, 400);
}

/// The resource list names only resources the org serves, and each one answers.
#[tokio::test]
async fn every_advertised_resource_answers() {
    let sim = start().await;
    let client = reqwest::Client::new();
    let token = sim.credentials.access_token.clone();
    let list: Value = client
        .get(format!("{}/services/data/{V}", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("resources")
        .json()
        .await
        .expect("JSON");
    let resources = list.as_object().expect("a map of resources");
    assert!(resources.contains_key("composite"), "{list}");
    for (name, path) in resources {
        let path = path.as_str().expect("a path");
        let url = match name.as_str() {
            "query" | "queryAll" => format!("{}{path}?q=SELECT+Id+FROM+Account+LIMIT+1", sim.url()),
            "jobs" => format!("{}{path}/query", sim.url()),
            "search" => format!("{}{path}?q=FIND+%7BAcme%7D", sim.url()),
            _ => format!("{}{path}", sim.url()),
        };
        let request = match name.as_str() {
            "composite" => client
                .post(&url)
                .json(&json!({"compositeRequest": [{"method": "GET", "url": format!("/services/data/{V}/limits"), "referenceId": "l"}]})),
            _ => client.get(&url),
        };
        let response = request.bearer_auth(&token).send().await.expect("request");
        assert_eq!(response.status(), 200, "{name} at {path}");
    }
}

/// An Account with `contacts` Contacts under it, as `data import tree` writes one.
fn account_tree(name: &str, reference: &str, contacts: &[&str]) -> Value {
    let children: Vec<Value> = contacts
        .iter()
        .map(|last| {
            json!({"attributes": {"type": "Contact", "referenceId": format!("{reference}-{last}")},
                   "LastName": last})
        })
        .collect();
    json!({
        "attributes": {"type": "Account", "referenceId": reference},
        "Name": name,
        "Contacts": {"records": children},
    })
}

#[tokio::test]
async fn a_tree_creates_parents_then_children_linked_to_them_in_one_call() {
    let sim = start().await;
    let client = Client::new(&sim);
    let (_, _, before) = client
        .tree(
            "Account",
            json!({"records": [account_tree("Warm up", "w", &[])]}),
        )
        .await;
    let body = json!({"records": [
        account_tree("Tree One", "a1", &["Ames", "Bell"]),
        account_tree("Tree Two", "a2", &["Cole"]),
    ]});
    let (status, answer, after) = client.tree("Account", body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["hasErrors"], false);
    let results = answer["results"].as_array().expect("results");
    let references: Vec<&str> = results
        .iter()
        .map(|r| r["referenceId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(references, ["a1", "a2", "a1-Ames", "a1-Bell", "a2-Cole"]);
    assert_eq!(
        used(&after),
        used(&before) + 1,
        "one call for the whole tree"
    );
    let account = results[0]["id"].as_str().expect("an Id");
    assert!(account.starts_with("001"));
    assert_eq!(
        client
            .count(&format!(
                "SELECT COUNT() FROM Contact WHERE AccountId = '{account}'"
            ))
            .await,
        2,
        "the children point at their new parent"
    );
    assert_eq!(
        client
            .count(&format!(
                "SELECT COUNT() FROM Account WHERE Id = '{account}' AND OwnerId != null"
            ))
            .await,
        1,
        "a record created without an owner is its creator's"
    );
}

#[tokio::test]
async fn a_failing_record_undoes_the_whole_tree_and_is_the_only_result() {
    let sim = start().await;
    let client = Client::new(&sim);
    let accounts = client.count("SELECT COUNT() FROM Account").await;
    let contacts = client.count("SELECT COUNT() FROM Contact").await;
    let mut second = account_tree("Tree Two", "a2", &["Cole"]);
    // A Contact needs a LastName.
    second["Contacts"]["records"][0]
        .as_object_mut()
        .expect("a record")
        .remove("LastName");
    let body = json!({"records": [account_tree("Tree One", "a1", &["Ames"]), second]});
    let (status, answer, _) = client.tree("Account", body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["hasErrors"], true);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{answer}");
    assert_eq!(results[0]["referenceId"], "a2-Cole");
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(client.count("SELECT COUNT() FROM Account").await, accounts);
    assert_eq!(client.count("SELECT COUNT() FROM Contact").await, contacts);
}

#[tokio::test]
async fn a_tree_over_the_limits_or_with_a_reused_reference_creates_nothing() {
    let sim = start().await;
    let client = Client::new(&sim);
    let accounts = client.count("SELECT COUNT() FROM Account").await;
    let many: Vec<Value> = (0..201)
        .map(|i| account_tree(&format!("Many {i}"), &format!("m{i}"), &[]))
        .collect();
    let (status, answer, _) = client.tree("Account", json!({"records": many})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["hasErrors"], true);
    let twice = json!({"records": [
        account_tree("Same", "same", &[]),
        account_tree("Same again", "same", &[]),
    ]});
    let (status, answer, _) = client.tree("Account", twice).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["results"][0]["referenceId"], "same");
    // A root of another type than the URL names.
    let wrong_root = json!({"records": [
        {"attributes": {"type": "Contact", "referenceId": "c"}, "LastName": "Root"}
    ]});
    let (status, answer, _) = client.tree("Account", wrong_root).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(client.count("SELECT COUNT() FROM Account").await, accounts);
}

#[tokio::test]
async fn a_batch_runs_each_subrequest_alone_in_one_call() {
    let sim = start().await;
    let client = Client::new(&sim);
    let (status, answer, after) = client
        .post(
            "composite/batch",
            json!({"batchRequests": [
                {"method": "POST", "url": format!("{V}/sobjects/Account"), "richInput": {"Name": "Batch One"}},
                {"method": "POST", "url": format!("{V}/sobjects/Contact"), "richInput": {"FirstName": "No last name"}},
                {"method": "GET", "url": format!("{V}/query?q=SELECT+COUNT()+FROM+Account+WHERE+Name='Batch+One'")},
            ]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["hasErrors"], true, "{answer}");
    let codes: Vec<u64> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(codes, [201, 400, 200], "{answer}");
    assert_eq!(
        answer["results"][1]["result"][0]["errorCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(
        answer["results"][2]["result"]["totalSize"], 1,
        "a failure does not undo the others"
    );

    let (_, halted, again) = client
        .post(
            "composite/batch",
            json!({"haltOnError": true, "batchRequests": [
                {"method": "GET", "url": format!("{V}/sobjects/Nope__c/describe")},
                {"method": "GET", "url": format!("{V}/limits")},
            ]}),
        )
        .await;
    assert_eq!(used(&again), used(&after) + 1, "a batch is one call");
    assert_eq!(halted["results"][0]["statusCode"], 404, "{halted}");
    assert_eq!(halted["results"][1]["statusCode"], 412, "{halted}");
    assert_eq!(
        halted["results"][1]["result"][0]["errorCode"],
        "BATCH_PROCESSING_HALTED"
    );

    let too_many: Vec<Value> = (0..26)
        .map(|_| json!({"method": "GET", "url": format!("{V}/limits")}))
        .collect();
    let (status, _, _) = client
        .post("composite/batch", json!({"batchRequests": too_many}))
        .await;
    assert_eq!(status, 400);
}
