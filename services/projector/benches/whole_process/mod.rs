//! Running the release `projector` as a user runs it, and measuring the
//! whole process: time to proven Live, resident memory, bytes read; and a
//! raw no-op consumer of the same topic as the baseline. Shared by the
//! start benches.
#![allow(dead_code)] // each bench uses its own part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use revocation_kafka::KafkaConfig;

/// Where the measured projector listens.
pub const PORT: u16 = 18_181;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release binary, which `scripts/bench` builds first.
pub fn binary() -> PathBuf {
    let binary = root().join("target/release/projector");
    assert!(binary.exists(), "build it first: cargo build --release -p projector");
    binary
}

/// A new compacted topic of `partitions` named `prefix`-<uuid>, whose
/// compression the producer chooses (the benches fill it lz4). Its log
/// cleaner waits a day: the broker shares this machine's two cores, and
/// compacting a just-filled topic took one of them for ~15 s, over
/// whichever runs it happened to overlap (measured 2026-12-04).
pub fn new_topic(runtime: &tokio::runtime::Runtime, prefix: &str, partitions: i32) -> KafkaConfig {
    let config = KafkaConfig::new(bootstrap(), format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    runtime
        .block_on(revocation_kafka::ensure_topic_with(
            &config,
            revocation_kafka::TopicSpec { partitions, replication: 1, compacted: true },
            &[("compression.type", "producer"), ("min.compaction.lag.ms", "86400000")],
        ))
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    config
}

/// Deletes the bench's topic, unless `BENCH_START_KEEP=1` (to profile
/// starts on it by hand).
pub fn drop_topic(runtime: &tokio::runtime::Runtime, config: &KafkaConfig) {
    if std::env::var("BENCH_START_KEEP").is_ok_and(|v| v == "1") {
        println!("  kept topic {} (BENCH_START_KEEP=1)", config.topic);
    } else {
        runtime.block_on(revocation_kafka::delete_topic(config)).ok();
    }
}

/// The two raw baselines over one topic: records polled one by one (what a
/// start is judged against) and taken thousands at a time.
pub struct Baselines {
    pub raw: Duration,
    pub raw_cpu_s: f64,
    pub batched: Duration,
    pub batched_cpu_s: f64,
}

/// Runs and prints both baselines over `n` records of `config`'s topic.
pub fn baselines(config: &KafkaConfig, partitions: i32, n: usize) -> Baselines {
    let (raw, raw_cpu_s) = raw_consume(config, partitions, n);
    let (batched, batched_cpu_s) = raw_consume_batched(config, partitions, n);
    for (what, took, cpu) in
        [("raw no-op BaseConsumer", raw, raw_cpu_s), ("raw no-op, batched poll", batched, batched_cpu_s)]
    {
        let rate = n as f64 / took.as_secs_f64();
        println!("  {what:<29}{:>7.2} s  {rate:>9.0} records/s; CPU {cpu:.1} s", took.as_secs_f64());
    }
    Baselines { raw, raw_cpu_s, batched, batched_cpu_s }
}

/// A no-op consumer over every partition until it has seen `n` records: the
/// baseline (its prefetch is larger than the projector's, which caps it to
/// bound memory, so it is the faster of the two settings). Returns its time
/// and the CPU this process used meanwhile (librdkafka's threads and the
/// poll loop; the bench's other threads are idle), to set against the
/// projector's.
fn raw_consume(config: &KafkaConfig, partitions: i32, n: usize) -> (Duration, f64) {
    let cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let consumer = raw_consumer(config, partitions);
    let mut seen = 0;
    while seen < n {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            seen += 1;
        }
    }
    (started.elapsed(), cpu_seconds(std::process::id()) - cpu_before)
}

/// [`raw_consume`] taking records from librdkafka thousands at a time
/// (`rd_kafka_consume_batch_queue`, which the `rdkafka` crate does not
/// wrap) instead of one event per record: how much of the baseline's time
/// is the per-record poll (`docs/benchmarks-notes.md`, "Stop 29").
#[allow(unsafe_code)] // a measurement only; the projector does not use this call
fn raw_consume_batched(config: &KafkaConfig, partitions: i32, n: usize) -> (Duration, f64) {
    use rdkafka::bindings as rd;
    let cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let consumer = raw_consumer(config, partitions);
    // SAFETY: the queue handle is taken from and destroyed before the live
    // consumer; each message the call fills in is destroyed exactly once,
    // after its fields are read.
    unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr());
        let mut messages: Vec<*mut rd::rd_kafka_message_t> = vec![std::ptr::null_mut(); 4096];
        let mut seen = 0;
        // The call waits until the batch is full or 10 ms passed: a short
        // wait, so the last records are not held back.
        while seen < n {
            let got = rd::rd_kafka_consume_batch_queue(queue, 10, messages.as_mut_ptr(), messages.len());
            assert!(got >= 0, "rd_kafka_consume_batch_queue failed");
            for &message in &messages[..got as usize] {
                if (*message).err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    seen += 1;
                }
                rd::rd_kafka_message_destroy(message);
            }
        }
        rd::rd_kafka_queue_destroy(queue);
    }
    (started.elapsed(), cpu_seconds(std::process::id()) - cpu_before)
}

/// The baseline's consumer, assigned every partition from the beginning.
fn raw_consumer(config: &KafkaConfig, partitions: i32) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", "bench-start-raw")
        .set("enable.auto.commit", "false")
        .set("queued.min.messages", "200000")
        .set("fetch.queue.backoff.ms", "10")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    consumer.fetch_metadata(Some(&config.topic), Duration::from_secs(5)).unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(&config.topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    consumer
}

#[derive(Clone, Copy)]
pub struct Run {
    pub live_after: Duration,
    pub rss_kb: u64,
    pub read_bytes: u64,
    pub snapshot_ms: u64,
    /// CPU seconds the process used until Live (user + system).
    pub cpu_s: f64,
    /// Checks the Postgres fallback answered until Live (under checks only).
    pub fallback_served: u64,
}

/// A process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A projector serving on `port` once Live (no database, no snapshot
/// directory), with `extra` flags; killed when dropped.
pub fn start_serving(config: &KafkaConfig, port: u16, extra: &[&str]) -> Killed {
    let child = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--bootstrap-servers"])
        .arg(&config.bootstrap_servers)
        .args(["--topic", &config.topic])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let process = Killed(child);
    let started = Instant::now();
    while !live_at(port) {
        assert!(started.elapsed() < Duration::from_secs(600), "not Live after 10 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

/// Starts the release projector on [`PORT`] (no database: Cold answers
/// 503), waits until `/health/lag` says Live, reads its memory, CPU time and
/// I/O, stops it with SIGTERM (it writes its snapshot when `dir` is given)
/// and waits for it to exit. `BENCH_START_ARGS` adds flags (e.g. `-X`
/// options), space-separated.
pub fn run_projector(config: &KafkaConfig, dir: Option<&Path>, extra: &[&str]) -> Run {
    run(config, dir, extra, None)
}

/// What the Postgres fallback served while a projector started under checks.
pub struct Fallback {
    /// Checks offered until Live (a steady [`CHECKS_PER_SEC`]).
    pub offered: u64,
    /// Of them, answered by the Postgres fallback
    /// (`projection_checks_total{source="fallback"}` at Live).
    pub served: u64,
}

/// The check rate offered to a projector starting under checks.
pub const CHECKS_PER_SEC: u64 = 500;

/// [`run_projector`] with Postgres (`DATABASE_URL`) as its fallback and checks of
/// unknown sessions offered at a steady [`CHECKS_PER_SEC`] from the start
/// (a check to a port not yet open is one a load balancer would have sent
/// to another replica): how many the fallback served until Live.
pub fn run_projector_under_checks(config: &KafkaConfig, dir: Option<&Path>, extra: &[&str]) -> (Run, Fallback) {
    // Postgres must be up (`scripts/servers.sh up`): with the fallback
    // unreachable, the start below would fail, not measure.
    let database = revocation_test_support::database_url();
    let live = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let live = live.clone();
        std::thread::spawn(move || {
            let mut offered = 0u64;
            let started = Instant::now();
            while !live.load(std::sync::atomic::Ordering::Relaxed) {
                let sid = uuid::Uuid::new_v4();
                if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", PORT)) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let request = format!("GET /v1/sessions/{sid} HTTP/1.0\r\nHost: localhost\r\n\r\n");
                    if stream.write_all(request.as_bytes()).is_ok() {
                        let _ = stream.read_to_end(&mut Vec::new());
                    }
                }
                offered += 1;
                let due = started + Duration::from_micros(offered * 1_000_000 / CHECKS_PER_SEC);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            offered
        })
    };
    let mut extra = extra.to_vec();
    extra.extend(["--database-url", &database, "--migrate"]);
    let run = run(config, dir, &extra, Some(&live));
    let offered = checker.join().unwrap();
    (run, Fallback { offered, served: run.fallback_served })
}

fn run(
    config: &KafkaConfig,
    dir: Option<&Path>,
    extra: &[&str],
    live_flag: Option<&std::sync::atomic::AtomicBool>,
) -> Run {
    let loopback_before = loopback_bytes();
    let started = Instant::now();
    let mut command = Command::new(binary());
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{PORT}"), "--bootstrap-servers"])
        .arg(&config.bootstrap_servers)
        .args(["--topic", &config.topic]);
    if let Some(dir) = dir {
        command.arg("--snapshot-dir").arg(dir);
    }
    let mut child: Child = command
        .args(std::env::var("BENCH_START_ARGS").unwrap_or_default().split_whitespace())
        .args(extra)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut snapshot_ms = 0;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("snapshot written") {
                snapshot_ms = field(&line, "millis").unwrap_or(0);
            }
            if line.contains("WARN")
                || line.contains("ERROR")
                || line.contains("fetched from a peer")
                || line.contains("caught up")
                || line.contains("warm start")
                || line.contains("snapshot loaded")
            {
                eprintln!("    projector: {line}");
            }
        }
        snapshot_ms
    });
    while !live_at(PORT) {
        assert!(started.elapsed() < Duration::from_secs(600), "not Live after 10 minutes");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("projector exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let live_after = started.elapsed();
    let cpu_s = cpu_seconds(child.id());
    let fallback_served = live_flag.map_or(0, |flag| {
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        fallback_checks(PORT)
    });
    // Let the allocator settle as it would in service: the feed returns
    // what the replay freed at its first round after Live (`kafka::memory`).
    std::thread::sleep(Duration::from_millis(1500));
    let rss_kb = proc_field(child.id(), "status", "VmRSS:");
    // librdkafka reads with recvmsg, which /proc/<pid>/io does not count;
    // the loopback interface does (the broker is on it, and little else).
    let read_bytes = loopback_bytes().saturating_sub(loopback_before);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    Run { live_after, rss_kb, read_bytes, snapshot_ms: log.join().unwrap(), cpu_s, fallback_served }
}

/// `name=value` (tracing's text format) in a log line.
pub fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Bytes through the loopback interface so far (`/proc/net/dev`).
pub fn loopback_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn proc_field(pid: u32, file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process so far (`/proc/<pid>/stat`, in clock
/// ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it are fixed.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The checks the Postgres fallback answered so far, from `/metrics`.
fn fallback_checks(port: u16) -> u64 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with("projection_checks_total{") && l.contains("source=\"fallback\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Whether `GET /health/lag` on `port` answers 200 (Live).
pub fn live_at(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"GET /health/lag HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}
