//! Why a round of the feed's controller could not read the topic, and why a
//! snapshot's positions are not resumed: typed, so a caller can tell the
//! cases apart; their text is what logs and `/health/lag` show.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

/// The topic's partition set (or, at the first round, where its partitions
/// start) could not be read; the round samples nothing and the next retries.
#[derive(Debug, Error)]
pub(crate) enum DiscoveryError {
    #[error("cannot read metadata of topic {topic:?} from {brokers}: {source}")]
    Metadata { topic: String, brokers: String, source: Box<KafkaError> },
    #[error("topic {0:?} not found in metadata")]
    NotFound(String),
    #[error("topic {topic:?} is not available ({code}); create it, e.g. with `projector create-topic`")]
    Unavailable { topic: String, code: RDKafkaErrorCode },
    #[error("cannot assign partitions {partitions:?} of {topic:?}: {source}")]
    Assign { topic: String, partitions: Vec<i32>, source: Box<KafkaError> },
    #[error("librdkafka has no queue for partition {partition} of {topic:?} (retried)")]
    Forward { topic: String, partition: i32 },
    #[error("cannot read the Kafka cluster's id")]
    ClusterId,
    #[error("watermark query of partition {partition} (to check the snapshot): {source}")]
    SnapshotWatermarks { partition: i32, source: Box<KafkaError> },
    #[error("the feed's {0} lock was poisoned")]
    Poisoned(&'static str),
}

/// Why a snapshot's positions cannot be resumed (the replica then replays
/// the topic in full).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum SnapshotRefusal {
    #[error("it was written on Kafka cluster {then:?}; the topic is on cluster {now:?}")]
    OtherCluster { then: String, now: String },
    #[error("it does not say which Kafka cluster it was written on (an older version's)")]
    ClusterNotRecorded,
    #[error("the Kafka cluster's id is not known")]
    ClusterUnknown,
    #[error("it does not say how fresh its positions were (an older version's)")]
    FreshnessNotRecorded,
    #[error(
        "its positions are {age_secs} s old, more than half the topic's delete.retention.ms ({retention_ms} ms): \
         compaction may have removed tombstones after them"
    )]
    OlderThanRetention { age_secs: u64, retention_ms: u128 },
    #[error(
        "its positions are fresh as of {ahead_secs} s in the future: the clock that wrote it and ours disagree, \
         so its age (against delete.retention.ms) cannot be judged"
    )]
    FreshInFuture { ahead_secs: u64 },
    #[error("{0}, so compaction may have removed tombstones after its positions")]
    RetentionUnknown(String),
    #[error("it has {snapshot} partitions, the topic has {topic}")]
    Partitions { snapshot: u32, topic: usize },
    #[error(
        "partition {partition}: the topic no longer holds offsets {position}..{low} (log start {low} is past the snapshot's position {position})"
    )]
    Compacted { partition: i32, position: i64, low: i64 },
    #[error(
        "partition {partition}: the snapshot's position {position} is past the high watermark {high} (was the topic recreated?)"
    )]
    PastHighWatermark { partition: i32, position: i64, high: i64 },
}
