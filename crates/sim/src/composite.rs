//! `POST /services/data/vXX.X/composite`: up to 25 subrequests in one call, counted as one
//! call against the daily allocation. Each subrequest is the org's own REST resource (served
//! by the same routes, so it answers exactly as it would alone), run in order; a later one can
//! use an earlier one's answer through `@{referenceId.path}` in its url or body. At most 5 of
//! them may be queries (query, queryAll, their next pages) or sObject Collections.
//!
//! With `allOrNone: false`, a failed subrequest fails alone and those that refer to it are not
//! run (`PROCESSING_HALTED`); with `allOrNone: true`, any failure rolls the whole request back
//! and every other subrequest says so. The rollback restores the records as they were when the
//! request began (a write by another client in between is rolled back with it: the simulator
//! serves one client at a time well).
//!
//! The error codes and messages of a request that breaks the limits (more than 25
//! subrequests, more than 5 queries, a reference id used twice) are the simulator's own
//! wording; Salesforce's are not documented.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::server::{
    ApiError, SUBREQUEST_HEADER, State, admit, json_body, json_response, poisoned, version,
    with_limit_info,
};

type Result<T> = std::result::Result<T, ApiError>;

pub const MAX_SUBREQUESTS: usize = 25;
pub const MAX_QUERIES: usize = 5;

const HALTED: &str = "PROCESSING_HALTED";
const ROLLED_BACK: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
}

struct Subrequest {
    method: Method,
    url: String,
    reference: String,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

/// Query and sObject Collections subrequests are limited apart from the others.
fn is_query_or_collection(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    let mut segments = path.trim_end_matches('/').split('/').skip(4);
    matches!(
        (segments.next(), segments.next()),
        (Some("query" | "queryAll"), _) | (Some("composite"), Some("sobjects"))
    )
}

/// A subrequest's `method`: one a REST resource answers to.
pub(crate) fn method(item: &Value, which: &str) -> Result<Method> {
    match item.get("method").and_then(Value::as_str) {
        Some(m @ ("GET" | "POST" | "PATCH" | "PUT" | "DELETE" | "HEAD")) => {
            Method::from_bytes(m.as_bytes()).map_err(|_| invalid("bad method"))
        }
        _ => Err(invalid(format!(
            "{which}: method must be one of GET, POST, PATCH, PUT, DELETE, HEAD"
        ))),
    }
}

fn parse(body: &Value) -> Result<(bool, Vec<Subrequest>)> {
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(invalid("allOrNone must be a boolean")),
    };
    let Some(Value::Array(items)) = body.get("compositeRequest") else {
        return Err(invalid(
            "compositeRequest is required: a list of subrequests",
        ));
    };
    if items.is_empty() {
        return Err(invalid("compositeRequest holds no subrequest"));
    }
    if items.len() > MAX_SUBREQUESTS {
        return Err(invalid(format!(
            "compositeRequest holds {} subrequests; at most {MAX_SUBREQUESTS} are allowed",
            items.len()
        )));
    }
    let mut subrequests = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let text = |key: &str| item.get(key).and_then(Value::as_str);
        let method = method(item, &format!("subrequest {n}"))?;
        let url = text("url")
            .filter(|u| u.starts_with("/services/data/v"))
            .ok_or_else(|| {
                invalid(format!(
                    "subrequest {n}: url must be a resource under /services/data/vXX.X/"
                ))
            })?;
        let path = url.split('?').next().unwrap_or(url);
        if path.trim_end_matches('/').ends_with("/composite")
            || path.contains("/composite/batch")
            || path.contains("/composite/tree")
        {
            return Err(invalid(format!(
                "subrequest {n}: composite, batch and tree resources cannot be nested"
            )));
        }
        let reference = text("referenceId")
            .filter(|r| {
                r.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .ok_or_else(|| {
                invalid(format!(
                    "subrequest {n}: referenceId is required: letters, digits and underscores, starting with a letter"
                ))
            })?;
        if subrequests
            .iter()
            .any(|s: &Subrequest| s.reference == reference)
        {
            return Err(invalid(format!(
                "subrequest {n}: referenceId {reference} is used twice"
            )));
        }
        let headers = match item.get("httpHeaders") {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        subrequests.push(Subrequest {
            method,
            url: url.to_string(),
            reference: reference.to_string(),
            body: item.get("body").cloned().filter(|b| !b.is_null()),
            headers,
        });
    }
    let queries = subrequests
        .iter()
        .filter(|s| is_query_or_collection(&s.url))
        .count();
    if queries > MAX_QUERIES {
        return Err(invalid(format!(
            "compositeRequest holds {queries} query or sObject Collections subrequests; at most {MAX_QUERIES} are allowed"
        )));
    }
    Ok((all_or_none, subrequests))
}

/// `ref.path` in an earlier answer: `id`, `records[0].Id`, `compositeResponse...`.
fn lookup<'a>(answers: &'a HashMap<String, Value>, expression: &str) -> Option<&'a Value> {
    let mut parts = expression.split('.');
    let mut node = answers.get(parts.next()?)?;
    for part in parts {
        let (key, indexes) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            node = node.get(key)?;
        }
        for index in indexes.split('[').skip(1) {
            node = node.get(index.strip_suffix(']')?.parse::<usize>().ok()?)?;
        }
    }
    Some(node)
}

/// The references in a text replaced by their values; Err names the first that has none.
fn substitute(text: &str, answers: &HashMap<String, Value>) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let expression = &rest[start + 2..start + len];
        let value = lookup(answers, expression).ok_or_else(|| expression.to_string())?;
        out.push_str(&rest[..start]);
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute_value(
    value: &Value,
    answers: &HashMap<String, Value>,
) -> std::result::Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, answers)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, answers))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_value(v, answers)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn error_body(code: &str, message: &str) -> Value {
    json!([{ "errorCode": code, "message": message }])
}

fn result(reference: &str, status: u16, body: Value, headers: Value) -> Value {
    json!({
        "body": body,
        "httpHeaders": headers,
        "httpStatusCode": status,
        "referenceId": reference,
    })
}

/// A subrequest's answer.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
}

/// Sends one subrequest through the org's own routes, marked as part of the call that carries
/// it (so it is not admitted and counted again). None when the url is not a valid URI.
pub(crate) async fn send(
    state: &State,
    router: &axum::Router,
    authorization: Option<&HeaderValue>,
    method: &Method,
    url: &str,
    body: Option<&Value>,
    headers: &[(String, String)],
) -> Result<Option<Answer>> {
    let mut request = Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(auth) = authorization {
        request = request.header(header::AUTHORIZATION, auth.clone());
    }
    request = request.header(
        SUBREQUEST_HEADER,
        HeaderValue::from_str(&state.subrequest_key).map_err(|_| poisoned())?,
    );
    let request = match body {
        Some(json) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_string())),
        None => request.body(Body::empty()),
    };
    let Ok(request) = request else {
        return Ok(None);
    };
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|_| poisoned())?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .map_err(|_| poisoned())?;
    let body = match bytes.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    };
    Ok(Some(Answer {
        status,
        body,
        location,
    }))
}

pub async fn composite(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let (all_or_none, subrequests) = parse(&json_body(&headers, &body)?)?;
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let router = super::routes::router(state.clone());
    let saved = match all_or_none {
        true => Some(state.org.read().map_err(|_| poisoned())?.tables.clone()),
        false => None,
    };

    let mut answers: HashMap<String, Value> = HashMap::new();
    let mut results: Vec<Value> = Vec::with_capacity(subrequests.len());
    let mut failed = false;
    for sub in &subrequests {
        if all_or_none && failed {
            results.push(result(
                &sub.reference,
                400,
                error_body(HALTED, ROLLED_BACK),
                json!({}),
            ));
            continue;
        }
        let prepared = substitute(&sub.url, &answers).and_then(|url| {
            let body = sub
                .body
                .as_ref()
                .map(|b| substitute_value(b, &answers))
                .transpose()?;
            Ok((url, body))
        });
        let (url, sub_body) = match prepared {
            Ok(prepared) => prepared,
            Err(expression) => {
                failed = true;
                let reference = expression.split('.').next().unwrap_or_default();
                results.push(result(
                    &sub.reference,
                    400,
                    error_body(
                        HALTED,
                        &format!(
                            "Invalid reference specified. No value for {expression} found in {reference}. Provided referenceId ('{reference}') must start with a letter, may contain only letters, digits and underscores, and must refer to an earlier subrequest that succeeded."
                        ),
                    ),
                    json!({}),
                ));
                continue;
            }
        };
        let Some(Answer {
            status,
            body: answer,
            location,
        }) = send(
            &state,
            &router,
            authorization.as_ref(),
            &sub.method,
            &url,
            sub_body.as_ref(),
            &sub.headers,
        )
        .await?
        else {
            failed = true;
            results.push(result(
                &sub.reference,
                400,
                error_body("MALFORMED_URL", &format!("The url {url} is not valid")),
                json!({}),
            ));
            continue;
        };
        // A created record's answer names where it lives, as Salesforce's composite answers do.
        let location = location.or_else(|| {
            let id = answer["id"].as_str().filter(|_| status == 201)?;
            let path = url.split('?').next()?.trim_end_matches('/');
            path.rsplit_once("/sobjects/")
                .filter(|(_, object)| !object.contains('/'))
                .map(|_| format!("{path}/{id}"))
        });
        let headers = match location {
            Some(location) => json!({ "Location": location }),
            None => json!({}),
        };
        if status >= 400 {
            failed = true;
        } else {
            answers.insert(sub.reference.clone(), answer.clone());
        }
        results.push(result(&sub.reference, status, answer, headers));
    }
    if let (true, Some(tables)) = (failed, saved) {
        state.org.write().map_err(|_| poisoned())?.tables = tables;
        for item in &mut results {
            if item["httpStatusCode"].as_u64().is_some_and(|s| s < 400) {
                item["httpStatusCode"] = json!(400);
                item["body"] = error_body(HALTED, ROLLED_BACK);
                item["httpHeaders"] = json!({});
            }
        }
    }
    Ok(with_limit_info(
        json_response(
            StatusCode::OK,
            json!({ "compositeResponse": results }).to_string(),
        ),
        &info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_reach_into_earlier_answers() {
        let mut answers = HashMap::new();
        answers.insert(
            "newAccount".to_string(),
            json!({"id": "001A", "success": true}),
        );
        answers.insert(
            "found".to_string(),
            json!({"records": [{"Id": "003B", "Name": "Ada"}]}),
        );
        assert_eq!(
            substitute("/sobjects/Account/@{newAccount.id}", &answers),
            Ok("/sobjects/Account/001A".to_string())
        );
        assert_eq!(
            substitute("@{found.records[0].Id}-@{found.records[0].Name}", &answers),
            Ok("003B-Ada".to_string())
        );
        assert_eq!(
            substitute("@{missing.id}", &answers),
            Err("missing.id".to_string())
        );
    }

    #[test]
    fn queries_and_collections_are_counted_apart() {
        assert!(is_query_or_collection(
            "/services/data/v62.0/query?q=SELECT+Id+FROM+Account"
        ));
        assert!(is_query_or_collection(
            "/services/data/v62.0/queryAll/01gX-2000"
        ));
        assert!(is_query_or_collection(
            "/services/data/v62.0/composite/sobjects"
        ));
        assert!(!is_query_or_collection(
            "/services/data/v62.0/sobjects/Account/001A"
        ));
    }
}
