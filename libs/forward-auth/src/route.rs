//! The HTTP face: the route gateways call, and the one place a decision
//! becomes a status. 2xx passes; 401 refuses (nginx, Caddy, Traefik and
//! Envoy hand it to the client); 503 with `Retry-After` when unproven
//! (nginx needs an `error_page` to keep it a 503: deploy/nginx).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

use crate::{Decision, ForwardAuth, Refusal};

impl ForwardAuth {
    /// The route: `path` and every path below it, any method (Envoy's
    /// ext_authz appends the original path; Traefik and Caddy send GET;
    /// nginx sends the subrequest's method).
    pub fn router(self: &Arc<Self>) -> Router {
        let path = self.config.path.clone();
        Router::new()
            .route(&path, any(handle))
            // Envoy asks `/v1/forward-auth/` for a request of `/`.
            .route(&format!("{path}/"), any(handle))
            .route(&format!("{path}/{{*rest}}"), any(handle))
            .with_state(self.clone())
    }
}

async fn handle(State(auth): State<Arc<ForwardAuth>>, headers: HeaderMap) -> Response {
    let decision = auth.decide(&headers).await;
    decision_response(&auth, decision)
}

fn decision_response(auth: &ForwardAuth, decision: Decision) -> Response {
    match decision {
        Decision::Allow(token) => {
            let mut response = StatusCode::OK.into_response();
            let out = response.headers_mut();
            // Always sent, empty when the token has no such claim: gateways
            // that copy a header the answer lacks may otherwise pass the
            // client's own value on, or a placeholder (Caddy before 2.9).
            let empty = HeaderValue::from_static("");
            if let Some(name) = &auth.config.user_header {
                out.insert(name.clone(), token.user_header.clone().unwrap_or_else(|| empty.clone()));
            }
            if let Some(name) = &auth.config.session_header {
                out.insert(name.clone(), token.session_header.clone().unwrap_or(empty));
            }
            response
        }
        Decision::Refuse(Refusal::Missing) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            axum::Json(json!({"status": "unauthenticated", "reason": "no bearer token"})),
        )
            .into_response(),
        Decision::Refuse(Refusal::Invalid(reason)) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""))],
            axum::Json(json!({"status": "denied", "reason": reason})),
        )
            .into_response(),
        Decision::Refuse(Refusal::Unavailable(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            axum::Json(json!({"status": "unavailable", "reason": reason})),
        )
            .into_response(),
    }
}
