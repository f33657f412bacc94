//! `projector demo`: the end-to-end demonstration.

use clap::Args;

use super::{KafkaArgs, PgArgs};

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
