//! Record writes over REST: single-record create/read/update/delete, upsert on an external id,
//! and sObject Collections (up to 200 records, allOrNone).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::org;
use super::server::{
    ApiError, State, admit, json_body, json_response, poisoned, version, with_limit_info,
};
use super::write::{self, Journal, WriteError};

type Result<T> = std::result::Result<T, ApiError>;

/// Records one collection call may carry.
const COLLECTION_LIMIT: usize = 200;

fn record_error(e: WriteError) -> ApiError {
    let status = match e.code {
        "ENTITY_IS_DELETED" | "NOT_FOUND" => StatusCode::NOT_FOUND,
        "MULTIPLE_CHOICES" => StatusCode::MULTIPLE_CHOICES,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError {
        fields: e.fields,
        ..ApiError::new(status, e.code, e.message)
    }
}

fn object_index(org: &org::Org, name: &str) -> Result<usize> {
    org.object_index(name).ok_or_else(ApiError::not_found)
}

fn as_fields(json: &Json) -> Result<&Map<String, Json>> {
    json.as_object().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from START_ARRAY value",
        )
    })
}

/// The most a request without parts may carry, as Salesforce counts it (50 MB).
const MAX_REQUEST: usize = 52_428_800;

/// The largest file one insert in parts may carry: 2 GB for a ContentVersion, 500 MB for
/// the other objects.
pub(crate) fn max_upload(object: &str) -> u64 {
    match object {
        "ContentVersion" => 2 * 1024 * 1024 * 1024,
        _ => 500 * 1024 * 1024,
    }
}

/// What the create routes accept at most (the handler holds each kind of body to its own
/// limit).
pub(crate) const CREATE_BODY_LIMIT: usize = 2 * 1024 * 1024 * 1024 + 1024 * 1024;

fn request_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "JSON_PARSER_ERROR",
        format!("Maximum size of request is {MAX_REQUEST} bytes"),
    )
}

fn bad_parts(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_MULTIPART_REQUEST",
        message,
    )
}

/// A multipart insert: the record's fields as JSON in the first part (`entity_content`,
/// `entity_document`, …), then a file body in a part named by its field (`VersionData`,
/// `Body`), streamed to a spill file.
async fn read_parts(
    object: &str,
    request: axum::extract::Request,
) -> Result<(Json, Vec<(String, Arc<super::blob::Blob>)>)> {
    use axum::extract::FromRequest as _;
    let mut multipart = axum::extract::Multipart::from_request(request, &())
        .await
        .map_err(|e| bad_parts(e.body_text()))?;
    let mut json = None;
    let mut bodies = Vec::new();
    let broken = |e: axum::extract::multipart::MultipartError| bad_parts(e.body_text());
    while let Some(mut part) = multipart.next_field().await.map_err(broken)? {
        let name = part.name().unwrap_or_default().to_string();
        let is_json = part
            .content_type()
            .is_some_and(|c| c.starts_with("application/json"))
            || name.starts_with("entity_");
        if is_json && json.is_none() {
            let bytes = part.bytes().await.map_err(broken)?;
            json = Some(serde_json::from_slice::<Json>(&bytes).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "JSON_PARSER_ERROR",
                    format!("the part {name} is not JSON: {e}"),
                )
            })?);
            continue;
        }
        let mut spill = super::blob::Blob::spill()
            .map_err(|e| bad_parts(format!("the upload could not be kept: {e}")))?;
        while let Some(piece) = part.chunk().await.map_err(broken)? {
            spill
                .write(&piece)
                .map_err(|e| bad_parts(format!("the upload could not be kept: {e}")))?;
            if spill.len() > max_upload(object) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "STORAGE_LIMIT_EXCEEDED",
                    format!(
                        "The file is over the largest {object} a request may carry ({} bytes)",
                        max_upload(object)
                    ),
                ));
            }
        }
        bodies.push((name, Arc::new(spill.finish())));
    }
    let json = json.ok_or_else(|| bad_parts("no part holds the record's fields as JSON"))?;
    Ok((json, bodies))
}

pub async fn create(
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Result<Response> {
    version(&v)?;
    let headers = request.headers().clone();
    let info = admit(&state, &headers)?;
    let in_parts = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let (json, bodies) = if in_parts {
        read_parts(&object, request).await?
    } else {
        let body = axum::body::to_bytes(request.into_body(), MAX_REQUEST)
            .await
            .map_err(|_| request_too_large())?;
        (json_body(&headers, &body)?, Vec::new())
    };
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    for (name, _) in &bodies {
        let is_body = org.catalog.objects[index]
            .field(name)
            .is_some_and(|(_, f)| f.field_type == super::catalog::FieldType::Base64);
        if !is_body {
            return Err(bad_parts(format!(
                "the part {name} names no body field of {object}"
            )));
        }
    }
    let given: Vec<(&str, Arc<super::blob::Blob>)> = bodies
        .iter()
        .map(|(name, body)| (name.as_str(), body.clone()))
        .collect();
    let id = write::insert_with_bodies(
        &mut org,
        index,
        as_fields(&json)?,
        &given,
        &mut Journal::new(),
    )
    .map_err(record_error)?;
    let body = json!({"id": id, "success": true, "errors": []});
    Ok(with_limit_info(
        json_response(StatusCode::CREATED, body.to_string()),
        &info,
    ))
}

#[derive(Deserialize)]
pub struct Fields {
    fields: Option<String>,
}

pub async fn read(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<Fields>,
) -> Result<Response> {
    let v = version(&v)?;
    let info = admit(&state, &headers)?;
    let org = state.org.read().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    let id = super::ids::normalize(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_ID",
            format!("Provided external ID field does not exist or is not accessible: {id}"),
        )
    })?;
    let row = org.tables[index]
        .find(&id)
        .filter(|&row| org.visible(index, &org.tables[index].records[row]))
        .ok_or_else(ApiError::not_found)?;
    if org.tables[index].records[row].is_deleted() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ));
    }
    let only: Option<Vec<String>> = params
        .fields
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(only) = &only
        && let Some(unknown) = only
            .iter()
            .find(|f| org.catalog.objects[index].field(f).is_none())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            format!(
                "No such column '{unknown}' on entity '{}'",
                org.catalog.objects[index].name
            ),
        ));
    }
    let record = write::record_json(&org, index, row, only.as_deref(), &v);
    Ok(with_limit_info(
        json_response(StatusCode::OK, record.to_string()),
        &info,
    ))
}

fn no_content(info: &str) -> Response {
    with_limit_info(StatusCode::NO_CONTENT.into_response(), info)
}

pub async fn update(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let json = json_body(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    write::update(&mut org, index, &id, as_fields(&json)?, &mut Journal::new())
        .map_err(not_found_when_missing)?;
    Ok(no_content(&info))
}

/// A record that does not exist is a 404 on the single-record resources.
fn not_found_when_missing(e: WriteError) -> ApiError {
    if e.code == "INVALID_CROSS_REFERENCE_KEY" && e.fields.is_empty() {
        ApiError::not_found()
    } else {
        record_error(e)
    }
}

pub async fn delete(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    write::delete(&mut org, index, &id, &mut Journal::new()).map_err(not_found_when_missing)?;
    Ok(no_content(&info))
}

pub async fn upsert(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let json = json_body(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    let (id, created) = write::upsert(
        &mut org,
        index,
        &field,
        &value,
        as_fields(&json)?,
        &mut Journal::new(),
    )
    .map_err(record_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({"id": id, "success": true, "errors": [], "created": created});
    Ok(with_limit_info(
        json_response(status, body.to_string()),
        &info,
    ))
}

/// The body of a collection create/update/upsert.
struct Collection {
    all_or_none: bool,
    records: Vec<Json>,
}

fn collection(headers: &HeaderMap, body: &Bytes) -> Result<Collection> {
    let json = json_body(headers, body)?;
    let records = json
        .get("records")
        .and_then(Json::as_array)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                "The records property is required",
            )
        })?;
    if records.len() > COLLECTION_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok(Collection {
        all_or_none: json
            .get("allOrNone")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        records,
    })
}

/// Applies one write per record; with allOrNone a single failure undoes them all and the other
/// records report ALL_OR_NONE_OPERATION_ROLLED_BACK.
fn apply_all<F>(org: &mut org::Org, count: usize, all_or_none: bool, mut one: F) -> Vec<Json>
where
    F: FnMut(&mut org::Org, usize, &mut Journal) -> std::result::Result<Json, WriteError>,
{
    let mut journal = Journal::new();
    let mut results: Vec<std::result::Result<Json, WriteError>> = Vec::with_capacity(count);
    for i in 0..count {
        let mut own = Journal::new();
        let result = one(org, i, &mut own);
        if result.is_err() {
            write::rollback(org, own);
        } else {
            journal.extend(own);
        }
        results.push(result);
    }
    let failed = results.iter().any(|r| r.is_err());
    if all_or_none && failed {
        write::rollback(org, journal);
    }
    results
        .into_iter()
        .map(|r| match r {
            Ok(ok) if all_or_none && failed => {
                let mut rolled_back = ok;
                if let Some(map) = rolled_back.as_object_mut() {
                    map.insert("success".into(), json!(false));
                    map.insert("errors".into(), json!([{
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                        "fields": [],
                    }]));
                }
                rolled_back
            }
            Ok(ok) => ok,
            Err(e) => json!({"success": false, "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}]}),
        })
        .collect()
}

fn record_type<'a>(
    org: &org::Org,
    record: &'a Json,
) -> std::result::Result<(usize, &'a Map<String, Json>), WriteError> {
    let fields = record.as_object().ok_or_else(|| WriteError {
        code: "INVALID_FIELD",
        message: "a record must be an object".into(),
        fields: vec![],
    })?;
    let name = fields
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str)
        .ok_or_else(|| WriteError {
            code: "INVALID_TYPE",
            message: "Must send a concrete entity type.".into(),
            fields: vec![],
        })?;
    let object = org.object_index(name).ok_or_else(|| WriteError {
        code: "INVALID_TYPE",
        message: format!("sObject type '{name}' is not supported."),
        fields: vec![],
    })?;
    Ok((object, fields))
}

fn without(fields: &Map<String, Json>, key: &str) -> Map<String, Json> {
    fields
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn respond(results: Vec<Json>, info: &str) -> Response {
    with_limit_info(
        json_response(StatusCode::OK, Json::Array(results).to_string()),
        info,
    )
}

pub async fn collection_create(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let request = collection(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let results = apply_all(
        &mut org,
        request.records.len(),
        request.all_or_none,
        |org, i, journal| {
            let (object, fields) = record_type(org, &request.records[i])?;
            if fields.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
                return Err(WriteError {
                    code: "INVALID_FIELD",
                    message: "cannot specify Id in an insert call".into(),
                    fields: vec!["Id".into()],
                });
            }
            write::insert(org, object, fields, journal)
                .map(|id| json!({"id": id, "success": true, "errors": []}))
        },
    );
    Ok(respond(results, &info))
}

pub async fn collection_update(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let request = collection(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let results = apply_all(
        &mut org,
        request.records.len(),
        request.all_or_none,
        |org, i, journal| {
            let (object, fields) = record_type(org, &request.records[i])?;
            let id = fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Id"))
                .and_then(|(_, v)| v.as_str())
                .ok_or_else(|| WriteError {
                    code: "MISSING_ARGUMENT",
                    message: "Id not specified in an update call".into(),
                    fields: vec![],
                })?
                .to_string();
            write::update(org, object, &id, &without(fields, "Id"), journal).map(|()| json!({"id": super::ids::normalize(&id).unwrap_or(id.clone()), "success": true, "errors": []}))
        },
    );
    Ok(respond(results, &info))
}

pub async fn collection_upsert(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let request = collection(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let index = object_index(&org, &object)?;
    let results = apply_all(
        &mut org,
        request.records.len(),
        request.all_or_none,
        |org, i, journal| {
            let (record_object, fields) = record_type(org, &request.records[i])?;
            if record_object != index {
                return Err(WriteError {
                    code: "INVALID_TYPE",
                    message: format!("all records must be of type {object}"),
                    fields: vec![],
                });
            }
            let key = fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&field))
                .and_then(|(_, v)| v.as_str())
                .ok_or_else(|| WriteError {
                    code: "MISSING_ARGUMENT",
                    message: format!("{field} not specified"),
                    fields: vec![field.clone()],
                })?
                .to_string();
            write::upsert(org, index, &field, &key, &without(fields, &field), journal)
            .map(|(id, created)| json!({"id": id, "success": true, "errors": [], "created": created}))
        },
    );
    Ok(respond(results, &info))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteParams {
    ids: Option<String>,
    all_or_none: Option<bool>,
}

pub async fn collection_delete(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    UrlQuery(params): UrlQuery<DeleteParams>,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let ids: Vec<String> = params
        .ids
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_ARGUMENT",
            "ids parameter is required",
        ));
    }
    if ids.len() > COLLECTION_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let results = apply_all(
        &mut org,
        ids.len(),
        params.all_or_none.unwrap_or(false),
        |org, i, journal| {
            let id = super::ids::normalize(&ids[i]).ok_or_else(|| WriteError {
                code: "MALFORMED_ID",
                message: format!("malformed id {}", ids[i]),
                fields: vec![],
            })?;
            let object = org.catalog.by_key_prefix(&id).ok_or_else(|| WriteError {
                code: "INVALID_CROSS_REFERENCE_KEY",
                message: "invalid cross reference id".into(),
                fields: vec![],
            })?;
            write::delete(org, object, &id, journal)
                .map(|()| json!({"id": id, "success": true, "errors": []}))
        },
    );
    Ok(respond(results, &info))
}
