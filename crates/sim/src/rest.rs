//! REST API handlers: versions, resources, limits, describe, query with cursors, and the
//! replication resources (getUpdated / getDeleted).
//!
//! Long because each REST resource is a short handler and they share paging and errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::org::{self, Value};
use super::render::json_record;
use super::server::{ApiError, State, admit, json_response, poisoned, version, with_limit_info};
use super::soql::{self, Query, Select};
use sftime as time;

type Result<T> = std::result::Result<T, ApiError>;

pub async fn versions(Shared(_state): Shared<Arc<State>>) -> Response {
    let labels = ["Winter", "Spring", "Summer"];
    let list: Vec<serde_json::Value> = (super::server::MIN_VERSION..=super::server::MAX_VERSION)
        .map(|v| {
            // v62.0 is Winter '25, then Spring '25 and Summer '25: three releases a year.
            let offset = v as i64 - 62;
            let season = offset.rem_euclid(3) as usize;
            let year = 25 + offset.div_euclid(3);
            json!({
                "label": format!("{} '{year:02}", labels[season]),
                "url": format!("/services/data/v{v}.0"),
                "version": format!("{v}.0"),
            })
        })
        .collect();
    json_response(StatusCode::OK, serde_json::Value::Array(list).to_string())
}

pub async fn resources(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let base = format!("/services/data/v{v}");
    // Only what this org serves: a client that follows the list must find each one.
    let map: serde_json::Map<String, serde_json::Value> = [
        "sobjects",
        "query",
        "queryAll",
        "limits",
        "composite",
        "jobs",
        "search",
        "tooling",
    ]
    .iter()
    .map(|r| (r.to_string(), json!(format!("{base}/{r}"))))
    .collect();
    Ok(with_limit_info(
        json_response(StatusCode::OK, serde_json::Value::Object(map).to_string()),
        &info,
    ))
}

pub async fn limits(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let jobs = state.jobs.lock().map(|j| j.created_today()).unwrap_or(0);
    let body = json!({
        "DailyApiRequests": {"Max": org.api.max, "Remaining": org.api.remaining()},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000u64.saturating_sub(jobs)},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024u64.saturating_sub(org.record_count() as u64 * 2 / 1024)},
        "FileStorageMB": {"Max": 2048, "Remaining": 2048},
        "SingleEmail": {"Max": 5000, "Remaining": 5000},
    });
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

#[derive(Deserialize)]
pub struct RecordCountParams {
    #[serde(rename = "sObjects")]
    objects: Option<String>,
}

/// `/limits/recordCount`: each object's live records (the recycle bin not counted), for the
/// objects named in `sObjects` (comma-separated; names the org lacks are left out), else all.
pub async fn record_count(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<RecordCountParams>,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let wanted: Vec<usize> = match params.objects.as_deref() {
        Some(list) => list
            .split(',')
            .filter_map(|name| org.object_index(name.trim()))
            .collect(),
        None => (0..org.catalog.objects.len()).collect(),
    };
    let counts: Vec<serde_json::Value> = wanted
        .into_iter()
        .map(|object| {
            let live = org.tables[object]
                .records
                .iter()
                .filter(|r| !r.is_deleted())
                .count();
            json!({"count": live, "name": org.catalog.objects[object].name})
        })
        .collect();
    Ok(with_limit_info(
        json_response(StatusCode::OK, json!({ "sObjects": counts }).to_string()),
        &info,
    ))
}

/// Which API a resource belongs to: the data API's objects, or the Tooling API's (which has a
/// catalog and records of its own, under `/tooling/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Data,
    Tooling,
}

impl Api {
    pub fn org(self, state: &State) -> &std::sync::RwLock<org::Org> {
        match self {
            Api::Data => &state.org,
            Api::Tooling => &state.tooling,
        }
    }

    /// Where its resources sit under `/services/data/vXX.X/`.
    fn prefix(self) -> &'static str {
        match self {
            Api::Data => "",
            Api::Tooling => "tooling/",
        }
    }
}

pub async fn describe_global(
    state: Shared<Arc<State>>,
    v: Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    describe_global_of(Api::Data, state, v, headers)
}

pub fn describe_global_of(
    api: Api,
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let org = api.org(&state).read().map_err(|_| poisoned())?;
    let objects: Vec<serde_json::Value> = org
        .catalog
        .objects
        .iter()
        .map(|o| o.global_describe(&v))
        .collect();
    let body = json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

pub async fn object_info(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    object_info_of(Api::Data, state, path, headers)
}

pub fn object_info_of(
    api: Api,
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let org = api.org(&state).read().map_err(|_| poisoned())?;
    let def = org
        .catalog
        .object(&object)
        .ok_or_else(ApiError::not_found)?;
    let body = json!({"objectDescribe": def.global_describe(&v), "recentItems": []});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

pub async fn describe(
    state: Shared<Arc<State>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    describe_of(Api::Data, state, path, headers)
}

pub fn describe_of(
    api: Api,
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let org = api.org(&state).read().map_err(|_| poisoned())?;
    let def = org
        .catalog
        .object(&object)
        .ok_or_else(ApiError::not_found)?;
    Ok(with_limit_info(
        json_response(StatusCode::OK, def.describe(&v, &org.catalog).to_string()),
        &info,
    ))
}

/// An open query: the matching records in result order, read page by page. Locators name it
/// with an offset (`01g…-2000`), and any page can be read again until the cursor expires.
pub struct Cursor {
    api: Api,
    object: usize,
    fields: Vec<soql::FieldPath>,
    /// Parent-to-child subqueries, rendered into each record.
    children: Vec<soql::ChildQuery>,
    /// TYPEOF parents, rendered into each record after the subqueries.
    polymorphic: Vec<soql::TypeOf>,
    /// queryAll: deleted children count too.
    scan_all: bool,
    hits: Hits,
    batch: usize,
    /// When it was opened, on the org's clock.
    opened: i64,
}

/// How long a cursor can be read: two days, as Salesforce documents since API v56 (which also
/// dropped the cap on how many a user may hold open).
pub const CURSOR_LIFETIME_MS: i64 = 2 * 86_400_000;

/// The simulator's own guard, not Salesforce's: open cursors hold at most this many record
/// positions together (4 bytes each), the oldest going first, so a client that never finishes
/// its queries cannot exhaust the machine.
const MAX_CURSOR_POSITIONS: usize = 64 << 20;

#[derive(Default)]
pub struct Cursors {
    open: HashMap<String, Arc<Cursor>>,
    order: std::collections::VecDeque<String>,
    counter: u64,
    positions: usize,
}

impl Cursors {
    fn open(&mut self, cursor: Arc<Cursor>) -> String {
        self.counter += 1;
        let id = super::ids::record_id("01g", self.counter)[..15].to_string();
        let now = cursor.opened;
        self.positions += cursor.hits.len();
        self.open.insert(id.clone(), cursor);
        self.order.push_back(id.clone());
        while let Some(oldest) = self.order.front().cloned() {
            let expired = self
                .open
                .get(&oldest)
                .is_none_or(|c| now - c.opened > CURSOR_LIFETIME_MS);
            if !expired && self.positions <= MAX_CURSOR_POSITIONS || oldest == id {
                break;
            }
            self.order.pop_front();
            if let Some(gone) = self.open.remove(&oldest) {
                self.positions -= gone.hits.len();
            }
        }
        id
    }

    /// The cursor a locator names, while it lives.
    fn get(&self, id: &str, now: i64) -> Option<Arc<Cursor>> {
        self.open
            .get(id)
            .filter(|c| now - c.opened <= CURSOR_LIFETIME_MS)
            .cloned()
    }
}

#[derive(Deserialize)]
pub struct QueryParams {
    q: Option<String>,
    /// `columns=true`: the query's column metadata instead of its records.
    columns: Option<String>,
}

pub async fn query(
    state: Shared<Arc<State>>,
    v: Path<String>,
    headers: HeaderMap,
    params: UrlQuery<QueryParams>,
) -> Result<Response> {
    run(Api::Data, state, v, headers, params, false)
}

pub async fn query_all(
    state: Shared<Arc<State>>,
    v: Path<String>,
    headers: HeaderMap,
    params: UrlQuery<QueryParams>,
) -> Result<Response> {
    run(Api::Data, state, v, headers, params, true)
}

/// Page size from `Sforce-Query-Options: batchSize=N` (200 to 2000, default 2000).
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("Sforce-Query-Options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().strip_prefix("batchSize="))
        })
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(2000, |n| n.clamp(200, 2000))
}

/// The records a query matched, in result order: their positions in the table as it was laid
/// out when the query ran (4 bytes a record, where a copy of each Id would be 18 more).
#[derive(Debug, Clone)]
pub struct Hits {
    layout: org::Layout,
    positions: Vec<u32>,
}

impl Hits {
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The hits from `start` to `end` (a page).
    pub fn slice(&self, start: usize, end: usize) -> Hits {
        Hits {
            layout: self.layout,
            positions: self.positions[start..end].to_vec(),
        }
    }

    /// The matched records `range` still in `table`, in order (records purged since the
    /// query ran are skipped).
    pub fn records<'t>(
        &'t self,
        table: &'t org::Table,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = &'t org::Record> + 't {
        self.positions[range]
            .iter()
            .filter_map(|&at| table.position(self.layout, at))
            .map(|at| &table.records[at])
    }
}

/// A query's semi-joins run, their values standing in as `IN` lists; None when it has none.
fn with_semi_joins_run(org: &org::Org, query: &Query) -> Option<Query> {
    fn has(condition: &soql::Condition) -> bool {
        use soql::Condition::*;
        match condition {
            And(a, b) | Or(a, b) => has(a) || has(b),
            Not(inner) => has(inner),
            InQuery(..) => true,
            Compare(..) | In(..) => false,
        }
    }
    fn run(org: &org::Org, condition: &soql::Condition) -> soql::Condition {
        use soql::Condition::*;
        match condition {
            And(a, b) => And(Box::new(run(org, a)), Box::new(run(org, b))),
            Or(a, b) => Or(Box::new(run(org, a)), Box::new(run(org, b))),
            Not(inner) => Not(Box::new(run(org, inner))),
            InQuery(path, inner, negated) => {
                let Select::Fields(fields) = &inner.select else {
                    return In(path.clone(), Vec::new(), *negated);
                };
                let hits = execute(org, inner, false);
                let table = &org.tables[inner.object];
                let values = hits
                    .records(table, 0..hits.len())
                    .filter_map(|r| match soql::resolve(org, r, &fields[0]).as_deref() {
                        Some(Value::Text(id)) => Some(soql::Literal::Text(id.to_string())),
                        _ => None,
                    })
                    .collect();
                In(path.clone(), values, *negated)
            }
            other => other.clone(),
        }
    }
    let filter = query.filter.as_ref().filter(|f| has(f))?;
    let mut resolved = query.clone();
    resolved.filter = Some(run(org, filter));
    Some(resolved)
}

/// Runs a query: the records it matches, in order.
pub fn execute(org: &org::Org, query: &Query, scan_all: bool) -> Hits {
    execute_where(org, query, scan_all, &|_| true)
}

/// Runs a query on the records `also` takes (a SOSL search's text match), before its order,
/// offset and limit.
pub fn execute_where(
    org: &org::Org,
    query: &Query,
    scan_all: bool,
    also: &(dyn Fn(&org::Record) -> bool + Sync),
) -> Hits {
    if let Some(resolved) = with_semi_joins_run(org, query) {
        return execute_where(org, &resolved, scan_all, also);
    }
    let table = &org.tables[query.object];
    let selected = |r: &org::Record| selects(org, query, scan_all, r) && also(r);
    let layout = table.layout();
    if query.order.is_empty() {
        // Table order is Id order: no sort, and the hits straight from the scan, which stops
        // at the limit.
        let wanted = query
            .limit
            .map_or(usize::MAX, |limit| limit.saturating_add(query.offset));
        let mut positions = scan(&table.records, wanted, |i, r| selected(r).then_some(i));
        positions.truncate(wanted);
        positions.drain(..query.offset.min(positions.len()));
        return Hits { layout, positions };
    }
    let mut rows: Vec<(u32, &org::Record)> = scan(&table.records, usize::MAX, |i, r| {
        selected(r).then_some((i, r))
    });
    rows.sort_by(|(_, a), (_, b)| {
        for (path, descending, nulls_last) in &query.order {
            let va = soql::resolve(org, a, path);
            let vb = soql::resolve(org, b, path);
            let (va, vb) = (
                va.as_deref().unwrap_or(&Value::Null),
                vb.as_deref().unwrap_or(&Value::Null),
            );
            let ordering = match (va, vb) {
                (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
                (Value::Null, _) => {
                    if *nulls_last {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (_, Value::Null) => {
                    if *nulls_last {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                _ => {
                    let o = soql::order_values(va, vb);
                    if *descending { o.reverse() } else { o }
                }
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
    let positions = rows
        .into_iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .map(|(i, _)| i)
        .collect();
    Hits { layout, positions }
}

/// Whether the query takes the record (queryAll takes deleted ones too).
fn selects(org: &org::Org, query: &Query, scan_all: bool, record: &org::Record) -> bool {
    (scan_all || !record.is_deleted())
        && org.visible(query.object, record)
        && query
            .filter
            .as_ref()
            .is_none_or(|c| soql::matches(org, record, c))
}

/// How many records a query matches, without listing them.
pub fn count(org: &org::Org, query: &Query, scan_all: bool) -> usize {
    if let Some(resolved) = with_semi_joins_run(org, query) {
        return count(org, &resolved, scan_all);
    }
    let table = &org.tables[query.object];
    let matched = scan(&table.records, usize::MAX, |_, r| {
        selects(org, query, scan_all, r).then_some(())
    })
    .len();
    matched
        .saturating_sub(query.offset)
        .min(query.limit.unwrap_or(usize::MAX))
}

/// Tables from this size are scanned by several threads: a scan is bound by memory latency
/// (each record's values live apart), and the client waits for it.
const PARALLEL_SCAN: usize = 65_536;

/// `keep` over every record (with its position), the kept results in table order; the first
/// `wanted` of them are exact (a part stops once it kept that many).
fn scan<'r, T: Send>(
    records: &'r [org::Record],
    wanted: usize,
    keep: impl Fn(u32, &'r org::Record) -> Option<T> + Sync,
) -> Vec<T> {
    let workers = if records.len() >= PARALLEL_SCAN {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    } else {
        1
    };
    if workers == 1 {
        return records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| keep(i as u32, r))
            .take(wanted)
            .collect();
    }
    let part = records.len().div_ceil(workers);
    let keep = &keep;
    std::thread::scope(|scope| {
        let parts: Vec<_> = records
            .chunks(part)
            .enumerate()
            .map(|(n, chunk)| {
                scope.spawn(move || {
                    // The first part has room for what every part may keep, so the others are
                    // appended to it without growing it; room never written to costs no memory.
                    let room = match n {
                        0 => records.len().min(wanted.saturating_mul(workers)),
                        _ => chunk.len().min(wanted),
                    };
                    let mut kept = Vec::with_capacity(room);
                    kept.extend(
                        chunk
                            .iter()
                            .enumerate()
                            .filter_map(|(i, r)| keep((n * part + i) as u32, r))
                            .take(wanted),
                    );
                    kept
                })
            })
            .collect();
        let mut parts = parts
            .into_iter()
            .map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        let mut all = parts.next().unwrap_or_default();
        for part in parts {
            all.extend(part);
        }
        all
    })
}

pub fn run(
    api: Api,
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<QueryParams>,
    scan_all: bool,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let soql_text = params.q.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        )
    })?;
    let org = api.org(&state).read().map_err(|_| poisoned())?;
    let query = soql::parse(&soql_text, &org.catalog, org.clock.now())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message))?;
    if params.columns.as_deref() == Some("true") {
        let body = super::columns::metadata(&org.catalog, &query);
        return Ok(with_limit_info(
            json_response(StatusCode::OK, body.to_string()),
            &info,
        ));
    }
    let fields = match &query.select {
        Select::Count => {
            let total = count(&org, &query, scan_all);
            let body = json!({"totalSize": total, "done": true, "records": []});
            return Ok(with_limit_info(
                json_response(StatusCode::OK, body.to_string()),
                &info,
            ));
        }
        Select::Fields(fields) => fields.clone(),
        Select::Grouped { columns, group_by } => {
            let body = aggregate_rows(&org, &query, columns, group_by, scan_all);
            return Ok(with_limit_info(json_response(StatusCode::OK, body), &info));
        }
    };
    let hits = execute(&org, &query, scan_all);
    let cursor = Cursor {
        api,
        opened: org.clock.now(),
        object: query.object,
        fields,
        children: query.children.clone(),
        polymorphic: query.polymorphic.clone(),
        scan_all,
        hits,
        batch: batch_size(&headers),
    };
    let body = if cursor.hits.len() > cursor.batch {
        let cursor = Arc::new(cursor);
        let id = state
            .cursors
            .lock()
            .map_err(|_| poisoned())?
            .open(cursor.clone());
        page(&org, &cursor, Some(&id), 0, &v)
    } else {
        page(&org, &cursor, None, 0, &v)
    };
    Ok(with_limit_info(json_response(StatusCode::OK, body), &info))
}

/// Renders the page of `cursor` starting at `offset`; `id` names the cursor for the next page.
fn page(org: &org::Org, cursor: &Cursor, id: Option<&str>, offset: usize, version: &str) -> String {
    let end = (offset + cursor.batch).min(cursor.hits.len());
    let table = &org.tables[cursor.object];
    let mut body = String::with_capacity(4096);
    body.push_str(&format!(
        "{{\"totalSize\":{},\"done\":{}",
        cursor.hits.len(),
        end == cursor.hits.len()
    ));
    if end < cursor.hits.len()
        && let Some(id) = id
    {
        body.push_str(&format!(
            ",\"nextRecordsUrl\":\"/services/data/v{version}/{}query/{id}-{end}\"",
            cursor.api.prefix()
        ));
    }
    body.push_str(",\"records\":[");
    let mut first = true;
    for record in cursor.hits.records(table, offset..end) {
        if !first {
            body.push(',');
        }
        json_record(
            &mut body,
            org,
            cursor.object,
            record,
            &cursor.fields,
            version,
        );
        if !cursor.children.is_empty() || !cursor.polymorphic.is_empty() {
            // The record's object is closed by json_record: reopen it for the subqueries.
            body.pop();
            for child in &cursor.children {
                body.push_str(&format!(",\"{}\":", child.relationship));
                child_records(&mut body, org, record, child, cursor.scan_all, version);
            }
            for type_of in &cursor.polymorphic {
                body.push_str(&format!(",\"{}\":", type_of.relationship));
                super::render::polymorphic_parent(&mut body, org, record, type_of, version);
            }
            body.push('}');
        }
        if first {
            // Room for the rest at the first record's size: growing a page copies all of it.
            body.reserve((body.len() + 64) * (end - offset));
        }
        first = false;
    }
    body.push_str("]}");
    body
}

/// An aggregate query's answer: one `AggregateResult` row per group (one row in all without
/// GROUP BY), its columns in the order the query names them.
fn aggregate_rows(
    org: &org::Org,
    query: &Query,
    columns: &[soql::Column],
    group_by: &[soql::FieldPath],
    scan_all: bool,
) -> String {
    let mut every = query.clone();
    every.order.clear();
    every.limit = None;
    every.offset = 0;
    let hits = execute(org, &every, scan_all);
    let table = &org.tables[query.object];
    let value_of = |record: &org::Record, path: &soql::FieldPath| {
        soql::resolve(org, record, path).map_or(Value::Null, |v| v.into_owned())
    };
    let mut groups: Vec<(Vec<Value>, Vec<&org::Record>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in hits.records(table, 0..hits.len()) {
        let key: Vec<Value> = group_by.iter().map(|p| value_of(record, p)).collect();
        let slot = *index.entry(format!("{key:?}")).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(record);
    }
    if group_by.is_empty() && groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    let position = |path: &soql::FieldPath| group_by.iter().position(|g| g == path);
    groups.sort_by(|(a, _), (b, _)| {
        let keys: Vec<(usize, bool)> = match query.order.is_empty() {
            true => (0..group_by.len()).map(|i| (i, false)).collect(),
            false => query
                .order
                .iter()
                .filter_map(|(path, descending, _)| Some((position(path)?, *descending)))
                .collect(),
        };
        for (i, descending) in keys {
            let ordering = soql::order_values(&a[i], &b[i]);
            let ordering = if descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
    let rows: Vec<&(Vec<Value>, Vec<&org::Record>)> = groups
        .iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .collect();
    let mut out = format!("{{\"totalSize\":{},\"done\":true,\"records\":[", rows.len());
    for (n, (key, records)) in rows.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"attributes\":{\"type\":\"AggregateResult\"}");
        for column in columns {
            out.push(',');
            match column {
                soql::Column::Group(path) => {
                    super::render::json_string(&mut out, &path.display);
                    out.push(':');
                    let at = position(path).unwrap_or(0);
                    super::render::json_value(&mut out, key.get(at).unwrap_or(&Value::Null));
                }
                soql::Column::Aggregate {
                    function,
                    field,
                    name,
                    ..
                } => {
                    super::render::json_string(&mut out, name);
                    out.push(':');
                    let values: Vec<Value> = records
                        .iter()
                        .map(|r| value_of(r, field))
                        .filter(|v| *v != Value::Null)
                        .collect();
                    out.push_str(&aggregate(*function, &values));
                }
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// One aggregate function over a group's non-null values, as JSON.
fn aggregate(function: soql::Aggregate, values: &[Value]) -> String {
    use soql::Aggregate::*;
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Num(x) => Some(*x),
        _ => None,
    };
    match function {
        Count => values.len().to_string(),
        CountDistinct => {
            let distinct: std::collections::HashSet<String> =
                values.iter().map(|v| format!("{v:?}")).collect();
            distinct.len().to_string()
        }
        Sum | Avg => {
            let numbers: Vec<f64> = values.iter().filter_map(number).collect();
            if numbers.is_empty() {
                return "null".into();
            }
            let sum: f64 = numbers.iter().sum();
            let result = if function == Sum {
                sum
            } else {
                sum / numbers.len() as f64
            };
            serde_json::Value::from(result).to_string()
        }
        Min | Max => {
            let chosen = values.iter().reduce(|a, b| {
                let ordering = soql::order_values(a, b);
                let keep_a = match function {
                    Min => ordering != std::cmp::Ordering::Greater,
                    _ => ordering != std::cmp::Ordering::Less,
                };
                if keep_a { a } else { b }
            });
            let mut out = String::new();
            super::render::json_value(&mut out, chosen.unwrap_or(&Value::Null));
            out
        }
    }
}

/// A parent record's children through a subquery: `{"totalSize","done","records"}`, or null
/// when it has none, as Salesforce renders them.
fn child_records(
    out: &mut String,
    org: &org::Org,
    parent: &org::Record,
    child: &soql::ChildQuery,
    scan_all: bool,
    version: &str,
) {
    let lookup = soql::FieldPath {
        display: org.catalog.objects[child.query.object].fields[child.field]
            .name
            .clone(),
        hops: Vec::new(),
        field: (child.query.object, child.field),
    };
    let of_parent = soql::Condition::Compare(
        lookup,
        soql::Op::Eq,
        soql::Literal::Text(parent.id().to_string()),
    );
    let mut query = child.query.clone();
    query.filter = Some(match query.filter.take() {
        Some(filter) => soql::Condition::And(Box::new(of_parent), Box::new(filter)),
        None => of_parent,
    });
    let hits = execute(org, &query, scan_all);
    if hits.is_empty() {
        out.push_str("null");
        return;
    }
    let Select::Fields(fields) = &query.select else {
        out.push_str("null");
        return;
    };
    let table = &org.tables[query.object];
    out.push_str(&format!(
        "{{\"totalSize\":{},\"done\":true,\"records\":[",
        hits.len()
    ));
    for (n, record) in hits.records(table, 0..hits.len()).enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_record(out, org, query.object, record, fields, version);
    }
    out.push_str("]}");
}

pub async fn query_more(
    Shared(state): Shared<Arc<State>>,
    Path((v, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let now = state.org.read().map_err(|_| poisoned())?.clock.now();
    let cursor = state
        .cursors
        .lock()
        .map_err(|_| poisoned())?
        .get(id, now)
        .ok_or_else(invalid)?;
    if offset >= cursor.hits.len() {
        return Err(invalid());
    }
    let org = cursor.api.org(&state).read().map_err(|_| poisoned())?;
    let body = page(&org, &cursor, Some(id), offset, &v);
    Ok(with_limit_info(json_response(StatusCode::OK, body), &info))
}

#[derive(Deserialize)]
pub struct Window {
    start: Option<String>,
    end: Option<String>,
}

/// getUpdated / getDeleted windows: UTC, truncated to the minute, start before end.
fn window(params: &Window, back_days: i64, now: i64) -> Result<(i64, i64)> {
    let bad = |m: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REPLICATION_DATE",
            m.to_string(),
        )
    };
    let parse = |s: &Option<String>, name: &str| {
        s.as_deref()
            .and_then(time::parse_datetime)
            .map(|ms| ms - ms.rem_euclid(60_000))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    format!("{name} is required: an ISO-8601 date and time"),
                )
            })
    };
    let start = parse(&params.start, "start")?;
    let end = parse(&params.end, "end")?;
    if start >= end {
        return Err(bad("startDate must chronologically precede endDate"));
    }
    if start < now - back_days * 86_400_000 {
        return Err(bad(&format!(
            "startDate cannot be more than {back_days} days ago"
        )));
    }
    Ok((start, end))
}

pub async fn updated(
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<Window>,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let index = org.object_index(&object).ok_or_else(ApiError::not_found)?;
    let (start, end) = window(&params, 30, org.clock.now())?;
    let def = &org.catalog.objects[index];
    let stamp = org::audit_field(def, "SystemModstamp");
    let ids: Vec<String> = org.tables[index]
        .records
        .iter()
        .filter(|r| !r.is_deleted())
        .filter(|r| matches!(r.values()[stamp], Value::DateTime(t) if t >= start && t < end))
        .map(|r| r.id().to_string())
        .collect();
    if ids.len() > 600_000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. narrow the time window",
        ));
    }
    let latest = end.min(org.clock.now() - org.clock.now().rem_euclid(60_000));
    let body = json!({"ids": ids, "latestDateCovered": time::format_datetime(latest)});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

pub async fn deleted(
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<Window>,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let index = org.object_index(&object).ok_or_else(ApiError::not_found)?;
    let now = org.clock.now();
    let (start, end) = window(&params, 15, now)?;
    let records: Vec<serde_json::Value> = org.tables[index]
        .deleted
        .iter()
        .filter(|(_, at)| *at >= start && *at < end)
        .map(|(id, at)| json!({"id": std::str::from_utf8(id).unwrap_or_default(), "deletedDate": time::format_datetime(*at)}))
        .collect();
    let latest = end.min(now - now.rem_euclid(60_000));
    let body = json!({
        "deletedRecords": records,
        "earliestDateAvailable": time::format_datetime(now - 15 * 86_400_000 - (now - 15 * 86_400_000).rem_euclid(60_000)),
        "latestDateCovered": time::format_datetime(latest),
    });
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn a_scan_keeps_the_first_wanted_in_table_order_on_any_number_of_threads(
        #[values(1_000, PARALLEL_SCAN * 2 + 3)] size: usize,
        #[values(0, 1, 5, 9_000, 60_000, usize::MAX)] wanted: usize,
    ) {
        let records: Vec<org::Record> = (0..size)
            .map(|n| {
                let mut id = [b'0'; 18];
                id[10..].copy_from_slice(format!("{n:08}").as_bytes());
                let values = vec![Value::Null, Value::Bool(n % 3 == 0)].into_boxed_slice();
                org::Record::new(id, values, 2)
            })
            .collect();
        let mut kept = scan(&records, wanted, |i, r| r.is_deleted().then_some(i));
        kept.truncate(wanted);
        let expected: Vec<u32> = (0..size as u32)
            .filter(|n| n % 3 == 0)
            .take(wanted)
            .collect();
        assert_eq!(kept, expected);
    }
}
