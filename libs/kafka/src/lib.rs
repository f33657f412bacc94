//! The Kafka source of the session projection, and the event publisher.
//!
//! # Layout
//!
//! Every item is exported here, at the crate root; the modules are private.
//!
//! - `config`: [`KafkaConfig`] (brokers, topic, sampling, librdkafka pass-through).
//! - `feed`: [`Feed`], the consumer that fills one [`Projection`]: it reads
//!   **every** partition by manual assignment, decodes each record with the
//!   topic's [`RecordFormat`] and applies it, reports positions, and samples
//!   high watermarks, so the core can judge freshness. Its submodules: the
//!   ingest `pipeline`, the `partitions` controller (discovery, samples,
//!   progress) and the librdkafka `log_bridge`.
//! - `trigger`: [`SampleTrigger`], the [`WatermarkProbe`] a barrier pulls
//!   to get a sample now; requests coalesce into one round of queries.
//! - `source`: [`KafkaSource`], a [`ProjectedLiveness`] kept fed by a
//!   [`Feed`], with `rebuild` (replay into a fresh projection while the
//!   current one serves, then swap); its [`SourceOptions`], where the
//!   format-driven defaults are resolved.
//! - `publisher`: [`EventPublisher`], an idempotent `acks=all` producer
//!   of session events, so nobody hand-writes the JSON.
//! - `admin`: topic creation and growth (for the demo, tests and operators).
//! - `partitioner`: [`default_partition`], Kafka's default partitioner
//!   (murmur2), which our producers match and the feed checks keys against.
//! - `heartbeat_rows`: [`heartbeat_ids`] and [`heartbeat_action_query`],
//!   CDC heartbeat rows that reach every partition.
//! - `janitor`: [`run_janitor`], tombstones for sessions that can be forgotten.
//! - `snapshots`: the snapshot file and its writer thread (warm restarts),
//!   and a peer's snapshot (served from the live map, fetched by a new replica).
//! - `refused`: [`ClientRefused`], librdkafka's refusal of a client
//!   configuration, said once and without the value (it may be a secret).
//! - `memory`: the replay's freed memory returned to the system once the
//!   projection has caught up.
//!
//! Offsets are never committed: every replica replays the (compacted) topic
//! from the beginning at start. Delivery is at-least-once and the store's
//! merge is idempotent, so duplicates are harmless.
//!
//! [`Projection`]: revocation_core::Projection
//! [`RecordFormat`]: revocation_core::RecordFormat
//! [`WatermarkProbe`]: revocation_core::WatermarkProbe
//! [`ProjectedLiveness`]: revocation_core::ProjectedLiveness
// One exception, `memory.rs`: calls to glibc's `mallopt` and `malloc_trim`.
#![deny(unsafe_code)]

mod admin;
mod config;
mod feed;
mod heartbeat_rows;
mod janitor;
mod memory;
mod partitioner;
mod publisher;
mod refused;
mod snapshots;
mod source;
mod trigger;

pub use admin::{TopicSpec, add_partitions, delete_topic, ensure_topic, ensure_topic_with};
pub use config::{KafkaConfig, KafkaConfigError, is_secret_option};
pub use feed::{FaultSource, Feed, FeedError, FeedFault, FeedStats, StartInfo, WarmStart};
pub use heartbeat_rows::{debezium_key, heartbeat_action_query, heartbeat_ids};
pub use janitor::{JANITOR_LIFETIME_HEADER, JanitorError, JanitorOptions, JanitorReport, run_janitor};
pub use partitioner::{JAVA_COMPATIBLE_PARTITIONER, default_partition};
pub use publisher::{Acknowledged, EventPublisher, PublishError};
pub use refused::ClientRefused;
pub use snapshots::{FetchedSnapshot, LastSnapshot, PeerBootstrap, PeerFetch, SnapshotOptions, fetch_peer_snapshot};
pub use source::{FeedStatsSnapshot, KafkaRebuildError, KafkaSource, SourceOptions};
pub use trigger::SampleTrigger;
