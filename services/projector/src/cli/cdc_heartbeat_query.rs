//! `projector cdc-heartbeat-query`: the connector's heartbeat SQL for a partition count.

use clap::Args;

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
