//! Command line: every option has a flag and an environment variable. The
//! defaults are the libraries' constants (shown by `--help`); a test holds
//! the README's configuration table to them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use humantime::Duration as Span;
use revocation_core::{CloudEvents, Debezium, EventJson, FreshnessBarrier, FreshnessConfig, RecordFormat};
use revocation_embed::{EmbedConfig, KafkaConfig, LagPolicy, PgConfig};
use revocation_http::Limits;
use revocation_kafka::SnapshotOptions;

mod tools;
pub use tools::{CdcHeartbeatQueryArgs, CreateTopicArgs, DemoArgs, EventKind, JanitorArgs, PublishArgs, ReplayArgs};

/// The session projection: Kafka in, "is this session live?" out.
#[derive(Debug, Parser)]
#[command(name = "projector", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "PROJECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the projection and serve the HTTP API (the default).
    Serve(Box<ServeArgs>),
    /// Publish one session event (for demos and manual revocation).
    Publish(PublishArgs),
    /// Rebuild the projection from the topic, print counts, rate and time; serve nothing.
    Replay(ReplayArgs),
    /// Apply the database migrations (the user_sessions table) and exit.
    Migrate(PgArgs),
    /// Create the session-events topic (compacted) if it does not exist.
    CreateTopic(CreateTopicArgs),
    /// Publish a demo stream (and mirror it into Postgres): live, revoked and expired sessions.
    Demo(DemoArgs),
    /// Tombstone sessions that can be forgotten (expired, or revoked a lifetime ago), so the
    /// compacted topic shrinks to the sessions still needed. One-shot, for a cron job.
    Janitor(JanitorArgs),
    /// Print the Debezium connector's heartbeat.action.query for a change-event topic of N
    /// partitions: one heartbeat row per partition, upserted, so every partition proves the
    /// Postgres commit it has reached (docs/cdc.md).
    CdcHeartbeatQuery(CdcHeartbeatQueryArgs),
}

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

/// A flag whose value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// A file named by a flag cannot be read.
    #[error("cannot read {0}")]
    File(PathBuf, #[source] std::io::Error),
    /// A line of a properties file is not KEY=VALUE.
    #[error("{0}, line {1}: not KEY=VALUE")]
    NotKeyValue(PathBuf, usize),
    /// A -X option (or an item of PROJECTOR_LIBRDKAFKA) is not KEY=VALUE.
    #[error(
        "librdkafka option number {0} (-X or PROJECTOR_LIBRDKAFKA) is not KEY=VALUE (its text is not shown: it may hold a secret)"
    )]
    NotKeyValueOption(usize),
    /// The admin token file is empty.
    #[error("{0} is empty; it should hold the admin token")]
    EmptyTokenFile(PathBuf),
    /// The database URL file is empty.
    #[error("{0} is empty; it should hold the database URL")]
    EmptyUrlFile(PathBuf),
    /// The Postgres options are unusable.
    #[error(transparent)]
    Postgres(#[from] revocation_postgres::PgConfigError),
}

/// Where the sessions table is.
#[derive(Debug, Clone, Args)]
pub struct PgArgs {
    /// Postgres URL of the sessions table (the cold-start fallback). Without
    /// it, a cold projection answers 503.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the Postgres URL (its password would show in `ps` as a
    /// flag). Takes precedence over --database-url.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Schema of the sessions table.
    #[arg(long, env = "PROJECTOR_PG_SCHEMA", default_value_t = PgConfig::DEFAULT_SCHEMA.to_owned())]
    pub pg_schema: String,
    /// Name of the sessions table.
    #[arg(long, env = "PROJECTOR_PG_TABLE", default_value_t = PgConfig::DEFAULT_TABLE.to_owned())]
    pub pg_table: String,
    /// Pool-acquire and statement timeout of one fallback check.
    #[arg(long, env = "PROJECTOR_PG_TIMEOUT", default_value_t = PgConfig::DEFAULT_TIMEOUT.into(), value_parser = duration)]
    pub pg_timeout: Span,
}

impl PgArgs {
    /// The Postgres adapter's configuration, when a database URL is given:
    /// the one place these flags become a [`PgConfig`].
    pub fn config(&self) -> Result<Option<PgConfig>, ArgsError> {
        let url = match (&self.database_url, &self.database_url_file) {
            (_, Some(path)) => {
                let url = std::fs::read_to_string(path).map_err(|e| ArgsError::File(path.clone(), e))?;
                let url = url.trim();
                if url.is_empty() {
                    return Err(ArgsError::EmptyUrlFile(path.clone()));
                }
                url.to_owned()
            }
            (Some(url), None) => url.clone(),
            (None, None) => return Ok(None),
        };
        let config = PgConfig::new(url).schema(&self.pg_schema)?.table(&self.pg_table)?;
        Ok(Some(config.timeout(self.pg_timeout.into())))
    }
}

/// Freshness and routing of checks.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Beyond this staleness the projection stops answering from memory.
    #[arg(long, env = "PROJECTOR_MAX_STALENESS", default_value_t = FreshnessConfig::DEFAULT_MAX_STALENESS.into(), value_parser = duration)]
    pub max_staleness: Span,
    /// A lagging projection is live again at or below this staleness (default: half of max-staleness).
    #[arg(long, env = "PROJECTOR_RECOVER_BELOW", value_parser = duration)]
    pub recover_below: Option<Span>,
    /// Longest wait, for an unknown session, until the projection has read
    /// everything acknowledged before the check (read-your-writes).
    #[arg(long, env = "PROJECTOR_BARRIER_TIMEOUT", default_value_t = FreshnessBarrier::DEFAULT_TIMEOUT.into(), value_parser = duration)]
    pub barrier_timeout: Span,
    /// What to answer while lagging: `transient` (503) or `fallback` (ask Postgres).
    #[arg(long, env = "PROJECTOR_LAG_POLICY", value_enum, default_value_t = LagPolicyArg::Transient)]
    pub lag_policy: LagPolicyArg,
    /// How often expired sessions are removed from memory.
    #[arg(long, env = "PROJECTOR_SWEEP_INTERVAL", default_value_t = EmbedConfig::DEFAULT_SWEEP_INTERVAL.into(), value_parser = duration)]
    pub sweep_interval: Span,
    /// Sessions to reserve memory for at start (avoids rehashing during replay).
    #[arg(long, env = "PROJECTOR_EXPECTED_SESSIONS", default_value_t = 0)]
    pub expected_sessions: usize,
    /// How the topic's records are read: `events` (ours), `debezium` (change events of
    /// user_sessions) or `cloudevents` (ours in CloudEvents).
    #[arg(long, env = "PROJECTOR_FORMAT", value_enum, default_value_t = FormatArg::Events)]
    pub format: FormatArg,
    /// Ask Postgres about a session still unknown after the barrier, at most
    /// this many a second (past it: 503); 0 turns it off. Default: 100 with
    /// `--format debezium` and a database, else off.
    #[arg(long, env = "PROJECTOR_CONFIRM_UNKNOWN_PER_SEC")]
    pub confirm_unknown_per_sec: Option<u32>,
    /// Bound freshness by the source's heartbeat rows too (the staleness from
    /// the Postgres commit; docs/cdc.md). Default: true with `--format
    /// debezium`, else false.
    #[arg(long, env = "PROJECTOR_SOURCE_HEARTBEATS")]
    pub source_heartbeats: Option<bool>,
    /// Caps every session's expiry at its created_at plus this, and keeps a
    /// revoked session that long after its revocation; needed by `janitor`
    /// (use the same value). Default: no cap.
    #[arg(long, env = "PROJECTOR_MAX_SESSION_LIFETIME", value_parser = duration)]
    pub max_session_lifetime: Option<Span>,
    /// Directory for the warm-restart snapshot (`<topic>.snapshot`): written
    /// every --snapshot-interval and at shutdown, read at start. Default: none.
    #[arg(long, env = "PROJECTOR_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// How often the snapshot is written (with --snapshot-dir).
    #[arg(long, env = "PROJECTOR_SNAPSHOT_INTERVAL", default_value_t = SnapshotOptions::DEFAULT_INTERVAL.into(), value_parser = duration)]
    pub snapshot_interval: Span,
}

/// `--format`: how the topic's records are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Our session events (docs/events.md).
    Events,
    /// Debezium change events of the user_sessions table (JSON converter, with or without schemas).
    Debezium,
    /// Our session events in CloudEvents (Kafka binding, binary or structured mode).
    Cloudevents,
}

impl FormatArg {
    /// The record format it names.
    pub fn format(self) -> Arc<dyn RecordFormat> {
        match self {
            FormatArg::Events => Arc::new(EventJson),
            FormatArg::Debezium => Arc::new(Debezium),
            FormatArg::Cloudevents => Arc::new(CloudEvents),
        }
    }
}

/// `--lag-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LagPolicyArg {
    /// Fail closed: 503.
    Transient,
    /// Ask Postgres.
    Fallback,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// The Kafka-fed projection (Postgres only as fallback).
    Projection,
    /// Every check from Postgres (today's behaviour; the baseline).
    PostgresOnly,
}

/// `projector serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "PROJECTOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where answers come from.
    #[arg(long, env = "PROJECTOR_MODE", value_enum, default_value_t = ModeArg::Projection)]
    pub mode: ModeArg,
    /// Apply the database migrations at start.
    #[arg(long, env = "PROJECTOR_MIGRATE")]
    pub migrate: bool,
    /// Enables POST /admin/rebuild, guarded by this bearer token. Off when unset.
    #[arg(long, env = "PROJECTOR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the admin token (a flag's value shows in `ps`). Takes
    /// precedence over --admin-token.
    #[arg(long, env = "PROJECTOR_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Requests taking longer are answered 503.
    #[arg(long, env = "PROJECTOR_REQUEST_TIMEOUT", default_value_t = Limits::default().request_timeout.into(), value_parser = duration)]
    pub request_timeout: Span,
    /// Requests in flight at once; more are shed with 503.
    #[arg(long, env = "PROJECTOR_MAX_IN_FLIGHT", default_value_t = Limits::default().max_in_flight)]
    pub max_in_flight: usize,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub pg: PgArgs,
    #[command(flatten)]
    pub projection: SourceArgs,
}

impl ServeArgs {
    /// The defaults, as if `projector serve` were run with no flags (but the environment).
    pub fn from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["projector"]).serve
    }

    pub fn projection_config(&self) -> Result<EmbedConfig, ArgsError> {
        projection_config(&self.kafka, &self.pg, &self.projection, self.migrate, self.mode)
    }

    /// The admin token: from --admin-token-file when given (trimmed), else
    /// --admin-token.
    pub fn admin_token(&self) -> Result<Option<String>, ArgsError> {
        let Some(path) = &self.admin_token_file else { return Ok(self.admin_token.clone()) };
        let text = std::fs::read_to_string(path).map_err(|e| ArgsError::File(path.clone(), e))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ArgsError::EmptyTokenFile(path.clone()));
        }
        Ok(Some(token.to_owned()))
    }
}

pub fn projection_config(
    kafka: &KafkaArgs,
    pg: &PgArgs,
    p: &SourceArgs,
    migrate: bool,
    mode: ModeArg,
) -> Result<EmbedConfig, ArgsError> {
    let mut config = EmbedConfig::new(kafka.bootstrap_servers.clone(), kafka.topic.clone());
    config.kafka = kafka.config()?;
    config.mode = match mode {
        ModeArg::Projection => revocation_embed::Mode::Projection,
        ModeArg::PostgresOnly => revocation_embed::Mode::PostgresOnly,
    };
    config.postgres = pg.config()?;
    config.migrate = migrate;
    let source = &mut config.source;
    source.max_staleness = p.max_staleness.into();
    source.recover_below = p.recover_below.map(Into::into);
    source.barrier_timeout = p.barrier_timeout.into();
    source.lag_policy = match p.lag_policy {
        LagPolicyArg::Transient => LagPolicy::Transient,
        LagPolicyArg::Fallback => LagPolicy::Fallback,
    };
    source.expected_sessions = p.expected_sessions;
    source.format = p.format.format();
    source.confirm_unknown_per_sec = p.confirm_unknown_per_sec;
    source.source_heartbeats = p.source_heartbeats;
    source.max_session_lifetime = p.max_session_lifetime.map(Into::into);
    source.snapshot =
        p.snapshot_dir.as_ref().map(|dir| SnapshotOptions { dir: dir.clone(), interval: p.snapshot_interval.into() });
    config.sweep_interval = p.sweep_interval.into();
    Ok(config)
}

fn duration(text: &str) -> Result<Span, String> {
    text.parse::<Span>().map_err(|e| format!("{e} (write durations like 250ms, 2s, 5m)"))
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests;
