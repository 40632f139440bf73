//! The Metadata API (SOAP, `POST /services/Soap/m/{version}`), its read side so far:
//! `describeMetadata` (the types the org has, with their directories and suffixes),
//! `listMetadata` (each component's file properties; foldered types listed per folder, as
//! Salesforce lists them), and `retrieve` with `checkRetrieveStatus` (`retrieve.rs`). Calls
//! are admitted as the partner API's are (`soap::admit_call`); faults are Salesforce's
//! (`sf:INVALID_SESSION_ID`, `sf:INVALID_TYPE`).

pub mod admin;
pub mod components;
pub mod deploy;
pub mod retrieve;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sfsoap::{METADATA_NS, escape};
use sftime as time;

use super::server::State;
use super::soap::{admit_call, fault, xml};
use components::{Component, FOLDER_TYPES, TYPES};

/// The most queries one `listMetadata` call takes.
pub const LIST_QUERY_LIMIT: usize = 3;

pub async fn metadata(
    Shared(state): Shared<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let operations = [
        "describeMetadata",
        "listMetadata",
        "retrieve",
        "checkRetrieveStatus",
        "deploy",
        "checkDeployStatus",
    ];
    let message = match admit_call(&state, &version, &headers, &body, METADATA_NS, &operations) {
        Ok(message) => message,
        Err((code, message)) => return fault(&code, &message),
    };
    let operation = &message.body;
    if let Ok(mut calls) = state.metadata_calls.lock() {
        *calls.entry(operation.name.clone()).or_default() += 1;
    }
    let answer = match operation.name.as_str() {
        "describeMetadata" => Ok(describe()),
        "retrieve" => start_retrieve(&state, operation),
        "checkRetrieveStatus" => check_retrieve(&state, operation),
        "deploy" => start_deploy(&state, operation),
        "checkDeployStatus" => check_deploy(&state, operation),
        _ => {
            let queries: Vec<(String, Option<String>)> = operation
                .children_named("queries")
                .map(|q| {
                    (
                        q.child_text("type").unwrap_or_default().trim().to_string(),
                        q.child_text("folder")
                            .map(|f| f.trim().to_string())
                            .filter(|f| !f.is_empty()),
                    )
                })
                .collect();
            list(&state, &queries)
        }
    };
    match answer {
        Ok(body) => xml(StatusCode::OK, sfsoap::envelope_in(METADATA_NS, "", &body)),
        Err((code, message)) => fault(code, &message),
    }
}

type Answer = Result<String, (&'static str, String)>;

fn unexpected() -> (&'static str, String) {
    (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred.".to_string(),
    )
}

/// Gathers the package at once; its status says so on the first check.
fn start_retrieve(state: &State, operation: &sfsoap::Element) -> Answer {
    // The WSDL names it retrieveRequest; jsforce (and so the official CLI) sends `request`,
    // which Salesforce takes too: the operation's one parameter, whatever its name.
    let Some(request) = operation
        .child("retrieveRequest")
        .or_else(|| operation.children.first())
    else {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            "retrieve needs a retrieveRequest".to_string(),
        ));
    };
    let now = state.org.read().map_err(|_| unexpected())?.clock.now();
    let outcome = {
        let components = state.metadata.read().map_err(|_| unexpected())?;
        let limits = *state.retrieve_limits.lock().map_err(|_| unexpected())?;
        retrieve::build(request, &components, now, limits)
    };
    let id = state
        .retrievals
        .lock()
        .map_err(|_| unexpected())?
        .start(outcome);
    Ok(format!(
        "<retrieveResponse><result><done>false</done><id>{id}</id><state>Queued</state></result></retrieveResponse>"
    ))
}

/// Checks the deploy, and carries it out unless it is check-only or failed; its status says
/// how it went on the first check.
fn start_deploy(state: &State, operation: &sfsoap::Element) -> Answer {
    let options = deploy::DeployOptions::read(operation);
    let (now, user) = {
        let org = state.org.read().map_err(|_| unexpected())?;
        (org.clock.now(), org.user_id.clone())
    };
    let id = state
        .deployments
        .lock()
        .map_err(|_| unexpected())?
        .next_id();
    let mut deployment = deploy::Deployment {
        id: id.clone(),
        options,
        created: now,
        error: None,
        messages: Vec::new(),
    };
    let encoded = operation.child_text("ZipFile").unwrap_or_default();
    let to_write = {
        let components = state.metadata.read().map_err(|_| unexpected())?;
        deploy::check(encoded, options, &components, &mut deployment)
    };
    if !to_write.is_empty() {
        let mut components = state.metadata.write().map_err(|_| unexpected())?;
        let mut tooling = state.tooling.write().map_err(|_| unexpected())?;
        for incoming in to_write {
            admin::write(&mut components, &mut tooling, incoming, now, &user);
        }
    }
    state
        .deployments
        .lock()
        .map_err(|_| unexpected())?
        .keep(deployment);
    Ok(format!(
        "<deployResponse><result><done>false</done><id>{id}</id><state>Queued</state></result></deployResponse>"
    ))
}

fn check_deploy(state: &State, operation: &sfsoap::Element) -> Answer {
    let id = operation
        .child_text("asyncProcessId")
        .unwrap_or_default()
        .trim();
    let details = operation
        .child_text("includeDetails")
        .is_some_and(|v| v.trim() == "true");
    let (user_id, user_name, now) = state
        .org
        .read()
        .map(|org| (org.user_id.clone(), org.user_name(), org.clock.now()))
        .map_err(|_| unexpected())?;
    let deployments = state.deployments.lock().map_err(|_| unexpected())?;
    let deployment = deployments.get(id).ok_or_else(|| {
        (
            "INVALID_ID_FIELD",
            format!("Deploy result has been deleted or never existed: {id}"),
        )
    })?;
    Ok(deploy::status(
        deployment,
        details,
        (&user_id, &user_name),
        now,
    ))
}

fn check_retrieve(state: &State, operation: &sfsoap::Element) -> Answer {
    let id = operation
        .child_text("asyncProcessId")
        .unwrap_or_default()
        .trim();
    let include_zip = operation
        .child_text("includeZip")
        .is_none_or(|v| v.trim() != "false");
    let (user_id, user_name) = state
        .org
        .read()
        .map(|org| (org.user_id.clone(), org.user_name()))
        .map_err(|_| unexpected())?;
    let retrievals = state.retrievals.lock().map_err(|_| unexpected())?;
    let retrieval = retrievals.get(id).ok_or_else(|| {
        (
            "INVALID_ID_FIELD",
            format!("Retrieve result has been deleted or never existed: {id}"),
        )
    })?;
    Ok(retrieve::status(
        retrieval,
        include_zip,
        (&user_id, &user_name),
    ))
}

fn describe() -> String {
    let mut out = String::from("<describeMetadataResponse><result>");
    for kind in TYPES {
        out.push_str("<metadataObjects>");
        for child in kind.children {
            let _ = write!(out, "<childXmlNames>{child}</childXmlNames>");
        }
        let _ = write!(
            out,
            "<directoryName>{}</directoryName><inFolder>{}</inFolder><metaFile>{}</metaFile>",
            kind.directory, kind.in_folder, kind.meta_file
        );
        if let Some(suffix) = kind.suffix {
            let _ = write!(out, "<suffix>{suffix}</suffix>");
        }
        let _ = write!(out, "<xmlName>{}</xmlName></metadataObjects>", kind.name);
    }
    out.push_str("<organizationNamespace></organizationNamespace><partialSaveAllowed>true</partialSaveAllowed><testRequired>false</testRequired></result></describeMetadataResponse>");
    out
}

/// The components each query names. A foldered type is listed one folder at a time: without
/// a folder it lists only what no folder holds (none here), as Salesforce's wildcards do not
/// reach into folders.
fn list(
    state: &State,
    queries: &[(String, Option<String>)],
) -> Result<String, (&'static str, String)> {
    if queries.len() > LIST_QUERY_LIMIT {
        return Err((
            "LIMIT_EXCEEDED",
            format!("listMetadata takes at most {LIST_QUERY_LIMIT} queries per call"),
        ));
    }
    let (user_id, user_name) = state
        .org
        .read()
        .map(|org| (org.user_id.clone(), org.user_name()))
        .map_err(|_| {
            (
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred.".to_string(),
            )
        })?;
    let components = state.metadata.read().map_err(|_| {
        (
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred.".to_string(),
        )
    })?;
    let mut out = String::from("<listMetadataResponse>");
    for (kind, folder) in queries {
        let described = TYPES.iter().find(|t| t.name == kind);
        let known = described.is_some()
            || FOLDER_TYPES.iter().any(|(_, f)| f == kind)
            || TYPES.iter().any(|t| t.children.contains(&kind.as_str()));
        if !known {
            return Err((
                "INVALID_TYPE",
                format!("Unknown type name '{kind}' specified in query"),
            ));
        }
        let in_folder = described.is_some_and(|t| t.in_folder);
        for component in components.iter().filter(|c| c.kind == *kind) {
            let listed = match (in_folder, folder) {
                (true, Some(folder)) => component
                    .full_name
                    .split_once('/')
                    .is_some_and(|(f, _)| f == folder),
                (true, None) => false,
                (false, _) => true,
            };
            if listed {
                file_properties(&mut out, "result", component, (&user_id, &user_name));
            }
        }
    }
    out.push_str("</listMetadataResponse>");
    Ok(out)
}

/// A component's FileProperties in `element` (`result` in a list, `fileProperties` in a
/// retrieve's status), owned by `user` (Id, name).
pub(crate) fn file_properties(
    out: &mut String,
    element: &str,
    component: &Component,
    (user_id, user_name): (&str, &str),
) {
    let date = |ms: i64| {
        let mut text = String::new();
        time::push_datetime(&mut text, ms, "Z");
        text
    };
    let _ = write!(
        out,
        "<{element}><createdById>{user_id}</createdById><createdByName>{}</createdByName><createdDate>{}</createdDate><fileName>{}</fileName><fullName>{}</fullName><id>{}</id><lastModifiedById>{user_id}</lastModifiedById><lastModifiedByName>{}</lastModifiedByName><lastModifiedDate>{}</lastModifiedDate><manageableState>unmanaged</manageableState><type>{}</type></{element}>",
        escape(user_name),
        date(component.created),
        escape(&component.file_name),
        escape(&component.full_name),
        component.id,
        escape(user_name),
        date(component.modified),
        escape(&component.kind),
    );
}
