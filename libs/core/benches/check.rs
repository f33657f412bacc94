//! `check` and `apply` against a bare `DashMap`, at 1M and 10M sessions.
//!
//! Run with: cargo bench -p revocation-core --bench check
//! (`BENCH_SIZES=1000000` to run one size only.)
//!
//! Baselines measured in the same run, on the same keys:
//! - `bare_get`: `DashMap<[u8; 16], u64>::get` with DashMap's default hasher,
//!   the key already in bytes (no parsing);
//! - `bare_insert`: `DashMap<[u8; 16], u64>::insert` into a pre-sized map;
//! - `bare_insert_from_events`: the same, taking each key from the decoded
//!   events `apply` is given.
//!
//! - `bare_get_from_sid`: the same, starting from the sid strings (uuid parse + get).
//!
//! `store_lookup` is the store alone; `check/*` goes through the port: parse
//! the sid, read the freshness state, the clock and the store, through the
//! boxed `async` call.
#![allow(missing_docs)]

use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use revocation_core::{
    Clock, FreshnessConfig, ProjectedLiveness, Projection, SessionEvent, SessionId, SessionLiveness, SessionStore,
    SystemClock,
};
use time::OffsetDateTime;

/// How many lookups each measurement cycles through (random order, so each
/// one is a cache miss like in production).
const PROBES: usize = 1 << 20;

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000])
}

/// A deterministic xorshift stream, so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uuid(&mut self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(((u128::from(self.next()) << 64) | u128::from(self.next())).to_le_bytes())
            .into_uuid()
    }
}

fn created(sid: SessionId) -> SessionEvent {
    SessionEvent::Created {
        sid,
        user_id: "user".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        expires_at: Some(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(5_000_000_000)),
    }
}

fn revoked(sid: SessionId) -> SessionEvent {
    SessionEvent::Revoked { sid, revoked_at: OffsetDateTime::UNIX_EPOCH, reason: None }
}

/// Polls a future that never waits (every path measured here is synchronous).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the measured path must not wait"),
    }
}

struct World {
    uuids: Vec<uuid::Uuid>,
    liveness: ProjectedLiveness,
    bare: DashMap<[u8; 16], u64>,
}

fn world(n: usize) -> World {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let uuids: Vec<_> = (0..n).map(|_| rng.uuid()).collect();
    let projection = Arc::new(Projection::with_store(
        SessionStore::with_capacity(n),
        FreshnessConfig::with_max_staleness(Duration::from_secs(3600)),
    ));
    let bare = DashMap::with_capacity(n);
    for (i, u) in uuids.iter().enumerate() {
        let sid = SessionId::new(u.to_string()).expect("uuid");
        // Every 16th session is revoked.
        projection.store().apply(&if i % 16 == 0 { revoked(sid) } else { created(sid) });
        bare.insert(u.into_bytes(), i as u64);
    }
    // Live: one partition, reached a sample taken now (an hour of slack).
    projection.freshness().track_partitions([0]);
    projection.freshness().record_position(0, 0);
    projection.freshness().record_high_watermark(0, 0, SystemClock.now());
    // No barrier: a miss is answered Revoked at once, so `miss` measures the
    // lookup itself (the barrier's wait is measured in the Kafka benches).
    let liveness = ProjectedLiveness::builder(projection).build();
    World { uuids, liveness, bare }
}

fn probes(world: &World, pick: impl Fn(usize) -> bool) -> Vec<uuid::Uuid> {
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(PROBES);
    while out.len() < PROBES {
        let i = (rng.next() % world.uuids.len() as u64) as usize;
        if pick(i) {
            out.push(world.uuids[i]);
        }
    }
    out
}

fn bench_check(c: &mut Criterion) {
    for n in sizes() {
        let world = world(n);
        let mut group = c.benchmark_group(format!("check/{n}"));
        group.throughput(Throughput::Elements(1));

        let live = probes(&world, |i| i % 16 != 0);
        let live_sids: Vec<SessionId> = live.iter().map(|u| SessionId::new(u.to_string()).expect("uuid")).collect();
        let live_bytes: Vec<[u8; 16]> = live.iter().map(|u| u.into_bytes()).collect();
        let revoked_sids: Vec<SessionId> =
            probes(&world, |i| i % 16 == 0).iter().map(|u| SessionId::new(u.to_string()).expect("uuid")).collect();
        let mut rng = Rng(7);
        let miss_sids: Vec<SessionId> =
            (0..PROBES).map(|_| SessionId::new(rng.uuid().to_string()).expect("uuid")).collect();

        group.bench_function(BenchmarkId::new("bare_get", "hit"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                black_box(world.bare.get(&live_bytes[i]).map(|v| *v))
            })
        });
        // The same lookup, but starting from the sid strings the port gets:
        // parse + get. Shows what the harness's string traffic costs apart
        // from our code.
        group.bench_function(BenchmarkId::new("bare_get_from_sid", "hit"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                let key = uuid::Uuid::try_parse(live_sids[i].as_str()).expect("uuid").into_bytes();
                black_box(world.bare.get(&key).map(|v| *v))
            })
        });
        let store = world.liveness.projection();
        group.bench_function(BenchmarkId::new("store_lookup", "hit_live"), |b| {
            let mut i = 0;
            let now = SystemClock.now();
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                black_box(store.store().lookup(&live_sids[i], now))
            })
        });
        for (name, sids, expect_ok) in
            [("hit_live", &live_sids, true), ("hit_revoked", &revoked_sids, false), ("miss", &miss_sids, false)]
        {
            assert_eq!(ready(world.liveness.check(&sids[0])).is_ok(), expect_ok, "{name}");
            group.bench_function(BenchmarkId::new("check", name), |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) & (PROBES - 1);
                    black_box(ready(world.liveness.check(&sids[i])))
                })
            });
        }
        group.finish();
    }
}

fn bench_apply(c: &mut Criterion) {
    for n in sizes() {
        let mut rng = Rng(0x1234_5678);
        let events: Vec<SessionEvent> =
            (0..n).map(|_| created(SessionId::new(rng.uuid().to_string()).expect("uuid"))).collect();
        let keys: Vec<[u8; 16]> =
            events.iter().map(|e| uuid::Uuid::parse_str(e.sid().as_str()).expect("uuid").into_bytes()).collect();
        let mut group = c.benchmark_group(format!("apply/{n}"));
        group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(n as u64));
        let bare = || DashMap::<[u8; 16], u64>::with_capacity(n);
        group.bench_function("bare_insert", |b| {
            b.iter_custom(|iters| {
                timed_fills(iters, bare, |map| {
                    for (i, k) in keys.iter().enumerate() {
                        map.insert(*k, i as u64);
                    }
                })
            })
        });
        // The same inserts, reading each key out of the decoded events the
        // store is given: what the events' memory traffic costs apart from
        // our code.
        group.bench_function("bare_insert_from_events", |b| {
            b.iter_custom(|iters| {
                timed_fills(iters, bare, |map| {
                    for (i, e) in events.iter().enumerate() {
                        map.insert(e.sid().canonical_uuid().expect("uuid"), i as u64);
                    }
                })
            })
        });
        group.bench_function("apply_created", |b| {
            b.iter_custom(|iters| {
                timed_fills(
                    iters,
                    || SessionStore::with_capacity(n),
                    |store| {
                        for e in &events {
                            store.apply(e);
                        }
                    },
                )
            })
        });
        group.finish();
    }
}

/// Total time of `iters` runs of `fill`, each into a fresh map from `new`;
/// creating and dropping the maps is not timed.
fn timed_fills<M>(iters: u64, new: impl Fn() -> M, fill: impl Fn(&M)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let map = new();
        let start = Instant::now();
        fill(&map);
        total += start.elapsed();
        drop(black_box(map));
    }
    total
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(5));
    targets = bench_check, bench_apply
}
criterion_main!(benches);
