//! The embedding API: the session projection inside a verifier, in a few lines.
//!
//! One [`EmbedConfig`] starts everything: the Kafka feed, the optional
//! Postgres fallback (with its migrations), the expired-session sweeper. The
//! returned [`Embedded`] gives the port to hand to the verifier, a
//! health router to merge into the verifier's own, `rebuild` and `shutdown`.
//!
//! ```no_run
//! use revocation_embed::{EmbedConfig, Embedded, PgConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = EmbedConfig::new("127.0.0.1:9092", "session-events");
//! config.postgres = Some(PgConfig::new("postgres://revocation:revocation@127.0.0.1:5432/revocation"));
//! let embedded = Embedded::start(config).await?;
//!
//! let liveness = embedded.liveness(); // Arc<dyn SessionLiveness>: wire it into the verifier
//! let app = axum::Router::new() /* the verifier's routes */ .merge(embedded.health_router());
//! // … serve `app` …
//! embedded.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A complete runnable verifier is in `examples/verifier.rs`.
//!
//! # Layout
//!
//! - `config`: [`EmbedConfig`] — the Kafka side's [`KafkaConfig`] and
//!   [`SourceOptions`], the Postgres fallback, and what only the embedding
//!   adds — with its checks ([`ConfigError`]).
//! - `embedded`: [`Embedded`], the running thing: the port, the health
//!   router, the admin capability, `rebuild`, `shutdown`.
//! - `health`: the report `/health/lag` shows, with what only the
//!   composition knows (the feed's standing fault, the fallback's probe).
//! - `fallback_probe`: the fallback's readiness, probed in the background.
//! - `postgres_only`: the Postgres-only mode's report (the baseline).
#![forbid(unsafe_code)]

mod config;
mod embedded;
mod fallback_probe;
mod health;
mod postgres_only;

pub use config::{ConfigError, EmbedConfig, Mode};
pub use embedded::{Embedded, RebuildError, StartError};
pub use fallback_probe::FallbackStatus;
pub use revocation_core::{
    LagPolicy, RebuildReport, SessionId, SessionLiveness, SessionLivenessError, Timestamp, TokenLiveness, UserId,
};
pub use revocation_kafka::{KafkaConfig, SourceOptions};
pub use revocation_postgres::PgConfig;
