//! Run with: cargo run -p revocation-embed --example verifier
//!
//! A toy "verifier": every request to `/api/*` carries its session id in the
//! `x-session-id` header (standing in for a JWT's `sid` claim) and is
//! admitted (200), rejected (401) or failed closed (503) through the
//! `SessionLiveness` port. The projection's health routes are merged in.
//! Needs the local servers (`scripts/servers.sh up`); listens on 127.0.0.1:3000.
//!
//! ```text
//! curl -H 'x-session-id: demo-alice' http://127.0.0.1:3000/api/hello
//! curl http://127.0.0.1:3000/health/lag
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use revocation_embed::{EmbedConfig, Embedded, PgConfig, SessionId, SessionLiveness, SessionLivenessError};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    // The whole setup: config → embedded projection → port + health router.
    let mut config = EmbedConfig::new("127.0.0.1:9092", "session-events");
    config.postgres = Some(PgConfig::new("postgres://revocation:revocation@127.0.0.1:5432/revocation"));
    let embedded = Embedded::start(config).await?;
    let app =
        Router::new().route("/api/hello", get(hello)).with_state(embedded.liveness()).merge(embedded.health_router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "verifier on http://127.0.0.1:3000 (try: curl -H 'x-session-id: demo-alice' http://127.0.0.1:3000/api/hello)"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    embedded.shutdown().await;
    Ok(())
}

/// A protected endpoint: the session must be live.
async fn hello(State(liveness): State<Arc<dyn SessionLiveness>>, headers: HeaderMap) -> (StatusCode, &'static str) {
    let Some(sid) = headers.get("x-session-id").and_then(|v| v.to_str().ok()).and_then(|s| SessionId::new(s).ok())
    else {
        return (StatusCode::UNAUTHORIZED, "missing or invalid session\n");
    };
    match liveness.check(&sid).await {
        Ok(()) => (StatusCode::OK, "hello, live session\n"),
        Err(SessionLivenessError::Revoked) => (StatusCode::UNAUTHORIZED, "session revoked\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "cannot verify the session right now; retry\n"),
    }
}
