//! The simulator's own API, under `/__sim/`: change the org as its users would (edit, delete,
//! undelete, add a field, move the clock) and inject the failures a backup must survive
//! (`faults.rs`). It is
//! not Salesforce's API; nothing here needs a session or counts against limits.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::catalog::{FieldDef, FieldType};
use super::org::Value;
use super::server::{ApiError, State, json_response, poisoned};
use super::write::{self, Journal};
use sftime as time;

pub use super::faults::{Fault, FaultKind, FaultState, Faults, inject};

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/__sim/state", get(state_info))
        .route("/__sim/clock", post(clock))
        .route("/__sim/records/{object}", post(create))
        .route(
            "/__sim/records/{object}/{id}",
            axum::routing::patch(edit).delete(remove),
        )
        .route("/__sim/records/{object}/{id}/undelete", post(undelete))
        .route("/__sim/files", post(add_file))
        .route("/__sim/files/{document}/versions", post(edit_file))
        .route("/__sim/recycle-bin/empty", post(empty_recycle_bin))
        .route("/__sim/fields/{object}", post(add_field))
        .route(
            "/__sim/fields/{object}/{field}",
            axum::routing::patch(change_field_type),
        )
        .route("/__sim/sessions/expire", post(expire_sessions))
        .route("/__sim/sessions/lifetime", put(session_lifetime))
        .route("/__sim/refresh-tokens/revoke", post(revoke_refresh_tokens))
        .route("/__sim/api-usage", put(api_usage))
        .route("/__sim/permissions", put(permissions))
        .route("/__sim/faults", put(set_faults).delete(clear_faults))
        .route("/__sim/org", delete(delete_org))
}

fn ok(body: Json) -> Response {
    json_response(StatusCode::OK, body.to_string())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_SIM_REQUEST", message)
}

fn parse_json(body: &Bytes) -> Result<Json> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

async fn state_info(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    let org = state.org.read().map_err(|_| poisoned())?;
    let counts: serde_json::Map<String, Json> = org
        .catalog
        .objects
        .iter()
        .zip(&org.tables)
        .map(|(def, table)| (def.name.clone(), json!(table.records.len())))
        .collect();
    Ok(ok(json!({
        "orgId": org.org_id,
        "isSandbox": org.is_sandbox,
        "gone": org.gone,
        "now": time::format_datetime(org.clock.now()),
        "apiUsage": {"used": org.api.used, "max": org.api.max},
        "records": counts,
        "metadataCalls": state.metadata_calls.lock().map(|c| json!(*c)).unwrap_or_default(),
        "sessions": {
            "open": state.sessions.lock().map(|s| s.len()).unwrap_or(0),
            "callsEach": state.session_calls.load(std::sync::atomic::Ordering::Relaxed),
            "wornOut": state.sessions_worn_out.load(std::sync::atomic::Ordering::Relaxed),
        },
    })))
}

/// Unknown fields are refused: every field is optional, so a misspelt one (`advance_ms`)
/// would otherwise be a request that does nothing and says it succeeded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    set: Option<String>,
    advance_ms: Option<i64>,
}

async fn clock(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let change: ClockChange = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    if let Some(set) = change.set {
        let ms = time::parse_datetime(&set)
            .ok_or_else(|| bad("`set` must be an ISO-8601 date and time"))?;
        org.clock.set(ms);
    }
    if let Some(ms) = change.advance_ms {
        org.clock.advance(ms);
    }
    Ok(ok(json!({"now": time::format_datetime(org.clock.now())})))
}

fn object(org: &super::org::Org, name: &str) -> Result<usize> {
    org.object_index(name)
        .ok_or_else(|| bad(format!("no object {name}")))
}

fn write_error(e: write::WriteError) -> ApiError {
    ApiError {
        fields: e.fields,
        ..ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)
    }
}

async fn create(
    Shared(state): Shared<Arc<State>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let json = parse_json(&body)?;
    let fields = json
        .as_object()
        .ok_or_else(|| bad("the body is the record's fields"))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    let id = write::insert(&mut org, index, fields, &mut Journal::new()).map_err(write_error)?;
    Ok(ok(json!({"id": id})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewFile {
    /// Bytes of the file, generated (any size: they are made as they are read).
    size: u64,
    #[serde(default)]
    name: Option<String>,
    /// The record the file is published on.
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    /// Owned by another user and shared with no record: seen by the API user only with
    /// "Query All Files".
    #[serde(default)]
    private: bool,
}

/// POST `/__sim/files`: a new file (its document, first version and links) of `size`
/// generated bytes, as if a user uploaded it.
async fn add_file(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let new: NewFile = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    let name = new
        .name
        .unwrap_or_else(|| format!("File of {} bytes.bin", new.size));
    let mut fields = serde_json::Map::new();
    fields.insert("PathOnClient".into(), json!(name));
    fields.insert("Title".into(), json!(name));
    if let Some(parent) = new.parent_id {
        fields.insert("FirstPublishLocationId".into(), json!(parent));
    }
    let blob = Arc::new(super::blob::Blob::Generated {
        seed: new.seed.unwrap_or(new.size ^ 0x5EED),
        len: new.size,
    });
    let mut org = state.org.write().map_err(|_| poisoned())?;
    if new.private {
        if fields.contains_key("FirstPublishLocationId") {
            return Err(bad(
                "a private file is published on no record: drop parentId",
            ));
        }
        let someone_else = org
            .object_index("User")
            .and_then(|users| {
                org.tables[users]
                    .records
                    .iter()
                    .map(|r| r.id().to_string())
                    .find(|id| *id != org.user_id)
            })
            .ok_or_else(|| bad("the org has no other user to own a private file"))?;
        fields.insert("OwnerId".into(), json!(someone_else));
    }
    let id = insert_version(&mut org, &fields, blob)?;
    let document = super::files::document_of(&org, &id).unwrap_or_default();
    if new.private {
        org.private_documents.insert(document.clone());
    }
    Ok(ok(json!({"id": id, "contentDocumentId": document})))
}

/// POST `/__sim/files/{document}/versions`: a new version of the document, its latest with a
/// few bytes inserted (as an edit leaves a file).
async fn edit_file(
    Shared(state): Shared<Arc<State>>,
    Path(document): Path<String>,
) -> Result<Response> {
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let (latest, name) = super::files::latest_body(&org, &document)
        .ok_or_else(|| bad(format!("no document {document} with a version")))?;
    // The same edit of the same document at the same time: deterministic, as the org is.
    let seed = document.bytes().fold(org.clock.now() as u64, |h, b| {
        h.rotate_left(5) ^ u64::from(b)
    });
    let edited = Arc::new(super::files::edited(
        &mut super::org::Rng::new(seed),
        latest,
    ));
    let mut fields = serde_json::Map::new();
    fields.insert("ContentDocumentId".into(), json!(document));
    fields.insert("PathOnClient".into(), json!(name));
    fields.insert("Title".into(), json!(name));
    let size = edited.len();
    let id = insert_version(&mut org, &fields, edited)?;
    Ok(ok(json!({"id": id, "contentSize": size})))
}

/// A ContentVersion with these fields and this body, as an upload makes one.
fn insert_version(
    org: &mut super::org::Org,
    fields: &serde_json::Map<String, Json>,
    body: Arc<super::blob::Blob>,
) -> Result<String> {
    let index = object(org, "ContentVersion")?;
    write::insert_with_bodies(
        org,
        index,
        fields,
        &[("VersionData", body)],
        &mut Journal::new(),
    )
    .map_err(write_error)
}

async fn edit(
    Shared(state): Shared<Arc<State>>,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let json = parse_json(&body)?;
    let fields = json
        .as_object()
        .ok_or_else(|| bad("the body is the fields to change"))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    write::update(&mut org, index, &id, fields, &mut Journal::new()).map_err(write_error)?;
    Ok(ok(json!({"id": id})))
}

async fn remove(
    Shared(state): Shared<Arc<State>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response> {
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    let mut journal = Journal::new();
    write::delete(&mut org, index, &id, &mut journal).map_err(write_error)?;
    Ok(ok(json!({"id": id, "recordsDeleted": journal.len()})))
}

async fn undelete(
    Shared(state): Shared<Arc<State>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response> {
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    write::undelete(&mut org, index, &id, &mut Journal::new()).map_err(write_error)?;
    Ok(ok(json!({"id": id})))
}

/// Empties the recycle bin, as Salesforce does after 15 days or on emptyRecycleBin(): deleted
/// records are gone for good, and queryAll no longer returns them.
async fn empty_recycle_bin(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let mut purged = 0;
    for table in org.tables.iter_mut() {
        purged += table.purge(|r| r.is_deleted());
    }
    Ok(ok(json!({ "purged": purged })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewField {
    name: String,
    #[serde(rename = "type")]
    field_type: String,
}

/// Adds a custom field to an object; existing records get no value for it.
async fn add_field(
    Shared(state): Shared<Arc<State>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let field: NewField = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    let valid_name = field.name.ends_with("__c")
        && field.name.len() > 3
        && field.name.starts_with(|c: char| c.is_ascii_alphabetic())
        && field
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(bad(
            "a custom field's name is an API name ending in __c, such as Region__c",
        ));
    }
    let field_type = FieldType::from_name(&field.field_type)
        .ok_or_else(|| bad(format!("unknown field type {}", field.field_type)))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    if org.catalog.objects[index].field(&field.name).is_some() {
        return Err(bad(format!("{name} already has a field {}", field.name)));
    }
    org.catalog.objects[index]
        .fields
        .push(FieldDef::custom(&field.name, field_type));
    for record in &mut org.tables[index].records {
        let mut values = record.values().to_vec();
        values.push(if field_type == FieldType::Boolean {
            Value::Bool(false)
        } else {
            Value::Null
        });
        record.set_values(values.into_boxed_slice());
    }
    Ok(ok(json!({"object": name, "field": field.name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewType {
    #[serde(rename = "type")]
    field_type: String,
}

/// Changes a custom text field to another text type (Text to Long Text Area, Phone, Email,
/// URL), as Setup allows without losing data; values stay as they are.
async fn change_field_type(
    Shared(state): Shared<Arc<State>>,
    Path((name, field)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let request: NewType = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    let text = |t: FieldType| {
        matches!(
            t,
            FieldType::String
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    };
    let new_type = FieldType::from_name(&request.field_type)
        .filter(|t| text(*t))
        .ok_or_else(|| bad("a text field changes only to string, textarea, email, phone or url"))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object(&org, &name)?;
    let def = org.catalog.objects[index]
        .fields
        .iter_mut()
        .find(|f| f.name == field && f.name.ends_with("__c"))
        .ok_or_else(|| bad(format!("{name} has no custom field {field}")))?;
    if !text(def.field_type) {
        return Err(bad(format!("{field} is not a text field")));
    }
    def.field_type = new_type;
    if new_type == FieldType::Textarea {
        def.length = def.length.max(32_768);
    }
    Ok(ok(
        json!({"object": name, "field": field, "type": request.field_type}),
    ))
}

async fn expire_sessions(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    let mut sessions = state.sessions.lock().map_err(|_| poisoned())?;
    let expired = sessions.len();
    sessions.clear();
    Ok(ok(json!({"expired": expired})))
}

/// Unknown fields are refused, as for [`ClockChange`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionLifetime {
    /// Calls each session serves before it expires; 0 or null: no limit.
    calls: Option<u32>,
    /// How long a session lives without a call, in seconds (absent: as it is; the default is
    /// Salesforce's two hours).
    timeout_seconds: Option<f64>,
}

async fn session_lifetime(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let request: SessionLifetime = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("{{\"calls\": N, \"timeoutSeconds\": S}}: {e}")))?;
    let calls = request.calls.unwrap_or(0);
    state
        .session_calls
        .store(calls, std::sync::atomic::Ordering::Relaxed);
    let mut timeout = state.session_timeout.lock().map_err(|_| poisoned())?;
    if let Some(seconds) = request.timeout_seconds {
        *timeout = std::time::Duration::try_from_secs_f64(seconds)
            .map_err(|e| bad(format!("timeoutSeconds: {e}")))?;
    }
    Ok(ok(
        json!({"calls": calls, "timeoutSeconds": timeout.as_secs_f64()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Permissions {
    /// "Set Audit Fields upon Record Creation": CreatedDate, CreatedById, LastModifiedDate and
    /// LastModifiedById become settable on create (describe says `createable`).
    set_audit_fields: Option<bool>,
    /// "Query All Files": every file is listed, private ones too, and links need no filter.
    query_all_files: Option<bool>,
}

async fn permissions(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let request: Permissions = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("{{\"setAuditFields\": true}}: {e}")))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    if let Some(on) = request.set_audit_fields {
        org.set_audit_fields(on);
    }
    if let Some(on) = request.query_all_files {
        org.catalog.query_all_files = on;
    }
    Ok(ok(json!({
        "setAuditFields": org.audit_fields_settable(),
        "queryAllFiles": org.catalog.query_all_files,
    })))
}

async fn revoke_refresh_tokens(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    let mut tokens = state.refresh_tokens.lock().map_err(|_| poisoned())?;
    let revoked = tokens.values().filter(|v| **v).count();
    tokens.values_mut().for_each(|v| *v = false);
    drop(tokens);
    let mut sessions = state.sessions.lock().map_err(|_| poisoned())?;
    sessions.retain(|_, s| s.refresh_token.is_none());
    Ok(ok(json!({"revoked": revoked})))
}

/// Unknown fields are refused, as for [`ClockChange`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Usage {
    used: Option<u64>,
    max: Option<u64>,
}

async fn api_usage(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let usage: Usage = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    if let Some(max) = usage.max {
        org.api.max = max;
    }
    if let Some(used) = usage.used {
        org.api.used = used;
    }
    Ok(ok(json!({"used": org.api.used, "max": org.api.max})))
}

async fn set_faults(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let faults: Vec<Fault> =
        serde_json::from_slice(&body).map_err(|e| bad(format!("a list of faults: {e}")))?;
    if faults.iter().any(|f| !(0.0..=1.0).contains(&f.rate)) {
        return Err(bad("a fault's rate is between 0 and 1"));
    }
    let count = faults.len();
    state.faults.lock().map_err(|_| poisoned())?.active = faults;
    Ok(ok(json!({"faults": count})))
}

async fn clear_faults(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    state.faults.lock().map_err(|_| poisoned())?.active.clear();
    Ok(ok(json!({"faults": 0})))
}

async fn delete_org(Shared(state): Shared<Arc<State>>) -> Result<Response> {
    state.org.write().map_err(|_| poisoned())?.gone = true;
    state.sessions.lock().map_err(|_| poisoned())?.clear();
    Ok(ok(json!({"gone": true})))
}
