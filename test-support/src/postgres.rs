//! A migrated schema of the test's own on the local PostgreSQL.

use revocation_postgres::{PgConfig, PgSessionLiveness, PgSessionTable};

use crate::servers::database_url;

/// A migrated, empty schema of this test's own: its name, its config, the adapter and
/// a writer of the table. Left in place afterwards (`scripts/postgres.sh
/// clean` drops them), so a failed test can be inspected.
///
/// The setup (schema, migrations) and the table writer go through a patient
/// pool of their own ([`statement_pool`]): through the adapter's pool, whose
/// budget is a check's (250 ms), a busy machine failed a test at its setup.
pub async fn fresh_schema() -> TestSchema {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let config = PgConfig::new(database_url()).schema(&schema).unwrap_or_else(|e| panic!("schema name: {e}"));
    let liveness = PgSessionLiveness::connect(&config).unwrap_or_else(|e| panic!("config: {e}"));
    let patient = statement_pool().await;
    if let Err(e) = revocation_postgres::migrate::run(&patient, &config.schema).await {
        panic!("PostgreSQL is not reachable at {} ({e}); start it with `scripts/servers.sh up`", database_url());
    }
    let table = PgSessionTable::new(patient, &config);
    TestSchema { name: schema, config, liveness, table }
}

/// A schema of the test's own, migrated: its name (what a Debezium
/// connector's `schema.include.list` wants), the adapter's config and
/// adapter, and a writer of its `user_sessions`.
#[derive(Debug)]
pub struct TestSchema {
    /// The schema's name, unquoted.
    pub name: String,
    /// The adapter's configuration, pointing at the schema.
    pub config: PgConfig,
    /// The adapter over it.
    pub liveness: PgSessionLiveness,
    /// Writes rows into its `user_sessions`.
    pub table: PgSessionTable,
}

/// A pool for a test's own statements (inserts, updates, DDL): patient, so a
/// statement on a busy machine waits for a connection instead of failing the
/// test. The adapter's pool answers within its 250 ms fallback budget, which
/// is right for checks and wrong for a test's writes.
pub async fn statement_pool() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(std::time::Duration::from_secs(30))
        .connect(&database_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable ({e}); start it with `scripts/servers.sh up`"))
}
