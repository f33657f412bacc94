//! Change data capture end to end, against real servers (`scripts/servers.sh
//! up`: PostgreSQL with logical decoding, Kafka, Kafka Connect + Debezium):
//! an application's workload run directly in PostgreSQL — no project code in
//! the write path — reaches the projection through Debezium, and the
//! projection then answers as today's query does for every row (and fails
//! closed where the two differ by design).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use revocation_core::{Clock, Debezium, FreshnessState, Lookup, SessionId, SessionLiveness, SystemClock};
use revocation_kafka::{KafkaSource, SourceOptions};
use revocation_test_support::*;
use sqlx::PgPool;

/// A seeded xorshift: the workload is random but repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn start(topic: &revocation_kafka::KafkaConfig) -> KafkaSource {
    KafkaSource::start(topic.clone(), debezium_options()).unwrap()
}

#[tokio::test]
async fn a_workload_run_in_postgres_reaches_the_projection_and_it_answers_as_the_table_does() {
    let CdcSchema { name: schema, table, pool, postgres } = CdcSchema::new().await;
    // Rows that exist before the connector's first start: its initial snapshot (op r).
    for i in 0..150 {
        let revoked = if i % 7 == 0 { "now()" } else { "NULL" };
        let expires = if i % 11 == 0 { "now() - interval '1 minute'" } else { "now() + interval '1 day'" };
        sql(&pool, &format!(
            "INSERT INTO {table} (id, user_id, expires_at, revoked_at) VALUES ('old-{i}', 'user-{}', {expires}, {revoked})",
            i % 20
        ))
        .await;
    }
    let connector = CdcConnector::register(&schema, &[]);
    let projection = start(&connector.topic);

    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut ids: Vec<String> = (0..150).map(|i| format!("old-{i}")).collect();
    // Rows revoked at some point: the projection keeps them revoked even if
    // an UPDATE clears revoked_at (fail closed; Postgres would say live).
    let mut ever_revoked: BTreeSet<String> = (0..150).filter(|i| i % 7 == 0).map(|i| format!("old-{i}")).collect();
    for step in 0..400 {
        let pick = ids[rng.next(ids.len())].clone();
        match rng.next(100) {
            0..=54 => {
                let id = format!("new-{step}");
                let expires = if rng.next(10) == 0 { "NULL" } else { "now() + interval '2 hours'" };
                sql(
                    &pool,
                    &format!(
                        "INSERT INTO {table} (id, user_id, expires_at) VALUES ('{id}', 'user-{}', {expires})",
                        rng.next(20)
                    ),
                )
                .await;
                ids.push(id);
            }
            55..=74 => {
                sql(
                    &pool,
                    &format!("UPDATE {table} SET revoked_at = now() WHERE id = '{pick}' AND revoked_at IS NULL"),
                )
                .await;
                ever_revoked.insert(pick);
            }
            75..=84 => sql(&pool, &format!("DELETE FROM {table} WHERE id = '{pick}'")).await,
            85..=89 => {
                sql(&pool, &format!("UPDATE {table} SET expires_at = now() - interval '1 second' WHERE id = '{pick}'"))
                    .await
            }
            90..=94 => {
                // Log out everywhere.
                let user = format!("user-{}", rng.next(20));
                let revoked: Vec<(String,)> = sqlx::query_as(&format!(
                    "UPDATE {table} SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING id"
                ))
                .bind(&user)
                .fetch_all(&pool)
                .await
                .unwrap();
                ever_revoked.extend(revoked.into_iter().map(|(id,)| id));
            }
            _ => sql(&pool, &format!("UPDATE {table} SET revoked_at = NULL WHERE id = '{pick}'")).await,
        }
    }

    // The projection must come to answer every row as the table does.
    let liveness = projection.liveness();
    let mut differences = BTreeMap::new();
    let mut compared = false;
    for _ in 0..120 {
        differences.clear();
        if liveness.state() == FreshnessState::Live {
            compared = true;
            let now = SystemClock.now();
            for id in &ids {
                let sid = SessionId::new(id.as_str()).unwrap();
                let table_live = postgres.check(&sid).await.is_ok();
                let expected_live = table_live && !ever_revoked.contains(id);
                let projected_live = liveness.projection().store().lookup(&sid, now) == Lookup::Live;
                if projected_live != expected_live {
                    differences.insert(id.clone(), (table_live, projected_live));
                }
            }
            if differences.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(compared, "the projection never became Live");
    assert!(differences.is_empty(), "id → (table live, projection live): {differences:?}");
    let stats = projection.feed_stats().unwrap();
    assert_eq!(stats.malformed, 0, "{stats:?}");
    assert!(stats.records >= 550, "the snapshot (150 rows) and the workload's changes were read: {stats:?}");
    // Rows whose revoked_at was cleared: live in the table, revoked here.
    let cleared = ids.iter().filter(|id| ever_revoked.contains(*id)).count();
    assert!(cleared > 0);
    projection.shutdown().await;
    drop(connector);
    let slots: Vec<(String,)> = sqlx::query_as("SELECT slot_name::text FROM pg_replication_slots WHERE slot_name = $1")
        .bind(&schema)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(slots.is_empty(), "the test's replication slot is dropped");
}

/// Inserts `n` rows and checks each at once, before its change can have
/// come through Debezium: how many were answered live, and how many revoked.
async fn insert_and_check_at_once(
    pool: &PgPool,
    table: &str,
    liveness: &dyn SessionLiveness,
    n: usize,
) -> (usize, usize) {
    let (mut live, mut revoked) = (0, 0);
    for i in 0..n {
        let id = format!("fresh-{}-{i}", uuid::Uuid::new_v4().simple());
        sql(
            pool,
            &format!("INSERT INTO {table} (id, user_id, expires_at) VALUES ('{id}', 'u', now() + interval '1 hour')"),
        )
        .await;
        let answer = liveness.check(&SessionId::new(id).unwrap()).await;
        live += usize::from(answer.is_ok());
        revoked += usize::from(answer == Err(revocation_core::SessionLivenessError::Revoked));
    }
    (live, revoked)
}

#[tokio::test]
async fn a_row_committed_before_the_check_is_not_answered_revoked_while_its_change_is_in_flight() {
    let CdcSchema { name: schema, table, pool, postgres } = CdcSchema::new().await;
    let connector = CdcConnector::register(&schema, &[]);
    let fallback: Arc<dyn SessionLiveness> = Arc::new(postgres.clone());
    let start_with = |confirm: u32| {
        let options = SourceOptions {
            format: Arc::new(Debezium),
            fallback: Some(fallback.clone()),
            confirm_unknown_per_sec: Some(confirm),
            ..source_options()
        };
        KafkaSource::start(connector.topic.clone(), options).unwrap()
    };
    let live = async |projection: &KafkaSource| {
        let liveness = projection.liveness();
        eventually(Duration::from_secs(60), "Live", async || liveness.state() == FreshnessState::Live).await;
    };
    // One row first, so the topic exists and the projection can be Live.
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('first', 'u')")).await;

    // Without confirmation the barrier (the broker's watermarks) cannot see
    // a commit Debezium has not carried yet: brand-new rows answer revoked.
    let unconfirmed = start_with(0);
    live(&unconfirmed).await;
    let (answered_live, _) = insert_and_check_at_once(&pool, &table, &*unconfirmed.liveness(), 20).await;
    assert!(answered_live < 20, "every brand-new row was already in the projection: the control shows nothing");
    unconfirmed.shutdown().await;

    let confirmed = start_with(100);
    live(&confirmed).await;
    let liveness = confirmed.liveness();
    // None is answered revoked. A fallback query past its 250 ms budget on a
    // loaded machine answers Transient (fail closed), which is allowed; most
    // are answered live by Postgres.
    let (live, revoked) = insert_and_check_at_once(&pool, &table, &*liveness, 20).await;
    assert_eq!(revoked, 0, "a brand-new row was answered revoked");
    assert!(live >= 15, "only {live} of 20 brand-new rows answered live");
    assert!(liveness.counts().get(revocation_core::Source::Fallback, revocation_core::Answer::Live) > 0);
    // A session Postgres does not hold either is revoked.
    let nobody = SessionId::new(format!("nobody-{}", uuid::Uuid::new_v4().simple())).unwrap();
    assert_eq!(liveness.check(&nobody).await, Err(revocation_core::SessionLivenessError::Revoked));
    confirmed.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn a_paused_connector_makes_the_projection_fail_closed_and_it_recovers_with_nothing_lost() {
    let CdcSchema { name: schema, table, pool, .. } = CdcSchema::new().await;
    sql(&pool, &format!("INSERT INTO {table} (id, user_id) VALUES ('alice', 'u'), ('bob', 'u')")).await;
    let connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "200")]);
    let projection = KafkaSource::start(connector.topic.clone(), debezium_options()).unwrap();
    let liveness = projection.liveness();
    let state = || liveness.state();
    eventually(Duration::from_secs(60), "Live, bounded by the source's heartbeats", async || {
        state() == FreshnessState::Live
    })
    .await;
    let report = liveness.status().freshness;
    assert!(report.source_staleness.is_some_and(|s| s < Duration::from_secs(2)), "{report:?}");
    assert!(report.partitions.iter().all(|p| p.source_fresh_as_of.is_some()), "every partition read a heartbeat");

    // The connector stops while the broker stays healthy: the broker bound
    // stays fresh, the source bound ages, and the projection fails closed.
    connector.set("pause");
    sql(&pool, &format!("UPDATE {table} SET revoked_at = now() WHERE id = 'bob'")).await;
    let waited = eventually(Duration::from_secs(15), "Lagging while the connector is paused", async || {
        state() == FreshnessState::Lagging
    })
    .await;
    let report = liveness.status().freshness;
    assert!(report.broker_staleness.is_some_and(|s| s < Duration::from_secs(1)), "the broker is fresh: {report:?}");
    assert!(report.source_staleness.is_some_and(|s| s > Duration::from_secs(2)), "{report:?}");
    eprintln!("Lagging {waited:?} after the pause (max staleness 2 s, heartbeats every 200 ms)");
    let bob = SessionId::new("bob").unwrap();
    assert!(matches!(liveness.check(&bob).await, Err(revocation_core::SessionLivenessError::Transient(_))));

    // Resumed: the revocation committed during the pause arrives, Live again.
    connector.set("resume");
    eventually(Duration::from_secs(30), "Live again after the resume", async || state() == FreshnessState::Live).await;
    assert_eq!(liveness.check(&bob).await, Err(revocation_core::SessionLivenessError::Revoked));
    assert_eq!(liveness.check(&SessionId::new("alice").unwrap()).await, Ok(()));
    projection.shutdown().await;
    drop(connector);
}
