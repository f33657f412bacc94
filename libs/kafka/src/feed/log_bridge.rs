//! librdkafka's logs and errors into `tracing` and the feed's faults, and a
//! rate limiter for repeated warnings.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::faults::{FaultSource, FeedFaults, kind_of};

/// Routes librdkafka's logs to `tracing` and its global errors (connection,
/// TLS, authentication) to the feed's faults, which log each once. Reaching
/// the end of a partition is reported to librdkafka's global error callback
/// too; it is how the feed knows it caught up, not an error.
#[derive(Debug, Clone)]
pub(crate) struct FeedContext {
    faults: Arc<FeedFaults>,
    /// librdkafka repeats a failing connection's errors at every retry.
    warnings: Arc<Mutex<LogLimiter>>,
}

impl FeedContext {
    pub(crate) fn new(faults: Arc<FeedFaults>) -> Self {
        Self { faults, warnings: Arc::new(Mutex::new(LogLimiter::new("librdkafka"))) }
    }
}

impl ClientContext for FeedContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
                if facility == "FAIL" =>
            {
                // A connection failing: the error callback reports it too,
                // and the feed's faults log it once.
                tracing::debug!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                let mut warnings = self.warnings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                warnings.warn(|| format!("{facility}: {message}"));
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            tracing::trace!(target: "librdkafka", "{reason}");
        } else {
            self.faults.record(FaultSource::Client, kind_of(&error), reason);
        }
    }
}

impl ConsumerContext for FeedContext {}

/// At most `BURST` warnings per `WINDOW` for one kind of event; the number
/// suppressed is reported when the window rolls over. A flood of bad records
/// must not become a flood of logs.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    what: &'static str,
    window: Instant,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    const BURST: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(10);

    pub(crate) fn new(what: &'static str) -> Self {
        Self { what, window: Instant::now(), logged: 0, suppressed: 0 }
    }

    pub(crate) fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.window.elapsed() >= Self::WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(suppressed = self.suppressed, "{}: more occurrences were not logged", self.what);
            }
            self.window = Instant::now();
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < Self::BURST {
            self.logged += 1;
            tracing::warn!("{}: {}", self.what, message());
        } else {
            self.suppressed += 1;
        }
    }
}
