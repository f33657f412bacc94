//! Warm restarts against the real broker (`scripts/servers.sh up`): a
//! snapshot plus the tail answers like a full replay; freshness is re-proven,
//! never restored; and an unusable snapshot means a full replay, saying why.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};
use revocation_core::{FreshnessState, SessionEvent, SessionLiveness, SessionLivenessError, SessionState};
use revocation_kafka::{
    EventPublisher, KafkaConfig, KafkaSource, SnapshotOptions, SourceOptions, add_partitions, delete_topic,
};
use revocation_test_support::*;

fn snapshot_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("projector-{test}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(dir: &Path) -> SourceOptions {
    // A long interval: these tests write snapshots at shutdown only.
    let snapshot = SnapshotOptions { dir: dir.to_owned(), interval: Duration::from_secs(3600) };
    SourceOptions { snapshot: Some(snapshot), ..source_options() }
}

async fn live(projection: &KafkaSource) {
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "projection becomes Live", async || liveness.state() == FreshnessState::Live)
        .await;
}

/// `n` events from `first`: creations, and a revocation or tombstone of an
/// earlier session now and then.
fn events(first: usize, n: usize) -> Vec<SessionEvent> {
    (first..first + n)
        .map(|i| match i % 10 {
            7 => revoked(&format!("s-{}", i / 2)),
            9 => SessionEvent::Tombstone { sid: sid(&format!("s-{}", i / 3)) },
            _ => created(&format!("s-{i}"), None),
        })
        .collect()
}

async fn publish(config: &KafkaConfig, events: &[SessionEvent]) {
    let publisher = EventPublisher::new(config).unwrap();
    for chunk in events.chunks(500) {
        for ack in futures::future::join_all(chunk.iter().map(|e| publisher.publish(e))).await {
            ack.unwrap();
        }
    }
}

/// Every session the projection holds, and its state.
fn contents(projection: &KafkaSource) -> BTreeMap<String, SessionState> {
    let mut all = BTreeMap::new();
    projection.liveness().projection().store().for_each(|sid, state| {
        all.insert(sid.as_str().to_owned(), state);
    });
    all
}

/// What a full replay (no snapshot) holds.
async fn full_replay(config: &KafkaConfig) -> BTreeMap<String, SessionState> {
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    let all = contents(&projection);
    projection.shutdown().await;
    all
}

/// Runs a projection with snapshots in `dir` until Live, then shuts it down
/// (writing the snapshot).
async fn run_and_stop(config: &KafkaConfig, dir: &Path) {
    let projection = KafkaSource::start(config.clone(), options(dir)).unwrap();
    live(&projection).await;
    projection.shutdown().await;
    assert!(dir.join(format!("{}.snapshot", config.topic)).exists(), "a snapshot is written at shutdown");
}

#[tokio::test]
async fn a_warm_start_replays_only_the_tail_and_holds_what_a_full_replay_holds() {
    let config = topic("warm", 3).await;
    let dir = snapshot_dir("warm");
    publish(&config, &events(0, 2_000)).await;
    run_and_stop(&config, &dir).await;
    publish(&config, &events(2_000, 300)).await;

    let projection = KafkaSource::start(config.clone(), options(&dir)).unwrap();
    // Freshness is never restored: the loaded store does not answer until
    // the positions have reached watermarks sampled after this start.
    assert_ne!(projection.liveness().state(), FreshnessState::Live);
    live(&projection).await;
    let stats = projection.feed_stats().unwrap();
    assert!(stats.start.warm, "{:?}", stats.start);
    assert_eq!(stats.start.snapshot_sessions as usize, full_snapshot_sessions(&dir, &config));
    assert_eq!(stats.records, 300, "only the tail is replayed");
    assert_eq!(stats.start.records_to_replay, Some(300));
    assert_eq!(contents(&projection), full_replay(&config).await);
    projection.shutdown().await;
    delete_topic(&config).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// Sessions in the snapshot file, read on its own.
fn full_snapshot_sessions(dir: &Path, config: &KafkaConfig) -> usize {
    let file = std::fs::File::open(dir.join(format!("{}.snapshot", config.topic))).unwrap();
    let store = revocation_core::SessionStore::new();
    revocation_core::read_snapshot(std::io::BufReader::new(file), &store).unwrap();
    store.len()
}

/// Starts from `dir` and checks that the snapshot was refused for `reason`
/// and the projection replayed everything, holding what a full replay holds.
async fn refused(config: &KafkaConfig, dir: &Path, reason: &str) {
    let projection = KafkaSource::start(config.clone(), options(dir)).unwrap();
    live(&projection).await;
    let start = projection.feed_stats().unwrap().start;
    assert!(!start.warm, "{start:?}");
    let why = start.reason.unwrap_or_default();
    assert!(why.contains(reason), "expected {reason:?} in {why:?}");
    assert_eq!(contents(&projection), full_replay(config).await);
    projection.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_truncated_or_foreign_snapshot_is_not_used() {
    let config = topic("refused", 3).await;
    let dir = snapshot_dir("refused");
    publish(&config, &events(0, 1_000)).await;
    run_and_stop(&config, &dir).await;
    let path = dir.join(format!("{}.snapshot", config.topic));
    let good = std::fs::read(&path).unwrap();

    let mut corrupt = good.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x01;
    std::fs::write(&path, &corrupt).unwrap();
    refused(&config, &dir, "checksum").await;

    std::fs::write(&path, &good[..good.len() - 10]).unwrap();
    refused(&config, &dir, "corrupt or truncated").await;

    let mut other_version = good.clone();
    other_version[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, &other_version).unwrap();
    refused(&config, &dir, "version 99").await;

    // Another topic's snapshot, under this topic's name.
    let other = topic("refused-other", 3).await;
    publish(&other, &events(0, 10)).await;
    let other_dir = snapshot_dir("refused-other");
    run_and_stop(&other, &other_dir).await;
    std::fs::copy(other_dir.join(format!("{}.snapshot", other.topic)), &path).unwrap();
    refused(&config, &dir, "of topic").await;

    for (c, d) in [(&config, &dir), (&other, &other_dir)] {
        delete_topic(c).await.ok();
        std::fs::remove_dir_all(d).ok();
    }
}

#[tokio::test]
async fn a_snapshot_the_topic_no_longer_matches_is_not_used() {
    // Added partitions.
    let config = topic("grown", 3).await;
    let dir = snapshot_dir("grown");
    publish(&config, &events(0, 500)).await;
    run_and_stop(&config, &dir).await;
    add_partitions(&config, 4).await.unwrap();
    refused(&config, &dir, "partitions").await;
    delete_topic(&config).await.ok();

    // A recreated topic: same name, fewer records than the positions.
    let name = format!("recreated-{}", uuid::Uuid::new_v4().simple());
    let config = topic_config(&name);
    create_topic(&config, 3, &[]).await;
    publish(&config, &events(0, 900)).await;
    run_and_stop(&config, &dir).await;
    delete_topic(&config).await.unwrap();
    eventually(Duration::from_secs(30), "the topic is recreated", async || {
        tokio::time::sleep(Duration::from_millis(200)).await;
        revocation_kafka::ensure_topic_with(
            &config,
            revocation_kafka::TopicSpec { partitions: 3, replication: 1, compacted: true },
            &[],
        )
        .await
        .unwrap_or(false)
    })
    .await;
    publish(&config, &events(5_000, 30)).await;
    refused(&config, &dir, "recreated").await;
    delete_topic(&config).await.ok();

    // Records after the snapshot's positions deleted (log start moved past them).
    let config = topic_with("truncated", 3, &[("cleanup.policy", "compact,delete"), ("retention.ms", "-1")]).await;
    publish(&config, &events(0, 600)).await;
    run_and_stop(&config, &dir).await;
    publish(&config, &events(600, 300)).await;
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..3 {
        list.add_partition_offset(&config.topic, p, Offset::End).unwrap();
    }
    admin.delete_records(&list, &AdminOptions::new()).await.unwrap();
    refused(&config, &dir, "log start").await;
    delete_topic(&config).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_snapshot_holds_no_secret_and_only_its_owner_reads_it() {
    let config = topic("private", 3).await;
    let dir = snapshot_dir("private");
    publish(&config, &events(0, 100)).await;
    run_and_stop(&config, &dir).await;
    let path = dir.join(format!("{}.snapshot", config.topic));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&config.bootstrap_servers), "no broker address");
    assert!(!text.contains("password"));
    delete_topic(&config).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// How many records of `key` the topic (one partition) holds now.
fn records_of(config: &KafkaConfig, key: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("enable.partition.eof", "true")
        .set("group.id", "snapshot-test-count")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&config.topic, 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&list).unwrap();
    let mut found = 0;
    loop {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) if m.key() == Some(key.as_bytes()) => found += 1,
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return found,
            Some(Err(e)) => panic!("{e}"),
            None => panic!("no end of partition within 5 s"),
        }
    }
}

#[tokio::test]
async fn a_snapshot_older_than_the_topics_tombstone_retention_is_not_resumed() {
    // Aggressive compaction (as the janitor's test): tombstones dropped
    // 100 ms after a cleaning.
    let compaction = [
        ("segment.ms", "200"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "100"),
        ("min.compaction.lag.ms", "0"),
        ("max.compaction.lag.ms", "1000"),
    ];
    let config = topic_with("retention", 1, &compaction).await;
    let dir = snapshot_dir("retention");
    publish(&config, &[created("gone", None)]).await;
    run_and_stop(&config, &dir).await;
    // While no projection runs, the session is revoked and forgotten, and
    // compaction removes every record of it (fillers roll the segments).
    publish(&config, &[revoked("gone"), SessionEvent::Tombstone { sid: sid("gone") }]).await;
    let mut filler = 0;
    eventually(Duration::from_secs(120), "compaction removes every record of the session", async || {
        filler += 1;
        publish(&config, &[created(&format!("filler-{}", filler % 3), None)]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        records_of(&config, "gone") == 0
    })
    .await;
    // The snapshot still holds the session live; resuming it would never
    // learn it is gone.
    let projection = KafkaSource::start(config.clone(), options(&dir)).unwrap();
    live(&projection).await;
    assert_eq!(projection.liveness().check(&sid("gone")).await, Err(SessionLivenessError::Revoked));
    let start = projection.feed_stats().unwrap().start;
    assert!(!start.warm, "{start:?}");
    assert!(start.reason.unwrap_or_default().contains("delete.retention.ms"));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
