//! [`PgSessionLiveness`]: one indexed query per check.

use std::time::Duration;

use async_trait::async_trait;
use revocation_core::{SessionId, SessionLiveness, SessionLivenessError, Timestamp, TokenLiveness, UserId};
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
    check_token_sql: String,
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
            check_sql: sql(include_str!("sql/check.sql"), config),
            check_token_sql: sql(include_str!("sql/check_token.sql"), config),
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

    async fn query(&self, sid: &str) -> Result<Option<Row>, LookupError> {
        let query = sqlx::query_as(&self.check_sql).bind(sid).fetch_optional(&self.pool);
        self.bounded(self.config.qualified_table(), query).await
    }

    /// A query under the check's deadline; its error names `table`.
    async fn bounded<T>(
        &self,
        table: String,
        query: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, LookupError> {
        match tokio::time::timeout(self.deadline, query).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(source)) => Err(LookupError::Failed { table, source }),
            Err(_) => Err(LookupError::TimedOut { table, after: self.deadline }),
        }
    }
}

/// A session row: revoked at, expires at, and whether its user's cutoff is
/// later than its creation.
type Row = (Option<OffsetDateTime>, Option<OffsetDateTime>, bool);

/// A statement of `src/sql/` for `config`'s tables.
fn sql(text: &str, config: &PgConfig) -> String {
    text.trim().replace("{table}", &config.qualified_table()).replace("{cutoffs}", &config.qualified_cutoffs())
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
            None | Some((Some(_), _, _)) | Some((None, _, true)) => Err(SessionLivenessError::Revoked),
            Some((None, Some(expires_at), _)) if expires_at <= OffsetDateTime::now_utc() => {
                Err(SessionLivenessError::Revoked)
            }
            Some((None, _, false)) => Ok(()),
        }
    }
}

/// The epoch slot from `user_session_cutoffs`, with the same rounding as the
/// projection: the cutoff up to the second, `issued_at` down.
#[async_trait]
impl TokenLiveness for PgSessionLiveness {
    async fn check_token(&self, user: &UserId, issued_at: Timestamp) -> Result<(), SessionLivenessError> {
        let query = sqlx::query_scalar::<_, i64>(&self.check_token_sql).bind(user.as_str()).fetch_optional(&self.pool);
        let cutoff = self
            .bounded(self.config.qualified_cutoffs(), query)
            .await
            .map_err(|e| SessionLivenessError::Transient(e.to_string()))?;
        match cutoff {
            Some(cutoff) if issued_at.as_unix_secs() < cutoff => Err(SessionLivenessError::Revoked),
            _ => Ok(()),
        }
    }
}
