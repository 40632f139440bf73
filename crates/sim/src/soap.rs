//! The partner SOAP API, `POST /services/Soap/u/{version}`, for the one call REST lacks:
//! `undelete` (records back from the recycle bin with their original Ids, and what their
//! delete took along). Requests carry the session in `SessionHeader` and count as API calls;
//! results come one per Id in the order asked, each with `success` and `errors`; faults are
//! Salesforce's (`sf:INVALID_SESSION_ID`, `sf:EXCEEDED_ID_LIMIT`, `soapenv:Client`). Other
//! partner calls are answered as an unknown operation.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfsoap::{Message, PARTNER_NS, escape};

use super::ids;
use super::org::Value;
use super::server::{State, admit_token};
use super::write::{self, Journal, WriteError};

/// The most Ids one `undelete` call takes.
pub const UNDELETE_LIMIT: usize = 200;

pub(crate) fn xml(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    response
}

pub(crate) fn fault(code: &str, message: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        sfsoap::fault(code, message),
    )
}

/// The SOAP APIs this org does not serve (enterprise `c`, tooling `T`, …): a
/// SOAP fault naming the operation asked for, as an endpoint without that operation answers,
/// so a SOAP client reads an error it understands rather than JSON.
pub async fn unserved(Path((api, _version)): Path<(String, String)>, body: String) -> Response {
    let operation = Message::parse(&body)
        .map(|m| {
            format!(
                "{{{}}}{}",
                m.body.namespace.as_deref().unwrap_or_default(),
                m.body.name
            )
        })
        .unwrap_or_else(|_| "(unreadable request)".to_string());
    fault(
        "Client",
        &format!(
            "No operation available for request {operation}: the simulator serves the partner API (/services/Soap/u/) and the Metadata API (/services/Soap/m/), not /services/Soap/{api}/"
        ),
    )
}

/// Bulk API 1.0 (`/services/async/…`), which this org does not serve: an error in Bulk
/// 1.0's own XML, which its clients parse.
pub async fn bulk_v1_unserved() -> Response {
    xml(
        StatusCode::BAD_REQUEST,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error xmlns=\"http://www.force.com/2009/06/asyncapi/dataload\"><exceptionCode>FeatureNotEnabled</exceptionCode><exceptionMessage>Bulk API 1.0 is not served by the simulator: use Bulk API 2.0 (/services/data/vXX.X/jobs/query)</exceptionMessage></error>".to_string(),
    )
}

/// What every SOAP call passes before its operation runs: the API version in the path, a
/// SOAPAction header, an envelope that parses, an operation this endpoint serves (in
/// `namespace`), and a live session in `SessionHeader`, counted as an API call. The message,
/// or the fault to answer with (its code and message).
pub(crate) fn admit_call(
    state: &State,
    version: &str,
    headers: &HeaderMap,
    body: &str,
    namespace: &str,
    operations: &[&str],
) -> Result<Message, (String, String)> {
    if super::server::version(&format!("v{version}")).is_err() {
        return Err(refusal(
            "UNSUPPORTED_API_VERSION",
            "Invalid Api version specified on URL",
        ));
    }
    if !headers.contains_key("SOAPAction") {
        return Err(refusal("Client", "No SOAPAction header!"));
    }
    let message = Message::parse(body)
        .map_err(|why| refusal("Client", &format!("Unable to parse the request: {why}")))?;
    let operation = &message.body;
    if operation.namespace.as_deref() != Some(namespace)
        || !operations.contains(&operation.name.as_str())
    {
        return Err(refusal(
            "Client",
            &format!(
                "No operation available for request {{{}}}{}",
                operation.namespace.as_deref().unwrap_or_default(),
                operation.name
            ),
        ));
    }
    let token = message
        .header_text("SessionHeader", "sessionId")
        .unwrap_or_default()
        .trim();
    if let Err(refused) = admit_token(state, token) {
        return Err(match refused.code {
            "INVALID_SESSION_ID" => refusal(
                "INVALID_SESSION_ID",
                "Invalid Session ID found in SessionHeader: Illegal Session",
            ),
            code => refusal(code, &refused.message),
        });
    }
    Ok(message)
}

fn refusal(code: &str, message: &str) -> (String, String) {
    (code.to_string(), message.to_string())
}

pub async fn partner(
    Shared(state): Shared<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let message = match admit_call(&state, &version, &headers, &body, PARTNER_NS, &["undelete"]) {
        Ok(message) => message,
        Err((code, message)) => return fault(&code, &message),
    };
    let operation = &message.body;
    let ids: Vec<&str> = operation
        .children_named("ids")
        .map(|e| e.text.trim())
        .collect();
    if ids.len() > UNDELETE_LIMIT {
        return fault(
            "EXCEEDED_ID_LIMIT",
            &format!(
                "record limit reached. cannot submit more than {UNDELETE_LIMIT} records into this call"
            ),
        );
    }
    let Ok(mut org) = state.org.write() else {
        return fault("UNKNOWN_EXCEPTION", "An unexpected error occurred.");
    };
    let mut results = String::new();
    for id in ids {
        let _ = match undelete_one(&mut org, id) {
            Ok(full) => write!(
                results,
                "<result><id>{}</id><success>true</success></result>",
                escape(&full)
            ),
            Err(e) => write!(
                results,
                "<result><errors><message>{}</message><statusCode>{}</statusCode></errors><id xsi:nil=\"true\"/><success>false</success></result>",
                escape(&e.message),
                e.code
            ),
        };
    }
    let limit = format!(
        "<LimitInfoHeader><limitInfo><current>{}</current><limit>{}</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader>",
        org.api.used, org.api.max
    );
    xml(
        StatusCode::OK,
        sfsoap::envelope(
            &limit,
            &format!("<undeleteResponse>{results}</undeleteResponse>"),
        ),
    )
}

/// Undeletes one record by Id (15 or 18 characters); returns its 18-character Id.
fn undelete_one(org: &mut super::org::Org, id: &str) -> Result<String, WriteError> {
    let full = ids::normalize(id).ok_or_else(|| WriteError {
        code: "MALFORMED_ID",
        message: format!("malformed id {id}"),
        fields: Vec::new(),
    })?;
    let gone = || WriteError {
        code: "INVALID_ID_FIELD",
        message: "invalid record id".into(),
        fields: Vec::new(),
    };
    let object = org.catalog.by_key_prefix(&full).ok_or_else(gone)?;
    let index = org.tables[object].find(&full).ok_or_else(gone)?;
    // A detail record comes back only with its master (undelete the master first).
    let def = &org.catalog.objects[object];
    for (position, field) in def.fields.iter().enumerate() {
        if !field.cascade_delete {
            continue;
        }
        if let Value::Text(parent) = &org.tables[object].records[index].values()[position]
            && let Some(table) = org.catalog.by_key_prefix(parent)
            && let Some(at) = org.tables[table].find(parent)
            && org.tables[table].records[at].is_deleted()
        {
            return Err(WriteError {
                code: "ENTITY_IS_DELETED",
                message: format!(
                    "entity is deleted: its {} is in the recycle bin",
                    field.name
                ),
                fields: vec![field.name.clone()],
            });
        }
    }
    write::undelete(org, object, &full, &mut Journal::new())?;
    Ok(full)
}
