//! `projector token`: a JWKS and signed tokens from a private key, for demos
//! and for trying the forward-auth endpoint (production tokens come from
//! the identity provider).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use humantime::Duration as Span;
use revocation_forward_auth::Algorithm;

use super::duration;

/// `projector token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// What to print.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The key every `projector token` command signs or publishes with.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// A PEM private key (e.g. `openssl genpkey -algorithm ed25519 -out key.pem`).
    #[arg(long)]
    pub key: PathBuf,
    /// Its algorithm (RS256, ES256, EdDSA, …).
    #[arg(long, default_value = "EdDSA")]
    pub alg: Algorithm,
    /// Its key id (`kid`).
    #[arg(long, default_value = "k1")]
    pub kid: String,
}

/// `projector token jwks|mint`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Print the JWKS publishing the key's public half.
    Jwks(KeyArgs),
    /// Print a signed token.
    Mint(MintArgs),
}

/// `projector token mint`.
#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// The session id (`sid`); omit for a token without a session.
    #[arg(long)]
    pub sid: Option<String>,
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: Option<String>,
    /// The issuer (`iss`).
    #[arg(long)]
    pub iss: Option<String>,
    /// The audience (`aud`).
    #[arg(long)]
    pub aud: Option<String>,
    /// Lifetime: `exp` = now + this (`iat` = now).
    #[arg(long, default_value = "15m", value_parser = duration)]
    pub ttl: Span,
}
