//! [`ProjectionConfig`]: everything the projection needs, with defaults.

use std::time::Duration;

use revocation_core::{FreshnessConfig, LagPolicy};
use revocation_kafka::KafkaConfig;
use revocation_postgres::PgConfig;
use thiserror::Error;

/// Where answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The Kafka-fed projection, with the Postgres fallback when configured.
    #[default]
    Projection,
    /// Postgres on every check (today's behaviour): the baseline, and a step
    /// for deployments switching over gradually. Kafka is not used.
    PostgresOnly,
}

/// A configuration that cannot work; the message names the option.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A Kafka option is wrong.
    #[error("kafka: {0}")]
    Kafka(#[from] revocation_kafka::ConfigError),
    /// A Postgres option is wrong.
    #[error("postgres: {0}")]
    Postgres(#[from] revocation_postgres::ConfigError),
    /// An option contradicts another.
    #[error("{0}")]
    Inconsistent(String),
}

/// Configuration of an embedded projection. Every field has a default (see
/// [`ProjectionConfig::new`]); the projector binary maps its flags onto it.
#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    /// Projection or Postgres-only. Default: projection.
    pub mode: Mode,
    /// Brokers, topic, sampling, librdkafka options.
    pub kafka: KafkaConfig,
    /// The Postgres fallback's URL; `None` for no fallback (Cold answers
    /// `Transient`). Default: none.
    pub postgres_url: Option<String>,
    /// Schema of the sessions table. Default: `public`.
    pub postgres_schema: String,
    /// Name of the sessions table. Default: `user_sessions`.
    pub postgres_table: String,
    /// Pool acquire timeout and statement timeout of a fallback check.
    /// Default: 250 ms each.
    pub postgres_timeout: Duration,
    /// Apply the embedded migrations at start. Default: false.
    pub migrate: bool,
    /// Beyond this staleness the projection stops answering. Default: 2 s.
    pub max_staleness: Duration,
    /// A Lagging projection is Live again at or below this staleness.
    /// Default: half of `max_staleness`.
    pub recover_below: Option<Duration>,
    /// Bound on a read-your-writes wait for an unknown sid. Default: 250 ms.
    pub barrier_timeout: Duration,
    /// What to answer while Lagging. Default: `Transient`.
    pub lag_policy: LagPolicy,
    /// How often expired sessions are swept from memory. Default: 60 s.
    pub sweep_interval: Duration,
    /// Sessions to reserve memory for at start. Default: 0.
    pub expected_sessions: usize,
    /// How long a rebuild may take before it is abandoned. Default: 10 min.
    pub rebuild_timeout: Duration,
}

impl ProjectionConfig {
    /// Defaults, reading `topic` from `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            mode: Mode::Projection,
            kafka: KafkaConfig::new(bootstrap_servers, topic),
            postgres_url: None,
            postgres_schema: "public".into(),
            postgres_table: "user_sessions".into(),
            postgres_timeout: Duration::from_millis(250),
            migrate: false,
            max_staleness: Duration::from_secs(2),
            recover_below: None,
            barrier_timeout: Duration::from_millis(250),
            lag_policy: LagPolicy::Transient,
            sweep_interval: Duration::from_secs(60),
            expected_sessions: 0,
            rebuild_timeout: Duration::from_secs(600),
        }
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Projection {
            self.kafka.validate()?;
        }
        self.postgres()?;
        if self.mode == Mode::PostgresOnly && self.postgres_url.is_none() {
            return Err(ConfigError::Inconsistent("mode postgres-only needs a database URL".into()));
        }
        if self.lag_policy == LagPolicy::Fallback && self.postgres_url.is_none() {
            return Err(ConfigError::Inconsistent("lag policy fallback needs a database URL to fall back to".into()));
        }
        if self.migrate && self.postgres_url.is_none() {
            return Err(ConfigError::Inconsistent("migrate needs a database URL".into()));
        }
        let freshness = self.freshness();
        if self.max_staleness < Duration::from_millis(10) {
            return Err(ConfigError::Inconsistent(format!(
                "max staleness {:?} is below 10 ms: nothing could stay Live",
                self.max_staleness
            )));
        }
        if self.max_staleness <= self.kafka.sample_interval {
            return Err(ConfigError::Inconsistent(format!(
                "max staleness ({:?}) must exceed the sample interval ({:?}), or the projection can never be Live",
                self.max_staleness, self.kafka.sample_interval
            )));
        }
        if freshness.recover_below > freshness.max_staleness {
            return Err(ConfigError::Inconsistent("recover-below must not exceed max staleness".into()));
        }
        if self.barrier_timeout.is_zero() || self.sweep_interval.is_zero() || self.rebuild_timeout.is_zero() {
            return Err(ConfigError::Inconsistent(
                "barrier timeout, sweep interval and rebuild timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    /// The freshness thresholds.
    pub fn freshness(&self) -> FreshnessConfig {
        FreshnessConfig {
            max_staleness: self.max_staleness,
            recover_below: self.recover_below.unwrap_or(self.max_staleness / 2),
        }
    }

    /// The Postgres adapter's configuration, if a URL is set.
    pub fn postgres(&self) -> Result<Option<PgConfig>, ConfigError> {
        let Some(url) = &self.postgres_url else { return Ok(None) };
        let mut config = PgConfig::new(url.clone()).schema(&self.postgres_schema)?.table(&self.postgres_table)?;
        config.acquire_timeout = self.postgres_timeout;
        config.statement_timeout = self.postgres_timeout;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ProjectionConfig::new("127.0.0.1:9092", "session-events").validate().unwrap();
    }

    #[test]
    fn contradictions_are_named() {
        let mut c = ProjectionConfig::new("127.0.0.1:9092", "t");
        c.lag_policy = LagPolicy::Fallback;
        assert!(c.validate().unwrap_err().to_string().contains("lag policy fallback needs a database URL"));
        c.lag_policy = LagPolicy::Transient;
        c.max_staleness = Duration::from_millis(100);
        assert!(c.validate().unwrap_err().to_string().contains("must exceed the sample interval"));
        c.max_staleness = Duration::from_secs(2);
        c.postgres_url = Some("postgres://u@h/db".into());
        c.postgres_schema = "Bad-Name".into();
        assert!(c.validate().unwrap_err().to_string().starts_with("postgres: schema \"Bad-Name\""));
        c.postgres_schema = "public".into();
        c.mode = Mode::PostgresOnly;
        c.kafka.topic = String::new();
        c.validate().unwrap();
    }
}
