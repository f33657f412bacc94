//! Command line: every option has a flag and an environment variable. The
//! defaults are the libraries' constants (shown by `--help`); a test holds
//! the README's configuration table to them.
//!
//! One file a subcommand's arguments (`serve`, `replay`, `janitor`,
//! `publish`, `create_topic`, `demo`, `cdc_heartbeat_query`, `token`), one a
//! group (`kafka`, `postgres`, `forward_auth`); here, the command itself and the
//! parsers every file uses.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use humantime::Duration as Span;

mod cdc_heartbeat_query;
mod create_topic;
mod demo;
mod forward_auth;
mod janitor;
mod kafka;
mod postgres;
mod publish;
mod replay;
mod serve;
mod token;
mod unknown_env;

pub use cdc_heartbeat_query::CdcHeartbeatQueryArgs;
pub use create_topic::CreateTopicArgs;
pub use demo::DemoArgs;
pub use forward_auth::ForwardAuthArgs;
pub use janitor::JanitorArgs;
pub use kafka::KafkaArgs;
pub use postgres::PgArgs;
pub use publish::{EventKind, PublishArgs};
pub use replay::ReplayArgs;
pub use serve::{FormatArg, ServeArgs};
pub use token::{TokenArgs, TokenCommand};
pub use unknown_env::UnknownSettings;

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
    /// Print a JWKS or a signed token from a private key: for demos and for trying the
    /// forward-auth endpoint.
    Token(TokenArgs),
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
    /// --bootstrap-from without the peers' token.
    #[error("--bootstrap-from needs --bootstrap-token-file (the peers' admin token)")]
    MissingBootstrapToken,
    /// The forward-auth options are unusable.
    #[error("forward-auth: {0}")]
    ForwardAuth(String),
    /// The Postgres options are unusable.
    #[error(transparent)]
    Postgres(#[from] revocation_postgres::PgConfigError),
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
