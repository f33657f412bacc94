//! What the endpoint has decided since start: atomics on the hot path,
//! written into the metrics registry at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts since start.
#[derive(Debug, Default)]
pub struct ForwardAuthCounts {
    /// Requests let through.
    pub allowed: AtomicU64,
    /// Requests refused with 401.
    pub denied: AtomicU64,
    /// Requests refused with 503.
    pub unavailable: AtomicU64,
    /// Tokens whose signature was checked (cache misses).
    pub verified: AtomicU64,
    /// Tokens answered from the cache of verified tokens.
    pub cache_hits: AtomicU64,
}

impl ForwardAuthCounts {
    /// Writes the counts into the process's metrics registry:
    /// `forward_auth_decisions_total{decision="allow|deny|unavailable"}`,
    /// `forward_auth_signature_checks_total`, `forward_auth_cache_hits_total`.
    pub fn export(&self) {
        use metrics::counter;
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter!("forward_auth_decisions_total", "decision" => "allow").absolute(read(&self.allowed));
        counter!("forward_auth_decisions_total", "decision" => "deny").absolute(read(&self.denied));
        counter!("forward_auth_decisions_total", "decision" => "unavailable").absolute(read(&self.unavailable));
        counter!("forward_auth_signature_checks_total").absolute(read(&self.verified));
        counter!("forward_auth_cache_hits_total").absolute(read(&self.cache_hits));
    }
}
