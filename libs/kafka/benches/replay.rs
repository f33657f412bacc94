//! Replay throughput and revocation propagation against the real broker.
//!
//! Run with: cargo bench -p revocation-kafka --bench replay
//! (needs `scripts/servers.sh up`; `BENCH_EVENTS=1000000`, `BENCH_REVOCATIONS=1000`).
//!
//! Replay: the same topic of `BENCH_EVENTS` records is read three ways, each
//! by a fresh client from the beginning, in 9 interleaved rounds (medians;
//! the ratio is the median of per-round ratios):
//! - `raw BaseConsumer`: rdkafka's poll loop that does nothing with records (the baseline);
//! - `raw StreamConsumer`: the async stream, also doing nothing;
//! - `feed`: our feed — decode, apply to the store, positions, watermark
//!   samples — timed until the projection is Live (caught up and proven fresh);
//! - `feed over SASL_SSL`: the same feed through the broker's SASL_SSL
//!   listener (SCRAM-SHA-512 over TLS), the cost of a production connection.
//!
//! Propagation: for each of `BENCH_REVOCATIONS` live sessions, publish a
//! revocation, and time from the broker's acknowledgement until `check`
//! answers `Revoked`.
//!
//! Pause timeline: staleness, state and answers every 10 ms across a broker
//! pause (this one freezes the shared broker for 3 s via scripts/kafka.sh).
//!
//! Machine-readable results go to `target/bench/` for `scripts/bench-report`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use revocation_core::{
    EventJson, FreshnessConfig, FreshnessState, Projection, SessionEvent, SessionId, SessionLiveness,
    SessionLivenessError,
};
use revocation_kafka::{EventPublisher, Feed, KafkaConfig, KafkaSource, SampleTrigger, SourceOptions, TopicSpec};
use revocation_test_support::{Security, bootstrap};
use time::OffsetDateTime;

const PARTITIONS: i32 = 3;
/// Interleaved rounds of the replay comparison (5 gave medians 67–80 % across
/// runs of the same code here; more rounds, steadier medians).
const REPLAY_ROUNDS: usize = 9;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let events = env_usize("BENCH_EVENTS", 1_000_000);
        let revocations = env_usize("BENCH_REVOCATIONS", 1_000);
        replay(events).await;
        propagation(revocations).await;
        pause_timeline().await;
    });
}

async fn new_topic(prefix: &str) -> KafkaConfig {
    let config = KafkaConfig::new(bootstrap(), format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    revocation_kafka::ensure_topic(&config, TopicSpec { partitions: PARTITIONS, replication: 1, compacted: false })
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    config
}

/// Fills the topic fast; every 10th session is also revoked.
fn fill(config: &KafkaConfig, events: usize) {
    let now = OffsetDateTime::now_utc();
    let mut sid = None;
    let events = (0..events).map(|i| {
        if i % 10 == 9 {
            SessionEvent::Revoked { sid: sid.clone().unwrap(), revoked_at: now, reason: None }
        } else {
            let s = SessionId::new(uuid::Uuid::new_v4().to_string()).unwrap();
            sid = Some(s.clone());
            SessionEvent::Created { sid: s, user_id: "user".into(), created_at: now, expires_at: None }
        }
    });
    revocation_test_support::produce_fast(config, events, &[]);
}

fn assignment(topic: &str) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    list
}

fn raw_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("queued.min.messages", "200000")
        .set("fetch.queue.backoff.ms", "10")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.wait.max.ms", "100");
    c
}

fn raw_base(config: &KafkaConfig, events: usize) -> Duration {
    let consumer: BaseConsumer = raw_config(config).create().unwrap();
    let started = Instant::now();
    // As the feed does: learn the leaders before assigning (saves librdkafka's 500 ms retry).
    consumer.fetch_metadata(Some(&config.topic), Duration::from_secs(5)).unwrap();
    consumer.assign(&assignment(&config.topic)).unwrap();
    let mut seen = 0;
    let mut first = None;
    while seen < events {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            seen += 1;
            first.get_or_insert_with(|| started.elapsed());
        }
    }
    println!("    (raw: first record after {first:?}, all after {:?})", started.elapsed());
    started.elapsed()
}

async fn raw_stream(config: &KafkaConfig, events: usize) -> Duration {
    let consumer: StreamConsumer = raw_config(config).create().unwrap();
    let started = Instant::now();
    consumer.fetch_metadata(Some(&config.topic), Duration::from_secs(5)).unwrap();
    consumer.assign(&assignment(&config.topic)).unwrap();
    let mut stream = consumer.stream();
    let mut seen = 0;
    while seen < events {
        if let Some(Ok(_)) = stream.next().await {
            seen += 1;
        }
    }
    started.elapsed()
}

/// Where machine-readable results go (for scripts/bench-report).
fn out_dir() -> std::path::PathBuf {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    out
}

fn feed(config: &KafkaConfig, events: usize) -> (Duration, usize, Vec<(f64, usize)>) {
    let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(Duration::from_secs(2))));
    let started = Instant::now();
    let feed =
        Feed::start(config, Arc::new(EventJson), projection.clone(), Arc::new(SampleTrigger::new()), "bench").unwrap();
    let mut all_read = None;
    let mut first = None;
    let mut progress = Vec::new();
    while projection.freshness().state(revocation_core::Clock::now(&revocation_core::SystemClock))
        != FreshnessState::Live
    {
        let records = feed.stats().records.load(std::sync::atomic::Ordering::Relaxed) as usize;
        progress.push((started.elapsed().as_secs_f64() * 1e3, records));
        if first.is_none() && records > 0 {
            first = Some(started.elapsed());
        }
        if all_read.is_none() && records == events {
            all_read = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    println!("    (feed: first record after {first:?}, all records read after {all_read:?}, Live after {took:?})");
    assert_eq!(feed.stats().records.load(std::sync::atomic::Ordering::Relaxed) as usize, events);
    let sessions = projection.store().len();
    progress.push((took.as_secs_f64() * 1e3, events));
    feed.stop();
    (took, sessions, progress)
}

async fn replay(events: usize) {
    let config = new_topic("bench-replay").await;
    let started = Instant::now();
    fill(&config, events);
    println!("replay: filled {:?} with {events} events in {:.1} s", config.topic, started.elapsed().as_secs_f64());
    // Interleaved rounds, so the machine's drift hits all three alike; the
    // ratio is the median of the per-round ratios.
    let mut base = Vec::new();
    let mut stream = Vec::new();
    let mut ours = Vec::new();
    let mut secured = Vec::new();
    let mut secured_config = Security::Scram512.config(&config.topic);
    secured_config.sample_interval = config.sample_interval;
    let mut best_progress = Vec::new();
    for _ in 0..REPLAY_ROUNDS {
        base.push(raw_base(&config, events));
        stream.push(raw_stream(&config, events).await);
        secured.push(feed(&secured_config, events).0);
        let (took, sessions, progress) = feed(&config, events);
        assert!(sessions > 0);
        if ours.iter().all(|d| took < *d) {
            best_progress = progress;
        }
        ours.push(took);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let secs = |v: &[Duration]| median(v.iter().map(Duration::as_secs_f64).collect());
    let (b, s, o, t) = (secs(&base), secs(&stream), secs(&ours), secs(&secured));
    let ratios: Vec<f64> = base.iter().zip(&ours).map(|(b, o)| b.as_secs_f64() / o.as_secs_f64()).collect();
    let ratio = median(ratios.clone());
    let tls_ratio = median(ours.iter().zip(&secured).map(|(o, t)| o.as_secs_f64() / t.as_secs_f64()).collect());
    println!("replay of {events} events ({PARTITIONS} partitions), medians of {REPLAY_ROUNDS} interleaved rounds:");
    println!("  raw BaseConsumer (no-op)    {b:>8.3} s  {:>10.0} events/s", events as f64 / b);
    println!("  raw StreamConsumer (no-op)  {s:>8.3} s  {:>10.0} events/s", events as f64 / s);
    println!(
        "  feed → store → Live         {o:>8.3} s  {:>10.0} events/s  = {:.0}% of raw BaseConsumer (median of per-round ratios)",
        events as f64 / o,
        100.0 * ratio
    );
    println!(
        "  feed over SASL_SSL (SCRAM)  {t:>8.3} s  {:>10.0} events/s  = {:.0}% of the plaintext feed (median of per-round ratios)",
        events as f64 / t,
        100.0 * tls_ratio
    );
    let rounds: Vec<String> = ratios.iter().map(|r| format!("{:.0}%", 100.0 * r)).collect();
    println!("  per round: {}", rounds.join(" "));
    let out = out_dir();
    std::fs::write(
        out.join("replay.json"),
        format!(
            r#"{{"events": {events}, "partitions": {PARTITIONS}, "rounds": {REPLAY_ROUNDS}, "raw_base_s": {b:.4}, "raw_stream_s": {s:.4}, "feed_s": {o:.4}, "feed_vs_raw": {ratio:.4}, "feed_sasl_ssl_s": {t:.4}, "sasl_ssl_vs_plaintext": {tls_ratio:.4}, "round_ratios": [{}]}}"#,
            ratios.iter().map(|r| format!("{r:.4}")).collect::<Vec<_>>().join(", ")
        ),
    )
    .unwrap();
    let csv: String = best_progress.iter().map(|(t, r)| format!("{t:.2},{r}\n")).collect();
    std::fs::write(out.join("replay-progress.csv"), format!("ms,records\n{csv}")).unwrap();
    revocation_kafka::delete_topic(&config).await.ok();
}

async fn propagation(revocations: usize) {
    let config = new_topic("bench-propagation").await;
    let publisher = EventPublisher::new(&config).unwrap();
    let now = OffsetDateTime::now_utc();
    let sids: Vec<SessionId> =
        (0..revocations).map(|_| SessionId::new(uuid::Uuid::new_v4().to_string()).unwrap()).collect();
    for chunk in sids.chunks(500) {
        let events: Vec<_> = chunk
            .iter()
            .map(|sid| SessionEvent::Created {
                sid: sid.clone(),
                user_id: "u".into(),
                created_at: now,
                expires_at: None,
            })
            .collect();
        for r in futures::future::join_all(events.iter().map(|e| publisher.publish(e))).await {
            r.unwrap();
        }
    }
    let projection = KafkaSource::start(config.clone(), SourceOptions::default()).unwrap();
    let liveness = projection.liveness();
    while liveness.state() != FreshnessState::Live {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = Vec::with_capacity(revocations);
    for sid in &sids {
        assert_eq!(liveness.check(sid).await, Ok(()));
        publisher.publish(&SessionEvent::Revoked { sid: sid.clone(), revoked_at: now, reason: None }).await.unwrap();
        let acked = Instant::now();
        while liveness.check(sid).await != Err(SessionLivenessError::Revoked) {
            tokio::task::yield_now().await;
        }
        latencies.push(acked.elapsed());
    }
    latencies.sort();
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("revocation propagation, broker ack → check answers Revoked, {revocations} revocations:");
    println!(
        "  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        q(0.50).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
    let out = out_dir();
    let csv: String = latencies.iter().map(|d| format!("{:.4}\n", d.as_secs_f64() * 1e3)).collect();
    std::fs::write(out.join("propagation.csv"), format!("ms\n{csv}")).unwrap();
    std::fs::write(
        out.join("propagation.json"),
        format!(
            r#"{{"revocations": {revocations}, "p50_ms": {:.4}, "p99_ms": {:.4}, "max_ms": {:.4}}}"#,
            q(0.50).as_secs_f64() * 1e3,
            q(0.99).as_secs_f64() * 1e3,
            latencies[latencies.len() - 1].as_secs_f64() * 1e3
        ),
    )
    .unwrap();
    projection.shutdown().await;
    revocation_kafka::delete_topic(&config).await.ok();
}

/// Thaws the broker even if the timeline fails half-way.
struct Thaw;
impl Drop for Thaw {
    fn drop(&mut self) {
        kafka_script("resume");
    }
}

fn kafka_script(action: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh");
    let status = std::process::Command::new(script).arg(action).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(status.success(), "scripts/kafka.sh {action}");
}

/// Staleness, state and the answer for a live session every 10 ms, across a
/// broker pause (SIGSTOP at 2 s, SIGCONT at 5 s), with max_staleness 1 s.
async fn pause_timeline() {
    let mut config = new_topic("bench-pause").await;
    config.sample_interval = Duration::from_millis(100);
    let publisher = EventPublisher::new(&config).unwrap();
    let sid = SessionId::new("timeline-alice").unwrap();
    publisher
        .publish(&SessionEvent::Created {
            sid: sid.clone(),
            user_id: "u".into(),
            created_at: OffsetDateTime::now_utc(),
            expires_at: None,
        })
        .await
        .unwrap();
    let options = SourceOptions { max_staleness: Duration::from_secs(1), ..SourceOptions::default() };
    let projection = KafkaSource::start(config.clone(), options).unwrap();
    let liveness = projection.liveness();
    while liveness.state() != FreshnessState::Live {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let mut rows = String::from("ms,staleness_ms,state,answer\n");
    let mut paused = None;
    while started.elapsed() < Duration::from_secs(8) {
        let t = started.elapsed();
        if paused.is_none() && t >= Duration::from_secs(2) {
            kafka_script("pause");
            paused = Some(Thaw);
        }
        if paused.is_some() && t >= Duration::from_secs(5) {
            paused = None; // resumes
        }
        let status = liveness.status();
        let answer = match liveness.check(&sid).await {
            Ok(()) => "live",
            Err(SessionLivenessError::Revoked) => "revoked",
            Err(_) => "transient",
        };
        let staleness = status.freshness.staleness.map_or(-1.0, |s| s.as_secs_f64() * 1e3);
        rows.push_str(&format!(
            "{:.1},{staleness:.1},{},{answer}\n",
            t.as_secs_f64() * 1e3,
            status.freshness.state.as_str()
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(paused);
    std::fs::write(out_dir().join("pause-timeline.csv"), rows).unwrap();
    let transient = liveness.counts().get(revocation_core::Source::Unavailable, revocation_core::Answer::Transient);
    println!(
        "pause timeline: broker paused 2 s → 5 s; {transient} checks answered Transient; written to target/bench/pause-timeline.csv"
    );
    projection.shutdown().await;
    revocation_kafka::delete_topic(&config).await.ok();
}
