//! `POST /composite/tree/{Object}`: record trees created in one call, as the official CLI's
//! `data import tree` sends them. Each record carries `attributes.type` and a unique
//! `attributes.referenceId`; a child relationship's name (`Contacts`) holds `{records: […]}`
//! whose lookup to the parent is filled in. Up to 200 records in all, five types, five levels.
//! Records are created level by level; the first failure undoes them all and is the only result
//! (`hasErrors: true`, HTTP 400), as Salesforce documents. One call in all.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value as Json, json};

use super::org::Org;
use super::server::{
    ApiError, State, admit, json_body, json_response, poisoned, version, with_limit_info,
};
use super::write::{self, Journal, WriteError};

type Result<T> = std::result::Result<T, ApiError>;

const MAX_RECORDS: usize = 200;
const MAX_TYPES: usize = 5;
const MAX_DEPTH: usize = 5;

/// One record of a tree, flattened: its fields, and where its parent is in the list.
struct Node {
    object: usize,
    reference: String,
    fields: Map<String, Json>,
    depth: usize,
    /// (index of the parent node, the lookup field to fill with the parent's Id).
    parent: Option<(usize, String)>,
}

pub async fn tree(
    Shared(state): Shared<Arc<State>>,
    Path((v, object)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let json = json_body(&headers, &body)?;
    let mut org = state.org.write().map_err(|_| poisoned())?;
    let root = org.object_index(&object).ok_or_else(ApiError::not_found)?;
    let roots = json
        .get("records")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid("The request body needs a records list"))?;
    let mut nodes = Vec::new();
    for record in roots {
        if let Err(e) = flatten(&org, record, Some(root), 1, None, &mut nodes) {
            return Ok(failed(e, &info));
        }
    }
    if let Err(e) = check_shape(&nodes) {
        return Ok(failed(e, &info));
    }
    // Roots first, then each level below: a child's lookup needs its parent's new Id.
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| nodes[i].depth);
    let mut ids: Vec<Option<String>> = vec![None; nodes.len()];
    let mut journal = Journal::new();
    for i in order {
        let node = &nodes[i];
        let mut fields = node.fields.clone();
        if let Some((parent, field)) = &node.parent {
            let parent_id = ids[*parent].clone().unwrap_or_default();
            fields.insert(field.clone(), Json::String(parent_id));
        }
        match write::insert(&mut org, node.object, &fields, &mut journal) {
            Ok(id) => ids[i] = Some(id),
            Err(e) => {
                write::rollback(&mut org, journal);
                return Ok(failed((node.reference.clone(), e), &info));
            }
        }
    }
    let mut created: Vec<(usize, &Node)> = nodes.iter().enumerate().collect();
    created.sort_by_key(|(_, node)| node.depth);
    let results: Vec<Json> = created
        .iter()
        .map(|(i, node)| json!({"referenceId": node.reference, "id": ids[*i]}))
        .collect();
    let body = json!({"hasErrors": false, "results": results});
    Ok(with_limit_info(
        json_response(StatusCode::CREATED, body.to_string()),
        &info,
    ))
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
}

/// The one result of a failed tree: the record that failed and why.
fn failed((reference, e): (String, WriteError), info: &str) -> Response {
    let body = json!({
        "hasErrors": true,
        "results": [{
            "referenceId": reference,
            "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}],
        }],
    });
    with_limit_info(
        json_response(StatusCode::BAD_REQUEST, body.to_string()),
        info,
    )
}

fn error(code: &'static str, message: String) -> WriteError {
    WriteError {
        code,
        message,
        fields: Vec::new(),
    }
}

/// Adds `record` and its children to `nodes`. `expected` is the type its place demands.
fn flatten(
    org: &Org,
    record: &Json,
    expected: Option<usize>,
    depth: usize,
    parent: Option<(usize, String)>,
    nodes: &mut Vec<Node>,
) -> std::result::Result<(), (String, WriteError)> {
    let fields = record.as_object().ok_or_else(|| {
        (
            String::new(),
            error("INVALID_INPUT", "A record must be a JSON object".into()),
        )
    })?;
    let attributes = fields.get("attributes").and_then(Json::as_object);
    let reference = attributes
        .and_then(|a| a.get("referenceId"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    if reference.is_empty() {
        return Err((
            reference,
            error(
                "INVALID_INPUT",
                "Include a reference ID for each record in the request.".into(),
            ),
        ));
    }
    let type_name = attributes
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    let object = org.object_index(type_name).ok_or_else(|| {
        (
            reference.clone(),
            error(
                "INVALID_TYPE",
                format!("sObject type '{type_name}' is not supported."),
            ),
        )
    })?;
    if expected.is_some_and(|e| e != object) {
        return Err((
            reference,
            error(
                "INVALID_TYPE",
                format!(
                    "The record's type {type_name} is not the type its place in the tree needs"
                ),
            ),
        ));
    }
    let index = nodes.len();
    let mut own = Map::new();
    let mut children = Vec::new();
    for (key, value) in fields {
        if key == "attributes" {
            continue;
        }
        match org.catalog.child_relationship(object, key) {
            Some((child, field, _)) if value.is_object() => children.push((child, field, value)),
            _ => {
                own.insert(key.clone(), value.clone());
            }
        }
    }
    nodes.push(Node {
        object,
        reference,
        fields: own,
        depth,
        parent,
    });
    for (child, field, value) in children {
        let lookup = org.catalog.objects[child].fields[field].name.clone();
        let records = value.get("records").and_then(Json::as_array);
        for record in records.into_iter().flatten() {
            flatten(
                org,
                record,
                Some(child),
                depth + 1,
                Some((index, lookup.clone())),
                nodes,
            )?;
        }
    }
    Ok(())
}

/// The documented limits, and reference Ids that must be unique.
fn check_shape(nodes: &[Node]) -> std::result::Result<(), (String, WriteError)> {
    let first = || {
        nodes
            .first()
            .map(|n| n.reference.clone())
            .unwrap_or_default()
    };
    if nodes.len() > MAX_RECORDS {
        return Err((
            first(),
            error(
                "INVALID_INPUT",
                format!(
                    "The request has {} records; a tree request takes at most {MAX_RECORDS}",
                    nodes.len()
                ),
            ),
        ));
    }
    let mut types: Vec<usize> = nodes.iter().map(|n| n.object).collect();
    types.sort_unstable();
    types.dedup();
    if types.len() > MAX_TYPES {
        return Err((
            first(),
            error(
                "INVALID_INPUT",
                format!(
                    "The request has records of {} types; a tree request takes at most {MAX_TYPES}",
                    types.len()
                ),
            ),
        ));
    }
    if let Some(deep) = nodes.iter().find(|n| n.depth > MAX_DEPTH) {
        return Err((
            deep.reference.clone(),
            error(
                "INVALID_INPUT",
                format!("A tree request is at most {MAX_DEPTH} levels deep"),
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for node in nodes {
        if !seen.insert(node.reference.as_str()) {
            return Err((
                node.reference.clone(),
                error(
                    "INVALID_INPUT",
                    "Duplicate ReferenceId provided in the request.".into(),
                ),
            ));
        }
    }
    Ok(())
}
