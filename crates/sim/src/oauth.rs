//! OAuth 2.0 as Salesforce's login hosts answer it: the JWT bearer grant (RS256, verified against
//! the connected app's certificate), refresh tokens, the authorization-code flow with PKCE (an
//! approval page), revocation, userinfo and the identity URL. Errors are
//! `{"error","error_description"}` with status 400, as documented.
//!
//! Three login hosts are served: the org's own (My Domain, at the root), and path-prefixed
//! stand-ins for login.salesforce.com and test.salesforce.com; a production org refuses logins
//! through the sandbox host and the other way round.
//!
//! Long because every OAuth flow a Salesforce login host answers is here, each a short
//! handler; they share the client checks, token issuing and certificate reading.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Form, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::server::{ApiError, Session, State, json_response, poisoned};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Which host a login came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginHost {
    /// The org's own domain: serves production and sandbox alike.
    MyDomain,
    /// Stands in for https://login.salesforce.com.
    Production,
    /// Stands in for https://test.salesforce.com.
    Sandbox,
}

impl LoginHost {
    pub fn prefix(self) -> &'static str {
        match self {
            LoginHost::MyDomain => "",
            LoginHost::Production => "/login.salesforce.com",
            LoginHost::Sandbox => "/test.salesforce.com",
        }
    }

    /// Whether an org of this kind may log in here.
    fn serves(self, is_sandbox: bool) -> bool {
        match self {
            LoginHost::MyDomain => true,
            LoginHost::Production => !is_sandbox,
            LoginHost::Sandbox => is_sandbox,
        }
    }
}

/// The JWT `aud` an org accepts: the generic login host of its kind.
pub fn audience(is_sandbox: bool) -> &'static str {
    if is_sandbox {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

/// A code issued by the approval page, waiting to be exchanged.
pub struct PendingCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    issued: Instant,
}

#[derive(Default)]
pub struct Codes {
    pending: HashMap<String, PendingCode>,
}

pub fn routes() -> Router<Arc<State>> {
    let mut router = Router::new().route("/id/{org}/{user}", get(userinfo));
    for host in [
        LoginHost::MyDomain,
        LoginHost::Production,
        LoginHost::Sandbox,
    ] {
        let base = format!("{}/services/oauth2", host.prefix());
        router = router
            .route(
                &format!("{base}/token"),
                post(move |state, headers, form| token(state, host, headers, form)),
            )
            .route(
                &format!("{base}/authorize"),
                get(move |state, query| authorize_page(state, host, query))
                    .post(move |state, form| authorize_decision(state, host, form)),
            )
            .route(&format!("{base}/revoke"), post(revoke).get(revoke_get))
            .route(&format!("{base}/userinfo"), get(userinfo));
    }
    router
}

fn oauth_error(error: &str, description: &str) -> Response {
    let mut response = json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "error_description": description}).to_string(),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    assertion: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

async fn token(
    Shared(state): Shared<Arc<State>>,
    host: LoginHost,
    headers: axum::http::HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    let Some(grant) = request.grant_type.as_deref() else {
        return oauth_error("invalid_request", "missing required parameter: grant_type");
    };
    let is_sandbox = match state.org.read() {
        Ok(org) => org.is_sandbox,
        Err(_) => return poisoned().into_response(),
    };
    if !host.serves(is_sandbox) {
        return oauth_error("invalid_grant", "authentication failure");
    }
    match grant {
        "refresh_token" => refresh(&state, &request),
        JWT_BEARER => jwt_bearer(&state, &request),
        "authorization_code" => exchange_code(&state, &request),
        "client_credentials" => client_credentials(&state, host, &headers, request),
        _ => oauth_error("unsupported_grant_type", "grant type not supported"),
    }
}

/// The client credentials grant: the app's key and secret (in the form, or as HTTP Basic
/// credentials) for a session of the integration user it runs as. Served only on the org's My
/// Domain, as Salesforce serves it; no refresh token is issued.
fn client_credentials(
    state: &State,
    host: LoginHost,
    headers: &axum::http::HeaderMap,
    mut request: TokenRequest,
) -> Response {
    if host != LoginHost::MyDomain {
        return oauth_error("invalid_grant", "request not supported on this domain");
    }
    if let Some((id, secret)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(i, s)| (i.to_string(), s.to_string()))
        })
    {
        request.client_id.get_or_insert(id);
        request.client_secret.get_or_insert(secret);
    }
    if request.client_secret.is_none() {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    if let Err(response) = check_client(state, &request) {
        return *response;
    }
    issue(state, None, None, true)
}

/// A successful token response. `granted` is a refresh token to hand out (only the code flow
/// does); `parent` is the refresh token the new session hangs off, so revoking it ends the
/// session.
fn issue(
    state: &State,
    granted: Option<String>,
    parent: Option<String>,
    with_signature: bool,
) -> Response {
    let (org_id, user_id) = match state.org.read() {
        Ok(org) => (org.org_id.clone(), org.user_id.clone()),
        Err(_) => return poisoned().into_response(),
    };
    let access_token = state.mint(&format!("{}!AQ", &org_id[..15]));
    if let Ok(mut sessions) = state.sessions.lock() {
        sessions.insert(access_token.clone(), Session::new(parent));
    }
    let base = state.base_url();
    let id = format!("{base}/id/{org_id}/{user_id}");
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();
    let mut body = json!({
        "access_token": access_token,
        "scope": "api refresh_token id",
        "instance_url": base,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(granted) = granted {
            map.insert("refresh_token".into(), json!(granted));
        }
        if with_signature {
            // base64(HMAC-SHA256(consumer secret, id + issued_at)).
            if let Ok(mut mac) =
                hmac::Hmac::<Sha256>::new_from_slice(state.client_secret.as_bytes())
            {
                mac.update(format!("{id}{issued_at}").as_bytes());
                let signature =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                map.insert("signature".into(), json!(signature));
            }
        }
    }
    let mut response = json_response(StatusCode::OK, body.to_string());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The connected app's credentials: the id always, the secret when one is sent.
fn check_client(state: &State, request: &TokenRequest) -> Result<(), Box<Response>> {
    if request.client_id.as_deref() != Some(state.client_id.as_str()) {
        return Err(Box::new(oauth_error(
            "invalid_client_id",
            "client identifier invalid",
        )));
    }
    if request
        .client_secret
        .as_deref()
        .is_some_and(|s| s != state.client_secret)
    {
        return Err(Box::new(oauth_error(
            "invalid_client",
            "invalid client credentials",
        )));
    }
    Ok(())
}

fn refresh(state: &State, request: &TokenRequest) -> Response {
    if let Err(response) = check_client(state, request) {
        return *response;
    }
    let Some(refresh_token) = request.refresh_token.as_deref() else {
        return oauth_error(
            "invalid_request",
            "missing required parameter: refresh_token",
        );
    };
    let valid = state
        .refresh_tokens
        .lock()
        .map(|t| t.get(refresh_token).copied().unwrap_or(false))
        .unwrap_or(false);
    if !valid {
        return oauth_error("invalid_grant", "expired access/refresh token");
    }
    issue(state, None, Some(refresh_token.to_string()), true)
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<u64>,
}

fn jwt_bearer(state: &State, request: &TokenRequest) -> Response {
    let Some(assertion) = request.assertion.as_deref() else {
        return oauth_error("invalid_request", "missing required parameter: assertion");
    };
    let Some(key) = state.jwt_key.as_ref() else {
        return oauth_error("invalid_grant", "invalid assertion");
    };
    let header = match jsonwebtoken::decode_header(assertion) {
        Ok(header) => header,
        Err(_) => return oauth_error("invalid_grant", "invalid assertion"),
    };
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return oauth_error("invalid_grant", "invalid assertion");
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = match jsonwebtoken::decode::<Claims>(assertion, key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return oauth_error("invalid_grant", "invalid assertion"),
    };
    if claims.iss.as_deref() != Some(state.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    let (is_sandbox, user_known) = match state.org.read() {
        Ok(org) => (
            org.is_sandbox,
            claims
                .sub
                .as_deref()
                .is_some_and(|sub| org.has_active_user(sub)),
        ),
        Err(_) => return poisoned().into_response(),
    };
    let expected = audience(is_sandbox);
    let audience_ok = match &claims.aud {
        Some(serde_json::Value::String(aud)) => aud.trim_end_matches('/') == expected,
        Some(serde_json::Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str().map(|s| s.trim_end_matches('/')) == Some(expected)),
        _ => false,
    };
    if !audience_ok {
        return oauth_error("invalid_grant", "audience is invalid");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // An assertion that has not expired is taken, however far ahead its `exp` (Salesforce's
    // own CLI sends it in milliseconds); an expired one, or one without `exp`, is not.
    match claims.exp {
        Some(exp) if exp > now => {}
        _ => return oauth_error("invalid_grant", "invalid assertion"),
    }
    if !user_known {
        return oauth_error("invalid_grant", "user hasn't approved this consumer");
    }
    // The JWT flow grants no refresh token.
    issue(state, None, None, false)
}

#[derive(Deserialize)]
pub struct AuthorizeRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    decision: Option<String>,
}

fn loopback(uri: &str) -> bool {
    let rest = uri.strip_prefix("http://").unwrap_or_default();
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Redirect back to the client, adding query parameters.
fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut target = uri.to_string();
    for (i, (key, value)) in params.iter().enumerate() {
        let sep = if i == 0 && !uri.contains('?') {
            '?'
        } else {
            '&'
        };
        target.push(sep);
        target.push_str(key);
        target.push('=');
        target.push_str(&url_encode(value));
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks an authorize request; an unknown client or a bad redirect URI is an error page, as
/// nothing can be sent back safely.
fn check_authorize(state: &State, request: &AuthorizeRequest) -> Result<String, Box<Response>> {
    let page = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><title>OAuth error</title><h1>error={message}</h1>"
            )),
        )
            .into_response()
    };
    if request.client_id.as_deref() != Some(state.client_id.as_str()) {
        return Err(Box::new(page("invalid_client_id")));
    }
    let redirect_uri = request.redirect_uri.clone().unwrap_or_default();
    if !loopback(&redirect_uri) {
        return Err(Box::new(page("redirect_uri_mismatch")));
    }
    if request.response_type.as_deref() != Some("code") {
        return Err(Box::new(redirect(
            &redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("state", request.state.as_deref().unwrap_or("")),
            ],
        )));
    }
    if request
        .code_challenge_method
        .as_deref()
        .is_some_and(|m| m != "S256" && m != "plain")
    {
        return Err(Box::new(redirect(
            &redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", "unsupported code_challenge_method"),
                ("state", request.state.as_deref().unwrap_or("")),
            ],
        )));
    }
    Ok(redirect_uri)
}

async fn authorize_page(
    Shared(state): Shared<Arc<State>>,
    host: LoginHost,
    UrlQuery(request): UrlQuery<AuthorizeRequest>,
) -> Response {
    if let Err(response) = check_authorize(&state, &request) {
        return *response;
    }
    let (username, is_sandbox) = match state.org.read() {
        Ok(org) => (org.username.clone(), org.is_sandbox),
        Err(_) => return poisoned().into_response(),
    };
    if !host.serves(is_sandbox) {
        return (StatusCode::BAD_REQUEST, Html("<!doctype html><title>Login error</title><h1>This org cannot log in through this host.</h1>".to_string())).into_response();
    }
    let hidden = [
        ("response_type", &request.response_type),
        ("client_id", &request.client_id),
        ("redirect_uri", &request.redirect_uri),
        ("state", &request.state),
        ("code_challenge", &request.code_challenge),
        ("code_challenge_method", &request.code_challenge_method),
        ("scope", &request.scope),
    ]
    .iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                html_escape(v)
            )
        })
    })
    .collect::<String>();
    Html(format!(
        "<!doctype html><html><head><title>Allow Access?</title></head><body>\
         <h1>Allow Access?</h1><p>cairn wants to back up the org as <b>{}</b> (scope: {}).</p>\
         <form method=\"post\" action=\"{}/services/oauth2/authorize\">{hidden}\
         <button name=\"decision\" value=\"allow\" id=\"allow\">Allow</button> \
         <button name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></form></body></html>",
        html_escape(&username),
        html_escape(request.scope.as_deref().unwrap_or("api refresh_token")),
        host.prefix(),
    ))
    .into_response()
}

async fn authorize_decision(
    Shared(state): Shared<Arc<State>>,
    _host: LoginHost,
    Form(request): Form<AuthorizeRequest>,
) -> Response {
    let redirect_uri = match check_authorize(&state, &request) {
        Ok(uri) => uri,
        Err(response) => return *response,
    };
    let client_state = request.state.clone().unwrap_or_default();
    if request.decision.as_deref() != Some("allow") {
        return redirect(
            &redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "end-user denied authorization"),
                ("state", &client_state),
            ],
        );
    }
    let code = state.mint("aPrx");
    let challenge = request.code_challenge.clone().map(|c| {
        (
            c,
            request
                .code_challenge_method
                .clone()
                .unwrap_or_else(|| "plain".to_string()),
        )
    });
    if let Ok(mut codes) = state.codes.lock() {
        codes.pending.insert(
            code.clone(),
            PendingCode {
                client_id: request.client_id.clone().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                challenge,
                issued: Instant::now(),
            },
        );
    }
    redirect(&redirect_uri, &[("code", &code), ("state", &client_state)])
}

fn exchange_code(state: &State, request: &TokenRequest) -> Response {
    if let Err(response) = check_client(state, request) {
        return *response;
    }
    let Some(code) = request.code.as_deref() else {
        return oauth_error("invalid_request", "missing required parameter: code");
    };
    // A code is good once: taken out whether or not the exchange succeeds.
    let pending = state
        .codes
        .lock()
        .ok()
        .and_then(|mut c| c.pending.remove(code));
    let Some(pending) = pending else {
        return oauth_error("invalid_grant", "invalid authorization code");
    };
    if pending.issued.elapsed() > CODE_LIFETIME {
        return oauth_error("invalid_grant", "authorization code expired");
    }
    if request.client_id.as_deref() != Some(pending.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if request.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str()) {
        return oauth_error(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    }
    if let Some((challenge, method)) = &pending.challenge {
        let Some(verifier) = request.code_verifier.as_deref() else {
            return oauth_error("invalid_grant", "invalid code verifier");
        };
        let computed = if method == "S256" {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_string()
        };
        if computed != *challenge {
            return oauth_error("invalid_grant", "invalid code verifier");
        }
    }
    let refresh_token = state.mint("5Aep861");
    if let Ok(mut tokens) = state.refresh_tokens.lock() {
        tokens.insert(refresh_token.clone(), true);
    }
    issue(
        state,
        Some(refresh_token.clone()),
        Some(refresh_token),
        true,
    )
}

#[derive(Deserialize)]
pub struct RevokeRequest {
    token: Option<String>,
}

async fn revoke(Shared(state): Shared<Arc<State>>, Form(request): Form<RevokeRequest>) -> Response {
    revoke_token(&state, request.token.as_deref())
}

async fn revoke_get(
    Shared(state): Shared<Arc<State>>,
    UrlQuery(request): UrlQuery<RevokeRequest>,
) -> Response {
    revoke_token(&state, request.token.as_deref())
}

/// Revoking a refresh token also ends the sessions minted from it.
fn revoke_token(state: &State, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return oauth_error("unsupported_token_type", "this token type is not supported");
    };
    let was_refresh = state
        .refresh_tokens
        .lock()
        .map(|mut t| {
            t.get_mut(token)
                .map(|valid| std::mem::replace(valid, false))
                .is_some()
        })
        .unwrap_or(false);
    let mut sessions = match state.sessions.lock() {
        Ok(s) => s,
        Err(_) => return poisoned().into_response(),
    };
    if was_refresh {
        sessions.retain(|_, s| s.refresh_token.as_deref() != Some(token));
        return StatusCode::OK.into_response();
    }
    if sessions.remove(token).is_some() {
        return StatusCode::OK.into_response();
    }
    oauth_error("invalid_token", "invalid token")
}

async fn userinfo(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| {
            state
                .sessions
                .lock()
                .map(|s| s.contains_key(t))
                .unwrap_or(false)
        });
    if !authorized {
        return ApiError::new(StatusCode::FORBIDDEN, "Bad_OAuth_Token", "Bad_OAuth_Token")
            .into_response();
    }
    let Ok(org) = state.org.read() else {
        return poisoned().into_response();
    };
    let base = state.base_url();
    let urls = json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "profile": format!("{base}/{}", org.user_id),
    });
    json_response(
        StatusCode::OK,
        json!({
            "sub": format!("{base}/id/{}/{}", org.org_id, org.user_id),
            "user_id": org.user_id,
            "organization_id": org.org_id,
            "preferred_username": org.username,
            "name": org.user_name(),
            "email": org.user_email(),
            "zoneinfo": "Europe/Paris",
            "urls": urls,
        })
        .to_string(),
    )
}

/// The verification key of the connected app, from its certificate or public key in PEM.
pub fn decoding_key(pem: &str) -> Result<jsonwebtoken::DecodingKey, String> {
    if pem.contains("BEGIN CERTIFICATE") {
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("the certificate is not valid base64: {e}"))?;
        let key = rsa_key_in_certificate(&der).ok_or("the certificate holds no RSA public key")?;
        return Ok(jsonwebtoken::DecodingKey::from_rsa_der(&key));
    }
    jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| format!("not an RSA public key or certificate: {e}"))
}

/// Reads one DER element with the expected tag: its content and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    der_content(rest)
}

fn der_skip(input: &[u8]) -> Option<&[u8]> {
    let (_, rest) = input.split_first()?;
    der_content(rest).map(|(_, after)| after)
}

fn der_content(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The PKCS#1 RSA public key in an X.509 certificate: tbsCertificate's subjectPublicKeyInfo.
fn rsa_key_in_certificate(der: &[u8]) -> Option<Vec<u8>> {
    let (certificate, _) = der_element(der, 0x30)?;
    let (tbs, _) = der_element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = der_skip(rest)?;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = der_skip(rest)?;
    }
    let (spki, _) = der_element(rest, 0x30)?;
    let after_algorithm = der_skip(spki)?;
    let (bits, _) = der_element(after_algorithm, 0x03)?;
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then(|| key.to_vec())
}
