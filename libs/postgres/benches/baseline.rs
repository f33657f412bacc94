//! Today's adapter at 1M rows — the baseline every projection number is
//! compared with — and the projection's `check` on the same ids, in the same run.
//!
//! Run with: cargo bench -p revocation-postgres --bench baseline
//! (needs `scripts/servers.sh up`; `BENCH_ROWS=1000000`, `BENCH_CHECKS=21000` Postgres checks per task count).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use revocation_core::{
    Clock, FreshnessConfig, ProjectedLiveness, Projection, SessionEvent, SessionId, SessionLiveness, SessionStore,
    SystemClock,
};
use revocation_postgres::{PgConfig, PgSessionLiveness};

/// Checks per projection latency sample (see [`run`]).
const PROJECTION_BATCH: usize = 100;
/// Interleaved rounds (Postgres, then the projection) per task count: the
/// machine's drift (Postgres's p50 moved 73–124 µs between runs here) hits
/// both sides of a round alike; the ratio is the median of per-round ratios.
const ROUNDS: usize = 7;
/// The projection answers this many checks for each Postgres one, so both
/// sides of a round take a comparable share of it.
const PROJECTION_CHECKS_PER_PG: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Stats {
    checks_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Medians over the rounds of each round's statistics.
struct Median {
    checks_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Median {
    fn of(rounds: &[Stats]) -> Self {
        let of = |f: fn(&Stats) -> f64| median(rounds.iter().map(f).collect());
        Self {
            checks_per_sec: of(|s| s.checks_per_sec),
            p50_us: of(|s| s.p50.as_secs_f64() * 1e6),
            p99_us: of(|s| s.p99.as_secs_f64() * 1e6),
        }
    }

    fn json(&self) -> String {
        format!(
            r#"{{"checks_per_sec": {:.0}, "p50_us": {:.3}, "p99_us": {:.3}}}"#,
            self.checks_per_sec, self.p50_us, self.p99_us
        )
    }
}

fn stats(mut latencies: Vec<Duration>, checks: usize, wall: Duration) -> Stats {
    latencies.sort();
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Stats { checks_per_sec: checks as f64 / wall.as_secs_f64(), p50: q(0.5), p99: q(0.99) }
}

/// Which sids task `t` of `tasks` asks about, worked out before timing: the
/// sids in the order Postgres sampled them (random, so every check lands
/// somewhere else in the table and in the map), read in sequence — a
/// verifier's sid was just parsed from its token and is in cache, so the
/// harness should not add a miss to fetch it. The same for every side of a
/// round, so all of them ask about the same sessions.
fn assigned(t: usize, tasks: usize, (start, checks): (usize, usize), sids: usize) -> Vec<usize> {
    (t..checks).step_by(tasks).map(|i| (start + i) % sids).collect()
}

/// Runs `checks` checks on `tasks` tasks. Each latency sample is the time of
/// `batch` consecutive checks divided by `batch`: 1 for Postgres; more for
/// the projection, whose check takes about as long as reading the timer
/// twice, so timing each one alone would mostly measure the timer.
async fn run(
    liveness: Arc<dyn SessionLiveness>,
    sids: Arc<Vec<SessionId>>,
    tasks: usize,
    (start, checks): (usize, usize),
    batch: usize,
) -> Stats {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (liveness, sids) = (liveness.clone(), sids.clone());
        handles.push(tokio::spawn(async move {
            let mine = assigned(t, tasks, (start, checks), sids.len());
            let mut latencies = Vec::with_capacity(mine.len() / batch + 1);
            for chunk in mine.chunks(batch) {
                let began = Instant::now();
                for &i in chunk {
                    let answer = liveness.check(&sids[i]).await;
                    assert!(!matches!(answer, Err(revocation_core::SessionLivenessError::Transient(_))), "{answer:?}");
                }
                latencies.push(began.elapsed() / chunk.len() as u32);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    stats(all, checks, started.elapsed())
}

/// The ceiling: a bare `DashMap::get` (DashMap's default hasher, as in the
/// core's targets) on the same keys, in the same loop shape as [`run`], on
/// `tasks` threads. No port, no clock, no freshness: what the map alone costs.
fn run_bare(map: &DashMap<[u8; 16], u64>, keys: &[[u8; 16]], tasks: usize, (start, checks): (usize, usize)) -> Stats {
    let started = Instant::now();
    let all = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                scope.spawn(move || {
                    let mine = assigned(t, tasks, (start, checks), keys.len());
                    let mut latencies = Vec::with_capacity(mine.len() / PROJECTION_BATCH + 1);
                    for chunk in mine.chunks(PROJECTION_BATCH) {
                        let began = Instant::now();
                        for &i in chunk {
                            black_box(map.get(&keys[i]).map(|v| *v));
                        }
                        latencies.push(began.elapsed() / chunk.len() as u32);
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    stats(all, checks, started.elapsed())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let rows = env_usize("BENCH_ROWS", 1_000_000);
        let checks = env_usize("BENCH_CHECKS", 21_000);
        let database_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://revocation:revocation@127.0.0.1:5432/revocation".into());
        let url = database_url.clone();
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut config = PgConfig::new(url).schema(&schema).unwrap();
        config.acquire_timeout = Duration::from_secs(5);
        config.statement_timeout = Duration::from_secs(5);
        let pg = PgSessionLiveness::connect(&config).unwrap();
        pg.migrate().await.unwrap_or_else(|e| panic!("{e}; run `scripts/servers.sh up`"));
        let table = config.qualified_table();
        let started = Instant::now();
        // Loading takes longer than a check's statement timeout: one connection without it.
        let mut conn = pg.pool().acquire().await.unwrap();
        sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO {table} (id, user_id, created_at, expires_at, revoked_at) \
             SELECT gen_random_uuid()::text, 'user-' || i, now(), now() + interval '1 day', \
                    CASE WHEN i % 10 = 0 THEN now() END \
             FROM generate_series(1, {rows}) AS i"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query(&format!("ANALYZE {table}")).execute(&mut *conn).await.unwrap();
        let ids: Vec<(String, bool)> =
            sqlx::query_as(&format!("SELECT id, revoked_at IS NOT NULL FROM {table} ORDER BY random() LIMIT 100000"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        println!("baseline: {rows} rows in {table} (loaded in {:.1} s)", started.elapsed().as_secs_f64());

        // The projection over the same sessions (all of them, from the table).
        let projection = Arc::new(Projection::with_store(
            SessionStore::with_capacity(rows),
            FreshnessConfig::with_max_staleness(Duration::from_secs(3600)),
        ));
        let all: Vec<(String, bool)> = sqlx::query_as(&format!("SELECT id, revoked_at IS NOT NULL FROM {table}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let at = time::OffsetDateTime::now_utc();
        for (id, revoked) in &all {
            let sid = SessionId::new(id.clone()).unwrap();
            let now = SystemClock.now();
            let created =
                SessionEvent::Created { sid: sid.clone(), user_id: String::new(), created_at: at, expires_at: None };
            projection.store().apply(&created, now);
            if *revoked {
                projection.store().apply(&SessionEvent::Revoked { sid, revoked_at: at, reason: None }, now);
            }
        }
        let bare: DashMap<[u8; 16], u64> = DashMap::with_capacity(rows);
        for (n, (id, _)) in all.iter().enumerate() {
            bare.insert(uuid::Uuid::parse_str(id).unwrap().into_bytes(), n as u64);
        }
        drop(all);
        projection.freshness().track_partitions([0]);
        projection.freshness().record_position(0, 0);
        projection.freshness().record_high_watermark(0, 0, SystemClock.now());
        let projected: Arc<dyn SessionLiveness> = Arc::new(ProjectedLiveness::builder(projection).build());
        let sids = Arc::new(ids.into_iter().map(|(id, _)| SessionId::new(id).unwrap()).collect::<Vec<_>>());
        let keys: Vec<[u8; 16]> = sids.iter().map(|sid| sid.canonical_uuid().unwrap()).collect();
        let pg: Arc<dyn SessionLiveness> = Arc::new(pg);

        println!("{ROUNDS} interleaved rounds per task count; medians of the rounds:");
        println!("{:<30} {:>12} {:>10} {:>10}", "", "checks/s", "p50", "p99");
        let mut json = Vec::new();
        for tasks in [1, 2] {
            let (mut base, mut ours, mut ceiling, mut ratios, mut ceiling_ratios) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let per_round = checks / ROUNDS;
            for round in 0..ROUNDS {
                let start = round * per_round * PROJECTION_CHECKS_PER_PG;
                let b = run(pg.clone(), sids.clone(), tasks, (start, per_round), 1).await;
                let o =
                    run(projected.clone(), sids.clone(), tasks, (start, per_round * PROJECTION_CHECKS_PER_PG), PROJECTION_BATCH)
                        .await;
                let c = run_bare(&bare, &keys, tasks, (start, per_round * PROJECTION_CHECKS_PER_PG));
                ratios.push(b.p50.as_secs_f64() / o.p50.as_secs_f64());
                ceiling_ratios.push(b.p50.as_secs_f64() / c.p50.as_secs_f64());
                ceiling.push(c);
                base.push(b);
                ours.push(o);
            }
            let (base, ours, ratio) = (Median::of(&base), Median::of(&ours), median(ratios.clone()));
            let (ceiling, ceiling_ratio) = (Median::of(&ceiling), median(ceiling_ratios));
            for (name, s) in [
                (format!("postgres adapter, {tasks} task(s)"), &base),
                (format!("projection, {tasks} task(s)"), &ours),
                (format!("bare DashMap::get, {tasks} task(s)"), &ceiling),
            ] {
                println!("{name:<30} {:>12.0} {:>8.1}µs {:>8.1}µs", s.checks_per_sec, s.p50_us, s.p99_us);
            }
            let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.0}×")).collect();
            println!(
                "ratio with {tasks} task(s): projection p50 is {ratio:.0}× lower (rounds: {}); throughput {:.0}× higher",
                rounds.join(" "),
                ours.checks_per_sec / base.checks_per_sec
            );
            println!("  (a bare DashMap::get on the same keys would be {ceiling_ratio:.0}× lower: the ceiling)");
            json.push(format!(
                r#"{{"tasks": {tasks}, "p50_ratio": {ratio:.1}, "bare_get_p50_ratio": {ceiling_ratio:.1}, "round_ratios": [{}], "postgres": {}, "projection": {}, "bare_get": {}}}"#,
                ratios.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", "),
                base.json(),
                ours.json(),
                ceiling.json()
            ));
        }
        println!(
            "(projection latencies: time of {PROJECTION_BATCH} consecutive checks / {PROJECTION_BATCH}; Postgres: each check)"
        );
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
        std::fs::create_dir_all(&out).unwrap();
        let report = format!(
            r#"{{"rows": {rows}, "projection_batch": {PROJECTION_BATCH}, "rounds": {ROUNDS}, "runs": [{}]}}"#,
            json.join(", ")
        );
        std::fs::write(out.join("postgres-baseline.json"), report).unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", config.schema)).execute(&mut conn).await.ok();
    });
}
