//! How fresh the projection is, and therefore whether it may answer.
//!
//! Per partition the source reports its *position* (the next offset it will
//! read) and *watermark samples*: "at instant `t` the broker's high watermark
//! was `h`". Once the position reaches `h`, every record the broker had
//! acknowledged before `t` has been applied: the partition is *fresh as of
//! `t`*. The projection is fresh as of the minimum over its partitions, and
//! its staleness is `now - fresh_as_of`.
//!
//! If samples stop (broker unreachable) or the position stops advancing
//! (consumer stuck), `fresh_as_of` stops moving, staleness grows, and the
//! state turns [`FreshnessState::Lagging`]: we fail closed without having to
//! detect the fault itself. An idle topic stays fresh because each new sample
//! is reached at once.
//!
//! The hot path ([`Freshness::state`]) reads three atomics. Writers (the
//! source's consumer and sampler) take a mutex over the per-partition
//! bookkeeping and publish the new minimum.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::{Timestamp, duration_micros};

mod report;
pub use report::{FreshnessReport, PartitionReport};

/// `fresh_as_of` before every partition has reached a sample.
const UNKNOWN: i64 = i64::MIN;

/// Pending samples kept per partition; when more arrive before the consumer
/// reaches them, the oldest is dropped (which can only delay freshness).
const MAX_PENDING_SAMPLES: usize = 64;

/// Freshness thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessConfig {
    /// Beyond this staleness the projection stops answering (Lagging).
    /// Default: 2 s.
    pub max_staleness: Duration,
    /// A Lagging projection is Live again only once staleness is at most
    /// this (hysteresis, so a projection near the limit does not flap).
    /// Default: half of `max_staleness`.
    pub recover_below: Duration,
    /// Also bound freshness by the source's heartbeats (change data capture):
    /// a partition is fresh only as of the older of its broker sample and
    /// the newest source heartbeat read on it (see
    /// [`Freshness::record_source_heartbeat`]). Default: false.
    pub source_heartbeats: bool,
    /// With `source_heartbeats`: the source's cutoffs table has a heartbeat
    /// row too, and freshness never passes the newest one read (see
    /// [`Freshness::record_cutoffs_heartbeat`]), so a cutoffs table whose
    /// changes do not reach the topic keeps the projection from being Live.
    /// Default: false.
    pub cutoffs_heartbeats: bool,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        Self::with_max_staleness(Self::DEFAULT_MAX_STALENESS)
    }
}

impl FreshnessConfig {
    /// Default of [`Self::max_staleness`].
    pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(2);

    /// `max_staleness` as given, `recover_below` at half of it.
    pub fn with_max_staleness(max_staleness: Duration) -> Self {
        Self { max_staleness, recover_below: max_staleness / 2, source_heartbeats: false, cutoffs_heartbeats: false }
    }
}

/// Whether the projection may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FreshnessState {
    /// Not yet caught up since start: ask the fallback.
    Cold,
    /// Staleness within bounds: answer from the store.
    Live,
    /// Caught up once, but now too stale: answer `Transient` (or fall back).
    Lagging,
}

impl FreshnessState {
    /// `cold`, `live` or `lagging`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Live => "live",
            Self::Lagging => "lagging",
        }
    }
}

#[derive(Debug, Default)]
struct Partition {
    /// Next offset the consumer will read; `None` until known.
    position: Option<i64>,
    /// Latest high watermark sampled.
    high_watermark: Option<i64>,
    /// Instant of the latest sample reached by the position.
    fresh_as_of: Option<Timestamp>,
    /// Samples not yet reached, oldest first, with increasing instants.
    pending: VecDeque<(i64, Timestamp)>,
    /// Commit instant of the newest source heartbeat read on this partition.
    source_fresh_as_of: Option<Timestamp>,
}

impl Partition {
    /// Fresh as of this instant, by the bounds in force.
    fn bound(&self, source_heartbeats: bool) -> Option<Timestamp> {
        if source_heartbeats { self.fresh_as_of.min(self.source_fresh_as_of) } else { self.fresh_as_of }
    }
}

impl Partition {
    fn settle(&mut self) {
        let Some(position) = self.position else { return };
        while let Some(&(hwm, at)) = self.pending.front() {
            if position < hwm {
                break;
            }
            self.pending.pop_front();
            self.fresh_as_of = Some(self.fresh_as_of.map_or(at, |f| f.max(at)));
        }
    }
}

/// Freshness bookkeeping of one projection.
///
/// ```
/// use std::time::Duration;
/// use revocation_core::{Freshness, FreshnessConfig, FreshnessState, Timestamp};
/// let f = Freshness::new(FreshnessConfig::with_max_staleness(Duration::from_secs(1)));
/// let t0 = Timestamp::from_unix_secs(100);
/// f.track_partitions([0, 1]);
/// f.record_high_watermark(0, 10, t0);
/// f.record_high_watermark(1, 0, t0);
/// f.record_position(1, 0);
/// assert_eq!(f.state(t0), FreshnessState::Cold); // partition 0 not reached yet
/// f.record_position(0, 10);
/// assert_eq!(f.state(t0), FreshnessState::Live);
/// assert_eq!(f.state(Timestamp::from_unix_secs(102)), FreshnessState::Lagging); // no new samples
/// ```
#[derive(Debug)]
pub struct Freshness {
    config: FreshnessConfig,
    partitions: Mutex<BTreeMap<i32, Partition>>,
    /// Minimum over partitions, published for the hot path (`UNKNOWN` until
    /// every tracked partition has reached a sample).
    fresh_as_of: AtomicI64,
    /// Set once, the first time the projection is Live: it leaves Cold for good.
    caught_up: AtomicBool,
    /// Hysteresis memory: set when staleness exceeds the limit, cleared when
    /// it falls to `recover_below`.
    lagging: AtomicBool,
    /// Set once the topic stops being a faithful copy of its source:
    /// `fresh_as_of` never passes it (see [`Self::distrust_after`]).
    distrusted_after: Mutex<Option<Timestamp>>,
    /// Commit instant of the newest heartbeat of the cutoffs table read.
    cutoffs_fresh_as_of: Mutex<Option<Timestamp>>,
    /// Wakes barrier waiters whenever `fresh_as_of` advances.
    advanced: watch::Sender<Option<Timestamp>>,
    /// The config's thresholds in whole microseconds (`fresh_as_of`'s unit),
    /// for the hot path: comparing integers there rather than building
    /// `Duration`s (for a whole number of microseconds `s`, `s > limit` holds
    /// exactly when `s > floor(limit)`).
    max_staleness_us: i64,
    recover_below_us: i64,
}

impl Freshness {
    /// Freshness with nothing tracked yet (Cold).
    pub fn new(config: FreshnessConfig) -> Self {
        Self {
            config,
            partitions: Mutex::new(BTreeMap::new()),
            fresh_as_of: AtomicI64::new(UNKNOWN),
            caught_up: AtomicBool::new(false),
            lagging: AtomicBool::new(false),
            distrusted_after: Mutex::new(None),
            cutoffs_fresh_as_of: Mutex::new(None),
            advanced: watch::Sender::new(None),
            max_staleness_us: duration_micros(config.max_staleness),
            recover_below_us: duration_micros(config.recover_below),
        }
    }

    /// The thresholds in force.
    pub fn config(&self) -> FreshnessConfig {
        self.config
    }

    /// Starts tracking these partitions (already tracked ones are kept). A new
    /// partition is unknown until it reaches a sample, which holds the whole
    /// projection's freshness back until then: we cannot vouch for it sooner.
    pub fn track_partitions(&self, partitions: impl IntoIterator<Item = i32>) {
        let mut map = self.lock();
        for p in partitions {
            map.entry(p).or_default();
        }
        self.publish(&map);
    }

    /// The consumer will next read `position` in `partition`. Positions only
    /// move forward; an older report is ignored.
    pub fn record_position(&self, partition: i32, position: i64) {
        let mut map = self.lock();
        let Some(p) = map.get_mut(&partition) else { return };
        if p.position.is_some_and(|known| known >= position) {
            return;
        }
        p.position = Some(position);
        let had_pending = !p.pending.is_empty();
        p.settle();
        if had_pending {
            self.publish(&map);
        }
    }

    /// At instant `sampled_at` (taken *before* the query was sent) the
    /// broker's high watermark of `partition` was `high_watermark`.
    pub fn record_high_watermark(&self, partition: i32, high_watermark: i64, sampled_at: Timestamp) {
        let mut map = self.lock();
        let Some(p) = map.get_mut(&partition) else { return };
        p.high_watermark = Some(p.high_watermark.map_or(high_watermark, |h| h.max(high_watermark)));
        if p.pending.back().is_some_and(|&(_, at)| at >= sampled_at) {
            return; // out of order sample: a newer one is already pending
        }
        if p.pending.len() == MAX_PENDING_SAMPLES {
            p.pending.pop_front();
        }
        p.pending.push_back((high_watermark, sampled_at));
        p.settle();
        self.publish(&map);
    }

    /// A source heartbeat committed at `committed_at` (the source's clock)
    /// was read on `partition` at `read_at` (ours): every change the source
    /// committed before it and sent to this partition has been read (the
    /// source sends in commit order and the partition keeps it). Used when
    /// [`FreshnessConfig::source_heartbeats`] is on.
    ///
    /// The commit instant is clamped to `read_at`: a source clock stepped
    /// ahead of ours must not pin a partition's freshness in the future,
    /// where a connector that died would look fresh until our clock caught
    /// up. What stays trusted is a source clock ahead of ours by less than
    /// the pipeline's own delay (commit to read); the bound's promise
    /// assumes the two clocks agree to well within `max_staleness`.
    pub fn record_source_heartbeat(&self, partition: i32, committed_at: Timestamp, read_at: Timestamp) {
        let committed_at = committed_at.min(read_at);
        let mut map = self.lock();
        let Some(p) = map.get_mut(&partition) else { return };
        if p.source_fresh_as_of.is_some_and(|known| known >= committed_at) {
            return;
        }
        p.source_fresh_as_of = Some(committed_at);
        self.publish(&map);
    }

    /// The cutoffs table's heartbeat row, committed at `committed_at` (the
    /// source's clock, clamped to `read_at` as for
    /// [`Self::record_source_heartbeat`]), was read: the table's changes
    /// committed before it have been read too, on every partition the
    /// sessions' heartbeats vouch for. Used when
    /// [`FreshnessConfig::cutoffs_heartbeats`] is on.
    pub fn record_cutoffs_heartbeat(&self, committed_at: Timestamp, read_at: Timestamp) {
        let committed_at = committed_at.min(read_at);
        let map = self.lock();
        let mut held = self.cutoffs_fresh_as_of.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.is_some_and(|known| known >= committed_at) {
            return;
        }
        *held = Some(committed_at);
        drop(held);
        self.publish(&map);
    }

    /// The topic stopped being a faithful copy of its source at `since`
    /// (the source's table was truncated; a partition was added to a topic
    /// whose deletes forget live sessions): it no longer says which sessions
    /// exist, so the projection is fresh as of `since` at most, for good. It
    /// turns Lagging within `max_staleness` (or stays Cold, asking its
    /// fallback) until it reads another topic. The earliest instant reported
    /// is kept; `since` is clamped to `read_at`, our clock.
    pub fn distrust_after(&self, since: Timestamp, read_at: Timestamp) {
        let since = since.min(read_at);
        let map = self.lock();
        let mut cut = self.distrusted_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cut.is_some_and(|known| known <= since) {
            return;
        }
        *cut = Some(since);
        drop(cut);
        self.publish(&map);
    }

    /// The bound the cutoffs table's heartbeat sets, when it sets one:
    /// `Some(None)` while none has been read.
    fn cutoffs_bound(&self) -> Option<Option<Timestamp>> {
        (self.config.source_heartbeats && self.config.cutoffs_heartbeats)
            .then(|| *self.cutoffs_fresh_as_of.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Since when the topic is distrusted, if it is (see [`Self::distrust_after`]).
    pub fn distrusted_after(&self) -> Option<Timestamp> {
        *self.distrusted_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Partition>> {
        // A panic while holding this lock cannot leave a partition half
        // updated in a way that overstates freshness, so poison is ignored.
        self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, map: &BTreeMap<i32, Partition>) {
        let cut = self.distrusted_after();
        let cutoffs = self.cutoffs_bound();
        let min = if map.is_empty() {
            None
        } else {
            map.values()
                .map(|p| p.bound(self.config.source_heartbeats))
                .chain(cutoffs)
                .try_fold(Timestamp::from_unix_micros(i64::MAX), |m, f| f.map(|f| m.min(f)))
                .map(|min| cut.map_or(min, |cut| min.min(cut)))
        };
        let raw = min.map_or(UNKNOWN, Timestamp::as_unix_micros);
        if self.fresh_as_of.swap(raw, Ordering::AcqRel) != raw {
            self.advanced.send_replace(min);
        }
    }

    /// The instant up to which every acknowledged record has been applied,
    /// once every partition has been reached.
    #[inline]
    pub fn fresh_as_of(&self) -> Option<Timestamp> {
        match self.fresh_as_of.load(Ordering::Acquire) {
            UNKNOWN => None,
            micros => Some(Timestamp::from_unix_micros(micros)),
        }
    }

    /// `now - fresh_as_of`, when known.
    pub fn staleness(&self, now: Timestamp) -> Option<Duration> {
        self.fresh_as_of().map(|f| now.saturating_since(f))
    }

    /// The state at `now`. Cheap: a few atomic loads, and a store only on a
    /// transition.
    #[inline]
    pub fn state(&self, now: Timestamp) -> FreshnessState {
        self.state_as_of(self.fresh_as_of(), now)
    }

    /// The state at `now`, judged from a [`Self::fresh_as_of`] read earlier.
    ///
    /// For a reader that must look at the data *after* reading how fresh it
    /// is — so that the data it reads holds at least everything that
    /// `fresh_as_of` vouches for — but wants to read the clock after the
    /// data: a later `now` only makes the staleness larger, never smaller.
    #[inline]
    pub fn state_as_of(&self, fresh_as_of: Option<Timestamp>, now: Timestamp) -> FreshnessState {
        let caught_up = self.caught_up.load(Ordering::Acquire);
        let Some(fresh_as_of) = fresh_as_of else {
            return if caught_up { FreshnessState::Lagging } else { FreshnessState::Cold };
        };
        // Negative (a clock behind the sample) is as fresh as zero.
        let staleness_us = now.as_unix_micros().saturating_sub(fresh_as_of.as_unix_micros());
        if staleness_us > self.max_staleness_us {
            if !caught_up {
                return FreshnessState::Cold;
            }
            if !self.lagging.load(Ordering::Relaxed) {
                self.lagging.store(true, Ordering::Relaxed);
            }
            return FreshnessState::Lagging;
        }
        if !caught_up {
            self.caught_up.store(true, Ordering::Release);
            self.lagging.store(false, Ordering::Relaxed);
            return FreshnessState::Live;
        }
        if self.lagging.load(Ordering::Relaxed) {
            if staleness_us > self.recover_below_us {
                return FreshnessState::Lagging;
            }
            self.lagging.store(false, Ordering::Relaxed);
        }
        FreshnessState::Live
    }

    /// Whether the projection has been Live at least once.
    pub fn has_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// A receiver that sees every change of `fresh_as_of` (barriers wait on it).
    pub fn subscribe(&self) -> watch::Receiver<Option<Timestamp>> {
        self.advanced.subscribe()
    }
}

#[cfg(test)]
mod tests;
