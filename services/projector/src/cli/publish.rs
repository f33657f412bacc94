//! `projector publish`: one session event onto the topic.

use clap::{Args, ValueEnum};
use humantime::Duration as Span;

use super::{KafkaArgs, duration};

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
