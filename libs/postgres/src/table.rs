//! [`PgSessionTable`]: writes session events into `user_sessions` (and user
//! cutoffs into `user_session_cutoffs`), with the
//! same semantics as the projection (revocation sticks, the earliest
//! revocation wins, a tombstone deletes the row).

use revocation_core::{SessionEvent, UserRevokedBefore};
use sqlx::PgPool;

use crate::config::PgConfig;

/// Mirrors session events into the table the fallback reads.
#[derive(Debug, Clone)]
pub struct PgSessionTable {
    pool: PgPool,
    created_sql: String,
    revoked_sql: String,
    tombstone_sql: String,
    cutoff_sql: String,
}

impl PgSessionTable {
    /// Over `pool`, writing to the table named in `config`.
    pub fn new(pool: PgPool, config: &PgConfig) -> Self {
        let (table, cutoffs) = (config.qualified_table(), config.qualified_cutoffs());
        let sql = |text: &str| text.trim().replace("{table}", &table).replace("{cutoffs}", &cutoffs);
        Self {
            pool,
            created_sql: sql(include_str!("sql/record_created.sql")),
            revoked_sql: sql(include_str!("sql/record_revoked.sql")),
            tombstone_sql: sql(include_str!("sql/record_tombstone.sql")),
            cutoff_sql: sql(include_str!("sql/record_cutoff.sql")),
        }
    }

    /// Writes one event.
    pub async fn record(&self, event: &SessionEvent) -> Result<(), sqlx::Error> {
        let query = match event {
            SessionEvent::Created { sid, user_id, created_at, expires_at } => {
                sqlx::query(&self.created_sql).bind(sid.as_str()).bind(user_id).bind(created_at).bind(expires_at)
            }
            SessionEvent::Revoked { sid, revoked_at, .. } => {
                sqlx::query(&self.revoked_sql).bind(sid.as_str()).bind(revoked_at)
            }
            SessionEvent::Tombstone { sid } => sqlx::query(&self.tombstone_sql).bind(sid.as_str()),
        };
        query.execute(&self.pool).await.map(|_| ())
    }

    /// Writes one user cutoff (it only moves forward, as in the projection).
    pub async fn record_cutoff(&self, cutoff: &UserRevokedBefore) -> Result<(), sqlx::Error> {
        sqlx::query(&self.cutoff_sql)
            .bind(cutoff.user_id.as_str())
            .bind(cutoff.not_before)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
