//! Records decoded by the consumer thread and records decoded by the apply
//! thread take effect in the records' order, on a real broker: a replay of
//! interleaved changes to UUID and other sessions, tombstones among them,
//! ends in exactly the state the events say.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use revocation_core::{Clock, FreshnessState, Lookup, SessionEvent, SessionId, SystemClock};

use super::pipeline::{ALWAYS_DECODE, DECODED_HERE};
use crate::{EventPublisher, KafkaConfig, KafkaSource, SourceOptions, TopicSpec, ensure_topic_with};

#[tokio::test]
async fn decoded_and_copied_records_apply_in_their_order() {
    revocation_test_support::require_broker();
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let mut config = KafkaConfig::new(bootstrap, format!("order-{}", uuid::Uuid::new_v4().simple()));
    config.sample_interval = Duration::from_millis(100);
    let spec = TopicSpec { partitions: 3, replication: 1, compacted: false };
    assert!(ensure_topic_with(&config, spec, &[]).await.expect("create the topic (scripts/servers.sh up)"));
    let publisher = EventPublisher::new(&config).unwrap();
    // (created, revoked) per session after the events, tombstones resetting it.
    let mut model: HashMap<String, (bool, bool)> = HashMap::new();
    let mut events = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..6_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let s = if (x >> 40) % 2 == 0 {
            format!("sess-{}", x % 400)
        } else {
            format!("8a3f6c1e-2b4d-4e5f-9a7b-{:012x}", x % 400)
        };
        let sid = SessionId::new(&s).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let (event, next) = match (x >> 20) % 10 {
            0..=5 => (SessionEvent::Created { sid, user_id: "u".into(), created_at: now, expires_at: None }, None),
            6..=8 => (SessionEvent::Revoked { sid, revoked_at: now, reason: None }, None),
            _ => (SessionEvent::Tombstone { sid }, Some((false, false))),
        };
        let m = model.entry(s).or_default();
        *m = next.unwrap_or(match &event {
            SessionEvent::Created { .. } => (true, m.1),
            _ => (m.0, true),
        });
        events.push(event);
    }
    for chunk in events.chunks(500) {
        for ack in futures::future::join_all(chunk.iter().map(|e| publisher.publish(e))).await {
            ack.expect("acknowledged");
        }
    }
    ALWAYS_DECODE.store(true, Ordering::Relaxed);
    let decoded_before = DECODED_HERE.load(Ordering::Relaxed);
    let source = KafkaSource::start(config.clone(), SourceOptions::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.liveness().state() != FreshnessState::Live {
        assert!(Instant::now() < deadline, "the projection became Live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(DECODED_HERE.load(Ordering::Relaxed) > decoded_before, "the consumer thread decoded records");
    let projection = source.liveness().projection();
    let now = SystemClock.now();
    for (s, (created, revoked)) in &model {
        let expected = match (created, revoked) {
            (_, true) => Lookup::Revoked,
            (true, false) => Lookup::Live,
            (false, false) => Lookup::Absent,
        };
        assert_eq!(projection.store().lookup(&SessionId::new(s).unwrap(), now), expected, "{s}");
    }
    source.shutdown().await;
    let _ = crate::delete_topic(&config).await;
}
