//! A topic of the test's own on the local broker.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use revocation_kafka::{KafkaConfig, SourceOptions, TopicSpec, ensure_topic_with};

use crate::servers::bootstrap;

/// Fails with the command to run when the broker is not up.
pub fn require_broker() {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap_or_else(|e| panic!("consumer config: {e}"));
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
        panic!("Kafka is not reachable at {} ({e}); start it with `scripts/servers.sh up`", bootstrap());
    }
}

/// A new compacted topic with `partitions` partitions, named after `test`,
/// and a config that samples fast (tests wait on freshness).
pub async fn topic(test: &str, partitions: i32) -> KafkaConfig {
    topic_with(test, partitions, &[]).await
}

/// [`topic`] with topic configs of the test's choosing (`cleanup.policy`
/// among them overrides `compact`).
pub async fn topic_with(test: &str, partitions: i32, configs: &[(&str, &str)]) -> KafkaConfig {
    let config = topic_config(&format!("{test}-{}", uuid::Uuid::new_v4().simple()));
    create_topic(&config, partitions, configs).await;
    config
}

/// The config of topic `name` on the local broker, sampling fast (tests
/// wait on freshness); the topic is not created.
pub fn topic_config(name: &str) -> KafkaConfig {
    require_broker();
    let mut config = KafkaConfig::new(bootstrap(), name);
    config.sample_interval = Duration::from_millis(100);
    config
}

/// Creates `config.topic`, which must not exist yet.
pub async fn create_topic(config: &KafkaConfig, partitions: i32, configs: &[(&str, &str)]) {
    let compacted = !configs.iter().any(|(key, _)| *key == "cleanup.policy");
    let spec = TopicSpec { partitions, replication: 1, compacted };
    let created = ensure_topic_with(config, spec, configs).await.unwrap_or_else(|e| {
        panic!("cannot create topic on {} ({e}); start it with `scripts/servers.sh up`", bootstrap())
    });
    assert!(created, "the topic is new");
}

/// Projection options for tests: Lagging past 2 s, barrier waits of up to 2 s.
pub fn source_options() -> SourceOptions {
    SourceOptions {
        max_staleness: Duration::from_secs(2),
        barrier_timeout: Duration::from_secs(2),
        ..SourceOptions::default()
    }
}
