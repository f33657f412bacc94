//! Creating and growing the session-events topic.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaConfig;

/// What the topic should look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Partitions (ingest parallelism; every replica reads them all).
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// `cleanup.policy=compact`: the topic keeps the latest record per
    /// session, so a replay reads about one record per session.
    pub compacted: bool,
}

impl Default for TopicSpec {
    fn default() -> Self {
        Self { partitions: 3, replication: 1, compacted: true }
    }
}

fn admin(config: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    for (k, v) in &config.librdkafka_options {
        if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
            client.set(k, v);
        }
    }
    client.create()
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(10)))
}

/// Creates `config.topic` as `spec` says; an existing topic is left as it is.
/// Returns whether it was created.
pub async fn ensure_topic(config: &KafkaConfig, spec: TopicSpec) -> Result<bool, KafkaError> {
    ensure_topic_with(config, spec, &[]).await
}

/// [`ensure_topic`] with more topic configs (`segment.ms`,
/// `delete.retention.ms`, `compression.type`, …).
pub async fn ensure_topic_with(
    config: &KafkaConfig,
    spec: TopicSpec,
    configs: &[(&str, &str)],
) -> Result<bool, KafkaError> {
    let admin = admin(config)?;
    let mut topic = NewTopic::new(&config.topic, spec.partitions, TopicReplication::Fixed(spec.replication));
    if spec.compacted {
        topic = topic.set("cleanup.policy", "compact");
    }
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin.create_topics([&topic], &options()).await?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(false),
        Some(Err((_, code))) => Err(KafkaError::AdminOp(code)),
    }
}

/// Grows `config.topic` to `total` partitions.
pub async fn add_partitions(config: &KafkaConfig, total: usize) -> Result<(), KafkaError> {
    let admin = admin(config)?;
    let results = admin.create_partitions([&NewPartitions::new(&config.topic, total)], &options()).await?;
    for result in results {
        if let Err((_, code)) = result {
            return Err(KafkaError::AdminOp(code));
        }
    }
    Ok(())
}

/// How long `config.topic` keeps a tombstone once compaction has reached it
/// (`delete.retention.ms`), when the topic is compacted; `None` when it is
/// not (a reader then loses nothing to compaction). A reader whose position
/// is older than this may have missed a tombstone and the records it erased.
pub async fn tombstone_retention(config: &KafkaConfig) -> Result<Option<Duration>, KafkaError> {
    // Asked at every start, before the first record is read, on a thread
    // that then destroys the client: librdkafka's destroy waits for the
    // client's threads to wake and end (~100 ms measured), which neither a
    // start nor a cancelled question should wait for.
    let (answer, answered) = futures::channel::oneshot::channel();
    let config = config.clone();
    std::thread::Builder::new()
        .name("kafka-retention".into())
        .spawn(move || match admin(&config) {
            Ok(admin) => {
                let _ = answer.send(futures::executor::block_on(retention_of(&admin, &config)));
                drop(admin);
            }
            Err(e) => {
                let _ = answer.send(Err(e));
            }
        })
        .map_err(|e| KafkaError::ClientCreation(format!("no thread to ask the broker on: {e}")))?;
    answered.await.unwrap_or(Err(KafkaError::Canceled))
}

async fn retention_of(
    admin: &AdminClient<DefaultClientContext>,
    config: &KafkaConfig,
) -> Result<Option<Duration>, KafkaError> {
    let results = admin.describe_configs([&ResourceSpecifier::Topic(&config.topic)], &options()).await?;
    let resource = match results.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(code)) => return Err(KafkaError::AdminOp(code)),
        None => return Err(KafkaError::AdminOp(RDKafkaErrorCode::UnknownTopicOrPartition)),
    };
    let value = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
    if !value("cleanup.policy").is_some_and(|policy| policy.contains("compact")) {
        return Ok(None);
    }
    // The broker's default (one day) when the topic does not set it.
    let millis = value("delete.retention.ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(86_400_000);
    Ok(Some(Duration::from_millis(millis)))
}

/// Deletes `config.topic` (tests clean up with it).
pub async fn delete_topic(config: &KafkaConfig) -> Result<(), KafkaError> {
    let admin = admin(config)?;
    for result in admin.delete_topics(&[&config.topic], &options()).await? {
        if let Err((_, code)) = result {
            return Err(KafkaError::AdminOp(code));
        }
    }
    Ok(())
}
