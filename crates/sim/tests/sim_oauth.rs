//! The simulator's login hosts: JWT bearer (RS256 against the connected app's certificate),
//! authorization code with PKCE, revocation, and production vs sandbox hosts.

use base64::Engine as _;
use cairn_sim::oauth::JWT_BEARER;
use cairn_sim::org::OrgOptions;
use cairn_sim::server::{SimOptions, Simulator};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
}

async fn start(sandbox: bool, certificate: &str) -> Simulator {
    Simulator::start(
        SimOptions {
            org: OrgOptions {
                is_sandbox: sandbox,
                ..OrgOptions::default()
            },
            jwt_certificate: Some(fixture(certificate)),
            ..SimOptions::default()
        },
        0,
    )
    .await
    .expect("simulator starts")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn assertion(key: &str, claims: Value, algorithm: jsonwebtoken::Algorithm) -> String {
    let key = match algorithm {
        jsonwebtoken::Algorithm::HS256 => jsonwebtoken::EncodingKey::from_secret(b"shared"),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(fixture(key).as_bytes()).expect("private key"),
    };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key).expect("sign")
}

async fn token(sim: &Simulator, host: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{host}/services/oauth2/token", sim.url()))
        .form(form)
        .send()
        .await
        .expect("token request");
    (
        response.status().as_u16(),
        response.json().await.expect("JSON"),
    )
}

#[tokio::test]
async fn jwt_bearer_verifies_signature_issuer_audience_expiry_and_user() {
    let sim = start(false, "connected-app.crt").await;
    let client_id = sim.credentials.client_id.clone();
    let username = sim.credentials.username.clone();
    let claims = |iss: &str, sub: &str, aud: &str, exp: u64| json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp});
    let login = "/login.salesforce.com";
    let good = assertion(
        "connected-app.key",
        claims(
            &client_id,
            &username,
            "https://login.salesforce.com",
            now() + 180,
        ),
        jsonwebtoken::Algorithm::RS256,
    );
    let (status, body) = token(
        &sim,
        login,
        &[("grant_type", JWT_BEARER), ("assertion", &good)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "the JWT flow grants no refresh token"
    );
    assert_eq!(body["instance_url"], sim.url());
    let access = body["access_token"].as_str().expect("access token");
    let limits = reqwest::Client::new()
        .get(format!("{}/services/data/v62.0/limits", sim.url()))
        .bearer_auth(access)
        .send()
        .await
        .expect("limits");
    assert_eq!(limits.status(), 200);
    // Salesforce takes any `exp` still ahead: an hour, or milliseconds as the official CLI
    // sends them.
    for exp in [now() + 3600, (now() + 180) * 1000] {
        let later = assertion(
            "connected-app.key",
            claims(&client_id, &username, "https://login.salesforce.com", exp),
            jsonwebtoken::Algorithm::RS256,
        );
        let (status, body) = token(
            &sim,
            login,
            &[("grant_type", JWT_BEARER), ("assertion", &later)],
        )
        .await;
        assert_eq!(status, 200, "exp {exp}: {body}");
    }

    let cases = [
        (
            "signed by another key",
            assertion(
                "other.key",
                claims(
                    &client_id,
                    &username,
                    "https://login.salesforce.com",
                    now() + 180,
                ),
                jsonwebtoken::Algorithm::RS256,
            ),
            login,
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "not RS256",
            assertion(
                "",
                claims(
                    &client_id,
                    &username,
                    "https://login.salesforce.com",
                    now() + 180,
                ),
                jsonwebtoken::Algorithm::HS256,
            ),
            login,
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "another app",
            assertion(
                "connected-app.key",
                claims(
                    "3MVG9other",
                    &username,
                    "https://login.salesforce.com",
                    now() + 180,
                ),
                jsonwebtoken::Algorithm::RS256,
            ),
            login,
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            "sandbox audience",
            assertion(
                "connected-app.key",
                claims(
                    &client_id,
                    &username,
                    "https://test.salesforce.com",
                    now() + 180,
                ),
                jsonwebtoken::Algorithm::RS256,
            ),
            login,
            "invalid_grant",
            "audience is invalid",
        ),
        (
            "My Domain as audience",
            assertion(
                "connected-app.key",
                claims(&client_id, &username, &sim.url(), now() + 180),
                jsonwebtoken::Algorithm::RS256,
            ),
            "",
            "invalid_grant",
            "audience is invalid",
        ),
        (
            "expired",
            assertion(
                "connected-app.key",
                claims(
                    &client_id,
                    &username,
                    "https://login.salesforce.com",
                    now() - 10,
                ),
                jsonwebtoken::Algorithm::RS256,
            ),
            login,
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "unknown user",
            assertion(
                "connected-app.key",
                claims(
                    &client_id,
                    "nobody@acme.example",
                    "https://login.salesforce.com",
                    now() + 180,
                ),
                jsonwebtoken::Algorithm::RS256,
            ),
            login,
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            "sandbox login host",
            good.clone(),
            "/test.salesforce.com",
            "invalid_grant",
            "authentication failure",
        ),
        (
            "garbage",
            "not.a.jwt".to_string(),
            login,
            "invalid_grant",
            "invalid assertion",
        ),
    ];
    for (name, jwt, host, error, description) in cases {
        let (status, body) = token(
            &sim,
            host,
            &[("grant_type", JWT_BEARER), ("assertion", &jwt)],
        )
        .await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(
            (body["error"].as_str(), body["error_description"].as_str()),
            (Some(error), Some(description)),
            "{name}"
        );
    }
    let (status, _) = token(
        &sim,
        "",
        &[("grant_type", JWT_BEARER), ("assertion", &good)],
    )
    .await;
    assert_eq!(status, 200, "the org's own domain serves its logins");
}

#[tokio::test]
async fn a_sandbox_logs_in_through_the_sandbox_host_with_a_public_key_too() {
    let sim = start(true, "connected-app.pub").await;
    let claims = json!({"iss": sim.credentials.client_id, "sub": sim.credentials.username, "aud": "https://test.salesforce.com", "exp": now() + 120});
    assert!(
        sim.credentials.username.ends_with(".uat"),
        "sandbox usernames carry the sandbox suffix"
    );
    let jwt = assertion("connected-app.key", claims, jsonwebtoken::Algorithm::RS256);
    let (status, body) = token(
        &sim,
        "/test.salesforce.com",
        &[("grant_type", JWT_BEARER), ("assertion", &jwt)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token(
        &sim,
        "/login.salesforce.com",
        &[("grant_type", JWT_BEARER), ("assertion", &jwt)],
    )
    .await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("authentication failure"))
    );
    let access = {
        let (_, body) = token(&sim, "", &[("grant_type", JWT_BEARER), ("assertion", &jwt)]).await;
        body["access_token"].as_str().expect("token").to_string()
    };
    let organization: Value = reqwest::Client::new()
        .get(format!(
            "{}/services/data/v62.0/query?q=SELECT+IsSandbox+FROM+Organization",
            sim.url()
        ))
        .bearer_auth(access)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    assert_eq!(organization["records"][0]["IsSandbox"], true);
}

fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Opens the approval page, presses a button, and returns where the browser is sent.
async fn approve(
    sim: &Simulator,
    redirect_uri: &str,
    challenge: &str,
    decision: &str,
) -> reqwest::Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let query = [
        ("response_type", "code"),
        ("client_id", sim.credentials.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("state", "xyz"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let page = http
        .get(format!("{}/services/oauth2/authorize", sim.url()))
        .query(&query)
        .send()
        .await
        .expect("authorize");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("id=\"allow\"") && html.contains(&sim.credentials.username),
        "{html}"
    );
    let mut form: Vec<(&str, &str)> = query.to_vec();
    form.push(("decision", decision));
    let decided = http
        .post(format!("{}/services/oauth2/authorize", sim.url()))
        .form(&form)
        .send()
        .await
        .expect("decide");
    assert_eq!(decided.status(), 302);
    let location = decided.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    reqwest::Url::parse(&location).expect("redirect URL")
}

fn param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn authorization_code_with_pkce_grants_a_refresh_token() {
    let sim = start(false, "connected-app.crt").await;
    let redirect_uri = "http://127.0.0.1:7777/callback";
    let (verifier, challenge) = pkce();
    let client_id = sim.credentials.client_id.clone();

    let back = approve(&sim, redirect_uri, &challenge, "allow").await;
    assert_eq!(param(&back, "state").as_deref(), Some("xyz"));
    let code = param(&back, "code").expect("a code");
    let exchange = |code: String, verifier: String| {
        let client_id = client_id.clone();
        let sim = &sim;
        async move {
            token(
                sim,
                "",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", &client_id),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange(code.clone(), "wrong-verifier".to_string()).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("invalid code verifier"))
    );
    let (_, body) = exchange(code, verifier.clone()).await;
    assert_eq!(
        body["error_description"], "invalid authorization code",
        "a code is good once"
    );

    let code = param(
        &approve(&sim, redirect_uri, &challenge, "allow").await,
        "code",
    )
    .expect("a code");
    let (status, body) = exchange(code, verifier).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(sim.credentials.client_secret.as_bytes())
        .expect("hmac");
    mac.update(
        format!(
            "{}{}",
            body["id"].as_str().unwrap_or_default(),
            body["issued_at"].as_str().unwrap_or_default()
        )
        .as_bytes(),
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(body["signature"], expected.as_str());
    let (status, _) = token(
        &sim,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &sim.credentials.client_id),
        ],
    )
    .await;
    assert_eq!(status, 200);

    let denied = approve(&sim, redirect_uri, &challenge, "deny").await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    let elsewhere = reqwest::Client::new()
        .get(format!("{}/services/oauth2/authorize", sim.url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", sim.credentials.client_id.as_str()),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(
        elsewhere.status(),
        400,
        "codes only go back to loopback callbacks"
    );
}

#[tokio::test]
async fn revoking_an_access_token_ends_the_session() {
    let sim = start(false, "connected-app.crt").await;
    let http = reqwest::Client::new();
    let access = sim.credentials.access_token.clone();
    let revoke = http
        .post(format!("{}/services/oauth2/revoke", sim.url()))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 200);
    let limits = http
        .get(format!("{}/services/data/v62.0/limits", sim.url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("limits");
    assert_eq!(limits.status(), 401);
    let again = http
        .post(format!("{}/services/oauth2/revoke", sim.url()))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn token_endpoint_errors_follow_the_catalogue() {
    let sim = start(false, "connected-app.crt").await;
    let (status, body) = token(&sim, "", &[("refresh_token", "x")]).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["error_description"].as_str()
        ),
        (
            400,
            Some("invalid_request"),
            Some("missing required parameter: grant_type")
        )
    );
    let (_, body) = token(
        &sim,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &sim.credentials.refresh_token),
            ("client_id", "3MVG9nope"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_client_id");
    let (_, body) = token(
        &sim,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &sim.credentials.refresh_token),
            ("client_id", &sim.credentials.client_id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    let (_, body) = token(
        &sim,
        "",
        &[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ],
    )
    .await;
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn the_identity_url_and_userinfo_describe_the_user() {
    let sim = start(false, "connected-app.crt").await;
    let (_, body) = token(
        &sim,
        "",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &sim.credentials.refresh_token),
            ("client_id", &sim.credentials.client_id),
        ],
    )
    .await;
    let access = body["access_token"].as_str().expect("token").to_string();
    let identity_url = body["id"].as_str().expect("id").to_string();
    let http = reqwest::Client::new();
    for url in [
        identity_url,
        format!("{}/services/oauth2/userinfo", sim.url()),
    ] {
        let info: Value = http
            .get(&url)
            .bearer_auth(&access)
            .send()
            .await
            .expect("userinfo")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            info["preferred_username"],
            sim.credentials.username.as_str(),
            "{url}"
        );
        assert!(
            info["organization_id"]
                .as_str()
                .is_some_and(|o| o.starts_with("00D"))
        );
        assert!(
            info["urls"]["rest"]
                .as_str()
                .is_some_and(|u| u.contains("{version}"))
        );
        assert!(info["name"].as_str().is_some_and(|n| !n.is_empty()));
    }
    let denied = http
        .get(format!("{}/services/oauth2/userinfo", sim.url()))
        .bearer_auth("nope")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(denied.status(), 403);
}

#[tokio::test]
async fn client_credentials_log_in_on_the_my_domain_only() {
    let sim = start(false, "connected-app.crt").await;
    let id = sim.credentials.client_id.clone();
    let secret = sim.credentials.client_secret.clone();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];

    let (status, body) = token(&sim, "", &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let session = body["access_token"].as_str().expect("access_token");
    let limits = reqwest::Client::new()
        .get(format!(
            "{}/services/data/v62.0/limits",
            body["instance_url"].as_str().expect("instance_url")
        ))
        .bearer_auth(session)
        .send()
        .await
        .expect("limits");
    assert_eq!(limits.status(), 200, "the session works");

    // The generic login host refuses the flow.
    let (status, body) = token(&sim, "/login.salesforce.com", &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        body["error_description"],
        "request not supported on this domain"
    );

    // The secret is required, and must be the app's.
    let (status, body) = token(&sim, "", &form[..2]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client")),
        "{body}"
    );
    let wrong = [form[0], form[1], ("client_secret", "not-the-secret")];
    let (status, body) = token(&sim, "", &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client")),
        "{body}"
    );

    // HTTP Basic credentials stand for the form's.
    let response = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.url()))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
}

/// Sessions expire as Salesforce's do: after a time without a call, not while in use.
#[tokio::test]
async fn a_session_unused_for_its_timeout_expires() {
    let sim = start(false, "connected-app.crt").await;
    let http = reqwest::Client::new();
    let set = http
        .put(format!("{}/__sim/sessions/lifetime", sim.url()))
        .json(&json!({"timeoutSeconds": 1.0}))
        .send()
        .await
        .expect("admin");
    assert_eq!(set.status(), 200);
    let limits = || {
        http.get(format!("{}/services/data/v62.0/limits", sim.url()))
            .bearer_auth(&sim.credentials.access_token)
            .send()
    };
    assert_eq!(limits().await.expect("call").status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        limits().await.expect("call").status(),
        200,
        "used within the timeout"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let expired = limits().await.expect("call");
    assert_eq!(expired.status(), 401, "unused for longer than the timeout");
    let body: Value = expired.json().await.expect("JSON");
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
}
