//! [`ProjectedLiveness`]: the port answered from the projection.
//!
//! Each check is routed by the projection's [`FreshnessState`]:
//!
//! | state | store says | answer |
//! |---|---|---|
//! | Live | live | `Ok` |
//! | Live | revoked or expired | `Revoked` |
//! | Live | absent | barrier, then look again: absent → `Revoked` (or, with [`AbsentConfirmation`], the fallback's answer, `Transient` past its rate); barrier timeout → `Transient` |
//! | Cold | — | the fallback's answer, or `Transient` without one |
//! | Lagging | — | `Transient`; the fallback's answer under [`LagPolicy::Fallback`] |
//!
//! The projection itself is swappable (module `current`) so that
//! a rebuild can fill a fresh [`Projection`] while this one serves, then swap
//! it in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::barrier::Barrier;
use crate::check_counts::{Answer, CheckCounts, Source};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::confirm::AbsentConfirmation;
use crate::current::Current;
use crate::freshness::{Freshness, FreshnessReport, FreshnessState};
use crate::port::{CheckFuture, SessionLiveness, SessionLivenessError, TokenLiveness};
use crate::projection::Projection;
use crate::session_id::SessionId;
use crate::store::{Lookup, StoreCounts};

/// What to do while the projection is Lagging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagPolicy {
    /// Answer `Transient` (fail closed). The default.
    #[default]
    Transient,
    /// Ask the fallback (e.g. Postgres), as during a cold start.
    Fallback,
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
    pub(crate) projection: Current,
    barrier: Option<Arc<dyn Barrier>>,
    confirm: Option<AbsentConfirmation>,
    fallback: Option<Arc<dyn SessionLiveness>>,
    /// Who answers token checks while Cold (and Lagging under the fallback
    /// policy): `token.rs`.
    pub(crate) token_fallback: Option<Arc<dyn TokenLiveness>>,
    pub(crate) lag_policy: LagPolicy,
    pub(crate) clock: C,
    pub(crate) counts: CheckCounts,
}

/// Builder of a [`ProjectedLiveness`].
#[must_use]
pub struct ProjectedLivenessBuilder<C: Clock = SystemClock> {
    projection: Arc<Projection>,
    barrier: Option<Arc<dyn Barrier>>,
    confirm: Option<AbsentConfirmation>,
    fallback: Option<Arc<dyn SessionLiveness>>,
    token_fallback: Option<Arc<dyn TokenLiveness>>,
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
            confirm: None,
            fallback: None,
            token_fallback: None,
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

    /// After the barrier, ask the fallback about a session still absent, at
    /// most at `confirm`'s rate (past it: `Transient`). For sources whose
    /// commits the broker's watermarks do not cover (change data capture).
    /// Without a fallback it has no effect.
    pub fn confirm_absent(mut self, confirm: AbsentConfirmation) -> Self {
        self.confirm = Some(confirm);
        self
    }

    /// Who answers while Cold (and while Lagging under [`LagPolicy::Fallback`]).
    pub fn fallback(mut self, fallback: Arc<dyn SessionLiveness>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Who answers token checks ([`TokenLiveness`]) while Cold (and while
    /// Lagging under [`LagPolicy::Fallback`]); without one they answer
    /// `Transient` then.
    pub fn token_fallback(mut self, fallback: Arc<dyn TokenLiveness>) -> Self {
        self.token_fallback = Some(fallback);
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
            confirm: self.confirm,
            fallback: self.fallback,
            token_fallback: self.token_fallback,
            lag_policy: self.lag_policy,
            clock,
        }
    }

    /// Done.
    pub fn build(self) -> ProjectedLiveness<C> {
        ProjectedLiveness {
            projection: Current::new(self.projection),
            barrier: self.barrier,
            confirm: self.confirm,
            fallback: self.fallback,
            token_fallback: self.token_fallback,
            lag_policy: self.lag_policy,
            clock: self.clock,
            counts: CheckCounts::default(),
        }
    }
}

/// What the synchronous part of a check decided.
enum Route {
    /// Live from the store (the common case).
    Live,
    /// Revoked or expired in the store.
    Revoked,
    /// Answered otherwise, at once.
    Done(Source, Result<(), SessionLivenessError>),
    /// Absent from a Live store: wait for the barrier from the check's start.
    Barrier(Arc<Projection>, Timestamp),
    /// Cold or Lagging: ask the fallback; the string says why.
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
        self.projection.with(|projection| projection.freshness.state(self.clock.now()))
    }

    /// Freshness and store counters now.
    pub fn status(&self) -> ProjectionStatus {
        let projection = self.projection.load_full();
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
    fn route_slow(&self, projection: &Arc<Projection>, state: FreshnessState, now: Timestamp) -> Route {
        match state {
            FreshnessState::Live if self.barrier.is_some() || self.confirms() => {
                Route::Barrier(projection.clone(), now)
            }
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
        if let Some(barrier) = &self.barrier {
            self.counts.barrier_wait_started();
            if let Err(timeout) = barrier.wait_until_fresh(&projection.freshness, began).await {
                self.counts.barrier_timed_out();
                return (Source::Barrier, Err(SessionLivenessError::Transient(timeout.to_string())));
            }
        }
        let answer = match projection.store.lookup(sid, self.clock.now()) {
            Lookup::Live => Ok(()),
            Lookup::Revoked | Lookup::Expired => Err(SessionLivenessError::Revoked),
            Lookup::Absent => return self.confirm_absent(sid).await,
        };
        (Source::Barrier, answer)
    }

    /// Whether absent sessions are confirmed with the fallback.
    fn confirms(&self) -> bool {
        self.confirm.is_some() && self.fallback.is_some()
    }

    /// A session still absent after the barrier: `Revoked`, unless absent
    /// sessions are confirmed with the fallback (see [`AbsentConfirmation`]).
    async fn confirm_absent(&self, sid: &SessionId) -> (Source, Result<(), SessionLivenessError>) {
        let (Some(confirm), Some(fallback)) = (&self.confirm, &self.fallback) else {
            return (Source::Barrier, Err(SessionLivenessError::Revoked));
        };
        if !confirm.try_acquire() {
            let why = format!("unknown session not confirmed: more than {} unknown sessions a second", confirm.limit());
            return (Source::Unavailable, Err(SessionLivenessError::Transient(why)));
        }
        (Source::Fallback, fallback.check(sid).await)
    }
}

pub(crate) fn lag_reason(freshness: &Freshness, now: Timestamp) -> String {
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
        let route = self.projection.with(|projection| {
            // In this order: how fresh the store is, then the store, then the
            // clock. Freshness before the data, so the data read holds at
            // least everything `fresh_as_of` vouches for (the feed applies
            // records before it advances `fresh_as_of`; read after, a
            // freshness that advanced meanwhile could vouch for a revocation
            // this lookup missed). The clock last, so reading it does not wait
            // behind the previous check's lookup; a later `now` only makes
            // staleness and expiry more conservative, and the barrier then
            // waits for data newer than it.
            let fresh_as_of = projection.freshness.fresh_as_of();
            let found = projection.store.state(sid);
            let now = self.clock.now();
            let state = projection.freshness.state_as_of(fresh_as_of, now);
            // The common case here, every other one out of line, and with
            // little work waiting on the lookup or the clock, so back-to-back
            // checks can overlap their cache misses
            // (docs/benchmarks-notes.md, "the check").
            if state == FreshnessState::Live {
                match projection.store.judge(found, now) {
                    Lookup::Live => return Route::Live,
                    Lookup::Revoked | Lookup::Expired => return Route::Revoked,
                    Lookup::Absent => {}
                }
            }
            self.route_slow(projection, state, now)
        });
        match route {
            Route::Live => {
                self.counts.record_projected::<{ Answer::Live as usize }>();
                Box::pin(Answered::<true>)
            }
            Route::Revoked => {
                self.counts.record_projected::<{ Answer::Revoked as usize }>();
                Box::pin(Answered::<false>)
            }
            Route::Done(source, result) => {
                self.counts.record(source, Answer::of(&result));
                match result {
                    Ok(()) => Box::pin(Answered::<true>),
                    Err(SessionLivenessError::Revoked) => Box::pin(Answered::<false>),
                    Err(other) => Box::pin(std::future::ready(Err(other))),
                }
            }
            Route::Barrier(projection, began) => Box::pin(async move {
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
            .field("sessions", &self.projection.load_full().store.len())
            .field("barrier", &self.barrier.is_some())
            .field("confirm", &self.confirm)
            .field("fallback", &self.fallback)
            .field("lag_policy", &self.lag_policy)
            .finish()
    }
}
