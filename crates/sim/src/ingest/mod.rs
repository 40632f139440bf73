//! Bulk API 2.0 ingest jobs: create (insert, update, upsert, delete), upload one CSV
//! (`PUT …/batches`), `UploadComplete`, then poll through UploadComplete, InProgress and
//! JobComplete, and read `successfulResults`, `failedResults` and `unprocessedrecords`. Rows
//! are written one by one through the same validation as the REST API, each failing on its own;
//! a header naming a field the object does not have fails the whole job with every row
//! unprocessed, as Salesforce does. An empty value leaves a field as it is; `#N/A` clears it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::catalog::FieldType;
use super::render::CsvFormat;
use super::server::{
    ApiError, State, admit, bytes_response, json_body, json_response, poisoned, version,
    with_limit_info,
};
use sftime as time;

mod rows;
use rows::{csv_line, parse_csv, process};

type Result<T> = std::result::Result<T, ApiError>;

/// The largest upload: 150 MB once base64-encoded, as Salesforce counts it.
pub const MAX_UPLOAD: usize = 150_000_000 / 4 * 3;

/// Jobs kept at most, the oldest dropped first.
const MAX_JOBS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Insert,
    Update,
    Upsert,
    Delete,
}

impl Operation {
    fn named(name: &str) -> Option<Operation> {
        Some(match name {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

/// What processing a job's rows came to.
#[derive(Default)]
struct Outcome {
    header: Vec<String>,
    /// (Id, created, row)
    succeeded: Vec<(String, bool, Vec<String>)>,
    /// (Id or empty, `CODE:message:fields --`, row)
    failed: Vec<(String, String, Vec<String>)>,
    unprocessed: Vec<Vec<String>>,
    /// Why the whole job failed, when it did.
    error: Option<String>,
}

pub struct IngestJob {
    id: String,
    operation: Operation,
    object: usize,
    external_id: Option<String>,
    version: String,
    format: CsvFormat,
    delimiter_name: String,
    line_ending: &'static str,
    created_at: i64,
    data: Option<Vec<u8>>,
    /// When the upload was declared complete (processing time runs from here).
    closed: Option<Instant>,
    aborted: bool,
    outcome: Option<Outcome>,
}

#[derive(Default)]
pub struct IngestJobs {
    jobs: HashMap<String, IngestJob>,
    order: std::collections::VecDeque<String>,
    counter: u64,
}

impl IngestJob {
    fn state(&self, delay_ms: u64) -> &'static str {
        if self.aborted {
            return "Aborted";
        }
        let Some(closed) = self.closed else {
            return "Open";
        };
        let elapsed = closed.elapsed().as_millis() as u64;
        if elapsed < delay_ms / 2 {
            "UploadComplete"
        } else if elapsed < delay_ms {
            "InProgress"
        } else if self.outcome.as_ref().is_some_and(|o| o.error.is_some()) {
            "Failed"
        } else {
            "JobComplete"
        }
    }

    fn info(&self, state: &State, detail: bool) -> Json {
        let (object, user) = state
            .org
            .read()
            .map(|o| {
                (
                    o.catalog.objects[self.object].name.clone(),
                    o.user_id.clone(),
                )
            })
            .unwrap_or_default();
        let job_state = self.state(state.bulk_delay_ms);
        let mut info = json!({
            "id": self.id,
            "operation": self.operation.name(),
            "object": object,
            "createdById": user,
            "createdDate": time::format_datetime(self.created_at),
            "systemModstamp": time::format_datetime(self.created_at),
            "state": job_state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.version.parse::<f64>().unwrap_or(0.0),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter_name,
        });
        let Some(map) = info.as_object_mut() else {
            return info;
        };
        if let Some(external) = &self.external_id {
            map.insert("externalIdFieldName".into(), json!(external));
        }
        if job_state == "Open" {
            map.insert(
                "contentUrl".into(),
                json!(format!(
                    "services/data/v{}/jobs/ingest/{}/batches",
                    self.version, self.id
                )),
            );
        }
        if detail {
            let finished = matches!(job_state, "JobComplete" | "Failed");
            let outcome = self.outcome.as_ref().filter(|_| finished);
            let processed = outcome.map_or(0, |o| o.succeeded.len() + o.failed.len());
            let failed = outcome.map_or(0, |o| o.failed.len());
            map.insert("jobType".into(), json!("V2Ingest"));
            map.insert("numberRecordsProcessed".into(), json!(processed));
            map.insert("numberRecordsFailed".into(), json!(failed));
            map.insert("retries".into(), json!(0));
            let spent = if finished { state.bulk_delay_ms } else { 0 };
            map.insert("totalProcessingTime".into(), json!(spent));
            map.insert("apiActiveProcessingTime".into(), json!(spent));
            map.insert("apexProcessingTime".into(), json!(0));
            if let Some(error) = outcome.and_then(|o| o.error.clone()) {
                map.insert("errorMessage".into(), json!(error));
            }
        }
        info
    }
}

fn invalid_job(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALIDJOB", message)
}

fn invalid_state(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIngest {
    object: Option<String>,
    operation: Option<String>,
    external_id_field_name: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

pub async fn create(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let request: CreateIngest = serde_json::from_value(json_body(&headers, &body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", format!("{e}")))?;
    let operation_name = request.operation.unwrap_or_default();
    let operation = match operation_name.as_str() {
        "hardDelete" => {
            return Err(invalid_job(
                "hardDelete needs the Bulk API Hard Delete permission, which this user does not have",
            ));
        }
        name => Operation::named(name)
            .ok_or_else(|| invalid_job(format!("Invalid operation: {operation_name}")))?,
    };
    if request.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(invalid_job("Only CSV is supported for ingest jobs"));
    }
    let delimiter_name = request
        .column_delimiter
        .unwrap_or_else(|| "COMMA".to_string());
    let delimiter = CsvFormat::delimiter_from(&delimiter_name)
        .ok_or_else(|| invalid_job(format!("Invalid column delimiter: {delimiter_name}")))?;
    let line_ending = match request.line_ending.as_deref().unwrap_or("LF") {
        "LF" => "LF",
        "CRLF" => "CRLF",
        other => return Err(invalid_job(format!("Invalid line ending: {other}"))),
    };
    let org = state.org.read().map_err(|_| poisoned())?;
    let object_name = request.object.unwrap_or_default();
    let object = org
        .object_index(&object_name)
        .filter(|&i| org.catalog.objects[i].createable)
        .ok_or_else(|| invalid_job(format!("sObject type '{object_name}' is not supported")))?;
    let external_id = match operation {
        Operation::Upsert => {
            let name = request
                .external_id_field_name
                .ok_or_else(|| invalid_job("externalIdFieldName is required for upsert jobs"))?;
            let field = org.catalog.objects[object]
                .field(&name)
                .filter(|(_, f)| f.external_id || f.field_type == FieldType::Id)
                .ok_or_else(|| {
                    invalid_job(format!(
                        "The field {name} is not an external ID field of {object_name}"
                    ))
                })?;
            Some(field.1.name.clone())
        }
        _ => None,
    };
    let now = org.clock.now();
    drop(org);
    let mut jobs = state.ingest.lock().map_err(|_| poisoned())?;
    jobs.counter += 1;
    // Query and ingest jobs share the 750 prefix but count apart: ingest Ids start a million
    // further on, so the two never name the same job.
    let id = super::ids::record_id("750", 1_000_000 + jobs.counter);
    let job = IngestJob {
        id: id.clone(),
        operation,
        object,
        external_id,
        version: v,
        format: CsvFormat {
            delimiter,
            crlf: line_ending == "CRLF",
        },
        delimiter_name,
        line_ending,
        created_at: now,
        data: None,
        closed: None,
        aborted: false,
        outcome: None,
    };
    let body = job.info(&state, false);
    jobs.jobs.insert(id.clone(), job);
    jobs.order.push_back(id);
    while jobs.order.len() > MAX_JOBS {
        if let Some(oldest) = jobs.order.pop_front() {
            jobs.jobs.remove(&oldest);
        }
    }
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

pub async fn upload(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let content_type = headers
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALIDCONTENTTYPE",
            format!("Unsupported content type: {content_type}; job data is text/csv"),
        ));
    }
    if body.len() > MAX_UPLOAD {
        return Err(invalid_job(
            "The upload is over 150 MB once base64-encoded: split it across jobs",
        ));
    }
    let mut jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get_mut(&job).ok_or_else(ApiError::not_found)?;
    if job.state(state.bulk_delay_ms) != "Open" {
        return Err(invalid_state(format!(
            "Job {} is not open for uploads",
            job.id
        )));
    }
    if job.data.is_some() {
        return Err(invalid_state(format!(
            "Found multiple contents for job: <{}>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
            job.id
        )));
    }
    job.data = Some(body.to_vec());
    let mut response = json_response(StatusCode::CREATED, String::new());
    response.headers_mut().remove("Content-Type");
    Ok(with_limit_info(response, &info))
}

#[derive(Deserialize)]
pub struct StateChange {
    state: Option<String>,
}

pub async fn change(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let change: StateChange = serde_json::from_value(json_body(&headers, &body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", format!("{e}")))?;
    let mut jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get_mut(&job).ok_or_else(ApiError::not_found)?;
    let current = job.state(state.bulk_delay_ms);
    match change.state.as_deref() {
        Some("UploadComplete") => {
            if current != "Open" {
                return Err(invalid_state(format!(
                    "Job {} is {current}: only an open job can be closed",
                    job.id
                )));
            }
            let data = job.data.take().unwrap_or_default();
            let mut org = state.org.write().map_err(|_| poisoned())?;
            job.outcome = Some(process(&mut org, job, &data));
            job.closed = Some(Instant::now());
        }
        Some("Aborted") => {
            if matches!(current, "JobComplete" | "Failed" | "Aborted") {
                return Err(invalid_state(format!(
                    "Job {} is {current} and cannot be aborted",
                    job.id
                )));
            }
            job.aborted = true;
        }
        other => {
            return Err(invalid_state(format!(
                "Invalid state change: {}",
                other.unwrap_or("(none)")
            )));
        }
    }
    let mut body = job.info(&state, false);
    if !job.aborted
        && let Some(map) = body.as_object_mut()
    {
        // The answer to closing a job is the job closed, however fast it then runs.
        map.insert("state".into(), json!("UploadComplete"));
    }
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
    let jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get(&job).ok_or_else(ApiError::not_found)?;
    Ok(with_limit_info(
        json_response(StatusCode::OK, job.info(&state, true).to_string()),
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
    let jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let records: Vec<Json> = jobs
        .order
        .iter()
        .filter_map(|id| jobs.jobs.get(id))
        .map(|job| job.info(&state, false))
        .collect();
    let body = json!({"done": true, "records": records, "nextRecordsUrl": null});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
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
    let mut jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let current = jobs
        .jobs
        .get(&job)
        .ok_or_else(ApiError::not_found)?
        .state(state.bulk_delay_ms);
    // As documented: only a job that is closed, finished or aborted can be deleted.
    if matches!(current, "Open" | "InProgress") {
        return Err(invalid_state(format!(
            "Job {job} is {current}: close or abort it, or wait for it to finish, before deleting it"
        )));
    }
    jobs.jobs.remove(&job);
    jobs.order.retain(|id| id != &job);
    Ok(with_limit_info(
        bytes_response(StatusCode::NO_CONTENT, "text/plain", Vec::new()),
        &limit,
    ))
}

/// A result set of processed rows: `sf__Id`, a column of its own (`own`), then the row as it was
/// uploaded.
fn write_results<'r>(
    out: &mut Vec<u8>,
    format: CsvFormat,
    header: &[String],
    own: &str,
    rows: impl Iterator<Item = (&'r str, String, &'r [String])>,
) {
    let line = |id: &str, value: &str, rest: &[String]| {
        let mut line = vec![id.to_string(), value.to_string()];
        line.extend(rest.iter().cloned());
        line
    };
    csv_line(out, &line("sf__Id", own, header), format);
    for (id, value, row) in rows {
        csv_line(out, &line(id, &value, row), format);
    }
}

/// Which of a job's result sets to read.
#[derive(Debug, Clone, Copy)]
pub enum ResultSet {
    Successful,
    Failed,
    Unprocessed,
}

pub async fn successful(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    results(state, path, headers, ResultSet::Successful)
}

pub async fn failed(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    results(state, path, headers, ResultSet::Failed)
}

pub async fn unprocessed(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    results(state, path, headers, ResultSet::Unprocessed)
}

fn results(
    Shared(state): Shared<Arc<State>>,
    Path((v, job)): Path<(String, String)>,
    headers: HeaderMap,
    set: ResultSet,
) -> Result<Response> {
    version(&v)?;
    let limit = admit(&state, &headers)?;
    let jobs = state.ingest.lock().map_err(|_| poisoned())?;
    let job = jobs.jobs.get(&job).ok_or_else(ApiError::not_found)?;
    let current = job.state(state.bulk_delay_ms);
    let empty = Outcome::default();
    let outcome = match (current, &job.outcome) {
        ("JobComplete" | "Failed", Some(outcome)) => outcome,
        // Nothing has been processed yet: every uploaded row is unprocessed.
        ("Open" | "Aborted", _) => &empty,
        _ => {
            return Err(invalid_state(format!(
                "Job {} is {current}: results are ready once it is JobComplete or Failed",
                job.id
            )));
        }
    };
    let format = job.format;
    let mut out = Vec::new();
    match set {
        ResultSet::Successful => write_results(
            &mut out,
            format,
            &outcome.header,
            "sf__Created",
            outcome
                .succeeded
                .iter()
                .map(|(id, created, row)| (id.as_str(), created.to_string(), row.as_slice())),
        ),
        ResultSet::Failed => write_results(
            &mut out,
            format,
            &outcome.header,
            "sf__Error",
            outcome
                .failed
                .iter()
                .map(|(id, error, row)| (id.as_str(), error.clone(), row.as_slice())),
        ),
        ResultSet::Unprocessed => {
            let (header, rows) = match (&job.data, current) {
                (Some(data), "Open" | "Aborted") => parse_csv(data, format.delimiter)
                    .map(|mut rows| {
                        let header = if rows.is_empty() {
                            Vec::new()
                        } else {
                            rows.remove(0)
                        };
                        (header, rows)
                    })
                    .unwrap_or_default(),
                _ => (outcome.header.clone(), outcome.unprocessed.clone()),
            };
            csv_line(&mut out, &header, format);
            for row in &rows {
                csv_line(&mut out, row, format);
            }
        }
    }
    Ok(with_limit_info(
        bytes_response(StatusCode::OK, "text/csv", out),
        &limit,
    ))
}
