//! Embed the session projection in a verifier, in a few lines.
//!
//! One [`ProjectionConfig`] starts everything: the Kafka feed, the optional
//! Postgres fallback (with its migrations), the expired-session sweeper. The
//! returned [`ProjectionHandle`] gives the port to hand to the verifier, a
//! health router to merge into the verifier's own, `rebuild` and `shutdown`.
//!
//! ```no_run
//! use revocation_projection::{PgConfig, ProjectionConfig, ProjectionHandle};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ProjectionConfig::new("127.0.0.1:9092", "session-events");
//! config.postgres = Some(PgConfig::new("postgres://revocation:revocation@127.0.0.1:5432/revocation"));
//! let projection = ProjectionHandle::start(config).await?;
//!
//! let liveness = projection.liveness(); // Arc<dyn SessionLiveness>: wire it into the verifier
//! let app = axum::Router::new() /* the verifier's routes */ .merge(projection.health_router());
//! // … serve `app` …
//! projection.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A complete runnable verifier is in `examples/verifier.rs`.
#![forbid(unsafe_code)]

mod config;
mod fallback_probe;
mod handle;
mod health;
mod postgres_only;

pub use config::{ConfigError, Mode, ProjectionConfig};
pub use fallback_probe::FallbackStatus;
pub use handle::{ProjectionHandle, RebuildError, StartError};
pub use revocation_core::{LagPolicy, RebuildReport, SessionId, SessionLiveness, SessionLivenessError};
pub use revocation_kafka::KafkaConfig;
pub use revocation_postgres::PgConfig;
