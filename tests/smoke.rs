//! Proof that the real servers are used: a topic with 3 partitions created
//! through rdkafka's admin API, a record produced and consumed back, and a
//! query against PostgreSQL. An unreachable server fails the test with the
//! command that starts it; nothing is skipped.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use revocation_test_support::{bootstrap, database_url};

const START: &str = "start it with `scripts/servers.sh up`";

#[tokio::test]
async fn kafka_creates_a_three_partition_topic_and_round_trips_a_record() {
    let topic = format!("smoke-{}", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let created = admin
        .create_topics([&NewTopic::new(&topic, 3, TopicReplication::Fixed(1))], &options)
        .await
        .unwrap_or_else(|e| panic!("Kafka is not reachable at {}: {e}; {START}", bootstrap()));
    assert!(created[0].is_ok(), "topic creation failed: {:?}", created[0]);

    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).set("group.id", "smoke").create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)).expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).set("acks", "all").create().expect("producer");
    let delivery = producer
        .send(FutureRecord::to(&topic).key("k").payload("hello").partition(1), Duration::from_secs(10))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce failed: {e}; {START}"));
    assert_eq!(delivery.partition, 1);

    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&topic, 1, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&list).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let payload = loop {
        assert!(std::time::Instant::now() < deadline, "no record consumed within 10 s");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m.payload().map(|p| p.to_vec());
        }
    };
    assert_eq!(payload.as_deref(), Some(&b"hello"[..]));
    admin.delete_topics(&[&topic], &options).await.ok();
}

#[tokio::test]
async fn postgres_answers_a_query() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&database_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {}: {e}; {START}", database_url()));
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&pool).await.expect("query");
    assert!(version.starts_with("PostgreSQL"), "{version}");
}
