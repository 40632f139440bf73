//! Reading an object's records from Salesforce: `queryAll` REST pages for small objects, a Bulk
//! API 2.0 query job for large ones (its CSV parsed on a blocking thread while the next bytes
//! arrive), a REST fallback when Bulk fails; every record turned into its canonical row.
//!
//! The invariant this module keeps: a record leaves a snapshot only on evidence of its
//! deletion (IsDeleted in queryAll's window, or absence from a full pass of live records),
//! never because it is missing from a bounded window.

use reqwest::Method;
use serde_json::Value;

use super::client::SalesforceClient;
use super::rest_page::PageError;
use crate::source::{FetchError, Field, ObjectPlan, RowSink, SourceError};
use crate::store::StoreError;

/// How records are read: the API version, REST page size and when Bulk takes over.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub api_version: String,
    /// REST pages of this many records (200..2000).
    pub batch_size: u32,
    /// Objects with more records than this go through Bulk API 2.0 ([`BULK_THRESHOLD`]).
    pub bulk_threshold: u64,
    /// The metadata types to back up through the Metadata API; None backs up none.
    pub metadata: Option<super::metadata::MetadataScope>,
}

impl FetchSettings {
    pub fn new(api_version: &str) -> FetchSettings {
        FetchSettings {
            api_version: api_version.to_string(),
            batch_size: 2000,
            bulk_threshold: BULK_THRESHOLD,
            metadata: None,
        }
    }
}

/// A record as the store keeps it: the chosen fields in describe order, no `attributes`,
/// values in one canonical form (datetimes in UTC with `Z`, numbers as numbers).
pub fn canonical(record: &Value, fields: &[Field]) -> Vec<u8> {
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

/// Every record a SOQL query returns (through queryAll, so deleted records come too), into
/// `into`. The query asks for no order: the store's order (ascending bytes of Id) is what
/// Salesforce returns in practice, and whatever arrives otherwise is sorted here, independent
/// of the org's collation.
pub(super) async fn fetch<S: RowSink>(
    client: &SalesforceClient,
    options: &FetchSettings,
    plan: &ObjectPlan,
    soql: &str,
    since_ms: Option<i64>,
    mut into: S,
) -> Result<S, FetchError> {
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
                Some((id, processed)) => {
                    if let Some(total) = processed {
                        into.announced(total);
                    }
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
        if first {
            into.announced(head.total_size);
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

/// Every record a SOQL query returns over REST `query` (live records only), page by page, into
/// `into`: for queries neither Bulk nor queryAll takes (ContentDocumentLink's, by Id).
pub(super) async fn query_pages<S: RowSink>(
    client: &SalesforceClient,
    options: &FetchSettings,
    plan: &ObjectPlan,
    soql: &str,
    mut into: S,
) -> Result<S, FetchError> {
    let batch_header = format!("batchSize={}", options.batch_size);
    let headers = [("Sforce-Query-Options", batch_header.as_str())];
    let mut path = format!(
        "/services/data/v{}/query?q={}",
        options.api_version,
        url_encode(soql)
    );
    loop {
        let body = rest_page(client, &path, &headers).await?;
        let head: PageHead = serde_json::from_slice(&body)
            .map_err(|e| SourceError::Network(format!("unreadable query page: {e}")))?;
        push_records(&body, &plan.fields, None, &mut into)?;
        match head.next_records_url.filter(|_| !head.done) {
            Some(next) => path = next,
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
) -> Result<bytes::Bytes, FetchError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.request(Method::GET, path, None, headers).await?;
        match response.bytes().await {
            Ok(bytes) => return Ok(bytes),
            Err(_) if attempt < PAGE_ATTEMPTS => {}
            Err(e) => {
                return Err(SourceError::Network(format!(
                    "a query page broke off: {}",
                    crate::text::error_chain(&e)
                ))
                .into());
            }
        }
    }
}

/// The records of a REST query page, as rows.
fn push_records<S: RowSink>(
    body: &[u8],
    fields: &[Field],
    since_ms: Option<i64>,
    into: &mut S,
) -> Result<(), FetchError> {
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

/// A Bulk API 2.0 queryAll job run to completion: its id and the records it says it found,
/// or None when every attempt ended Failed or Aborted (the caller reads the records over REST
/// then).
async fn bulk_job(
    client: &SalesforceClient,
    version: &str,
    soql: &str,
) -> Result<Option<(String, Option<u64>)>, FetchError> {
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
                "JobComplete" => {
                    return Ok(Some((id, info["numberRecordsProcessed"].as_u64())));
                }
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
async fn bulk_results<S: RowSink>(
    client: &SalesforceClient,
    version: &str,
    id: &str,
    plan: &ObjectPlan,
    since_ms: Option<i64>,
    mut into: S,
) -> Result<S, FetchError> {
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
                Err(FetchError::Source(SourceError::Network(_))) if attempt < PAGE_ATTEMPTS => {}
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
async fn bulk_page<S: RowSink>(
    client: &SalesforceClient,
    path: &str,
    plan: &ObjectPlan,
    since_ms: Option<i64>,
    into: S,
) -> Result<(S, Result<Option<String>, FetchError>), FetchError> {
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
    // Chunks of up to hyper's read buffer each, per object fetched at once: a few keep the
    // parser fed without holding a page's worth.
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
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
                    .send(Err(format!(
                        "a Bulk results page broke off: {}",
                        crate::text::error_chain(&e)
                    )))
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

pub(super) fn select(plan: &ObjectPlan) -> String {
    let mut names: Vec<&str> = plan.fields.iter().map(|f| f.name.as_str()).collect();
    if !names.contains(&"IsDeleted") && plan.incremental {
        names.push("IsDeleted");
    }
    format!("SELECT {} FROM {}", names.join(", "), plan.name)
}

/// A full pass reads every live record, with no upper bound on SystemModstamp: a record
/// edited after the window's end (while the backup runs) is still live, and leaving it out
/// would record it as deleted. It comes in its newer version; the next incremental's overlap
/// fetches it again anyway.
pub(super) fn full_soql(plan: &ObjectPlan) -> String {
    if plan.incremental {
        format!("{} WHERE IsDeleted = false", select(plan))
    } else {
        select(plan)
    }
}

/// The records the org had live at the window's end `now` (`None` when the answer has none):
/// exactly what the snapshot must hold, however the org moves while the backup runs. Created
/// by then (a record edited since existed all along), and live then: still live, or deleted
/// since (a deletion stamps the record, and queryAll still sees it). A record purged from the
/// Recycle Bin is in neither, which is what the check is for.
pub(super) async fn org_count(
    client: &SalesforceClient,
    options: &FetchSettings,
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
