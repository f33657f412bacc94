//! The Kafka source against the real broker (`scripts/servers.sh up`). Each
//! test creates a topic of its own with at least 3 partitions.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use revocation_core::{
    Clock, FreshnessState, Lookup, SessionEvent, SessionLiveness, SessionLivenessError, SystemClock,
};
use revocation_kafka::{EventPublisher, KafkaSource, add_partitions, delete_topic};
use revocation_test_support::*;

async fn live(projection: &KafkaSource) {
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "projection becomes Live", async || liveness.state() == FreshnessState::Live)
        .await;
}

/// What a session's answer should be after a given history (the model).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Model {
    created: bool,
    revoked: bool,
}

#[tokio::test]
async fn replay_of_many_events_yields_exactly_the_model_state() {
    let config = topic("replay", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    // A deterministic mix: creates, revokes, duplicates, tombstones, of
    // UUID sessions (decoded by the consumer thread, tombstones aside) and
    // others (decoded by the apply thread) interleaved on each partition.
    let mut model: HashMap<String, Model> = HashMap::new();
    let mut events = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..6_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let s = if (x >> 40) % 2 == 0 {
            format!("sess-{}", x % 600)
        } else {
            format!("8a3f6c1e-2b4d-4e5f-9a7b-{:012x}", x % 600)
        };
        let event = match (x >> 20) % 10 {
            0..=5 => created(&s, None),
            6..=8 => revoked(&s),
            _ => SessionEvent::Tombstone { sid: sid(&s) },
        };
        let m = model.entry(s).or_default();
        match &event {
            SessionEvent::Created { .. } => m.created = true,
            SessionEvent::Revoked { .. } => m.revoked = true,
            SessionEvent::Tombstone { .. } => *m = Model::default(),
        }
        events.push(event);
    }
    for chunk in events.chunks(500) {
        let sends = chunk.iter().map(|e| publisher.publish(e));
        for ack in futures::future::join_all(sends).await {
            ack.expect("acknowledged");
        }
    }

    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    let store_view = projection.liveness().projection();
    let now = SystemClock.now();
    for (s, m) in &model {
        let expected = match m {
            Model { created: false, revoked: false } => Lookup::Absent,
            Model { revoked: true, .. } => Lookup::Revoked,
            Model { created: true, revoked: false } => Lookup::Live,
        };
        assert_eq!(store_view.store().lookup(&sid(s), now), expected, "{s}: {m:?}");
    }
    assert_eq!(projection.feed_stats().unwrap().records, 6_000);
    assert_eq!(projection.feed_stats().unwrap().partitions, 3);
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn a_revocation_produced_while_live_is_answered_revoked_shortly_after() {
    let config = topic("revoke", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    let liveness = projection.liveness();
    publisher.publish(&created("alice", None)).await.unwrap();
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));
    publisher.publish(&revoked("alice")).await.unwrap();
    let took = eventually(Duration::from_secs(2), "revocation visible", async || {
        liveness.check(&sid("alice")).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    eprintln!("revocation visible after {took:?}");
    // And it stays revoked, even if the created event is published again.
    publisher.publish(&created("alice", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(liveness.check(&sid("alice")).await, Err(SessionLivenessError::Revoked));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn a_session_acknowledged_before_the_check_began_is_never_answered_revoked() {
    let config = topic("barrier", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    let liveness = projection.liveness();
    let mut ok = 0;
    for i in 0..200 {
        let s = format!("new-{i}");
        publisher.publish(&created(&s, None)).await.unwrap();
        // The check begins after the acknowledgement: the barrier must see it.
        match liveness.check(&sid(&s)).await {
            Ok(()) => ok += 1,
            Err(SessionLivenessError::Revoked) => {
                panic!("{s} answered Revoked right after its created event was acked")
            }
            Err(e) => eprintln!("{s}: {e}"),
        }
    }
    assert!(ok >= 190, "only {ok} of 200 fresh sessions answered live");
    let counts = liveness.counts();
    assert!(counts.barrier_waits() > 0, "the barrier was exercised");
    // Unknown sids still end up Revoked once the barrier confirms absence.
    assert_eq!(liveness.check(&sid("never-created")).await, Err(SessionLivenessError::Revoked));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn malformed_records_in_the_middle_of_a_partition_do_not_stop_the_ones_after_them() {
    let config = topic("malformed", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    // Same key → same partition: the bad records sit between the good ones.
    // (A record without a key cannot exist here: the broker refuses keyless
    // records on a compacted topic.)
    publisher.publish(&created("k", None)).await.unwrap();
    publisher.publish_raw(Some(b"k"), Some(b"{not json")).await.unwrap();
    publisher.publish_raw(Some(b"k"), Some(b"\xff\xfe\x00")).await.unwrap();
    publisher.publish_raw(Some(b"\xff"), Some(b"{}")).await.unwrap();
    publisher.publish_raw(Some(b"k"), Some(br#"{"type":"session.renamed","sid":"k"}"#)).await.unwrap();
    publisher.publish(&created("after", None)).await.unwrap();
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    let liveness = projection.liveness();
    assert_eq!(liveness.check(&sid("after")).await, Ok(()));
    assert_eq!(liveness.check(&sid("k")).await, Err(SessionLivenessError::Revoked), "malformed → fail closed");
    let counts = liveness.status().store;
    assert_eq!((counts.rejected, counts.unknown), (3, 1));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn partitions_added_while_running_are_consumed() {
    let config = topic("grow", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    live(&projection).await;
    add_partitions(&config, 6).await.unwrap();
    // Publish until records land in the new partitions (the producer learns
    // of them on its next metadata refresh).
    let mut in_new = Vec::new();
    for i in 0..2_000 {
        let s = format!("grown-{i}");
        let ack = publisher.publish(&created(&s, None)).await.unwrap();
        if ack.partition >= 3 {
            in_new.push(s);
        }
        if in_new.len() >= 20 {
            break;
        }
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(!in_new.is_empty(), "no record landed in a new partition");
    let liveness = projection.liveness();
    for s in &in_new {
        eventually(Duration::from_secs(10), "session in a new partition is live", async || {
            liveness.check(&sid(s)).await == Ok(())
        })
        .await;
    }
    assert_eq!(projection.feed_stats().unwrap().partitions, 6);
    assert_eq!(liveness.status().freshness.partitions.len(), 6);
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn a_rebuild_under_load_ends_with_the_same_state_and_never_answers_from_a_half_built_store() {
    let config = topic("rebuild", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let mut events: Vec<_> = (0..2_000).map(|i| created(&format!("r-{i}"), None)).collect();
    events.extend((0..2_000).step_by(3).map(|i| revoked(&format!("r-{i}"))));
    for ack in futures::future::join_all(events.iter().map(|e| publisher.publish(e))).await {
        ack.unwrap();
    }
    let projection = Arc::new(KafkaSource::start(config.clone(), source_options()).unwrap());
    live(&projection).await;
    let liveness = projection.liveness();
    // Checkers hammer known sessions during the rebuild; every answer must
    // match the truth (live or revoked), never Revoked-for-absent.
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicUsize::new(0));
    let checks = Arc::new(AtomicUsize::new(0));
    let mut checkers = Vec::new();
    for t in 0..2 {
        let (liveness, stop, wrong, checks) = (liveness.clone(), stop.clone(), wrong.clone(), checks.clone());
        checkers.push(tokio::spawn(async move {
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let expected = if i % 3 == 0 { Err(SessionLivenessError::Revoked) } else { Ok(()) };
                let answer = liveness.check(&sid(&format!("r-{i}"))).await;
                if matches!(answer, Err(SessionLivenessError::Transient(_))) {
                    // Allowed (fail closed), never wrong.
                } else if answer != expected {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                checks.fetch_add(1, Ordering::Relaxed);
                i = (i + 7) % 2_000;
                tokio::task::yield_now().await;
            }
        }));
    }
    // Load on the topic during the rebuild, too.
    let writer = {
        let publisher = publisher.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                publisher.publish(&created(&format!("during-{i}"), None)).await.unwrap();
                i += 1;
            }
            i
        })
    };
    let before = liveness.projection();
    let report = projection.rebuild(Duration::from_secs(60)).await.unwrap();
    let after = liveness.projection();
    assert!(!Arc::ptr_eq(&before, &after), "a new projection was installed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for c in checkers {
        c.await.unwrap();
    }
    let written = writer.await.unwrap();
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "wrong answers during the rebuild");
    assert!(checks.load(Ordering::Relaxed) > 100);
    assert!(report.records >= 2_000 + 667);
    // Same state: every session's answer matches the one the old store gives.
    live(&projection).await;
    let now = SystemClock.now();
    for i in 0..2_000 {
        let s = sid(&format!("r-{i}"));
        assert_eq!(after.store().lookup(&s, now), before.store().lookup(&s, now), "{s}");
    }
    for i in 0..written {
        let s = sid(&format!("during-{i}"));
        assert_eq!(liveness.check(&s).await, Ok(()), "{s}");
    }
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn an_unreachable_broker_at_start_leaves_the_projection_cold_and_the_process_up() {
    let mut config = revocation_kafka::KafkaConfig::new("127.0.0.1:1", "nowhere");
    config.sample_interval = Duration::from_millis(50);
    let projection = KafkaSource::start(config, source_options()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let liveness = projection.liveness();
    assert_eq!(liveness.state(), FreshnessState::Cold);
    assert!(matches!(liveness.check(&sid("x")).await, Err(SessionLivenessError::Transient(_))));
    projection.shutdown().await;
}

#[tokio::test]
async fn a_missing_topic_keeps_the_projection_cold_until_it_exists() {
    require_broker();
    let mut config = revocation_kafka::KafkaConfig::new(bootstrap(), format!("late-{}", uuid::Uuid::new_v4().simple()));
    config.sample_interval = Duration::from_millis(50);
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(projection.liveness().state(), FreshnessState::Cold);
    revocation_kafka::ensure_topic(&config, revocation_kafka::TopicSpec::default()).await.unwrap();
    EventPublisher::new(&config).unwrap().publish(&created("late", None)).await.unwrap();
    live(&projection).await;
    assert_eq!(projection.liveness().check(&sid("late")).await, Ok(()));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn a_revocation_acknowledged_on_a_partition_added_while_running_is_never_answered_live_past_the_bound() {
    let config = topic("grow-bound", 1).await;
    let mut options = source_options();
    options.max_staleness = Duration::from_millis(400);
    let bound = options.max_staleness;
    let publisher = EventPublisher::new(&config).unwrap();
    // Sessions whose key Kafka's partitioner puts on a partition other than
    // 0 once the topic has 4: their revocations land on added partitions.
    let moved: Vec<String> = (0..400)
        .map(|i| format!("moving-{i}"))
        .filter(|s| revocation_kafka::default_partition(s.as_bytes(), 4) != 0)
        .take(20)
        .collect();
    for s in &moved {
        publisher.publish(&created(s, None)).await.unwrap();
    }
    let projection = KafkaSource::start(config.clone(), options).unwrap();
    live(&projection).await;
    add_partitions(&config, 4).await.unwrap();
    // A new producer knows the new partitions at once.
    let publisher = EventPublisher::new(&config).unwrap();
    let liveness = projection.liveness();
    let mut violations = Vec::new();
    for s in &moved {
        let ack = publisher.publish(&revoked(s)).await.unwrap();
        assert!(ack.partition > 0, "{s} was revoked on partition {}", ack.partition);
        let acked = std::time::Instant::now();
        // Check until the bound has passed twice over; a live answer to a
        // check that began past the bound breaks promise 1.
        while acked.elapsed() < bound * 2 {
            let began = acked.elapsed();
            if liveness.check(&sid(s)).await == Ok(()) && began > bound {
                violations.push((s.clone(), began));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(violations.is_empty(), "live past the bound after the ack: {violations:?}");
    for s in &moved {
        assert_ne!(liveness.check(&sid(s)).await, Ok(()));
    }
    eventually(Duration::from_secs(10), "Live on 4 partitions", async || liveness.state() == FreshnessState::Live)
        .await;
    assert_eq!(liveness.status().freshness.partitions.len(), 4);
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}

#[tokio::test]
async fn the_publisher_puts_each_key_where_kafkas_default_partitioner_does() {
    // Java clients (Debezium, Kafka Streams) use murmur2; librdkafka's own
    // default does not. A tombstone on another partition than its key's
    // records would never compact them away.
    let config = topic("partitioner", 6).await;
    let publisher = EventPublisher::new(&config).unwrap();
    for i in 0..60 {
        let s = format!("placed-{i}");
        let ack = publisher.publish(&created(&s, None)).await.unwrap();
        assert_eq!(ack.partition as u32, revocation_kafka::default_partition(s.as_bytes(), 6), "{s}");
        let ack = publisher.publish_raw(Some(s.as_bytes()), None).await.unwrap();
        assert_eq!(ack.partition as u32, revocation_kafka::default_partition(s.as_bytes(), 6), "{s} tombstone");
    }
    delete_topic(&config).await.ok();
}
