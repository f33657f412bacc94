//! [`EmbedConfig`]: everything an embedded projection needs, with defaults.

use std::time::Duration;

use revocation_core::LagPolicy;
use revocation_kafka::{KafkaConfig, PeerBootstrap, SourceOptions};
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
    Kafka(revocation_kafka::KafkaConfigError),
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
    /// Peer bootstrap without a snapshot directory to fetch into.
    #[error(
        "booting from a peer needs a snapshot directory (--snapshot-dir): the peer's snapshot is written there, then read as a local one"
    )]
    PeerWithoutSnapshotDir,
    /// Peer bootstrap with no peer.
    #[error("booting from a peer needs at least one peer URL")]
    NoPeer,
    /// The admin token is guessable.
    #[error("{0}")]
    AdminToken(#[from] revocation_http::AdminTokenTooShort),
}

// Written out rather than `#[from]`, which would also make the cause a
// `source` and print it twice in an error chain.
impl From<revocation_kafka::KafkaConfigError> for ConfigError {
    fn from(error: revocation_kafka::KafkaConfigError) -> Self {
        Self::Kafka(error)
    }
}

impl From<revocation_postgres::PgConfigError> for ConfigError {
    fn from(error: revocation_postgres::PgConfigError) -> Self {
        Self::Postgres(error.to_string())
    }
}

/// Configuration of an embedded projection: the Kafka side's own
/// [`KafkaConfig`] and [`SourceOptions`] (held, not mirrored), and what only
/// the embedding adds. Every field has a default (see [`EmbedConfig::new`]
/// and the `DEFAULT_*` constants, which the projector's flags use too); the
/// projector binary maps its flags onto it.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// Projection or Postgres-only. Default: projection.
    pub mode: Mode,
    /// Brokers, topic, sampling, librdkafka options.
    pub kafka: KafkaConfig,
    /// How the topic is read and checks are answered: format, freshness,
    /// barrier, lag policy, lifetime, snapshots. Its `fallback` is filled
    /// from `postgres` when left empty.
    pub source: SourceOptions,
    /// The Postgres fallback (URL, table, timeouts); `None` for no fallback
    /// (Cold answers `Transient`). Default: none.
    pub postgres: Option<PgConfig>,
    /// Apply the embedded migrations at start. Default: false.
    pub migrate: bool,
    /// How often expired sessions are swept from memory.
    /// Default: [`Self::DEFAULT_SWEEP_INTERVAL`].
    pub sweep_interval: Duration,
    /// How long a rebuild may take before it is abandoned.
    /// Default: [`Self::DEFAULT_REBUILD_TIMEOUT`].
    pub rebuild_timeout: Duration,
    /// Boot from a peer: with no snapshot in `source.snapshot`'s directory,
    /// fetch a running replica's snapshot there first (it is then read as a
    /// local one, every check included). Needs `source.snapshot`. Default: none.
    pub peer_bootstrap: Option<PeerBootstrap>,
}

impl EmbedConfig {
    /// Default of [`Self::sweep_interval`].
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
    /// Default of [`Self::rebuild_timeout`].
    pub const DEFAULT_REBUILD_TIMEOUT: Duration = Duration::from_secs(600);

    /// Defaults, reading `topic` from `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            mode: Mode::Projection,
            kafka: KafkaConfig::new(bootstrap_servers, topic),
            source: SourceOptions::default(),
            postgres: None,
            migrate: false,
            sweep_interval: Self::DEFAULT_SWEEP_INTERVAL,
            rebuild_timeout: Self::DEFAULT_REBUILD_TIMEOUT,
            peer_bootstrap: None,
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
        let has_fallback = self.postgres.is_some() || self.source.fallback.is_some();
        let needs_database = [
            (self.mode == Mode::PostgresOnly && self.postgres.is_none(), "mode postgres-only"),
            (self.source.lag_policy == LagPolicy::Fallback && !has_fallback, "lag policy fallback"),
            (self.migrate && self.postgres.is_none(), "migrate"),
        ];
        if let Some((_, option)) = needs_database.iter().find(|(missing, _)| *missing) {
            return Err(ConfigError::NeedsDatabase { option });
        }
        if self.mode == Mode::PostgresOnly {
            return Ok(());
        }
        let freshness = self.source.freshness();
        if freshness.max_staleness < Duration::from_millis(10) || freshness.max_staleness <= self.kafka.sample_interval
        {
            return Err(ConfigError::StalenessTooSmall {
                max_staleness: freshness.max_staleness,
                sample_interval: self.kafka.sample_interval,
            });
        }
        if freshness.recover_below > freshness.max_staleness {
            return Err(ConfigError::RecoverAboveMax {
                recover_below: freshness.recover_below,
                max_staleness: freshness.max_staleness,
            });
        }
        if let Some(peers) = &self.peer_bootstrap {
            if self.source.snapshot.is_none() {
                return Err(ConfigError::PeerWithoutSnapshotDir);
            }
            if peers.peers.is_empty() {
                return Err(ConfigError::NoPeer);
            }
            revocation_http::AdminConfig::check_token(&peers.token)?;
        }
        for (value, option) in [
            (self.source.barrier_timeout, "barrier timeout"),
            (self.sweep_interval, "sweep interval"),
            (self.rebuild_timeout, "rebuild timeout"),
            (self.source.max_session_lifetime.unwrap_or(Duration::MAX), "max session lifetime"),
            (self.source.snapshot.as_ref().map_or(Duration::MAX, |s| s.interval), "snapshot interval"),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero(option));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        EmbedConfig::new("127.0.0.1:9092", "session-events").validate().unwrap();
    }

    #[test]
    fn contradictions_are_named() {
        let mut c = EmbedConfig::new("127.0.0.1:9092", "t");
        c.source.lag_policy = LagPolicy::Fallback;
        assert_eq!(c.validate(), Err(ConfigError::NeedsDatabase { option: "lag policy fallback" }));
        c.source.lag_policy = LagPolicy::Transient;
        c.source.max_staleness = Duration::from_millis(100);
        assert!(matches!(c.validate(), Err(ConfigError::StalenessTooSmall { .. })));
        assert!(c.validate().unwrap_err().to_string().contains("must exceed both 10 ms and the sample interval"));
        c.source.max_staleness = Duration::from_secs(2);
        c.source.recover_below = Some(Duration::from_secs(3));
        assert!(matches!(c.validate(), Err(ConfigError::RecoverAboveMax { .. })));
        c.source.recover_below = None;
        c.sweep_interval = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Zero("sweep interval")));
        c.sweep_interval = Duration::from_secs(1);
        c.mode = Mode::PostgresOnly;
        assert_eq!(c.validate(), Err(ConfigError::NeedsDatabase { option: "mode postgres-only" }));
        c.postgres = Some(PgConfig::new("postgres://u@h/db"));
        c.kafka.topic = String::new();
        c.validate().unwrap();
        let mut peer = EmbedConfig::new("127.0.0.1:9092", "t");
        peer.peer_bootstrap =
            Some(PeerBootstrap::new(vec!["http://peer:8080".into()], "a-long-random-admin-token".into()));
        assert_eq!(peer.validate(), Err(ConfigError::PeerWithoutSnapshotDir));
        peer.source.snapshot = Some(revocation_kafka::SnapshotOptions::new("/var/lib/projector"));
        peer.validate().unwrap();
        peer.peer_bootstrap.as_mut().unwrap().token = "short".into();
        assert!(matches!(peer.validate(), Err(ConfigError::AdminToken(_))));
    }
}
