//! Forward-auth for gateways: the endpoint nginx `auth_request`, Caddy
//! `forward_auth`, Traefik ForwardAuth and Envoy's ext_authz (Istio's
//! `CUSTOM` action) call before proxying a request. It verifies the bearer
//! JWT against a JWKS, checks the token's session and its user's cutoff
//! through the ports, and answers **2xx** (pass, with the verified user and
//! session in headers for the upstream), **401** (no, invalid or expired
//! token; revoked session; user logged out everywhere since the token was
//! issued) or **503** (not provable now: fail closed).
//!
//! # Layout
//!
//! - `config`: [`ForwardAuthConfig`], [`KeySource`], [`NoSession`].
//! - `keys`: the JWKS from a file or URL, refetched on an unknown `kid`
//!   (rate-bounded) and periodically; swapped whole.
//! - `verify`: signature, `exp`/`nbf` with leeway, `iss`/`aud`; the claims
//!   read into a [`VerifiedToken`].
//! - `cache`: verified tokens by SHA-256 until their `exp`, bounded.
//! - `counts`: [`ForwardAuthCounts`], exported as `forward_auth_*` metrics.
//! - `decision`: [`ForwardAuth::decide`]: token → session → user cutoff.
//! - `mint`: [`SigningKey`]: a JWKS and tokens for demos and tests.
//! - `route`: [`ForwardAuth::router`] and the decision → status mapping.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use revocation_core::{FreshnessConfig, ProjectedLiveness, Projection};
//! use revocation_forward_auth::{ForwardAuth, ForwardAuthConfig, KeySource};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let projection = Arc::new(Projection::new(FreshnessConfig::default()));
//! let liveness = Arc::new(ProjectedLiveness::builder(projection).build());
//! let mut config = ForwardAuthConfig::new(KeySource::File("jwks.json".into()));
//! config.issuers = vec!["https://id.example.com".into()];
//! config.audiences = vec!["api".into()];
//! let auth = ForwardAuth::start(config, liveness.clone(), Some(liveness)).await?;
//! let router: axum::Router = auth.router(); // GET /v1/forward-auth
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod cache;
mod config;
mod counts;
mod decision;
mod keys;
mod mint;
mod route;
mod verify;

pub use config::{ForwardAuthConfig, ForwardAuthConfigError, KeySource, NoSession};
pub use counts::ForwardAuthCounts;
pub use decision::{Decision, ForwardAuth, ForwardAuthStartError, Refusal};
pub use jsonwebtoken::Algorithm;
pub use keys::{KeyError, LoadError};
pub use mint::{MintError, SigningKey, jwks};
pub use verify::VerifiedToken;
