//! `projector serve`'s arguments, and how they become the embedding's config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, ValueEnum};
use humantime::Duration as Span;
use revocation_core::{CloudEvents, Debezium, EventJson, FreshnessBarrier, FreshnessConfig, RecordFormat};
use revocation_embed::{EmbedConfig, LagPolicy};
use revocation_http::Limits;
use revocation_kafka::{PeerBootstrap, SnapshotOptions};

use revocation_forward_auth::ForwardAuthConfig;

use super::{ArgsError, ForwardAuthArgs, KafkaArgs, PgArgs, duration};

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
    pub source: SourceArgs,
    #[command(flatten)]
    pub forward_auth: ForwardAuthArgs,
    /// Boot from a running replica: with no snapshot in --snapshot-dir, fetch one of these
    /// peers' snapshot there first (comma-separated base URLs, tried in order; a name
    /// resolving to several addresses is tried address by address).
    #[arg(long, env = "PROJECTOR_BOOTSTRAP_FROM", value_delimiter = ',', requires = "bootstrap_token_file")]
    pub bootstrap_from: Vec<String>,
    /// A file holding the peers' admin token.
    #[arg(long, env = "PROJECTOR_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Longest the fetch from peers may take, all of them together (then: a cold start).
    #[arg(long, env = "PROJECTOR_BOOTSTRAP_TIMEOUT", default_value_t = PeerBootstrap::DEFAULT_TIMEOUT.into(), value_parser = duration)]
    pub bootstrap_timeout: Span,
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

    pub fn embed_config(&self) -> Result<EmbedConfig, ArgsError> {
        let mut config = embed_config(&self.kafka, &self.pg, &self.source, self.migrate, self.mode)?;
        if !self.bootstrap_from.is_empty() {
            let path = self.bootstrap_token_file.as_ref().ok_or(ArgsError::MissingBootstrapToken)?;
            let token = read_token(path)?;
            let mut peers = PeerBootstrap::new(self.bootstrap_from.clone(), token);
            peers.timeout = self.bootstrap_timeout.into();
            config.peer_bootstrap = Some(peers);
        }
        Ok(config)
    }

    /// The forward-auth endpoint's config, when a JWKS is given.
    pub fn forward_auth_config(&self) -> Result<Option<ForwardAuthConfig>, ArgsError> {
        self.forward_auth.config().map_err(ArgsError::ForwardAuth)
    }

    /// The admin token: from --admin-token-file when given (trimmed), else
    /// --admin-token.
    pub fn admin_token(&self) -> Result<Option<String>, ArgsError> {
        let Some(path) = &self.admin_token_file else { return Ok(self.admin_token.clone()) };
        read_token(path).map(Some)
    }
}

/// A token from a file (trimmed; an empty file is an error).
fn read_token(path: &std::path::Path) -> Result<String, ArgsError> {
    let text = std::fs::read_to_string(path).map_err(|e| ArgsError::File(path.to_path_buf(), e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ArgsError::EmptyTokenFile(path.to_path_buf()));
    }
    Ok(token.to_owned())
}

pub fn embed_config(
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
