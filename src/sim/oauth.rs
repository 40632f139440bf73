//! OAuth 2.0 endpoints of the login host: token (refresh_token grant), revoke, userinfo and the
//! identity URL. Errors are `{"error","error_description"}` with status 400, as documented.

use std::sync::Arc;

use axum::extract::{Form, Query as UrlQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::server::{ApiError, Session, State, json_response, poisoned};

fn oauth_error(error: &str, description: &str) -> Response {
    let mut response = json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "error_description": description}).to_string(),
    );
    response.headers_mut().insert(
        "Cache-Control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn token(
    Shared(state): Shared<Arc<State>>,
    Form(request): Form<TokenRequest>,
) -> Response {
    let Some(grant) = request.grant_type.as_deref() else {
        return oauth_error("invalid_request", "missing required parameter: grant_type");
    };
    match grant {
        "refresh_token" => refresh(&state, &request),
        _ => oauth_error("unsupported_grant_type", "grant type not supported"),
    }
}

fn refresh(state: &State, request: &TokenRequest) -> Response {
    if request.client_id.as_deref() != Some(state.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if request
        .client_secret
        .as_deref()
        .is_some_and(|s| s != state.client_secret)
    {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    let Some(refresh_token) = request.refresh_token.as_deref() else {
        return oauth_error(
            "invalid_request",
            "missing required parameter: refresh_token",
        );
    };
    let valid = state
        .refresh_tokens
        .lock()
        .map(|t| t.get(refresh_token).copied().unwrap_or(false))
        .unwrap_or(false);
    if !valid {
        return oauth_error("invalid_grant", "expired access/refresh token");
    }
    let (org_id, user_id) = match state.org.read() {
        Ok(org) => (org.org_id.clone(), org.user_id.clone()),
        Err(_) => return poisoned().into_response(),
    };
    let access_token = state.mint(&format!("{}!AQ", &org_id[..15]));
    if let Ok(mut sessions) = state.sessions.lock() {
        sessions.insert(
            access_token.clone(),
            Session {
                refresh_token: Some(refresh_token.to_string()),
            },
        );
    }
    let base = state.base_url();
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut response = json_response(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "scope": "api refresh_token id",
            "instance_url": base,
            "id": format!("{base}/id/{org_id}/{user_id}"),
            "token_type": "Bearer",
            "issued_at": issued_at.to_string(),
        })
        .to_string(),
    );
    response.headers_mut().insert(
        "Cache-Control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Deserialize)]
pub struct RevokeRequest {
    token: Option<String>,
}

pub async fn revoke(
    Shared(state): Shared<Arc<State>>,
    Form(request): Form<RevokeRequest>,
) -> Response {
    revoke_token(&state, request.token.as_deref())
}

pub async fn revoke_get(
    Shared(state): Shared<Arc<State>>,
    UrlQuery(request): UrlQuery<RevokeRequest>,
) -> Response {
    revoke_token(&state, request.token.as_deref())
}

/// Revoking a refresh token also ends the sessions minted from it.
fn revoke_token(state: &State, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return oauth_error("unsupported_token_type", "this token type is not supported");
    };
    let was_refresh = state
        .refresh_tokens
        .lock()
        .map(|mut t| {
            t.get_mut(token)
                .map(|valid| std::mem::replace(valid, false))
                .is_some()
        })
        .unwrap_or(false);
    let mut sessions = match state.sessions.lock() {
        Ok(s) => s,
        Err(_) => return poisoned().into_response(),
    };
    if was_refresh {
        sessions.retain(|_, s| s.refresh_token.as_deref() != Some(token));
        return StatusCode::OK.into_response();
    }
    if sessions.remove(token).is_some() {
        return StatusCode::OK.into_response();
    }
    oauth_error("invalid_token", "invalid token")
}

pub async fn userinfo(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    let authorized = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| {
            state
                .sessions
                .lock()
                .map(|s| s.contains_key(t))
                .unwrap_or(false)
        });
    if !authorized {
        return ApiError::new(StatusCode::FORBIDDEN, "Bad_OAuth_Token", "Bad_OAuth_Token")
            .into_response();
    }
    let Ok(org) = state.org.read() else {
        return poisoned().into_response();
    };
    let base = state.base_url();
    let urls = json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "profile": format!("{base}/{}", org.user_id),
    });
    json_response(
        StatusCode::OK,
        json!({
            "sub": format!("{base}/id/{}/{}", org.org_id, org.user_id),
            "user_id": org.user_id,
            "organization_id": org.org_id,
            "preferred_username": org.username,
            "name": "Ada Okafor",
            "email": "ada@acme.example",
            "zoneinfo": "Europe/Paris",
            "urls": urls,
        })
        .to_string(),
    )
}
