//! [`FeedFault`]: what keeps the feed from reading the topic now, in
//! librdkafka's words, for the health report — so an operator sees "SSL
//! handshake failed" or "cannot decompress", not only a staleness number.
//!
//! A fault stands until the part that failed makes progress again: a client
//! fault (connecting, authenticating, TLS) until a watermark query succeeds,
//! a consumer fault (fetching or reading records) until the consumer
//! delivers a record or reaches the end of a partition, a sampler fault
//! until a watermark query succeeds. It is logged once when it appears and
//! once when it clears, however often librdkafka repeats it.

use std::sync::Mutex;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use revocation_core::{Clock, SystemClock, Timestamp};

/// Which part of the feed failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSource {
    /// A client's connection to the brokers: resolving, connecting, TLS,
    /// authentication.
    Client,
    /// The consumer fetching or reading records (e.g. a codec it cannot
    /// decompress): the projection cannot get past the record.
    Consumer,
    /// The watermark queries that prove freshness.
    Sampler,
}

impl FaultSource {
    /// Every source's [`Self::as_str`], for a metric series each.
    pub const NAMES: &[&str] = &[Self::Client.as_str(), Self::Consumer.as_str(), Self::Sampler.as_str()];

    /// `client`, `consumer` or `sampler`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Consumer => "consumer",
            Self::Sampler => "sampler",
        }
    }
}

/// What keeps the feed from reading the topic now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFault {
    /// Which part failed.
    pub source: FaultSource,
    /// librdkafka's description (never a configuration value).
    pub message: String,
    /// When this fault was first seen.
    pub first_seen: Timestamp,
    /// When it was last seen.
    pub last_seen: Timestamp,
    /// How often it was seen since it appeared.
    pub occurrences: u64,
}

/// The kind of a failure: librdkafka's error code where it has one. The
/// same kind seen again is the same fault, whatever the message's details
/// (librdkafka adds timings and suppression counts).
pub(crate) type Kind = Option<RDKafkaErrorCode>;

/// The error code of a librdkafka error, if it carries one.
pub(crate) fn kind_of(error: &KafkaError) -> Kind {
    error.rdkafka_error_code()
}

/// Whether a kind only says "cannot reach the brokers", which a standing,
/// more specific fault (TLS, authentication) explains better.
fn is_generic(kind: Kind) -> bool {
    matches!(
        kind,
        None | Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::Resolve
        )
    )
}

/// Whether a consumer error is the client's connection failing (reported to
/// the error callback too), rather than a record it cannot read.
pub(crate) fn is_connection(kind: Kind) -> bool {
    is_generic(kind)
        || matches!(
            kind,
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed | RDKafkaErrorCode::SSL)
        )
}

/// The feed's standing fault, if any.
#[derive(Debug, Default)]
pub(crate) struct FeedFaults {
    current: Mutex<Option<(Kind, FeedFault)>>,
}

impl FeedFaults {
    /// Records a failure of `kind`; logs it when it is new.
    pub(crate) fn record(&self, source: FaultSource, kind: Kind, message: &str) {
        let now = SystemClock.now();
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *current {
            // The same fault again (two generic ones of a part count as one).
            Some((held, fault))
                if fault.source == source
                    && (*held == kind || fault.message == message || (is_generic(kind) && is_generic(*held))) =>
            {
                if *held == kind {
                    fault.message = message.to_owned();
                }
                fault.last_seen = now;
                fault.occurrences += 1;
            }
            // A generic "brokers are down", or a query failing because the
            // client cannot connect, says less than the fault standing.
            Some((held, fault))
                if (is_generic(kind) && !is_generic(*held))
                    || (fault.source == FaultSource::Client && source == FaultSource::Sampler) =>
            {
                fault.last_seen = now;
            }
            _ => {
                tracing::error!(
                    source = source.as_str(),
                    "the feed cannot read the topic ({message}); the projection fails closed and the feed keeps retrying"
                );
                *current = Some((
                    kind,
                    FeedFault { source, message: message.to_owned(), first_seen: now, last_seen: now, occurrences: 1 },
                ));
            }
        }
    }

    /// The part `source` made progress: its fault, if it stands, is over.
    pub(crate) fn cleared(&self, source: FaultSource) {
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_some_and(|(_, fault)| fault.source == source) {
            if let Some((_, fault)) = current.take() {
                tracing::info!(
                    source = source.as_str(),
                    occurrences = fault.occurrences,
                    "the feed recovered from: {}",
                    fault.message
                );
            }
        }
    }

    /// The standing fault.
    pub(crate) fn current(&self) -> Option<FeedFault> {
        self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|(_, fault)| fault.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_stands_until_its_own_part_makes_progress() {
        let faults = FeedFaults::default();
        faults.record(FaultSource::Client, Some(RDKafkaErrorCode::SSL), "SSL handshake failed (after 3ms)");
        faults.record(FaultSource::Client, Some(RDKafkaErrorCode::SSL), "SSL handshake failed (after 4ms)");
        let fault = faults.current().unwrap();
        assert_eq!((fault.source, fault.occurrences), (FaultSource::Client, 2));
        faults.cleared(FaultSource::Consumer);
        assert!(faults.current().is_some(), "a consumer's progress does not clear a client fault");
        faults.cleared(FaultSource::Client);
        assert_eq!(faults.current(), None);
    }

    #[test]
    fn a_sampler_timeout_does_not_hide_the_client_fault_behind_it() {
        let faults = FeedFaults::default();
        let auth = Some(RDKafkaErrorCode::Authentication);
        faults.record(FaultSource::Client, auth, "SASL authentication error: invalid credentials");
        faults.record(FaultSource::Sampler, Some(RDKafkaErrorCode::OperationTimedOut), "Local: Timed out");
        faults.record(FaultSource::Client, Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        let fault = faults.current().unwrap();
        assert_eq!((fault.source, fault.occurrences), (FaultSource::Client, 1));
        assert!(fault.message.contains("invalid credentials"));
    }

    #[test]
    fn a_new_fault_replaces_the_old_one() {
        let faults = FeedFaults::default();
        faults.record(FaultSource::Sampler, Some(RDKafkaErrorCode::OperationTimedOut), "timed out");
        faults.record(
            FaultSource::Consumer,
            Some(RDKafkaErrorCode::NotImplemented),
            "Decompression (codec 0x4) failed",
        );
        let fault = faults.current().unwrap();
        assert_eq!((fault.source, fault.occurrences), (FaultSource::Consumer, 1));
        assert!(fault.message.contains("codec"));
    }
}
