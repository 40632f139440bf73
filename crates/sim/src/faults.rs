//! Injected failures: what a test asks the org to do to Salesforce API calls (errors,
//! throttles, broken connections, slowness), drawn per call and applied by a middleware.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Shared};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::org::Rng;
use super::server::{ApiError, State, json_response};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FaultKind {
    /// 403 REQUEST_LIMIT_EXCEEDED for too many concurrent long requests
    /// (`ConcurrentPerOrgLongTxn`): a throttle that passes. The daily allocation running out
    /// (`TotalRequests`) comes from the org's real API usage (`PUT /__sim/api-usage`), not from
    /// a fault.
    RequestLimitExceeded,
    /// 503 SERVER_UNAVAILABLE.
    ServerUnavailable,
    /// 400 UNABLE_TO_LOCK_ROW on writes.
    UnableToLockRow,
    /// 401 INVALID_SESSION_ID.
    InvalidSessionId,
    /// The connection is cut in the middle of the response.
    ConnectionReset,
    /// The request is carried out (a write is committed), then the connection is cut before
    /// the client reads the answer: what a client sees when a network fails at the worst time.
    ConnectionResetAfterWrite,
    /// The response is delayed by `delayMs`.
    Slow,
    /// Bulk API 2.0 query jobs created while set end in state Failed.
    BulkJobFailed,
    /// 400 QUERY_TIMEOUT: a query (REST query or queryAll) that ran too long.
    QueryTimeout,
    /// 400 OPERATION_TOO_LARGE: a query (REST query or queryAll) over too many rows for the
    /// user's sharing.
    OperationTooLarge,
}

/// Unknown fields are refused (a misspelt `delayMs` would otherwise be a fault that is set
/// and does not do what the test meant).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    /// Share of matching requests hit, 0.0 to 1.0.
    #[serde(default = "always")]
    pub rate: f64,
    #[serde(default)]
    pub delay_ms: u64,
    /// Stop after this many hits; none means for as long as the fault is set.
    #[serde(default)]
    pub times: Option<u64>,
    /// Only requests whose path contains this (then also the OAuth token endpoint); none
    /// means every API request.
    #[serde(default)]
    pub path: Option<String>,
    /// Only requests of this HTTP method.
    #[serde(default)]
    pub method: Option<String>,
}

fn always() -> f64 {
    1.0
}

pub struct Faults {
    pub(crate) active: Vec<Fault>,
    rng: Rng,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            active: Vec::new(),
            rng: Rng::new(0xFA17),
        }
    }
}

impl Faults {
    /// Hits the active faults still have to give (a fault without `times` counts as one).
    pub fn pending(&self) -> u64 {
        self.active.iter().map(|f| f.times.unwrap_or(1)).sum()
    }

    /// The faults that hit this request (each drawn once).
    fn draw(&mut self, method: &str, path: &str, api: bool) -> Vec<Fault> {
        let write = method != "GET";
        let mut hits = Vec::new();
        for fault in &mut self.active {
            let query = path.contains("/query");
            if (fault.kind == FaultKind::UnableToLockRow && !write)
                || fault.kind == FaultKind::BulkJobFailed
                || (matches!(
                    fault.kind,
                    FaultKind::QueryTimeout | FaultKind::OperationTooLarge
                ) && !query)
            {
                continue;
            }
            let aimed = match &fault.path {
                Some(part) => path.contains(part.as_str()),
                None => api,
            };
            if !aimed
                || fault
                    .method
                    .as_ref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if fault.times == Some(0) {
                continue;
            }
            let roll = (self.rng.next_u64() % 1_000_000) as f64 / 1_000_000.0;
            if roll < fault.rate {
                if let Some(times) = &mut fault.times {
                    *times -= 1;
                }
                hits.push(fault.clone());
            }
        }
        hits
    }
}

impl Faults {
    /// Whether a fault of this kind hits now (counting it against its `times`).
    pub fn strikes(&mut self, kind: FaultKind) -> bool {
        let Some(fault) = self
            .active
            .iter_mut()
            .find(|f| f.kind == kind && f.times != Some(0))
        else {
            return false;
        };
        let roll = (self.rng.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        if roll >= fault.rate {
            return false;
        }
        if let Some(times) = &mut fault.times {
            *times -= 1;
        }
        true
    }
}

/// Applies injected faults, and the org's deletion, to Salesforce's API paths.
pub async fn inject(Shared(state): Shared<Arc<State>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/services/data/v") || path.starts_with("/services/oauth2/userinfo");
    if path.contains("/services/") && state.org.read().map(|o| o.gone).unwrap_or(false) {
        return if path.ends_with("/services/oauth2/token") {
            json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_grant", "error_description": "inactive organization"})
                    .to_string(),
            )
        } else if path.starts_with("/services/data/v") {
            ApiError::invalid_session().into_response()
        } else {
            next.run(request).await
        };
    }
    let token = path.starts_with("/services/oauth2/token");
    // A composite call's subrequests are that one call: its faults were drawn already.
    if (!api && !token) || state.is_subrequest(request.headers()) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let hits = match state.faults.lock() {
        Ok(mut faults) => faults.draw(&method, path, api),
        Err(_) => Vec::new(),
    };
    for fault in &hits {
        if fault.kind == FaultKind::Slow {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
    }
    for fault in &hits {
        match fault.kind {
            FaultKind::RequestLimitExceeded => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded.",
                )
                .into_response();
            }
            FaultKind::ServerUnavailable => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_UNAVAILABLE",
                    "Server temporarily unavailable. Please try again later.",
                )
                .into_response();
            }
            FaultKind::UnableToLockRow => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records",
                )
                .into_response();
            }
            FaultKind::InvalidSessionId => return ApiError::invalid_session().into_response(),
            FaultKind::QueryTimeout => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "QUERY_TIMEOUT",
                    "Your query request was running for too long.",
                )
                .into_response();
            }
            FaultKind::OperationTooLarge => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "OPERATION_TOO_LARGE",
                    "exceeded 100000 distinct ids",
                )
                .into_response();
            }
            FaultKind::ConnectionReset => {
                // Headers go out, then the body fails: the client sees the connection drop.
                let broken = broken_body();
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "application/json;charset=UTF-8")
                    .body(Body::from_stream(broken))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            FaultKind::ConnectionResetAfterWrite => {
                let _done = next.run(request).await;
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "application/json;charset=UTF-8")
                    .body(Body::from_stream(broken_body()))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            FaultKind::Slow | FaultKind::BulkJobFailed => {}
        }
    }
    next.run(request).await
}

/// A body that sends a little and then fails.
fn broken_body()
-> impl futures_core::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    struct Broken(u8);
    impl futures_core::Stream for Broken {
        type Item = std::result::Result<Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.0 += 1;
            std::task::Poll::Ready(Some(match self.0 {
                1 => Ok(Bytes::from_static(b"{\"totalSize\":")),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                )),
            }))
        }
    }
    Broken(0)
}

/// Faults live in the server state.
pub type FaultState = Mutex<Faults>;
