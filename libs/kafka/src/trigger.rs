//! [`SampleTrigger`]: "take a watermark sample now", coalesced.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use revocation_core::WatermarkProbe;

/// Shared between barriers (which pull it) and samplers (which wait on it).
///
/// Every request bumps a generation number and wakes the samplers; a sampler
/// that wakes up takes one round of queries for all requests made so far.
/// So any number of requests made while a round is under way cost exactly one
/// more round.
#[derive(Debug, Default)]
pub struct SampleTrigger {
    generation: Mutex<u64>,
    requested: Condvar,
}

impl SampleTrigger {
    /// A trigger nobody has pulled.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current generation (samplers remember the last one they served).
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a request newer than `served` arrives or `timeout` passes;
    /// returns the generation now current.
    pub fn wait(&self, served: u64, timeout: Duration) -> u64 {
        let guard = self.generation.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) =
            self.requested.wait_timeout_while(guard, timeout, |g| *g == served).unwrap_or_else(PoisonError::into_inner);
        *guard
    }

    /// Wakes every waiting sampler without a request (shutdown).
    pub fn wake_all(&self) {
        self.request_sample();
    }
}

impl WatermarkProbe for SampleTrigger {
    fn request_sample(&self) {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.requested.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_request_wakes_a_waiting_sampler_at_once() {
        let trigger = Arc::new(SampleTrigger::new());
        let served = trigger.generation();
        let waiter = {
            let trigger = trigger.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (trigger.wait(served, Duration::from_secs(10)), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        trigger.request_sample();
        trigger.request_sample();
        let (generation, waited) = waiter.join().unwrap();
        assert!(generation > served);
        assert!(waited < Duration::from_secs(5));
    }

    #[test]
    fn without_requests_the_wait_times_out() {
        let trigger = SampleTrigger::new();
        assert_eq!(trigger.wait(0, Duration::from_millis(10)), 0);
    }
}
