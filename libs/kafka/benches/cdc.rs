//! Change data capture through real Debezium (`scripts/servers.sh up`):
//!
//! - propagation **commit → `check` says revoked**: an `UPDATE … SET
//!   revoked_at` committed in Postgres, then the projection polled until it
//!   answers revoked, one revocation after another;
//! - the connector's **initial snapshot** of a table that already holds rows:
//!   rows/s and the time until the projection is Live;
//! - the **source-bound staleness** (behind the Postgres commit), sampled on a
//!   quiet table (heartbeats only) and during the revocations;
//! - **log out everywhere**: one `user_session_cutoffs` row committed, then
//!   the projection polled until a session of that user answers revoked (all
//!   of the user's sessions flip at once: one map update), for users of
//!   10,000 sessions each.
//!
//! The connector runs with `deploy/debezium-connector.json`'s settings
//! (`poll.interval.ms=10`, heartbeats every second), and again with
//! Debezium's default poll interval (500 ms) for comparison. Sizes:
//! `BENCH_CDC_REVOCATIONS` (1000), `BENCH_CDC_ROWS` (1,000,000),
//! `BENCH_CDC_CUTOFFS` (20 users of 10,000 sessions).
#![allow(clippy::unwrap_used)] // a benchmark states its expectations with unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use revocation_core::{Clock, Debezium, FreshnessState, Lookup, SessionId, SystemClock};
use revocation_kafka::{KafkaSource, SourceOptions};
use revocation_test_support::{CdcConnector, TestSchema, fresh_schema, source_options, statement_pool};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let revocations = env_usize("BENCH_CDC_REVOCATIONS", 1000);
    let rows = env_usize("BENCH_CDC_ROWS", 1_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(revocations, rows));
}

async fn run(revocations: usize, rows: usize) {
    let TestSchema { name: schema, config, .. } = fresh_schema().await;
    let table = config.qualified_table();
    let pool = statement_pool().await;
    // The table before the connector's first start: its initial snapshot.
    let started = Instant::now();
    // The adapter's pool has a short statement timeout; a bulk load needs none.
    let mut load = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *load).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO {table} (id, user_id, expires_at) SELECT gen_random_uuid()::text, 'user-' || (g % 1000), now() + interval '7 days' FROM generate_series(1, {rows}) g"
    ))
    .execute(&mut *load)
    .await
    .unwrap();
    load.commit().await.unwrap();
    println!("cdc: {rows} rows inserted in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    // The connector's poll interval bounds the latency; deploy/ sets it.
    let poll_ms = std::env::var("BENCH_CDC_POLL_MS").ok();
    let overrides: Vec<(&str, &str)> = poll_ms.iter().map(|ms| ("poll.interval.ms", ms.as_str())).collect();
    let mut connector = CdcConnector::register(&schema, &overrides);
    let options = SourceOptions { format: Arc::new(Debezium), expected_sessions: rows, ..source_options() };
    let projection = KafkaSource::start(connector.topic.clone(), options).unwrap();
    let liveness = projection.liveness();
    while liveness.state() != FreshnessState::Live {
        assert!(started.elapsed() < Duration::from_secs(900), "not Live after 15 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot_s = started.elapsed().as_secs_f64();
    let held = liveness.projection().store().len();
    println!(
        "cdc: initial snapshot of {rows} rows → Live in {snapshot_s:.1} s ({:.0} rows/s; {held} sessions held)",
        rows as f64 / snapshot_s
    );

    let source_staleness = |liveness: &revocation_core::ProjectedLiveness| {
        liveness.status().freshness.source_staleness.map(|s| s.as_secs_f64() * 1e3)
    };
    let mut quiet = Vec::new();
    for _ in 0..100 {
        quiet.extend(source_staleness(&liveness));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    quiet.sort_by(f64::total_cmp);

    let ids: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT id FROM {table} WHERE revoked_at IS NULL AND NOT starts_with(id, '__heartbeat__') LIMIT {}",
        revocations * 2
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let (ours, theirs) = ids.split_at(ids.len() / 2);
    let mut loaded = Vec::new();
    let deployed = propagation(&pool, &table, &liveness, ours, &mut loaded).await;
    let cutoffs = log_out_everywhere(&pool, &schema, &table, &liveness, env_usize("BENCH_CDC_CUTOFFS", 20)).await;
    println!(
        "cdc: log out everywhere, commit of one cutoff row → all 10000 sessions of the user revoked, {} users: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
        cutoffs.len(),
        percentile(&cutoffs, 0.5),
        percentile(&cutoffs, 0.99),
        cutoffs[cutoffs.len() - 1]
    );
    // Debezium's own default poll interval, for comparison.
    connector.reconfigure(&[("poll.interval.ms", "500")]);
    let defaults = propagation(&pool, &table, &liveness, &theirs[..theirs.len().min(200)], &mut Vec::new()).await;
    loaded.sort_by(f64::total_cmp);
    let poll = poll_ms.as_deref().unwrap_or("10");
    println!(
        "cdc: commit → check says revoked, {} revocations, poll.interval.ms={poll}: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
        deployed.len(),
        percentile(&deployed, 0.5),
        percentile(&deployed, 0.99),
        deployed[deployed.len() - 1]
    );
    println!(
        "cdc: the same with Debezium's default poll.interval.ms=500, {} revocations: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
        defaults.len(),
        percentile(&defaults, 0.5),
        percentile(&defaults, 0.99),
        defaults[defaults.len() - 1]
    );
    println!(
        "cdc: source staleness quiet p50 {:.0} ms · max {:.0} ms; during the revocations p50 {:.0} ms · max {:.0} ms",
        percentile(&quiet, 0.5),
        quiet[quiet.len() - 1],
        percentile(&loaded, 0.5),
        loaded[loaded.len() - 1]
    );
    projection.shutdown().await;
    drop(connector);

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("cdc.json"),
        format!(
            r#"{{"revocations": {}, "poll_interval_ms": {poll}, "p50_ms": {:.3}, "p99_ms": {:.3}, "max_ms": {:.3}, "default_revocations": {}, "default_p50_ms": {:.3}, "default_p99_ms": {:.3}, "default_max_ms": {:.3}, "rows": {rows}, "snapshot_s": {snapshot_s:.3}, "quiet_staleness_p50_ms": {:.1}, "quiet_staleness_max_ms": {:.1}, "loaded_staleness_p50_ms": {:.1}, "loaded_staleness_max_ms": {:.1}, "heartbeat_interval_ms": 1000, "cutoffs": {}, "cutoff_p50_ms": {:.3}, "cutoff_p99_ms": {:.3}, "cutoff_max_ms": {:.3}}}"#,
            deployed.len(),
            percentile(&deployed, 0.5),
            percentile(&deployed, 0.99),
            deployed[deployed.len() - 1],
            defaults.len(),
            percentile(&defaults, 0.5),
            percentile(&defaults, 0.99),
            defaults[defaults.len() - 1],
            percentile(&quiet, 0.5),
            quiet[quiet.len() - 1],
            percentile(&loaded, 0.5),
            loaded[loaded.len() - 1],
            cutoffs.len(),
            percentile(&cutoffs, 0.5),
            percentile(&cutoffs, 0.99),
            cutoffs[cutoffs.len() - 1],
        ),
    )
    .unwrap();
}

/// Revokes each row in Postgres, one after another, and times commit → the
/// projection answers revoked; samples the source staleness into `staleness`.
/// Returns the latencies in ms, sorted.
async fn propagation(
    pool: &sqlx::PgPool,
    table: &str,
    liveness: &revocation_core::ProjectedLiveness,
    ids: &[(String,)],
    staleness: &mut Vec<f64>,
) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(ids.len());
    for (id,) in ids {
        let sid = SessionId::new(id.as_str()).unwrap();
        sqlx::query(&format!("UPDATE {table} SET revoked_at = now() WHERE id = $1"))
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
        // The UPDATE returned: the commit is acknowledged.
        let committed = Instant::now();
        while liveness.projection().store().lookup(&sid, SystemClock.now()) != Lookup::Revoked {
            assert!(committed.elapsed() < Duration::from_secs(30), "{id} not revoked after 30 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(committed.elapsed().as_secs_f64() * 1e3);
        staleness.extend(liveness.status().freshness.source_staleness.map(|s| s.as_secs_f64() * 1e3));
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// For each of `users` new users: 10,000 sessions inserted (and seen live),
/// then one cutoff row committed; the time until the projection answers one
/// of them revoked, then a check (untimed) that all of them are. Returns the
/// latencies in ms, sorted.
async fn log_out_everywhere(
    pool: &sqlx::PgPool,
    schema: &str,
    table: &str,
    liveness: &revocation_core::ProjectedLiveness,
    users: usize,
) -> Vec<f64> {
    const SESSIONS: usize = 10_000;
    let mut latencies = Vec::with_capacity(users);
    for u in 0..users {
        let user = format!("everywhere-{u}");
        let ids: Vec<(String,)> = sqlx::query_as(&format!(
            "INSERT INTO {table} (id, user_id, created_at) SELECT gen_random_uuid()::text, $1, now() - interval '1 minute' \
             FROM generate_series(1, {SESSIONS}) RETURNING id"
        ))
        .bind(&user)
        .fetch_all(pool)
        .await
        .unwrap();
        let sids: Vec<SessionId> = ids.iter().map(|(id,)| SessionId::new(id.as_str()).unwrap()).collect();
        let store = || liveness.projection();
        while sids.iter().any(|sid| store().store().lookup(sid, SystemClock.now()) != Lookup::Live) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sqlx::query(&format!("INSERT INTO {schema}.user_session_cutoffs (user_id, not_before) VALUES ($1, now())"))
            .bind(&user)
            .execute(pool)
            .await
            .unwrap();
        let committed = Instant::now();
        let last = &sids[SESSIONS - 1];
        while store().store().lookup(last, SystemClock.now()) != Lookup::Revoked {
            assert!(committed.elapsed() < Duration::from_secs(30), "{user} not logged out after 30 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(committed.elapsed().as_secs_f64() * 1e3);
        let live = sids.iter().filter(|sid| store().store().lookup(sid, SystemClock.now()) != Lookup::Revoked).count();
        assert_eq!(live, 0, "every session of {user} answers revoked");
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}
