//! The decision for one request: a verified token whose session is live and
//! whose user has not logged out everywhere since it was issued passes;
//! anything unproven does not.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::HeaderMap;
use jsonwebtoken::get_current_timestamp;
use revocation_core::{SessionLiveness, SessionLivenessError, Timestamp, TokenLiveness};

use crate::cache::{VerifiedCache, token_hash};
use crate::counts::ForwardAuthCounts;
use crate::keys::{KeyStore, LoadError};
use crate::verify::{TokenVerifier, Verified};
use crate::{ForwardAuthConfig, ForwardAuthConfigError, NoSession};

/// Longest token read; longer ones are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a request does not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token (401, `WWW-Authenticate: Bearer`).
    Missing,
    /// A token that is not valid, or whose session or user is revoked (401).
    Invalid(String),
    /// Not provable now: the session check is transient or the keys are
    /// unavailable (503; fail closed).
    Unavailable(String),
}

/// What the endpoint answers.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Pass, with what the token says.
    Allow(Verified),
    /// Do not pass.
    Refuse(Refusal),
}

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardAuthStartError {
    /// A setting that cannot work.
    #[error(transparent)]
    Config(#[from] ForwardAuthConfigError),
    /// The JWKS file could not be loaded.
    #[error("cannot load the JWKS: {0}")]
    Keys(#[from] LoadError),
}

/// The forward-auth endpoint's logic, independent of HTTP routing.
pub struct ForwardAuth {
    pub(crate) config: ForwardAuthConfig,
    keys: Arc<KeyStore>,
    verifier: TokenVerifier,
    cache: VerifiedCache,
    sessions: Arc<dyn SessionLiveness>,
    tokens: Option<Arc<dyn TokenLiveness>>,
    counts: ForwardAuthCounts,
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth").field("path", &self.config.path).field("keys", &self.config.keys).finish()
    }
}

impl ForwardAuth {
    /// Validates `config`, loads the keys, and answers with `sessions`
    /// (the session slot) and `tokens` (the user's cutoff; `None` skips it).
    /// The crate's example shows it wired to a projection.
    pub async fn start(
        config: ForwardAuthConfig,
        sessions: Arc<dyn SessionLiveness>,
        tokens: Option<Arc<dyn TokenLiveness>>,
    ) -> Result<Arc<Self>, ForwardAuthStartError> {
        config.validate()?;
        if config.audiences.is_empty() {
            tracing::warn!("forward-auth: any audience allowed; tokens issued for other applications pass");
        }
        if config.issuers.is_empty() {
            tracing::warn!("forward-auth: any issuer allowed; tokens of every issuer the key set serves pass");
        }
        let keys = KeyStore::start(&config).await?;
        let verifier = TokenVerifier::new(&config);
        let cache = VerifiedCache::new(config.cache_capacity, verifier.leeway());
        Ok(Arc::new(Self { config, keys, verifier, cache, sessions, tokens, counts: ForwardAuthCounts::default() }))
    }

    /// The decision for a request with these headers.
    pub async fn decide(&self, headers: &HeaderMap) -> Decision {
        let decision = match self.decide_inner(headers).await {
            Ok(verified) => Decision::Allow(verified),
            Err(refusal) => Decision::Refuse(refusal),
        };
        let counter = match &decision {
            Decision::Allow(_) => &self.counts.allowed,
            Decision::Refuse(Refusal::Unavailable(_)) => &self.counts.unavailable,
            Decision::Refuse(_) => &self.counts.denied,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        decision
    }

    /// Counts since start.
    pub fn counts(&self) -> &ForwardAuthCounts {
        &self.counts
    }

    async fn decide_inner(&self, headers: &HeaderMap) -> Result<Verified, Refusal> {
        let token = bearer(headers, &self.config.token_header)?;
        let verified = self.verified(token).await?;
        match &verified.session {
            Some(sid) => self.sessions.check(sid).await.map_err(|e| refusal(e, "the session is revoked"))?,
            None if self.config.no_session == NoSession::Refuse => {
                return Err(Refusal::Invalid(format!("the token has no {} claim", self.config.session_claim)));
            }
            None => {}
        }
        if let (Some(tokens), Some(user)) = (&self.tokens, &verified.user) {
            // A token without `iat` cannot be placed after a cutoff: it is
            // judged as issued at the epoch (refused once the user has one).
            let issued_at = verified.issued_at.unwrap_or(Timestamp::EPOCH);
            tokens
                .check_token(user, issued_at)
                .await
                .map_err(|e| refusal(e, "the user logged out everywhere after this token was issued"))?;
        }
        Ok(verified)
    }

    async fn verified(&self, token: &str) -> Result<Verified, Refusal> {
        let hash = token_hash(token);
        let generation = self.keys.generation();
        if let Some(hit) = self.cache.get(&hash, generation, get_current_timestamp()) {
            self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.counts.verified.fetch_add(1, Ordering::Relaxed);
        let verified = Arc::new(self.verifier.verify(token, &self.keys).await?);
        self.cache.insert(hash, verified.clone());
        Ok(verified)
    }
}

fn refusal(error: SessionLivenessError, revoked: &str) -> Refusal {
    match error {
        SessionLivenessError::Revoked => Refusal::Invalid(revoked.to_owned()),
        SessionLivenessError::Transient(reason) => Refusal::Unavailable(reason),
        other => Refusal::Unavailable(other.to_string()),
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer<'h>(headers: &'h HeaderMap, name: &axum::http::HeaderName) -> Result<&'h str, Refusal> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Err(Refusal::Missing) };
    // Two tokens: the one checked might not be the one the upstream reads.
    if values.next().is_some() {
        return Err(Refusal::Invalid(format!("more than one {name} header")));
    }
    let value = value.to_str().map_err(|_| Refusal::Invalid(format!("the {name} header is not ASCII")))?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Invalid(format!("the {name} header does not hold a bearer token")));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Refusal::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Invalid(format!("the token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header::AUTHORIZATION};

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_bearer_token_is_read_and_anything_else_is_named() {
        assert_eq!(bearer(&with("Bearer a.b.c"), &AUTHORIZATION), Ok("a.b.c"));
        assert_eq!(bearer(&with("bearer   a.b.c "), &AUTHORIZATION), Ok("a.b.c"));
        assert_eq!(bearer(&HeaderMap::new(), &AUTHORIZATION), Err(Refusal::Missing));
        assert_eq!(bearer(&with("Bearer "), &AUTHORIZATION), Err(Refusal::Missing));
        assert!(matches!(bearer(&with("Basic dXNlcjpwdw=="), &AUTHORIZATION), Err(Refusal::Invalid(_))));
        let mut two = with("Bearer a.b.c");
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer d.e.f"));
        assert!(matches!(bearer(&two, &AUTHORIZATION), Err(Refusal::Invalid(_))));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(matches!(bearer(&with(&long), &AUTHORIZATION), Err(Refusal::Invalid(_))));
    }
}
