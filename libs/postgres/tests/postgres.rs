//! PgSessionLiveness against the real PostgreSQL (start it with
//! `scripts/servers.sh up`). Each test works in a schema of its own.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use revocation_core::{
    Clock, FreshnessConfig, ProjectedLiveness, Projection, SessionLiveness, SessionLivenessError, SystemClock,
};
use revocation_postgres::{PgConfig, PgSessionLiveness};
use revocation_test_support::{
    TestSchema, created, database_url, fresh_schema, revoked, sid, statement_pool, tls_file,
};
use time::OffsetDateTime;

fn hour() -> Duration {
    Duration::from_secs(3600)
}

#[tokio::test]
async fn live_revoked_absent_and_expired_rows_get_the_right_answers() {
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    table.record(&created("live", Some(OffsetDateTime::now_utc() + hour()))).await.unwrap();
    table.record(&created("forever", None)).await.unwrap();
    table.record(&created("revoked", None)).await.unwrap();
    table.record(&revoked("revoked")).await.unwrap();
    table.record(&created("expired", Some(OffsetDateTime::now_utc() - hour()))).await.unwrap();
    table.record(&revoked("revoked-only")).await.unwrap();

    assert_eq!(pg.check(&sid("live")).await, Ok(()));
    assert_eq!(pg.check(&sid("forever")).await, Ok(()));
    assert_eq!(pg.check(&sid("revoked")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(pg.check(&sid("expired")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(pg.check(&sid("revoked-only")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(pg.check(&sid("absent")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn a_late_created_event_does_not_unrevoke_a_row() {
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    table.record(&revoked("s")).await.unwrap();
    table.record(&created("s", None)).await.unwrap();
    assert_eq!(pg.check(&sid("s")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn sids_shaped_like_sql_injection_or_odd_unicode_are_just_data() {
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    let odd =
        ["'; DROP TABLE user_sessions; --", "' OR '1'='1", "\\x00\\' \" `", "séance-🦀-ℵ₀-\u{202e}rtl", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"];
    for s in odd {
        table.record(&created(s, None)).await.unwrap();
        assert_eq!(pg.check(&sid(s)).await, Ok(()), "{s}");
    }
    assert_eq!(pg.check(&sid("' OR ''='")).await, Err(SessionLivenessError::Revoked));
    // The table is still there and holds exactly what we wrote.
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", pg.config().qualified_table()))
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(rows, odd.len() as i64);
}

#[tokio::test]
async fn an_unreachable_database_is_transient_quickly() {
    // Nothing listens on port 1.
    let config = PgConfig::new("postgres://revocation:revocation@127.0.0.1:1/revocation");
    let pg = PgSessionLiveness::connect(&config).unwrap();
    let started = Instant::now();
    let answer = pg.check(&sid("s")).await;
    assert!(
        matches!(&answer, Err(SessionLivenessError::Transient(why)) if why.contains("user_sessions")),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_query_slower_than_the_statement_timeout_is_transient() {
    let TestSchema { liveness: fast, table, .. } = fresh_schema().await;
    table.record(&created("s", None)).await.unwrap();
    // In a second schema, `user_sessions` is a view that sleeps a second per query.
    let slow_schema = format!("slow_{}", uuid::Uuid::new_v4().simple());
    // Setup goes through a patient pool: the adapter's has a check's budget.
    let setup = statement_pool().await;
    sqlx::query(&format!("CREATE SCHEMA {slow_schema}")).execute(&setup).await.unwrap();
    sqlx::query(&format!(
        "CREATE VIEW {slow_schema}.user_sessions AS SELECT s.* FROM {} s CROSS JOIN LATERAL (SELECT pg_sleep(1)) z",
        fast.config().qualified_table()
    ))
    .execute(&setup)
    .await
    .unwrap();
    let config = PgConfig::new(database_url()).schema(&slow_schema).unwrap();
    let slow = PgSessionLiveness::connect(&config).unwrap();
    let started = Instant::now();
    let answer = slow.check(&sid("s")).await;
    assert!(matches!(answer, Err(SessionLivenessError::Transient(_))), "{answer:?}");
    assert!(started.elapsed() < Duration::from_millis(900), "took {:?}", started.elapsed());
    // The fast table answers the same sid.
    assert_eq!(fast.check(&sid("s")).await, Ok(()));
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let TestSchema { liveness: pg, .. } = fresh_schema().await;
    pg.migrate().await.unwrap();
    pg.migrate().await.unwrap();
}

/// Cold: answers come from Postgres. Once the projection catches up, answers
/// come from the projection — and they are the same answers.
#[tokio::test]
async fn a_cold_projection_answers_from_postgres_then_switches_with_the_same_answers() {
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    let events = [
        created("a", None),
        created("b", Some(OffsetDateTime::now_utc() + hour())),
        created("c", None),
        revoked("c"),
        created("d", Some(OffsetDateTime::now_utc() - hour())),
        revoked("e"),
    ];
    for e in &events {
        table.record(e).await.unwrap();
    }
    let projection = Arc::new(Projection::new(FreshnessConfig::default()));
    projection.freshness().track_partitions([0]);
    let liveness = ProjectedLiveness::builder(projection.clone()).fallback(Arc::new(pg.clone())).build();
    let sids = ["a", "b", "c", "d", "e", "never-seen"].map(sid);

    let mut cold = Vec::new();
    for s in &sids {
        cold.push(liveness.check(s).await);
    }
    assert_eq!(liveness.counts().get(revocation_core::Source::Fallback, revocation_core::Answer::Live), 2);

    // The consumer replays the same events and catches up.
    for e in &events {
        projection.store().apply(e, SystemClock.now());
    }
    projection.freshness().record_position(0, events.len() as i64);
    projection.freshness().record_high_watermark(0, events.len() as i64, SystemClock.now());
    assert_eq!(liveness.state(), revocation_core::FreshnessState::Live);

    let mut live = Vec::new();
    for s in &sids {
        live.push(liveness.check(s).await);
    }
    assert_eq!(cold, live);
    assert_eq!(
        live,
        vec![
            Ok(()),
            Ok(()),
            Err(SessionLivenessError::Revoked),
            Err(SessionLivenessError::Revoked),
            Err(SessionLivenessError::Revoked),
            Err(SessionLivenessError::Revoked)
        ]
    );
    assert_eq!(liveness.counts().get(revocation_core::Source::Projection, revocation_core::Answer::Live), 2);
}

/// The URL of the local database with TLS parameters.
fn tls_url(params: &str) -> String {
    format!("{}?{params}", database_url())
}

#[tokio::test]
async fn the_fallback_answers_over_tls_with_the_server_certificate_verified() {
    let TestSchema { config, table, .. } = fresh_schema().await;
    table.record(&created("over-tls", None)).await.unwrap();
    let ca = tls_file("ca.pem");
    for params in [format!("sslmode=verify-full&sslrootcert={ca}"), "sslmode=require".to_owned()] {
        let mut tls = config.clone();
        tls.url = tls_url(&params);
        let pg = PgSessionLiveness::connect(&tls).unwrap();
        pg.probe().await.unwrap_or_else(|e| panic!("{params}: {e}; TLS is switched on by `scripts/postgres.sh up`"));
        assert_eq!(pg.check(&sid("over-tls")).await, Ok(()), "{params}");
        let encrypted: (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pg.pool())
            .await
            .unwrap();
        assert!(encrypted.0, "{params}: the connection is encrypted");
    }
}

#[tokio::test]
async fn a_server_certificate_from_an_unknown_authority_is_refused_and_said() {
    let TestSchema { mut config, .. } = fresh_schema().await;
    config.url = tls_url(&format!("sslmode=verify-full&sslrootcert={}", tls_file("other-ca.pem")));
    let pg = PgSessionLiveness::connect(&config).unwrap();
    let why = pg.probe().await.unwrap_err().to_string();
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    assert!(!why.contains("revocation:revocation"), "no password in {why}");
    assert!(matches!(pg.check(&sid("anyone")).await, Err(SessionLivenessError::Transient(_))));
}

/// The same workload of sessions, revocations and per-user cutoffs, applied
/// to a store and written to the tables: every session and every (user,
/// issued_at) pair answers alike, whatever the rounding or the order.
#[tokio::test]
async fn per_user_cutoffs_answer_in_postgres_as_in_the_projection() {
    use revocation_core::{EventJson, RawRecord, RecordFormat, SessionStore, Timestamp, TokenLiveness};
    use revocation_test_support::{Step, cutoff_workload};
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    let store = SessionStore::new();
    let workload = cutoff_workload(7, 300, 12);
    for step in &workload.steps {
        match step {
            Step::Session(event) => {
                table.record(event).await.unwrap();
                store.apply(event, SystemClock.now());
            }
            Step::Cutoff(cutoff) => {
                table.record_cutoff(cutoff).await.unwrap();
                let (key, value) = (cutoff.key(), cutoff.to_value());
                store.apply(EventJson.decode(&RawRecord::new(Some(&key), Some(&value))), SystemClock.now());
            }
        }
    }
    let now = SystemClock.now();
    let mut cut_off = 0;
    for sid in &workload.sids {
        let projected = match store.lookup(sid, now) {
            revocation_core::Lookup::Live => Ok(()),
            _ => Err(SessionLivenessError::Revoked),
        };
        cut_off += usize::from(store.state(sid).is_some_and(|s| store.is_cut_off(s)));
        assert_eq!(pg.check(sid).await, projected, "session {sid:?}");
    }
    let mut refused = 0;
    for (user, issued_at) in &workload.tokens {
        let issued_at = Timestamp::from_datetime(*issued_at);
        let projected = store.cutoffs().refuses(user.tag(), issued_at);
        refused += usize::from(projected);
        let expected = if projected { Err(SessionLivenessError::Revoked) } else { Ok(()) };
        assert_eq!(pg.check_token(user, issued_at).await, expected, "{user:?} at {issued_at:?}");
    }
    // The workload exercises both answers.
    assert!(cut_off > 10 && refused > 10 && refused < workload.tokens.len(), "{cut_off} cut off, {refused} refused");
}
