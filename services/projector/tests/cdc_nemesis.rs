//! The CDC nemesis (Jepsen-style: a workload, a nemesis, a checker) against
//! the real servers: a seeded workload runs straight in PostgreSQL — inserts,
//! revocations, deletes, log-out-everywhere, expiries, the documented
//! cleanup — while a nemesis pauses and kills the Connect worker, kills and
//! restarts PostgreSQL, pauses and kills the broker, restarts projectors warm
//! and cold, replaces one by a new replica booted from the other (an empty
//! disk, `--bootstrap-from`), and grows the topic (then runs the documented
//! move to a new topic). Two `projector` processes are asked over HTTP all the while; the
//! checker counts every 200 for a row Postgres had revoked, deleted or let
//! expire more than the bound before the check began.
//!
//! `NEMESIS_SEED` replays a run, `NEMESIS_SECONDS` sets its length (default
//! 60, longer until every fault kind has run once; `scripts/nemesis
//! --minutes N` runs a long one).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nemesis_support::{Launch, recovery, retry};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use revocation_kafka::add_partitions;
use revocation_test_support::{
    CdcConnector, Heal, SERIAL, TestSchema, documented_cleanup, fresh_schema, run_script, statement_pool,
};
use time::OffsetDateTime;

mod nemesis_support;

/// The projectors' `--max-staleness`.
const BOUND: Duration = Duration::from_secs(2);
/// Added to the bound when judging: the commit happened before the
/// statement returned, and the answer is judged from when the check began.
const SLACK: Duration = Duration::from_millis(200);
/// Users the workload's sessions belong to (log-out-everywhere revokes one's).
const USERS: u32 = 50;
/// Checks ask one of the rows inserted last this often (the rest: any row).
const RECENT_SHARE: f64 = 0.7;

/// One row as the workload made it.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Its expiry (wall clock).
    expires_at: OffsetDateTime,
    /// When the statement that revoked or deleted it had returned.
    dead_since: Option<Instant>,
}

/// One check over HTTP.
#[derive(Debug, Clone)]
struct Check {
    id: String,
    began: Instant,
    began_wall: OffsetDateTime,
    /// HTTP status; 0 when the process did not answer (restarting).
    status: u16,
}

/// The run's last stretch, without faults.
const QUIET: Duration = Duration::from_secs(25);

/// How far past `NEMESIS_SECONDS` a run goes on until every fault kind has run.
const OVERTIME: Duration = Duration::from_secs(240);

/// Once both projectors were Live again after a fault: how long after it
/// was healed, and after it began.
type Recovered = (Duration, Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ConnectPause,
    ConnectKill,
    PostgresKill,
    BrokerPause,
    BrokerKill,
    ProjectorWarmRestart,
    ProjectorColdRestart,
    ProjectorPeerBoot,
    GrowTopic,
}

const FAULTS: [Fault; 9] = [
    Fault::ConnectPause,
    Fault::ConnectKill,
    Fault::PostgresKill,
    Fault::BrokerPause,
    Fault::BrokerKill,
    Fault::ProjectorWarmRestart,
    Fault::ProjectorColdRestart,
    Fault::ProjectorPeerBoot,
    Fault::GrowTopic,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cdc_nemesis_never_admits_a_row_postgres_revoked_deleted_or_let_expire() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let seed: u64 = std::env::var("NEMESIS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let seconds: u64 = std::env::var("NEMESIS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    eprintln!("CDC nemesis: NEMESIS_SEED={seed} NEMESIS_SECONDS={seconds}");
    let TestSchema { name: schema, config, .. } = fresh_schema().await;
    let table = config.qualified_table();
    let pool = statement_pool().await;
    let mut connector = CdcConnector::register(&schema, &[("heartbeat.interval.ms", "250")]);
    let mut launch = Launch {
        schema: schema.clone(),
        topic: connector.topic.topic.clone(),
        snapshots: std::env::temp_dir().join(format!("nemesis-{}", uuid::Uuid::new_v4().simple())),
        booted: 0,
    };
    let (mut warm, mut cold) = (launch.projector(true), launch.projector(false));
    recovery([&warm, &cold], Duration::from_secs(120)).await.expect("both projectors Live at start");
    let mut generation = 0;

    let rows: Arc<Mutex<HashMap<String, Row>>> = Arc::default();
    // The rows inserted last, which the checkers favour: most are still live.
    let recent: Arc<Mutex<std::collections::VecDeque<String>>> = Arc::default();
    let checks: Arc<Mutex<Vec<Check>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // A run too short for every fault kind goes on until each has run once
    // (a round of all nine takes ~90 s here), at most this late; statements
    // are retried until then.
    let overtime = deadline + OVERTIME;

    // The workload, straight in PostgreSQL.
    let workload = {
        let (rows, recent, stop, pool, table) =
            (rows.clone(), recent.clone(), stop.clone(), pool.clone(), table.clone());
        let cleanup = documented_cleanup(&table);
        let mut rng = StdRng::seed_from_u64(seed);
        tokio::spawn(async move {
            let mut n = 0usize;
            let mut ops: HashMap<&str, u64> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let known: Vec<String> = rows.lock().unwrap().keys().cloned().collect();
                let op = rng.random_range(0..100);
                if known.len() < 20 || op < 50 {
                    let id = format!("n-{seed}-{n}");
                    n += 1;
                    let lifetime = if rng.random_bool(0.2) { rng.random_range(2..20) } else { 86_400 };
                    let expires_at = OffsetDateTime::now_utc() + Duration::from_secs(lifetime);
                    let expires = expires_at.format(&time::format_description::well_known::Rfc3339).unwrap();
                    let user = format!("u-{}", rng.random_range(0..USERS));
                    // Known to the model before the insert: a check may find it at once.
                    rows.lock().unwrap().insert(id.clone(), Row { expires_at, dead_since: None });
                    {
                        let mut recent = recent.lock().unwrap();
                        recent.push_back(id.clone());
                        if recent.len() > 200 {
                            recent.pop_front();
                        }
                    }
                    // A retry after a commit whose reply a PostgreSQL kill
                    // lost does nothing, instead of failing until the bound.
                    let statement = format!(
                        "INSERT INTO {table} (id, user_id, expires_at) VALUES ('{id}', '{user}', '{expires}') ON CONFLICT (id) DO NOTHING RETURNING id"
                    );
                    retry(&pool, &statement, overtime).await;
                    *ops.entry("insert").or_default() += 1;
                    continue;
                }
                let (kind, statement) = if op < 72 {
                    let id = &known[rng.random_range(0..known.len())];
                    (
                        "revoke",
                        format!(
                            "UPDATE {table} SET revoked_at = now() WHERE id = '{id}' AND revoked_at IS NULL RETURNING id"
                        ),
                    )
                } else if op < 90 {
                    let id = &known[rng.random_range(0..known.len())];
                    ("delete", format!("DELETE FROM {table} WHERE id = '{id}' RETURNING id"))
                } else if op < 96 {
                    let user = format!("u-{}", rng.random_range(0..USERS));
                    (
                        "log out everywhere",
                        format!(
                            "UPDATE {table} SET revoked_at = now() WHERE user_id = '{user}' AND revoked_at IS NULL RETURNING id"
                        ),
                    )
                } else {
                    ("cleanup", format!("{} RETURNING id", cleanup.trim().trim_end_matches(';')))
                };
                if let Some(ids) = retry(&pool, &statement, overtime).await {
                    let now = Instant::now();
                    let mut rows = rows.lock().unwrap();
                    for id in ids {
                        if let Some(row) = rows.get_mut(&id) {
                            row.dead_since.get_or_insert(now);
                        }
                    }
                }
                *ops.entry(kind).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(rng.random_range(1..15))).await;
            }
            ops
        })
    };

    // Checkers: random rows, recently touched ones more often, over HTTP.
    let bases: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![warm.base.clone(), cold.base.clone()]));
    let mut checkers = Vec::new();
    for c in 0..2u64 {
        let (rows, recent, checks, stop, bases) =
            (rows.clone(), recent.clone(), checks.clone(), stop.clone(), bases.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ (c + 1));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        checkers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = {
                    let (rows, recent) = (rows.lock().unwrap(), recent.lock().unwrap());
                    if rows.is_empty() {
                        None
                    } else if rng.random_bool(RECENT_SHARE) && !recent.is_empty() {
                        Some(recent[rng.random_range(0..recent.len())].clone())
                    } else {
                        rows.keys().nth(rng.random_range(0..rows.len())).cloned()
                    }
                };
                let Some(id) = id else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let base = {
                    let bases = bases.lock().unwrap();
                    bases[rng.random_range(0..bases.len())].clone()
                };
                let (began, began_wall) = (Instant::now(), OffsetDateTime::now_utc());
                let status = match client.get(format!("{base}/v1/sessions/{id}")).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                };
                checks.lock().unwrap().push(Check { id, began, began_wall, status });
                tokio::time::sleep(Duration::from_millis(rng.random_range(1..6))).await;
            }
        }));
    }

    // The nemesis: every fault kind in a seeded order, again and again.
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let mut order: Vec<Fault> = Vec::new();
    let mut recoveries: Vec<(Fault, f64, Option<Recovered>)> = Vec::new();
    // Each boot from a peer: whether the peer was Live, and the start made.
    let mut peer_boots: Vec<(bool, serde_json::Value)> = Vec::new();
    let mut peer_was_live = false;
    let started = Instant::now();
    let every_kind_ran = |recoveries: &[(Fault, f64, Option<Recovered>)]| {
        FAULTS.iter().all(|kind| recoveries.iter().any(|(fault, _, _)| fault == kind))
    };
    while Instant::now() + QUIET < deadline || (!every_kind_ran(&recoveries) && Instant::now() + QUIET < overtime) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(2_000..5_000))).await;
        if order.is_empty() {
            order = FAULTS.to_vec();
            order.shuffle(&mut rng);
            // Growing the topic moves the run to a new one: not too early.
            order.retain(|f| *f != Fault::GrowTopic || generation == 0);
        }
        let fault = order.pop().unwrap();
        let at = started.elapsed().as_secs_f64();
        let began = Instant::now();
        let hold = Duration::from_millis(rng.random_range(1_000..4_000));
        eprintln!("nemesis: {fault:?} at {at:.1} s (hold {hold:?})");
        match fault {
            Fault::ConnectPause => {
                run_script("connect.sh", "pause");
                tokio::time::sleep(hold).await;
                run_script("connect.sh", "resume");
            }
            Fault::ConnectKill => {
                run_script("connect.sh", "kill");
                tokio::time::sleep(hold).await;
                run_script("connect.sh", "up");
                // A standalone worker keeps offsets, not connectors.
                connector.reconfigure(&[]);
            }
            Fault::PostgresKill => {
                run_script("postgres.sh", "kill");
                tokio::time::sleep(hold).await;
                run_script("postgres.sh", "up");
            }
            Fault::BrokerPause => {
                run_script("kafka.sh", "pause");
                tokio::time::sleep(hold).await;
                run_script("kafka.sh", "resume");
            }
            Fault::BrokerKill => {
                run_script("kafka.sh", "kill");
                tokio::time::sleep(hold).await;
                run_script("kafka.sh", "up");
            }
            Fault::ProjectorWarmRestart => {
                // SIGTERM: the snapshot is written; the restart reads it.
                warm.terminate();
                warm = launch.projector(true);
            }
            Fault::ProjectorColdRestart => {
                drop(cold); // SIGKILL
                cold = launch.projector(false);
            }
            Fault::ProjectorPeerBoot => {
                // A new replica takes its place, booted from the other
                // (which serves only while Live; else it starts cold).
                peer_was_live = warm.lag().await.is_some_and(|lag| lag["state"] == "live");
                drop(cold); // SIGKILL
                cold = launch.booted_from(&warm.base);
            }
            Fault::GrowTopic => {
                add_partitions(&connector.topic, 6).await.unwrap();
                tokio::time::sleep(hold).await;
                // The documented move (docs/cdc.md#repartitioning): a new
                // connector and topic, the projectors started on it.
                generation += 1;
                let name = format!("{schema}_g{generation}");
                let replacement = CdcConnector::register_as(&schema, &name, &[("heartbeat.interval.ms", "250")]);
                drop(std::mem::replace(&mut connector, replacement));
                launch.topic = connector.topic.topic.clone();
                let _ = std::fs::remove_dir_all(&launch.snapshots);
                drop((warm, cold));
                (warm, cold) = (launch.projector(true), launch.projector(false));
            }
        }
        // An operator restarts a connector task that failed during the fault.
        if connector.restart_failed() {
            eprintln!("nemesis: the connector's task had failed; restarted it");
        }
        *bases.lock().unwrap() = vec![warm.base.clone(), cold.base.clone()];
        let took = recovery([&warm, &cold], Duration::from_secs(120)).await;
        eprintln!("nemesis: {fault:?} healed; both Live again after {took:?}");
        if fault == Fault::ProjectorPeerBoot {
            let start = cold.lag().await.map(|lag| lag["start"].clone()).unwrap_or_default();
            eprintln!("nemesis: the new replica's start (its peer was live: {peer_was_live}): {start}");
            peer_boots.push((peer_was_live, start));
        }
        recoveries.push((fault, at, took.map(|t| (t, began.elapsed()))));
    }
    // The last stretch without faults, checked all the same.
    let quiet_until = deadline.max(Instant::now() + QUIET);
    while Instant::now() < quiet_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ran = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let ops = workload.await.unwrap();
    for c in checkers {
        c.await.unwrap();
    }

    // Nothing lost: once both are Live and the bound has passed, every row
    // answers as Postgres holds it.
    recovery([&warm, &cold], Duration::from_secs(120)).await.expect("both projectors Live after the run");
    tokio::time::sleep(BOUND * 2).await;
    let rows = rows.lock().unwrap().clone();
    // A row Postgres no longer holds is unknown to the projection and is
    // confirmed with Postgres at a bounded rate (503 past it): a mismatch is
    // asked again, slowly, before it counts as lost.
    let mut lost = Vec::new();
    // Judged by what Postgres holds now, not by the model: a statement whose
    // reply a PostgreSQL kill lost may have committed unseen.
    let not_revoked: std::collections::HashSet<String> =
        sqlx::query_scalar::<_, String>(&format!("SELECT id FROM {table} WHERE revoked_at IS NULL"))
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    // What Postgres holds for `id` at `at`: 410 once revoked, deleted or
    // expired, 200 before.
    let want = |id: &str, row: &Row, at: OffsetDateTime| {
        if !not_revoked.contains(id) || row.expires_at <= at { 410 } else { 200 }
    };
    for p in [&warm, &cold] {
        for (id, row) in &rows {
            let mut ok = false;
            let mut last = (0, 0);
            for _ in 0..20 {
                // A row may expire while it is asked: either side of the
                // request is a right answer.
                let before = OffsetDateTime::now_utc();
                let got = p.get(&format!("/v1/sessions/{id}")).await.0;
                let after = OffsetDateTime::now_utc();
                if got == want(id, row, before) || got == want(id, row, after) {
                    ok = true;
                    break;
                }
                last = (want(id, row, after), got);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !ok {
                lost.push((id.clone(), last.0, last.1));
            }
        }
    }

    // The checker.
    let checks = checks.lock().unwrap().clone();
    let mut violations = Vec::new();
    let mut by_status: HashMap<u16, u64> = HashMap::new();
    for check in &checks {
        *by_status.entry(check.status).or_default() += 1;
        if check.status != 200 {
            continue;
        }
        let row = rows[&check.id];
        let revoked_long_ago = row.dead_since.is_some_and(|d| check.began > d + BOUND + SLACK);
        let expired = check.began_wall > row.expires_at;
        if revoked_long_ago || expired {
            violations.push(check.clone());
        }
    }
    let mut kinds: Vec<String> =
        FAULTS.iter().map(|f| format!("{f:?} ×{}", recoveries.iter().filter(|(r, _, _)| r == f).count())).collect();
    kinds.sort();
    eprintln!("CDC nemesis, seed {seed}, {:.0} s of workload and faults (asked for {seconds} s):", ran.as_secs_f64());
    eprintln!("  workload: {} rows; operations {ops:?}", rows.len());
    eprintln!("  faults: {}", kinds.join(", "));
    for (fault, at, took) in &recoveries {
        let took = took.map_or("not within 120 s of healing".to_owned(), |(healed, whole)| {
            format!("{:.1} s after healing, {:.1} s after the fault began", healed.as_secs_f64(), whole.as_secs_f64())
        });
        eprintln!("    {at:7.1} s  {fault:?}: both Live again {took}");
    }
    eprintln!(
        "  checks: {} (200: {}, 410: {}, 503: {}, no answer: {})",
        checks.len(),
        by_status.get(&200).unwrap_or(&0),
        by_status.get(&410).unwrap_or(&0),
        by_status.get(&503).unwrap_or(&0),
        by_status.get(&0).unwrap_or(&0)
    );
    eprintln!("  violations (200 for a row revoked, deleted or expired past the bound): {}", violations.len());
    for v in violations.iter().take(10) {
        eprintln!("    {v:?} {:?}", rows[&v.id]);
    }
    eprintln!("  rows answered otherwise than Postgres holds them after healing: {}", lost.len());
    eprintln!("{} passed, {} failed", checks.len() - violations.len(), violations.len() + lost.len());
    assert!(violations.is_empty(), "{} checks answered 200 for a row gone past the bound", violations.len());
    assert!(lost.is_empty(), "after healing, {} rows (first ten: {:?})", lost.len(), &lost[..lost.len().min(10)]);
    assert!(recoveries.iter().all(|(_, _, took)| took.is_some()), "a fault did not heal: {recoveries:?}");
    assert!(every_kind_ran(&recoveries), "not every fault kind ran within {OVERTIME:?} past the run's end: {kinds:?}");
    assert!(
        peer_boots.iter().all(|(live, start)| !live || start["kind"] == "warm"),
        "a replica booted from a live peer started cold: {peer_boots:?}"
    );
    let _ = std::fs::remove_dir_all(&launch.snapshots);
    let _ = std::fs::remove_file(launch.token_file());
    for n in 1..=launch.booted {
        let _ = std::fs::remove_dir_all(launch.snapshots.with_extension(format!("booted-{n}")));
    }
}
