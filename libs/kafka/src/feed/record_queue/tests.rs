//! The record queue against the `rdkafka` crate's own `poll`, on a real
//! broker: the same records, parts and end positions, partition by partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{Fetched, RecordQueue};
use crate::{KafkaConfig, TopicSpec, ensure_topic_with};

const PARTITIONS: i32 = 3;
const RECORDS: usize = 3_000;

/// (key, value, headers, timestamp ms) of one record.
type Parts = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>, Option<i64>);
/// Each partition's records by offset, and where each partition ended.
type Read = (BTreeMap<(i32, i64), Parts>, BTreeMap<i32, i64>);

fn bootstrap() -> String {
    revocation_test_support::require_broker();
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic of its own holding keyed and keyless records, tombstones, empty
/// values, headers (some null) and timestamps.
async fn filled_topic() -> KafkaConfig {
    let config = KafkaConfig::new(bootstrap(), format!("record-queue-{}", uuid::Uuid::new_v4().simple()));
    let spec = TopicSpec { partitions: PARTITIONS, replication: 1, compacted: false };
    let created = ensure_topic_with(&config, spec, &[]).await.expect("create the topic (scripts/servers.sh up)");
    assert!(created);
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers).create().expect("producer");
    for i in 0..RECORDS {
        let key = format!("key-{}", i % 700);
        let value = format!("value {i} {}", "x".repeat(i % 200));
        let mut record: BaseRecord<'_, str, str> = BaseRecord::to(&config.topic)
            .partition((i % PARTITIONS as usize) as i32)
            .timestamp(1_700_000_000_000 + i as i64);
        if i % 11 != 0 {
            record = record.key(&key);
        }
        match i % 7 {
            0 => {} // a tombstone
            1 => record = record.payload(""),
            _ => record = record.payload(&value),
        }
        if i % 3 == 0 {
            record =
                record.headers(
                    OwnedHeaders::new()
                        .insert(Header { key: "janitor-lifetime", value: Some("86400") })
                        .insert(Header::<&str> { key: "empty", value: None }),
                );
        }
        producer.send(record).expect("queue the record");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    config
}

fn consumer(config: &KafkaConfig, purpose: &str) -> BaseConsumer {
    config.consumer(purpose).create().expect("consumer")
}

fn assign(consumer: &BaseConsumer, topic: &str) {
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
}

/// Reads every partition to its end with the crate's `poll`.
fn read_with_poll(config: &KafkaConfig) -> Read {
    let consumer = consumer(config, "record-queue-poll");
    assign(&consumer, &config.topic);
    let (mut records, mut ends) = (BTreeMap::new(), BTreeMap::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends.len() < PARTITIONS as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers = m.headers().map_or_else(Vec::new, |h| {
                    h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect()
                });
                let parts =
                    (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec), headers, m.timestamp().to_millis());
                records.insert((m.partition(), m.offset()), parts);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let position = consumer.position().unwrap();
                let at = position.find_partition(&config.topic, p).unwrap().offset();
                ends.insert(p, at.to_raw().unwrap());
            }
            Some(Err(e)) => panic!("poll: {e}"),
            None => {}
        }
    }
    (records, ends)
}

/// Reads every partition to its end through a [`RecordQueue`].
fn read_with_queue(config: &KafkaConfig) -> Read {
    let consumer = consumer(config, "record-queue-batch");
    let queue = RecordQueue::new(&consumer).expect("queue");
    for p in 0..PARTITIONS {
        assert!(queue.forward(&consumer, &config.topic, p));
    }
    assign(&consumer, &config.topic);
    let (mut records, mut ends) = (BTreeMap::new(), BTreeMap::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends.len() < PARTITIONS as usize && Instant::now() < deadline {
        // Nothing reaches the consumer's own queue but events.
        if let Some(Ok(m)) = consumer.poll(Duration::ZERO) {
            panic!("record at {}:{} on the consumer's queue", m.partition(), m.offset());
        }
        queue.take(Duration::from_millis(100), |fetched| match fetched {
            Fetched::Record(r) => {
                let mut headers = Vec::new();
                r.headers(|name, value| headers.push((name.to_owned(), value.map(<[u8]>::to_vec))));
                let parts = (r.key().map(<[u8]>::to_vec), r.payload().map(<[u8]>::to_vec), headers, r.timestamp_ms());
                assert!(records.insert((r.partition(), r.offset()), parts).is_none(), "a record twice");
            }
            Fetched::End { partition, position } => {
                ends.insert(partition, position);
            }
            Fetched::Error(e) => panic!("take: {e}"),
        });
    }
    (records, ends)
}

#[tokio::test]
async fn takes_what_the_crates_poll_hands_over() {
    let config = filled_topic().await;
    let (by_poll, ends_by_poll) = read_with_poll(&config);
    let (by_queue, ends_by_queue) = read_with_queue(&config);
    assert_eq!(by_poll.len(), RECORDS, "the crate read every record");
    assert_eq!(by_queue, by_poll);
    assert_eq!(ends_by_queue, ends_by_poll);
    // Each end is past its partition's last record.
    for p in 0..PARTITIONS {
        let last = by_poll.keys().filter(|(q, _)| *q == p).map(|(_, o)| *o).max().unwrap();
        assert_eq!(ends_by_queue[&p], last + 1);
    }
    let _ = crate::admin::delete_topic(&config).await;
}

#[tokio::test]
async fn a_partitions_fetch_error_comes_through_the_queue() {
    let config = filled_topic().await;
    let mut client = config.consumer("record-queue-error");
    // Out of range, with no reset allowed: librdkafka reports it on the partition.
    client.set("auto.offset.reset", "error");
    let consumer: BaseConsumer = client.create().expect("consumer");
    let queue = RecordQueue::new(&consumer).expect("queue");
    assert!(queue.forward(&consumer, &config.topic, 0));
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&config.topic, 0, Offset::Offset(1_000_000)).unwrap();
    consumer.assign(&list).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut error = None;
    while error.is_none() && Instant::now() < deadline {
        let _ = consumer.poll(Duration::ZERO);
        queue.take(Duration::from_millis(100), |fetched| {
            if let Fetched::Error(e) = fetched {
                error = Some(e);
            }
        });
    }
    let error = error.expect("the out-of-range error reached the record queue");
    assert!(matches!(error, KafkaError::MessageConsumption(_)), "{error:?}");
    let _ = crate::admin::delete_topic(&config).await;
}
