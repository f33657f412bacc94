//! ProjectedLiveness answers per the decision table of design §4–§5, one test
//! per row.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use revocation_core::{
    AbsentConfirmation, Answer, Barrier, BarrierTimeout, Clock, Freshness, FreshnessConfig, LagPolicy, ManualClock,
    ProjectedLiveness, Projection, SessionId, SessionLiveness, SessionLivenessError, Source, Timestamp,
};
use revocation_test_support::{created, revoked, sid};
use time::macros::datetime;

const MAX: Duration = Duration::from_secs(1);
/// 2026-11-27T12:00:00Z
const T0: Timestamp = Timestamp::from_unix_secs(1_795_780_800);

/// A fallback that answers one fixed thing and counts calls.
#[derive(Debug)]
struct Fixed(Result<(), SessionLivenessError>, AtomicUsize);

#[async_trait]
impl SessionLiveness for Fixed {
    async fn check(&self, _: &SessionId) -> Result<(), SessionLivenessError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.clone()
    }
}

fn fixed(answer: Result<(), SessionLivenessError>) -> Arc<Fixed> {
    Arc::new(Fixed(answer, AtomicUsize::new(0)))
}

/// A barrier that runs a closure (the source catching up while we wait) and
/// then reports success, or a timeout.
struct ScriptedBarrier {
    catch_up: Box<dyn Fn() + Send + Sync>,
    succeed: bool,
    calls: AtomicUsize,
}

impl ScriptedBarrier {
    fn new(succeed: bool, catch_up: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { catch_up: Box::new(catch_up), succeed, calls: AtomicUsize::new(0) })
    }
}

impl std::fmt::Debug for ScriptedBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedBarrier")
    }
}

#[async_trait]
impl Barrier for ScriptedBarrier {
    async fn wait_until_fresh(&self, _: &Freshness, _: Timestamp) -> Result<(), BarrierTimeout> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.catch_up)();
        if self.succeed { Ok(()) } else { Err(BarrierTimeout(Duration::from_millis(250))) }
    }
}

struct Fixture {
    clock: ManualClock,
    projection: Arc<Projection>,
}

impl Fixture {
    fn new() -> Self {
        Self::with_clock(ManualClock::new(T0))
    }

    fn with_clock(clock: ManualClock) -> Self {
        let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(MAX)));
        projection.freshness().track_partitions([0, 1]);
        Self { clock, projection }
    }

    /// Every partition reached a sample taken now.
    fn catch_up(&self) {
        for p in [0, 1] {
            self.projection.freshness().record_position(p, 0);
            self.projection.freshness().record_high_watermark(p, 0, self.clock.now());
        }
    }

    fn created(&self, s: &str, expires: Option<time::OffsetDateTime>) {
        self.projection.store().apply(&created(s, expires), T0);
    }

    fn revoked(&self, s: &str) {
        self.projection.store().apply(&revoked(s), T0);
    }

    fn liveness(&self) -> ProjectedLiveness<ManualClock> {
        ProjectedLiveness::builder(self.projection.clone()).clock(self.clock.clone()).build()
    }
}

fn is_transient(result: &Result<(), SessionLivenessError>) -> bool {
    matches!(result, Err(SessionLivenessError::Transient(_)))
}

#[tokio::test]
async fn live_projection_admits_a_live_session() {
    let f = Fixture::new();
    f.created("a", Some(datetime!(2026-11-28 10:00 UTC)));
    f.catch_up();
    let liveness = f.liveness();
    assert_eq!(liveness.check(&sid("a")).await, Ok(()));
    assert_eq!(liveness.counts().get(Source::Projection, Answer::Live), 1);
}

#[tokio::test]
async fn live_projection_rejects_a_revoked_session() {
    let f = Fixture::new();
    f.created("a", None);
    f.revoked("a");
    f.catch_up();
    assert_eq!(f.liveness().check(&sid("a")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn live_projection_rejects_an_expired_session() {
    let f = Fixture::new();
    f.created("a", Some(datetime!(2026-11-27 11:59 UTC)));
    f.catch_up();
    assert_eq!(f.liveness().check(&sid("a")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn absent_session_is_revoked_once_the_barrier_confirms_it() {
    let f = Fixture::new();
    f.catch_up();
    let barrier = ScriptedBarrier::new(true, || {});
    let liveness =
        ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).barrier(barrier.clone()).build();
    assert_eq!(liveness.check(&sid("nobody")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(barrier.calls.load(Ordering::SeqCst), 1);
    assert_eq!(liveness.counts().get(Source::Barrier, Answer::Revoked), 1);
}

#[tokio::test]
async fn a_session_created_just_before_the_check_is_live_after_the_barrier() {
    let f = Fixture::new();
    f.catch_up();
    let projection = f.projection.clone();
    let barrier = ScriptedBarrier::new(true, move || {
        projection.store().apply(&created("new", None), T0);
    });
    let liveness = ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).barrier(barrier).build();
    assert_eq!(liveness.check(&sid("new")).await, Ok(()));
}

#[tokio::test]
async fn absent_session_is_transient_when_the_barrier_times_out() {
    let f = Fixture::new();
    f.catch_up();
    let barrier = ScriptedBarrier::new(false, || {});
    let liveness = ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).barrier(barrier).build();
    assert!(is_transient(&liveness.check(&sid("nobody")).await));
    assert_eq!(liveness.counts().barrier_timeouts(), 1);
}

#[tokio::test]
async fn with_confirmation_an_absent_session_gets_the_fallbacks_answer_within_its_rate() {
    let f = Fixture::new();
    f.catch_up();
    // The row exists in the source of truth; its change has not arrived.
    let postgres = fixed(Ok(()));
    let liveness = ProjectedLiveness::builder(f.projection.clone())
        .clock(f.clock.clone())
        .barrier(ScriptedBarrier::new(true, || {}))
        .fallback(postgres.clone())
        .confirm_absent(AbsentConfirmation::per_second(NonZeroU32::new(2).unwrap()))
        .build();
    assert_eq!(liveness.check(&sid("brand-new")).await, Ok(()));
    assert_eq!(liveness.check(&sid("brand-new")).await, Ok(()));
    // Past the rate: not guessed, not asked.
    assert!(is_transient(&liveness.check(&sid("random")).await));
    assert_eq!(postgres.1.load(Ordering::SeqCst), 2);
    assert_eq!(liveness.counts().get(Source::Fallback, Answer::Live), 2);
    assert_eq!(liveness.counts().get(Source::Unavailable, Answer::Transient), 1);
    // A session the projection holds is never confirmed.
    f.revoked("held");
    assert_eq!(liveness.check(&sid("held")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(postgres.1.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_confirmation_an_absent_session_the_source_does_not_hold_is_revoked() {
    let f = Fixture::new();
    f.catch_up();
    let liveness = ProjectedLiveness::builder(f.projection.clone())
        .clock(f.clock.clone())
        .barrier(ScriptedBarrier::new(true, || {}))
        .fallback(fixed(Err(SessionLivenessError::Revoked)))
        .confirm_absent(AbsentConfirmation::per_second(NonZeroU32::new(10).unwrap()))
        .build();
    assert_eq!(liveness.check(&sid("nobody")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn absent_session_without_a_barrier_is_revoked_at_once() {
    let f = Fixture::new();
    f.catch_up();
    assert_eq!(f.liveness().check(&sid("nobody")).await, Err(SessionLivenessError::Revoked));
}

#[tokio::test]
async fn cold_projection_asks_the_fallback() {
    let f = Fixture::new();
    f.revoked("a"); // applied, but the projection has not caught up
    let fallback = fixed(Ok(()));
    let liveness =
        ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).fallback(fallback.clone()).build();
    assert_eq!(liveness.check(&sid("a")).await, Ok(()), "the fallback's answer, not the store's");
    assert_eq!(fallback.1.load(Ordering::SeqCst), 1);
    assert_eq!(liveness.counts().get(Source::Fallback, Answer::Live), 1);
}

#[tokio::test]
async fn cold_projection_without_a_fallback_is_transient() {
    let f = Fixture::new();
    f.created("a", None);
    assert!(is_transient(&f.liveness().check(&sid("a")).await));
}

#[tokio::test]
async fn cold_projection_passes_on_the_fallbacks_transient() {
    let f = Fixture::new();
    let fallback = fixed(Err(SessionLivenessError::Transient("database down".into())));
    let liveness = ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).fallback(fallback).build();
    assert_eq!(liveness.check(&sid("a")).await, Err(SessionLivenessError::Transient("database down".into())));
}

#[tokio::test]
async fn lagging_projection_answers_transient() {
    let f = Fixture::new();
    f.created("a", None);
    f.catch_up();
    let fallback = fixed(Ok(()));
    let liveness =
        ProjectedLiveness::builder(f.projection.clone()).clock(f.clock.clone()).fallback(fallback.clone()).build();
    assert_eq!(liveness.check(&sid("a")).await, Ok(()));
    f.clock.advance(MAX + Duration::from_millis(1));
    let answer = liveness.check(&sid("a")).await;
    assert!(is_transient(&answer), "{answer:?}");
    assert_eq!(fallback.1.load(Ordering::SeqCst), 0, "the default lag policy never asks the fallback");
}

#[tokio::test]
async fn lagging_projection_asks_the_fallback_under_the_fallback_policy() {
    let f = Fixture::new();
    f.created("a", None);
    f.catch_up();
    let fallback = fixed(Err(SessionLivenessError::Revoked));
    let liveness = ProjectedLiveness::builder(f.projection.clone())
        .clock(f.clock.clone())
        .fallback(fallback.clone())
        .lag_policy(LagPolicy::Fallback)
        .build();
    assert_eq!(liveness.check(&sid("a")).await, Ok(()));
    f.clock.advance(MAX * 2);
    assert_eq!(liveness.check(&sid("a")).await, Err(SessionLivenessError::Revoked));
    assert_eq!(fallback.1.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rebuilt_projection_is_installed_atomically() {
    let f = Fixture::new();
    f.created("a", None);
    f.catch_up();
    let liveness = f.liveness();
    assert_eq!(liveness.check(&sid("a")).await, Ok(()));
    let rebuilt = Fixture::with_clock(f.clock.clone());
    rebuilt.created("a", None);
    rebuilt.revoked("a");
    rebuilt.catch_up();
    liveness.install(rebuilt.projection.clone());
    assert_eq!(liveness.check(&sid("a")).await, Err(SessionLivenessError::Revoked));
}

/// Every check is counted exactly once, however many threads check and
/// however they come and go: more threads at once than there are per-thread
/// stripes (the rest share one), then waves of short-lived threads that
/// reuse the stripes of exited ones.
#[test]
fn checks_are_counted_exactly_across_threads() {
    let f = Fixture::new();
    f.created("a", None);
    f.catch_up();
    let liveness = Arc::new(f.liveness());
    let per_thread = 2_000;
    let check_on_threads = |threads: usize| {
        std::thread::scope(|scope| {
            let start = Arc::new(std::sync::Barrier::new(threads));
            for _ in 0..threads {
                let (liveness, start) = (liveness.clone(), start.clone());
                scope.spawn(move || {
                    start.wait();
                    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    for _ in 0..per_thread {
                        assert_eq!(runtime.block_on(liveness.check(&sid("a"))), Ok(()));
                    }
                });
            }
        });
    };
    check_on_threads(100);
    for _ in 0..20 {
        check_on_threads(8);
    }
    assert_eq!(liveness.counts().get(Source::Projection, Answer::Live), (100 + 20 * 8) * per_thread);
}
