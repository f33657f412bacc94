//! What the forward-auth endpoint is told: where the keys are, what a valid
//! token is, which claims carry the session and the user, and what the
//! upstream is told.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use jsonwebtoken::Algorithm;
use thiserror::Error;

/// Where the verification keys (a JSON Web Key Set) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS file, re-read when a token names a key it does not hold.
    File(PathBuf),
    /// A JWKS URL (the identity provider's `jwks_uri`), fetched at start,
    /// every [`ForwardAuthConfig::jwks_refresh`], and when a token names an
    /// unknown key (at most once a [`ForwardAuthConfig::jwks_min_refetch`]).
    Url(String),
}

/// What to do with a valid token that carries no session claim (machine
/// credentials, tokens of another issuer's flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoSession {
    /// Let it through without a session check (the seed verifier's rule:
    /// a token not bound to a session has no row to look up). Its user's
    /// cutoff still applies.
    #[default]
    Admit,
    /// Refuse it with 401.
    Refuse,
}

/// The forward-auth endpoint's configuration. [`ForwardAuthConfig::new`]
/// gives the defaults; set what differs.
///
/// ```
/// use revocation_forward_auth::{ForwardAuthConfig, KeySource};
///
/// let mut config = ForwardAuthConfig::new(KeySource::Url("https://id.example.com/.well-known/jwks.json".into()));
/// config.issuers = vec!["https://id.example.com".into()];
/// config.audiences = vec!["api".into()];
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ForwardAuthConfig {
    /// The route gateways call; any method, any path below it (Envoy's
    /// ext_authz appends the original path). Default `/v1/forward-auth`.
    pub path: String,
    /// The request header holding `Bearer <token>`. Default `authorization`.
    pub token_header: HeaderName,
    /// The verification keys.
    pub keys: KeySource,
    /// Signature algorithms accepted. Default RS256, ES256, EdDSA. HMAC
    /// algorithms are refused: a JWKS is public, so a secret in it is not one.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`. Default 30 s.
    pub leeway: Duration,
    /// Accepted `iss` values; a token must carry one of them. Empty is
    /// refused unless `allow_any_issuer`: a key set shared by many issuers'
    /// tenants (a cloud IdP's) would admit every one of them.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; a token must carry one of them. Empty is
    /// refused unless `allow_any_audience`: a token issued for another
    /// application would pass.
    pub audiences: Vec<String>,
    /// Accept any `iss` (with `issuers` empty). Default false.
    pub allow_any_issuer: bool,
    /// Accept any `aud` (with `audiences` empty). Default false.
    pub allow_any_audience: bool,
    /// The claim holding the session id. Default `sid`.
    pub session_claim: String,
    /// The claim holding the user id, checked against the user's cutoff
    /// (log out everywhere) with the token's `iat`. Default `sub`.
    pub user_claim: String,
    /// A valid token without a session claim. Default [`NoSession::Admit`].
    pub no_session: NoSession,
    /// Header carrying the verified user to the upstream. Default `x-auth-user`.
    pub user_header: Option<HeaderName>,
    /// Header carrying the verified session to the upstream. Default `x-auth-session`.
    pub session_header: Option<HeaderName>,
    /// Verified tokens whose claims are kept (until each one's `exp`), so a
    /// repeated token costs a hash lookup, not a signature check. Default
    /// 100 000 (about 30 MB at most); 0 turns the cache off.
    pub cache_capacity: usize,
    /// How often a JWKS URL is fetched again. Default 5 min.
    pub jwks_refresh: Duration,
    /// Least time between two fetches caused by tokens naming unknown keys
    /// (a flood of forged `kid`s must not become a flood of fetches). Default
    /// 10 s; at least [`Self::MIN_JWKS_REFETCH`].
    pub jwks_min_refetch: Duration,
    /// Longest a JWKS fetch may take. Default 5 s.
    pub jwks_timeout: Duration,
}

impl ForwardAuthConfig {
    /// The default route.
    pub const DEFAULT_PATH: &'static str = "/v1/forward-auth";
    /// The default leeway on `exp` and `nbf`.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// The default number of verified tokens cached.
    pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
    /// The default JWKS refresh interval.
    pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
    /// The default least time between fetches caused by unknown keys.
    pub const DEFAULT_JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
    /// The least `jwks_min_refetch` accepted.
    pub const MIN_JWKS_REFETCH: Duration = Duration::from_secs(1);
    /// The projector's other routes: the endpoint may not sit on or above
    /// them (a gateway prefixing paths would turn a session check into an
    /// authorization).
    pub const RESERVED_PATHS: [&'static str; 7] =
        ["/v1/sessions", "/v1/users", "/health", "/livez", "/readyz", "/metrics", "/admin"];

    /// The defaults, with keys from `keys`.
    pub fn new(keys: KeySource) -> Self {
        Self {
            path: Self::DEFAULT_PATH.to_owned(),
            token_header: axum::http::header::AUTHORIZATION,
            keys,
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: Self::DEFAULT_LEEWAY,
            issuers: Vec::new(),
            audiences: Vec::new(),
            allow_any_issuer: false,
            allow_any_audience: false,
            session_claim: "sid".to_owned(),
            user_claim: "sub".to_owned(),
            no_session: NoSession::Admit,
            user_header: Some(HeaderName::from_static("x-auth-user")),
            session_header: Some(HeaderName::from_static("x-auth-session")),
            cache_capacity: Self::DEFAULT_CACHE_CAPACITY,
            jwks_refresh: Self::DEFAULT_JWKS_REFRESH,
            jwks_min_refetch: Self::DEFAULT_JWKS_MIN_REFETCH,
            jwks_timeout: Duration::from_secs(5),
        }
    }

    /// Checks the values that cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), ForwardAuthConfigError> {
        use ForwardAuthConfigError as E;
        if !self.path.starts_with('/') || self.path.len() < 2 || self.path.ends_with('/') || self.path.contains('{') {
            return Err(E::Path(self.path.clone()));
        }
        let overlaps = |route: &str| {
            route == self.path
                || route.starts_with(&format!("{}/", self.path))
                || self.path.starts_with(&format!("{route}/"))
        };
        if let Some(route) = Self::RESERVED_PATHS.iter().find(|r| overlaps(r)) {
            return Err(E::PathOverlaps(self.path.clone(), route));
        }
        if self.issuers.is_empty() && !self.allow_any_issuer {
            return Err(E::NoIssuer);
        }
        if self.audiences.is_empty() && !self.allow_any_audience {
            return Err(E::NoAudience);
        }
        if self.jwks_min_refetch < Self::MIN_JWKS_REFETCH {
            return Err(E::MinRefetch(self.jwks_min_refetch));
        }
        if self.algorithms.is_empty() {
            return Err(E::NoAlgorithm);
        }
        if let Some(alg) =
            self.algorithms.iter().find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(E::Hmac(*alg));
        }
        if self.session_claim.is_empty() || self.user_claim.is_empty() {
            return Err(E::EmptyClaim);
        }
        if let KeySource::Url(url) = &self.keys {
            let parsed = reqwest::Url::parse(url).map_err(|e| E::JwksUrl(url.clone(), e.to_string()))?;
            // Plain HTTP only on loopback: on a network, whoever sits on the
            // path could serve their own key and sign any token.
            let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1"));
            if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                return Err(E::JwksUrl(url.clone(), "must be https (plain http only on loopback)".into()));
            }
        }
        if self.jwks_refresh.is_zero() || self.jwks_timeout.is_zero() {
            return Err(E::ZeroInterval);
        }
        Ok(())
    }
}

/// A forward-auth setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ForwardAuthConfigError {
    /// The path is not an absolute route without a trailing slash.
    #[error("forward-auth path {0:?} must start with '/', not end with '/' and hold no '{{'")]
    Path(String),
    /// No algorithm accepted.
    #[error("forward-auth accepts no signature algorithm")]
    NoAlgorithm,
    /// An HMAC algorithm in the list.
    #[error("forward-auth cannot accept {0:?}: HMAC keys do not belong in a public JWKS")]
    Hmac(Algorithm),
    /// The path is one of the projector's other routes, or above or below one.
    #[error("forward-auth path {0:?} overlaps the route {1}")]
    PathOverlaps(String, &'static str),
    /// No issuer given, and any issuer not allowed.
    #[error("no forward-auth issuer: give the accepted `iss` values (or allow any issuer explicitly)")]
    NoIssuer,
    /// No audience given, and any audience not allowed.
    #[error("no forward-auth audience: give the accepted `aud` values (or allow any audience explicitly)")]
    NoAudience,
    /// `jwks_min_refetch` below the least allowed.
    #[error("the JWKS min refetch interval {0:?} is below 1 s")]
    MinRefetch(Duration),
    /// An empty claim name.
    #[error("the session and user claim names must not be empty")]
    EmptyClaim,
    /// The JWKS URL does not parse.
    #[error("JWKS URL {0:?} is not usable: {1}")]
    JwksUrl(String, String),
    /// A zero refresh interval or timeout.
    #[error("the JWKS refresh interval and fetch timeout must be above zero")]
    ZeroInterval,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_validate_and_unworkable_values_are_named() {
        let mut config = ForwardAuthConfig::new(KeySource::File("jwks.json".into()));
        assert_eq!(config.validate(), Err(ForwardAuthConfigError::NoIssuer));
        config.issuers = vec!["https://id".into()];
        assert_eq!(config.validate(), Err(ForwardAuthConfigError::NoAudience));
        config.audiences = vec!["api".into()];
        assert_eq!(config.validate(), Ok(()));
        let mut any = ForwardAuthConfig::new(KeySource::File("jwks.json".into()));
        (any.allow_any_issuer, any.allow_any_audience) = (true, true);
        assert_eq!(any.validate(), Ok(()));
        let with = |f: &dyn Fn(&mut ForwardAuthConfig)| {
            let mut c = config.clone();
            f(&mut c);
            c.validate()
        };
        assert!(matches!(with(&|c| c.path = "auth".into()), Err(ForwardAuthConfigError::Path(_))));
        assert!(matches!(with(&|c| c.path = "/auth/".into()), Err(ForwardAuthConfigError::Path(_))));
        assert_eq!(with(&|c| c.algorithms.clear()), Err(ForwardAuthConfigError::NoAlgorithm));
        assert_eq!(with(&|c| c.algorithms.push(Algorithm::HS256)), Err(ForwardAuthConfigError::Hmac(Algorithm::HS256)));
        assert_eq!(with(&|c| c.session_claim.clear()), Err(ForwardAuthConfigError::EmptyClaim));
        assert!(matches!(
            with(&|c| c.keys = KeySource::Url("ftp://x/jwks".into())),
            Err(ForwardAuthConfigError::JwksUrl(..))
        ));
        assert!(matches!(
            with(&|c| c.keys = KeySource::Url("not a url".into())),
            Err(ForwardAuthConfigError::JwksUrl(..))
        ));
        assert!(matches!(
            with(&|c| c.keys = KeySource::Url("http://id.example.com/jwks".into())),
            Err(ForwardAuthConfigError::JwksUrl(..))
        ));
        assert_eq!(with(&|c| c.keys = KeySource::Url("http://127.0.0.1:9/jwks".into())), Ok(()));
        for path in ["/v1", "/v1/sessions", "/v1/sessions/auth", "/health", "/metrics"] {
            assert!(matches!(with(&|c| c.path = path.into()), Err(ForwardAuthConfigError::PathOverlaps(..))), "{path}");
        }
        assert_eq!(with(&|c| c.path = "/v1/auth".into()), Ok(()));
        assert!(matches!(with(&|c| c.jwks_min_refetch = Duration::ZERO), Err(ForwardAuthConfigError::MinRefetch(_))));
    }
}
