//! Today's session-liveness adapter over Postgres, kept as the projection's
//! cold-start fallback and as the baseline its numbers are compared with.
//!
//! # Layout
//!
//! - [`config`]: [`PgConfig`] (URL, schema, table, timeouts) and the
//!   identifier checks that keep configured names out of SQL injection.
//! - [`liveness`]: [`PgSessionLiveness`], the `SessionLiveness` port answered
//!   by one indexed query per check.
//! - [`migrate`]: the embedded migrations (the `user_sessions` table), applied
//!   into the configured schema.
//! - [`table`]: [`PgSessionTable`], which mirrors session events into the table
//!   (for demos, tests, and producers moving over gradually).
//!
//! The SQL lives in `src/sql/*.sql`; `{table}` in it is replaced once, at
//! construction, by the validated and quoted `schema.table`.
//!
//! # Example
//!
//! ```no_run
//! use revocation_core::{SessionId, SessionLiveness};
//! use revocation_postgres::{PgConfig, PgSessionLiveness};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = PgConfig::new("postgres://revocation:revocation@127.0.0.1:5432/revocation").schema("scrcall")?;
//! let liveness = PgSessionLiveness::connect(&config)?;
//! liveness.migrate().await?;
//! let answer = liveness.check(&SessionId::new("s-1")?).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod liveness;
pub mod migrate;
pub mod table;

pub use config::{Identifier, PgConfig, PgConfigError};
pub use liveness::{LookupError, PgSessionLiveness};
pub use migrate::MigrateError;
pub use table::PgSessionTable;
