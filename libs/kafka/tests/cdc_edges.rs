//! The edges of the change-data-capture path, against real servers
//! (`scripts/servers.sh up`): what an operator does over a year — leave a
//! column out of the capture, truncate the table, run the documented
//! cleanup, use many partitions, add partitions — must never leave a row
//! that Postgres no longer holds live answered live past the bound.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::{Duration, Instant};

use revocation_core::{FreshnessState, SessionId, SessionLiveness, SessionLivenessError};
use revocation_kafka::{KafkaConfig, KafkaSource, SnapshotOptions, add_partitions};
use revocation_test_support::*;

fn start(topic: &KafkaConfig) -> KafkaSource {
    start_with(topic, None)
}

/// A projection of `topic`, writing its snapshot to `snapshots` every second
/// when given.
fn start_with(topic: &KafkaConfig, snapshots: Option<&std::path::Path>) -> KafkaSource {
    let mut options = debezium_options();
    options.snapshot = snapshots.map(|dir| SnapshotOptions { dir: dir.to_owned(), interval: Duration::from_secs(1) });
    KafkaSource::start(topic.clone(), options).unwrap()
}

fn id(s: &str) -> SessionId {
    SessionId::new(s).unwrap()
}

/// Checks `sid` until `until`, and returns the checks that began more than
/// `bound` after `since` and were answered live.
async fn live_answers_past_the_bound(
    projection: &KafkaSource,
    sid: &SessionId,
    since: Instant,
    bound: Duration,
    until: Duration,
) -> usize {
    let liveness = projection.liveness();
    let mut violations = 0;
    while since.elapsed() < until {
        let began = Instant::now();
        if liveness.check(sid).await == Ok(()) && began.duration_since(since) > bound {
            violations += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    violations
}

#[tokio::test]
async fn a_column_the_connector_does_not_capture_is_never_read_as_not_revoked() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    // The operator leaves revoked_at out of the capture.
    let exclude = format!("{schema}.user_sessions.revoked_at");
    let connector = CdcConnector::register(&schema, &[("column.exclude.list", exclude.as_str())]);
    let projection = start(&connector.topic);
    wait_live(&projection, "Live (the heartbeats still arrive)").await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u')")).await;
    sql(&pool, &format!("UPDATE {table} SET revoked_at = now() WHERE id = 'alice'")).await;
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "the rows without revoked_at are rejected", async || {
        projection.feed_stats().unwrap().malformed >= 2
    })
    .await;
    assert_eq!(liveness.check(&id("alice")).await, Err(SessionLivenessError::Revoked));
    let rejected = projection.feed_stats().unwrap().last_rejected.unwrap();
    assert!(rejected.contains("no `revoked_at` column") && rejected.contains("column.exclude.list"), "{rejected}");
    projection.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn a_truncated_row_is_never_answered_live_past_the_bound_and_a_new_topic_recovers() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u'), ('bob', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let snapshots = std::env::temp_dir().join(format!("cdc-truncate-{schema}"));
    let projection = start_with(&connector.topic, Some(&snapshots));
    wait_live(&projection, "Live").await;
    let alice = id("alice");
    assert_eq!(projection.liveness().check(&alice).await, Ok(()));
    let snapshot = snapshots.join(format!("{}.snapshot", connector.topic.topic));
    eventually(Duration::from_secs(10), "a snapshot from before the truncate", async || snapshot.exists()).await;

    sql(&pool, &format!("TRUNCATE {table}")).await;
    let truncated = Instant::now();
    let bound = projection.liveness().status().freshness.max_staleness;
    let violations =
        live_answers_past_the_bound(&projection, &alice, truncated, bound + Duration::from_millis(100), bound * 3)
            .await;
    assert_eq!(violations, 0, "a truncated row answered live past the bound");
    let freshness = projection.liveness().status().freshness;
    assert!(freshness.distrusted_after.is_some(), "the truncate is recorded: {freshness:?}");
    assert_eq!(freshness.state, FreshnessState::Lagging);

    // Restarts on the same topic — warm from the snapshot (none is written
    // once the topic is distrusted, so the one on disk is from before the
    // truncate and its tail holds the marker) and cold — must never go Live.
    projection.shutdown().await;
    for snapshots in [Some(snapshots.as_path()), None] {
        let restarted = start_with(&connector.topic, snapshots);
        tokio::time::sleep(Duration::from_secs(8)).await;
        let status = restarted.liveness().status().freshness;
        assert_eq!(status.state, FreshnessState::Cold, "{snapshots:?}: {status:?}");
        assert!(status.distrusted_after.is_some());
        assert!(matches!(restarted.liveness().check(&alice).await, Err(SessionLivenessError::Transient(_))));
        restarted.shutdown().await;
    }
    std::fs::remove_dir_all(&snapshots).ok();

    // The documented procedure (docs/cdc.md#truncate): a new connector, with
    // a topic, slot and publication of its own, snapshots the table as it is
    // now; the projection moves to that topic.
    let replacement =
        CdcConnector::register_as(&schema, &format!("{schema}_after"), &[("heartbeat.interval.ms", "200")]);
    let recovered = start(&replacement.topic);
    wait_live(&recovered, "Live on the new topic").await;
    assert_eq!(recovered.liveness().check(&alice).await, Err(SessionLivenessError::Revoked));
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('carol', 'u')")).await;
    let liveness = recovered.liveness();
    eventually(Duration::from_secs(30), "a row inserted after is live", async || {
        liveness.check(&id("carol")).await == Ok(())
    })
    .await;
    recovered.shutdown().await;
    drop(replacement);
    drop(connector);
}

#[tokio::test]
async fn a_topic_of_24_partitions_reaches_live() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("topic.creation.default.partitions", "24")]);
    let projection = start(&connector.topic);
    wait_live(&projection, "Live on 24 partitions").await;
    let freshness = projection.liveness().status().freshness;
    assert_eq!(freshness.partitions.len(), 24);
    assert!(freshness.partitions_without_source_heartbeat.is_empty());
    assert_eq!(projection.liveness().check(&id("alice")).await, Ok(()));
    projection.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn the_heartbeat_rows_survive_the_documented_cleanup_and_come_back_when_deleted() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = start(&connector.topic);
    wait_live(&projection, "Live").await;
    // A month on: every row, the heartbeat rows too, looks a month old when
    // the cleanup runs.
    sql(
        &pool,
        &format!("UPDATE {table} SET created_at = now() - interval '40 days', revoked_at = now() - interval '40 days'"),
    )
    .await;
    sql(&pool, &documented_cleanup(&table)).await;
    // Any other cleanup: the heartbeat rows deleted outright.
    sql(&pool, &format!("DELETE FROM {table} WHERE id LIKE '\\_\\_heartbeat\\_\\_%'")).await;
    let deleted = Instant::now();
    let liveness = projection.liveness();
    tokio::time::sleep(Duration::from_secs(3)).await;
    eventually(Duration::from_secs(30), "Live again: the next heartbeat writes the rows back", async || {
        liveness.state() == FreshnessState::Live
    })
    .await;
    let source_staleness = liveness.status().freshness.source_staleness.unwrap();
    assert!(source_staleness < deleted.elapsed(), "heartbeats committed after the delete were read");
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE id LIKE '\\_\\_heartbeat\\_\\_%'"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3, "one heartbeat row per partition is back");
    projection.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn partitions_added_to_a_change_event_topic_fail_closed_for_good() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    // Enough keys that some sit where Kafka's partitioner would not put them
    // on 6 partitions (each does with probability 1/2).
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) SELECT 'row-' || g, 'u' FROM generate_series(1, 40) g"))
        .await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = start(&connector.topic);
    wait_live(&projection, "Live").await;
    add_partitions(&connector.topic, 6).await.unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "the added partitions are seen and the topic distrusted", async || {
        liveness.status().freshness.distrusted_after.is_some()
    })
    .await;
    eventually(Duration::from_secs(10), "Lagging", async || liveness.state() == FreshnessState::Lagging).await;
    assert!(matches!(liveness.check(&id("alice")).await, Err(SessionLivenessError::Transient(_))));
    // A cold start on the grown topic sees a key off its partition and never goes Live.
    let restarted = start(&connector.topic);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let status = restarted.liveness().status().freshness;
    assert_ne!(status.state, FreshnessState::Live, "{status:?}");
    assert!(status.distrusted_after.is_some());
    restarted.shutdown().await;
    projection.shutdown().await;
    drop(connector);
}
