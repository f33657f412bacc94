//! Change data capture under faults, against real servers (`scripts/servers.sh
//! up`). A binary of its own: it kills shared servers (the Connect worker,
//! PostgreSQL), which the other tests must not see (test binaries run one at
//! a time; the tests here take turns).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_core::{FreshnessState, SessionId, SessionLiveness, SessionLivenessError};
use revocation_test_support::*;

#[tokio::test]
async fn a_killed_connect_worker_fails_closed_and_after_its_restart_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u'), ('bob', 'u')")).await;
    let mut connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = live_source(&connector.topic, debezium_options()).await;
    let liveness = projection.liveness();

    run_script("connect.sh", "kill");
    sqlx::query(&format!("UPDATE {table} SET revoked_at = now() WHERE id = 'bob'")).execute(&pool).await.unwrap();
    eventually(Duration::from_secs(15), "Lagging with the worker dead", async || {
        liveness.state() == FreshnessState::Lagging
    })
    .await;
    let bob = SessionId::new("bob").unwrap();
    assert!(matches!(liveness.check(&bob).await, Err(SessionLivenessError::Transient(_))));

    // A standalone worker keeps its offsets in a file but not its
    // connectors: restart it and register the connector again; it goes on
    // from its offsets (the slot kept the WAL meanwhile).
    run_script("connect.sh", "up");
    connector.reconfigure(&[]);
    eventually(Duration::from_secs(60), "Live after the restart", async || liveness.state() == FreshnessState::Live)
        .await;
    assert_eq!(liveness.check(&bob).await, Err(SessionLivenessError::Revoked), "the revocation made while down");
    assert_eq!(liveness.check(&SessionId::new("alice").unwrap()).await, Ok(()));
    projection.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn postgres_restarted_under_the_connector_fails_closed_then_recovers_with_nothing_lost() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u'), ('bob', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = live_source(&connector.topic, debezium_options()).await;
    let liveness = projection.liveness();

    run_script("postgres.sh", "kill");
    eventually(Duration::from_secs(15), "Lagging with Postgres down", async || {
        liveness.state() == FreshnessState::Lagging
    })
    .await;
    run_script("postgres.sh", "up");
    // Debezium restarts its task after a retriable error (by default within
    // about ten seconds); a revocation committed now must then arrive.
    let mut revoked = false;
    for _ in 0..60 {
        if sqlx::query(&format!("UPDATE {table} SET revoked_at = now() WHERE id = 'bob'")).execute(&pool).await.is_ok()
        {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(revoked, "Postgres did not take the revocation after its restart");
    eventually(Duration::from_secs(90), "Live after Postgres is back", async || {
        liveness.state() == FreshnessState::Live
    })
    .await;
    let bob = SessionId::new("bob").unwrap();
    eventually(Duration::from_secs(10), "the revocation made after the restart arrives", async || {
        liveness.check(&bob).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    assert_eq!(liveness.check(&SessionId::new("alice").unwrap()).await, Ok(()));
    projection.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn a_dropped_replication_slot_stops_the_stream_and_the_projection_fails_closed() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = live_source(&connector.topic, debezium_options()).await;
    let liveness = projection.liveness();

    // The slot is lost (here: dropped under the connector; in production also
    // invalidated by max_slot_wal_keep_size). Changes committed meanwhile are
    // gone from the stream for good.
    let mut dropped = false;
    for _ in 0..40 {
        let _ = sqlx::query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL")
            .bind(&schema)
            .execute(&pool)
            .await;
        if sqlx::query("SELECT pg_drop_replication_slot($1)").bind(&schema).execute(&pool).await.is_ok() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dropped, "could not drop the slot");
    sqlx::query(&format!("UPDATE {table} SET revoked_at = now() WHERE id = 'alice'")).execute(&pool).await.unwrap();
    // Debezium refuses to stream from a position the server no longer has
    // (snapshot.mode=initial): the task fails, heartbeats stop, and the
    // projection fails closed instead of answering from an incomplete stream.
    eventually(Duration::from_secs(15), "Lagging once the stream stopped", async || {
        liveness.state() == FreshnessState::Lagging
    })
    .await;
    eventually(Duration::from_secs(30), "the connector's task failed", async || connector.state().ends_with("FAILED"))
        .await;
    assert!(matches!(liveness.check(&SessionId::new("alice").unwrap()).await, Err(SessionLivenessError::Transient(_))));
    let slots: Vec<(String,)> = sqlx::query_as("SELECT slot_name::text FROM pg_replication_slots WHERE slot_name = $1")
        .bind(&schema)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(slots.is_empty(), "Debezium did not quietly make a new slot and stream on over the gap");
    projection.shutdown().await;
    drop(connector);
}
