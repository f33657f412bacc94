//! The arguments of the one-shot subcommands: `replay`, `janitor`,
//! `publish`, `create-topic`, `demo` and `cdc-heartbeat-query` (`serve`'s,
//! and the groups they share, are in `mod.rs`).

use clap::{Args, ValueEnum};
use humantime::Duration as Span;
use revocation_embed::EmbedConfig;
use revocation_kafka::JanitorOptions;

use super::{FormatArg, KafkaArgs, PgArgs, duration};

/// `projector replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Only rebuild and report; serve nothing (the only mode for now, and required, so the intent is explicit).
    #[arg(long, required = true)]
    pub dry_run: bool,
    /// Give up when not caught up after this long.
    #[arg(long, default_value_t = EmbedConfig::DEFAULT_REBUILD_TIMEOUT.into(), value_parser = duration)]
    pub timeout: Span,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Sessions to reserve memory for.
    #[arg(long, default_value_t = 0)]
    pub expected_sessions: usize,
    /// How the topic's records are read.
    #[arg(long, env = "PROJECTOR_FORMAT", value_enum, default_value_t = FormatArg::Events)]
    pub format: FormatArg,
}

/// `projector janitor`.
#[derive(Debug, Clone, Args)]
pub struct JanitorArgs {
    /// The maximum session lifetime every `serve` enforces
    /// (--max-session-lifetime there): required, the janitor's safety rests on it.
    #[arg(long, env = "PROJECTOR_MAX_SESSION_LIFETIME", value_parser = duration)]
    pub max_session_lifetime: Span,
    /// Extra time before a forgettable session is tombstoned (clock differences).
    #[arg(long, env = "PROJECTOR_JANITOR_GRACE", default_value_t = JanitorOptions::DEFAULT_GRACE.into(), value_parser = duration)]
    pub grace: Span,
    /// Count what would be tombstoned; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up when the replay has not caught up after this long.
    #[arg(long, default_value_t = EmbedConfig::DEFAULT_REBUILD_TIMEOUT.into(), value_parser = duration)]
    pub timeout: Span,
    /// How the topic's records are read (as `serve --format`). Under
    /// `debezium`, Postgres is the source of truth and the cleanup is a
    /// DELETE of rows (docs/lifecycle.md); the janitor refuses it.
    #[arg(long, env = "PROJECTOR_FORMAT", value_enum, default_value_t = FormatArg::Events)]
    pub format: FormatArg,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `projector publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The event.
    #[arg(value_enum)]
    pub kind: EventKind,
    /// The session id.
    #[arg(long)]
    pub sid: String,
    /// The owner (created only).
    #[arg(long, default_value = "demo-user")]
    pub user_id: String,
    /// The session expires this long after now (created only; default: never).
    #[arg(long, value_parser = duration)]
    pub expires_in: Option<Span>,
    /// Why (revoked only).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `projector publish <kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKind {
    /// session.created
    Created,
    /// session.revoked
    Revoked,
    /// A null value: forget the session (only for expired sessions).
    Tombstone,
}

/// `projector create-topic`.
#[derive(Debug, Clone, Args)]
pub struct CreateTopicArgs {
    /// Partitions.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Replication factor.
    #[arg(long, default_value_t = 1)]
    pub replication: i32,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `projector demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Extra random live sessions to publish, for volume.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub pg: PgArgs,
}

/// `projector cdc-heartbeat-query`.
#[derive(Debug, Clone, Args)]
pub struct CdcHeartbeatQueryArgs {
    /// Partitions of the change-event topic (as `topic.creation.default.partitions`, or the
    /// topic's count after growing it).
    #[arg(long)]
    pub partitions: u32,
    /// The sessions table, schema-qualified.
    #[arg(long, default_value = "public.user_sessions")]
    pub table: String,
}
