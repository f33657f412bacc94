//! [`PgSessionLiveness`]: one indexed query per check.

use std::time::Duration;

use async_trait::async_trait;
use revocation_core::{SessionId, SessionLiveness, SessionLivenessError};
use sqlx::PgPool;
use thiserror::Error;
use time::OffsetDateTime;

use crate::config::{PgConfig, PgConfigError};
use crate::migrate::{self, MigrateError};

/// The `SessionLiveness` port over `user_sessions`, as verifiers run it today.
///
/// Row absent, `revoked_at` set, or `expires_at` passed → `Revoked`; any
/// database error or timeout → `Transient` (fail closed), with a message that
/// says what failed.
#[derive(Debug, Clone)]
pub struct PgSessionLiveness {
    pool: PgPool,
    config: PgConfig,
    check_sql: String,
    /// Client-side bound on a whole check: acquire plus statement. Covers a
    /// server that stalls without answering (where `statement_timeout`,
    /// enforced by the server, cannot fire).
    deadline: Duration,
}

impl PgSessionLiveness {
    /// Builds the adapter over a lazily connecting pool: this succeeds while
    /// the database is down, and checks answer `Transient` until it is up.
    /// Call it inside a Tokio runtime.
    pub fn connect(config: &PgConfig) -> Result<Self, PgConfigError> {
        Ok(Self::with_pool(config.pool()?, config))
    }

    /// Builds the adapter over an existing pool.
    pub fn with_pool(pool: PgPool, config: &PgConfig) -> Self {
        Self {
            pool,
            check_sql: include_str!("sql/check.sql").trim().replace("{table}", &config.qualified_table()),
            deadline: config.acquire_timeout + config.statement_timeout,
            config: config.clone(),
        }
    }

    /// Creates the schema if needed and applies the embedded migrations in it.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        migrate::run(&self.pool, &self.config.schema).await
    }

    /// The pool, to share with other users of the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The configuration in force.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Whether the check would get an answer now: runs the check's own query
    /// for an id no session has, with the check's deadline. The error says
    /// what failed (never the password).
    ///
    /// ```no_run
    /// # async fn run(pg: revocation_postgres::PgSessionLiveness) {
    /// if let Err(why) = pg.probe().await {
    ///     eprintln!("the fallback cannot answer: {why}");
    /// }
    /// # }
    /// ```
    pub async fn probe(&self) -> Result<(), LookupError> {
        // An id no session has: the check's own query, index and deadline.
        self.query("readiness-probe").await.map(drop)
    }

    async fn query(&self, sid: &str) -> Result<Option<(Option<OffsetDateTime>, Option<OffsetDateTime>)>, LookupError> {
        let query = sqlx::query_as(&self.check_sql).bind(sid).fetch_optional(&self.pool);
        match tokio::time::timeout(self.deadline, query).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(source)) => Err(LookupError::Failed { table: self.config.qualified_table(), source }),
            Err(_) => Err(LookupError::TimedOut { table: self.config.qualified_table(), after: self.deadline }),
        }
    }
}

/// A session lookup that got no answer: what a check reports as
/// `Transient`, and what the readiness probe reports. Never holds the
/// password (sqlx's errors do not carry the URL).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The database refused or failed the query (or could not be reached).
    #[error("session lookup in {table} failed: {source}")]
    Failed {
        /// The table asked.
        table: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// No answer within the check's deadline (acquire plus statement).
    #[error("session lookup in {table} took longer than {} ms", after.as_millis())]
    TimedOut {
        /// The table asked.
        table: String,
        /// The deadline.
        after: Duration,
    },
}

#[async_trait]
impl SessionLiveness for PgSessionLiveness {
    async fn check(&self, sid: &SessionId) -> Result<(), SessionLivenessError> {
        match self.query(sid.as_str()).await.map_err(|e| SessionLivenessError::Transient(e.to_string()))? {
            None | Some((Some(_), _)) => Err(SessionLivenessError::Revoked),
            Some((None, Some(expires_at))) if expires_at <= OffsetDateTime::now_utc() => {
                Err(SessionLivenessError::Revoked)
            }
            Some((None, _)) => Ok(()),
        }
    }
}
