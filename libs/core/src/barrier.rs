//! Read-your-writes for sessions the projection has not seen.
//!
//! When a Live projection does not hold a session, the session may simply be
//! newer than the consumer's position: its created event was acknowledged a
//! moment ago. Answering `Revoked` then would log a user out right after
//! login. So before saying `Revoked` we wait (bounded) until the projection is
//! *fresh as of the instant the check began* — every record acknowledged
//! before that instant is applied — and look again.
//!
//! [`FreshnessBarrier`] does this with the freshness clock alone: it asks the
//! source for an immediate watermark sample ([`WatermarkProbe`]) and waits
//! until `fresh_as_of` passes the check's start. Concurrent waiters share
//! samples: a sample taken after all of them began serves them all, so a
//! flood of unknown sids costs one broker round trip per sample, not one per
//! request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::clock::Timestamp;
use crate::freshness::Freshness;

/// The barrier gave up before the projection caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("projection did not catch up with the broker within {0:?}")]
pub struct BarrierTimeout(pub Duration);

/// Waits until a projection has applied everything acknowledged before an
/// instant. Implemented by [`FreshnessBarrier`]; a trait so that tests and
/// other sources can supply their own.
#[async_trait]
pub trait Barrier: fmt::Debug + Send + Sync {
    /// Returns once `freshness` is fresh as of `since`, or times out.
    async fn wait_until_fresh(&self, freshness: &Freshness, since: Timestamp) -> Result<(), BarrierTimeout>;
}

/// Something that can take a watermark sample soon (the source's sampler).
/// Requests made while a sample is under way are coalesced by the sampler
/// into the next one.
pub trait WatermarkProbe: fmt::Debug + Send + Sync {
    /// Asks for a sample as soon as possible; does not wait for it.
    fn request_sample(&self);
}

/// The [`Barrier`] over a projection's [`Freshness`].
///
/// Needs a Tokio runtime (for its timeout).
#[derive(Debug, Clone)]
pub struct FreshnessBarrier {
    probe: Arc<dyn WatermarkProbe>,
    timeout: Duration,
}

impl FreshnessBarrier {
    /// Default bound on one wait.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

    /// A barrier that asks `probe` for samples and waits at most `timeout`.
    pub fn new(probe: Arc<dyn WatermarkProbe>, timeout: Duration) -> Self {
        Self { probe, timeout }
    }
}

#[async_trait]
impl Barrier for FreshnessBarrier {
    async fn wait_until_fresh(&self, freshness: &Freshness, since: Timestamp) -> Result<(), BarrierTimeout> {
        let reached = |f: &Option<Timestamp>| f.is_some_and(|f| f >= since);
        let mut advanced = freshness.subscribe();
        if reached(&advanced.borrow_and_update()) {
            return Ok(());
        }
        self.probe.request_sample();
        match tokio::time::timeout(self.timeout, advanced.wait_for(reached)).await {
            Ok(Ok(_)) => Ok(()),
            // The freshness was dropped (projection replaced) or time ran out.
            Ok(Err(_)) | Err(_) => Err(BarrierTimeout(self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::FreshnessConfig;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct CountingProbe(AtomicUsize);
    impl WatermarkProbe for CountingProbe {
        fn request_sample(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_unix_micros(ms * 1_000)
    }

    #[tokio::test]
    async fn returns_at_once_when_already_fresh() {
        let f = Freshness::new(FreshnessConfig::default());
        f.track_partitions([0]);
        f.record_position(0, 0);
        f.record_high_watermark(0, 0, at_ms(10));
        let probe = Arc::new(CountingProbe::default());
        let barrier = FreshnessBarrier::new(probe.clone(), Duration::from_millis(50));
        assert_eq!(barrier.wait_until_fresh(&f, at_ms(5)).await, Ok(()));
        assert_eq!(probe.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn waits_for_a_sample_taken_after_the_check_began() {
        let f = Arc::new(Freshness::new(FreshnessConfig::default()));
        f.track_partitions([0]);
        f.record_position(0, 0);
        f.record_high_watermark(0, 0, at_ms(0));
        let probe = Arc::new(CountingProbe::default());
        let barrier = FreshnessBarrier::new(probe.clone(), Duration::from_secs(5));
        let writer = {
            let f = f.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                // A sample after the check began, not yet reached …
                f.record_high_watermark(0, 3, at_ms(200));
                tokio::time::sleep(Duration::from_millis(20)).await;
                // … then reached.
                f.record_position(0, 3);
            })
        };
        assert_eq!(barrier.wait_until_fresh(&f, at_ms(100)).await, Ok(()));
        assert_eq!(f.fresh_as_of(), Some(at_ms(200)));
        assert_eq!(probe.0.load(Ordering::SeqCst), 1);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn times_out_when_the_source_makes_no_progress() {
        let f = Freshness::new(FreshnessConfig::default());
        f.track_partitions([0]);
        let barrier = FreshnessBarrier::new(Arc::new(CountingProbe::default()), Duration::from_millis(30));
        assert_eq!(barrier.wait_until_fresh(&f, at_ms(0)).await, Err(BarrierTimeout(Duration::from_millis(30))));
    }
}
