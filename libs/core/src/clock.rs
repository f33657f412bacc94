//! Time, injected. The projection never reads the system clock directly, so
//! every freshness rule is testable with a [`ManualClock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down.
    pub const fn as_unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// From a `time` date-time (as decoded from an event).
    pub fn from_datetime(at: time::OffsetDateTime) -> Self {
        let micros = at.unix_timestamp_nanos() / 1_000;
        Self(micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_micros(d)))
    }

    /// `self - d`, saturating.
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
/// the port's own cost: ~21 ns of it. This clock reads the CPU's time-stamp
/// counter instead, through [`quanta`] (which calibrates it once per process
/// and falls back to the OS clock where the counter is not invariant): ~9 ns
/// here, and a check on a 1M-session store went from 1.13× to 1.04× a bare
/// map lookup (a miss from 82 to 58 ns; `cargo bench -p revocation-core
/// --bench check`). The counter is turned into wall time by an offset:
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
    /// `CLOCK_REALTIME` minus the counter, in nanoseconds, as last measured.
    offset_ns: AtomicI64,
    /// The counter's reading (ns) at that measurement.
    anchored_ns: AtomicI64,
}

const ANCHOR_EVERY_NS: u64 = ANCHOR_EVERY.as_nanos() as u64;

/// A measurement whose two counter reads are further apart than this was
/// interrupted; it is taken again (up to [`ANCHOR_TRIES`] times).
const ANCHOR_BRACKET_NS: i64 = 20_000;
const ANCHOR_TRIES: usize = 5;

impl Anchored {
    #[inline]
    fn get() -> &'static Anchored {
        static ANCHORED: std::sync::OnceLock<Anchored> = std::sync::OnceLock::new();
        ANCHORED.get_or_init(|| {
            let anchored = Anchored {
                counter: quanta::Clock::new(),
                offset_ns: AtomicI64::new(0),
                anchored_ns: AtomicI64::new(0),
            };
            anchored.anchor();
            anchored
        })
    }

    /// The counter, in nanoseconds since an arbitrary start (the machine's
    /// boot, for the time-stamp counter: far from overflowing an `i64`).
    #[inline]
    fn counter_ns(&self) -> i64 {
        self.counter.delta_as_nanos(0, self.counter.raw()) as i64
    }

    /// Kept to a few instructions: the fewer there are, the more of a
    /// caller's independent work the CPU keeps in flight around it.
    #[inline]
    fn now(&self) -> Timestamp {
        let counter = self.counter_ns();
        // Relaxed: each value is valid on its own; a stale one is at most one
        // interval old. A counter behind the anchor (a reader that raced an
        // anchoring, or a counter reset) wraps to a large distance and is
        // measured again too.
        let offset = if counter.wrapping_sub(self.anchored_ns.load(Ordering::Relaxed)) as u64 > ANCHOR_EVERY_NS {
            self.anchor()
        } else {
            self.offset_ns.load(Ordering::Relaxed)
        };
        // Wall time in ns fits an i64 until 2262; the division truncates
        // (wall time is after 1970, so toward the past, by under 1 µs).
        Timestamp(counter.wrapping_add(offset) / 1_000)
    }

    /// Measures the offset again, stores it and returns it.
    #[cold]
    fn anchor(&self) -> i64 {
        let mut best: Option<(i64, i64, i64)> = None; // (bracket, counter, realtime)
        for _ in 0..ANCHOR_TRIES {
            let before = self.counter_ns();
            let realtime = realtime_ns();
            let after = self.counter_ns();
            let bracket = after.saturating_sub(before);
            if best.is_none_or(|(b, _, _)| bracket < b) {
                best = Some((bracket, before + bracket / 2, realtime));
            }
            if bracket <= ANCHOR_BRACKET_NS {
                break;
            }
        }
        let (_, counter, realtime) = best.unwrap_or_default();
        let offset = realtime.saturating_sub(counter);
        self.offset_ns.store(offset, Ordering::Relaxed);
        self.anchored_ns.store(counter, Ordering::Relaxed);
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
