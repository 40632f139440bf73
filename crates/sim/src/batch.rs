//! `POST /composite/batch`: up to 25 independent subrequests in one call, counted as one.
//! Each runs on its own (no references between them, no shared rollback) through the org's own
//! routes; `url` is relative to `/services/data/` (`v62.0/sobjects/Account/001…`), `richInput`
//! is the body. With `haltOnError`, the subrequests after the first failure are not run and
//! answer 412 `BATCH_PROCESSING_HALTED`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::composite::{Answer, MAX_SUBREQUESTS, method, send};
use super::server::{ApiError, State, admit, json_body, json_response, version, with_limit_info};

type Result<T> = std::result::Result<T, ApiError>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
}

struct Subrequest {
    method: Method,
    url: String,
    body: Option<Value>,
}

fn parse(body: &Value) -> Result<(bool, Vec<Subrequest>)> {
    let halt = match body.get("haltOnError") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(invalid("haltOnError must be a boolean")),
    };
    let Some(Value::Array(items)) = body.get("batchRequests") else {
        return Err(invalid("batchRequests is required: a list of subrequests"));
    };
    if items.is_empty() || items.len() > MAX_SUBREQUESTS {
        return Err(invalid(format!(
            "batchRequests holds {} subrequests; a batch takes 1 to {MAX_SUBREQUESTS}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let method = method(item, &format!("batch subrequest {n}"))?;
            let url = item
                .get("url")
                .and_then(Value::as_str)
                .map(|u| u.trim_start_matches('/'))
                .map(|u| u.strip_prefix("services/data/").unwrap_or(u))
                .filter(|u| u.starts_with('v'))
                .ok_or_else(|| {
                    invalid(format!(
                        "batch subrequest {n}: url must be a resource such as vXX.X/sobjects/Account"
                    ))
                })?;
            let path = url.split('?').next().unwrap_or(url);
            if path.contains("/composite") {
                return Err(invalid(format!(
                    "batch subrequest {n}: composite resources cannot be nested in a batch"
                )));
            }
            Ok(Subrequest {
                method,
                url: format!("/services/data/{url}"),
                body: item.get("richInput").cloned().filter(|b| !b.is_null()),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|subrequests| (halt, subrequests))
}

pub async fn batch(
    Shared(state): Shared<Arc<State>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    let (halt, subrequests) = parse(&json_body(&headers, &body)?)?;
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let router = super::routes::router(state.clone());
    let mut results = Vec::with_capacity(subrequests.len());
    let mut failed = false;
    for sub in &subrequests {
        if halt && failed {
            results.push(json!({
                "statusCode": 412,
                "result": [{"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}],
            }));
            continue;
        }
        let answer = send(
            &state,
            &router,
            authorization.as_ref(),
            &sub.method,
            &sub.url,
            sub.body.as_ref(),
            &[],
        )
        .await?;
        let Answer { status, body, .. } = answer.unwrap_or(Answer {
            status: 400,
            body: json!([{"errorCode": "MALFORMED_URL", "message": format!("The url {} is not valid", sub.url)}]),
            location: None,
        });
        failed |= status >= 400;
        results.push(json!({"statusCode": status, "result": body}));
    }
    let body = json!({"hasErrors": failed, "results": results});
    Ok(with_limit_info(
        json_response(StatusCode::OK, body.to_string()),
        &info,
    ))
}
