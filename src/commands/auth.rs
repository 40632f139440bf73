//! `cairn auth login --task ID`: the web-server OAuth flow with PKCE, for tasks that use a
//! refresh token. The user approves access in a browser; Salesforce redirects to a one-shot
//! listener on 127.0.0.1; cairn exchanges the code and tells the user how to store the refresh
//! token as a secret. cairn itself keeps nothing.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::Report;
use crate::error::Error;
use crate::manifest::model::{Auth, Environment, Source};
use crate::project::Project;
use crate::project::connect::http_client;
use crate::project::store_access::Env;
use crate::source::SourceError;
use crate::source::salesforce::auth::{PRODUCTION_LOGIN, SANDBOX_LOGIN};
use crate::source::salesforce::fetch::url_encode;

pub struct LoginOptions {
    pub dir: PathBuf,
    pub task: String,
    /// Port of the 127.0.0.1 callback; 0 picks a free one. The connected app's callback URL
    /// must be `http://127.0.0.1:<port>/callback`.
    pub port: u16,
    /// Try to open the authorize URL in a browser.
    pub open_browser: bool,
    /// How long to wait for the approval.
    pub timeout: Duration,
}

pub const DEFAULT_PORT: u16 = 1717;
/// The largest request head the callback listener reads.
const MAX_REQUEST: usize = 16 * 1024;

fn config_error(message: String) -> Error {
    let (message, next) = match message.split_once("; ") {
        Some((what, next)) => (what.to_string(), next.to_string()),
        None => (message, "run `cairn auth login` again".to_string()),
    };
    Error::Login { message, next }
}

fn random_token(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| crate::store::StoreError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// A login that worked: whose access was approved, and the refresh token to store as a secret.
/// No `Debug`: the token must not reach a log by accident.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginOutcome {
    pub task: String,
    pub org: String,
    pub user: String,
    /// The variable (and CI secret) the task reads the refresh token from.
    pub secret_name: String,
    #[serde(serialize_with = "reveal")]
    pub refresh_token: Zeroizing<String>,
}

fn reveal<S: serde::Serializer>(token: &Zeroizing<String>, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(token.as_str())
}

impl Report for LoginOutcome {
    fn text(&self) -> String {
        format!(
            "Connected: org {org} as {user}.\n\n\
             Store this refresh token as the secret {name} (named by source.auth.refreshToken.refreshTokenEnv\n\
             of task {id}); for GitHub Actions: `gh secret set {name}`, then paste it. cairn keeps no copy.\n\n\
             {name}={token}\n",
            org = self.org,
            user = self.user,
            name = self.secret_name,
            id = self.task,
            token = self.refresh_token.as_str(),
        )
    }
}

/// Runs the flow; `show` receives the authorize URL as soon as it is known (the caller prints
/// it). Returns what to tell the user, including the refresh token.
pub async fn login(
    options: &LoginOptions,
    env: Env<'_>,
    show: &(dyn Fn(&str) + Sync),
) -> Result<LoginOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let task = project.task(&options.task)?;
    let Source::Salesforce(source) = &task.source;
    let Auth::RefreshToken(auth) = &source.auth else {
        return Err(config_error(format!(
            "task {} signs in with a JWT (source.auth.jwt), which needs no login; `cairn auth login` is for source.auth.refreshToken",
            task.id
        )));
    };
    let client_id = env(&auth.client_id_env).ok_or_else(|| Error::MissingVariable {
        name: auth.client_id_env.clone(),
        purpose: "the connected app's consumer key".into(),
    })?;
    let client_secret = match &auth.client_secret_env {
        Some(name) => Some(Zeroizing::new(env(name).ok_or_else(|| {
            Error::MissingVariable {
                name: name.clone(),
                purpose: "the connected app's consumer secret".into(),
            }
        })?)),
        None => None,
    };
    let base = source
        .login_url
        .clone()
        .unwrap_or_else(|| {
            match source.environment {
                Environment::Production => PRODUCTION_LOGIN,
                Environment::Sandbox => SANDBOX_LOGIN,
            }
            .to_string()
        })
        .trim_end_matches('/')
        .to_string();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| {
            config_error(format!(
                "cannot listen on 127.0.0.1:{} for the login callback: {e}; pick another --port (and add its callback URL to the connected app)",
                options.port
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| config_error(format!("the callback listener has no address: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = Zeroizing::new(random_token(32)?);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token(16)?;
    let authorize = format!(
        "{base}/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state={state}&scope={}",
        url_encode(&client_id),
        url_encode(&redirect_uri),
        url_encode("api refresh_token")
    );
    show(&authorize);
    if options.open_browser {
        open_browser(&authorize);
    }

    let code = tokio::time::timeout(options.timeout, wait_for_code(&listener, &state))
        .await
        .map_err(|_| {
            config_error(format!(
                "no approval arrived within {} s; run the command again and approve access in the browser",
                options.timeout.as_secs()
            ))
        })??;

    let http = http_client()?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("client_id", client_id.clone()),
        ("redirect_uri", redirect_uri.clone()),
        ("code_verifier", verifier.to_string()),
    ];
    if let Some(secret) = &client_secret {
        form.push(("client_secret", secret.to_string()));
    }
    let response = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&form)
        .send()
        .await
        .map_err(|e| Error::Source(SourceError::Network(crate::text::error_chain(&e))))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| {
        Error::Source(SourceError::Network(format!(
            "unreadable token answer: {e}"
        )))
    })?;
    if !status.is_success() {
        return Err(config_error(format!(
            "Salesforce refused the code ({}: {})",
            body["error"].as_str().unwrap_or("unknown"),
            body["error_description"].as_str().unwrap_or("")
        )));
    }
    let refresh_token = Zeroizing::new(
        body["refresh_token"]
            .as_str()
            .ok_or_else(|| {
                config_error(
                    "Salesforce granted no refresh token: add the `refresh_token` (offline access) scope to the connected app".into(),
                )
            })?
            .to_string(),
    );
    let instance = body["instance_url"].as_str().unwrap_or(&base).to_string();
    let access = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let info: Value = http
        .get(format!("{instance}/services/oauth2/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .map_err(|e| Error::Source(SourceError::Network(crate::text::error_chain(&e))))?
        .json()
        .await
        .map_err(|e| Error::Source(SourceError::Network(format!("unreadable userinfo: {e}"))))?;
    let org = info["organization_id"].as_str().unwrap_or("unknown org");
    let user = info["preferred_username"]
        .as_str()
        .unwrap_or("unknown user");
    if let Some(pinned) = &source.org_id
        && !pinned.starts_with(&org[..org.len().min(15)])
    {
        return Err(config_error(format!(
            "you approved access to org {org}, but task {} is pinned to org {pinned} (source.orgId); log in to the right org, or fix orgId",
            task.id
        )));
    }
    Ok(LoginOutcome {
        task: task.id.clone(),
        org: org.to_string(),
        user: user.to_string(),
        secret_name: auth.refresh_token_env.clone(),
        refresh_token,
    })
}

/// Serves the callback until a request with the right state arrives; other requests (a
/// browser's favicon) get a 404.
async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<Zeroizing<String>, Error> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| config_error(format!("the login callback failed: {e}")))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head);
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != "/callback" {
            let _ = respond(&mut stream, "404 Not Found", "Not the login callback.").await;
            continue;
        }
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (url_decode(k), url_decode(v)))
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if param("state").as_deref() != Some(state) {
            let _ = respond(
                &mut stream,
                "400 Bad Request",
                "This approval belongs to another login attempt.",
            )
            .await;
            return Err(config_error(
                "the callback's state does not match this login (a stale or forged redirect); run the command again".into(),
            ));
        }
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            let _ = respond(
                &mut stream,
                "200 OK",
                "Access was not granted. You can close this tab.",
            )
            .await;
            return Err(config_error(format!(
                "access was not granted ({error}: {description}); run the command again and choose Allow"
            )));
        }
        let Some(code) = param("code") else {
            let _ = respond(&mut stream, "400 Bad Request", "No authorization code.").await;
            return Err(config_error(
                "the callback carried no authorization code".into(),
            ));
        };
        let _ = respond(
            &mut stream,
            "200 OK",
            "cairn is connected. You can close this tab and return to the terminal.",
        )
        .await;
        return Ok(Zeroizing::new(code));
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = format!("<!doctype html><meta charset=utf-8><title>cairn</title><p>{message}</p>");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    // Best effort: the URL is printed either way.
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

#[cfg(test)]
mod tests {
    use super::url_decode;

    #[test]
    fn url_decoding_handles_escapes_plus_and_stray_percents() {
        assert_eq!(url_decode("a%20b+c"), "a b c");
        assert_eq!(url_decode("aPrx%3D%3D"), "aPrx==");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz"), "%zz");
        assert_eq!(url_decode("%4"), "%4");
        assert_eq!(url_decode("%é"), "%é");
    }
}
