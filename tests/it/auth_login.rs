//! `cairn auth login`: the real binary runs the browser flow against the simulator; the test
//! plays the user who approves (or denies) access on the authorize page.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use cairn::source::Connection;
use cairn::source::salesforce::Environment;
use cairn::source::salesforce::{Credentials, LoginConfig, SalesforceClient};
use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};
use zeroize::Zeroizing;

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n";

fn task(login_url: &str) -> String {
    format!(
        "apiVersion: cairn/v1\nkind: BackupTask\nid: acme\nname: Acme\nsource:\n  type: salesforce\n  environment: production\n  loginUrl: {login_url}\n  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      refreshTokenEnv: SF_REFRESH_TOKEN\n"
    )
}

async fn simulator() -> Simulator {
    let org = OrgOptions {
        population: Population::spread(50),
        ..OrgOptions::default()
    };
    Simulator::start(
        SimOptions {
            org,
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator")
}

struct Login {
    child: std::process::Child,
    /// The rest of cairn's stderr, once it ends.
    rest: std::thread::JoinHandle<String>,
    url: String,
    _dir: tempfile::TempDir,
}

/// Starts `cairn auth login` and reads the authorize URL it prints.
fn start_login(sim: &Simulator) -> Login {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("cairn.yaml"), REPOSITORY).expect("repository");
    std::fs::create_dir_all(dir.path().join("tasks")).expect("tasks");
    std::fs::write(dir.path().join("tasks/acme.yaml"), task(&sim.url())).expect("task");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "auth",
            "login",
            "--task",
            "acme",
            "--port",
            "0",
            "--no-browser",
            "--timeout",
            "60",
        ])
        .arg("--dir")
        .arg(dir.path())
        .env("SF_CLIENT_ID", &sim.credentials.client_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut url = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(at) = line.find("http") {
            url = line[at..].trim().to_string();
            break;
        }
    }
    // Keep reading, so cairn can go on writing to stderr.
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    assert!(url.contains("/services/oauth2/authorize?"), "{url}");
    Login {
        child,
        rest,
        url,
        _dir: dir,
    }
}

/// The user's click on the authorize page: its form posted back with the decision; the
/// redirect lands on cairn's callback.
async fn decide(url: &str, decision: &str) -> String {
    let http = reqwest::Client::new();
    let page = http.get(url).send().await.expect("authorize page");
    assert_eq!(page.status(), 200);
    let parsed = reqwest::Url::parse(url).expect("URL");
    let mut form: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("decision".into(), decision.into()));
    let landed = http
        .post(format!(
            "{}://{}/services/oauth2/authorize",
            parsed.scheme(),
            parsed
                .host_str()
                .zip(parsed.port())
                .map(|(h, p)| format!("{h}:{p}"))
                .expect("host")
        ))
        .form(&form)
        .send()
        .await
        .expect("the redirect reaches the callback");
    landed.text().await.expect("callback page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_a_refresh_token_that_connects() {
    let sim = simulator().await;
    let login = start_login(&sim);
    assert!(login.url.contains("code_challenge_method=S256"));
    assert!(login.url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
    let page = decide(&login.url, "allow").await;
    assert!(page.contains("cairn is connected"), "{page}");
    let output = login.child.wait_with_output().expect("cairn ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = login.rest.join().expect("stderr");
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("gh secret set SF_REFRESH_TOKEN"),
        "{stdout}"
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SF_REFRESH_TOKEN="))
        .expect("the token line")
        .to_string();

    let client = SalesforceClient::new(
        LoginConfig {
            environment: Environment::Production,
            login_url: Some(sim.url()),
            api_version: "62.0".into(),
            credentials: Credentials::RefreshToken {
                client_id: sim.credentials.client_id.clone(),
                client_secret: None,
                refresh_token: Zeroizing::new(token),
            },
        },
        75,
        reqwest::Client::new(),
    );
    assert!(matches!(
        client.check_connection().await,
        Connection::Connected { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_approval_fails_with_what_to_do() {
    let sim = simulator().await;
    let login = start_login(&sim);
    let page = decide(&login.url, "deny").await;
    assert!(page.contains("not granted"), "{page}");
    let output = login.child.wait_with_output().expect("cairn ends");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_without_the_client_id_says_which_variable_to_set() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("cairn.yaml"), REPOSITORY).expect("repository");
    std::fs::create_dir_all(dir.path().join("tasks")).expect("tasks");
    std::fs::write(
        dir.path().join("tasks/acme.yaml"),
        task("https://acme.my.salesforce.com"),
    )
    .expect("task");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "auth",
            "login",
            "--task",
            "acme",
            "--port",
            "0",
            "--no-browser",
        ])
        .arg("--dir")
        .arg(dir.path())
        .env_remove("SF_CLIENT_ID")
        .output()
        .expect("cairn");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SF_CLIENT_ID is not set"), "{stderr}");
    assert!(
        stderr.contains("help: set SF_CLIENT_ID to the connected app's consumer key"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["auth", "login", "--task", "nope", "--no-browser"])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("cairn");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no task `nope`") && stderr.contains("the tasks here are: acme"),
        "{stderr}"
    );
}
