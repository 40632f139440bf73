//! Bulk API 2.0 ingest over real HTTP: the job's life (Open, UploadComplete, JobComplete or
//! Failed), one upload per job, rows that fail on their own, and the three result sets in their
//! documented CSV shapes.

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::{Value, json};

const V: &str = "v62.0";

async fn start() -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 9,
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

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(sim: &Simulator) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: format!("{}/services/data/{V}", sim.url()),
            token: sim.credentials.access_token.clone(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let (status, text) = self.send(request).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, body: Value) -> Value {
        let (status, job) = self
            .json(
                self.http
                    .post(format!("{}/jobs/ingest", self.base))
                    .json(&body),
            )
            .await;
        assert_eq!(status, 200, "{job}");
        job
    }

    async fn upload(&self, job: &str, csv: &str) -> (u16, String) {
        self.send(
            self.http
                .put(format!("{}/jobs/ingest/{job}/batches", self.base))
                .header("Content-Type", "text/csv")
                .body(csv.to_string()),
        )
        .await
    }

    async fn close(&self, job: &str) -> (u16, Value) {
        self.json(
            self.http
                .patch(format!("{}/jobs/ingest/{job}", self.base))
                .json(&json!({"state": "UploadComplete"})),
        )
        .await
    }

    async fn info(&self, job: &str) -> Value {
        self.json(self.http.get(format!("{}/jobs/ingest/{job}", self.base)))
            .await
            .1
    }

    async fn results(&self, job: &str, set: &str) -> Vec<Vec<String>> {
        let (status, text) = self
            .send(
                self.http
                    .get(format!("{}/jobs/ingest/{job}/{set}", self.base)),
            )
            .await;
        assert_eq!(status, 200, "{set}: {text}");
        text.lines()
            .map(|line| {
                line.split(',')
                    .map(|v| v.trim_matches('"').to_string())
                    .collect()
            })
            .collect()
    }

    async fn count(&self, soql: &str) -> u64 {
        let (_, body) = self
            .json(
                self.http
                    .get(format!("{}/query", self.base))
                    .query(&[("q", soql)]),
            )
            .await;
        body["totalSize"].as_u64().expect("totalSize")
    }
}

#[tokio::test]
async fn an_insert_job_runs_from_open_to_complete_and_reports_each_row() {
    let sim = start().await;
    let client = Client::new(&sim);
    let job = client
        .create(json!({"object": "Contact", "operation": "insert", "lineEnding": "LF"}))
        .await;
    assert_eq!(job["state"], "Open");
    assert_eq!(job["contentType"], "CSV");
    let id = job["id"].as_str().expect("an Id").to_string();
    assert!(id.starts_with("750"));
    assert_eq!(
        job["contentUrl"],
        format!("services/data/{V}/jobs/ingest/{id}/batches")
    );
    let csv = "FirstName,LastName,Email\nAda,Ingest,ada@example.com\nBea,Ingest,not-an-email\n\"Chen, Jr\",Ingest,\n";
    let (status, body) = client.upload(&id, csv).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.is_empty());
    let (status, twice) = client.upload(&id, csv).await;
    assert_eq!(status, 400, "one upload per job: {twice}");
    assert!(twice.contains("INVALIDJOBSTATE"), "{twice}");
    let (status, closed) = client.close(&id).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["state"], "UploadComplete");
    let info = client.info(&id).await;
    assert_eq!(info["state"], "JobComplete", "{info}");
    assert_eq!(info["jobType"], "V2Ingest");
    assert_eq!(info["numberRecordsProcessed"], 3);
    assert_eq!(info["numberRecordsFailed"], 1);
    let successful = client.results(&id, "successfulResults").await;
    assert_eq!(successful[0][..3], ["sf__Id", "sf__Created", "FirstName"]);
    assert_eq!(successful.len(), 3, "{successful:?}");
    assert!(successful[1][0].starts_with("003") && successful[1][1] == "true");
    let failed = client.results(&id, "failedResults").await;
    assert_eq!(failed[0][..2], ["sf__Id", "sf__Error"]);
    assert_eq!(failed.len(), 2);
    assert!(
        failed[1][1].starts_with("INVALID_EMAIL_ADDRESS:"),
        "{failed:?}"
    );
    assert_eq!(failed[1][2], "Bea");
    let unprocessed = client.results(&id, "unprocessedrecords").await;
    assert_eq!(unprocessed.len(), 1, "only the header: {unprocessed:?}");
    assert_eq!(
        client
            .count("SELECT COUNT() FROM Contact WHERE LastName = 'Ingest'")
            .await,
        2
    );
    let (status, _) = client.upload(&id, csv).await;
    assert_eq!(status, 400, "a closed job takes no data");
}

#[tokio::test]
async fn a_header_naming_an_unknown_field_fails_the_job_with_every_row_unprocessed() {
    let sim = start().await;
    let client = Client::new(&sim);
    let job = client
        .create(json!({"object": "Account", "operation": "insert"}))
        .await;
    let id = job["id"].as_str().expect("an Id").to_string();
    client.upload(&id, "Name,Nope__c\nA,1\nB,2\n").await;
    client.close(&id).await;
    let info = client.info(&id).await;
    assert_eq!(info["state"], "Failed", "{info}");
    assert_eq!(
        info["errorMessage"],
        "InvalidBatch : Field name not found : Nope__c"
    );
    assert_eq!(info["numberRecordsProcessed"], 0);
    let unprocessed = client.results(&id, "unprocessedrecords").await;
    assert_eq!(
        unprocessed,
        [vec!["Name", "Nope__c"], vec!["A", "1"], vec!["B", "2"]]
    );
    assert_eq!(
        client
            .count("SELECT COUNT() FROM Account WHERE Name IN ('A', 'B')")
            .await,
        0
    );
}

#[tokio::test]
async fn update_upsert_and_delete_jobs_write_what_their_rows_say() {
    let sim = start().await;
    let client = Client::new(&sim);
    let (_, body) = client
        .json(
            client
                .http
                .get(format!("{}/query", client.base))
                .query(&[("q", "SELECT Id FROM Account ORDER BY Id LIMIT 3")]),
        )
        .await;
    let ids: Vec<String> = body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_string())
        .collect();

    let update = client
        .create(json!({"object": "Account", "operation": "update"}))
        .await;
    let id = update["id"].as_str().expect("an Id").to_string();
    let csv = format!(
        "Id,Industry,Phone\n{},Retail,#N/A\n{},Retail,\n",
        ids[0], ids[1]
    );
    client.upload(&id, &csv).await;
    client.close(&id).await;
    assert_eq!(client.info(&id).await["numberRecordsFailed"], 0);
    assert_eq!(
        client
            .count(&format!(
                "SELECT COUNT() FROM Account WHERE Id = '{}' AND Phone = null",
                ids[0]
            ))
            .await,
        1,
        "#N/A clears a field"
    );
    assert_eq!(
        client
            .count(&format!(
                "SELECT COUNT() FROM Account WHERE Id = '{}' AND Phone != null",
                ids[1]
            ))
            .await,
        1,
        "an empty value leaves it"
    );

    let upsert = client
        .create(json!({"object": "Invoice__c", "operation": "upsert", "externalIdFieldName": "Invoice_Number__c"}))
        .await;
    assert_eq!(upsert["externalIdFieldName"], "Invoice_Number__c");
    let id = upsert["id"].as_str().expect("an Id").to_string();
    client
        .upload(
            &id,
            &format!(
                "Invoice_Number__c,Name,Account__c,Amount__c\nBULK-1,One,{0},10\nBULK-2,Two,{0},20\n",
                ids[0]
            ),
        )
        .await;
    client.close(&id).await;
    let created = client.results(&id, "successfulResults").await;
    assert!(
        created[1..].iter().all(|row| row[1] == "true"),
        "{created:?}"
    );
    let again = client
        .create(json!({"object": "Invoice__c", "operation": "upsert", "externalIdFieldName": "Invoice_Number__c"}))
        .await;
    let id = again["id"].as_str().expect("an Id").to_string();
    client
        .upload(&id, "Invoice_Number__c,Amount__c\nBULK-1,11\n")
        .await;
    client.close(&id).await;
    let matched = client.results(&id, "successfulResults").await;
    assert_eq!(
        matched[1][1], "false",
        "an existing key is updated: {matched:?}"
    );
    assert_eq!(matched[1][0], created[1][0]);

    let delete = client
        .create(json!({"object": "Account", "operation": "delete"}))
        .await;
    let id = delete["id"].as_str().expect("an Id").to_string();
    client.upload(&id, &format!("Id\n{}\n", ids[2])).await;
    client.close(&id).await;
    assert_eq!(client.info(&id).await["numberRecordsProcessed"], 1);
    assert_eq!(
        client
            .count(&format!(
                "SELECT COUNT() FROM Account WHERE Id = '{}'",
                ids[2]
            ))
            .await,
        0
    );
}

#[tokio::test]
async fn jobs_the_api_does_not_take_are_refused_at_creation() {
    let sim = start().await;
    let client = Client::new(&sim);
    for body in [
        json!({"object": "Account", "operation": "merge"}),
        json!({"object": "Nope__c", "operation": "insert"}),
        json!({"object": "Account", "operation": "upsert"}),
        json!({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}),
        json!({"object": "Account", "operation": "insert", "contentType": "JSON"}),
        json!({"object": "Account", "operation": "hardDelete"}),
    ] {
        let (status, answer) = client
            .json(
                client
                    .http
                    .post(format!("{}/jobs/ingest", client.base))
                    .json(&body),
            )
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer[0]["errorCode"], "INVALIDJOB", "{body}: {answer}");
    }
}
