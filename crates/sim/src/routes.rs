//! The simulator's routes: every resource it serves, the slashes Salesforce forgives, and the
//! org's own time on every answer.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::server::{ApiError, State};
use super::{
    admin, batch, bulk, composite, files, ingest, metadata, oauth, records, rest, soap, sosl,
    tooling, tree,
};

/// `//services//data/v65.0/` -> `/services/data/v65.0/`; the query is kept as it is.
pub(crate) async fn collapse_slashes(
    mut request: axum::extract::Request,
) -> axum::extract::Request {
    let uri = request.uri();
    if !uri.path().contains("//") {
        return request;
    }
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    let rewritten = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(path_and_query) = rewritten.parse::<axum::http::uri::PathAndQuery>() {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/services/data", get(rest::versions))
        .route("/services/data/", get(rest::versions))
        .route("/services/data/{version}", get(rest::resources))
        .route("/services/data/{version}/", get(rest::resources))
        .route("/services/data/{version}/limits", get(rest::limits))
        .route("/services/data/{version}/limits/", get(rest::limits))
        .route(
            "/services/data/{version}/limits/recordCount",
            get(rest::record_count),
        )
        .route(
            "/services/data/{version}/sobjects",
            get(rest::describe_global),
        )
        .route(
            "/services/data/{version}/sobjects/",
            get(rest::describe_global),
        )
        .route(
            "/services/data/{version}/sobjects/{object}",
            get(rest::object_info).post(records::create).layer(
                axum::extract::DefaultBodyLimit::max(records::CREATE_BODY_LIMIT),
            ),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/",
            get(rest::object_info).post(records::create).layer(
                axum::extract::DefaultBodyLimit::max(records::CREATE_BODY_LIMIT),
            ),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(rest::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe/",
            get(rest::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/updated",
            get(rest::updated),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/updated/",
            get(rest::updated),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/deleted",
            get(rest::deleted),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/deleted/",
            get(rest::deleted),
        )
        .route("/services/data/{version}/search", get(sosl::search))
        .route("/services/data/{version}/search/", get(sosl::search))
        .route("/services/data/{version}/query", get(rest::query))
        .route("/services/data/{version}/query/", get(rest::query))
        .route("/services/data/{version}/queryAll", get(rest::query_all))
        .route("/services/data/{version}/queryAll/", get(rest::query_all))
        .route(
            "/services/data/{version}/query/{locator}",
            get(rest::query_more),
        )
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(rest::query_more),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(records::read)
                .patch(records::update)
                .delete(records::delete),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            axum::routing::patch(records::upsert).get(files::body),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            post(records::collection_create)
                .patch(records::collection_update)
                .delete(records::collection_delete),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}/{field}",
            axum::routing::patch(records::collection_upsert),
        )
        .route(
            "/services/data/{version}/jobs/query",
            post(bulk::create).get(bulk::list),
        )
        .route(
            "/services/data/{version}/jobs/query/{job}",
            get(bulk::info).patch(bulk::abort).delete(bulk::delete),
        )
        .route(
            "/services/data/{version}/jobs/query/{job}/results",
            get(bulk::results),
        )
        .route(
            "/services/data/{version}/composite/batch",
            post(batch::batch),
        )
        .route(
            "/services/data/{version}/composite/batch/",
            post(batch::batch),
        )
        .route(
            "/services/data/{version}/composite/tree/{object}",
            post(tree::tree),
        )
        .route(
            "/services/data/{version}/composite",
            post(composite::composite),
        )
        .route(
            "/services/data/{version}/composite/",
            post(composite::composite),
        )
        .route("/services/Soap/u/{version}", post(soap::partner))
        .route("/services/Soap/m/{version}", post(metadata::metadata))
        .route("/services/Soap/{api}/{version}", post(soap::unserved))
        .route(
            "/services/async/{*rest}",
            axum::routing::any(soap::bulk_v1_unserved),
        )
        .merge(tooling::routes())
        .merge(ingest_routes())
        .merge(oauth::routes())
        .merge(admin::routes())
        .merge(metadata::admin::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!(
                    "HTTP Method '{method}' not allowed. Allowed are HEAD,GET,PATCH,POST,DELETE"
                ),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server_date,
        ))
        .with_state(state)
}

/// Bulk API 2.0 ingest, with and without the trailing slash clients add.
fn ingest_routes() -> Router<Arc<State>> {
    use axum::routing::put;
    let mut router = Router::new();
    for slash in ["", "/"] {
        let base = "/services/data/{version}/jobs/ingest";
        router = router
            .route(
                &format!("{base}{slash}"),
                get(ingest::list).post(ingest::create),
            )
            .route(
                &format!("{base}/{{job}}{slash}"),
                get(ingest::info)
                    .patch(ingest::change)
                    .delete(ingest::delete),
            )
            .route(
                &format!("{base}/{{job}}/batches{slash}"),
                put(ingest::upload)
                    .layer(axum::extract::DefaultBodyLimit::max(ingest::MAX_UPLOAD + 1)),
            )
            .route(
                &format!("{base}/{{job}}/successfulResults{slash}"),
                get(ingest::successful),
            )
            .route(
                &format!("{base}/{{job}}/failedResults{slash}"),
                get(ingest::failed),
            )
            .route(
                &format!("{base}/{{job}}/unprocessedrecords{slash}"),
                get(ingest::unprocessed),
            );
    }
    router
}

/// Every response carries the org's own time in `Date`, as Salesforce's do: clients bound
/// their windows by it, and a simulated clock (fixed, moved by tests) must be the one they
/// see, not the machine's. Answers take `latency_ms` longer, as a distant org's do.
async fn server_date(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(state.latency_ms)).await;
    }
    let now = state.org.read().map(|org| org.clock.now()).ok();
    let mut response = next.run(request).await;
    if let Some(date) = now
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|ts| jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&ts))
        .and_then(|text| text.ok())
        .and_then(|text| HeaderValue::from_str(&text).ok())
    {
        response.headers_mut().insert(header::DATE, date);
    }
    response
}
