//! CloudEvents in both modes of the Kafka binding, through the real broker
//! (`scripts/servers.sh up`): the feed copies the headers this format reads.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use revocation_core::{Clock, CloudEvents, FreshnessState, Lookup, SystemClock};
use revocation_kafka::{KafkaSource, SourceOptions, delete_topic};
use revocation_test_support::*;

#[tokio::test]
async fn binary_and_structured_cloud_events_reach_the_projection() {
    let config = topic("cloudevents", 3).await;
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers).create().unwrap();
    let created = |sid: &str| {
        format!(r#"{{"type":"session.created","sid":"{sid}","user_id":"u","created_at":"2026-12-01T10:00:00Z"}}"#)
    };
    let revoked =
        |sid: &str| format!(r#"{{"type":"session.revoked","sid":"{sid}","revoked_at":"2026-12-01T11:00:00Z"}}"#);
    let binary = |kind: &'static str| {
        OwnedHeaders::new()
            .insert(Header { key: "ce_specversion", value: Some("1.0") })
            .insert(Header { key: "ce_type", value: Some(kind) })
            .insert(Header { key: "ce_id", value: Some("1") })
            .insert(Header { key: "ce_source", value: Some("/auth") })
    };
    let structured =
        || OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/cloudevents+json") });
    let envelope = |kind: &str, data: String| {
        format!(r#"{{"specversion":"1.0","type":"{kind}","source":"/auth","id":"2","data":{data}}}"#)
    };
    let records = [
        ("bin-live", created("bin-live"), binary("session.created")),
        ("bin-gone", created("bin-gone"), binary("session.created")),
        ("bin-gone", revoked("bin-gone"), binary("session.revoked")),
        ("str-live", envelope("session.created", created("str-live")), structured()),
        ("str-gone", envelope("session.created", created("str-gone")), structured()),
        ("str-gone", envelope("session.revoked", revoked("str-gone")), structured()),
        ("plain-live", created("plain-live"), OwnedHeaders::new()),
        ("liar", created("liar"), binary("session.revoked")),
    ];
    for (key, value, headers) in records {
        let record = FutureRecord::to(&config.topic).key(key).payload(&value).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }
    let options = SourceOptions { format: Arc::new(CloudEvents), ..source_options() };
    let projection = KafkaSource::start(config.clone(), options).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "projection becomes Live", async || liveness.state() == FreshnessState::Live)
        .await;
    let store = liveness.projection();
    let now = SystemClock.now();
    for (s, expected) in [
        ("bin-live", Lookup::Live),
        ("bin-gone", Lookup::Revoked),
        ("str-live", Lookup::Live),
        ("str-gone", Lookup::Revoked),
        ("plain-live", Lookup::Live),
        ("liar", Lookup::Revoked),
    ] {
        assert_eq!(store.store().lookup(&sid(s), now), expected, "{s}");
    }
    assert_eq!(projection.feed_stats().unwrap().malformed, 1, "the CloudEvent whose type disagrees with its data");
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}
