//! `projector create-topic`: the compacted topic, created or checked.

use clap::Args;

use super::KafkaArgs;

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
