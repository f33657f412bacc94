//! Restoring a snapshot: reading, checking and merging N sessions into a
//! store laid out as the written one ([`Snapshot::new_store`]), against the
//! same into a store of the same size but another hash seed (what a restore
//! did before snapshots kept the seed: the file's order is random to that
//! map), and a bare `DashMap` filled with the same sessions on two threads.
//!
//! Run with: cargo bench -p revocation-core --bench restore
//! (`BENCH_SIZES=1000000,10000000` by default; 5 interleaved rounds each.)
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use dashmap::DashMap;
use revocation_core::{SessionEvent, SessionId, SessionStore, Snapshot, SnapshotMeta, Timestamp, write_snapshot};
use time::OffsetDateTime;

const ROUNDS: usize = 5;

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn uuid(i: u64) -> uuid::Uuid {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    uuid::Builder::from_random_bytes(((u128::from(x) << 64) | u128::from(i)).to_le_bytes()).into_uuid()
}

/// A snapshot of `n` live sessions with expiries, as bytes.
fn snapshot_bytes(n: usize) -> Vec<u8> {
    let store = SessionStore::with_capacity(n);
    let now = OffsetDateTime::now_utc();
    for i in 0..n as u64 {
        let sid = SessionId::new(uuid(i).to_string()).expect("uuid");
        let expires_at = Some(now + time::Duration::days(7));
        store.apply(
            &SessionEvent::Created { sid, user_id: String::new(), created_at: now, expires_at },
            Timestamp::EPOCH,
        );
    }
    let meta = SnapshotMeta {
        topic: "bench".into(),
        format: "events".into(),
        partitions: 1,
        positions: [(0, n as i64)].into(),
        max_session_lifetime_secs: None,
        written_at_micros: 0,
        cluster_id: None,
        fresh_as_of_micros: None,
        sessions: n as u64,
    };
    let mut bytes = Vec::with_capacity(n * 25);
    write_snapshot(&store, &meta, &mut bytes).expect("write");
    bytes
}

/// Read, check and restore into a fresh store sized from the header, laid
/// out as the written one or not.
fn ours(bytes: &[u8], same_layout: bool) -> Duration {
    let started = Instant::now();
    let snapshot = Snapshot::read_sized(bytes, bytes.len()).expect("read");
    let store =
        if same_layout { snapshot.new_store() } else { SessionStore::with_capacity(snapshot.meta().sessions as usize) };
    let counts = snapshot.restore(&store).expect("restore");
    let took = started.elapsed();
    assert_eq!(counts.sessions as usize, store.len());
    took
}

/// Baseline: the same sessions inserted into a bare pre-sized map, half on
/// each of two threads, in the order they were made — as unrelated to the
/// new map's layout as the file's order is (its map had another hash seed).
fn bare(entries: &[([u8; 16], u64)]) -> Duration {
    let map: DashMap<[u8; 16], u64, foldhash::fast::RandomState> =
        DashMap::with_capacity_and_hasher(entries.len(), Default::default());
    let started = Instant::now();
    let (first, second) = entries.split_at(entries.len() / 2);
    std::thread::scope(|s| {
        s.spawn(|| {
            for (k, v) in second {
                map.insert(*k, *v);
            }
        });
        for (k, v) in first {
            map.insert(*k, *v);
        }
    });
    let took = started.elapsed();
    assert_eq!(map.len(), entries.len());
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut results = Vec::new();
    for n in sizes() {
        let bytes = snapshot_bytes(n);
        let entries: Vec<([u8; 16], u64)> = (0..n as u64).map(|i| (*uuid(i).as_bytes(), i)).collect();
        let (mut ours_s, mut other_s, mut bare_s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours_s.push(ours(&bytes, true).as_secs_f64());
            other_s.push(ours(&bytes, false).as_secs_f64());
            bare_s.push(bare(&entries).as_secs_f64());
        }
        let (o, x, b) = (median(ours_s), median(other_s), median(bare_s));
        let ns = |s: f64| s * 1e9 / n as f64;
        println!(
            "restore/{n}: ours {o:.3} s ({:.0} ns/session, read + checksum + merge) · into a store of another seed {x:.3} s ({:.0} ns) · bare DashMap insert, 2 threads {b:.3} s ({:.0} ns) · {:.2}× / {:.2}× (medians of {ROUNDS} interleaved rounds, {} MB)",
            ns(o),
            ns(x),
            ns(b),
            o / x,
            o / b,
            bytes.len() >> 20
        );
        results.push(format!(r#"{{"sessions": {n}, "ours_s": {o:.4}, "other_seed_s": {x:.4}, "bare_s": {b:.4}}}"#));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(out.join("restore.json"), format!("[{}]", results.join(", "))).expect("restore.json");
}
