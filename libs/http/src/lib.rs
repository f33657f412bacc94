//! The projection over HTTP: the check API, lag health, probes, metrics and
//! the admin rebuild, as one axum [`Router`] that a verifier can merge into
//! its own or that the projector serves alone.
//!
//! # Layout
//!
//! - `check`: `GET /v1/sessions/{sid}` and the one place that maps the
//!   port's answers to HTTP status codes.
//! - `health`: `GET /health/lag`, `/livez`, `/readyz`; the [`LagReport`]
//!   and the [`Health`] trait that sources of it implement.
//! - `metrics`: `GET /metrics` in Prometheus text.
//! - `admin`: `POST /admin/rebuild` (off unless a bearer token is set).
//! - `peer_snapshot`: `GET /admin/snapshot`, the live map's snapshot
//!   streamed to a new replica (behind the admin token; Live replicas only).
//!
//! Every route runs behind a timeout, a body size limit and a concurrency
//! limit that sheds load with `503` rather than queueing without bound.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use revocation_core::{FreshnessConfig, ProjectedLiveness, Projection};
//! use revocation_http::{HttpState, app};
//!
//! let liveness = Arc::new(ProjectedLiveness::builder(Arc::new(Projection::new(FreshnessConfig::default()))).build());
//! let router: axum::Router = app(HttpState::new(liveness.clone(), liveness));
//! ```
#![forbid(unsafe_code)]

mod admin;
mod check;
mod health;
mod metrics;
mod peer_snapshot;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use revocation_core::{SessionLiveness, TokenLiveness};
use tower::ServiceBuilder;

pub use admin::{AdminConfig, AdminTokenTooShort, Rebuild};
pub use check::answer_response;
pub use health::{
    CheckCount, FallbackReport, FeedErrorReport, Health, LagReport, PartitionLag, ServingState, SnapshotReport,
    StartReport,
};
pub use metrics::{export as export_metrics, prometheus};
pub use peer_snapshot::SnapshotSource;

/// The routes' state: shared, so a request clones one pointer (not the
/// state's Arcs, admin token and hooks).
pub(crate) type Shared = Arc<HttpState>;

/// What the routes need.
#[derive(Clone)]
pub struct HttpState {
    /// Answers checks.
    pub liveness: Arc<dyn SessionLiveness>,
    /// Answers token checks (the epoch slot), when wired.
    pub tokens: Option<Arc<dyn TokenLiveness>>,
    /// Reports freshness and counts.
    pub health: Arc<dyn Health>,
    /// The admin rebuild, when enabled.
    pub admin: Option<AdminConfig>,
    /// Request limits.
    pub limits: Limits,
    /// Called before each `/metrics` scrape to write other components'
    /// counters into the registry (the forward-auth endpoint's).
    pub scrape_hooks: Vec<Arc<dyn Fn() + Send + Sync>>,
}

impl HttpState {
    /// Routes over `liveness`, reporting health from `health`; admin off.
    pub fn new(liveness: Arc<dyn SessionLiveness>, health: Arc<dyn Health>) -> Self {
        Self { liveness, tokens: None, health, admin: None, limits: Limits::default(), scrape_hooks: Vec::new() }
    }

    /// Serves `GET /v1/users/{user}/tokens/{issued_at}` from `tokens`.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenLiveness>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Enables `POST /admin/rebuild`.
    pub fn with_admin(mut self, admin: AdminConfig) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Runs `hook` before each `/metrics` scrape.
    pub fn with_scrape_hook(mut self, hook: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.scrape_hooks.push(hook);
        self
    }

    /// Sets the request limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request taking longer is answered `503`. Default: 2 s.
    pub request_timeout: Duration,
    /// Requests in flight at once; more are shed with `503`. Default: 1024.
    pub max_in_flight: usize,
    /// Largest request body accepted. Default: 1 KiB (no route takes a body).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { request_timeout: Duration::from_secs(2), max_in_flight: 1024, max_body_bytes: 1024 }
    }
}

/// The whole HTTP surface: check API, health, metrics, admin.
pub fn app(state: HttpState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] plus `extra` routes (the forward-auth endpoint), under the same
/// timeout and concurrency limit but no body limit: gateways forward the
/// original request's `Content-Length` without its body.
pub fn app_with(state: HttpState, extra: Router) -> Router {
    let limits = state.limits;
    let router = Router::new()
        .merge(check::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(admin::routes())
        .merge(peer_snapshot::routes())
        .with_state(Arc::new(state))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limits.max_body_bytes));
    with_limits(router.merge(extra), limits)
}

/// Only `/livez`, `/readyz`, `/health/lag` and `/metrics`: what a verifier
/// merges into its own router.
pub fn health_router(state: HttpState) -> Router {
    let limits = state.limits;
    let router = Router::new().merge(health::routes()).merge(metrics::routes()).with_state(Arc::new(state));
    with_limits(router.layer(tower_http::limit::RequestBodyLimitLayer::new(limits.max_body_bytes)), limits)
}

fn with_limits(router: Router, limits: Limits) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .concurrency_limit(limits.max_in_flight)
            .timeout(limits.request_timeout),
    )
}

async fn overloaded(error: tower::BoxError) -> Response {
    let (status, reason) = if error.is::<tower::timeout::error::Elapsed>() {
        (StatusCode::SERVICE_UNAVAILABLE, "request timed out")
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        (StatusCode::SERVICE_UNAVAILABLE, "too many requests in flight")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    (
        status,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(serde_json::json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}
