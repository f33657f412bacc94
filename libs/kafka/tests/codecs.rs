//! Every compression codec Kafka has, written by a producer that is not our
//! publisher (an rdkafka producer configured per codec, as other teams'
//! services are), is read by the projection.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use revocation_core::{FreshnessState, SessionEvent, SessionLiveness, SessionLivenessError};
use revocation_kafka::{KafkaConfig, KafkaSource, delete_topic};
use revocation_test_support::*;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

async fn produce(config: &KafkaConfig, codec: &str, events: &[SessionEvent]) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("compression.codec", codec)
        .set("linger.ms", "20")
        .create()
        .unwrap_or_else(|e| panic!("a {codec} producer: {e}"));
    let values: Vec<Vec<u8>> = events.iter().map(|event| event.to_value().unwrap()).collect();
    let sends = events.iter().zip(&values).map(|(event, value)| {
        producer.send(FutureRecord::to(&config.topic).key(event.key()).payload(value), Duration::from_secs(10))
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap_or_else(|(e, _)| panic!("{codec}: {e}"));
    }
}

#[tokio::test]
async fn records_in_every_compression_codec_are_read() {
    let config = topic("codecs", 3).await;
    for codec in CODECS {
        let events: Vec<SessionEvent> = (0..50)
            .flat_map(|i| {
                let s = format!("{codec}-{i}");
                if i % 5 == 0 { vec![created(&s, None), revoked(&s)] } else { vec![created(&s, None)] }
            })
            .collect();
        produce(&config, codec, &events).await;
    }
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "Live", async || liveness.state() == FreshnessState::Live).await;
    for codec in CODECS {
        for i in 0..50 {
            let expected = if i % 5 == 0 { Err(SessionLivenessError::Revoked) } else { Ok(()) };
            assert_eq!(liveness.check(&sid(&format!("{codec}-{i}"))).await, expected, "{codec} record {i}");
        }
    }
    let stats = projection.feed_stats().unwrap();
    assert_eq!((stats.records, stats.malformed, stats.fault), (300, 0, None));
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}
