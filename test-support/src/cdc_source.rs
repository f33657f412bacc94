//! The setup every change-data-capture test repeats: a schema of its own
//! with a patient pool for its statements, and a Debezium source on a
//! connector's topic, waited on until Live.

use std::sync::Arc;
use std::time::Duration;

use revocation_core::{Debezium, FreshnessState};
use revocation_kafka::{KafkaConfig, KafkaSource, SourceOptions};
use revocation_postgres::PgSessionLiveness;
use sqlx::PgPool;

use crate::kafka::source_options;
use crate::postgres::{TestSchema, fresh_schema, statement_pool};

/// A schema of the test's own for change data capture.
#[derive(Debug)]
pub struct CdcSchema {
    /// The schema's name (what the connector captures).
    pub name: String,
    /// Its `user_sessions`, quoted, for the test's SQL.
    pub table: String,
    /// A patient pool for the test's statements.
    pub pool: PgPool,
    /// The Postgres adapter over the schema (the fallback).
    pub postgres: PgSessionLiveness,
}

impl CdcSchema {
    /// A fresh, migrated schema.
    pub async fn new() -> Self {
        let TestSchema { name, config, liveness, .. } = fresh_schema().await;
        Self { name, table: config.qualified_table(), pool: statement_pool().await, postgres: liveness }
    }
}

/// Runs one statement; panics naming it when it fails.
pub async fn sql(pool: &PgPool, statement: &str) {
    sqlx::query(statement).execute(pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The test options ([`source_options`]) reading Debezium change events.
pub fn debezium_options() -> SourceOptions {
    SourceOptions { format: Arc::new(Debezium), ..source_options() }
}

/// A source of `topic` with `options`, waited on until Live (90 s).
pub async fn live_source(topic: &KafkaConfig, options: SourceOptions) -> KafkaSource {
    let source = KafkaSource::start(topic.clone(), options).unwrap_or_else(|e| panic!("cannot start the source: {e}"));
    wait_live(&source, "Live").await;
    source
}

/// Waits until `source` is Live (90 s); panics naming `what` otherwise.
pub async fn wait_live(source: &KafkaSource, what: &str) {
    let liveness = source.liveness();
    crate::eventually(Duration::from_secs(90), what, async || liveness.state() == FreshnessState::Live).await;
}
