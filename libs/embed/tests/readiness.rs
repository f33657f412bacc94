//! The embedding's readiness against the real PostgreSQL, stopped and
//! started under it through our scripts (the test heals what it broke).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_embed::{EmbedConfig, Embedded, Mode};
use revocation_test_support::{Heal, SERIAL, TestSchema, bootstrap, eventually, fresh_schema, run_script};

#[tokio::test]
async fn readiness_follows_the_database_in_both_modes() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let TestSchema { config: pg, .. } = fresh_schema().await;
    // Projection mode, kept Cold by a topic that does not exist: the
    // fallback answers every check, so readiness is the fallback's.
    let mut cold = EmbedConfig::new(bootstrap(), format!("absent-{}", uuid::Uuid::new_v4().simple()));
    cold.postgres = Some(pg.clone());
    let cold = Embedded::start(cold).await.unwrap();
    let mut only = EmbedConfig::new(bootstrap(), "unused");
    only.mode = Mode::PostgresOnly;
    only.postgres = Some(pg);
    let only = Embedded::start(only).await.unwrap();
    let ready = |handle: &Embedded| handle.health().report().ready;
    eventually(Duration::from_secs(10), "ready while Postgres answers", async || ready(&cold) && ready(&only)).await;

    run_script("postgres.sh", "down");
    let took =
        eventually(Duration::from_secs(10), "not ready once it stops", async || !ready(&cold) && !ready(&only)).await;
    println!("readiness: not ready {took:?} after Postgres stopped");
    for handle in [&cold, &only] {
        let fallback = handle.health().report().fallback.unwrap();
        assert!(!fallback.reachable && fallback.error.is_some(), "{fallback:?}");
        assert!(!fallback.error.unwrap().contains("revocation:revocation"), "no password in the report");
    }

    run_script("postgres.sh", "up");
    eventually(Duration::from_secs(20), "ready again", async || ready(&cold) && ready(&only)).await;
    cold.shutdown().await;
    only.shutdown().await;
}
