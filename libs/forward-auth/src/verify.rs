//! Verifying a bearer token: its signature against the key set, `exp`/`nbf`
//! with leeway, `iss`/`aud` when configured; then reading the session, the
//! user and the issue time from its claims.

use std::sync::Arc;

use axum::http::HeaderValue;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header, get_current_timestamp};
use revocation_core::{SessionId, Timestamp, UserId};
use serde_json::{Map, Value};

use crate::keys::{KeyError, KeyStore};
use crate::{ForwardAuthConfig, Refusal};

/// What a verified token says, as the upstream is told.
#[derive(Debug)]
pub struct VerifiedToken {
    pub(crate) session: Option<SessionId>,
    pub(crate) user: Option<UserId>,
    pub(crate) issued_at: Option<Timestamp>,
    /// `exp`, Unix seconds.
    pub(crate) expires_at: u64,
    /// The key set's generation it was verified with.
    pub(crate) generation: u64,
    pub(crate) session_header: Option<HeaderValue>,
    pub(crate) user_header: Option<HeaderValue>,
}

impl VerifiedToken {
    /// The session claim, when the token has one.
    pub fn session(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }

    /// The user claim, when the token has one.
    pub fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// The token's `iat`, when it has one.
    pub fn issued_at(&self) -> Option<Timestamp> {
        self.issued_at
    }
}

pub(crate) struct TokenVerifier {
    /// One per accepted algorithm: the crate checks that every algorithm a
    /// validation lists belongs to the key's family.
    validations: Vec<(Algorithm, Validation)>,
    leeway: u64,
    session_claim: String,
    user_claim: String,
}

impl TokenVerifier {
    pub(crate) fn new(config: &ForwardAuthConfig) -> Self {
        let validations = config.algorithms.iter().map(|&alg| (alg, validation(config, alg))).collect();
        Self {
            validations,
            leeway: config.leeway.as_secs(),
            session_claim: config.session_claim.clone(),
            user_claim: config.user_claim.clone(),
        }
    }

    /// The leeway on `exp`, seconds (the cache applies the same rule).
    pub(crate) fn leeway(&self) -> u64 {
        self.leeway
    }

    pub(crate) async fn verify(&self, token: &str, keys: &Arc<KeyStore>) -> Result<VerifiedToken, Refusal> {
        let header = decode_header(token).map_err(|e| Refusal::Invalid(format!("malformed token: {e}")))?;
        let Some((_, validation)) = self.validations.iter().find(|(alg, _)| *alg == header.alg) else {
            return Err(Refusal::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        };
        let (key, generation) = keys.key_for(&header).await.map_err(|e| match e {
            KeyError::Unavailable(why) => Refusal::Unavailable(format!("cannot verify tokens: {why}")),
            other => Refusal::Invalid(other.to_string()),
        })?;
        let claims = decode::<Map<String, Value>>(token, &key, validation)
            .map_err(|e| Refusal::Invalid(format!("token rejected: {e}")))?
            .claims;
        let expires_at = claims.get("exp").and_then(seconds).ok_or_else(|| invalid_claim("exp"))?;
        let issued_at = match claims.get("iat") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let iat = seconds(v).ok_or_else(|| invalid_claim("iat"))?;
                // A token "issued" later than now would outrank every cutoff.
                if iat > get_current_timestamp().saturating_add(self.leeway) {
                    return Err(Refusal::Invalid("the token's iat is in the future".into()));
                }
                Some(Timestamp::from_unix_secs(iat as i64))
            }
        };
        let session = match text_claim(&claims, &self.session_claim)? {
            None => None,
            Some(s) => {
                Some(SessionId::new(s).map_err(|e| Refusal::Invalid(format!("claim {}: {e}", self.session_claim)))?)
            }
        };
        let user = match text_claim(&claims, &self.user_claim)? {
            None => None,
            Some(u) => Some(UserId::new(u).map_err(|e| Refusal::Invalid(format!("claim {}: {e}", self.user_claim)))?),
        };
        Ok(VerifiedToken {
            session_header: session.as_ref().map(|s| header_value(s.as_str(), &self.session_claim)).transpose()?,
            user_header: user.as_ref().map(|u| header_value(u.as_str(), &self.user_claim)).transpose()?,
            session,
            user,
            issued_at,
            expires_at,
            generation,
        })
    }
}

fn validation(config: &ForwardAuthConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway.as_secs();
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if !config.issuers.is_empty() {
        validation.set_issuer(&config.issuers);
        required.push("iss");
    }
    if config.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The claim as the upstream will read it, or a refusal: the value checked
/// must be the value passed on. Gateways trim a header's surrounding
/// spaces and may split it at commas, and upstreams decode non-ASCII bytes
/// their own way, so only visible ASCII with inner spaces passes.
fn header_value(value: &str, claim: &str) -> Result<HeaderValue, Refusal> {
    let safe = value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b',')
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    match HeaderValue::from_str(value) {
        Ok(header) if safe => Ok(header),
        _ => Err(Refusal::Invalid(format!(
            "claim {claim} cannot be passed on in a header as it is (only visible ASCII, no comma, no surrounding spaces)"
        ))),
    }
}

/// A NumericDate: whole non-negative seconds (fractions rounded down).
fn seconds(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15).map(|f| f as u64))
}

fn text_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid_claim(name)),
    }
}

fn invalid_claim(name: &str) -> Refusal {
    Refusal::Invalid(format!("claim {name} has the wrong type"))
}

/// Shared so the decision holds one allocation per cached token.
pub(crate) type Verified = Arc<VerifiedToken>;
