//! A backup run: discover, then for each object a full pass (first backup, changed fields, or
//! no SystemModstamp) or an incremental one (the SystemModstamp window since the parent, through
//! queryAll so deletions arrive as tombstones), written into the store. When the API budget runs
//! out the snapshot is kept as partial: finished objects are new, the others keep the parent's
//! data and the next run resumes.

use reqwest::Method;
use serde_json::Value;

use super::client::{SalesforceClient, SourceError};
use super::discovery::{Coverage, ObjectPlan, discover};
use crate::snapshot::{Change, Outcome, SnapshotManifest, SnapshotWriter, Source, Window};
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
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub snapshot: String,
    pub manifest: SnapshotManifest,
    pub coverage: Coverage,
    /// Objects backed up in full this run, and incrementally.
    pub full: Vec<String>,
    pub incremental: Vec<String>,
    /// API calls this run made.
    pub api_calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
        let _ = serde_json::to_writer(&mut bytes, &field.name);
        bytes.push(b':');
        let value = record.get(&field.name).unwrap_or(&Value::Null);
        match (field.kind.as_str(), value) {
            ("datetime", Value::String(s)) => {
                let normal = crate::time::parse_datetime(s).map(crate::time::format_datetime_z);
                let _ = serde_json::to_writer(&mut bytes, normal.as_deref().unwrap_or(s));
            }
            _ => {
                let _ = serde_json::to_writer(&mut bytes, value);
            }
        }
    }
    bytes.push(b'}');
    bytes
}

/// A fetched record as the store will keep it: converted the moment it arrives, so a large
/// object is held as compact bytes rather than parsed JSON.
pub struct Row {
    pub id: String,
    pub deleted: bool,
    pub body: Vec<u8>,
}

fn to_row(record: &Value, plan: &ObjectPlan) -> Row {
    Row {
        id: record["Id"].as_str().unwrap_or_default().to_string(),
        deleted: record["IsDeleted"] == true,
        body: canonical(record, &plan.fields),
    }
}

/// Objects with more records than this go through Bulk API 2.0: a few calls for any size,
/// where REST needs one per 2,000 records.
pub const BULK_THRESHOLD: u64 = 10_000;
/// Rows per Bulk results page.
const BULK_PAGE: u32 = 250_000;

/// Every record a SOQL query returns (through queryAll, so deleted records come too), in
/// ascending byte order of Id: the store's order. The query asks for no order: sorting here is
/// cheaper than asking the org to, and independent of its collation.
async fn query_all(
    client: &SalesforceClient,
    version: &str,
    soql: &str,
    batch: u32,
    plan: &ObjectPlan,
    bulk_threshold: u64,
) -> Result<Vec<Row>, SourceError> {
    // The first REST page says how many records match: past the threshold, Bulk takes over.
    let mut records = match query_pages(client, version, soql, batch, plan, bulk_threshold).await? {
        Some(rows) => rows,
        None => bulk_query(client, version, soql, plan).await?,
    };
    records.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    records.dedup_by(|a, b| a.id == b.id);
    Ok(records)
}

/// A Bulk API 2.0 queryAll job: create, poll until complete, read every CSV page.
async fn bulk_query(
    client: &SalesforceClient,
    version: &str,
    soql: &str,
    plan: &ObjectPlan,
) -> Result<Vec<Row>, SourceError> {
    let jobs = format!("/services/data/v{version}/jobs/query");
    let request = serde_json::json!({"operation": "queryAll", "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"});
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
            "JobComplete" => break,
            "Failed" | "Aborted" => {
                return Err(SourceError::Api {
                    status: 200,
                    code: "BULK_JOB_FAILED".into(),
                    message: format!(
                        "Bulk query job {id} ended {}: {}",
                        info["state"],
                        info["errorMessage"].as_str().unwrap_or("no reason given")
                    ),
                });
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
    // Each record's canonical bytes are written straight from its CSV cells: no JSON tree.
    let quoted: Vec<String> = plan
        .fields
        .iter()
        .map(|f| serde_json::to_string(&f.name).unwrap_or_default())
        .collect();
    let mut records = Vec::new();
    let mut locator: Option<String> = None;
    loop {
        let mut path = format!("{jobs}/{id}/results?maxRecords={BULK_PAGE}");
        if let Some(l) = &locator {
            path.push_str(&format!("&locator={l}"));
        }
        let response = client
            .request(Method::GET, &path, None, &[("Accept", "text/csv")])
            .await?;
        let next = response
            .headers()
            .get("Sforce-Locator")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|e| SourceError::Network(format!("a Bulk results page broke off: {e}")))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(body.as_ref());
        let headers = reader
            .headers()
            .map_err(|e| SourceError::Network(format!("unreadable CSV header: {e}")))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let columns: Vec<Option<usize>> = plan.fields.iter().map(|f| column(&f.name)).collect();
        let (id_column, deleted_column) = (column("Id"), column("IsDeleted"));
        let mut row = csv::StringRecord::new();
        while reader
            .read_record(&mut row)
            .map_err(|e| SourceError::Network(format!("unreadable CSV row: {e}")))?
        {
            let mut out = Vec::with_capacity(row.as_slice().len() + 24 * quoted.len());
            out.push(b'{');
            for (i, field) in plan.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(quoted[i].as_bytes());
                out.push(b':');
                write_cell(
                    &mut out,
                    &field.kind,
                    columns[i].and_then(|c| row.get(c)).unwrap_or(""),
                );
            }
            out.push(b'}');
            records.push(Row {
                id: id_column
                    .and_then(|c| row.get(c))
                    .unwrap_or_default()
                    .to_string(),
                deleted: deleted_column.and_then(|c| row.get(c)) == Some("true"),
                body: out,
            });
        }
        match next.as_deref() {
            None | Some("null") | Some("") => return Ok(records),
            Some(l) => locator = Some(l.to_string()),
        }
    }
}

/// Writes a Bulk CSV cell as the canonical JSON that REST's value would give: empty is null
/// (CSV cannot tell null from empty, and Salesforce stores no empty text), numbers and booleans
/// typed by describe, datetimes in UTC with `Z`.
fn write_cell(out: &mut Vec<u8>, kind: &str, cell: &str) {
    let json = |out: &mut Vec<u8>, value: &Value| {
        let _ = serde_json::to_writer(&mut *out, value);
    };
    if cell.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    match kind {
        "boolean" => out.extend_from_slice(if cell == "true" { b"true" } else { b"false" }),
        "int" => match cell.parse::<i64>() {
            Ok(n) => json(out, &Value::from(n)),
            Err(_) => json(out, &Value::String(cell.to_string())),
        },
        "double" | "currency" | "percent" => match cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => json(out, &Value::Number(n)),
            None => json(out, &Value::String(cell.to_string())),
        },
        "datetime" => {
            let normal = crate::time::parse_datetime(cell)
                .map(crate::time::format_datetime_z)
                .unwrap_or_else(|| cell.to_string());
            json(out, &Value::String(normal));
        }
        _ => {
            let _ = serde_json::to_writer(&mut *out, cell);
        }
    }
}

async fn query_pages(
    client: &SalesforceClient,
    version: &str,
    soql: &str,
    batch: u32,
    plan: &ObjectPlan,
    bulk_threshold: u64,
) -> Result<Option<Vec<Row>>, SourceError> {
    let batch_header = format!("batchSize={batch}");
    let mut path = format!("/services/data/v{version}/queryAll?q={}", url_encode(soql));
    let mut records = Vec::new();
    loop {
        let response = client
            .request(
                Method::GET,
                &path,
                None,
                &[("Sforce-Query-Options", &batch_header)],
            )
            .await?;
        let page: Value = response
            .json()
            .await
            .map_err(|e| SourceError::Network(format!("unreadable query page: {e}")))?;
        if records.is_empty() && page["totalSize"].as_u64().unwrap_or(0) > bulk_threshold {
            return Ok(None);
        }
        if let Some(page_records) = page["records"].as_array() {
            records.extend(page_records.iter().map(|r| to_row(r, plan)));
        }
        match page["nextRecordsUrl"].as_str() {
            Some(next) if page["done"] != true => path = next.to_string(),
            _ => return Ok(Some(records)),
        }
    }
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

fn select(plan: &ObjectPlan) -> String {
    let mut names: Vec<&str> = plan.fields.iter().map(|f| f.name.as_str()).collect();
    if !names.contains(&"IsDeleted") && plan.incremental {
        names.push("IsDeleted");
    }
    format!("SELECT {} FROM {}", names.join(", "), plan.name)
}

pub async fn backup(
    client: &SalesforceClient,
    store: &Store,
    options: &BackupOptions,
    parent: Option<(&str, &SnapshotManifest)>,
    now: &str,
) -> Result<BackupOutcome, BackupError> {
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
                url_encode("SELECT Id FROM Organization")
            ),
            None,
        )
        .await?;
    let org_id = org["records"][0]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let since = parent
        .and_then(|(_, m)| m.window.as_ref())
        .map(|w| w.to.clone());
    let mut writer = SnapshotWriter::new(store, &options.task, parent)?;
    let (mut full, mut incremental) = (Vec::new(), Vec::new());
    let mut outcome = Outcome::Complete;
    // Objects no longer chosen or gone from the org leave the snapshot.
    if let Some((_, manifest)) = parent {
        for object in manifest.objects.keys() {
            if !plans.iter().any(|p| &p.name == object) {
                writer.drop_object(object);
            }
        }
    }
    for plan in &plans {
        let field_names: Vec<String> = plan.fields.iter().map(|f| f.name.clone()).collect();
        let previous = parent.and_then(|(_, m)| m.objects.get(&plan.name));
        let can_increment = plan.incremental
            && since.is_some()
            && previous.is_some_and(|p| p.fields == field_names);
        let soql = if can_increment {
            let from = since.clone().unwrap_or_default();
            format!(
                "{} WHERE SystemModstamp > {from} AND SystemModstamp <= {now}",
                select(plan)
            )
        } else if plan.incremental {
            format!(
                "{} WHERE IsDeleted = false AND SystemModstamp <= {now}",
                select(plan)
            )
        } else {
            select(plan)
        };
        let fetched = query_all(
            client,
            &options.api_version,
            &soql,
            options.batch_size,
            plan,
            options.bulk_threshold,
        )
        .await;
        let result = match fetched {
            Ok(rows) if can_increment => {
                let changes = rows.into_iter().map(|row| {
                    if row.deleted {
                        Change::Delete(row.id)
                    } else {
                        Change::Upsert(row.id, row.body)
                    }
                });
                writer.changes(&plan.name, changes)?;
                incremental.push(plan.name.clone());
                Ok(())
            }
            Ok(rows) => {
                let records = rows.into_iter().map(|row| Ok((row.id, row.body)));
                writer.full_object(&plan.name, records)?;
                full.push(plan.name.clone());
                Ok(())
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => writer.set_fields(&plan.name, field_names),
            Err(SourceError::BudgetExhausted {
                used,
                max,
                limit_percent,
            }) => {
                outcome = Outcome::Partial {
                    reason: format!(
                        "the API budget ran out at {used} of {max} daily calls ({limit_percent}% allowed) before {} was backed up",
                        plan.name
                    ),
                };
                break;
            }
            Err(other) => return Err(other.into()),
        }
    }
    // A partial run keeps the parent's window, so the next run covers what this one missed.
    let window = match &outcome {
        Outcome::Complete => Some(Window {
            from: since.clone(),
            to: now.to_string(),
        }),
        Outcome::Partial { .. } => parent.and_then(|(_, m)| m.window.clone()),
    };
    let (snapshot, manifest) = writer.finish(
        now,
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
        full,
        incremental,
        api_calls: client.budget().calls - calls_before,
    })
}
