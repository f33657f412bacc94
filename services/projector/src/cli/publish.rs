//! `projector publish`: one session event, or one user cutoff, onto the topic.

use clap::{Args, ValueEnum};
use humantime::Duration as Span;

use super::{KafkaArgs, duration};

/// `projector publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The event.
    #[arg(value_enum)]
    pub kind: EventKind,
    /// The session id (every kind but revoked-before).
    #[arg(long)]
    pub sid: Option<String>,
    /// The owner (created), or the user logged out everywhere (revoked-before).
    #[arg(long, default_value = "demo-user")]
    pub user_id: String,
    /// The session expires this long after now (created only; default: never).
    #[arg(long, value_parser = duration)]
    pub expires_in: Option<Span>,
    /// Why (revoked and revoked-before).
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
    /// user.revoked_before: log --user-id out everywhere (every session it
    /// created and every token issued to it before now).
    RevokedBefore,
}
