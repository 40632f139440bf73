//! The simulator's HTTP server: one process stands for both the login host and the org's
//! instance, on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::org::{Org, OrgOptions};
use super::{admin, bulk, oauth, rest};

/// Oldest and newest API versions the simulated org serves.
pub const MIN_VERSION: u32 = 31;
pub const MAX_VERSION: u32 = 66;

/// What a client needs to talk to a running simulator.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub instance_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    /// A session that is valid from the start, for clients that take a session id.
    pub access_token: String,
    pub refresh_token: String,
    /// With TLS: the CA certificate (PEM) clients must trust.
    pub ca_certificate: Option<String>,
}

#[derive(Default)]
pub struct SimOptions {
    pub org: OrgOptions,
    /// The connected app's certificate (or RSA public key), PEM: what JWT assertions are
    /// verified against. Without it the JWT bearer grant is refused.
    pub jwt_certificate: Option<String>,
    /// Serve HTTPS with a certificate from a CA minted at start.
    pub tls: bool,
    /// How long a Bulk API 2.0 query job takes to complete, in milliseconds.
    pub bulk_delay_ms: u64,
    /// How long every answer takes beyond the work, in milliseconds: a real org's round trip
    /// from a CI runner is 100 to 300.
    pub latency_ms: u64,
}

pub struct Session {
    pub refresh_token: Option<String>,
    /// Authenticated calls made with it.
    pub calls: u32,
    /// When it was last used: a session unused for the timeout has expired.
    pub last_used: std::time::Instant,
}

impl Session {
    pub fn new(refresh_token: Option<String>) -> Session {
        Session {
            refresh_token,
            calls: 0,
            last_used: std::time::Instant::now(),
        }
    }
}

/// Salesforce's default session timeout: two hours without a call.
pub const SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2 * 60 * 60);

pub struct State {
    pub org: RwLock<Org>,
    /// What the Tooling API serves (`/tooling/…`): Apex classes and triggers.
    pub tooling: RwLock<Org>,
    /// What the Metadata API lists: every component of the org.
    pub metadata: RwLock<Vec<super::metadata::components::Component>>,
    /// Metadata retrieves, until their status is read.
    pub retrievals: Mutex<super::metadata::retrieve::Retrievals>,
    /// Metadata deploys, until their status is read.
    pub deployments: Mutex<super::metadata::deploy::Deployments>,
    /// The limits retrieves are held to.
    pub retrieve_limits: Mutex<super::metadata::retrieve::Limits>,
    /// Metadata API calls served, by operation (for tests and benchmarks; `/__sim/state`).
    pub metadata_calls: Mutex<std::collections::BTreeMap<String, u64>>,
    pub sessions: Mutex<HashMap<String, Session>>,
    /// Calls a session serves before it expires (0: until expired by hand). A session
    /// timeout measured in calls, so tests can expire sessions mid-run deterministically.
    pub session_calls: std::sync::atomic::AtomicU32,
    /// Sessions that reached that many calls.
    pub sessions_worn_out: std::sync::atomic::AtomicU64,
    /// How long a session lives without a call (real time, as Salesforce's sessions do; the
    /// org's simulated clock moves by days in tests).
    pub session_timeout: Mutex<std::time::Duration>,
    /// Refresh token -> still valid.
    pub refresh_tokens: Mutex<HashMap<String, bool>>,
    pub cursors: Mutex<rest::Cursors>,
    pub jobs: Mutex<bulk::Jobs>,
    /// Bulk API 2.0 ingest jobs.
    pub ingest: Mutex<super::ingest::IngestJobs>,
    pub faults: admin::FaultState,
    pub codes: Mutex<oauth::Codes>,
    pub jwt_key: Option<jsonwebtoken::DecodingKey>,
    pub client_id: String,
    pub client_secret: String,
    pub base_url: RwLock<String>,
    pub bulk_delay_ms: u64,
    pub latency_ms: u64,
    /// Marks the requests a composite call makes of the org's own routes (the
    /// [`SUBREQUEST_HEADER`]): they are part of that one call, not calls of their own. Random
    /// per process, so no client can claim it.
    pub subrequest_key: String,
    counter: Mutex<u64>,
}

/// The header that carries [`State::subrequest_key`].
pub const SUBREQUEST_HEADER: &str = "x-sim-composite-subrequest";

impl State {
    /// Whether a request is a subrequest of a composite call (already admitted and counted).
    pub fn is_subrequest(&self, headers: &HeaderMap) -> bool {
        headers
            .get(SUBREQUEST_HEADER)
            .is_some_and(|v| v.as_bytes() == self.subrequest_key.as_bytes())
    }
}

impl State {
    /// A fresh opaque token, shaped like Salesforce's (`00D…!…` for sessions).
    pub fn mint(&self, prefix: &str) -> String {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        *counter += 1;
        let mut rng = super::org::Rng::new(*counter ^ 0x5EED);
        let tail: String = (0..40)
            .map(|_| {
                let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
                chars[rng.below(chars.len() as u64) as usize] as char
            })
            .collect();
        format!("{prefix}{tail}")
    }

    pub fn base_url(&self) -> String {
        self.base_url.read().map(|b| b.clone()).unwrap_or_default()
    }
}

/// A REST error: a JSON array of `{message, errorCode}`, as every non-2xx REST body is.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Fields a record-level error is about (omitted when empty).
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn invalid_session() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "message": self.message, "errorCode": self.code });
        if !self.fields.is_empty()
            && let Some(map) = error.as_object_mut()
        {
            map.insert("fields".into(), serde_json::json!(self.fields));
        }
        let body = serde_json::Value::Array(vec![error]);
        json_response(self.status, body.to_string())
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// Checks the session and counts the call against the daily allocation, as every
/// authenticated REST and Bulk request is counted. Returns the `Sforce-Limit-Info` value.
pub fn admit(state: &State, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .ok_or_else(ApiError::invalid_session)?;
    if state.is_subrequest(headers) {
        // Part of a composite call that was admitted and counted as one: the session is
        // checked, nothing is counted again.
        let known = state
            .sessions
            .lock()
            .map(|sessions| sessions.contains_key(token.trim()))
            .unwrap_or(false);
        if !known {
            return Err(ApiError::invalid_session());
        }
        return Ok(state.org.read().map_err(|_| poisoned())?.limit_info());
    }
    admit_token(state, token)
}

/// Checks a session id however it came (a header, a SOAP `SessionHeader`) and counts the
/// call. Returns the `Sforce-Limit-Info` value.
pub fn admit_token(state: &State, token: &str) -> Result<String, ApiError> {
    let lifetime = state
        .session_calls
        .load(std::sync::atomic::Ordering::Relaxed);
    let timeout = state
        .session_timeout
        .lock()
        .map(|t| *t)
        .unwrap_or(SESSION_TIMEOUT);
    let known = state
        .sessions
        .lock()
        .map(|mut sessions| {
            let token = token.trim();
            let Some(session) = sessions.get_mut(token) else {
                return false;
            };
            if session.last_used.elapsed() > timeout {
                sessions.remove(token);
                return false;
            }
            session.last_used = std::time::Instant::now();
            session.calls += 1;
            if lifetime > 0 && session.calls > lifetime {
                sessions.remove(token);
                state
                    .sessions_worn_out
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
            true
        })
        .unwrap_or(false);
    if !known {
        return Err(ApiError::invalid_session());
    }
    let mut org = state.org.write().map_err(|_| poisoned())?;
    if !org.charge_api_call() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    Ok(org.limit_info())
}

pub fn poisoned() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: 0000-sim",
    )
}

/// Adds `Sforce-Limit-Info` to a response.
pub fn with_limit_info(mut response: Response, info: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(info) {
        response.headers_mut().insert("Sforce-Limit-Info", value);
    }
    response
}

/// `v62.0` -> `62.0`, when the org serves that version.
pub fn version(segment: &str) -> Result<String, ApiError> {
    let number = segment.strip_prefix('v').ok_or_else(ApiError::not_found)?;
    let major: u32 = number
        .strip_suffix(".0")
        .and_then(|m| m.parse().ok())
        .ok_or_else(ApiError::not_found)?;
    if (MIN_VERSION..=MAX_VERSION).contains(&major) {
        Ok(number.to_string())
    } else {
        Err(ApiError::not_found())
    }
}

/// A simulator serving on a port of 127.0.0.1; it stops when dropped.
pub struct Simulator {
    pub addr: SocketAddr,
    pub credentials: Credentials,
    pub state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Generates the org and starts serving on `port` (0 picks a free one).
    pub async fn start(options: SimOptions, port: u16) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let jwt_key = match &options.jwt_certificate {
            Some(pem) => Some(oauth::decoding_key(pem).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the connected app certificate: {e}"),
                )
            })?),
            None => None,
        };
        let tls = if options.tls {
            Some(super::tls::generate()?)
        } else {
            None
        };
        let seed = options.org.seed;
        let extra_metadata = options.org.extra_metadata;
        let org = Org::generate(options.org);
        let tooling = super::tooling::generate(&org, seed);
        let metadata = super::metadata::components::generate(&org, &tooling, seed, extra_metadata);
        let state = Arc::new(State {
            org: RwLock::new(org),
            tooling: RwLock::new(tooling),
            metadata: RwLock::new(metadata),
            retrievals: Mutex::new(Default::default()),
            retrieve_limits: Mutex::new(Default::default()),
            deployments: Mutex::new(Default::default()),
            metadata_calls: Mutex::new(Default::default()),
            sessions: Mutex::new(HashMap::new()),
            session_calls: std::sync::atomic::AtomicU32::new(0),
            sessions_worn_out: std::sync::atomic::AtomicU64::new(0),
            session_timeout: Mutex::new(SESSION_TIMEOUT),
            refresh_tokens: Mutex::new(HashMap::new()),
            cursors: Mutex::new(rest::Cursors::default()),
            jobs: Mutex::new(bulk::Jobs::default()),
            ingest: Mutex::new(super::ingest::IngestJobs::default()),
            faults: Mutex::new(admin::Faults::default()),
            codes: Mutex::new(oauth::Codes::default()),
            jwt_key,
            client_id: "3MVG9sim.cairn.connected.app".to_string(),
            client_secret: "sim-consumer-secret".to_string(),
            base_url: RwLock::new(format!(
                "{}://{addr}",
                if options.tls { "https" } else { "http" }
            )),
            bulk_delay_ms: options.bulk_delay_ms,
            latency_ms: options.latency_ms,
            subrequest_key: {
                use std::hash::{BuildHasher, Hasher};
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(addr.port().into());
                format!("{:016x}", hasher.finish())
            },
            counter: Mutex::new(0),
        });
        let org_id15 = state
            .org
            .read()
            .map(|o| o.org_id[..15].to_string())
            .unwrap_or_default();
        let access_token = state.mint(&format!("{org_id15}!AQ"));
        let refresh_token = state.mint("5Aep861");
        if let Ok(mut sessions) = state.sessions.lock() {
            sessions.insert(access_token.clone(), Session::new(None));
        }
        if let Ok(mut tokens) = state.refresh_tokens.lock() {
            tokens.insert(refresh_token.clone(), true);
        }
        let credentials = Credentials {
            instance_url: state.base_url(),
            client_id: state.client_id.clone(),
            client_secret: state.client_secret.clone(),
            username: state
                .org
                .read()
                .map(|o| o.username.clone())
                .unwrap_or_default(),
            access_token,
            refresh_token,
            ca_certificate: tls.as_ref().map(|t| t.ca_pem.clone()),
        };
        // Routing sees the path with repeated slashes collapsed, as Salesforce does: the
        // official CLI keeps an instance URL with a trailing slash and asks for
        // `//services/data/...`.
        let app = Router::new()
            .fallback_service(super::routes::router(state.clone()))
            .layer(axum::middleware::map_request(
                super::routes::collapse_slashes,
            ));
        let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
        let until_shutdown = async {
            let _ = on_shutdown.await;
        };
        let task = match tls {
            Some(tls) => {
                let listener = super::tls::TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(tls.config),
                };
                tokio::spawn(super::http1::serve(listener, app, until_shutdown))
            }
            None => tokio::spawn(super::http1::serve(listener, app, until_shutdown)),
        };
        Ok(Simulator {
            addr,
            credentials,
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    pub fn url(&self) -> String {
        self.credentials.instance_url.clone()
    }

    /// Stops serving and waits until the server has shut down.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Request bodies are JSON, or the call is refused with 415.
pub fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type header specified in HTTP request is not supported: use application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            format!(
                "Unexpected character at [line:{}, column:{}]",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A response body that is plain bytes with a content type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
