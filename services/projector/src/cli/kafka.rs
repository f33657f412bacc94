//! The Kafka connection flags every subcommand that reads or writes the topic shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use humantime::Duration as Span;
use revocation_embed::KafkaConfig;

use super::{ArgsError, duration, key_value};

/// Where the events are.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "PROJECTOR_BOOTSTRAP_SERVERS", default_value_t = KafkaConfig::DEFAULT_BOOTSTRAP_SERVERS.to_owned())]
    pub bootstrap_servers: String,
    /// The session-events topic.
    #[arg(long, env = "PROJECTOR_TOPIC", default_value_t = KafkaConfig::DEFAULT_TOPIC.to_owned())]
    pub topic: String,
    /// How often high watermarks are sampled (bounds staleness on a healthy topic).
    #[arg(long, env = "PROJECTOR_SAMPLE_INTERVAL", default_value_t = KafkaConfig::DEFAULT_SAMPLE_INTERVAL.into(), value_parser = duration)]
    pub sample_interval: Span,
    /// Timeout of one watermark query.
    #[arg(long, env = "PROJECTOR_SAMPLE_TIMEOUT", default_value_t = KafkaConfig::DEFAULT_SAMPLE_TIMEOUT.into(), value_parser = duration)]
    pub sample_timeout: Span,
    /// librdkafka property passed through, as KEY=VALUE (repeatable; e.g.
    /// -X security.protocol=SASL_SSL). In the environment: comma-separated.
    /// (Parsed after clap, so a bad one is reported by position, never
    /// shown: it may hold a password.)
    #[arg(
        short = 'X',
        long = "librdkafka",
        env = "PROJECTOR_LIBRDKAFKA",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub librdkafka: Vec<String>,
    /// A file of librdkafka properties, KEY=VALUE per line (# starts a
    /// comment): the place for secrets (sasl.password, …), which a flag
    /// would show to anyone running `ps`. -X options override it.
    #[arg(long, env = "PROJECTOR_LIBRDKAFKA_FILE")]
    pub librdkafka_file: Option<PathBuf>,
}

impl KafkaArgs {
    pub fn config(&self) -> Result<KafkaConfig, ArgsError> {
        let mut config = KafkaConfig::new(self.bootstrap_servers.clone(), self.topic.clone());
        config.sample_interval = self.sample_interval.into();
        config.sample_timeout = self.sample_timeout.into();
        if let Some(path) = &self.librdkafka_file {
            config.librdkafka_options = properties(path)?;
        }
        for (n, option) in self.librdkafka.iter().enumerate() {
            let (key, value) = key_value(option).map_err(|_| ArgsError::NotKeyValueOption(n + 1))?;
            config.librdkafka_options.insert(key, value);
        }
        Ok(config)
    }
}

/// Reads a properties file: `KEY=VALUE` lines; blank lines and lines
/// starting with `#` are skipped. Errors name the file and line, never a value.
fn properties(path: &Path) -> Result<BTreeMap<String, String>, ArgsError> {
    let text = std::fs::read_to_string(path).map_err(|e| ArgsError::File(path.to_owned(), e))?;
    let mut options = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = key_value(line).map_err(|_| ArgsError::NotKeyValue(path.to_owned(), n + 1))?;
        options.insert(key, value.trim().to_owned());
    }
    Ok(options)
}
