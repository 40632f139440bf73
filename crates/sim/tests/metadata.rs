//! The Metadata API's read side over real HTTP, in its SOAP shapes: describeMetadata,
//! listMetadata (foldered types one folder at a time), and the faults a client gets.

use cairn_sim::org::{Clock, OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use sfsoap::{METADATA_NS, Message};

async fn start() -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 5,
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

/// Sends `operation` with `content` under `session`; the status and the parsed answer.
async fn call(sim: &Simulator, session: &str, operation: &str, content: &str) -> (u16, Message) {
    let body = sfsoap::envelope_in(
        METADATA_NS,
        &format!("<SessionHeader><sessionId>{session}</sessionId></SessionHeader>"),
        &format!("<{operation}>{content}</{operation}>"),
    );
    let response = reqwest::Client::new()
        .post(format!("{}/services/Soap/m/62.0", sim.url()))
        .header("Content-Type", "text/xml; charset=UTF-8")
        .header("SOAPAction", "\"\"")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, Message::parse(&text).expect("a SOAP envelope"))
}

/// Starts an asynchronous call (`start` with `content`) and reads its status once (`check`,
/// with `extra` after the process Id): the Id and the status.
async fn run_async(
    sim: &Simulator,
    (start, content): (&str, &str),
    (check, extra): (&str, &str),
) -> (String, Message) {
    let token = &sim.credentials.access_token;
    let (status, started) = call(sim, token, start, content).await;
    assert_eq!(status, 200);
    let id = started
        .body
        .child("result")
        .and_then(|r| r.child_text("id"))
        .expect("an async process id")
        .to_string();
    let status = format!("<asyncProcessId>{id}</asyncProcessId>{extra}");
    let (_, checked) = call(sim, token, check, &status).await;
    (id, checked)
}

/// Starts a retrieve and reads its status (with the zip when `zip`): its async process Id
/// and the status.
async fn retrieve(sim: &Simulator, request: &str, zip: bool) -> (String, Message) {
    let extra = format!("<includeZip>{zip}</includeZip>");
    run_async(sim, ("retrieve", request), ("checkRetrieveStatus", &extra)).await
}

fn listed(answer: &Message) -> Vec<(String, String, String)> {
    answer
        .body
        .children_named("result")
        .map(|r| {
            let text = |name: &str| r.child_text(name).unwrap_or_default().to_string();
            (text("type"), text("fullName"), text("fileName"))
        })
        .collect()
}

#[tokio::test]
async fn describe_and_list_give_the_orgs_components_with_their_files() {
    let sim = start().await;
    let token = sim.credentials.access_token.clone();
    let (status, described) = call(
        &sim,
        &token,
        "describeMetadata",
        "<asOfVersion>62.0</asOfVersion>",
    )
    .await;
    assert_eq!(status, 200);
    let result = described.body.child("result").expect("result");
    let report = result
        .children_named("metadataObjects")
        .find(|t| t.child_text("xmlName") == Some("Report"))
        .expect("Report is described");
    assert_eq!(report.child_text("inFolder"), Some("true"));
    assert_eq!(report.child_text("directoryName"), Some("reports"));

    let (_, classes) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>ApexClass</type></queries><asOfVersion>62.0</asOfVersion>",
    )
    .await;
    let classes = listed(&classes);
    assert!(classes.len() > 10, "{classes:?}");
    for (kind, name, file) in &classes {
        assert_eq!(kind, "ApexClass");
        assert_eq!(file, &format!("classes/{name}.cls"));
    }

    // Three queries in one call; a foldered type needs its folder, and lists only that folder.
    let (_, mixed) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>ReportFolder</type></queries><queries><type>Report</type><folder>Support_Reports</folder></queries><queries><type>Report</type></queries>",
    )
    .await;
    let mixed = listed(&mixed);
    let folders: Vec<&str> = mixed
        .iter()
        .filter(|(kind, _, _)| kind == "ReportFolder")
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(folders, ["Sales_Reports", "Support_Reports"]);
    let reports: Vec<&str> = mixed
        .iter()
        .filter(|(kind, _, _)| kind == "Report")
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(
        reports,
        [
            "Support_Reports/Escalations",
            "Support_Reports/Open_Cases_By_Priority"
        ],
        "no wildcard reaches into a folder"
    );

    let (_, fields) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>CustomField</type></queries>",
    )
    .await;
    assert!(
        listed(&fields)
            .iter()
            .any(|(_, name, _)| name == "Invoice__c.Amount__c"),
        "custom fields follow the describe"
    );
}

#[tokio::test]
async fn bad_requests_get_salesforces_faults() {
    let sim = start().await;
    let token = sim.credentials.access_token.clone();
    let fault_code = |answer: &Message| {
        answer
            .fault()
            .map(|f| f.exception_code().to_string())
            .unwrap_or_default()
    };
    let (status, answer) = call(&sim, "00Dbogus!session", "describeMetadata", "").await;
    assert_eq!(
        (status, fault_code(&answer).as_str()),
        (500, "INVALID_SESSION_ID")
    );
    let (_, answer) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>NoSuchType</type></queries>",
    )
    .await;
    assert_eq!(fault_code(&answer), "INVALID_TYPE");
    let four = "<queries><type>Flow</type></queries>".repeat(4);
    let (_, answer) = call(&sim, &token, "listMetadata", &four).await;
    assert_eq!(fault_code(&answer), "LIMIT_EXCEEDED");
    let (_, answer) = call(&sim, &token, "deployRecentValidation", "").await;
    assert!(
        answer.fault().is_some(),
        "an operation it does not serve is a fault"
    );
}

#[tokio::test]
async fn a_retrieve_zips_the_components_asked_for_with_their_package_xml() {
    use base64::Engine;
    use std::io::Read;
    let sim = start().await;
    let token = sim.credentials.access_token.clone();
    let request = "<retrieveRequest><apiVersion>62.0</apiVersion><singlePackage>true</singlePackage><unpackaged>\
        <types><members>*</members><members>Nope</members><name>ApexClass</name></types>\
        <types><members>*</members><members>Sales_Reports/Pipeline_By_Stage</members><name>Report</name></types>\
        <types><members>Invoice__c.Amount__c</members><name>CustomField</name></types>\
        <version>62.0</version></unpackaged></retrieveRequest>";
    let (id, checked) = retrieve(&sim, request, true).await;
    let result = checked.body.child("result").expect("result");
    assert_eq!(result.child_text("status"), Some("Succeeded"));
    let problems: Vec<&str> = result
        .children_named("messages")
        .filter_map(|m| m.child_text("problem"))
        .collect();
    assert_eq!(
        problems,
        ["Entity of type 'ApexClass' named 'Nope' cannot be found"]
    );
    let zip = base64::engine::general_purpose::STANDARD
        .decode(result.child_text("zipFile").expect("the zip").trim())
        .expect("base64");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the zip"))
            .read_to_string(&mut text)
            .expect("text");
        text
    };
    let manifest = read("package.xml");
    assert!(
        manifest.contains("<members>AccountService</members>"),
        "{manifest}"
    );
    assert!(manifest.contains("<members>Sales_Reports/Pipeline_By_Stage</members>"));
    assert!(
        !manifest.contains("Won_This_Quarter"),
        "a wildcard reaches no folder: {manifest}"
    );
    let class = read("classes/AccountService.cls");
    assert!(
        class.contains("public with sharing class AccountService"),
        "{class}"
    );
    assert!(read("classes/AccountService.cls-meta.xml").contains("<apiVersion>"));
    assert!(read("reports/Sales_Reports/Pipeline_By_Stage.report").contains("<Report "));
    assert!(read("objects/Invoice__c.object").contains("<fullName>Amount__c</fullName>"));
    // One file property per component (its -meta.xml has none of its own), package.xml first.
    let listed: Vec<(&str, &str)> = result
        .children_named("fileProperties")
        .map(|f| {
            (
                f.child_text("type").unwrap_or_default(),
                f.child_text("fileName").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed[0], ("Package", "package.xml"));
    assert!(
        listed.contains(&("ApexClass", "classes/AccountService.cls")),
        "{listed:?}"
    );
    assert!(
        listed.contains(&("CustomField", "objects/Invoice__c.object")),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|(_, f)| f.ends_with("-meta.xml")),
        "{listed:?}"
    );

    // Without the zip, and for an id no retrieve has.
    let (_, bare) = call(
        &sim,
        &token,
        "checkRetrieveStatus",
        &format!("<asyncProcessId>{id}</asyncProcessId><includeZip>false</includeZip>"),
    )
    .await;
    assert!(
        bare.body
            .child("result")
            .and_then(|r| r.child("zipFile"))
            .is_none()
    );
    let (_, unknown) = call(
        &sim,
        &token,
        "checkRetrieveStatus",
        "<asyncProcessId>09S000000000000AAA</asyncProcessId>",
    )
    .await;
    assert!(unknown.fault().is_some());
}

/// Sends a request to the simulator's own API.
async fn admin(
    sim: &Simulator,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> u16 {
    let mut request = reqwest::Client::new().request(method, format!("{}/__sim/{path}", sim.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn an_admins_edits_and_deletes_show_in_lists_retrieves_and_the_tooling_api() {
    use base64::Engine;
    use std::io::Read;
    let sim = start().await;
    let token = sim.credentials.access_token.clone();
    let modified = |answer: &Message, name: &str| {
        answer
            .body
            .children_named("result")
            .find(|r| r.child_text("fullName") == Some(name))
            .and_then(|r| r.child_text("lastModifiedDate").map(str::to_string))
    };
    let (_, before) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>ApexClass</type></queries>",
    )
    .await;
    let edited = "public class AccountService { public static void run() { /* v2 */ } }\n";
    let put = reqwest::Method::PUT;
    assert_eq!(
        admin(
            &sim,
            put.clone(),
            "metadata/ApexClass/AccountService",
            Some(serde_json::json!({"source": edited}))
        )
        .await,
        200
    );
    assert_eq!(
        admin(
            &sim,
            reqwest::Method::DELETE,
            "metadata/Flow/Invoice_Reminder",
            None
        )
        .await,
        200
    );
    assert_eq!(
        admin(
            &sim,
            put,
            "metadata/Flow/New_Flow",
            Some(serde_json::json!({"source": "<Flow/>"}))
        )
        .await,
        200
    );

    let (_, after) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>ApexClass</type></queries><queries><type>Flow</type></queries>",
    )
    .await;
    assert_ne!(
        modified(&before, "AccountService"),
        modified(&after, "AccountService")
    );
    assert_eq!(
        modified(&after, "AccountService").as_deref(),
        Some("2025-06-15T12:00:00.000Z"),
        "stamped with the org's clock"
    );
    assert!(
        modified(&after, "Invoice_Reminder").is_none(),
        "the deleted flow is gone"
    );
    assert!(
        modified(&after, "New_Flow").is_some(),
        "the new flow is listed"
    );

    let request = "<retrieveRequest><singlePackage>true</singlePackage><unpackaged><types><members>AccountService</members><name>ApexClass</name></types><types><members>Invoice_Reminder</members><name>Flow</name></types></unpackaged></retrieveRequest>";
    let (_, checked) = retrieve(&sim, request, true).await;
    let result = checked.body.child("result").expect("result");
    assert!(
        result
            .children_named("messages")
            .any(|m| m.child_text("problem")
                == Some("Entity of type 'Flow' named 'Invoice_Reminder' cannot be found"))
    );
    let zip = base64::engine::general_purpose::STANDARD
        .decode(result.child_text("zipFile").expect("zip").trim())
        .expect("base64");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("zip");
    let mut class = String::new();
    archive
        .by_name("classes/AccountService.cls")
        .expect("the class")
        .read_to_string(&mut class)
        .expect("text");
    assert_eq!(class, edited);

    let tooling: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/services/data/v62.0/tooling/query", sim.url()))
        .query(&[(
            "q",
            "SELECT Body FROM ApexClass WHERE Name = 'AccountService'",
        )])
        .bearer_auth(&token)
        .send()
        .await
        .expect("tooling query")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tooling["records"][0]["Body"], edited, "{tooling}");
}

#[tokio::test]
async fn a_large_orgs_retrieve_over_ten_thousand_files_fails_as_salesforce_does() {
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 5,
                population: Population::spread(100),
                clock: Clock::fixed(1_749_988_800_000),
                extra_metadata: 20_002,
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts");
    let token = sim.credentials.access_token.clone();
    let (_, folder) = call(
        &sim,
        &token,
        "listMetadata",
        "<queries><type>Report</type><folder>Archive_0000</folder></queries>",
    )
    .await;
    assert_eq!(listed(&folder).len(), 100, "reports come in folders of 100");

    let request = |members: &str| {
        format!(
            "<retrieveRequest><singlePackage>true</singlePackage><unpackaged><types>{members}<name>Flow</name></types></unpackaged></retrieveRequest>"
        )
    };
    let (_, every) = retrieve(&sim, &request("<members>*</members>"), false).await;
    let result = every.body.child("result").expect("result");
    assert_eq!(result.child_text("status"), Some("Failed"));
    assert_eq!(result.child_text("errorStatusCode"), Some("LIMIT_EXCEEDED"));
    assert!(
        result
            .child_text("errorMessage")
            .is_some_and(|m| m.contains("Too many files in retrieve call, limit is: 10000")),
        "{:?}",
        result.child_text("errorMessage")
    );
    // A chunk under the limit goes through.
    let some: String = (0..50)
        .map(|i| format!("<members>Generated_Flow_{:06}</members>", i * 2))
        .collect();
    let (_, chunk) = retrieve(&sim, &request(&some), false).await;
    let result = chunk.body.child("result").expect("result");
    assert_eq!(result.child_text("status"), Some("Succeeded"));
    assert_eq!(result.children_named("fileProperties").count(), 51);
}

/// A deploy zip: `package.xml` naming `members` and the files.
fn deploy_zip(members: &[(&str, &str)], files: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut package = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">",
    );
    for (kind, member) in members {
        package.push_str(&format!(
            "<types><members>{member}</members><name>{kind}</name></types>"
        ));
    }
    package.push_str("<version>62.0</version></Package>");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (path, content) in [("package.xml", package.as_str())].iter().chain(files) {
        zip.start_file(*path, options).expect("entry");
        zip.write_all(content.as_bytes()).expect("write");
    }
    let bytes = zip.finish().expect("zip").into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Deploys and reads the status with details: the result element.
async fn deploy(sim: &Simulator, zip: &str, check_only: bool) -> sfsoap::Element {
    let request = format!(
        "<ZipFile>{zip}</ZipFile><DeployOptions><checkOnly>{check_only}</checkOnly><singlePackage>true</singlePackage></DeployOptions>"
    );
    let (_, checked) = run_async(
        sim,
        ("deploy", &request),
        ("checkDeployStatus", "<includeDetails>true</includeDetails>"),
    )
    .await;
    checked.body.child("result").cloned().expect("a result")
}

fn class_source(sim: &Simulator, name: &str) -> Option<String> {
    sim.state
        .metadata
        .read()
        .expect("metadata")
        .iter()
        .find(|c| c.kind == "ApexClass" && c.full_name == name)
        .map(|c| c.source.clone())
}

#[tokio::test]
async fn a_deploy_is_validated_then_written_and_a_broken_one_changes_nothing() {
    let sim = start().await;
    let class = "public with sharing class Rebate {\n    public Decimal rate = 0.1;\n}\n";
    let meta = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ApexClass xmlns=\"http://soap.sforce.com/2006/04/metadata\"><apiVersion>62.0</apiVersion><status>Active</status></ApexClass>";
    let flow = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Flow xmlns=\"http://soap.sforce.com/2006/04/metadata\"><label>Rebate Check</label><status>Active</status></Flow>";
    let zip = deploy_zip(
        &[("ApexClass", "Rebate"), ("Flow", "Rebate_Check")],
        &[
            ("classes/Rebate.cls", class),
            ("classes/Rebate.cls-meta.xml", meta),
            ("flows/Rebate_Check.flow", flow),
        ],
    );

    // checkOnly: validated, nothing written.
    let validated = deploy(&sim, &zip, true).await;
    assert_eq!(validated.child_text("status"), Some("Succeeded"));
    assert_eq!(validated.child_text("checkOnly"), Some("true"));
    assert_eq!(validated.child_text("numberComponentsTotal"), Some("2"));
    assert_eq!(class_source(&sim, "Rebate"), None);

    let deployed = deploy(&sim, &zip, false).await;
    assert_eq!(deployed.child_text("status"), Some("Succeeded"));
    assert_eq!(deployed.child_text("success"), Some("true"));
    let successes: Vec<String> = deployed
        .child("details")
        .expect("details")
        .children_named("componentSuccesses")
        .map(|s| {
            format!(
                "{}:{} created={}",
                s.child_text("componentType").unwrap_or_default(),
                s.child_text("fullName").unwrap_or_default(),
                s.child_text("created").unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        successes,
        [
            "ApexClass:Rebate created=true",
            "Flow:Rebate_Check created=true"
        ]
    );
    assert_eq!(class_source(&sim, "Rebate").as_deref(), Some(class));
    // The Tooling API has the class too.
    let tooling: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/services/data/v62.0/tooling/query", sim.url()))
        .query(&[(
            "q",
            "SELECT Name, Body FROM ApexClass WHERE Name = 'Rebate'",
        )])
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("tooling query")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tooling["records"][0]["Body"], class, "{tooling}");

    // A class whose file declares another name, and a flow that is not XML: refused as a
    // whole, the good class in the same package left as it was.
    let broken = deploy_zip(
        &[
            ("ApexClass", "Rebate"),
            ("ApexClass", "Surcharge"),
            ("Flow", "Broken"),
        ],
        &[
            ("classes/Rebate.cls", "public class Rebate { }"),
            ("classes/Surcharge.cls", "public class NotSurcharge { }"),
            ("flows/Broken.flow", "<Flow><label>unclosed</Flow>"),
        ],
    );
    let refused = deploy(&sim, &broken, false).await;
    assert_eq!(refused.child_text("status"), Some("Failed"));
    assert_eq!(refused.child_text("numberComponentErrors"), Some("2"));
    let failures: Vec<String> = refused
        .child("details")
        .expect("details")
        .children_named("componentFailures")
        .map(|f| f.child_text("fullName").unwrap_or_default().to_string())
        .collect();
    assert_eq!(failures, ["Surcharge", "Broken"]);
    assert_eq!(class_source(&sim, "Rebate").as_deref(), Some(class));

    // A member the package names but the zip lacks, and no package.xml at all.
    let missing = deploy_zip(&[("ApexClass", "Ghost")], &[]);
    let refused = deploy(&sim, &missing, true).await;
    assert_eq!(refused.child_text("status"), Some("Failed"));
    let without = {
        use base64::Engine as _;
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("classes/A.cls", zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(b"public class A {}").expect("write");
        base64::engine::general_purpose::STANDARD.encode(zip.finish().expect("zip").into_inner())
    };
    let refused = deploy(&sim, &without, false).await;
    assert_eq!(refused.child_text("status"), Some("Failed"));
    assert_eq!(
        refused.child_text("errorMessage"),
        Some("No package.xml found")
    );
}
