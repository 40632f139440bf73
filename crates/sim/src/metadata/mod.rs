//! The Metadata API (SOAP, `POST /services/Soap/m/{version}`), its read side so far:
//! `describeMetadata` (the types the org has, with their directories and suffixes),
//! `listMetadata` (each component's file properties; foldered types listed per folder, as
//! Salesforce lists them), and `retrieve` with `checkRetrieveStatus` (`retrieve.rs`). Calls carry the session in `SessionHeader` and count as API calls;
//! faults are Salesforce's (`sf:INVALID_SESSION_ID`, `sf:INVALID_TYPE`).

pub mod admin;
pub mod components;
pub mod retrieve;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfsoap::{METADATA_NS, Message, escape};
use sftime as time;

use super::server::{State, admit_token};
use components::{Component, FOLDER_TYPES, TYPES};

/// The most queries one `listMetadata` call takes.
pub const LIST_QUERY_LIMIT: usize = 3;

fn xml(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    response
}

fn fault(code: &str, message: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        sfsoap::fault(code, message),
    )
}

pub async fn metadata(
    Shared(state): Shared<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if super::server::version(&format!("v{version}")).is_err() {
        return fault(
            "UNSUPPORTED_API_VERSION",
            "Invalid Api version specified on URL",
        );
    }
    if !headers.contains_key("SOAPAction") {
        return fault("Client", "No SOAPAction header!");
    }
    let message = match Message::parse(&body) {
        Ok(message) => message,
        Err(why) => return fault("Client", &format!("Unable to parse the request: {why}")),
    };
    let operation = &message.body;
    let known = matches!(
        operation.name.as_str(),
        "describeMetadata" | "listMetadata" | "retrieve" | "checkRetrieveStatus"
    );
    if operation.namespace.as_deref() != Some(METADATA_NS) || !known {
        return fault(
            "Client",
            &format!(
                "No operation available for request {{{}}}{}",
                operation.namespace.as_deref().unwrap_or_default(),
                operation.name
            ),
        );
    }
    let token = message
        .header_text("SessionHeader", "sessionId")
        .unwrap_or_default()
        .trim()
        .to_string();
    if let Err(refused) = admit_token(&state, &token) {
        return match refused.code {
            "INVALID_SESSION_ID" => fault(
                "INVALID_SESSION_ID",
                "Invalid Session ID found in SessionHeader: Illegal Session",
            ),
            code => fault(code, &refused.message),
        };
    }
    let answer = match operation.name.as_str() {
        "describeMetadata" => Ok(describe()),
        "retrieve" => start_retrieve(&state, operation),
        "checkRetrieveStatus" => check_retrieve(&state, operation),
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
    let outcome = {
        let components = state.metadata.read().map_err(|_| unexpected())?;
        retrieve::build(request, &components)
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

fn check_retrieve(state: &State, operation: &sfsoap::Element) -> Answer {
    let id = operation
        .child_text("asyncProcessId")
        .unwrap_or_default()
        .trim();
    let include_zip = operation
        .child_text("includeZip")
        .is_none_or(|v| v.trim() != "false");
    let (user_id, user_name, now) = state
        .org
        .read()
        .map(|org| (org.user_id.clone(), org.user_name(), org.clock.now()))
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
        now,
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
                file_properties(&mut out, component, &user_id, &user_name);
            }
        }
    }
    out.push_str("</listMetadataResponse>");
    Ok(out)
}

fn file_properties(out: &mut String, component: &Component, user_id: &str, user_name: &str) {
    let date = |ms: i64| {
        let mut text = String::new();
        time::push_datetime(&mut text, ms, "Z");
        text
    };
    let _ = write!(
        out,
        "<result><createdById>{user_id}</createdById><createdByName>{}</createdByName><createdDate>{}</createdDate><fileName>{}</fileName><fullName>{}</fullName><id>{}</id><lastModifiedById>{user_id}</lastModifiedById><lastModifiedByName>{}</lastModifiedByName><lastModifiedDate>{}</lastModifiedDate><manageableState>unmanaged</manageableState><type>{}</type></result>",
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
