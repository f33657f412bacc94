//! Helpers shared by the Kafka integration tests: a topic of the test's own,
//! a publisher, event builders, and polling with a deadline.
#![allow(dead_code)]

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use revocation_core::{SessionEvent, SessionId};
use revocation_kafka::{EventPublisher, KafkaConfig, TopicSpec, ensure_topic};
use time::OffsetDateTime;

use revocation_e2e::bootstrap;

/// Fails with the command to run when the broker is not up.
pub fn require_broker() {
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("consumer config");
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
        panic!("Kafka is not reachable at {} ({e}); start it with `scripts/servers.sh up`", bootstrap());
    }
}

/// A new topic with `partitions` partitions, named after the test, plus a
/// config with fast sampling for tests.
pub async fn topic(test: &str, partitions: i32) -> KafkaConfig {
    require_broker();
    let mut config = KafkaConfig::new(bootstrap(), format!("{test}-{}", uuid::Uuid::new_v4().simple()));
    config.sample_interval = Duration::from_millis(100);
    config.metadata_interval = Duration::from_millis(500);
    let created = ensure_topic(&config, TopicSpec { partitions, replication: 1, compacted: true }).await;
    assert!(created.expect("create topic"), "the topic is new");
    config
}

pub fn publisher(config: &KafkaConfig) -> EventPublisher {
    EventPublisher::new(config).expect("publisher")
}

pub fn sid(s: &str) -> SessionId {
    SessionId::new(s).expect("valid sid")
}

pub fn created(s: &str) -> SessionEvent {
    SessionEvent::Created { sid: sid(s), user_id: "u".into(), created_at: OffsetDateTime::now_utc(), expires_at: None }
}

pub fn revoked(s: &str) -> SessionEvent {
    SessionEvent::Revoked { sid: sid(s), revoked_at: OffsetDateTime::now_utc(), reason: Some("logout".into()) }
}
