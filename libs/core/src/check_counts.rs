//! [`CheckCounts`]: how many checks got which answer from where, counted
//! without a locked instruction on the hot path.
//!
//! Each thread that checks leases a *stripe* of counters for its lifetime
//! and, being the stripe's only writer, counts with a plain load and store.
//! A locked add per check would serialise back-to-back checks, which
//! otherwise overlap their cache misses (numbers in
//! `docs/benchmarks-notes.md`, "per-thread counters"). Readers sum the
//! stripes; a stripe returned by an exiting thread keeps its counts and
//! passes to the next thread.

use std::cell::{Cell, RefCell};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::port::SessionLivenessError;

/// Where an answer came from, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The projection's store.
    Projection,
    /// The store, after a read-your-writes barrier.
    Barrier,
    /// The fallback (cold start, or lag under [`LagPolicy::Fallback`](crate::LagPolicy::Fallback)).
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
    pub(crate) fn of(result: &Result<(), SessionLivenessError>) -> Self {
        match result {
            Ok(()) => Self::Live,
            Err(SessionLivenessError::Revoked) => Self::Revoked,
            Err(_) => Self::Transient,
        }
    }
}

/// Up to this many threads lease a stripe at once; any more share one last
/// stripe and count with atomic adds.
const STRIPES: usize = 64;

/// One stripe: a check counter per source and answer, on its own cache lines.
type Stripe = CachePadded<[[AtomicU64; 3]; 4]>;

/// The stripe this thread counts in: `UNLEASED` until its first check, then
/// its leased stripe, or `SHARED` (there were none left, or the thread is
/// exiting). A `const`-initialised cell without a destructor, so the hot path
/// reads it with one load and no lazy-initialisation check; the lease, which
/// needs a destructor, lives in a second thread-local touched only at the
/// first check and at thread exit.
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
    pub(crate) fn record(&self, source: Source, answer: Answer) {
        self.bump(stripe(), source as usize, answer as usize);
    }

    /// Counts one check the projection answered with `ANSWER` (an
    /// [`Answer`] as a number): a constant per call site, so the counter's
    /// address does not wait for the lookup, and neither do the loads after
    /// it (the next check's lookup among them).
    #[inline]
    pub(crate) fn record_projected<const ANSWER: usize>(&self) {
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

    pub(crate) fn barrier_wait_started(&self) {
        self.barrier_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn barrier_timed_out(&self) {
        self.barrier_timeouts.fetch_add(1, Ordering::Relaxed);
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
