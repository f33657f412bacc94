//! [`ProjectedLiveness`]: the port answered from the projection.
//!
//! Each check is routed by the projection's [`FreshnessState`]:
//!
//! | state | store says | answer |
//! |---|---|---|
//! | Live | live | `Ok` |
//! | Live | revoked or expired | `Revoked` |
//! | Live | absent | barrier, then look again: absent → `Revoked`; barrier timeout → `Transient` |
//! | Cold | — | the fallback's answer, or `Transient` without one |
//! | Lagging | — | `Transient`; the fallback's answer under [`LagPolicy::Fallback`] |
//!
//! The projection itself sits behind an atomic pointer so that a rebuild can
//! fill a fresh [`Projection`] while this one serves, then swap it in.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::barrier::Barrier;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::freshness::{Freshness, FreshnessConfig, FreshnessReport, FreshnessState};
use crate::port::{CheckFuture, SessionId, SessionLiveness, SessionLivenessError};
use crate::store::{Lookup, SessionStore, StoreCounts};

/// A store and the freshness that says how far it can be trusted: what a
/// source fills and what [`ProjectedLiveness`] reads.
#[derive(Debug)]
pub struct Projection {
    store: SessionStore,
    freshness: Freshness,
}

impl Projection {
    /// An empty, Cold projection.
    pub fn new(config: FreshnessConfig) -> Self {
        Self::with_store(SessionStore::new(), config)
    }

    /// A Cold projection over `store` (e.g. one pre-sized for a replay).
    pub fn with_store(store: SessionStore, config: FreshnessConfig) -> Self {
        Self { store, freshness: Freshness::new(config) }
    }

    /// The sessions.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// How far the sessions can be trusted.
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }
}

/// What to do while the projection is Lagging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagPolicy {
    /// Answer `Transient` (fail closed). The default.
    #[default]
    Transient,
    /// Ask the fallback (e.g. Postgres), as during a cold start.
    Fallback,
}

/// Where an answer came from, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The projection's store.
    Projection,
    /// The store, after a read-your-writes barrier.
    Barrier,
    /// The fallback (cold start, or lag under [`LagPolicy::Fallback`]).
    Fallback,
    /// Nobody: the projection could not answer and had no fallback.
    Unavailable,
}

/// The three answers, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// `Ok(())`.
    Live,
    /// `Err(Revoked)`.
    Revoked,
    /// `Err(Transient(_))`.
    Transient,
}

impl Source {
    /// Every source, in metric order.
    pub const ALL: [Source; 4] = [Source::Projection, Source::Barrier, Source::Fallback, Source::Unavailable];
    /// Lowercase label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Projection => "projection",
            Self::Barrier => "barrier",
            Self::Fallback => "fallback",
            Self::Unavailable => "unavailable",
        }
    }
}

impl Answer {
    /// Every answer, in metric order.
    pub const ALL: [Answer; 3] = [Answer::Live, Answer::Revoked, Answer::Transient];
    /// Lowercase label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Revoked => "revoked",
            Self::Transient => "transient",
        }
    }
    fn of(result: &Result<(), SessionLivenessError>) -> Self {
        match result {
            Ok(()) => Self::Live,
            Err(SessionLivenessError::Revoked) => Self::Revoked,
            Err(_) => Self::Transient,
        }
    }
}

/// Check counters are kept per thread: each thread that checks leases a
/// stripe of them for its lifetime, and being the stripe's only writer it
/// counts with a plain load and store, no locked instruction. (A locked add
/// per check cost a third of a check's time in cache — 57 ns against 37 ns
/// at 100k sessions, `cargo bench -p revocation-core --bench check` — and
/// kept the CPU from overlapping it with the lookup's memory access.) Up to
/// this many threads lease a stripe at once; any more share one last stripe
/// and count with atomic adds.
const STRIPES: usize = 64;

/// One stripe: a check counter per source and answer, on its own cache lines.
type Stripe = CachePadded<[[AtomicU64; 3]; 4]>;

/// The stripe this thread counts in: `UNLEASED` until its first check, then
/// its leased stripe, or `SHARED` (there were none left, or the thread is
/// exiting). A `const`-initialised cell without a destructor, so the hot path
/// reads it with one load and no lazy-initialisation check (a lazily
/// initialised thread-local with a destructor cost ~40 ns per back-to-back
/// check, measured).
const UNLEASED: usize = usize::MAX;
const SHARED: usize = STRIPES;

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(UNLEASED) };
    /// Registered at the lease, dropped at thread exit: returns the stripe.
    static LEASE: RefCell<Option<Lease>> = const { RefCell::new(None) };
}

/// A stripe leased by the current thread, returned when the thread exits.
struct Lease(usize);

/// Stripes returned by threads that have exited, for the next threads.
static RETURNED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Stripes never leased yet start here.
static NEVER_LEASED: AtomicUsize = AtomicUsize::new(0);

impl Lease {
    /// This thread's stripe, leased now: [`SHARED`] when none is left, or
    /// when the thread is exiting and can no longer register the return.
    #[cold]
    fn take() -> usize {
        let returned = RETURNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let Some(stripe) = returned.or_else(|| {
            NEVER_LEASED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < STRIPES).then_some(n + 1)).ok()
        }) else {
            STRIPE.set(SHARED);
            return SHARED;
        };
        let lease = Lease(stripe);
        match LEASE.try_with(|slot| slot.replace(Some(lease))) {
            Ok(_) => {
                STRIPE.set(stripe);
                stripe
            }
            // Exiting, past the point of registering: the closure, and the
            // lease in it, were dropped, which returned the stripe.
            Err(_) => {
                STRIPE.set(SHARED);
                SHARED
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Counts after this (other thread-locals' destructors) go to the
        // shared stripe.
        let _ = STRIPE.try_with(|stripe| stripe.set(SHARED));
        // The lock orders this thread's last counts before the next owner's.
        RETURNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(self.0);
    }
}

/// This thread's stripe.
#[inline]
fn stripe() -> usize {
    match STRIPE.get() {
        UNLEASED => Lease::take(),
        stripe => stripe,
    }
}

/// Counters of checks by source and answer, and of barrier waits.
#[derive(Debug)]
pub struct CheckCounts {
    /// `STRIPES` leased stripes, then the shared one (a fixed length, so
    /// indexing by a stripe number needs no bounds check).
    by_source_answer: Box<[Stripe; STRIPES + 1]>,
    barrier_waits: AtomicU64,
    barrier_timeouts: AtomicU64,
}

impl Default for CheckCounts {
    fn default() -> Self {
        Self {
            by_source_answer: Box::new(std::array::from_fn(|_| Stripe::default())),
            barrier_waits: AtomicU64::new(0),
            barrier_timeouts: AtomicU64::new(0),
        }
    }
}

impl CheckCounts {
    #[inline]
    fn record(&self, source: Source, answer: Answer) {
        self.bump(stripe(), source as usize, answer as usize);
    }

    /// Counts one check the projection answered with `ANSWER` (an
    /// [`Answer`] as a number): a constant per call site, so the counter's
    /// address does not depend on the lookup. A store whose address waited
    /// for the lookup's cache miss held up the loads after it, and with them
    /// the next check's lookup (back-to-back checks ~40 ns slower, measured).
    #[inline]
    fn record_projected<const ANSWER: usize>(&self) {
        self.bump(stripe(), Source::Projection as usize, ANSWER);
    }

    #[inline]
    fn bump(&self, stripe: usize, source: usize, answer: usize) {
        let counter = &self.by_source_answer[stripe.min(SHARED)][source][answer];
        if stripe < SHARED {
            // This thread is the stripe's only writer.
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        } else {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Checks answered `answer` from `source` so far.
    pub fn get(&self, source: Source, answer: Answer) -> u64 {
        self.by_source_answer
            .iter()
            .map(|stripe| stripe[source as usize][answer as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Barrier waits started.
    pub fn barrier_waits(&self) -> u64 {
        self.barrier_waits.load(Ordering::Relaxed)
    }

    /// Barrier waits that timed out.
    pub fn barrier_timeouts(&self) -> u64 {
        self.barrier_timeouts.load(Ordering::Relaxed)
    }
}

/// Everything the lag health endpoint shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Freshness: state, staleness, per-partition positions.
    pub freshness: FreshnessReport,
    /// Store counters.
    pub store: StoreCounts,
}

/// A [`SessionLiveness`] answered from an in-memory [`Projection`].
///
/// Build it with [`ProjectedLiveness::builder`]; see the crate docs for a
/// complete example.
pub struct ProjectedLiveness<C: Clock = SystemClock> {
    projection: ArcSwap<Projection>,
    barrier: Option<Arc<dyn Barrier>>,
    fallback: Option<Arc<dyn SessionLiveness>>,
    lag_policy: LagPolicy,
    clock: C,
    counts: CheckCounts,
}

/// Builder of a [`ProjectedLiveness`].
#[must_use]
pub struct ProjectedLivenessBuilder<C: Clock = SystemClock> {
    projection: Arc<Projection>,
    barrier: Option<Arc<dyn Barrier>>,
    fallback: Option<Arc<dyn SessionLiveness>>,
    lag_policy: LagPolicy,
    clock: C,
}

impl ProjectedLiveness<SystemClock> {
    /// Starts building over `projection`. Without a barrier an absent session
    /// is answered `Revoked` at once (no read-your-writes); without a fallback
    /// a Cold projection answers `Transient`. Calibrates the system clock
    /// now, once per process, so no check pays for it.
    pub fn builder(projection: Arc<Projection>) -> ProjectedLivenessBuilder<SystemClock> {
        SystemClock::warm_up();
        ProjectedLivenessBuilder {
            projection,
            barrier: None,
            fallback: None,
            lag_policy: LagPolicy::default(),
            clock: SystemClock,
        }
    }
}

impl<C: Clock> ProjectedLivenessBuilder<C> {
    /// The read-your-writes barrier for absent sessions.
    pub fn barrier(mut self, barrier: Arc<dyn Barrier>) -> Self {
        self.barrier = Some(barrier);
        self
    }

    /// Who answers while Cold (and while Lagging under [`LagPolicy::Fallback`]).
    pub fn fallback(mut self, fallback: Arc<dyn SessionLiveness>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// What to do while Lagging.
    pub fn lag_policy(mut self, policy: LagPolicy) -> Self {
        self.lag_policy = policy;
        self
    }

    /// The clock (tests use a [`crate::ManualClock`]).
    pub fn clock<D: Clock>(self, clock: D) -> ProjectedLivenessBuilder<D> {
        ProjectedLivenessBuilder {
            projection: self.projection,
            barrier: self.barrier,
            fallback: self.fallback,
            lag_policy: self.lag_policy,
            clock,
        }
    }

    /// Done.
    pub fn build(self) -> ProjectedLiveness<C> {
        ProjectedLiveness {
            projection: ArcSwap::new(self.projection),
            barrier: self.barrier,
            fallback: self.fallback,
            lag_policy: self.lag_policy,
            clock: self.clock,
            counts: CheckCounts::default(),
        }
    }
}

/// What the synchronous part of a check decided.
enum Route {
    Done(Source, Result<(), SessionLivenessError>),
    Barrier(Arc<Projection>),
    Fallback(String),
}

impl<C: Clock> ProjectedLiveness<C> {
    /// The projection answering now.
    pub fn projection(&self) -> Arc<Projection> {
        self.projection.load_full()
    }

    /// Replaces the projection (the end of a rebuild). Checks already under
    /// way finish on the old one.
    pub fn install(&self, projection: Arc<Projection>) {
        self.projection.store(projection);
    }

    /// The state the projection is in now.
    pub fn state(&self) -> FreshnessState {
        self.projection.load().freshness.state(self.clock.now())
    }

    /// Freshness and store counters now.
    pub fn status(&self) -> ProjectionStatus {
        let projection = self.projection.load();
        ProjectionStatus { freshness: projection.freshness.report(self.clock.now()), store: projection.store.counts() }
    }

    /// Whether checks get correct answers now: Live, or a fallback answers
    /// for the state we are in. What a readiness probe should report.
    pub fn can_answer(&self) -> bool {
        match self.state() {
            FreshnessState::Live => true,
            FreshnessState::Cold => self.fallback.is_some(),
            FreshnessState::Lagging => self.fallback.is_some() && self.lag_policy == LagPolicy::Fallback,
        }
    }

    /// Whether a fallback is configured.
    pub fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Checks answered so far, by source and answer.
    pub fn counts(&self) -> &CheckCounts {
        &self.counts
    }

    /// The clock in use.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Everything but a Live projection's answer for a session it holds:
    /// absent sessions (the barrier), a cold or lagging projection.
    #[cold]
    #[inline(never)]
    fn route_slow(&self, projection: arc_swap::Guard<Arc<Projection>>, state: FreshnessState, now: Timestamp) -> Route {
        match state {
            FreshnessState::Live if self.barrier.is_some() => Route::Barrier(arc_swap::Guard::into_inner(projection)),
            FreshnessState::Live => Route::Done(Source::Projection, Err(SessionLivenessError::Revoked)),
            FreshnessState::Cold => Route::Fallback("the projection is still catching up (cold start)".into()),
            FreshnessState::Lagging => {
                let why = lag_reason(&projection.freshness, now);
                match self.lag_policy {
                    LagPolicy::Fallback => Route::Fallback(why),
                    LagPolicy::Transient => Route::Done(Source::Unavailable, Err(SessionLivenessError::Transient(why))),
                }
            }
        }
    }

    async fn wait_and_look_again(
        &self,
        projection: &Projection,
        sid: &SessionId,
        began: Timestamp,
    ) -> (Source, Result<(), SessionLivenessError>) {
        let Some(barrier) = &self.barrier else {
            return (Source::Projection, Err(SessionLivenessError::Revoked));
        };
        self.counts.barrier_waits.fetch_add(1, Ordering::Relaxed);
        if let Err(timeout) = barrier.wait_until_fresh(&projection.freshness, began).await {
            self.counts.barrier_timeouts.fetch_add(1, Ordering::Relaxed);
            return (Source::Barrier, Err(SessionLivenessError::Transient(timeout.to_string())));
        }
        let answer = match projection.store.lookup(sid, self.clock.now()) {
            Lookup::Live => Ok(()),
            Lookup::Revoked | Lookup::Expired | Lookup::Absent => Err(SessionLivenessError::Revoked),
        };
        (Source::Barrier, answer)
    }
}

fn lag_reason(freshness: &Freshness, now: Timestamp) -> String {
    let max = freshness.config().max_staleness;
    match freshness.staleness(now) {
        Some(s) => format!("the projection is {} ms behind the broker (limit {} ms)", s.as_millis(), max.as_millis()),
        None => "the projection has not reached every partition".to_string(),
    }
}

/// Written out rather than with `#[async_trait]`: the projection answers most
/// checks synchronously, when `check` is called, and returns a zero-sized
/// ready future, which boxing does not allocate. Only the slow paths
/// (barrier, fallback) build a real future. Answering at call time rather
/// than at first poll is the same answer: callers await at once, and the
/// check's instant is the instant it began either way.
impl<C: Clock> SessionLiveness for ProjectedLiveness<C> {
    fn check<'life0, 'life1, 'async_trait>(&'life0 self, sid: &'life1 SessionId) -> CheckFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let projection = self.projection.load();
        // In this order: how fresh the store is, then the store, then the
        // clock. Freshness before the data, so the data read holds at least
        // everything `fresh_as_of` vouches for (the feed applies records
        // before it advances `fresh_as_of`; read after, a freshness that
        // advanced meanwhile could vouch for a revocation this lookup missed).
        // The clock last, because reading it waits for the memory traffic
        // before it: ahead of the lookup it also waited for the previous
        // check's lookup (measured: back-to-back checks took ~30 % longer).
        // A later `now` only makes staleness and expiry more conservative,
        // and the barrier then waits for data newer than that `now`.
        let fresh_as_of = projection.freshness.fresh_as_of();
        let found = projection.store.state(sid);
        let now = self.clock.now();
        let state = projection.freshness.state_as_of(fresh_as_of, now);
        // The common case here, every other one out of line. Back-to-back
        // checks overlap their cache misses only as far as the CPU can hold
        // the work that waits on them (on the lookup, and on the clock read,
        // which completes behind the lookup): so the path keeps that work
        // small — one multiply to convert the clock, integer staleness,
        // counters at fixed addresses in a plain thread-local (see
        // docs/benchmarks-notes.md).
        if state == FreshnessState::Live {
            match Lookup::of(found, now) {
                Lookup::Live => {
                    drop(projection);
                    self.counts.record_projected::<{ Answer::Live as usize }>();
                    return Box::pin(Answered::<true>);
                }
                Lookup::Revoked | Lookup::Expired => {
                    drop(projection);
                    self.counts.record_projected::<{ Answer::Revoked as usize }>();
                    return Box::pin(Answered::<false>);
                }
                Lookup::Absent => {}
            }
        }
        let began = now;
        match self.route_slow(projection, state, now) {
            Route::Done(source, result) => {
                self.counts.record(source, Answer::of(&result));
                match result {
                    Ok(()) => Box::pin(Answered::<true>),
                    Err(SessionLivenessError::Revoked) => Box::pin(Answered::<false>),
                    Err(other) => Box::pin(std::future::ready(Err(other))),
                }
            }
            Route::Barrier(projection) => Box::pin(async move {
                let (source, result) = self.wait_and_look_again(&projection, sid, began).await;
                self.counts.record(source, Answer::of(&result));
                result
            }),
            Route::Fallback(why) => Box::pin(async move {
                let (source, result) = match &self.fallback {
                    Some(fallback) => (Source::Fallback, fallback.check(sid).await),
                    None => (Source::Unavailable, Err(SessionLivenessError::Transient(why))),
                };
                self.counts.record(source, Answer::of(&result));
                result
            }),
        }
    }
}

/// An answer known when the check was called: live (`true`) or revoked.
/// Zero-sized, so `Box::pin` of it does not allocate.
struct Answered<const LIVE: bool>;

impl<const LIVE: bool> Future for Answered<LIVE> {
    type Output = Result<(), SessionLivenessError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(if LIVE { Ok(()) } else { Err(SessionLivenessError::Revoked) })
    }
}

impl<C: Clock> fmt::Debug for ProjectedLiveness<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectedLiveness")
            .field("state", &self.state())
            .field("sessions", &self.projection.load().store.len())
            .field("barrier", &self.barrier.is_some())
            .field("fallback", &self.fallback)
            .field("lag_policy", &self.lag_policy)
            .finish()
    }
}
