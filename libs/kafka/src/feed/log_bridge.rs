//! librdkafka's logs into `tracing`, and a rate limiter for repeated warnings.

use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Routes librdkafka's logs and global errors to `tracing`. Reaching the end
/// of a partition is reported to librdkafka's global error callback too; it
/// is how the feed knows it caught up, not an error, so it is not logged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeedContext;

impl ClientContext for FeedContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{facility}: {message}"),
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
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for FeedContext {}

/// At most `BURST` warnings per `WINDOW` for one kind of event; the number
/// suppressed is reported when the window rolls over. A flood of bad records
/// must not become a flood of logs.
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
