//! Configuration of the Kafka source and publisher.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use thiserror::Error;

/// A configuration the source cannot use; the message names the option.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaConfigError {
    /// A required option is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// An interval is zero or out of its range.
    #[error("{option} is {value:?}; it must be between {min:?} and {max:?}")]
    OutOfRange {
        /// The option.
        option: &'static str,
        /// The value given.
        value: Duration,
        /// Smallest allowed.
        min: Duration,
        /// Largest allowed.
        max: Duration,
    },
    /// A librdkafka option that would break the source's guarantees.
    #[error("librdkafka option {0:?} is managed by the source and cannot be overridden")]
    Reserved(String),
}

/// How to reach the topic, and how often to look at it.
///
/// Its `Debug` output hides the values of secret options (passwords, keys,
/// tokens), so a config can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`. Default: `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// The session-events topic. Default: `session-events`.
    pub topic: String,
    /// How often high watermarks are sampled. Each sample lets freshness
    /// advance, so staleness on a healthy, idle topic stays below about one
    /// interval. Default: 200 ms (librdkafka has no equivalent).
    pub sample_interval: Duration,
    /// Timeout of one watermark query. Default: 1 s.
    pub sample_timeout: Duration,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`,
    /// `fetch.wait.max.ms`, …), applied after our defaults. Properties the
    /// source depends on (`enable.auto.commit`, `enable.partition.eof`,
    /// `enable.auto.offset.store`) are rejected.
    pub librdkafka_options: BTreeMap<String, String>,
}

/// Whether a librdkafka option's value is a secret, never to be shown.
pub fn is_secret_option(key: &str) -> bool {
    const SECRET: [&str; 5] = ["password", "secret", "token", ".pem", "sasl.oauthbearer.config"];
    SECRET.iter().any(|s| key.contains(s))
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .librdkafka_options
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_option(k) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic", &self.topic)
            .field("sample_interval", &self.sample_interval)
            .field("sample_timeout", &self.sample_timeout)
            .field("librdkafka_options", &options)
            .finish()
    }
}

/// librdkafka properties the source sets and depends on.
const RESERVED: [&str; 3] = ["enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof"];

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Self::DEFAULT_BOOTSTRAP_SERVERS.into(),
            topic: Self::DEFAULT_TOPIC.into(),
            sample_interval: Self::DEFAULT_SAMPLE_INTERVAL,
            sample_timeout: Self::DEFAULT_SAMPLE_TIMEOUT,
            librdkafka_options: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Default of [`Self::bootstrap_servers`]: a local broker.
    pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "127.0.0.1:9092";
    /// Default of [`Self::topic`].
    pub const DEFAULT_TOPIC: &str = "session-events";
    /// Default of [`Self::sample_interval`].
    pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
    /// Default of [`Self::sample_timeout`].
    pub const DEFAULT_SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);

    /// Defaults, with these brokers and topic.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self { bootstrap_servers: bootstrap_servers.into(), topic: topic.into(), ..Self::default() }
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(KafkaConfigError::Empty("bootstrap_servers"));
        }
        if self.topic.trim().is_empty() {
            return Err(KafkaConfigError::Empty("topic"));
        }
        let range = |option, value: Duration, min: Duration, max: Duration| {
            if value < min || value > max {
                Err(KafkaConfigError::OutOfRange { option, value, min, max })
            } else {
                Ok(())
            }
        };
        range("sample_interval", self.sample_interval, Duration::from_millis(10), Duration::from_secs(60))?;
        range("sample_timeout", self.sample_timeout, Duration::from_millis(10), Duration::from_secs(60))?;
        if let Some(key) = self.librdkafka_options.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(KafkaConfigError::Reserved(key.clone()));
        }
        Ok(())
    }

    /// The consumer's librdkafka configuration.
    pub(crate) fn consumer(&self, purpose: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            // A group id is required by librdkafka's consumer API; we only
            // assign partitions manually, never join the group or commit.
            .set("group.id", format!("revocation-projection-{purpose}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            // Replay throughput: no 1 s pause (librdkafka's default) when
            // the prefetch queue is full — the feed drains it in well under
            // that, and the pause left it idle most of a replay. Fetches of
            // up to 4 MiB per partition (default 1 MiB): fewer round trips.
            // The prefetch itself is kept small (20k records, 16 MiB): the
            // memory a larger one took during a 10M-session replay stayed
            // resident after it (84 → 60 B/session), for no faster replay.
            .set("queued.min.messages", "20000")
            .set("queued.max.messages.kbytes", "16384")
            .set("fetch.queue.backoff.ms", "10")
            .set("max.partition.fetch.bytes", "4194304")
            .set("fetch.wait.max.ms", "100")
            // Reconnect to a broker that comes back within a second: every
            // second disconnected is a second of 503s once staleness passes
            // its limit, and librdkafka's default backoff grows to 10 s
            // (docs/reliability.md).
            .set("reconnect.backoff.max.ms", "1000")
            .set("client.id", format!("revocation-projection-{purpose}"));
        for (k, v) in &self.librdkafka_options {
            config.set(k, v);
        }
        config
    }

    /// The publisher's librdkafka configuration: idempotent, `acks=all`,
    /// and Kafka's default partitioner (murmur2), so a key's records land
    /// where a Java producer (Debezium, Kafka Streams, …) puts the same key,
    /// not where librdkafka's own default (crc32) would.
    pub(crate) fn producer(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("partitioner", crate::partitioner::JAVA_COMPATIBLE_PARTITIONER)
            .set("client.id", "revocation-projection-publisher");
        for (k, v) in self.librdkafka_options.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())) {
            config.set(k, v);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(KafkaConfig::default().validate(), Ok(()));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut c = KafkaConfig::default();
        for key in ["sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret", "ssl.key.pem"] {
            c.librdkafka_options.insert(key.into(), "hunter2".into());
        }
        c.librdkafka_options.insert("sasl.username".into(), "projector".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("projector") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn bad_options_are_named() {
        let mut c = KafkaConfig { topic: " ".into(), ..KafkaConfig::default() };
        assert_eq!(c.validate().unwrap_err().to_string(), "topic must not be empty");
        c.topic = "t".into();
        c.sample_interval = Duration::ZERO;
        assert!(c.validate().unwrap_err().to_string().starts_with("sample_interval is 0ns"));
        c.sample_interval = Duration::from_millis(200);
        c.librdkafka_options.insert("enable.auto.commit".into(), "true".into());
        assert_eq!(c.validate(), Err(KafkaConfigError::Reserved("enable.auto.commit".into())));
    }
}
