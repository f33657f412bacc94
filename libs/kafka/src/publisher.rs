//! [`EventPublisher`]: writes session events to the topic, acknowledged by
//! every in-sync replica, without duplicates from retries.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use revocation_core::{SessionEvent, UserRevokedBefore};
use thiserror::Error;

use crate::config::{KafkaConfig, KafkaConfigError};
use crate::refused::ClientRefused;

/// An event was not acknowledged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] KafkaConfigError),
    /// librdkafka refused the producer configuration.
    #[error("could not create the Kafka producer (check the librdkafka options, -X)")]
    Client(#[source] ClientRefused),
    /// The broker did not acknowledge the record in time (or refused it).
    #[error("the broker did not acknowledge the event on {topic:?}")]
    NotAcknowledged {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: KafkaError,
    },
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Publishes session events: key = sid, value = the JSON of the event format
/// (or null for a tombstone). Idempotent producer, `acks=all`.
///
/// ```no_run
/// use revocation_core::{SessionEvent, SessionId};
/// use revocation_kafka::{EventPublisher, KafkaConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let publisher = EventPublisher::new(&KafkaConfig::new("127.0.0.1:9092", "session-events"))?;
/// publisher
///     .publish(&SessionEvent::Revoked {
///         sid: SessionId::new("8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b")?,
///         revoked_at: time::OffsetDateTime::now_utc(),
///         reason: Some("logout".into()),
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventPublisher {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").field("topic", &self.topic).finish()
    }
}

impl EventPublisher {
    /// Default time to wait for an acknowledgement.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A publisher to `config.topic`. Needs a Tokio runtime to `publish`.
    pub fn new(config: &KafkaConfig) -> Result<Self, PublishError> {
        config.validate()?;
        let producer = config.producer().create().map_err(|e| PublishError::Client(ClientRefused(e)))?;
        Ok(Self { producer, topic: config.topic.clone(), timeout: Self::DEFAULT_TIMEOUT })
    }

    /// Sets how long to wait for each acknowledgement.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Publishes one event; returns once the broker acknowledged it.
    pub async fn publish(&self, event: &SessionEvent) -> Result<Acknowledged, PublishError> {
        self.publish_raw(Some(event.key()), event.to_value().as_deref()).await
    }

    /// Publishes one user cutoff ("log out everywhere": every session the
    /// user created and every token issued to them before `not_before` is
    /// revoked, at every replica within the freshness bound); returns once
    /// the broker acknowledged it.
    pub async fn publish_cutoff(&self, cutoff: &UserRevokedBefore) -> Result<Acknowledged, PublishError> {
        self.publish_raw(Some(&cutoff.key()), Some(&cutoff.to_value())).await
    }

    /// Publishes raw bytes (`None` value = tombstone). For tests and tools
    /// that need to write records outside the format, such as hostile input.
    pub async fn publish_raw(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Acknowledged, PublishError> {
        self.publish_with_headers(key, value, &[]).await
    }

    /// [`Self::publish_raw`] with record headers (name, value).
    pub async fn publish_with_headers(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Result<Acknowledged, PublishError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic);
        if !headers.is_empty() {
            let owned = headers.iter().fold(rdkafka::message::OwnedHeaders::new(), |all, (name, value)| {
                all.insert(rdkafka::message::Header { key: name, value: Some(*value) })
            });
            record = record.headers(owned);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        match self.producer.send(record, self.timeout).await {
            Ok(delivery) => Ok(Acknowledged { partition: delivery.partition, offset: delivery.offset }),
            Err((source, _)) => Err(PublishError::NotAcknowledged { topic: self.topic.clone(), source }),
        }
    }

    /// Waits until every record sent so far is acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer
            .flush(timeout)
            .map_err(|source| PublishError::NotAcknowledged { topic: self.topic.clone(), source })
    }
}
