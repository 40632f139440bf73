//! Files over real HTTP: documents, versions, links and attachments in a generated org; their
//! bodies read one per call as raw bytes; and the rules Salesforce sets around them (links
//! listed only by Id, no bodies in Bulk queries or composite calls, no filters on bodies).

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use md5::{Digest, Md5};
use serde_json::{Value, json};

const V: &str = "v62.0";

const LINK_RESTRICTION: &str = "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN operator.";

struct Org {
    sim: Simulator,
    http: reqwest::Client,
}

impl Org {
    async fn start() -> Org {
        let sim = Simulator::start(
            SimOptions {
                org: OrgOptions {
                    seed: 9,
                    population: Population::spread(500),
                    clock: Clock::fixed(1_749_988_800_000),
                    // The API user of a fresh org: links need a filter, private files are
                    // out of its sight.
                    query_all_files: false,
                    ..OrgOptions::default()
                },
                ..SimOptions::default()
            },
            0,
        )
        .await
        .expect("simulator starts");
        Org {
            sim,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.sim.url()))
            .bearer_auth(&self.sim.credentials.access_token)
            .send()
            .await
            .expect("request")
    }

    async fn query(&self, soql: &str) -> (u16, Value) {
        self.query_on("query", soql).await
    }

    async fn query_on(&self, resource: &str, soql: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/services/data/{V}/{resource}", self.sim.url()))
            .query(&[("q", soql)])
            .bearer_auth(&self.sim.credentials.access_token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    async fn post(&self, resource: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/services/data/{V}/{resource}", self.sim.url()))
            .bearer_auth(&self.sim.credentials.access_token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// A ContentVersion inserted with a body in parts.
    async fn post_parts(&self, boundary: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/services/data/{V}/sobjects/ContentVersion/",
                self.sim.url()
            ))
            .bearer_auth(&self.sim.credentials.access_token)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// The simulator's own API (`/__sim/...`).
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}/__sim/{path}", self.sim.url()))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(response.status().is_success(), "{path}");
        response.json().await.expect("JSON body")
    }

    async fn api_calls_used(&self) -> u64 {
        let limits: Value = self
            .get(&format!("/services/data/{V}/limits"))
            .await
            .json()
            .await
            .expect("limits");
        let daily = &limits["DailyApiRequests"];
        daily["Max"].as_u64().unwrap_or_default() - daily["Remaining"].as_u64().unwrap_or_default()
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_body_is_read_as_raw_bytes_whose_md5_and_size_the_record_gives() {
    let org = Org::start().await;
    let (status, versions) = org
        .query("SELECT Id, Title, VersionData, Checksum, ContentSize, FileExtension FROM ContentVersion ORDER BY Id LIMIT 4")
        .await;
    assert_eq!(status, 200, "{versions}");
    let records = versions["records"].as_array().expect("records");
    assert_eq!(records.len(), 4, "the org has files: {versions}");
    for record in records {
        let id = record["Id"].as_str().expect("Id");
        let url = record["VersionData"]
            .as_str()
            .expect("a body's URL, not its bytes");
        assert_eq!(
            url,
            format!("/services/data/{V}/sobjects/ContentVersion/{id}/VersionData")
        );
        let before = org.api_calls_used().await;
        let response = org.get(url).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["Content-Type"],
            "application/octetstream"
        );
        let bytes = response.bytes().await.expect("body");
        // One call for the body (and one for the limits read after it).
        assert_eq!(org.api_calls_used().await - before, 2);
        assert_eq!(Some(bytes.len() as u64), record["ContentSize"].as_u64());
        assert_eq!(md5_hex(&bytes), record["Checksum"], "{record}");
    }
    let (_, attachments) = org
        .query("SELECT Id, Name, Body, BodyLength, ParentId FROM Attachment LIMIT 2")
        .await;
    let attachment = &attachments["records"][0];
    let url = attachment["Body"].as_str().expect("Body's URL");
    let bytes = org.get(url).await.bytes().await.expect("body");
    assert_eq!(Some(bytes.len() as u64), attachment["BodyLength"].as_u64());
    // The record read gives the same URL.
    let id = attachment["Id"].as_str().expect("Id");
    let record: Value = org
        .get(&format!("/services/data/{V}/sobjects/Attachment/{id}"))
        .await
        .json()
        .await
        .expect("record");
    assert_eq!(record["Body"], url);
    // Not a body: a plain field, an unknown record, a deleted one.
    let not_a_body = org
        .get(&format!("/services/data/{V}/sobjects/Attachment/{id}/Name"))
        .await;
    assert_eq!(not_a_body.status(), 404);
    let unknown = org
        .get(&format!(
            "/services/data/{V}/sobjects/Attachment/00P000000000000AAA/Body"
        ))
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn versions_of_a_document_keep_one_latest_and_the_document_points_at_it() {
    let org = Org::start().await;
    let (_, documents) = org
        .query("SELECT Id, LatestPublishedVersionId, ContentSize, (SELECT Id, IsLatest, VersionNumber, ContentSize FROM ContentVersions) FROM ContentDocument")
        .await;
    let documents = documents["records"].as_array().expect("documents");
    assert!(documents.len() >= 5, "{documents:?}");
    let mut several = 0;
    for document in documents {
        let versions = document["ContentVersions"]["records"]
            .as_array()
            .expect("versions");
        let latest: Vec<&Value> = versions.iter().filter(|v| v["IsLatest"] == true).collect();
        assert_eq!(latest.len(), 1, "{document}");
        assert_eq!(latest[0]["Id"], document["LatestPublishedVersionId"]);
        assert_eq!(latest[0]["ContentSize"], document["ContentSize"]);
        assert_eq!(latest[0]["VersionNumber"], versions.len().to_string());
        several += usize::from(versions.len() > 1);
    }
    assert!(several > 0, "some documents have several versions");
}

#[tokio::test]
async fn links_between_files_and_records_are_listed_only_by_id() {
    let org = Org::start().await;
    let (_, versions) = org
        .query("SELECT ContentDocumentId, FirstPublishLocationId FROM ContentVersion LIMIT 2")
        .await;
    let document = versions["records"][0]["ContentDocumentId"]
        .as_str()
        .expect("a document");
    let shared_with = versions["records"][0]["FirstPublishLocationId"]
        .as_str()
        .expect("a record");
    let other = versions["records"][1]["ContentDocumentId"]
        .as_str()
        .expect("another document");
    for refused in [
        "SELECT Id FROM ContentDocumentLink".to_string(),
        "SELECT Id FROM ContentDocumentLink WHERE ShareType = 'V'".to_string(),
        format!("SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId != '{document}'"),
        format!(
            "SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{document}' OR ShareType = 'V'"
        ),
    ] {
        let (status, body) = org.query(&refused).await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{refused}");
        assert_eq!(body[0]["message"], LINK_RESTRICTION, "{refused}");
    }
    let (status, _) = org
        .query_on("queryAll", "SELECT Id FROM ContentDocumentLink")
        .await;
    assert_eq!(status, 400);
    let (status, body) = org
        .post(
            "jobs/query",
            json!({"operation": "query", "query": "SELECT Id FROM ContentDocumentLink"}),
        )
        .await;
    assert_eq!(
        (status, &body[0]["message"]),
        (400, &json!(LINK_RESTRICTION))
    );

    let (status, by_document) = org
        .query(&format!(
            "SELECT Id, LinkedEntityId, ShareType, Visibility FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
        ))
        .await;
    assert_eq!(status, 200, "{by_document}");
    let linked: Vec<&str> = by_document["records"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["LinkedEntityId"].as_str())
        .collect();
    // Shared with its owner and with the record it was published on.
    assert_eq!(linked.len(), 2, "{by_document}");
    assert!(linked.contains(&shared_with), "{by_document}");
    assert!(linked.iter().any(|l| l.starts_with("005")), "{by_document}");
    for accepted in [
        format!("SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '{shared_with}'"),
        format!(
            "SELECT Id FROM ContentDocumentLink WHERE Id IN ('{}')",
            by_document["records"][0]["Id"].as_str().expect("a link")
        ),
        format!(
            "SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN ('{document}', '{other}') AND ShareType = 'V'"
        ),
        "SELECT ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId IN (SELECT Id FROM Account)".to_string(),
    ] {
        let (status, body) = org.query(&accepted).await;
        assert_eq!(status, 200, "{accepted}: {body}");
        assert!(body["totalSize"].as_u64() > Some(0), "{accepted}: {body}");
    }
    // A link has no created or last-modified fields, only SystemModstamp.
    let describe: Value = org
        .get(&format!(
            "/services/data/{V}/sobjects/ContentDocumentLink/describe"
        ))
        .await
        .json()
        .await
        .expect("describe");
    let names: Vec<&str> = describe["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"SystemModstamp") && !names.contains(&"CreatedDate"));
}

#[tokio::test]
async fn bodies_stay_out_of_bulk_queries_composite_calls_and_filters() {
    let org = Org::start().await;
    let (status, body) = org
        .post(
            "jobs/query",
            json!({"operation": "query", "query": "SELECT Id, Title, VersionData FROM ContentVersion"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        format!(
            "{} : {}",
            body[0]["errorCode"].as_str().unwrap_or_default(),
            body[0]["message"].as_str().unwrap_or_default()
        ),
        "FEATURENOTENABLED : Binary field not supported"
    );
    let (status, body) = org
        .post(
            "jobs/query",
            json!({"operation": "query", "query": "SELECT Id, Title, Checksum FROM ContentVersion"}),
        )
        .await;
    assert_eq!(status, 200, "without the body the job runs: {body}");

    let (_, versions) = org
        .query("SELECT Id, VersionData FROM ContentVersion LIMIT 1")
        .await;
    let url = versions["records"][0]["VersionData"]
        .as_str()
        .expect("a body's URL");
    let (status, body) = org
        .post(
            "composite",
            json!({"compositeRequest": [
                {"method": "GET", "url": url, "referenceId": "body"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["compositeResponse"][0]["httpStatusCode"], 400,
        "{body}"
    );

    let (status, body) = org
        .query("SELECT Id FROM ContentVersion WHERE VersionData != null")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("field 'VersionData' can not be filtered in query call"),
        "{body}"
    );
}

#[tokio::test]
async fn a_file_created_through_the_api_gets_its_document_links_and_history() {
    use base64::Engine;
    let org = Org::start().await;
    let (_, accounts) = org.query("SELECT Id FROM Account LIMIT 1").await;
    let account = accounts["records"][0]["Id"].as_str().expect("an account");
    let first = b"first draft of the contract".to_vec();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let (status, created) = org
        .post(
            "sobjects/ContentVersion",
            json!({"Title": "Contract", "PathOnClient": "Contract.PDF",
                   "VersionData": encode(&first), "FirstPublishLocationId": account}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let version = created["id"].as_str().expect("an Id");
    let (_, read) = org
        .query(&format!(
            "SELECT ContentDocumentId, Checksum, ContentSize, FileExtension, FileType, IsLatest, VersionNumber FROM ContentVersion WHERE Id = '{version}'"
        ))
        .await;
    let record = &read["records"][0];
    assert_eq!(record["Checksum"], md5_hex(&first));
    assert_eq!(record["ContentSize"], first.len());
    assert_eq!(
        (&record["FileExtension"], &record["FileType"]),
        (&json!("pdf"), &json!("PDF"))
    );
    assert_eq!(
        (&record["IsLatest"], &record["VersionNumber"]),
        (&json!(true), &json!("1"))
    );
    let document = record["ContentDocumentId"]
        .as_str()
        .expect("a new document");
    assert!(document.starts_with("069"), "{record}");
    let (_, links) = org
        .query(&format!(
            "SELECT LinkedEntityId, ShareType FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
        ))
        .await;
    assert_eq!(links["totalSize"], 2, "owner and account: {links}");
    assert!(
        links["records"]
            .as_array()
            .expect("links")
            .iter()
            .any(|l| l["LinkedEntityId"] == account && l["ShareType"] == "V"),
        "{links}"
    );

    let second = b"signed contract".to_vec();
    let (status, created) = org
        .post(
            "sobjects/ContentVersion",
            json!({"Title": "Contract", "PathOnClient": "Contract.pdf",
                   "VersionData": encode(&second), "ContentDocumentId": document}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let latest = created["id"].as_str().expect("an Id");
    let (_, history) = org
        .query(&format!(
            "SELECT Id, IsLatest, VersionNumber FROM ContentVersion WHERE ContentDocumentId = '{document}' ORDER BY VersionNumber"
        ))
        .await;
    let flags: Vec<(&Value, &Value)> = history["records"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (&v["VersionNumber"], &v["IsLatest"]))
        .collect();
    assert_eq!(
        flags,
        vec![(&json!("1"), &json!(false)), (&json!("2"), &json!(true))]
    );
    let (_, doc) = org
        .query(&format!(
            "SELECT LatestPublishedVersionId, ContentSize FROM ContentDocument WHERE Id = '{document}'"
        ))
        .await;
    assert_eq!(doc["records"][0]["LatestPublishedVersionId"], latest);
    assert_eq!(doc["records"][0]["ContentSize"], second.len());
    let body = org
        .get(&format!(
            "/services/data/{V}/sobjects/ContentVersion/{latest}/VersionData"
        ))
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.as_ref(), second.as_slice());

    let (status, created) = org
        .post(
            "sobjects/Attachment",
            json!({"Name": "notes.txt", "ParentId": account, "Body": encode(b"hello")}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an Id");
    let (_, attachment) = org
        .query(&format!(
            "SELECT BodyLength FROM Attachment WHERE Id = '{id}'"
        ))
        .await;
    assert_eq!(attachment["records"][0]["BodyLength"], 5);
}

/// Insert or Update Blob Data: the fields as JSON in the first part, the file in a part named
/// by its field, of any size up to the object's limit (here more than the 2 MB a JSON body
/// defaults to); without parts, a request over 50 MB is refused with Salesforce's message.
#[tokio::test]
async fn a_file_inserted_in_parts_is_kept_whole_and_a_json_body_over_50_mb_is_refused() {
    let org = Org::start().await;
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let boundary = "boundary_string";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"entity_content\"\r\nContent-Type: application/json\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"VersionData\"; filename=\"survey.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        json!({"PathOnClient": "survey.bin", "Title": "Survey"})
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = org.post_parts(boundary, body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    let id = created["id"].as_str().expect("an Id");
    let (_, version) = org
        .query(&format!(
            "SELECT Checksum, ContentSize, ContentDocumentId FROM ContentVersion WHERE Id = '{id}'"
        ))
        .await;
    let record = &version["records"][0];
    assert_eq!(record["ContentSize"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(record["Checksum"], md5_hex(&bytes));
    assert!(record["ContentDocumentId"].is_string(), "a new document");
    let served = org
        .get(&format!(
            "/services/data/{V}/sobjects/ContentVersion/{id}/VersionData"
        ))
        .await
        .bytes()
        .await
        .expect("body");
    assert!(served.as_ref() == bytes.as_slice(), "the same bytes back");

    // A part naming no body field is refused.
    let wrong = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"entity_content\"\r\nContent-Type: application/json\r\n\r\n{{\"PathOnClient\":\"a.txt\",\"Title\":\"a\"}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"Title\"; filename=\"a.txt\"\r\n\r\nabc\r\n--{boundary}--\r\n"
    );
    let refused = org.post_parts(boundary, wrong.into_bytes()).await;
    assert_eq!(refused.status(), 400);

    // 50 MB of base64 in JSON is over the limit.
    let huge = json!({
        "PathOnClient": "big.bin",
        "Title": "big",
        "VersionData": "A".repeat(52_428_800),
    });
    let (status, answer) = org.post("sobjects/ContentVersion/", huge).await;
    assert_eq!(status, 413);
    assert_eq!(
        answer[0]["message"], "Maximum size of request is 52428800 bytes",
        "{answer}"
    );
}

#[tokio::test]
async fn a_private_file_is_listed_only_with_query_all_files() {
    let org = Org::start().await;
    let added = org
        .admin(
            reqwest::Method::POST,
            "files",
            json!({"size": 1000, "name": "salaries.xlsx", "private": true}),
        )
        .await;
    let version = added["id"].as_str().expect("a version").to_string();
    let document = added["contentDocumentId"]
        .as_str()
        .expect("a document")
        .to_string();
    let listed = |object: &'static str, id: String| {
        let org = &org;
        async move {
            let (status, body) = org
                .query(&format!("SELECT Id FROM {object} WHERE Id = '{id}'"))
                .await;
            assert_eq!(status, 200, "{body}");
            body["totalSize"].as_u64() == Some(1)
        }
    };
    // No error: the file is simply not there.
    assert!(!listed("ContentVersion", version.clone()).await);
    assert!(!listed("ContentDocument", document.clone()).await);
    let (_, links) = org
        .query(&format!(
            "SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
        ))
        .await;
    assert_eq!(links["totalSize"], 0, "{links}");
    let body = org
        .get(&format!(
            "/services/data/{V}/sobjects/ContentVersion/{version}/VersionData"
        ))
        .await;
    assert_eq!(body.status().as_u16(), 404);
    let (status, _) = org.query("SELECT Id FROM ContentDocumentLink").await;
    assert_eq!(status, 400, "links need a filter without the permission");

    let granted = org
        .admin(
            reqwest::Method::PUT,
            "permissions",
            json!({"queryAllFiles": true}),
        )
        .await;
    assert_eq!(granted["queryAllFiles"], true);
    assert!(listed("ContentVersion", version.clone()).await);
    assert!(listed("ContentDocument", document.clone()).await);
    let body = org
        .get(&format!(
            "/services/data/{V}/sobjects/ContentVersion/{version}/VersionData"
        ))
        .await;
    assert_eq!(body.status().as_u16(), 200);
    assert_eq!(body.bytes().await.expect("bytes").len(), 1000);
    let (status, all) = org.query("SELECT Id FROM ContentDocumentLink").await;
    assert_eq!(status, 200, "{all}");
    assert!(all["totalSize"].as_u64() > Some(2), "{all}");
}
