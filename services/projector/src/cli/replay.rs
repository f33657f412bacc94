//! `projector replay`: replay the topic once and report.

use clap::Args;
use humantime::Duration as Span;
use revocation_embed::EmbedConfig;

use super::{FormatArg, KafkaArgs, duration};

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
