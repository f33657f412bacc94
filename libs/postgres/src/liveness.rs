//! [`PgSessionLiveness`]: one indexed query per check.

use std::time::Duration;

use async_trait::async_trait;
use revocation_core::{SessionId, SessionLiveness, SessionLivenessError};
use sqlx::PgPool;
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
    pub async fn probe(&self) -> Result<(), String> {
        let sid = SessionId::new("readiness-probe").map_err(|e| e.to_string())?;
        self.query(&sid).await.map(drop)
    }

    async fn query(&self, sid: &SessionId) -> Result<Option<(Option<OffsetDateTime>, Option<OffsetDateTime>)>, String> {
        let query = sqlx::query_as(&self.check_sql).bind(sid.as_str()).fetch_optional(&self.pool);
        match tokio::time::timeout(self.deadline, query).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(e)) => Err(format!("session lookup in {} failed: {e}", self.config.qualified_table())),
            Err(_) => Err(format!(
                "session lookup in {} took longer than {} ms",
                self.config.qualified_table(),
                self.deadline.as_millis()
            )),
        }
    }
}

#[async_trait]
impl SessionLiveness for PgSessionLiveness {
    async fn check(&self, sid: &SessionId) -> Result<(), SessionLivenessError> {
        match self.query(sid).await.map_err(SessionLivenessError::Transient)? {
            None | Some((Some(_), _)) => Err(SessionLivenessError::Revoked),
            Some((None, Some(expires_at))) if expires_at <= OffsetDateTime::now_utc() => {
                Err(SessionLivenessError::Revoked)
            }
            Some((None, _)) => Ok(()),
        }
    }
}
