//! `check` and `apply` against a bare `DashMap`, at 1M and 10M sessions.
//!
//! Run with: cargo bench -p revocation-core --bench check
//! (`BENCH_SIZES=1000000` to run one size only.)
//!
//! Baselines measured in the same run, on the same keys (16 bytes each, the
//! key already parsed):
//! - `bare_get` / `bare_insert`: `DashMap<[u8; 16], u64>` with DashMap's
//!   default hasher (SipHash), pre-sized;
//! - `bare_get_foldhash` / `bare_insert_foldhash`: the same map with the
//!   store's hasher, so the comparison isolates our code from the hasher.
//!
//! `store_lookup` is the store alone; `check/*` goes through the port: the
//! clock, the freshness state, the projection pointer, the store and the
//! counters, through the boxed `async` call. `check/*` measures one lookup
//! after another (each waits for the previous answer: a request's latency);
//! the interleaved rounds measure that again and, as `check-pipelined`,
//! independent lookups that the CPU may overlap (a busy verifier core).
#![allow(missing_docs)]

use std::hash::BuildHasher;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use revocation_core::{
    Clock, Decoded, EventJson, FreshnessConfig, ProjectedLiveness, Projection, RawRecord, RecordFormat, SessionEvent,
    SessionId, SessionLiveness, SessionStore, SystemClock, Timestamp,
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
    bare_foldhash: DashMap<[u8; 16], u64, Foldhash>,
}

/// The store's hasher.
type Foldhash = foldhash::fast::RandomState;

fn world(n: usize) -> World {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let uuids: Vec<_> = (0..n).map(|_| rng.uuid()).collect();
    let projection = Arc::new(Projection::with_store(
        SessionStore::with_capacity(n),
        FreshnessConfig::with_max_staleness(Duration::from_secs(3600)),
    ));
    let bare = DashMap::with_capacity(n);
    let bare_foldhash = DashMap::with_capacity_and_hasher(n, Foldhash::default());
    for (i, u) in uuids.iter().enumerate() {
        let sid = SessionId::new(u.to_string()).expect("uuid");
        // Every 16th session is revoked.
        projection.store().apply(&if i % 16 == 0 { revoked(sid) } else { created(sid) }, SystemClock.now());
        bare.insert(u.into_bytes(), i as u64);
        bare_foldhash.insert(u.into_bytes(), i as u64);
    }
    // Live: one partition, reached a sample taken now (an hour of slack).
    projection.freshness().track_partitions([0]);
    projection.freshness().record_position(0, 0);
    projection.freshness().record_high_watermark(0, 0, SystemClock.now());
    // No barrier: a miss is answered Revoked at once, so `miss` measures the
    // lookup itself (the barrier's wait is measured in the Kafka benches).
    let liveness = ProjectedLiveness::builder(projection).build();
    World { uuids, liveness, bare, bare_foldhash }
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
        let live = probes(&world, |i| i % 16 != 0);
        let live_sids: Vec<SessionId> = live.iter().map(|u| SessionId::new(u.to_string()).expect("uuid")).collect();
        let live_bytes: Vec<[u8; 16]> = live.iter().map(|u| u.into_bytes()).collect();
        let revoked_sids: Vec<SessionId> =
            probes(&world, |i| i % 16 == 0).iter().map(|u| SessionId::new(u.to_string()).expect("uuid")).collect();
        let mut rng = Rng(7);
        let miss_sids: Vec<SessionId> =
            (0..PROBES).map(|_| SessionId::new(rng.uuid().to_string()).expect("uuid")).collect();
        let store = world.liveness.projection();
        let now = SystemClock.now();
        for (name, sids, expect_ok) in
            [("hit_live", &live_sids, true), ("hit_revoked", &revoked_sids, false), ("miss", &miss_sids, false)]
        {
            assert_eq!(ready(world.liveness.check(&sids[0])).is_ok(), expect_ok, "{name}");
        }

        // Latency: one lookup after another, each waiting for the one before,
        // as a verifier's requests do.
        let mut group = c.benchmark_group(format!("check/{n}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("bare_get", "hit"), |b| {
            one_after_another(b, |i| world.bare.get(&live_bytes[i]).map_or(0, |v| *v))
        });
        group.bench_function(BenchmarkId::new("bare_get_foldhash", "hit"), |b| {
            one_after_another(b, |i| world.bare_foldhash.get(&live_bytes[i]).map_or(0, |v| *v))
        });
        group.bench_function(BenchmarkId::new("store_lookup", "hit_live"), |b| {
            let hasher = Foldhash::default();
            one_after_another(b, |i| {
                // The state's bits (hashed: its fields are private) carry the
                // data dependency; the standing is what a lookup answers.
                let state = store.store().state(&live_sids[i]);
                black_box(state.map(|s| s.standing(now)));
                hasher.hash_one(state)
            })
        });
        // A check's answer is not data read from the map, but its clock read
        // (`lfence; rdtsc` in the vDSO) already waits for the lookup before it.
        for (name, sids) in [("hit_live", &live_sids), ("hit_revoked", &revoked_sids), ("miss", &miss_sids)] {
            group.bench_function(BenchmarkId::new("check", name), |b| {
                one_after_another(b, |i| u64::from(ready(world.liveness.check(&sids[i])).is_ok()))
            });
        }
        group.finish();

        // The same latencies again, interleaved: every round times each
        // variant once (in a rotating order), so that the machine's drift
        // (these VMs are shared) hits all of them alike; the ratios are
        // medians of per-round ratios.
        let hasher = Foldhash::default();
        let variants: Vec<(&str, Look<'_>)> = vec![
            ("bare_get", Box::new(|i| world.bare.get(&live_bytes[i]).map_or(0, |v| *v))),
            ("bare_get_foldhash", Box::new(|i| world.bare_foldhash.get(&live_bytes[i]).map_or(0, |v| *v))),
            (
                "store_lookup",
                Box::new(|i| {
                    let state = store.store().state(&live_sids[i]);
                    black_box(state.map(|s| s.standing(now)));
                    hasher.hash_one(state)
                }),
            ),
            ("check_hit_live", Box::new(|i| u64::from(ready(world.liveness.check(&live_sids[i])).is_ok()))),
            ("check_hit_revoked", Box::new(|i| u64::from(ready(world.liveness.check(&revoked_sids[i])).is_ok()))),
            ("check_miss", Box::new(|i| u64::from(ready(world.liveness.check(&miss_sids[i])).is_ok()))),
        ];
        interleaved(n, &variants);
        interleaved_independent(n, &variants);
    }
}

/// One lookup, returning data it read (see [`one_after_another`]).
type Look<'a> = Box<dyn Fn(usize) -> u64 + 'a>;

/// Rounds of [`interleaved`].
const ROUNDS: usize = 21;
/// Lookups per variant per round.
const STEPS: usize = 200_000;

/// Times each variant once per round, one lookup after another (as
/// [`one_after_another`]), rotating the order; writes medians and median
/// per-round ratios to `target/bench/check-latency-{n}.json` and prints them.
fn interleaved(n: usize, variants: &[(&str, Look<'_>)]) {
    let ns = rounds(variants, |start, look| walk(start, STEPS as u64, look).0);
    report("check-latency", "one after another", n, variants, &ns);
}

/// As [`interleaved`], for independent lookups that the CPU may overlap
/// (what a busy verifier core does): `target/bench/check-pipelined-{n}.json`.
fn interleaved_independent(n: usize, variants: &[(&str, Look<'_>)]) {
    let ns = rounds(variants, |start, look| run(start, STEPS as u64, look));
    report("check-pipelined", "independent lookups", n, variants, &ns);
}

/// Nanoseconds per lookup of each variant in each of [`ROUNDS`] rounds; every
/// round times each variant once, in a rotating order.
fn rounds(variants: &[(&str, Look<'_>)], time: impl Fn(usize, &Look<'_>) -> Duration) -> Vec<Vec<f64>> {
    let mut ns: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for round in 0..ROUNDS {
        let start = round.wrapping_mul(7919) & (PROBES - 1);
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            ns[v].push(time(start, &variants[v].1).as_nanos() as f64 / STEPS as f64);
        }
    }
    ns
}

/// Medians, and medians of per-round ratios of `check_hit_live` to the bare
/// maps, printed and written to `target/bench/{file}-{n}.json`.
fn report(file: &str, what: &str, n: usize, variants: &[(&str, Look<'_>)], ns: &[Vec<f64>]) {
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let index = |name: &str| variants.iter().position(|(v, _)| *v == name).expect("variant");
    let ratio = |a: usize, b: usize| median(ns[a].iter().zip(&ns[b]).map(|(x, y)| x / y).collect());
    let (check, bare, fold) = (index("check_hit_live"), index("bare_get"), index("bare_get_foldhash"));
    let fields: Vec<String> = variants
        .iter()
        .enumerate()
        .map(|(v, (name, _))| format!(r#""{name}_ns": {:.1}"#, median(ns[v].clone())))
        .collect();
    let json = format!(
        r#"{{"sessions": {n}, "rounds": {ROUNDS}, "steps": {STEPS}, {}, "check_vs_bare": {:.3}, "check_vs_foldhash": {:.3}}}"#,
        fields.join(", "),
        ratio(check, bare),
        ratio(check, fold)
    );
    println!("check, {what}, {n} sessions, interleaved (medians of {ROUNDS} rounds): {json}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(out.join(format!("{file}-{n}.json")), json).expect("write");
}

/// Times `steps` independent lookups from probe `start` (nothing ties one
/// lookup to the next, so the CPU overlaps them as far as it can).
fn run(start: usize, steps: u64, look: &impl Fn(usize) -> u64) -> Duration {
    let mut i = start;
    let mut sink = 0u64;
    let began = Instant::now();
    for _ in 0..steps {
        sink = sink.wrapping_add(look(i));
        i = (i + 1) & (PROBES - 1);
    }
    black_box(sink);
    began.elapsed()
}

/// Cycles through the probes so that each lookup's key depends on data the
/// lookup before it returned (`look` returns it; it is masked to zero by a
/// value the compiler cannot see), with a full fence after each lookup. For
/// the bare map the data dependency alone keeps lookups apart; a check's
/// answer, though, comes out of branches on the data, which the CPU predicts
/// and runs past — without the fence, consecutive checks overlapped (1M: a
/// "latency" of 112 ns against the bare map's 173 ns). The fence stops that
/// for every variant alike, so this measures one lookup's latency (what a
/// request waits), not how many lookups a core can overlap.
fn one_after_another(b: &mut Bencher<'_>, look: impl Fn(usize) -> u64) {
    let mut next = 0usize;
    b.iter_custom(|iters| {
        let (took, end) = walk(next, iters, &look);
        next = end;
        took
    })
}

/// Times `steps` lookups from probe `start`, each probe index depending on
/// the data the lookup before it returned (see [`one_after_another`]);
/// returns the time and the probe to continue from.
fn walk(start: usize, steps: u64, look: &impl Fn(usize) -> u64) -> (Duration, usize) {
    let zero = black_box(0u64);
    let mut i = start;
    let began = Instant::now();
    for _ in 0..steps {
        let data = look(i);
        i = (i + 1 + (data & zero) as usize) & (PROBES - 1);
        // No later load starts before this lookup has finished.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
    (began.elapsed(), i)
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
        group.bench_function("bare_insert", |b| {
            b.iter_custom(|iters| timed_fills(iters, || DashMap::with_capacity(n), |map| insert_all(map, &keys)))
        });
        group.bench_function("bare_insert_foldhash", |b| {
            b.iter_custom(|iters| {
                timed_fills(
                    iters,
                    || DashMap::with_capacity_and_hasher(n, Foldhash::default()),
                    |map| insert_all(map, &keys),
                )
            })
        });
        // What the feed hands the store: records its format has decoded.
        let decoded: Vec<Decoded<'_>> = events.iter().map(Decoded::from).collect();
        group.bench_function("apply_created", |b| {
            b.iter_custom(|iters| {
                timed_fills(
                    iters,
                    || SessionStore::with_capacity(n),
                    |store| {
                        for record in &decoded {
                            store.apply(record.clone(), Timestamp::from_unix_secs(0));
                        }
                    },
                )
            })
        });
        group.finish();
    }
}

/// Decoding and applying one record, as replay does, into a store that
/// already holds the session (in cache, so the decoding dominates): a value
/// in the canonical encoding (what the publisher writes) against the same
/// value with one space after the opening brace, which only the general
/// (serde_json) reader accepts.
fn bench_decode(c: &mut Criterion) {
    let at = OffsetDateTime::now_utc();
    let sid = SessionId::new(uuid::Uuid::new_v4().to_string()).expect("uuid");
    let events = [
        (
            "created",
            SessionEvent::Created {
                sid: sid.clone(),
                user_id: "user-1234".into(),
                created_at: at,
                expires_at: Some(at),
            },
        ),
        ("revoked", SessionEvent::Revoked { sid, revoked_at: at, reason: Some("logout".into()) }),
    ];
    let store = SessionStore::new();
    let now = SystemClock.now();
    let mut group = c.benchmark_group("decode_apply");
    for (name, event) in &events {
        let canonical = event.to_value().expect("value");
        let general = [&b"{ "[..], &canonical[1..]].concat();
        for (reader, value) in [("canonical", &canonical), ("general", &general)] {
            let record = |value| EventJson.decode(&RawRecord::new(Some(event.key()), Some(value)));
            let applied = store.apply(record(value), now);
            assert_eq!(applied, revocation_core::Applied::Event);
            group.bench_function(format!("{name}/{reader}"), |b| {
                b.iter(|| {
                    let record = RawRecord::new(black_box(Some(event.key())), black_box(Some(value)));
                    store.apply(EventJson.decode(&record), now)
                })
            });
        }
    }
    group.finish();
}

/// The bare baselines' fill: every key, in order.
fn insert_all<S: BuildHasher + Clone>(map: &DashMap<[u8; 16], u64, S>, keys: &[[u8; 16]]) {
    for (i, k) in keys.iter().enumerate() {
        map.insert(*k, i as u64);
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
    targets = bench_check, bench_apply, bench_decode
}
criterion_main!(benches);
