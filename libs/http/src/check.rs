//! `GET /v1/sessions/{sid}`, and the mapping of answers to HTTP.
//!
//! | answer | status | body |
//! |---|---|---|
//! | live | 200 | `{"status":"live"}` |
//! | revoked | 410 | `{"status":"revoked"}` |
//! | transient | 503 + `Retry-After: 1` | `{"status":"unavailable","reason":…}` |
//! | not a session id | 400 | `{"status":"invalid","reason":…}` |

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use revocation_core::{SessionId, SessionLivenessError};
use serde_json::json;

use crate::HttpState;

pub(crate) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/sessions/{sid}", get(check))
}

async fn check(State(state): State<HttpState>, Path(sid): Path<String>) -> Response {
    match SessionId::new(sid) {
        Ok(sid) => answer_response(&state.liveness.check(&sid).await),
        Err(why) => {
            (StatusCode::BAD_REQUEST, Json(json!({"status": "invalid", "reason": why.to_string()}))).into_response()
        }
    }
}

/// The HTTP response for a check's answer; the one place answers become
/// status codes (verifiers embedding the port can reuse it).
pub fn answer_response(answer: &Result<(), SessionLivenessError>) -> Response {
    match answer {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "live"}))).into_response(),
        Err(SessionLivenessError::Revoked) => (StatusCode::GONE, Json(json!({"status": "revoked"}))).into_response(),
        Err(SessionLivenessError::Transient(reason)) => unavailable(reason),
        Err(other) => unavailable(&other.to_string()),
    }
}

fn unavailable(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}
