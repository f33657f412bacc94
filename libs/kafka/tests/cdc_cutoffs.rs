//! Per-user cutoffs under change data capture, against the real servers
//! (`scripts/servers.sh up`): `user_session_cutoffs` captured by the same
//! connector and routed into the sessions' topic. A seeded workload written
//! straight into Postgres answers alike from the projection and from
//! Postgres once the bound has passed; a cutoff moved back in Postgres is
//! kept forward on both sides.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_core::{
    Clock, FreshnessState, SessionLiveness, SessionLivenessError, SystemClock, Timestamp, TokenLiveness, UserId,
};

use revocation_test_support::*;

#[tokio::test]
async fn a_cutoff_written_in_postgres_answers_at_the_projection_as_in_postgres() {
    let db = CdcSchema::new().await;
    let table = revocation_postgres::PgSessionTable::new(
        db.pool.clone(),
        &revocation_postgres::PgConfig::new(database_url()).schema(&db.name).unwrap(),
    );
    let workload = cutoff_workload(23, 200, 10);
    // Half before the connector's first start (its initial snapshot), half after.
    let (first, second) = workload.steps.split_at(workload.steps.len() / 2);
    let write = async |steps: &[Step]| {
        for step in steps {
            match step {
                Step::Session(event) => table.record(event).await.unwrap(),
                Step::Cutoff(cutoff) => table.record_cutoff(cutoff).await.unwrap(),
            }
        }
    };
    write(first).await;
    let connector = CdcConnector::register(&db.name, &[("heartbeat.interval.ms", "200")]);
    let source = live_source(&connector.topic, debezium_options()).await;
    write(second).await;
    // Past the bound after the last commit, by the source's own clock.
    let committed = SystemClock.now();
    let liveness = source.liveness();
    eventually(Duration::from_secs(60), "fresh past the last commit", async || {
        liveness.state() == FreshnessState::Live
            && liveness.status().freshness.fresh_as_of.is_some_and(|f| f > committed)
    })
    .await;
    let (mut cut, mut refused) = (0, 0);
    for sid in &workload.sids {
        let expected = db.postgres.check(sid).await;
        cut += usize::from(
            liveness.projection().store().state(sid).is_some_and(|s| liveness.projection().store().is_cut_off(s)),
        );
        assert_eq!(liveness.check(sid).await, expected, "session {sid:?}");
    }
    for (user, issued_at) in &workload.tokens {
        let issued_at = Timestamp::from_datetime(*issued_at);
        let expected = db.postgres.check_token(user, issued_at).await;
        refused += usize::from(expected.is_err());
        assert_eq!(liveness.check_token(user, issued_at).await, expected, "{user:?} at {issued_at:?}");
    }
    assert!(cut > 5 && refused > 5, "{cut} sessions cut off, {refused} tokens refused");

    // Moved back in Postgres: the trigger keeps it forward, and so does the projection.
    let user = UserId::new("backwards").unwrap();
    let table_name = format!("{}.user_session_cutoffs", db.name);
    sql(&db.pool, &format!("INSERT INTO {table_name} VALUES ('backwards', now())")).await;
    sql(
        &db.pool,
        &format!("UPDATE {table_name} SET not_before = now() - interval '1 day' WHERE user_id = 'backwards'"),
    )
    .await;
    let an_hour_ago = Timestamp::from_unix_secs(SystemClock.now().as_unix_secs() - 3600);
    eventually(Duration::from_secs(30), "the cutoff reaches the projection", async || {
        liveness.check_token(&user, an_hour_ago).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    assert_eq!(db.postgres.check_token(&user, an_hour_ago).await, Err(SessionLivenessError::Revoked));
    source.shutdown().await;
    drop(connector);
}

#[tokio::test]
async fn one_cutoff_row_revokes_every_session_of_its_user_within_the_bound() {
    let db = CdcSchema::new().await;
    let table = &db.table;
    sql(&db.pool, &format!(
        "INSERT INTO {table} (id, user_id, created_at) SELECT 'many-' || g, 'many', now() - interval '1 minute' FROM generate_series(1, 2000) g"
    ))
    .await;
    let connector = CdcConnector::register(&db.name, &[("heartbeat.interval.ms", "200")]);
    let source = live_source(&connector.topic, debezium_options()).await;
    let liveness = source.liveness();
    let sids: Vec<_> = (1..=2000).map(|g| sid(&format!("many-{g}"))).collect();
    for s in &sids {
        assert_eq!(liveness.check(s).await, Ok(()));
    }
    sql(&db.pool, &format!("INSERT INTO {}.user_session_cutoffs VALUES ('many', now())", db.name)).await;
    let took = eventually(Duration::from_secs(30), "the cutoff revokes them", async || {
        liveness.check(&sids[0]).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    println!("cutoff row → revoked at the projection in {took:?}");
    for s in &sids {
        assert_eq!(liveness.check(s).await, Err(SessionLivenessError::Revoked), "{s:?}");
    }
    source.shutdown().await;
    drop(connector);
}

/// A connector that does not capture `user_session_cutoffs` (the config
/// before this table existed) keeps the projection Cold — a cutoff would be
/// missed — and the documented upgrade (table, router, heartbeat query, a
/// PUT of the config) brings it Live with cutoffs applied.
#[tokio::test]
async fn a_cutoffs_table_the_connector_misses_fails_closed_until_the_documented_upgrade() {
    let db = CdcSchema::new().await;
    sql(&db.pool, &format!("INSERT INTO {} (id, user_id) VALUES ('alice', 'u-1')", db.table)).await;
    let mut connector = CdcConnector::register(
        &db.name,
        &[
            ("heartbeat.interval.ms", "200"),
            ("table.include.list", &format!("{}.user_sessions", db.name)),
            ("transforms", ""),
        ],
    );
    let source = revocation_kafka::KafkaSource::start(connector.topic.clone(), debezium_options()).unwrap();
    let liveness = source.liveness();
    // Heartbeats of the sessions' rows flow every 200 ms; give them 5 s.
    eventually(Duration::from_secs(30), "the sessions' heartbeats read", async || {
        let freshness = liveness.status().freshness;
        !freshness.partitions.is_empty() && freshness.partitions_without_source_heartbeat.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let freshness = liveness.status().freshness;
    assert_eq!(freshness.state, FreshnessState::Cold, "never Live without the cutoffs' heartbeat: {freshness:?}");
    assert!(freshness.cutoffs_heartbeat_missing);
    assert!(matches!(liveness.check(&sid("alice")).await, Err(SessionLivenessError::Transient(_))));

    // The upgrade: the deployed config's table list and router.
    connector.reconfigure(&[
        ("table.include.list", &format!("{0}.user_sessions,{0}.user_session_cutoffs", db.name)),
        ("transforms", "cutoffs"),
    ]);
    wait_live(&source, "Live once the cutoffs table is captured and routed").await;
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));
    sql(&db.pool, &format!("INSERT INTO {}.user_session_cutoffs VALUES ('u-1', now())", db.name)).await;
    eventually(Duration::from_secs(30), "the cutoff applied", async || {
        liveness.check(&sid("alice")).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    source.shutdown().await;
    drop(connector);
}
