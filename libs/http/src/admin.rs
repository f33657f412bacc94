//! `POST /admin/rebuild`: replay the topic into a fresh projection and swap
//! it in. Off unless a bearer token is configured; the rebuild runs in the
//! background and the call answers `202` at once.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use revocation_core::RebuildReport;
use serde_json::json;

use crate::Shared;

/// Something that can rebuild the projection (the embedding handle).
#[async_trait]
pub trait Rebuild: Send + Sync + 'static {
    /// Whether a rebuild is under way.
    fn busy(&self) -> bool;
    /// Runs one rebuild to its end; the error says why it failed.
    async fn rebuild(&self) -> Result<RebuildReport, Box<dyn std::error::Error + Send + Sync>>;
}

/// How the admin route is guarded, and what it calls. Built only through
/// [`AdminConfig::new`], which refuses a guessable token, so every
/// embedding meets the same rule as the projector binary.
///
/// ```
/// # use std::sync::Arc;
/// # fn run(rebuild: Arc<dyn revocation_http::Rebuild>) {
/// use revocation_http::AdminConfig;
/// assert!(AdminConfig::new("short", rebuild.clone()).is_err());
/// let admin = AdminConfig::new("a-long-random-admin-token", rebuild).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct AdminConfig {
    /// The bearer token a caller must present.
    token: String,
    /// What `POST /admin/rebuild` starts.
    pub rebuild: Arc<dyn Rebuild>,
    /// What `GET /admin/snapshot` streams to a new replica, when served.
    pub snapshots: Option<Arc<dyn crate::SnapshotSource>>,
}

/// An admin token shorter than [`AdminConfig::MIN_TOKEN_LEN`]: a guessable
/// token guards nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the admin token must be at least {min} characters (it has {len})", min = AdminConfig::MIN_TOKEN_LEN)]
pub struct AdminTokenTooShort {
    /// The length presented.
    pub len: usize,
}

impl AdminConfig {
    /// Shortest token accepted.
    pub const MIN_TOKEN_LEN: usize = 16;

    /// Guards `rebuild` with `token`, which must be at least
    /// [`Self::MIN_TOKEN_LEN`] characters.
    pub fn new(token: impl Into<String>, rebuild: Arc<dyn Rebuild>) -> Result<Self, AdminTokenTooShort> {
        let token = token.into();
        Self::check_token(&token)?;
        Ok(Self { token, rebuild, snapshots: None })
    }

    /// Also serves `GET /admin/snapshot` from `snapshots` (peer bootstrap).
    pub fn with_snapshots(mut self, snapshots: Arc<dyn crate::SnapshotSource>) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    /// Whether `token` is long enough to guard anything.
    pub fn check_token(token: &str) -> Result<(), AdminTokenTooShort> {
        let len = token.chars().count();
        if len < Self::MIN_TOKEN_LEN { Err(AdminTokenTooShort { len }) } else { Ok(()) }
    }
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/admin/rebuild", post(rebuild))
}

/// The admin config when the request carries its token; else the answer:
/// 404 when admin routes are off, 401 without the right bearer token.
pub(crate) fn authorized<'a>(state: &'a Shared, headers: &HeaderMap) -> Result<&'a AdminConfig, Box<Response>> {
    let Some(admin) = &state.admin else {
        return Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                Json(
                    json!({"status": "disabled", "reason": "admin routes are off; set an admin token to enable them"}),
                ),
            )
                .into_response(),
        ));
    };
    let presented =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), admin.token.as_bytes())) {
        return Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"status": "unauthorized", "reason": "a valid bearer token is required"})),
            )
                .into_response(),
        ));
    }
    Ok(admin)
}

async fn rebuild(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let admin = match authorized(&state, &headers) {
        Ok(admin) => admin,
        Err(answer) => return *answer,
    };
    if admin.rebuild.busy() {
        return (StatusCode::CONFLICT, Json(json!({"status": "busy", "reason": "a rebuild is already under way"})))
            .into_response();
    }
    let rebuild = admin.rebuild.clone();
    tokio::spawn(async move {
        match rebuild.rebuild().await {
            Ok(done) => tracing::info!("admin rebuild: {done}"),
            Err(why) => tracing::warn!("admin rebuild failed: {why}"),
        }
    });
    (StatusCode::ACCEPTED, Json(json!({"status": "rebuilding"}))).into_response()
}

/// Compares without an early exit, so the token cannot be guessed byte by
/// byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
