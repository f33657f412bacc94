//! `projector serve`'s forward-auth group: the endpoint gateways call
//! (docs/gateways.md). Off unless a JWKS file or URL is given.

use std::path::PathBuf;

use axum::http::HeaderName;
use clap::{Args, ValueEnum};
use humantime::Duration as Span;
use revocation_forward_auth::{Algorithm, ForwardAuthConfig, KeySource, NoSession};

use super::duration;

/// The forward-auth endpoint.
#[derive(Debug, Clone, Args)]
pub struct ForwardAuthArgs {
    /// Serve the forward-auth endpoint, verifying tokens with this JWKS file
    /// (re-read when a token names a key it does not hold).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_JWKS_FILE", conflicts_with = "forward_auth_jwks_url")]
    pub forward_auth_jwks_file: Option<PathBuf>,
    /// Serve the forward-auth endpoint, verifying tokens with the JWKS at
    /// this URL (the identity provider's jwks_uri).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_JWKS_URL")]
    pub forward_auth_jwks_url: Option<String>,
    /// The endpoint's path (any method; paths below it too).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_PATH", default_value = ForwardAuthConfig::DEFAULT_PATH)]
    pub forward_auth_path: String,
    /// Accepted token issuers (`iss`), comma-separated. Required unless
    /// --forward-auth-allow-any-issuer.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_ISSUER", value_delimiter = ',')]
    pub forward_auth_issuer: Vec<String>,
    /// Accepted audiences (`aud`), comma-separated. Required unless
    /// --forward-auth-allow-any-audience.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_AUDIENCE", value_delimiter = ',')]
    pub forward_auth_audience: Vec<String>,
    /// Accept tokens of any issuer the key set verifies (unsafe with a key set shared by tenants).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_ALLOW_ANY_ISSUER")]
    pub forward_auth_allow_any_issuer: bool,
    /// Accept tokens issued for any audience (unsafe: tokens for other applications pass).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_ALLOW_ANY_AUDIENCE")]
    pub forward_auth_allow_any_audience: bool,
    /// Accepted signature algorithms, comma-separated (RS256, RS384, RS512,
    /// PS256, PS384, PS512, ES256, ES384, EdDSA).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_ALGORITHMS", value_delimiter = ',', default_value = "RS256,ES256,EdDSA", value_parser = algorithm)]
    pub forward_auth_algorithms: Vec<Algorithm>,
    /// Clock skew allowed on exp and nbf.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_LEEWAY", default_value_t = ForwardAuthConfig::DEFAULT_LEEWAY.into(), value_parser = duration)]
    pub forward_auth_leeway: Span,
    /// The header holding `Bearer <token>`.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_TOKEN_HEADER", default_value = "authorization")]
    pub forward_auth_token_header: HeaderName,
    /// The claim holding the session id.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_SESSION_CLAIM", default_value = "sid")]
    pub forward_auth_session_claim: String,
    /// The claim holding the user id (checked against the user's cutoff with the token's iat).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_USER_CLAIM", default_value = "sub")]
    pub forward_auth_user_claim: String,
    /// A valid token without a session claim: `admit` (no session check; the user's cutoff
    /// still applies) or `refuse` (401).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_NO_SESSION", value_enum, default_value_t = NoSessionArg::Admit)]
    pub forward_auth_no_session: NoSessionArg,
    /// Header naming the verified user to the upstream; empty: none.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_USER_HEADER", default_value = "x-auth-user")]
    pub forward_auth_user_header: String,
    /// Header naming the verified session to the upstream; empty: none.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_SESSION_HEADER", default_value = "x-auth-session")]
    pub forward_auth_session_header: String,
    /// Verified tokens kept until their exp (a repeated token costs a hash lookup); 0: off.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_CACHE_CAPACITY", default_value_t = ForwardAuthConfig::DEFAULT_CACHE_CAPACITY)]
    pub forward_auth_cache_capacity: usize,
    /// How often the JWKS is loaded again.
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_JWKS_REFRESH", default_value_t = ForwardAuthConfig::DEFAULT_JWKS_REFRESH.into(), value_parser = duration)]
    pub forward_auth_jwks_refresh: Span,
    /// Least time between loads caused by tokens naming unknown keys (at least 1s).
    #[arg(long, env = "PROJECTOR_FORWARD_AUTH_JWKS_MIN_REFETCH", default_value_t = ForwardAuthConfig::DEFAULT_JWKS_MIN_REFETCH.into(), value_parser = duration)]
    pub forward_auth_jwks_min_refetch: Span,
}

/// `--forward-auth-no-session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NoSessionArg {
    /// Let it through without a session check.
    Admit,
    /// 401.
    Refuse,
}

fn algorithm(text: &str) -> Result<Algorithm, String> {
    text.trim().parse::<Algorithm>().map_err(|_| format!("{text:?} is not a JWS algorithm (e.g. RS256, ES256, EdDSA)"))
}

fn optional_header(text: &str) -> Result<Option<HeaderName>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    HeaderName::try_from(text).map(Some).map_err(|_| format!("{text:?} is not a header name"))
}

impl ForwardAuthArgs {
    /// The endpoint's config, or `None` when no JWKS is given.
    pub fn config(&self) -> Result<Option<ForwardAuthConfig>, String> {
        let keys = match (&self.forward_auth_jwks_file, &self.forward_auth_jwks_url) {
            (Some(file), _) => KeySource::File(file.clone()),
            (None, Some(url)) => KeySource::Url(url.clone()),
            (None, None) => return Ok(None),
        };
        let mut config = ForwardAuthConfig::new(keys);
        config.path = self.forward_auth_path.clone();
        config.issuers = self.forward_auth_issuer.clone();
        config.audiences = self.forward_auth_audience.clone();
        config.allow_any_issuer = self.forward_auth_allow_any_issuer;
        config.allow_any_audience = self.forward_auth_allow_any_audience;
        config.algorithms = self.forward_auth_algorithms.clone();
        config.leeway = self.forward_auth_leeway.into();
        config.token_header = self.forward_auth_token_header.clone();
        config.session_claim = self.forward_auth_session_claim.clone();
        config.user_claim = self.forward_auth_user_claim.clone();
        config.no_session = match self.forward_auth_no_session {
            NoSessionArg::Admit => NoSession::Admit,
            NoSessionArg::Refuse => NoSession::Refuse,
        };
        config.user_header = optional_header(&self.forward_auth_user_header)?;
        config.session_header = optional_header(&self.forward_auth_session_header)?;
        config.cache_capacity = self.forward_auth_cache_capacity;
        config.jwks_refresh = self.forward_auth_jwks_refresh.into();
        config.jwks_min_refetch = self.forward_auth_jwks_min_refetch.into();
        config.validate().map_err(|e| e.to_string())?;
        Ok(Some(config))
    }
}
