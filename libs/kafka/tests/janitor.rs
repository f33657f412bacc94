//! The janitor against the real broker with aggressive compaction: after a
//! churn of short-lived sessions the topic shrinks to about the sessions still
//! needed, and no answer changes — not even for a late `created` of a
//! forgotten revoked session. (`scripts/servers.sh up`.)
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use revocation_core::{Clock, FreshnessState, Lookup, SessionEvent, SystemClock};
use revocation_kafka::{
    EventPublisher, JanitorOptions, KafkaConfig, KafkaSource, SourceOptions, delete_topic, run_janitor,
};
use revocation_test_support::*;
use time::OffsetDateTime;

const PARTITIONS: i32 = 3;
const LIFETIME: Duration = Duration::from_secs(20 * 60);

/// Small segments rolled every 200 ms, cleaned as soon as anything is
/// dirty, tombstones dropped 100 ms after a cleaning.
const AGGRESSIVE: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.ms", "200"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "100"),
    ("min.compaction.lag.ms", "0"),
    ("max.compaction.lag.ms", "1000"),
];

fn options() -> SourceOptions {
    SourceOptions { max_session_lifetime: Some(LIFETIME), ..source_options() }
}

fn minutes_ago(m: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::minutes(m)
}

fn created_at(s: &str, at: OffsetDateTime, expires_at: OffsetDateTime) -> SessionEvent {
    SessionEvent::Created { sid: sid(s), user_id: "u".into(), created_at: at, expires_at: Some(expires_at) }
}

fn revoked_at(s: &str, at: OffsetDateTime) -> SessionEvent {
    SessionEvent::Revoked { sid: sid(s), revoked_at: at, reason: Some("logout".into()) }
}

/// Records in the topic now, read from the beginning to the end.
fn count_records(config: &KafkaConfig) -> usize {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("enable.partition.eof", "true")
        .set("group.id", "janitor-test-count")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(&config.topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let (mut records, mut ended) = (0, HashSet::new());
    while ended.len() < PARTITIONS as usize {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(_)) => {
                records += 1;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => panic!("{e}"),
            None => panic!("no end of partition within 5 s"),
        }
    }
    records
}

async fn live_projection(config: &KafkaConfig) -> KafkaSource {
    let projection = KafkaSource::start(config.clone(), options()).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "projection becomes Live", async || liveness.state() == FreshnessState::Live)
        .await;
    projection
}

#[tokio::test]
async fn after_the_janitor_and_compaction_the_topic_holds_the_needed_sessions_and_every_answer_stands() {
    let config = topic_with("janitor", PARTITIONS, AGGRESSIVE).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let mut events = Vec::new();
    // Needed: live sessions, and sessions revoked a minute ago (a created
    // with a later expiry could still be within its lifetime).
    let live: Vec<String> = (0..100).map(|i| format!("live-{i}")).collect();
    let recent: Vec<String> = (0..20).map(|i| format!("recent-{i}")).collect();
    for s in &live {
        events.push(created_at(s, minutes_ago(1), minutes_ago(-10)));
    }
    for s in &recent {
        events.push(created_at(s, minutes_ago(2), minutes_ago(-10)));
        events.push(revoked_at(s, minutes_ago(1)));
    }
    // Churn: sessions created 40 minutes ago that expired 25 minutes ago;
    // every third also revoked 30 minutes ago (a lifetime of 20 minutes has
    // passed since), some with a duplicate created.
    let churn: Vec<String> = (0..3_000).map(|i| format!("churn-{i}")).collect();
    for (i, s) in churn.iter().enumerate() {
        events.push(created_at(s, minutes_ago(40), minutes_ago(25)));
        if i % 3 == 0 {
            events.push(revoked_at(s, minutes_ago(30)));
        }
        if i % 5 == 0 {
            events.push(created_at(s, minutes_ago(40), minutes_ago(25)));
        }
    }
    for chunk in events.chunks(1_000) {
        for ack in futures::future::join_all(chunk.iter().map(|e| publisher.publish(e))).await {
            ack.unwrap();
        }
    }
    let before = live_projection(&config).await;
    let all: Vec<String> = live.iter().chain(&recent).chain(&churn).cloned().collect();

    // Two janitors at once: each finds every churned session; the second
    // tombstone of a key is as harmless as the first.
    let janitor = |dry_run| {
        run_janitor(&config, JanitorOptions { grace: Duration::from_secs(1), dry_run, ..JanitorOptions::new(LIFETIME) })
    };
    let (first, second) = tokio::join!(janitor(false), janitor(false));
    for report in [first.unwrap(), second.unwrap()] {
        assert_eq!(report.tombstoned as usize, churn.len(), "{report:?}");
    }
    // Once the tombstones are read, nothing is left to tombstone.
    assert_eq!(janitor(true).await.unwrap().tombstoned, 0);

    // Compaction only cleans closed segments: keep appending (a duplicate
    // of each live session, so every partition gets one) so active segments roll.
    let duplicates: std::collections::HashMap<&String, SessionEvent> =
        live.iter().map(|s| (s, created_at(s, minutes_ago(1), minutes_ago(-10)))).collect();
    let needed = live.len() + recent.len();
    let mut records = count_records(&config);
    eprintln!("records before cleaning: {records} (needed sessions: {needed})");
    eventually(Duration::from_secs(90), "the cleaner drops the churn and its tombstones", async || {
        for ack in futures::future::join_all(live.iter().map(|s| publisher.publish(&duplicates[s]))).await {
            ack.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        records = count_records(&config);
        records <= 2 * needed
    })
    .await;
    eprintln!("records after cleaning: {records}");

    // Every answer stands: the projection that ran through it all, and a
    // fresh replay of the cleaned topic, agree with what was answered before.
    let after = live_projection(&config).await;
    let now = SystemClock.now();
    let answer = |p: &KafkaSource, s: &str| p.liveness().projection().store().lookup(&sid(s), now) == Lookup::Live;
    for s in &all {
        let expected = s.starts_with("live-");
        assert_eq!(answer(&before, s), expected, "{s} (projection that saw the tombstones)");
        assert_eq!(answer(&after, s), expected, "{s} (fresh replay of the cleaned topic)");
    }
    assert!(after.liveness().projection().store().len() <= needed + 1);

    // A late created of a forgotten revoked session, even with a far later
    // expiry, is capped at its created_at + lifetime: still not live.
    publisher.publish(&created_at(&churn[0], minutes_ago(40), minutes_ago(-24 * 60))).await.unwrap();
    let liveness = after.liveness();
    eventually(Duration::from_secs(10), "the late created is applied", async || {
        liveness.projection().store().lookup(&sid(&churn[0]), SystemClock.now()) != Lookup::Absent
    })
    .await;
    assert_eq!(liveness.projection().store().lookup(&sid(&churn[0]), SystemClock.now()), Lookup::Expired);

    before.shutdown().await;
    after.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn a_janitor_run_with_another_lifetime_than_the_serving_projections_is_reported() {
    let config = topic("janitor-mismatch", PARTITIONS).await;
    let publisher = EventPublisher::new(&config).unwrap();
    for i in 0..10 {
        publisher.publish(&created_at(&format!("old-{i}"), minutes_ago(60), minutes_ago(30))).await.unwrap();
    }
    // One projection serves with the janitor's lifetime, one with twice it.
    let same = live_projection(&config).await;
    let longer = KafkaSource::start(
        config.clone(),
        SourceOptions { max_session_lifetime: Some(LIFETIME * 2), ..source_options() },
    )
    .unwrap();
    let longer_liveness = longer.liveness();
    eventually(Duration::from_secs(30), "Live", async || longer_liveness.state() == FreshnessState::Live).await;
    let report =
        run_janitor(&config, JanitorOptions { grace: Duration::from_secs(1), ..JanitorOptions::new(LIFETIME) })
            .await
            .unwrap();
    assert_eq!(report.tombstoned, 10);
    eventually(Duration::from_secs(30), "the mismatch is reported", async || {
        longer.feed_stats().unwrap().janitor_lifetime_mismatches == 10
    })
    .await;
    assert_eq!(same.feed_stats().unwrap().janitor_lifetime_mismatches, 0);
    same.shutdown().await;
    longer.shutdown().await;
    delete_topic(&config).await.ok();
}
