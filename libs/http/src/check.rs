//! `GET /v1/sessions/{sid}` (the session slot), `GET
//! /v1/users/{user}/tokens/{issued_at}` (the epoch slot: `issued_at` is the
//! token's `iat`, Unix seconds), and the mapping of answers to HTTP.
//!
//! | answer | status | body |
//! |---|---|---|
//! | live | 200 | `{"status":"live"}` |
//! | revoked | 410 | `{"status":"revoked"}` |
//! | transient | 503 + `Retry-After: 1` | `{"status":"unavailable","reason":…}` |
//! | not a session id, user id or time | 400 | `{"status":"invalid","reason":…}` |
//! | token checks not served (no token liveness wired) | 404 | `{"status":"disabled",…}` |

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use revocation_core::{SessionId, SessionLivenessError, Timestamp, UserId};
use serde_json::json;

use crate::Shared;

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/v1/sessions/{sid}", get(check)).route("/v1/users/{user}/tokens/{issued_at}", get(check_token))
}

async fn check_token(State(state): State<Shared>, Path((user, issued_at)): Path<(String, String)>) -> Response {
    let Some(tokens) = &state.tokens else {
        let reason = "token checks are not served here (no token liveness is wired)";
        return (StatusCode::NOT_FOUND, Json(json!({"status": "disabled", "reason": reason}))).into_response();
    };
    let user = match UserId::new(user) {
        Ok(user) => user,
        Err(why) => return invalid(&why.to_string()),
    };
    match issued_at.parse::<i64>() {
        Ok(secs) if (0..=i64::from(u32::MAX)).contains(&secs) => {
            answer_response(&tokens.check_token(&user, Timestamp::from_unix_secs(secs)).await)
        }
        _ => invalid("issued_at must be the token's iat: whole seconds since the Unix epoch"),
    }
}

fn invalid(reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"status": "invalid", "reason": reason}))).into_response()
}

async fn check(State(state): State<Shared>, Path(sid): Path<String>) -> Response {
    match SessionId::new(sid) {
        Ok(sid) => answer_response(&state.liveness.check(&sid).await),
        Err(why) => invalid(&why.to_string()),
    }
}

/// The HTTP response for a check's answer; the one place answers become
/// status codes (verifiers embedding the port can reuse it).
pub fn answer_response(answer: &Result<(), SessionLivenessError>) -> Response {
    match answer {
        // The hot answers are constant bytes: no JSON map built per request.
        Ok(()) => (StatusCode::OK, JSON, r#"{"status":"live"}"#).into_response(),
        Err(SessionLivenessError::Revoked) => (StatusCode::GONE, JSON, r#"{"status":"revoked"}"#).into_response(),
        Err(SessionLivenessError::Transient(reason)) => unavailable(reason),
        Err(other) => unavailable(&other.to_string()),
    }
}

const JSON: [(header::HeaderName, &str); 1] = [(header::CONTENT_TYPE, "application/json")];

fn unavailable(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}
