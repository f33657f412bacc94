//! Filling a topic fast, for benchmarks: a `BaseProducer` with large batches,
//! waiting (not failing) when its queue is full.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use revocation_core::SessionEvent;
use revocation_kafka::KafkaConfig;

/// Publishes every event of `events` to `config.topic` and waits until all
/// are acknowledged; `options` are extra producer properties (e.g.
/// `compression.codec`). Returns the total bytes of the values.
pub fn produce_fast(
    config: &KafkaConfig,
    events: impl Iterator<Item = SessionEvent>,
    options: &[(&str, &str)],
) -> usize {
    produce_records(config, events.map(|event| (event.key().to_vec(), event.to_value())), options)
}

/// [`produce_fast`] for records already encoded as key and value (another
/// format's records, say Debezium's envelopes).
pub fn produce_records(
    config: &KafkaConfig,
    records: impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    options: &[(&str, &str)],
) -> usize {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("partitioner", revocation_kafka::JAVA_COMPATIBLE_PARTITIONER);
    for (key, value) in options {
        client.set(*key, *value);
    }
    let producer: BaseProducer = client.create().unwrap_or_else(|e| panic!("producer: {e}"));
    let mut bytes = 0;
    for (i, (key, value)) in records.enumerate() {
        bytes += value.as_ref().map_or(0, Vec::len);
        let mut record = BaseRecord::to(&config.topic).key(&key);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap_or_else(|e| panic!("flush: {e}"));
    bytes
}
