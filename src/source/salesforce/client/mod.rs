//! The Salesforce API client: one session at a time (minted again once on a 401), every call
//! checked against the API budget before it is made and counted after, transient failures
//! (503, UNABLE_TO_LOCK_ROW, connection resets, timeouts) retried with exponential backoff and
//! jitter, permanent ones never.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::auth::{LoginConfig, TokenError, TokenResponse};
use super::budget::{Budget, Reservation};
use crate::source::{Connection, DisconnectReason, SourceError};

mod composite;
mod parts;

/// Attempts for a call that keeps failing transiently.
const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF_MS: u64 = 50;

/// What a call sends.
#[derive(Clone, Copy)]
enum Payload<'a> {
    None,
    Json(&'a Value),
    /// A SOAP operation's content, wrapped in an envelope (of the API whose namespace it
    /// names) with the session.
    Soap {
        namespace: &'a str,
        operation: &'a str,
        content: &'a str,
    },
    /// A record's fields as JSON and a file body, as `multipart/form-data`.
    Parts {
        boundary: &'a str,
        /// The name of the fields' part (`entity_content`, `entity_document`).
        entity: &'a str,
        json: &'a Value,
        upload: &'a crate::source::Upload,
    },
}

#[derive(Debug, Clone)]
struct Session {
    access_token: String,
    instance_url: String,
}

pub struct SalesforceClient {
    http: reqwest::Client,
    login: LoginConfig,
    session: Mutex<Option<Session>>,
    budget: Mutex<Budget>,
    /// The org's clock as its latest response's `Date` said (ms), and when that response
    /// arrived here.
    server_time: Mutex<Option<(i64, std::time::Instant)>>,
}

/// An HTTP `Date` (RFC 9110, `Mon, 30 Nov 2026 07:47:24 GMT`) in ms since the epoch.
fn http_date_ms(text: &str) -> Option<i64> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()
        .map(|ts| ts.as_millisecond())
}

fn disconnect_reason(error: &str, description: &str) -> DisconnectReason {
    match (error, description) {
        (_, d) if d.contains("inactive organization") => DisconnectReason::OrgGone,
        ("invalid_grant", d) if d.contains("expired") || d.contains("revoked") => {
            DisconnectReason::Expired
        }
        _ => DisconnectReason::Refused,
    }
}

/// Whether a request whose answer was lost may be sent again: everything but creating records
/// (sObject Collections and single-record POSTs), which the org may have carried out.
/// Query subrequests a `/composite` call may hold.
pub const COMPOSITE_QUERIES: usize = 5;

fn replayable(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    !(method == Method::POST
        && (path.ends_with("/composite/sobjects") || path.contains("/sobjects/")))
}

/// Errors worth trying again: the service is busy, a row is locked, the connection broke.
fn transient(status: StatusCode, code: &str) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE
        || status == StatusCode::BAD_GATEWAY
        || status == StatusCode::GATEWAY_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || code == "UNABLE_TO_LOCK_ROW"
        || code == "SERVER_UNAVAILABLE"
        // A throttle (too many concurrent long requests), not the daily allocation, which
        // says `TotalRequests` and is handled before this.
        || code == "REQUEST_LIMIT_EXCEEDED"
}

impl SalesforceClient {
    pub fn new(login: LoginConfig, limit_percent: u8, http: reqwest::Client) -> SalesforceClient {
        SalesforceClient {
            http,
            login,
            session: Mutex::new(None),
            budget: Mutex::new(Budget::new(limit_percent)),
            server_time: Mutex::new(None),
        }
    }

    /// Where the org's clock is now, as an interval: the `Date` of its latest API response
    /// (whole seconds, cut down) plus the time that passed here since, and a second more. The
    /// org's time is inside, less the network's delay. None before any response, or from a
    /// server that sends no `Date`.
    pub fn server_time_bounds(&self) -> Option<(i64, i64)> {
        let (date, received) = (*self.server_time.lock().ok()?)?;
        let elapsed = i64::try_from(received.elapsed().as_millis()).unwrap_or(i64::MAX / 2);
        let earliest = date.saturating_add(elapsed);
        Some((earliest, earliest.saturating_add(999)))
    }

    pub fn budget(&self) -> Budget {
        self.budget.lock().map(|b| *b).unwrap_or(Budget::new(0))
    }

    fn backoff(attempt: u32) -> Duration {
        let base = FIRST_BACKOFF_MS << attempt.min(6);
        // Jitter spreads retries of many clients apart.
        let mut nanos = [0u8; 2];
        let _ = getrandom::fill(&mut nanos);
        let jitter = u64::from(u16::from_le_bytes(nanos)) % base.max(1);
        Duration::from_millis(base / 2 + jitter)
    }

    /// Obtains a session from the token endpoint.
    async fn log_in(&self) -> Result<Session, SourceError> {
        let form = self.login.token_request().map_err(SourceError::Config)?;
        let url = format!("{}/services/oauth2/token", self.login.login_base());
        let mut attempt = 0;
        let response = loop {
            match self.http.post(&url).form(&form).send().await {
                Ok(r) if transient(r.status(), "") && attempt + 1 < MAX_ATTEMPTS => {}
                Ok(r) => break r,
                Err(e) if attempt + 1 >= MAX_ATTEMPTS => {
                    return Err(SourceError::Network(crate::text::error_chain(&e)));
                }
                Err(_) => {}
            }
            tokio::time::sleep(Self::backoff(attempt)).await;
            attempt += 1;
        };
        if response.status().is_success() {
            let token: TokenResponse = response
                .json()
                .await
                .map_err(|e| SourceError::Network(format!("unreadable token response: {e}")))?;
            return Ok(Session {
                access_token: token.access_token,
                instance_url: token.instance_url.trim_end_matches('/').to_string(),
            });
        }
        let status = response.status();
        let refusal: TokenError = response.json().await.unwrap_or(TokenError {
            error: format!("HTTP {status}"),
            error_description: String::new(),
        });
        Err(SourceError::Disconnected {
            reason: disconnect_reason(&refusal.error, &refusal.error_description),
            error: refusal.error,
            description: refusal.error_description,
        })
    }

    /// The current session; with `refused`, one other than that one, minting a new session
    /// unless a concurrent call already did after the same expiry.
    async fn session(&self, refused: Option<&Session>) -> Result<Session, SourceError> {
        if let Some(session) = self.session.lock().ok().and_then(|s| s.clone())
            && refused.is_none_or(|r| r.access_token != session.access_token)
        {
            return Ok(session);
        }
        self.mint().await
    }

    /// Logs in, and keeps the session for the calls that follow.
    async fn mint(&self) -> Result<Session, SourceError> {
        let session = self.log_in().await?;
        if let Ok(mut slot) = self.session.lock() {
            *slot = Some(session.clone());
        }
        Ok(session)
    }

    /// A call to the REST API, as JSON. `path` starts at `/services/data/...` or is a
    /// `nextRecordsUrl`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SourceError> {
        let response = self.request(method, path, body, &[]).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response
            .json()
            .await
            .map_err(|e| SourceError::Network(format!("unreadable response: {e}")))
    }

    /// Makes a call: within the budget, with a session (minted again once on a 401), retrying
    /// transient failures. Returns the successful response.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, SourceError> {
        let payload = match body {
            Some(json) => Payload::Json(json),
            None => Payload::None,
        };
        self.send(method, path, payload, headers).await
    }

    /// A partner SOAP API call (`/services/Soap/u/{version}`): `content` is the operation's
    /// escaped XML; the session goes in its `SessionHeader`. A fault is an `Api` error with
    /// the fault's code.
    pub async fn soap(
        &self,
        operation: &str,
        content: &str,
    ) -> Result<sfsoap::Message, SourceError> {
        let path = format!("/services/Soap/u/{}", self.login.api_version);
        self.soap_at(&path, sfsoap::PARTNER_NS, operation, content)
            .await
    }

    /// A Metadata API call (`/services/Soap/m/{version}`), as [`Self::soap`] makes partner ones.
    pub async fn metadata(
        &self,
        operation: &str,
        content: &str,
    ) -> Result<sfsoap::Message, SourceError> {
        let path = format!("/services/Soap/m/{}", self.login.api_version);
        self.soap_at(&path, sfsoap::METADATA_NS, operation, content)
            .await
    }

    async fn soap_at(
        &self,
        path: &str,
        namespace: &str,
        operation: &str,
        content: &str,
    ) -> Result<sfsoap::Message, SourceError> {
        let response = self
            .send(
                Method::POST,
                path,
                Payload::Soap {
                    namespace,
                    operation,
                    content,
                },
                &[],
            )
            .await?;
        let text = response
            .text()
            .await
            .map_err(|e| SourceError::Network(format!("unreadable SOAP response: {e}")))?;
        sfsoap::Message::parse(&text)
            .map_err(|e| SourceError::Network(format!("unreadable SOAP response: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, SourceError> {
        let mut session = self.session(None).await?;
        let mut reminted = false;
        let mut attempt = 0;
        loop {
            self.reserve_call().await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", session.instance_url));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request = match payload {
                Payload::None => request.bearer_auth(&session.access_token),
                Payload::Json(body) => request.bearer_auth(&session.access_token).json(body),
                // SOAP APIs read the session from the envelope, not a header.
                Payload::Soap {
                    namespace,
                    operation,
                    content,
                } => request
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
                    .header("SOAPAction", "\"\"")
                    .body(sfsoap::request_in(
                        namespace,
                        &session.access_token,
                        operation,
                        content,
                    )),
                Payload::Parts {
                    boundary,
                    entity,
                    json,
                    upload,
                } => {
                    let (length, body) = parts::multipart_body(boundary, entity, json, upload);
                    request
                        .bearer_auth(&session.access_token)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            format!("multipart/form-data; boundary={boundary}"),
                        )
                        .header(reqwest::header::CONTENT_LENGTH, length)
                        .body(body)
                }
            };
            let sent = request.send().await;
            if let Some(ms) = sent
                .as_ref()
                .ok()
                .and_then(|r| r.headers().get(reqwest::header::DATE))
                .and_then(|v| v.to_str().ok())
                .and_then(http_date_ms)
                && let Ok(mut slot) = self.server_time.lock()
            {
                *slot = Some((ms, std::time::Instant::now()));
            }
            if let Ok(mut budget) = self.budget.lock() {
                budget.settle(
                    sent.as_ref()
                        .ok()
                        .and_then(|r| r.headers().get("Sforce-Limit-Info"))
                        .and_then(|v| v.to_str().ok()),
                );
            }
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    attempt += 1;
                    // A create that may have been carried out is never sent again: the caller
                    // finds out what it made (a restore's journal), or it would be made twice.
                    if attempt >= MAX_ATTEMPTS || !replayable(&method, path) {
                        return Err(SourceError::Network(crate::text::error_chain(&e)));
                    }
                    tokio::time::sleep(Self::backoff(attempt)).await;
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            // Error bodies are an array of {message, errorCode}; read it (the connection may
            // still break here, which is transient too).
            let text = match response.text().await {
                Ok(text) => text,
                Err(e) => {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(SourceError::Network(crate::text::error_chain(&e)));
                    }
                    tokio::time::sleep(Self::backoff(attempt)).await;
                    continue;
                }
            };
            let (code, message) = match payload {
                Payload::Soap { .. } => {
                    match sfsoap::Message::parse(&text).ok().and_then(|m| m.fault()) {
                        Some(fault) => (fault.exception_code().to_string(), fault.message),
                        None => (String::new(), text.clone()),
                    }
                }
                _ => {
                    let first: Value = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get(0).cloned())
                        .unwrap_or(Value::Null);
                    (
                        first["errorCode"].as_str().unwrap_or_default().to_string(),
                        first["message"].as_str().unwrap_or(&text).to_string(),
                    )
                }
            };
            // SOAP says an expired session with a 500 and its fault code.
            if status == StatusCode::UNAUTHORIZED || code == "INVALID_SESSION_ID" {
                // A fresh session that is refused straight away will not be accepted: fail.
                // A 401 after the fresh session worked is a new expiry, and gets its own.
                if reminted {
                    return Err(SourceError::Api {
                        status: status.as_u16(),
                        code,
                        message,
                    });
                }
                reminted = true;
                session = self.session(Some(&session)).await?;
                continue;
            }
            reminted = false;
            if code == "REQUEST_LIMIT_EXCEEDED" && message.starts_with("TotalRequests") {
                return Err(SourceError::DailyLimitReached { message });
            }
            if transient(status, &code) && attempt + 1 < MAX_ATTEMPTS {
                attempt += 1;
                tokio::time::sleep(Self::backoff(attempt)).await;
                continue;
            }
            return Err(SourceError::Api {
                status: status.as_u16(),
                code,
                message,
            });
        }
    }

    /// Waits until one more call fits under the ceiling with the calls in flight; fails once
    /// the org's usage is at the ceiling.
    async fn reserve_call(&self) -> Result<(), SourceError> {
        loop {
            let verdict = {
                let mut budget = self
                    .budget
                    .lock()
                    .map_err(|_| SourceError::Config("budget lock poisoned".into()))?;
                match budget.reserve() {
                    Reservation::Spent => {
                        return Err(SourceError::BudgetExhausted {
                            used: budget.used,
                            max: budget.max,
                            limit_percent: budget.limit_percent,
                        });
                    }
                    verdict => verdict,
                }
            };
            if verdict == Reservation::Granted {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads the org's API usage from `/limits` (one call), so the budget is known before the
    /// backup starts.
    pub async fn refresh_budget(&self) -> Result<Budget, SourceError> {
        let path = format!("/services/data/v{}/limits", self.login.api_version);
        let limits = self.call(Method::GET, &path, None).await?;
        if let (Some(max), Some(remaining)) = (
            limits["DailyApiRequests"]["Max"].as_u64(),
            limits["DailyApiRequests"]["Remaining"].as_u64(),
        ) && let Ok(mut budget) = self.budget.lock()
        {
            budget.max = max;
            budget.used = max.saturating_sub(remaining);
        }
        Ok(self.budget())
    }

    /// Connected or Disconnected, and why: a login and a userinfo call, neither of which
    /// counts against the API allocation.
    pub async fn check_connection(&self) -> Connection {
        let session = match self.mint().await {
            Ok(session) => session,
            Err(e) => return Self::disconnected(e),
        };
        // One passing fault (a 503, a reset, a stale session, a throttling 403) is not a
        // disconnection: userinfo is retried like every other call, and only an answer that
        // stays a refusal says the credentials are gone.
        let (mut session, mut reminted, mut attempt) = (session, false, 0);
        loop {
            let info = self
                .http
                .get(format!("{}/services/oauth2/userinfo", session.instance_url))
                .bearer_auth(&session.access_token)
                .send()
                .await;
            let retry = match &info {
                Ok(response) if response.status().is_success() => false,
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !reminted => {
                    reminted = true;
                    match self.session(Some(&session)).await {
                        Ok(fresh) => session = fresh,
                        Err(e) => return Self::disconnected(e),
                    }
                    continue;
                }
                Ok(response) => {
                    let status = response.status();
                    (transient(status, "") || status == StatusCode::FORBIDDEN)
                        && attempt + 1 < MAX_ATTEMPTS
                }
                Err(_) => attempt + 1 < MAX_ATTEMPTS,
            };
            if retry {
                attempt += 1;
                tokio::time::sleep(Self::backoff(attempt)).await;
                continue;
            }
            return match info {
                Ok(response) if response.status().is_success() => {
                    match response.json::<Value>().await {
                        Ok(info) => Connection::Connected {
                            org_id: info["organization_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            username: info["preferred_username"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        },
                        Err(e) => Connection::Disconnected {
                            reason: DisconnectReason::Unreachable,
                            detail: e.to_string(),
                        },
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    Connection::Disconnected {
                        reason: match status {
                            StatusCode::UNAUTHORIZED => DisconnectReason::Expired,
                            StatusCode::FORBIDDEN => DisconnectReason::Refused,
                            _ => DisconnectReason::Unreachable,
                        },
                        detail: format!("userinfo answered {status}"),
                    }
                }
                Err(e) => Connection::Disconnected {
                    reason: DisconnectReason::Unreachable,
                    detail: e.to_string(),
                },
            };
        }
    }

    fn disconnected(error: SourceError) -> Connection {
        match error {
            SourceError::Disconnected {
                reason,
                error,
                description,
            } => Connection::Disconnected {
                reason,
                detail: format!("{error}: {description}"),
            },
            other => Connection::Disconnected {
                reason: DisconnectReason::Unreachable,
                detail: other.to_string(),
            },
        }
    }
}
