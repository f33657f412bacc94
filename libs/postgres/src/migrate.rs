//! The embedded migrations (`migrations/` at the repository root), applied
//! into the configured schema.
//!
//! The SQL names its tables unqualified; we create the schema and run the
//! migrator on a connection whose `search_path` is that schema, so each
//! schema (one per deployment, or one per test) has its own table and its
//! own migration history.

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use thiserror::Error;

use crate::config::Identifier;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Migrations could not be applied.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The database could not be reached or refused a statement.
    #[error(
        "could not prepare schema {schema} for migrations (is the database up and the role allowed to create schemas?)"
    )]
    Connection {
        /// The schema.
        schema: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("applying migrations to schema {schema} failed")]
    Migration {
        /// The schema.
        schema: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// Applies every pending migration into `schema`.
pub async fn run(pool: &PgPool, schema: &Identifier) -> Result<(), MigrateError> {
    let connection = |source| MigrateError::Connection { schema: schema.as_str().into(), source };
    let mut conn = pool.acquire().await.map_err(connection)?;
    // Migrations may take longer than a check's statement_timeout.
    sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await.map_err(connection)?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut *conn).await.map_err(connection)?;
    sqlx::query(&format!("SET search_path TO {schema}")).execute(&mut *conn).await.map_err(connection)?;
    let result = MIGRATOR.run(&mut *conn).await;
    // Leave the pooled connection as we found it.
    let _ = sqlx::query("RESET search_path").execute(&mut *conn).await;
    let _ = sqlx::query("RESET statement_timeout").execute(&mut *conn).await;
    result.map_err(|source| MigrateError::Migration { schema: schema.as_str().into(), source })
}
