//! Time, injected. The projection never reads the system clock directly, so
//! every freshness rule is testable with a [`ManualClock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
#[cfg(any(test, not(target_os = "linux")))]
use std::time::{SystemTime, UNIX_EPOCH};

/// An instant as microseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the Unix epoch.
    #[inline]
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// From whole seconds since the Unix epoch.
    #[inline]
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    #[inline]
    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down.
    #[inline]
    pub const fn as_unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// From a `time` date-time (as decoded from an event).
    pub fn from_datetime(at: time::OffsetDateTime) -> Self {
        let micros = at.unix_timestamp_nanos() / 1_000;
        Self(micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    #[inline]
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// `self + d`, saturating.
    #[inline]
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_micros(d)))
    }

    /// `self - d`, saturating.
    #[inline]
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_micros(d)))
    }

    /// RFC 3339 text, for reports.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}us", self.0))
    }
}

#[inline]
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock (`CLOCK_REALTIME`), read cheaply.
///
/// Every check reads the clock once (for freshness and expiry), and the
/// kernel's read (`clock_gettime` through the vDSO) was the largest part of
/// the port's own cost (`docs/benchmarks-notes.md`, "the clock"). This clock
/// reads the CPU's time-stamp counter instead, through [`quanta`] (which
/// calibrates it once per process and falls back to the OS clock where the
/// counter is not invariant). Ticks become microseconds with one
/// multiplication, and wall time with an offset:
///
/// - the offset is re-measured against `CLOCK_REALTIME` whenever
///   [`ANCHOR_EVERY`] has passed since the last measurement, by the first
///   reader to notice, so the counter's rate error (parts per million) and
///   any step of the system clock (NTP) reach it within that interval;
/// - a measurement brackets the realtime read between two counter reads and
///   is retried if they are far apart (a preempted thread), so the offset is
///   good to a few microseconds;
/// - the counter read is not ordered with the instructions around it: it may
///   be taken a few hundred nanoseconds early. That and the rest of the error
///   (a microsecond or two, measured) are far below what time is used for
///   here: expiry is kept to the second, staleness bounds are milliseconds
///   and up. A test holds it within a millisecond of `SystemTime` across
///   re-anchorings.
///
/// ```
/// use revocation_core::{Clock, SystemClock};
/// let now = SystemClock.now();
/// let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
/// assert!((now.as_unix_micros() - system.as_micros() as i64).abs() < 50_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// How often [`SystemClock`]'s offset to `CLOCK_REALTIME` is measured again.
pub const ANCHOR_EVERY: Duration = Duration::from_millis(20);

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        Anchored::get().now()
    }
}

impl SystemClock {
    /// Calibrates the counter now (it takes up to ~200 ms, once per process)
    /// rather than on the first check. Serving code calls this at start-up.
    pub fn warm_up() {
        Anchored::get();
    }
}

/// The counter and its offset to wall time, shared by the whole process.
struct Anchored {
    counter: quanta::Clock,
    /// Microseconds per counter tick, as a 0.64 fixed-point fraction (the
    /// high half of `ticks × this` is microseconds): one multiplication per
    /// read. Taken from quanta's calibration.
    us_per_tick: u64,
    /// [`ANCHOR_EVERY`] in ticks.
    anchor_every_ticks: u64,
    /// [`ANCHOR_BRACKET_NS`] in ticks.
    bracket_ticks: u64,
    /// `CLOCK_REALTIME` minus the counter, in microseconds, as last measured.
    offset_us: AtomicI64,
    /// The counter's reading (ticks) at that measurement.
    anchored_at: AtomicU64,
}

/// A measurement whose two counter reads are further apart than this was
/// interrupted; it is taken again (up to [`ANCHOR_TRIES`] times).
const ANCHOR_BRACKET_NS: u64 = 20_000;
const ANCHOR_TRIES: usize = 5;

impl Anchored {
    #[inline]
    fn get() -> &'static Anchored {
        static ANCHORED: std::sync::OnceLock<Anchored> = std::sync::OnceLock::new();
        ANCHORED.get_or_init(|| {
            let counter = quanta::Clock::new();
            // 2^40 ticks in ns, by quanta's calibration; as µs per tick in
            // 0.64 fixed point: ns × 2^24 / 1000. It fits for any counter
            // faster than 1 MHz: the counter is the time-stamp counter (GHz)
            // or quanta's fallback, which counts nanoseconds.
            let ns_per_2_40 = counter.delta_as_nanos(0, 1 << 40);
            let us_per_tick = u64::try_from((u128::from(ns_per_2_40) << 24) / 1_000).unwrap_or(u64::MAX).max(1);
            let ticks =
                |ns: u64| u64::try_from((u128::from(ns) << 64) / (u128::from(us_per_tick) * 1_000)).unwrap_or(u64::MAX);
            let anchored = Anchored {
                counter,
                us_per_tick,
                anchor_every_ticks: ticks(ANCHOR_EVERY.as_nanos() as u64),
                bracket_ticks: ticks(ANCHOR_BRACKET_NS),
                offset_us: AtomicI64::new(0),
                anchored_at: AtomicU64::new(0),
            };
            anchored.anchor();
            anchored
        })
    }

    /// Counter ticks as microseconds since the counter's start (the
    /// machine's boot, for the time-stamp counter).
    #[inline]
    fn micros(&self, ticks: u64) -> i64 {
        ((u128::from(ticks) * u128::from(self.us_per_tick)) >> 64) as i64
    }

    /// Kept to a few instructions, and as few as possible of them waiting on
    /// the counter: a check's lookup misses the cache, the counter read
    /// completes behind it, and while everything computed from the counter
    /// waits, it holds the CPU's scheduler entries that the next check's
    /// lookup needs to start (`docs/benchmarks-notes.md`, "the clock").
    #[inline]
    fn now(&self) -> Timestamp {
        let ticks = self.counter.raw();
        // Relaxed: each value is valid on its own; a stale one is at most one
        // interval old. A counter behind the anchor (a reader that raced an
        // anchoring, or a counter reset) wraps to a large distance and is
        // measured again too.
        let offset = if ticks.wrapping_sub(self.anchored_at.load(Ordering::Relaxed)) > self.anchor_every_ticks {
            self.anchor()
        } else {
            self.offset_us.load(Ordering::Relaxed)
        };
        Timestamp(self.micros(ticks).wrapping_add(offset))
    }

    /// Measures the offset again, stores it and returns it.
    #[cold]
    fn anchor(&self) -> i64 {
        let mut best: Option<(u64, u64, i64)> = None; // (bracket, ticks, realtime µs)
        for _ in 0..ANCHOR_TRIES {
            let before = self.counter.raw();
            let realtime = realtime_ns() / 1_000;
            let after = self.counter.raw();
            let bracket = after.saturating_sub(before);
            if best.is_none_or(|(b, _, _)| bracket < b) {
                best = Some((bracket, before + bracket / 2, realtime));
            }
            if bracket <= self.bracket_ticks {
                break;
            }
        }
        let (_, ticks, realtime) = best.unwrap_or_default();
        let offset = realtime.wrapping_sub(self.micros(ticks));
        self.offset_us.store(offset, Ordering::Relaxed);
        self.anchored_at.store(ticks, Ordering::Relaxed);
        offset
    }
}

/// `CLOCK_REALTIME` in nanoseconds since the Unix epoch.
#[cfg(target_os = "linux")]
fn realtime_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    t.tv_sec.saturating_mul(1_000_000_000).saturating_add(t.tv_nsec)
}

#[cfg(not(target_os = "linux"))]
fn realtime_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use revocation_core::{Clock, ManualClock, Timestamp};
/// let clock = ManualClock::new(Timestamp::from_unix_secs(10));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Timestamp::from_unix_secs(15));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(at.0)))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_micros(d), Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within a millisecond of `SystemTime` on every read, across several
    /// re-anchorings (a coarse clock, 4 ms behind here, fails this; so does
    /// an offset measured wrong).
    #[test]
    fn the_system_clock_agrees_with_system_time() {
        SystemClock::warm_up();
        let micros = |d: Duration| duration_micros(d);
        let started = std::time::Instant::now();
        let mut reads = 0;
        while started.elapsed() < ANCHOR_EVERY * 5 {
            let before = micros(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
            let now = SystemClock.now().as_unix_micros();
            let after = micros(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
            assert!(before - 1_000 <= now && now <= after + 1_000, "{before} ≤ {now} ≤ {after}, ±1 ms");
            reads += 1;
            std::thread::sleep(Duration::from_micros(500));
        }
        assert!(reads > 20);
    }
}
