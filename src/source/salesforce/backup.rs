//! A backup run: discover, then for each object a full pass (first backup, changed fields, no
//! SystemModstamp, the periodic full pass, or a failed count check) or an incremental one (the
//! SystemModstamp window since the object was last current, through queryAll so deletions
//! arrive as tombstones), written into the store. Objects are fetched a few at a time. A full
//! pass writes the object's new base while its rows arrive ([`BaseWriter`]: straight into
//! segments while they come in Id order, as they usually do); an incremental's rows are compared
//! with the parent and written as a delta while they arrive ([`DeltaWriter`]). Bulk
//! CSV is parsed on a blocking thread while the next bytes arrive. When the API budget runs out the
//! snapshot is kept as partial: finished objects are new, the others keep the parent's data and
//! the next run resumes them.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::client::{SalesforceClient, SourceError};
use super::discovery::{Coverage, Field, ObjectPlan, discover};
use super::rest_page::PageError;
use crate::snapshot::base::BaseWriter;
use crate::snapshot::delta::DeltaWriter;
use crate::snapshot::recent::RecentVersions;
use crate::snapshot::sorter::{DEFAULT_MEMORY, Row};
use crate::snapshot::{Outcome, SnapshotManifest, SnapshotWriter, Source, Window};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub task: String,
    pub api_version: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// REST pages of this many records (200..2000).
    pub batch_size: u32,
    /// Objects with more records than this go through Bulk API 2.0 ([`BULK_THRESHOLD`]).
    pub bulk_threshold: u64,
    /// Fetch an object in full when its last full fetch is this many days old (0: only when
    /// needed).
    pub full_every_days: u32,
    /// Compare record counts with the org after each incremental.
    pub count_check: bool,
    /// Bytes of fetched rows one object holds in memory before sorting spills to disk.
    pub sort_memory: usize,
    /// Objects fetched at once.
    pub concurrency: usize,
    /// The kind of org the task is for (`source.environment`): true for a sandbox. Checked
    /// against Organization.IsSandbox before anything is written; None checks nothing.
    pub sandbox: Option<bool>,
    /// Objects to fetch in full whatever the parent holds, with why (the parent's data of
    /// them is damaged, say).
    pub full_because: std::collections::BTreeMap<String, String>,
}

impl BackupOptions {
    pub fn new(task: &str, api_version: &str) -> BackupOptions {
        BackupOptions {
            task: task.to_string(),
            api_version: api_version.to_string(),
            include: vec!["*".to_string()],
            exclude: Vec::new(),
            batch_size: 2000,
            bulk_threshold: BULK_THRESHOLD,
            full_every_days: 7,
            count_check: true,
            sort_memory: DEFAULT_MEMORY,
            concurrency: 4,
            sandbox: None,
            full_because: std::collections::BTreeMap::new(),
        }
    }
}

/// What happened to one object in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRun {
    pub object: String,
    /// Fetched in full (else incrementally), and why.
    pub full: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows the org returned (records and tombstones).
    pub fetched: u64,
    /// For incrementals: records created, changed and deleted in the window.
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    /// Live records after the run, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub snapshot: String,
    pub manifest: SnapshotManifest,
    pub coverage: Coverage,
    /// Objects backed up in full this run, and incrementally.
    pub full: Vec<String>,
    pub incremental: Vec<String>,
    /// Per object, in name order.
    pub objects: Vec<ObjectRun>,
    /// The normalised schema document of every object backed up.
    pub schemas: BTreeMap<String, Value>,
    /// API calls this run made.
    pub api_calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the task says `environment: {}`, but its credentials reach {}; nothing was backed up",
        if *expected_sandbox { "sandbox" } else { "production" },
        if *expected_sandbox { "a production org (Organization.IsSandbox is false)" } else { "a sandbox (Organization.IsSandbox is true)" }
    )]
    WrongEnvironment { expected_sandbox: bool },
}

impl BackupError {
    pub fn guidance(&self) -> String {
        match self {
            BackupError::Source(e) => e.guidance(),
            BackupError::Store(e) => e.guidance(),
            BackupError::WrongEnvironment { .. } => "point the credentials (and loginUrl) at the org the task is for; an org of the other kind needs a task of its own".into(),
        }
    }
}

/// A record as the store keeps it: the chosen fields in describe order, no `attributes`,
/// values in one canonical form (datetimes in UTC with `Z`, numbers as numbers).
pub fn canonical(record: &Value, fields: &[super::discovery::Field]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64 * fields.len());
    bytes.push(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        let value = match record.get(&field.name) {
            None | Some(Value::Null) => CanonicalInput::Null,
            Some(Value::String(text)) => CanonicalInput::Text(text),
            Some(value) => CanonicalInput::Value(value),
        };
        write_canonical_value(&mut bytes, field, value);
    }
    bytes.push(b'}');
    bytes
}

/// A field's value, as `write_canonical_value` takes it.
pub enum CanonicalInput<'a> {
    Null,
    Text(&'a str),
    Value(&'a Value),
}

/// One field of a record's canonical bytes: `"name":value`, datetimes in UTC with `Z`.
/// Written straight into the record's bytes: per record, allocations would cost more than the
/// writing.
pub(super) fn write_canonical_value(bytes: &mut Vec<u8>, field: &Field, value: CanonicalInput) {
    write_string(bytes, &field.name);
    bytes.push(b':');
    match (field.kind.as_str(), value) {
        (_, CanonicalInput::Null) => bytes.extend_from_slice(b"null"),
        ("datetime", CanonicalInput::Text(text)) => write_datetime(bytes, text),
        (_, CanonicalInput::Text(text)) => write_string(bytes, text),
        (_, CanonicalInput::Value(value)) => {
            let _ = serde_json::to_writer(&mut *bytes, value);
        }
    }
}

/// Whether a record was created after the window's start: then it cannot be in the parent.
pub(super) fn created_after(created: Option<&str>, since_ms: Option<i64>) -> bool {
    match (since_ms, created) {
        (Some(since), Some(created)) => {
            crate::time::parse_datetime(created).is_some_and(|created| created > since)
        }
        _ => false,
    }
}

/// A record's SystemModstamp in ms (`i64::MIN` when it has none).
pub(super) fn stamp_ms(stamp: Option<&str>) -> i64 {
    stamp
        .and_then(crate::time::parse_datetime)
        .unwrap_or(i64::MIN)
}

/// Whether a record's last modification is at or before the window's start: it came only
/// because consecutive windows overlap.
pub(super) fn revisited(stamp: i64, since_ms: Option<i64>) -> bool {
    since_ms.is_some_and(|since| stamp != i64::MIN && stamp <= since)
}

/// Objects with more records than this go through Bulk API 2.0: a few calls for any size,
/// where REST needs one per 2,000 records.
pub const BULK_THRESHOLD: u64 = 10_000;
/// Rows per Bulk results page.
const BULK_PAGE: u32 = 250_000;
/// Attempts at a Bulk results page whose body breaks off.
const PAGE_ATTEMPTS: u32 = 3;

/// Where an object's fetched rows go.
enum Fetched {
    /// A full pass: its new base, written as rows arrive.
    Full(Box<FullFetch>),
    /// An incremental: its delta, written as rows arrive.
    Changes(Box<DeltaWriter>),
}

impl Fetched {
    fn push(&mut self, row: Row) -> Result<(), StoreError> {
        match self {
            Fetched::Full(full) => full.push(row),
            Fetched::Changes(delta) => delta.push(row),
        }
    }
}

/// A full pass in progress: the new base, and the versions the next incremental will fetch
/// again.
struct FullFetch {
    base: BaseWriter,
    recent: RecentVersions,
    fetched: u64,
}

impl FullFetch {
    fn new(store: &Store, plan: &ObjectPlan, options: &BackupOptions, recent_from: i64) -> Self {
        FullFetch {
            base: BaseWriter::new(store, &plan.name, options.sort_memory),
            recent: RecentVersions::since(recent_from),
            fetched: 0,
        }
    }

    fn push(&mut self, row: Row) -> Result<(), StoreError> {
        self.fetched += 1;
        self.recent.note(&row);
        self.base.push(row)
    }
}

/// Every record a SOQL query returns (through queryAll, so deleted records come too), into
/// `into`. The query asks for no order: the store's order (ascending bytes of Id) is what
/// Salesforce returns in practice, and whatever arrives otherwise is sorted here, independent
/// of the org's collation.
async fn fetch(
    client: &SalesforceClient,
    options: &BackupOptions,
    plan: &ObjectPlan,
    soql: &str,
    since_ms: Option<i64>,
    mut into: Fetched,
) -> Result<Fetched, BackupError> {
    // The first REST page says how many records match: past the threshold, Bulk takes over.
    // The REST query is capped one past the threshold, so for a large object the org stops
    // there instead of preparing a cursor over every record only to have it abandoned.
    let batch_header = format!("batchSize={}", options.batch_size);
    let headers = [("Sforce-Query-Options", batch_header.as_str())];
    let capped = match options.bulk_threshold.checked_add(1) {
        Some(cap) => format!("{soql} LIMIT {cap}"),
        None => soql.to_string(),
    };
    let path = format!(
        "/services/data/v{}/queryAll?q={}",
        options.api_version,
        url_encode(&capped)
    );
    let mut body = rest_page(client, &path, &headers).await?;
    let mut first = true;
    loop {
        let head: PageHead = serde_json::from_slice(&body)
            .map_err(|e| SourceError::Network(format!("unreadable query page: {e}")))?;
        if first && head.total_size > options.bulk_threshold {
            match bulk_job(client, &options.api_version, soql).await? {
                Some(id) => {
                    return bulk_results(client, &options.api_version, &id, plan, since_ms, into)
                        .await;
                }
                // Bulk failed for this query: the REST API reads the same records, page by
                // page (more calls, the same result).
                None => {
                    let path = format!(
                        "/services/data/v{}/queryAll?q={}",
                        options.api_version,
                        url_encode(soql)
                    );
                    body = rest_page(client, &path, &headers).await?;
                    first = false;
                    continue;
                }
            }
        }
        first = false;
        let next = head.next_records_url.filter(|_| !head.done);
        // This page's records are read on a blocking thread while the next page is on its
        // way: the org prepares a page while the client reads the last.
        let fields = plan.fields.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut into = into;
            let result = push_records(&body, &fields, since_ms, &mut into);
            (into, result)
        });
        let following = async {
            match &next {
                Some(path) => Some(rest_page(client, path, &headers).await),
                None => None,
            }
        };
        let (read, following) = tokio::join!(read, following);
        let (returned, result) = read
            .map_err(|e| StoreError::Compression(format!("the query page reader stopped: {e}")))?;
        into = returned;
        result?;
        match following {
            Some(page) => body = page?,
            None => return Ok(into),
        }
    }
}

/// What a REST query page says besides its records (skipped unread here).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageHead {
    #[serde(default)]
    total_size: u64,
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
}

/// One REST query page's bytes; a body that breaks off is asked for again (a query locator's
/// pages can be read more than once).
async fn rest_page(
    client: &SalesforceClient,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<bytes::Bytes, BackupError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.request(Method::GET, path, None, headers).await?;
        match response.bytes().await {
            Ok(bytes) => return Ok(bytes),
            Err(_) if attempt < PAGE_ATTEMPTS => {}
            Err(e) => {
                return Err(SourceError::Network(format!("a query page broke off: {e}")).into());
            }
        }
    }
}

/// The records of a REST query page, as rows.
fn push_records(
    body: &[u8],
    fields: &[Field],
    since_ms: Option<i64>,
    into: &mut Fetched,
) -> Result<(), BackupError> {
    match super::rest_page::read_records(body, fields, since_ms, &mut |row| into.push(row)) {
        Ok(()) => Ok(()),
        Err(PageError::Store(e)) => Err(e.into()),
        Err(PageError::Unreadable(e)) => {
            Err(SourceError::Network(format!("unreadable query page: {e}")).into())
        }
    }
}

/// Bulk query jobs tried for one object before its records are read over REST instead.
/// Salesforce retries a job's batches itself (up to 15 times) before it fails the job, so a
/// second failure says Bulk is not working for this query today.
const BULK_JOB_ATTEMPTS: u32 = 2;

/// A Bulk API 2.0 queryAll job run to completion: its id, or None when every attempt ended
/// Failed or Aborted (the caller reads the records over REST then).
async fn bulk_job(
    client: &SalesforceClient,
    version: &str,
    soql: &str,
) -> Result<Option<String>, BackupError> {
    let jobs = format!("/services/data/v{version}/jobs/query");
    let request = serde_json::json!({"operation": "queryAll", "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"});
    'attempts: for _ in 0..BULK_JOB_ATTEMPTS {
        let job = client.call(Method::POST, &jobs, Some(&request)).await?;
        let id = job["id"]
            .as_str()
            .ok_or_else(|| SourceError::Network("the Bulk job has no id".into()))?
            .to_string();
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            let info = client
                .call(Method::GET, &format!("{jobs}/{id}"), None)
                .await?;
            match info["state"].as_str().unwrap_or_default() {
                "JobComplete" => return Ok(Some(id)),
                "Failed" | "Aborted" => continue 'attempts,
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }
    Ok(None)
}

/// Every CSV page of a completed Bulk query job, streamed into `into`.
async fn bulk_results(
    client: &SalesforceClient,
    version: &str,
    id: &str,
    plan: &ObjectPlan,
    since_ms: Option<i64>,
    mut into: Fetched,
) -> Result<Fetched, BackupError> {
    let jobs = format!("/services/data/v{version}/jobs/query");
    let mut locator: Option<String> = None;
    loop {
        let mut path = format!("{jobs}/{id}/results?maxRecords={BULK_PAGE}");
        if let Some(l) = &locator {
            path.push_str(&format!("&locator={l}"));
        }
        let mut attempt = 0;
        let next = loop {
            attempt += 1;
            let (returned, result) = bulk_page(client, &path, plan, since_ms, into).await?;
            into = returned;
            match result {
                Ok(next) => break next,
                // Rows already taken from a broken page come again and replace themselves.
                Err(BackupError::Source(SourceError::Network(_))) if attempt < PAGE_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        };
        match next.as_deref() {
            None | Some("null") | Some("") => return Ok(into),
            Some(l) => locator = Some(l.to_string()),
        }
    }
}

/// One Bulk results page, parsed on a blocking thread as its bytes arrive. Returns where the
/// rows went (so a page that broke off can be fetched again into it) and the next page's
/// locator.
async fn bulk_page(
    client: &SalesforceClient,
    path: &str,
    plan: &ObjectPlan,
    since_ms: Option<i64>,
    into: Fetched,
) -> Result<(Fetched, Result<Option<String>, BackupError>), BackupError> {
    let mut response = match client
        .request(Method::GET, path, None, &[("Accept", "text/csv")])
        .await
    {
        Ok(response) => response,
        Err(e) => return Ok((into, Err(e.into()))),
    };
    let next = response
        .headers()
        .get("Sforce-Locator")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let fields = plan.fields.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let mut into = into;
        let result = super::bulk_rows::read_rows(
            ChannelReader {
                receiver,
                current: bytes::Bytes::new(),
            },
            &fields,
            since_ms,
            &mut |row| into.push(row),
        );
        (into, result)
    });
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if sender.send(Ok(chunk)).await.is_err() {
                    break; // the parser stopped; its error says why
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = sender
                    .send(Err(format!("a Bulk results page broke off: {e}")))
                    .await;
                break;
            }
        }
    }
    drop(sender);
    match parser.await {
        Ok((into, result)) => Ok((into, result.map(|()| next))),
        Err(e) => Err(StoreError::Compression(format!("the CSV parser stopped: {e}")).into()),
    }
}

/// Bytes arriving from the network, readable as a stream; a broken connection is an error,
/// never an early end, so a half-received row is never taken for a whole one.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(message)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        message,
                    ));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// A datetime as the store keeps it: in UTC with `Z` (`+0000` and other offsets normalised);
/// text that is no datetime is kept as text.
pub(super) fn write_datetime(out: &mut Vec<u8>, text: &str) {
    if is_canonical_datetime(text) {
        return write_string(out, text);
    }
    match crate::time::parse_datetime(text) {
        Some(ms) => {
            out.push(b'"');
            crate::time::write_datetime_z(out, ms);
            out.push(b'"');
        }
        None => write_string(out, text),
    }
}

/// `2013-05-20T20:49:32.000Z`: already what the store keeps.
pub(super) fn is_canonical_datetime(cell: &str) -> bool {
    is_canonical_datetime_bytes(cell.as_bytes())
}

/// [`is_canonical_datetime`] of bytes.
pub(super) fn is_canonical_datetime_bytes(b: &[u8]) -> bool {
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// A JSON string, exactly as serde_json writes it; text with nothing to escape (nearly all of
/// it) is copied straight through.
pub(super) fn write_string(out: &mut Vec<u8>, text: &str) {
    if !needs_escape(text.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Whether JSON needs escapes for this text. Whole chunks are tested without stopping early,
/// which the compiler turns into vector instructions.
fn needs_escape(text: &[u8]) -> bool {
    text.chunks(32).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn select(plan: &ObjectPlan) -> String {
    let mut names: Vec<&str> = plan.fields.iter().map(|f| f.name.as_str()).collect();
    if !names.contains(&"IsDeleted") && plan.incremental {
        names.push("IsDeleted");
    }
    format!("SELECT {} FROM {}", names.join(", "), plan.name)
}

/// How one object is fetched this run.
struct Job<'a> {
    plan: &'a ObjectPlan,
    /// Why in full; None for an incremental.
    full_reason: Option<String>,
    soql: String,
    /// The incremental window's start.
    since_ms: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;
/// How far each incremental window reaches back into the previous one.
pub const WINDOW_OVERLAP_MS: i64 = 5 * 60_000;

/// A full pass reads every live record, with no upper bound on SystemModstamp: a record
/// edited after the window's end (while the backup runs) is still live, and leaving it out
/// would record it as deleted. It comes in its newer version; the next incremental's overlap
/// fetches it again anyway.
///
/// The invariant this module keeps: a record leaves a snapshot only on evidence of its
/// deletion (IsDeleted in queryAll's window, or absence from a full pass of live records),
/// never because it is missing from a bounded window.
fn full_soql(plan: &ObjectPlan) -> String {
    if plan.incremental {
        format!("{} WHERE IsDeleted = false", select(plan))
    } else {
        select(plan)
    }
}

fn plan_job<'a>(
    plan: &'a ObjectPlan,
    previous: Option<&crate::snapshot::ObjectEntry>,
    snapshot_until: Option<&str>,
    now: &str,
    now_ms: i64,
    options: &BackupOptions,
) -> Job<'a> {
    let field_names: Vec<&str> = plan.fields.iter().map(|f| f.name.as_str()).collect();
    let since = previous.and_then(|p| p.until.as_deref().or(snapshot_until));
    let since_ms = since.and_then(crate::time::parse_datetime);
    let full_age_days = previous
        .and_then(|p| p.full_at.as_deref())
        .and_then(crate::time::parse_datetime)
        .map(|at| (now_ms - at) / DAY_MS);
    let full_reason = if let Some(reason) = options.full_because.get(&plan.name) {
        Some(reason.clone())
    } else if !plan.incremental {
        Some("the object has no SystemModstamp".to_string())
    } else if previous.is_none() || since_ms.is_none() {
        Some("first backup of the object".to_string())
    } else if previous.is_some_and(|p| p.fields != field_names) {
        Some("its fields changed".to_string())
    } else if since_ms.is_some_and(|since| since - WINDOW_OVERLAP_MS > now_ms) {
        // The last window ended beyond the org's present by more than the overlap (it was
        // bounded by a clock ahead of the org's, before windows followed the org's clock): a
        // window from there would skip what changed in between.
        Some("the last window ended in the org's future (clocks disagreed)".to_string())
    } else if options.full_every_days > 0 {
        match full_age_days {
            None => Some("no full fetch on record".to_string()),
            Some(days) if days >= i64::from(options.full_every_days) => Some(format!(
                "the periodic full fetch is due (last one {days} days ago)"
            )),
            Some(_) => None,
        }
    } else {
        None
    };
    match (full_reason, since) {
        (None, Some(from)) => {
            // Windows overlap: a change committed late with an earlier SystemModstamp, or in
            // the very millisecond a window ended, is still seen.
            let start = since_ms
                .map(|ms| crate::time::format_datetime_z(ms - WINDOW_OVERLAP_MS))
                .unwrap_or_else(|| from.to_string());
            Job {
                plan,
                full_reason: None,
                soql: format!(
                    "{} WHERE SystemModstamp > {start} AND SystemModstamp <= {now}",
                    select(plan)
                ),
                since_ms,
            }
        }
        (reason, _) => Job {
            plan,
            full_reason: Some(reason.unwrap_or_else(|| "first backup of the object".into())),
            soql: full_soql(plan),
            since_ms: None,
        },
    }
}

/// Makes a full pass's base the object's, and returns the versions the next incremental will
/// fetch again.
fn write_full(
    writer: &mut SnapshotWriter,
    plan: &ObjectPlan,
    full: Box<FullFetch>,
    reason: &str,
) -> Result<(ObjectRun, RecentVersions), BackupError> {
    let base = full.base.finish()?;
    writer.set_base(&plan.name, base.segments, base.records);
    let run = ObjectRun {
        object: plan.name.clone(),
        full: true,
        reason: Some(reason.to_string()),
        fetched: full.fetched,
        added: 0,
        modified: 0,
        deleted: 0,
        records: Some(base.records),
    };
    Ok((run, full.recent))
}

/// Adds an incremental's delta to the object, and returns the versions the next incremental
/// will fetch again.
fn write_incremental(
    writer: &mut SnapshotWriter,
    plan: &ObjectPlan,
    delta: Box<DeltaWriter>,
) -> Result<(ObjectRun, RecentVersions), BackupError> {
    let delta = delta.finish()?;
    let counts = delta.counts;
    writer.add_delta(&plan.name, delta.segments, counts.upserts(), counts.deleted);
    writer.count_changes(&plan.name, counts.added, counts.removed);
    let run = ObjectRun {
        object: plan.name.clone(),
        full: false,
        reason: None,
        fetched: counts.upserts() + counts.deleted,
        added: counts.added,
        modified: counts.modified,
        deleted: counts.deleted,
        records: writer.records(&plan.name),
    };
    Ok((run, delta.recent))
}

/// The records the org had live at the window's end `now` (`None` when the answer has none):
/// exactly what the snapshot must hold, however the org moves while the backup runs. Created
/// by then (a record edited since existed all along), and live then: still live, or deleted
/// since (a deletion stamps the record, and queryAll still sees it). A record purged from the
/// Recycle Bin is in neither, which is what the check is for.
async fn org_count(
    client: &SalesforceClient,
    options: &BackupOptions,
    plan: &ObjectPlan,
    now: &str,
) -> Result<Option<u64>, SourceError> {
    let (soql, endpoint) = if plan.fields.iter().any(|f| f.name == "CreatedDate") {
        (
            format!(
                // The same set as `CreatedDate <= end AND (IsDeleted = false OR
                // SystemModstamp > end)`, written so that only the few records stamped after
                // the end need their CreatedDate read.
                "SELECT COUNT() FROM {} WHERE (SystemModstamp <= {now} AND IsDeleted = false) OR (SystemModstamp > {now} AND CreatedDate <= {now})",
                plan.name
            ),
            "queryAll",
        )
    } else {
        (
            format!(
                "SELECT COUNT() FROM {} WHERE SystemModstamp <= {now}",
                plan.name
            ),
            "query",
        )
    };
    let path = format!(
        "/services/data/v{}/{endpoint}?q={}",
        options.api_version,
        url_encode(&soql)
    );
    let answer = client.call(Method::GET, &path, None).await?;
    Ok(answer["totalSize"].as_u64())
}

/// Why the org's count disagrees with the store's, if it does.
fn count_mismatch(org: Option<u64>, stored: Option<u64>) -> Option<String> {
    match (org, stored) {
        (Some(org), Some(stored)) if org == stored => None,
        (Some(org), Some(stored)) => Some(format!(
            "count check: the org has {org} records, the backup {stored}"
        )),
        (_, None) => Some("count check: the backup's record count is unknown".into()),
        (None, _) => None,
    }
}

fn budget_reason(error: &BackupError, object: &str) -> Option<String> {
    match error {
        BackupError::Source(SourceError::BudgetExhausted {
            used,
            max,
            limit_percent,
        }) => Some(format!(
            "the API budget ran out at {used} of {max} daily calls ({limit_percent}% allowed) before {object} was backed up"
        )),
        BackupError::Source(SourceError::DailyLimitReached { message }) => Some(format!(
            "the org's daily API allocation ran out before {object} was backed up (Salesforce: {message})"
        )),
        _ => None,
    }
}

pub async fn backup(
    client: &SalesforceClient,
    store: &Store,
    options: &BackupOptions,
    parent: Option<(&str, &SnapshotManifest)>,
    now: &str,
) -> Result<BackupOutcome, BackupError> {
    let now_ms = crate::time::parse_datetime(now).ok_or_else(|| {
        SourceError::Config(format!(
            "the backup time {now:?} is not an ISO 8601 datetime"
        ))
    })?;
    let calls_before = client.budget().calls;
    client.refresh_budget().await?;
    let (plans, coverage) = discover(
        client,
        &options.api_version,
        &options.include,
        &options.exclude,
    )
    .await?;
    let org = client
        .call(
            Method::GET,
            &format!(
                "/services/data/v{}/query?q={}",
                options.api_version,
                url_encode("SELECT Id, IsSandbox FROM Organization")
            ),
            None,
        )
        .await?;
    let org_id = org["records"][0]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // `source.environment` is fixed for the task's life, and a My Domain login URL reaches
    // either kind of org: checked before anything is written.
    if let (Some(expected), Some(is_sandbox)) =
        (options.sandbox, org["records"][0]["IsSandbox"].as_bool())
        && expected != is_sandbox
    {
        return Err(BackupError::WrongEnvironment {
            expected_sandbox: expected,
        });
    }
    // Windows end at the org's clock, never the runner's: a runner ahead of the org would
    // end a window in the org's future, and the next window, starting there, would never see
    // what the org changed in between; one behind it would leave recent changes for later.
    // The runner's time is taken only when it falls inside what the last answer's `Date` says;
    // otherwise the earliest the org's time can be, never ahead of it: every query sent after
    // sees the whole window, so the next run may take a record created before this end for one
    // this run saw.
    let window_end_ms = match client.server_time_bounds() {
        // The runner's clock agrees with the org's: it has the milliseconds `Date` lacks.
        Some((earliest, latest)) if (earliest..=latest).contains(&now_ms) => now_ms,
        Some((earliest, _)) => earliest,
        None => now_ms,
    };
    let window_end = crate::time::format_datetime_z(window_end_ms);
    // The snapshot is dated by the run (as the state branch lists it); its data by the org.
    let snapshot_time = now;
    let (now, now_ms) = (window_end.as_str(), window_end_ms);
    let snapshot_until = parent
        .and_then(|(_, m)| m.window.as_ref())
        .map(|w| w.to.as_str());
    let mut writer = SnapshotWriter::new(store, &options.task, parent)?;
    // Objects no longer chosen or gone from the org leave the snapshot.
    if let Some((_, manifest)) = parent {
        for object in manifest.objects.keys() {
            if !plans.iter().any(|p| &p.name == object) {
                writer.drop_object(object);
            }
        }
    }
    let jobs: Vec<Job> = plans
        .iter()
        .map(|plan| {
            let previous = parent.and_then(|(_, m)| m.objects.get(&plan.name));
            plan_job(plan, previous, snapshot_until, now, now_ms, options)
        })
        .collect();
    // What the next incremental will fetch again: versions stamped in its overlap.
    let recent_from = now_ms - WINDOW_OVERLAP_MS;
    let mut fetches = futures_util::stream::iter(jobs.iter().map(|job| {
        let into = match job.full_reason {
            Some(_) => Fetched::Full(Box::new(FullFetch::new(
                store,
                job.plan,
                options,
                recent_from,
            ))),
            None => Fetched::Changes(Box::new(DeltaWriter::new(
                store,
                &job.plan.name,
                parent.and_then(|(_, m)| m.objects.get(&job.plan.name)),
                recent_from,
                options.sort_memory,
            ))),
        };
        // An incremental's count check is asked alongside its fetch: the org counts while
        // the rows arrive.
        let count = job.full_reason.is_none() && options.count_check;
        async move {
            let counted = async {
                match count {
                    true => Some(org_count(client, options, job.plan, now).await),
                    false => None,
                }
            };
            tokio::join!(
                fetch(client, options, job.plan, &job.soql, job.since_ms, into),
                counted
            )
        }
    }))
    .buffered(options.concurrency.max(1));
    let mut runs = Vec::new();
    let mut out_of_budget: Option<String> = None;
    let mut next_job = jobs.iter();
    while let Some((result, counted)) = fetches.next().await {
        let Some(job) = next_job.next() else { break };
        let name = &job.plan.name;
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(e) => match budget_reason(&e, name) {
                Some(reason) => {
                    out_of_budget.get_or_insert(reason);
                    continue;
                }
                None => return Err(e),
            },
        };
        let (mut run, mut recent) = match fetched {
            Fetched::Full(full) => {
                let reason = job.full_reason.as_deref().unwrap_or_default();
                write_full(&mut writer, job.plan, full, reason)?
            }
            Fetched::Changes(delta) => write_incremental(&mut writer, job.plan, delta)?,
        };
        if let (false, None, Some(counted)) = (run.full, &out_of_budget, counted) {
            let checked = match counted.map(|org| count_mismatch(org, run.records)) {
                Ok(None) => Ok(None),
                Ok(Some(reason)) => {
                    let into = Fetched::Full(Box::new(FullFetch::new(
                        store,
                        job.plan,
                        options,
                        recent_from,
                    )));
                    let soql = full_soql(job.plan);
                    match fetch(client, options, job.plan, &soql, None, into).await {
                        Ok(Fetched::Full(full)) => {
                            write_full(&mut writer, job.plan, full, &reason).map(Some)
                        }
                        Ok(Fetched::Changes(_)) => unreachable!("fetch fills what it is given"),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e.into()),
            };
            match checked {
                Ok(Some((full, full_recent))) => {
                    run = full;
                    recent = full_recent;
                }
                Ok(None) => {}
                Err(e) => match budget_reason(&e, name) {
                    // The incremental stands; the next run checks again.
                    Some(reason) => {
                        out_of_budget.get_or_insert(reason);
                    }
                    None => return Err(e),
                },
            }
        }
        writer.set_fields(
            name,
            job.plan.fields.iter().map(|f| f.name.clone()).collect(),
        );
        writer.set_schema(
            name,
            &serde_json::to_vec(&job.plan.schema).unwrap_or_default(),
        )?;
        writer.mark_synced(name, now, run.full);
        writer.set_recent(name, recent.finish().as_ref())?;
        runs.push(run);
    }
    drop(fetches);
    let outcome = match out_of_budget {
        None => Outcome::Complete,
        Some(reason) => Outcome::Partial { reason },
    };
    let window = Some(Window {
        from: snapshot_until.map(str::to_string),
        to: now.to_string(),
    });
    let (snapshot, manifest) = writer.finish(
        snapshot_time,
        Source {
            org_id,
            api_version: options.api_version.clone(),
        },
        window,
        outcome,
    )?;
    Ok(BackupOutcome {
        snapshot,
        manifest,
        coverage,
        full: runs
            .iter()
            .filter(|r| r.full)
            .map(|r| r.object.clone())
            .collect(),
        incremental: runs
            .iter()
            .filter(|r| !r.full)
            .map(|r| r.object.clone())
            .collect(),
        objects: runs,
        schemas: plans
            .iter()
            .map(|p| (p.name.clone(), p.schema.clone()))
            .collect(),
        api_calls: client.budget().calls - calls_before,
    })
}
