//! The org's metadata changed as its admins change it, under `/__sim/metadata/`: a component
//! written (added, or edited with a new `lastModifiedDate`) or deleted. Apex stays the same
//! in the Tooling API. Not Salesforce's API: no session, no API calls counted.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::put;
use serde_json::json;

use super::super::org::{Org, Value, text};
use super::super::server::{ApiError, State, json_response, poisoned};
use super::components::{Component, TYPES};
use super::deploy::Incoming;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/__sim/metadata/{kind}/{*name}",
            put(write_component).delete(delete_component),
        )
        .route("/__sim/metadata-limits", put(set_limits))
}

/// `PUT /__sim/metadata-limits` `{"maxFiles": …, "maxZippedBytes": …}`: the limits later
/// retrieves are held to (Salesforce's are the default).
async fn set_limits(Shared(state): Shared<Arc<State>>, body: Bytes) -> Result<Response> {
    let limits: super::retrieve::Limits = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "the body is {{\"maxFiles\": n, \"maxZippedBytes\": n}}: {e}"
        ))
    })?;
    *state.retrieve_limits.lock().map_err(|_| poisoned())? = limits;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&limits).unwrap_or_default(),
    ))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_SIM_REQUEST", message)
}

/// `PUT /__sim/metadata/{Type}/{fullName}` `{"source": "…"}`: the component's file as it now
/// stands, stamped with the org's time.
async fn write_component(
    Shared(state): Shared<Arc<State>>,
    Path((kind, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let source = json["source"]
        .as_str()
        .ok_or_else(|| bad("the body is {\"source\": \"the component's file\"}"))?
        .to_string();
    let described = TYPES
        .iter()
        .find(|t| t.name == kind && !t.in_folder)
        .ok_or_else(|| {
            bad(format!(
                "{kind} is not a type this org writes components of (foldered types are fixed)"
            ))
        })?;
    let (now, user) = {
        let org = state.org.read().map_err(|_| poisoned())?;
        (org.clock.now(), org.user_id.clone())
    };
    let suffix = described.suffix.unwrap_or_default();
    let incoming = Incoming {
        kind: kind.clone(),
        full_name: name.clone(),
        file_name: format!("{}/{name}.{suffix}", described.directory),
        source,
    };
    let mut components = state.metadata.write().map_err(|_| poisoned())?;
    let mut tooling = state.tooling.write().map_err(|_| poisoned())?;
    let added = write(&mut components, &mut tooling, incoming, now, &user);
    Ok(json_response(
        StatusCode::OK,
        json!({"type": kind, "fullName": name, "added": added}).to_string(),
    ))
}

/// Writes a component as it now stands, stamped `now` (added, or edited in place); Apex goes
/// into the Tooling API too. Whether it was added.
pub(crate) fn write(
    components: &mut Vec<Component>,
    tooling: &mut Org,
    incoming: Incoming,
    now: i64,
    user: &str,
) -> bool {
    if matches!(incoming.kind.as_str(), "ApexClass" | "ApexTrigger") {
        apex_written(
            tooling,
            &incoming.kind,
            &incoming.full_name,
            &incoming.source,
            now,
            user,
        );
    }
    match components
        .iter_mut()
        .find(|c| c.kind == incoming.kind && c.full_name == incoming.full_name)
    {
        Some(component) => {
            component.source = incoming.source;
            component.modified = now;
            false
        }
        None => {
            let id = super::super::ids::record_id("0Md", 900_000 + components.len() as u64);
            components.push(Component {
                kind: incoming.kind,
                full_name: incoming.full_name,
                file_name: incoming.file_name,
                id,
                created: now,
                modified: now,
                source: incoming.source,
            });
            components.sort_by(|a, b| (&a.kind, &a.full_name).cmp(&(&b.kind, &b.full_name)));
            true
        }
    }
}

/// `DELETE /__sim/metadata/{Type}/{fullName}`.
async fn delete_component(
    Shared(state): Shared<Arc<State>>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Response> {
    let mut components = state.metadata.write().map_err(|_| poisoned())?;
    let before = components.len();
    components.retain(|c| !(c.kind == kind && c.full_name == name));
    if components.len() == before {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("the org has no {kind} named {name}"),
        ));
    }
    // An object's fields go with it.
    if kind == "CustomObject" {
        components
            .retain(|c| !(c.kind == "CustomField" && c.full_name.starts_with(&format!("{name}."))));
    }
    if matches!(kind.as_str(), "ApexClass" | "ApexTrigger") {
        let mut tooling = state.tooling.write().map_err(|_| poisoned())?;
        if let Some(index) = tooling.object_index(&kind) {
            let name_slot = tooling.catalog.objects[index].field("Name").map(|(i, _)| i);
            tooling.tables[index].records.retain(|r| {
                !matches!(name_slot.map(|i| &r.values()[i]), Some(Value::Text(n)) if **n == *name)
            });
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"type": kind, "fullName": name, "deleted": true}).to_string(),
    ))
}

/// Keeps the Tooling API's Apex the same as the Metadata API's.
fn apex_written(tooling: &mut Org, kind: &str, name: &str, source: &str, now: i64, user: &str) {
    let Some(index) = tooling.object_index(kind) else {
        return;
    };
    let def = &tooling.catalog.objects[index];
    let slot = |field: &str| def.field(field).map(|(i, _)| i);
    let name_slot = slot("Name");
    let changes: Vec<(Option<usize>, Value)> = vec![
        (slot("Body"), text(source)),
        (
            slot("LengthWithoutComments"),
            Value::Int(source.len() as i64),
        ),
        (slot("LastModifiedDate"), Value::DateTime(now)),
        (slot("LastModifiedById"), text(user)),
        (slot("SystemModstamp"), Value::DateTime(now)),
    ];
    let found = tooling.tables[index].records.iter().position(
        |r| matches!(name_slot.map(|i| &r.values()[i]), Some(Value::Text(n)) if **n == *name),
    );
    match found {
        Some(row) => {
            let mut values = tooling.tables[index].records[row].values().to_vec();
            for (slot, value) in changes {
                if let Some(slot) = slot {
                    values[slot] = value;
                }
            }
            tooling.tables[index].records[row].set_values(values.into_boxed_slice());
        }
        None => {
            tooling.insert_generated(kind, now, |field| match field {
                "Name" => text(name),
                "Body" => text(source),
                "Status" => text("Active"),
                "IsValid" => Value::Bool(true),
                "ApiVersion" => Value::Num(62.0),
                "LengthWithoutComments" => Value::Int(source.len() as i64),
                _ => Value::Null,
            });
        }
    }
}
