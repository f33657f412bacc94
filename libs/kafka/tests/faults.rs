//! The Kafka source under faults (Jepsen-style: a workload, a nemesis, a
//! checker) against the real servers, driven through our scripts. The tests
//! run one at a time (they stop and freeze the shared servers) and always
//! heal what they broke.
//!
//! `FAULT_SEED` replays a randomized run; `FAULT_SECONDS` sets its length
//! (default 40, longer until every fault kind has run once).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use revocation_core::{FreshnessState, SessionLiveness, SessionLivenessError, Timestamp};
use revocation_kafka::{EventPublisher, KafkaConfig, KafkaSource, SnapshotOptions, SourceOptions};
use revocation_postgres::{PgConfig, PgSessionLiveness, PgSessionTable};
use revocation_test_support::{
    Heal, SERIAL, bootstrap, created, database_url, eventually, revoked, run_script, sid, statement_pool, topic,
};
use time::OffsetDateTime;

fn options(max_staleness: Duration) -> SourceOptions {
    SourceOptions { max_staleness, barrier_timeout: Duration::from_millis(500), ..SourceOptions::default() }
}

fn is_transient(answer: &Result<(), SessionLivenessError>) -> bool {
    matches!(answer, Err(SessionLivenessError::Transient(_)))
}

#[tokio::test]
async fn broker_killed_and_restarted_fails_closed_then_recovers_with_nothing_lost() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let config = topic("fault-kill", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let (a, b) = (sid("kill-a"), sid("kill-b"));
    publisher.publish(&created(a.as_str(), None)).await.unwrap();
    publisher.publish(&created(b.as_str(), None)).await.unwrap();
    publisher.publish(&revoked(b.as_str())).await.unwrap();
    let projection = KafkaSource::start(config.clone(), options(Duration::from_secs(1))).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "Live", async || liveness.state() == FreshnessState::Live).await;

    run_script("kafka.sh", "kill");
    let killed = Instant::now();
    let took =
        eventually(Duration::from_secs(5), "Transient after kill -9", async || is_transient(&liveness.check(&a).await))
            .await;
    eprintln!("broker killed: Transient after {took:?}");
    assert!(took <= Duration::from_millis(1_300), "{took:?}");
    // Nothing answers Ok for a revoked session in the meantime, and nothing Revoked for a live one.
    assert!(is_transient(&liveness.check(&b).await));

    run_script("kafka.sh", "up");
    let back =
        eventually(Duration::from_secs(60), "Live after restart", async || liveness.state() == FreshnessState::Live)
            .await;
    eprintln!("broker restarted: Live {back:?} after `up` returned ({:?} after the kill)", killed.elapsed());
    assert_eq!(liveness.check(&a).await, Ok(()));
    assert_eq!(liveness.check(&b).await, Err(SessionLivenessError::Revoked));
    publisher.publish(&revoked(a.as_str())).await.unwrap();
    eventually(Duration::from_secs(5), "revocation after restart", async || {
        liveness.check(&a).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    projection.shutdown().await;
}

#[tokio::test]
async fn postgres_stopped_during_a_cold_start_answers_transient_then_recovers() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let schema = format!("fault_{}", uuid::Uuid::new_v4().simple());
    let mut pg_config = PgConfig::new(database_url()).schema(&schema).unwrap();
    pg_config.acquire_timeout = Duration::from_millis(250);
    let pg = PgSessionLiveness::connect(&pg_config).unwrap();
    // Setup through a patient pool; the adapter's answers within a check's budget.
    let setup = statement_pool().await;
    revocation_postgres::migrate::run(&setup, &pg_config.schema).await.unwrap();
    let table = PgSessionTable::new(setup, &pg_config);
    table.record(&created("alice", None)).await.unwrap();
    table.record(&created("bob", None)).await.unwrap();
    table.record(&revoked("bob")).await.unwrap();

    // A topic that does not exist keeps the projection cold: Postgres answers.
    let config = KafkaConfig::new(bootstrap(), format!("absent-{}", uuid::Uuid::new_v4().simple()));
    let options = SourceOptions { fallback: Some(Arc::new(pg)), ..options(Duration::from_secs(1)) };
    let projection = KafkaSource::start(config, options).unwrap();
    let liveness = projection.liveness();
    assert_eq!(liveness.state(), FreshnessState::Cold);
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));
    assert_eq!(liveness.check(&sid("bob")).await, Err(SessionLivenessError::Revoked));

    run_script("postgres.sh", "down");
    let started = Instant::now();
    let answer = liveness.check(&sid("alice")).await;
    assert!(is_transient(&answer), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(is_transient(&liveness.check(&sid("bob")).await), "no guess while the database is down");

    run_script("postgres.sh", "up");
    eventually(Duration::from_secs(10), "fallback answers again", async || {
        liveness.check(&sid("alice")).await == Ok(())
    })
    .await;
    assert_eq!(liveness.check(&sid("bob")).await, Err(SessionLivenessError::Revoked));
    projection.shutdown().await;
}

#[tokio::test]
async fn hostile_records_are_handled_and_the_consumer_keeps_going() {
    let _serial = SERIAL.lock().await;
    let config = topic("fault-hostile", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let big = format!(
        r#"{{"type":"session.created","sid":"big","user_id":"{}","created_at":"2026-11-27T10:00:00Z"}}"#,
        "x".repeat(900_000)
    );
    let cases: Vec<(&[u8], Option<Vec<u8>>)> = vec![
        (b"not-utf8", Some(vec![0xff, 0xfe, 0xfd])),
        (b"not-json", Some(b"hello".to_vec())),
        (b"wrong-types", Some(br#"{"type":"session.revoked","sid":"wrong-types","revoked_at":42}"#.to_vec())),
        (b"missing", Some(br#"{"type":"session.created","sid":"missing"}"#.to_vec())),
        (b"deep", Some(deep.into_bytes())),
        (b"big", Some(big.into_bytes())),
        (b"big-garbage", Some(vec![b'{'; 900_000])),
        (b"unknown", Some(br#"{"type":"session.merged","sid":"unknown"}"#.to_vec())),
        (
            b"mismatch",
            Some(
                br#"{"type":"session.created","sid":"other","user_id":"u","created_at":"2026-11-27T10:00:00Z"}"#
                    .to_vec(),
            ),
        ),
        (b"\xff\xfe", Some(b"{}".to_vec())),
        (b"null-value", None),
    ];
    publisher.publish(&created("not-json", None)).await.unwrap();
    publisher.publish(&created("mismatch", None)).await.unwrap();
    for (key, value) in &cases {
        publisher.publish_raw(Some(key), value.as_deref()).await.unwrap();
    }
    // Many distinct malformed sids: each revokes its own key, nothing more.
    let flood = 50_000;
    let garbage: Vec<String> = (0..flood).map(|i| format!("flood-{i}")).collect();
    for chunk in garbage.chunks(5_000) {
        let sends = chunk.iter().map(|k| publisher.publish_raw(Some(k.as_bytes()), Some(b"\x00garbage")));
        for ack in futures::future::join_all(sends).await {
            ack.unwrap();
        }
    }
    publisher.publish(&created("after-everything", None)).await.unwrap();

    let projection = KafkaSource::start(config.clone(), options(Duration::from_secs(2))).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(60), "Live", async || liveness.state() == FreshnessState::Live).await;
    assert_eq!(liveness.check(&sid("after-everything")).await, Ok(()));
    // A large but well-formed event is just an event.
    assert_eq!(liveness.check(&sid("big")).await, Ok(()));
    for k in ["not-utf8", "not-json", "wrong-types", "missing", "deep", "big-garbage", "mismatch"] {
        assert_eq!(liveness.check(&sid(k)).await, Err(SessionLivenessError::Revoked), "{k}: fail closed");
    }
    let status = liveness.status().store;
    assert_eq!(status.rejected, 8 + flood as u64, "{status:?}");
    assert_eq!(status.unknown, 1);
    // Bounded: one entry per distinct valid key, nothing per byte of input.
    assert_eq!(status.sessions, 8 + 1 + flood as u64, "{status:?}");
    projection.shutdown().await;
    revocation_kafka::delete_topic(&config).await.ok();
}

/// What the checker saw: one line per check.
#[derive(Debug, Clone)]
struct Observation {
    session: usize,
    began: Instant,
    ended: Instant,
    answer: Result<(), SessionLivenessError>,
}

/// What the producer did to one session, with acknowledgement instants.
#[derive(Debug, Default, Clone)]
struct History {
    created_ack: Option<Instant>,
    revoke_sent: Option<Instant>,
    revoke_ack: Option<Instant>,
    /// A publish whose outcome is unknown (it timed out during a fault).
    indeterminate: bool,
}

/// The randomized run's fault kinds.
const KINDS: [&str; 4] = ["pause-broker", "kill-broker", "grow-topic", "warm-restart"];

/// The randomized run's last stretch, without faults.
const QUIET: Duration = Duration::from_secs(8);

/// How far past `FAULT_SECONDS` the randomized run goes on until every fault kind has run.
const OVERTIME: Duration = Duration::from_secs(120);

#[tokio::test]
async fn randomized_faults_never_admit_a_revoked_session_nor_reject_a_new_one_and_lose_nothing() {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let seed: u64 = std::env::var("FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let seconds: u64 = std::env::var("FAULT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    eprintln!("randomized fault run: FAULT_SEED={seed} FAULT_SECONDS={seconds}");
    let max_staleness = Duration::from_secs(1);
    let mut config = topic("fault-random", 3).await;
    // The publisher learns added partitions within a second.
    config.librdkafka_options.insert("topic.metadata.refresh.interval.ms".into(), "1000".into());
    let sample_interval = config.sample_interval;
    let publisher = EventPublisher::new(&config).unwrap().with_timeout(Duration::from_secs(20));
    // Snapshots every second, so a restart is warm.
    let snapshots = std::env::temp_dir().join(format!("fault-random-{seed}"));
    let with_snapshots = || SourceOptions {
        snapshot: Some(SnapshotOptions { dir: snapshots.clone(), interval: Duration::from_secs(1) }),
        ..options(max_staleness)
    };
    let mut projection = KafkaSource::start(config.clone(), with_snapshots()).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "Live", async || liveness.state() == FreshnessState::Live).await;
    // The projection the checkers ask: a warm restart replaces it.
    let serving = Arc::new(Mutex::new(liveness.clone()));

    let histories: Arc<Mutex<Vec<History>>> = Arc::new(Mutex::new(Vec::new()));
    let observations: Arc<Mutex<Vec<Observation>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Wall time just after the latest acknowledgement: the projection owes
    // every acknowledged write once it is fresh as of this instant.
    let last_ack = Arc::new(Mutex::new(Timestamp::EPOCH));
    let sids = move |i: usize| sid(&format!("rnd-{seed}-{i}"));

    // Workload: create sessions, revoke some, repeat created events of revoked ones.
    let producer = {
        let (histories, stop, publisher, last_ack) =
            (histories.clone(), stop.clone(), publisher.clone(), last_ack.clone());
        let mut rng = StdRng::seed_from_u64(seed);
        let acked = move || {
            let now = Timestamp::from_datetime(OffsetDateTime::now_utc());
            let mut last = last_ack.lock().unwrap();
            *last = (*last).max(now);
        };
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = histories.lock().unwrap().len();
                let op = rng.random_range(0..10);
                if n < 10 || op < 5 {
                    histories.lock().unwrap().push(History::default());
                    let result = publisher.publish(&created(sids(n).as_str(), None)).await;
                    let mut h = histories.lock().unwrap();
                    match result {
                        Ok(_) => {
                            h[n].created_ack = Some(Instant::now());
                            acked();
                        }
                        Err(_) => h[n].indeterminate = true,
                    }
                } else if op < 8 {
                    let i = rng.random_range(0..n);
                    if histories.lock().unwrap()[i].revoke_sent.is_some() {
                        continue;
                    }
                    histories.lock().unwrap()[i].revoke_sent = Some(Instant::now());
                    let result = publisher.publish(&revoked(sids(i).as_str())).await;
                    let mut h = histories.lock().unwrap();
                    match result {
                        Ok(_) => {
                            h[i].revoke_ack = Some(Instant::now());
                            acked();
                        }
                        Err(_) => h[i].indeterminate = true,
                    }
                } else {
                    // A duplicate created event: must never undo a revocation.
                    let i = rng.random_range(0..n);
                    match publisher.publish(&created(sids(i).as_str(), None)).await {
                        Ok(_) => acked(),
                        Err(_) => histories.lock().unwrap()[i].indeterminate = true,
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..5))).await;
            }
        })
    };

    // Checkers: random sessions, every answer recorded with its time.
    let mut checkers = Vec::new();
    for c in 0..2u64 {
        let (histories, observations, stop, serving) =
            (histories.clone(), observations.clone(), stop.clone(), serving.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ (c + 1));
        checkers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = histories.lock().unwrap().len();
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let session = rng.random_range(0..n);
                let liveness = serving.lock().unwrap().clone();
                let began = Instant::now();
                let answer = liveness.check(&sids(session)).await;
                observations.lock().unwrap().push(Observation { session, began, ended: Instant::now(), answer });
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }

    // Nemesis: broker faults, the topic grown once, warm restarts of the
    // projection, in seeded rounds of every kind, at random times, each
    // healed before the next. A run too short for every kind goes on until
    // each has run once (at most `OVERTIME` past its end).
    // (Postgres plays no part here: this projection has no fallback; its
    // loss is the subject of its own test above.)
    let mut rng = StdRng::seed_from_u64(seed.rotate_left(17));
    let run_for = Duration::from_secs(seconds);
    let started = Instant::now();
    let mut faults: Vec<String> = Vec::new();
    let mut round: Vec<&str> = Vec::new();
    let every_kind_ran = |faults: &[String]| KINDS.iter().all(|kind| faults.iter().any(|f| f.starts_with(kind)));
    while started.elapsed() + QUIET < run_for
        || (!every_kind_ran(&faults) && started.elapsed() + QUIET < run_for + OVERTIME)
    {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..4_000))).await;
        if round.is_empty() {
            round = KINDS.to_vec();
            round.shuffle(&mut rng);
            // The topic grows once.
            round.retain(|kind| *kind != "grow-topic" || !faults.iter().any(|f| f.starts_with(kind)));
        }
        let fault = round.pop().unwrap_or("warm-restart");
        let hold = Duration::from_millis(rng.random_range(500..3_000));
        let at = started.elapsed();
        match fault {
            "pause-broker" => {
                run_script("kafka.sh", "pause");
                tokio::time::sleep(hold).await;
                run_script("kafka.sh", "resume");
            }
            "kill-broker" => {
                run_script("kafka.sh", "kill");
                tokio::time::sleep(hold).await;
                tokio::task::spawn_blocking(|| run_script("kafka.sh", "up")).await.unwrap();
            }
            "grow-topic" => {
                // Revocations of sessions created on the old partitions now
                // land on new ones: the partition set is part of the proof.
                revocation_kafka::add_partitions(&config, 6).await.unwrap();
            }
            _ => {
                // Graceful stop (the snapshot is written), then a warm start.
                projection.shutdown().await;
                projection = KafkaSource::start(config.clone(), with_snapshots()).unwrap();
                *serving.lock().unwrap() = projection.liveness();
            }
        }
        faults.push(format!("{fault} at {:.1}s for {:.1}s", at.as_secs_f64(), hold.as_secs_f64()));
    }
    // The last stretch without faults, checked all the same.
    let quiet_until = run_for.max(started.elapsed() + QUIET);
    while started.elapsed() < quiet_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();
    for c in checkers {
        c.await.unwrap();
    }

    let liveness = projection.liveness();
    // Checker.
    let histories = histories.lock().unwrap().clone();
    let observations = observations.lock().unwrap().clone();
    let bound = max_staleness + sample_interval;
    let mut violations = Vec::new();
    let (mut ok, mut revoked_answers, mut transient) = (0, 0, 0);
    for o in &observations {
        let h = &histories[o.session];
        match &o.answer {
            Ok(()) => {
                ok += 1;
                if let Some(ack) = h.revoke_ack
                    && ack + bound < o.began
                {
                    violations.push(format!(
                        "Ok for session {} revoked {:?} before the check",
                        o.session,
                        o.began - ack
                    ));
                }
            }
            Err(SessionLivenessError::Revoked) => {
                revoked_answers += 1;
                let revoke_possible = h.revoke_sent.is_some_and(|s| s < o.ended) || h.indeterminate;
                if !revoke_possible && h.created_ack.is_some_and(|ack| ack < o.began) {
                    violations.push(format!("Revoked for session {} created and never revoked", o.session));
                }
            }
            Err(_) => transient += 1,
        }
    }
    // Longest run of consecutive Transient answers (in time order).
    let mut by_time: Vec<&Observation> = observations.iter().collect();
    by_time.sort_by_key(|o| o.began);
    let (mut longest, mut window_start) = (Duration::ZERO, None::<Instant>);
    for o in &by_time {
        if is_transient(&o.answer) {
            let s = *window_start.get_or_insert(o.began);
            longest = longest.max(o.ended - s);
        } else {
            window_start = None;
        }
    }

    // After healing: once the projection is Live and fresh as of the last
    // acknowledgement (bounded staleness promises nothing sooner: a write
    // acknowledged just before the faults ended may be up to `bound` late),
    // it equals the state of the whole topic.
    let last_ack = *last_ack.lock().unwrap();
    eventually(Duration::from_secs(60), "Live and fresh past the last acknowledged write", async || {
        let fresh_as_of = liveness.projection().freshness().fresh_as_of();
        liveness.state() == FreshnessState::Live && fresh_as_of.is_some_and(|t| t >= last_ack)
    })
    .await;
    let mut lost = 0;
    let mut expected_revoked = 0;
    for (i, h) in histories.iter().enumerate() {
        if h.indeterminate {
            continue;
        }
        let answer = liveness.check(&sids(i)).await;
        let expected = if h.revoke_ack.is_some() {
            expected_revoked += 1;
            Err(SessionLivenessError::Revoked)
        } else if h.created_ack.is_some() {
            Ok(())
        } else {
            continue;
        };
        if answer != expected {
            lost += 1;
            // Late or lost? Ask again once more time has passed.
            tokio::time::sleep(bound * 3).await;
            let again = liveness.check(&sids(i)).await;
            violations.push(format!(
                "after healing (fresh as of {:?}, last ack {last_ack:?}), session {i}: {answer:?}, expected {expected:?}; {:?} later: {again:?}; created acked {:?} ago, revoke sent {:?} / acked {:?} ago",
                liveness.projection().freshness().fresh_as_of(),
                bound * 3,
                h.created_ack.map(|t| t.elapsed()),
                h.revoke_sent.map(|t| t.elapsed()),
                h.revoke_ack.map(|t| t.elapsed()),
            ));
        }
    }
    let summary = format!(
        "seed {seed}: {} sessions, {expected_revoked} revoked; {} checks ({ok} live, {revoked_answers} revoked, {transient} transient) under {} faults [{}]; longest Transient window {:.2}s; {lost} lost; {} violations",
        histories.len(),
        observations.len(),
        faults.len(),
        faults.join("; "),
        longest.as_secs_f64(),
        violations.len()
    );
    eprintln!("{summary}");
    if let Ok(path) = std::env::var("FAULT_REPORT") {
        std::fs::write(path, format!("{summary}\n")).ok();
    }
    assert!(violations.is_empty(), "{summary}\n{}", violations.join("\n"));
    assert!(every_kind_ran(&faults), "not every fault kind ran within {OVERTIME:?} past the run's end: {faults:?}");
    assert!(ok > 0 && revoked_answers > 0, "the workload exercised both answers");
    projection.shutdown().await;
    revocation_kafka::delete_topic(&config).await.ok();
    std::fs::remove_dir_all(&snapshots).ok();
}
