//! `projector janitor`: tombstones for sessions that can be forgotten.

use clap::Args;
use humantime::Duration as Span;
use revocation_embed::EmbedConfig;
use revocation_kafka::JanitorOptions;

use super::{FormatArg, KafkaArgs, duration};

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
