//! The port a verifier calls on every request.
//!
//! Mirrors the `SessionLiveness` port of the verifier SDK: same trait shape,
//! same three answers, so any adapter here drops into a verifier slot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use thiserror::Error;

use crate::clock::Timestamp;
use crate::session_id::SessionId;
use crate::user::UserId;

/// Why a session may not be admitted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionLivenessError {
    /// The session is absent, revoked or expired: reject the token (401).
    #[error("session revoked")]
    Revoked,
    /// No safe answer can be given right now (projection lagging, database
    /// unreachable, …): fail closed with 503 and let the client retry. The
    /// string says what failed.
    #[error("session liveness unavailable: {0}")]
    Transient(String),
}

/// Is this session still live? Asked once per request that carries a `sid`.
///
/// The contract has exactly three answers:
///
/// | answer | meaning | what the verifier does |
/// |---|---|---|
/// | `Ok(())` | the session exists, is not revoked and has not expired | admit the token |
/// | `Err(Revoked)` | the session is unknown, revoked, or expired | reject: 401, session revoked |
/// | `Err(Transient(_))` | the implementation cannot answer safely now | fail closed: 503, retry later |
///
/// An implementation must never turn "I don't know" into `Ok(())`: when its
/// backing data may be stale or unreachable, it answers `Transient`.
/// Tokens without a `sid` (machine credentials) are not session-bound and are
/// admitted by the verifier without consulting this port.
///
/// ```
/// use async_trait::async_trait;
/// use revocation_core::{SessionId, SessionLiveness, SessionLivenessError};
///
/// /// Every session is revoked: the smallest correct implementation.
/// #[derive(Debug)]
/// struct RevokeAll;
///
/// #[async_trait]
/// impl SessionLiveness for RevokeAll {
///     async fn check(&self, _sid: &SessionId) -> Result<(), SessionLivenessError> {
///         Err(SessionLivenessError::Revoked)
///     }
/// }
/// ```
#[async_trait]
pub trait SessionLiveness: fmt::Debug + Send + Sync {
    /// Answers whether `sid` may be admitted now.
    async fn check(&self, sid: &SessionId) -> Result<(), SessionLivenessError>;
}

/// The future [`SessionLiveness::check`] returns, as `#[async_trait]` spells
/// it. Name it to implement `check` by hand (without the macro), e.g. to
/// answer without allocating: a boxed zero-sized future allocates nothing.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SessionLivenessError>> + Send + 'a>>;

/// Forwards to the shared port, without wrapping its future in another.
impl<T: SessionLiveness + ?Sized> SessionLiveness for std::sync::Arc<T> {
    fn check<'life0, 'life1, 'async_trait>(&'life0 self, sid: &'life1 SessionId) -> CheckFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).check(sid)
    }
}

/// Is a token of this user, issued then, still valid? The verifier's epoch
/// (not-before) slot, beside [`SessionLiveness`]: every token of a user
/// issued before the user's cutoff ("log out everywhere") is refused, with
/// or without a `sid`. The same three answers and the same promise: never
/// `Ok(())` for "I don't know".
///
/// | answer | meaning |
/// |---|---|
/// | `Ok(())` | no cutoff of the user covers `issued_at` |
/// | `Err(Revoked)` | the user's cutoff is later than `issued_at` (to the second) |
/// | `Err(Transient(_))` | no safe answer now: fail closed (503) |
///
/// ```
/// use async_trait::async_trait;
/// use revocation_core::{SessionLivenessError, Timestamp, TokenLiveness, UserId};
///
/// /// Every token issued before one instant is refused.
/// #[derive(Debug)]
/// struct Epoch(Timestamp);
///
/// #[async_trait]
/// impl TokenLiveness for Epoch {
///     async fn check_token(&self, _user: &UserId, issued_at: Timestamp) -> Result<(), SessionLivenessError> {
///         if issued_at < self.0 { Err(SessionLivenessError::Revoked) } else { Ok(()) }
///     }
/// }
/// ```
#[async_trait]
pub trait TokenLiveness: fmt::Debug + Send + Sync {
    /// Answers whether a token of `user` issued at `issued_at` may be admitted now.
    async fn check_token(&self, user: &UserId, issued_at: Timestamp) -> Result<(), SessionLivenessError>;
}
