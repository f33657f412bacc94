//! [`ProjectionConfig`]: everything the projection needs, with defaults.

use std::sync::Arc;
use std::time::Duration;

use revocation_core::{EventJson, FreshnessBarrier, FreshnessConfig, LagPolicy, RecordFormat};
use revocation_kafka::{KafkaConfig, SnapshotOptions};
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

/// A configuration that cannot work; the message names the option and what
/// to do.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A Kafka option is wrong.
    #[error("kafka: {0}")]
    Kafka(revocation_kafka::ConfigError),
    /// A Postgres option is wrong.
    #[error("postgres: {0}")]
    Postgres(String),
    /// An option only works with a database, and none is configured.
    #[error("{option} needs a database URL (--database-url / DATABASE_URL)")]
    NeedsDatabase {
        /// The option (`mode postgres-only`, `lag policy fallback`, `migrate`).
        option: &'static str,
    },
    /// `max_staleness` is so small that nothing could stay Live.
    #[error(
        "max staleness {max_staleness:?} must exceed both 10 ms and the sample interval ({sample_interval:?}), or the projection can never be Live"
    )]
    StalenessTooSmall {
        /// The configured bound.
        max_staleness: Duration,
        /// The watermark sampling period it must exceed.
        sample_interval: Duration,
    },
    /// The hysteresis is upside down.
    #[error("recover-below ({recover_below:?}) must not exceed max staleness ({max_staleness:?})")]
    RecoverAboveMax {
        /// The configured recovery threshold.
        recover_below: Duration,
        /// The configured bound.
        max_staleness: Duration,
    },
    /// An interval or timeout is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

// Written out rather than `#[from]`, which would also make the cause a
// `source` and print it twice in an error chain.
impl From<revocation_kafka::ConfigError> for ConfigError {
    fn from(error: revocation_kafka::ConfigError) -> Self {
        Self::Kafka(error)
    }
}

impl From<revocation_postgres::ConfigError> for ConfigError {
    fn from(error: revocation_postgres::ConfigError) -> Self {
        Self::Postgres(error.to_string())
    }
}

/// Configuration of an embedded projection. Every field has a default (see
/// [`ProjectionConfig::new`] and the `DEFAULT_*` constants, which the
/// projector's flags use too); the projector binary maps its flags onto it.
#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    /// Projection or Postgres-only. Default: projection.
    pub mode: Mode,
    /// Brokers, topic, sampling, librdkafka options.
    pub kafka: KafkaConfig,
    /// How the topic's records are read. Default: [`EventJson`], our own
    /// event format.
    pub format: Arc<dyn RecordFormat>,
    /// The Postgres fallback (URL, table, timeouts); `None` for no fallback
    /// (Cold answers `Transient`). Default: none.
    pub postgres: Option<PgConfig>,
    /// Apply the embedded migrations at start. Default: false.
    pub migrate: bool,
    /// Beyond this staleness the projection stops answering.
    /// Default: [`FreshnessConfig::DEFAULT_MAX_STALENESS`].
    pub max_staleness: Duration,
    /// A Lagging projection is Live again at or below this staleness.
    /// Default: half of `max_staleness`.
    pub recover_below: Option<Duration>,
    /// Bound on a read-your-writes wait for an unknown sid.
    /// Default: [`FreshnessBarrier::DEFAULT_TIMEOUT`].
    pub barrier_timeout: Duration,
    /// What to answer while Lagging. Default: `Transient`.
    pub lag_policy: LagPolicy,
    /// How often expired sessions are swept from memory.
    /// Default: [`Self::DEFAULT_SWEEP_INTERVAL`].
    pub sweep_interval: Duration,
    /// Sessions to reserve memory for at start. Default: 0.
    pub expected_sessions: usize,
    /// How long a rebuild may take before it is abandoned.
    /// Default: [`Self::DEFAULT_REBUILD_TIMEOUT`].
    pub rebuild_timeout: Duration,
    /// Caps every session's expiry at its creation plus this, and keeps a
    /// revoked session that long after its revocation (what makes
    /// tombstoning expired sessions safe, `docs/lifecycle.md`). Default: none.
    pub max_session_lifetime: Option<Duration>,
    /// Warm restarts from a snapshot. Default: none.
    pub snapshot: Option<SnapshotOptions>,
    /// Confirm a session still absent after the barrier with Postgres, at
    /// most this many a second (0: never). Default (`None`):
    /// [`Self::DEFAULT_CONFIRM_UNKNOWN_PER_SEC`] when the format is
    /// `debezium` and a database is configured — a row committed before the
    /// check must not be answered revoked because its change is in flight —
    /// else never.
    pub confirm_unknown_per_sec: Option<u32>,
    /// Bound freshness by the source's heartbeats too (the staleness from
    /// the Postgres commit, `docs/cdc.md`). Default (`None`): on with the
    /// `debezium` format, else off.
    pub source_heartbeats: Option<bool>,
}

impl ProjectionConfig {
    /// Default of [`Self::sweep_interval`].
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
    /// Confirmations a second when [`Self::confirm_unknown_per_sec`] is
    /// left to its default under change data capture.
    pub const DEFAULT_CONFIRM_UNKNOWN_PER_SEC: u32 = 100;
    /// Default of [`Self::rebuild_timeout`].
    pub const DEFAULT_REBUILD_TIMEOUT: Duration = Duration::from_secs(600);

    /// Defaults, reading `topic` from `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            mode: Mode::Projection,
            kafka: KafkaConfig::new(bootstrap_servers, topic),
            format: Arc::new(EventJson),
            postgres: None,
            migrate: false,
            max_staleness: FreshnessConfig::DEFAULT_MAX_STALENESS,
            recover_below: None,
            barrier_timeout: FreshnessBarrier::DEFAULT_TIMEOUT,
            lag_policy: LagPolicy::Transient,
            sweep_interval: Self::DEFAULT_SWEEP_INTERVAL,
            expected_sessions: 0,
            rebuild_timeout: Self::DEFAULT_REBUILD_TIMEOUT,
            max_session_lifetime: None,
            snapshot: None,
            confirm_unknown_per_sec: None,
            source_heartbeats: None,
        }
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Projection {
            self.kafka.validate()?;
        }
        if let Some(pg) = &self.postgres {
            pg.validate()?;
        }
        let needs_database = [
            (self.mode == Mode::PostgresOnly, "mode postgres-only"),
            (self.lag_policy == LagPolicy::Fallback, "lag policy fallback"),
            (self.migrate, "migrate"),
        ];
        if self.postgres.is_none()
            && let Some((_, option)) = needs_database.iter().find(|(needed, _)| *needed)
        {
            return Err(ConfigError::NeedsDatabase { option });
        }
        if self.mode == Mode::PostgresOnly {
            return Ok(());
        }
        if self.max_staleness < Duration::from_millis(10) || self.max_staleness <= self.kafka.sample_interval {
            return Err(ConfigError::StalenessTooSmall {
                max_staleness: self.max_staleness,
                sample_interval: self.kafka.sample_interval,
            });
        }
        let freshness = self.freshness();
        if freshness.recover_below > freshness.max_staleness {
            return Err(ConfigError::RecoverAboveMax {
                recover_below: freshness.recover_below,
                max_staleness: freshness.max_staleness,
            });
        }
        for (value, option) in [
            (self.barrier_timeout, "barrier timeout"),
            (self.sweep_interval, "sweep interval"),
            (self.rebuild_timeout, "rebuild timeout"),
            (self.max_session_lifetime.unwrap_or(Duration::MAX), "max session lifetime"),
            (self.snapshot.as_ref().map_or(Duration::MAX, |s| s.interval), "snapshot interval"),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero(option));
            }
        }
        Ok(())
    }

    /// Confirmations of absent sessions a second, if any (see
    /// [`Self::confirm_unknown_per_sec`]).
    pub fn confirm_unknown_rate(&self) -> Option<std::num::NonZeroU32> {
        let auto = self.format.name() == "debezium" && self.postgres.is_some();
        let rate = self.confirm_unknown_per_sec.unwrap_or(if auto { Self::DEFAULT_CONFIRM_UNKNOWN_PER_SEC } else { 0 });
        std::num::NonZeroU32::new(rate)
    }

    /// The freshness thresholds.
    pub fn freshness(&self) -> FreshnessConfig {
        FreshnessConfig {
            max_staleness: self.max_staleness,
            recover_below: self.recover_below.unwrap_or(self.max_staleness / 2),
            source_heartbeats: self.source_heartbeats.unwrap_or(self.format.name() == "debezium"),
        }
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
        assert_eq!(c.validate(), Err(ConfigError::NeedsDatabase { option: "lag policy fallback" }));
        c.lag_policy = LagPolicy::Transient;
        c.max_staleness = Duration::from_millis(100);
        assert!(matches!(c.validate(), Err(ConfigError::StalenessTooSmall { .. })));
        assert!(c.validate().unwrap_err().to_string().contains("must exceed both 10 ms and the sample interval"));
        c.max_staleness = Duration::from_secs(2);
        c.recover_below = Some(Duration::from_secs(3));
        assert!(matches!(c.validate(), Err(ConfigError::RecoverAboveMax { .. })));
        c.recover_below = None;
        c.sweep_interval = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Zero("sweep interval")));
        c.sweep_interval = Duration::from_secs(1);
        c.mode = Mode::PostgresOnly;
        assert_eq!(c.validate(), Err(ConfigError::NeedsDatabase { option: "mode postgres-only" }));
        c.postgres = Some(PgConfig::new("postgres://u@h/db"));
        c.kafka.topic = String::new();
        c.validate().unwrap();
    }
}
