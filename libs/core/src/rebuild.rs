//! [`RebuildReport`]: what a completed rebuild did, for whoever started it
//! (the admin route, the `replay` command, an embedding verifier).

use std::fmt;
use std::time::Duration;

/// What a completed rebuild did.
///
/// ```
/// use std::time::Duration;
/// use revocation_core::RebuildReport;
/// let report = RebuildReport { sessions: 3, records: 5, took: Duration::from_millis(1500) };
/// assert_eq!(report.to_string(), "3 sessions from 5 records in 1.50 s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// Sessions in the new projection when it was installed.
    pub sessions: usize,
    /// Records the new feed read to catch up.
    pub records: u64,
    /// Time from start to swap.
    pub took: Duration,
}

impl fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sessions from {} records in {:.2} s", self.sessions, self.records, self.took.as_secs_f64())
    }
}
