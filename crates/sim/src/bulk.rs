//! Bulk API 2.0 query jobs: create, poll through the job states, page CSV results by
//! `Sforce-Locator`, abort and delete.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::catalog::FieldType;
use super::render::{CsvFormat, csv_header, csv_row};
use super::rest::execute;
use super::server::{
    ApiError, State, admit, bytes_response, json_body, json_response, poisoned, version,
    with_limit_info,
};
use super::soql::{self, Select};
use sftime as time;

type Result<T> = std::result::Result<T, ApiError>;

/// Rows per results page when the client does not say (`maxRecords`).
const DEFAULT_PAGE: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Aborted,
}

pub struct Job {
    id: String,
    operation: String,
    object: usize,
    fields: Vec<soql::FieldPath>,
    hits: super::rest::Hits,
    version: String,
    format: CsvFormat,
    line_ending: &'static str,
    delimiter_name: String,
    created: Instant,
    created_at: i64,
    stopped: Option<Terminal>,
    /// The job will end in Failed (an injected fault).
    fails: bool,
}

/// Jobs kept at most; the oldest go first (Salesforce deletes finished jobs after seven days),
/// so a long-running simulator does not hold every result set it ever produced.
const MAX_JOBS: usize = 200;

#[derive(Default)]
pub struct Jobs {
    jobs: HashMap<String, Job>,
    counter: u64,
}

impl Jobs {
    fn add(&mut self, job: Job) {
        self.jobs.insert(job.id.clone(), job);
        while self.jobs.len() > MAX_JOBS {
            let oldest = self
                .jobs
                .values()
                .min_by_key(|j| j.created)
                .map(|j| j.id.clone());
            match oldest {
                Some(id) => self.jobs.remove(&id),
                None => break,
            };
        }
    }
}

impl Jobs {
    pub fn created_today(&self) -> u64 {
        self.counter
    }
}

impl Job {
    fn state(&self, delay_ms: u64) -> &'static str {
        if self.stopped == Some(Terminal::Aborted) {
            return "Aborted";
        }
        let elapsed = self.created.elapsed().as_millis() as u64;
        if elapsed >= delay_ms && self.fails {
            "Failed"
        } else if elapsed >= delay_ms {
            "JobComplete"
        } else if elapsed * 2 >= delay_ms {
            "InProgress"
        } else {
            "UploadComplete"
        }
    }

    fn info(&self, state: &State, org_user: &str, detail: bool) -> serde_json::Value {
        let object = state
            .org
            .read()
            .map(|o| o.catalog.objects[self.object].name.clone())
            .unwrap_or_default();
        let job_state = self.state(state.bulk_delay_ms);
        let mut info = json!({
            "id": self.id,
            "operation": self.operation,
            "object": object,
            "createdById": org_user,
            "createdDate": time::format_datetime(self.created_at),
            "systemModstamp": time::format_datetime(self.created_at),
            "state": job_state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.version.parse::<f64>().unwrap_or(0.0),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter_name,
        });
        if detail && let Some(map) = info.as_object_mut() {
            let done = job_state == "JobComplete";
            map.insert("jobType".into(), json!("V2Query"));
            map.insert(
                "numberRecordsProcessed".into(),
                json!(if done { self.hits.len() } else { 0 }),
            );
            map.insert("retries".into(), json!(0));
            map.insert(
                "totalProcessingTime".into(),
                json!(if done { state.bulk_delay_ms } else { 0 }),
            );
            map.insert("isPkChunkingSupported".into(), json!(true));
            if job_state == "Failed" {
                map.insert(
                    "errorMessage".into(),
                    json!("InternalServerError: the query failed after 15 retries"),
                );
                map.insert("retries".into(), json!(15));
            }
        }
        info
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJob {
    operation: Option<String>,
    query: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALIDJOB", message)
}

pub async fn create(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let request: CreateJob = serde_json::from_value(json_body(&headers, &body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", format!("{e}")))?;
    let operation = request.operation.unwrap_or_else(|| "query".to_string());
    if operation != "query" && operation != "queryAll" {
        return Err(bad_request(format!("Invalid operation: {operation}")));
    }
    if request.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(bad_request("Only CSV is supported for query jobs"));
    }
    let delimiter_name = request
        .column_delimiter
        .unwrap_or_else(|| "COMMA".to_string());
    let delimiter = CsvFormat::delimiter_from(&delimiter_name)
        .ok_or_else(|| bad_request(format!("Invalid column delimiter: {delimiter_name}")))?;
    let line_ending = match request.line_ending.as_deref().unwrap_or("LF") {
        "LF" => "LF",
        "CRLF" => "CRLF",
        other => return Err(bad_request(format!("Invalid line ending: {other}"))),
    };
    let soql_text = request
        .query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| bad_request("query is required"))?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let query = soql::parse(&soql_text, &org.catalog, org.clock.now())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALIDJOB", e.message))?;
    let fields = match &query.select {
        Select::Count => {
            return Err(bad_request(
                "Aggregate queries are not supported by the Bulk API",
            ));
        }
        Select::Fields(fields) => fields.clone(),
        Select::Grouped { .. } => {
            return Err(bad_request(
                "Aggregate queries are not supported by the Bulk API",
            ));
        }
    };
    if fields
        .iter()
        .any(|f| !soql::bulk_selectable(&org.catalog, f))
    {
        return Err(bad_request(
            "Selecting compound data not supported in Bulk Query",
        ));
    }
    if fields
        .iter()
        .any(|f| org.catalog.objects[f.field.0].fields[f.field.1].field_type == FieldType::Base64)
    {
        // "FeatureNotEnabled : Binary field not supported", as clients report it: the code
        // (spelt as Bulk API 2.0 spells its codes), then the message.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "FEATURENOTENABLED",
            "Binary field not supported",
        ));
    }
    if query.offset > 0 {
        return Err(bad_request("OFFSET is not supported by the Bulk API"));
    }
    if !query.children.is_empty() {
        return Err(bad_request(
            "Parent-to-child subqueries are not supported by the Bulk API",
        ));
    }
    if !query.polymorphic.is_empty() {
        return Err(bad_request("TYPEOF is not supported by the Bulk API"));
    }
    if query.fields_function {
        return Err(bad_request("FIELDS() is not supported by the Bulk API"));
    }
    let hits = execute(&org, &query, operation == "queryAll");
    let user = org.user_id.clone();
    let now = org.clock.now();
    drop(org);
    let mut jobs = state.jobs.lock().map_err(|_| poisoned())?;
    jobs.counter += 1;
    let id = super::ids::record_id("750", jobs.counter);
    let job = Job {
        id,
        operation,
        object: query.object,
        fields,
        hits,
        version: v,
        format: CsvFormat {
            delimiter,
            crlf: line_ending == "CRLF",
        },
        line_ending,
        delimiter_name,
        created: Instant::now(),
        created_at: now,
        stopped: None,
        fails: state
            .faults
            .lock()
            .map(|mut f| f.strikes(super::admin::FaultKind::BulkJobFailed))
            .unwrap_or(false),
    };
    let mut body = job.info(&state, &user, false);
    if let Some(map) = body.as_object_mut() {
        // A new job is always queued first, however fast it then runs.
        map.insert("state".into(), json!("UploadComplete"));
    }
    jobs.add(job);
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

pub async fn info(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let limit = admit(&state, &headers)?;
    let user = state
        .org
        .read()
        .map(|o| o.user_id.clone())
        .map_err(|_| poisoned())?;
    let jobs = state.jobs.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get(&job).ok_or_else(ApiError::not_found)?;
    Ok(with_limit_info(
        json_response(StatusCode::OK, job.info(&state, &user, true).to_string()),
        &limit,
    ))
}

pub async fn list(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let limit = admit(&state, &headers)?;
    let user = state
        .org
        .read()
        .map(|o| o.user_id.clone())
        .map_err(|_| poisoned())?;
    let jobs = state.jobs.lock().map_err(|_| poisoned())?;
    let mut records: Vec<&Job> = jobs.jobs.values().collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|j| j.info(&state, &user, true))
        .collect();
    let body = json!({"done": true, "records": records, "nextRecordsUrl": null});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &limit,
    ))
}

#[derive(Deserialize)]
pub struct Abort {
    state: Option<String>,
}

pub async fn abort(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let limit = admit(&state, &headers)?;
    let request: Abort = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", format!("{e}")))?;
    if request.state.as_deref() != Some("Aborted") {
        return Err(bad_request(
            "A query job can only be changed to state Aborted",
        ));
    }
    let user = state
        .org
        .read()
        .map(|o| o.user_id.clone())
        .map_err(|_| poisoned())?;
    let mut jobs = state.jobs.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get_mut(&job).ok_or_else(ApiError::not_found)?;
    if job.state(state.bulk_delay_ms) == "JobComplete" {
        return Err(bad_request("Cannot abort a job that has completed"));
    }
    job.stopped = Some(Terminal::Aborted);
    Ok(with_limit_info(
        json_response(StatusCode::OK, job.info(&state, &user, false).to_string()),
        &limit,
    ))
}

pub async fn delete(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let limit = admit(&state, &headers)?;
    let mut jobs = state.jobs.lock().map_err(|_| poisoned())?;
    jobs.jobs.remove(&job).ok_or_else(ApiError::not_found)?;
    let mut response = bytes_response(
        StatusCode::NO_CONTENT,
        "application/json;charset=UTF-8",
        Vec::new(),
    );
    response.headers_mut().remove(header::CONTENT_TYPE);
    Ok(with_limit_info(response, &limit))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    locator: Option<String>,
    max_records: Option<usize>,
}

pub async fn results(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
    UrlQuery(page): UrlQuery<Page>,
) -> Result<Response> {
    let v = version(&v)?;
    let limit = admit(&state, &headers)?;
    let jobs = state.jobs.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get(&job).ok_or_else(ApiError::not_found)?;
    if job.version != v {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "INVALIDJOB",
            format!(
                "Results of job {} can only be retrieved with API version {}",
                job.id, job.version
            ),
        ));
    }
    let job_state = job.state(state.bulk_delay_ms);
    if job_state != "JobComplete" {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "JOB_NOT_COMPLETE",
            format!(
                "can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: {}",
                job_state.to_uppercase()
            ),
        ));
    }
    let start = match page.locator.as_deref() {
        None | Some("") => 0,
        Some(locator) => base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(locator.trim_end_matches('='))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n <= job.hits.len())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_LOCATOR",
                    "Invalid locator",
                )
            })?,
    };
    let size = page.max_records.filter(|&n| n > 0).unwrap_or(DEFAULT_PAGE);
    let end = (start + size).min(job.hits.len());
    let hits = job.hits.slice(start, end);
    let (object, fields, format) = (job.object, job.fields.clone(), job.format);
    let next = if end < job.hits.len() {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(end.to_string())
    } else {
        "null".to_string()
    };
    drop(jobs);
    // Records hard-deleted since the job ran are skipped, and not counted.
    let rows = {
        let org = state.org.read().map_err(|_| poisoned())?;
        let table = &org.tables[object];
        hits.records(table, 0..hits.len()).count()
    };
    let mut response = Response::new(Body::from_stream(render_page(
        state.clone(),
        object,
        fields,
        format,
        hits,
    )));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    headers.insert("Sforce-NumberOfRecords", HeaderValue::from(rows));
    if let Ok(value) = HeaderValue::from_str(&next) {
        headers.insert("Sforce-Locator", value);
    }
    Ok(with_limit_info(response, &limit))
}

/// Plaintext bytes of CSV per chunk of a streamed results page.
const PAGE_CHUNK: usize = 256 * 1024;

/// A results page as a stream of CSV chunks, rendered on a blocking thread while the first
/// ones are on their way: like Salesforce, the body starts before the page is complete, and a
/// large page never sits whole in memory or holds the org's lock for long.
fn render_page(
    state: Arc<State>,
    object: usize,
    fields: Vec<soql::FieldPath>,
    format: CsvFormat,
    hits: super::rest::Hits,
) -> impl futures_core::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let mut body = Vec::with_capacity(PAGE_CHUNK + 64 * 1024);
        csv_header(&mut body, &fields, format);
        let mut scratch = String::new();
        let mut ready = Vec::new();
        for start in (0..hits.len()).step_by(1024) {
            {
                let Ok(org) = state.org.read() else {
                    let _ = sender.blocking_send(Err(std::io::Error::other("the org is unusable")));
                    return;
                };
                let table = &org.tables[object];
                for record in hits.records(table, start..(start + 1024).min(hits.len())) {
                    csv_row(&mut body, &org, record, &fields, format, &mut scratch);
                    // Cut before the buffer must grow: growing copies it all.
                    if body.len() >= PAGE_CHUNK {
                        ready.push(Bytes::from(std::mem::replace(
                            &mut body,
                            Vec::with_capacity(PAGE_CHUNK + 64 * 1024),
                        )));
                    }
                }
            }
            // Sent with the org unlocked: a slow reader must not hold up writers.
            for chunk in ready.drain(..) {
                if sender.blocking_send(Ok(chunk)).is_err() {
                    return; // the client went away
                }
            }
        }
        if !body.is_empty() {
            let _ = sender.blocking_send(Ok(Bytes::from(body)));
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}
