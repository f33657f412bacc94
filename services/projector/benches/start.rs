//! A whole-process start of the release `projector`, as a user runs it:
//! cold (full replay) and warm (snapshot + a tail of 1 % new records), to
//! proven Live, with resident memory and the bytes it read, against a raw
//! no-op consumer over the same topic in the same run. Then what a check
//! costs while a snapshot is being written. Then a new replica with an
//! empty disk booting from a live peer (`--bootstrap-from`), against its
//! own cold start, and both again under steady checks with the Postgres
//! fallback, counting what Postgres served until Live (`BENCH_START_PEER=0`
//! skips these).
//!
//! Realistic records: UUID sids and user ids, created events with expiries
//! (~180 B values), 6 partitions, lz4-compressed by the producer.
//!
//! Run by `scripts/bench` (which builds the release binary first):
//! `BENCH_START_SESSIONS=10000000 cargo bench -p projector --bench start`.
#![allow(clippy::unwrap_used)] // a benchmark states its expectations with unwrap

mod whole_process;

use std::time::Instant;

use revocation_core::{
    Clock, SessionEvent, SessionId, SessionStore, SnapshotMeta, SystemClock, Timestamp, write_snapshot,
};
use revocation_kafka::KafkaConfig;
use time::OffsetDateTime;
use whole_process::{env_usize, root, run_projector, run_projector_under_checks, start_serving};

const PARTITIONS: i32 = 6;
const PEER_PORT: u16 = 18_182;
const PEER_TOKEN: &str = "bench-start-peer-admin-token";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sessions = env_usize("BENCH_START_SESSIONS", 1_000_000);
    whole_process::binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = whole_process::new_topic(&runtime, "bench-start", PARTITIONS);
    println!(
        "start of the release projector at {sessions} sessions (topic {}, {PARTITIONS} partitions, lz4)",
        config.topic
    );

    let started = Instant::now();
    let value_bytes = fill(&config, 0, sessions);
    println!("  filled in {:.1} s, {:.0} B per value", started.elapsed().as_secs_f64(), value_bytes);

    let base = whole_process::baselines(&config, PARTITIONS, sessions);
    let raw_rate = sessions as f64 / base.raw.as_secs_f64();
    let (raw_cpu_s, raw_batched_s, batched_cpu_s) = (base.raw_cpu_s, base.batched.as_secs_f64(), base.batched_cpu_s);

    let dir = root().join("target/bench/start-snapshot");
    let _ = std::fs::remove_dir_all(&dir);
    let cold = run_projector(&config, Some(&dir), &[]);
    let cold_rate = sessions as f64 / cold.live_after.as_secs_f64();
    println!(
        "  cold start to Live           {:>7.2} s  {:>9.0} records/s = {:.0} % of raw; CPU {:.1} s; RSS {} MB ({:.1} B/session); {} MB over loopback",
        cold.live_after.as_secs_f64(),
        cold_rate,
        100.0 * cold_rate / raw_rate,
        cold.cpu_s,
        cold.rss_kb / 1024,
        cold.rss_kb as f64 * 1024.0 / sessions as f64,
        cold.read_bytes >> 20,
    );
    let cold_cpu_s = cold.cpu_s;
    let snapshot = dir.join(format!("{}.snapshot", config.topic));
    let snapshot_bytes = std::fs::metadata(&snapshot).map(|m| m.len()).unwrap_or(0);
    println!("  snapshot at shutdown         {:>7.2} s  {} MB", cold.snapshot_ms as f64 / 1e3, snapshot_bytes >> 20);

    let tail = sessions / 100;
    fill(&config, sessions, tail);
    let warm = run_projector(&config, Some(&dir), &[]);
    let warm_network = warm.read_bytes;
    println!(
        "  warm start to Live           {:>7.2} s  ({tail} new records) = {:.1}× faster than cold; RSS {} MB ({:.1} B/session); {} MB over loopback",
        warm.live_after.as_secs_f64(),
        cold.live_after.as_secs_f64() / warm.live_after.as_secs_f64(),
        warm.rss_kb / 1024,
        warm.rss_kb as f64 * 1024.0 / (sessions + tail) as f64,
        warm_network >> 20,
    );
    let checks = checks_during_snapshot(sessions);
    println!(
        "  check while a snapshot is written: {:.0} ns vs {:.0} ns idle ({:.2}×); writing {} sessions took {:.2} s",
        checks.during_ns,
        checks.idle_ns,
        checks.during_ns / checks.idle_ns,
        sessions,
        checks.write_s
    );
    let mut peer_s = None;
    let mut fallback = None;
    if std::env::var("BENCH_START_PEER").map_or(true, |v| v != "0") {
        let token_file = root().join("target/bench/start-peer-token");
        std::fs::write(&token_file, PEER_TOKEN).unwrap();
        let token = token_file.display().to_string();
        let _peer = start_serving(&config, PEER_PORT, &["--admin-token-file", &token]);
        let empty = root().join("target/bench/start-peer");
        let from = format!("http://127.0.0.1:{PEER_PORT}");
        // Twice: the first boot meets a peer that has only just caught up
        // (and is still returning its replay's memory); the second, one in
        // service, as a scale-out meets it.
        let boot = || {
            let _ = std::fs::remove_dir_all(&empty);
            run_projector(&config, Some(&empty), &["--bootstrap-from", &from, "--bootstrap-token-file", &token])
        };
        let (first, via) = (boot(), boot());
        println!(
            "  empty disk, booted from a live peer to Live {:>6.2} s = {:.1}× faster than its own cold start (first boot, the peer just caught up: {:.2} s); RSS {} MB ({:.1} B/session)",
            via.live_after.as_secs_f64(),
            cold.live_after.as_secs_f64() / via.live_after.as_secs_f64(),
            first.live_after.as_secs_f64(),
            via.rss_kb / 1024,
            via.rss_kb as f64 * 1024.0 / (sessions + tail) as f64,
        );
        peer_s = Some(via.live_after.as_secs_f64());
        let _ = std::fs::remove_dir_all(&empty);
        // The same two starts, now with the Postgres fallback and checks offered throughout.
        let (cold_run, cold_fallback) = run_projector_under_checks(&config, None, &[]);
        let (peer_run, peer_fallback) = run_projector_under_checks(
            &config,
            Some(&empty),
            &["--bootstrap-from", &from, "--bootstrap-token-file", &token],
        );
        println!(
            "  under {} checks/s with the Postgres fallback: Postgres served {} of {} checks during a cold start ({:.2} s), {} of {} booting from the peer ({:.2} s): {:.1}× fewer",
            whole_process::CHECKS_PER_SEC,
            cold_fallback.served,
            cold_fallback.offered,
            cold_run.live_after.as_secs_f64(),
            peer_fallback.served,
            peer_fallback.offered,
            peer_run.live_after.as_secs_f64(),
            cold_fallback.served as f64 / peer_fallback.served.max(1) as f64,
        );
        fallback = Some((cold_fallback.served, peer_fallback.served));
        let _ = std::fs::remove_dir_all(&empty);
    }
    whole_process::drop_topic(&runtime, &config);
    let _ = std::fs::remove_dir_all(&dir);

    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("start.json"),
        format!(
            r#"{{"sessions": {sessions}, "partitions": {PARTITIONS}, "value_bytes": {value_bytes:.0}, "raw_s": {:.3}, "raw_cpu_s": {raw_cpu_s:.2}, "raw_batched_s": {raw_batched_s:.3}, "raw_batched_cpu_s": {batched_cpu_s:.2}, "cold_cpu_s": {cold_cpu_s:.2}, "cold_s": {:.3}, "cold_vs_raw": {:.4}, "cold_rss_kb": {}, "cold_read_bytes": {}, "snapshot_write_ms": {}, "snapshot_bytes": {snapshot_bytes}, "tail": {tail}, "warm_s": {:.3}, "warm_rss_kb": {}, "warm_network_bytes": {warm_network}, "check_idle_ns": {:.1}, "check_during_snapshot_ns": {:.1}, "snapshot_write_in_process_s": {:.3}, "peer_s": {}, "fallback_cold": {}, "fallback_peer": {}}}"#,
            base.raw.as_secs_f64(),
            cold.live_after.as_secs_f64(),
            cold_rate / raw_rate,
            cold.rss_kb,
            cold.read_bytes,
            cold.snapshot_ms,
            warm.live_after.as_secs_f64(),
            warm.rss_kb,
            checks.idle_ns,
            checks.during_ns,
            checks.write_s,
            peer_s.map_or("null".to_owned(), |s| format!("{s:.3}")),
            fallback.map_or("null".to_owned(), |(cold, _)| cold.to_string()),
            fallback.map_or("null".to_owned(), |(_, peer)| peer.to_string()),
        ),
    )
    .unwrap();
}

/// Publishes `n` sessions, lz4-compressed; returns the mean value size.
fn fill(config: &KafkaConfig, first: usize, n: usize) -> f64 {
    let now = OffsetDateTime::now_utc();
    let events = (first..first + n).map(|i| revocation_test_support::realistic_event(i, now));
    let options = [("linger.ms", "50"), ("compression.codec", "lz4")];
    revocation_test_support::produce_fast(config, events, &options) as f64 / n.max(1) as f64
}

struct Checks {
    idle_ns: f64,
    during_ns: f64,
    write_s: f64,
}

/// Lookups of random held sessions, alone and while another thread writes
/// the store's snapshot (to a file, as the projector does).
fn checks_during_snapshot(sessions: usize) -> Checks {
    let store = SessionStore::with_capacity(sessions);
    let now = OffsetDateTime::now_utc();
    let at = SystemClock.now();
    let sids: Vec<SessionId> =
        (0..sessions).map(|i| revocation_test_support::realistic_event(i, now).sid().clone()).collect();
    for sid in &sids {
        store.apply(
            &SessionEvent::Created { sid: sid.clone(), user_id: String::new(), created_at: now, expires_at: None },
            at,
        );
    }
    let lookups = |n: usize| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let started = Instant::now();
        let mut live = 0usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            live +=
                usize::from(store.lookup(&sids[(x % sids.len() as u64) as usize], at) == revocation_core::Lookup::Live);
        }
        assert_eq!(live, n);
        started.elapsed().as_nanos() as f64 / n as f64
    };
    let idle_ns = lookups(2_000_000);
    let path = root().join("target/bench/check-during-snapshot.snapshot");
    let meta = SnapshotMeta {
        topic: "bench".into(),
        format: "events".into(),
        partitions: 1,
        positions: Default::default(),
        max_session_lifetime_secs: None,
        written_at_micros: Timestamp::EPOCH.as_unix_micros(),
        cluster_id: None,
        fresh_as_of_micros: None,
        sessions: 0,
    };
    let (during_ns, write_s) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let started = Instant::now();
            let file = std::fs::File::create(&path).unwrap();
            write_snapshot(&store, &meta, std::io::BufWriter::with_capacity(1 << 20, file)).unwrap();
            started.elapsed().as_secs_f64()
        });
        let mut samples = Vec::new();
        while !writer.is_finished() {
            samples.push(lookups(100_000));
        }
        let write_s = writer.join().unwrap();
        (samples.iter().sum::<f64>() / samples.len().max(1) as f64, write_s)
    });
    let _ = std::fs::remove_file(&path);
    Checks { idle_ns, during_ns, write_s }
}
