//! The port a verifier calls on every request, and the id it asks about.
//!
//! Mirrors the `SessionLiveness` port of the verifier SDK: same trait shape,
//! same three answers, so any adapter here drops into a verifier slot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use thiserror::Error;

/// Longest session id we accept, in bytes. Ids are opaque strings; this bound
/// keeps hostile input from growing memory, logs or SQL parameters.
pub const MAX_SESSION_ID_LEN: usize = 255;

/// A session id (the `sid` claim of a token): a non-empty UTF-8 string of at
/// most [`MAX_SESSION_ID_LEN`] bytes with no control characters.
///
/// Ids are compared exactly, as the `user_sessions.id` text column compares
/// them; no case folding or trimming happens. An id in canonical UUID form
/// (36 characters, lowercase, hyphenated) is also parsed once, here, into its
/// 16 bytes, so the projection's hot path never parses it again.
///
/// ```
/// use revocation_core::SessionId;
/// let sid = SessionId::new("8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b").unwrap();
/// assert_eq!(sid.as_str(), "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b");
/// assert!(SessionId::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    text: String,
    /// The 16 bytes of a canonical UUID id, all zero for any other id (both
    /// fields are functions of `text`, so the derived comparisons agree with
    /// comparing the text alone). Kept as a plain aligned array beside a flag,
    /// not an `Option<[u8; 16]>`: the store's hot path borrows these bytes in
    /// place, and an `Option`'s payload sits one byte off alignment, which
    /// made the compiler copy it through the stack in pieces that stalled the
    /// next lookup (measured: a 1M-session lookup took 3× a bare get).
    uuid: [u8; 16],
    packed: bool,
}

/// Why a string is not a [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidSessionId {
    /// The id is empty.
    #[error("session id is empty")]
    Empty,
    /// The id is longer than [`MAX_SESSION_ID_LEN`] bytes.
    #[error("session id is {0} bytes long; at most {MAX_SESSION_ID_LEN} are allowed")]
    TooLong(usize),
    /// The id contains a control character (NUL, newline, …).
    #[error("session id contains a control character")]
    ControlCharacter,
    /// The id is not valid UTF-8.
    #[error("session id is not valid UTF-8")]
    NotUtf8,
}

impl SessionId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidSessionId> {
        let text = id.into();
        let SidRef { uuid, packed, .. } = SidRef::new(&text)?;
        Ok(Self { text, uuid, packed })
    }

    /// Validates raw bytes (a Kafka record key, say) as a session id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidSessionId> {
        SidRef::from_bytes(bytes).map(|sid| sid.to_owned())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 16 bytes of the id when it is a canonical (lowercase, hyphenated)
    /// UUID; `None` for any other id.
    #[inline]
    pub fn canonical_uuid(&self) -> Option<[u8; 16]> {
        self.packed.then_some(self.uuid)
    }

    /// [`Self::canonical_uuid`], borrowed in place (the store's hot path).
    #[inline]
    pub(crate) fn packed_uuid(&self) -> Option<&[u8; 16]> {
        self.packed.then_some(&self.uuid)
    }

    /// A short, stable, non-reversible tag for logs: the first 8 hex digits of
    /// a 64-bit FNV-1a hash. Logs never carry whole session ids.
    pub fn log_tag(&self) -> String {
        log_tag(self.text.as_bytes())
    }
}

/// A session id borrowed from a record key: validated and (when a canonical
/// UUID) parsed exactly like a [`SessionId`], without allocating. The feed
/// applies records through it.
///
/// ```
/// use revocation_core::port::SidRef;
/// let sid = SidRef::new("8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b").unwrap();
/// assert_eq!(sid.to_owned().as_str(), sid.as_str());
/// assert!(SidRef::from_bytes(b"bad\nid").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidRef<'a> {
    text: &'a str,
    uuid: [u8; 16],
    packed: bool,
}

impl<'a> SidRef<'a> {
    /// Validates `id` (the rules of [`SessionId`]).
    pub fn new(id: &'a str) -> Result<Self, InvalidSessionId> {
        if id.is_empty() {
            return Err(InvalidSessionId::Empty);
        }
        if id.len() > MAX_SESSION_ID_LEN {
            return Err(InvalidSessionId::TooLong(id.len()));
        }
        // ASCII (every UUID) is checked bytewise; other text per char.
        let control =
            if id.is_ascii() { id.bytes().any(|b| b.is_ascii_control()) } else { id.chars().any(char::is_control) };
        if control {
            return Err(InvalidSessionId::ControlCharacter);
        }
        let (uuid, packed) = match canonical_uuid(id) {
            Some(bytes) => (bytes, true),
            None => ([0; 16], false),
        };
        Ok(Self { text: id, uuid, packed })
    }

    /// Validates raw bytes (a record key).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, InvalidSessionId> {
        Self::new(std::str::from_utf8(bytes).map_err(|_| InvalidSessionId::NotUtf8)?)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The 16 bytes of a canonical UUID id, in place.
    #[inline]
    pub(crate) fn packed_uuid(&self) -> Option<&[u8; 16]> {
        self.packed.then_some(&self.uuid)
    }

    /// An owned [`SessionId`] (allocates the text).
    pub fn to_owned(&self) -> SessionId {
        SessionId { text: self.text.to_owned(), uuid: self.uuid, packed: self.packed }
    }
}

/// Only the canonical spelling maps to bytes, so that "ABC…" and "abc…" stay
/// distinct sessions (as they are in Postgres) and the bytes map back to the
/// exact original text.
fn canonical_uuid(text: &str) -> Option<[u8; 16]> {
    if text.len() == 36 && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        uuid::Uuid::try_parse(text).ok().map(uuid::Uuid::into_bytes)
    } else {
        None
    }
}

/// The log tag of any bytes (used for keys that are not valid session ids).
pub fn log_tag(bytes: &[u8]) -> String {
    let hash =
        bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{:08x}", hash >> 32)
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.log_tag())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::new(id)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_validated() {
        assert!(SessionId::new("abc").is_ok());
        assert!(SessionId::new("'; DROP TABLE user_sessions; --").is_ok());
        assert!(SessionId::new("séance-🦀").is_ok());
        assert_eq!(SessionId::new(""), Err(InvalidSessionId::Empty));
        assert_eq!(SessionId::new("a\0b"), Err(InvalidSessionId::ControlCharacter));
        assert_eq!(SessionId::new("a\nb"), Err(InvalidSessionId::ControlCharacter));
        assert_eq!(SessionId::new("x".repeat(256)), Err(InvalidSessionId::TooLong(256)));
        assert_eq!(SessionId::from_bytes(&[0xff, 0xfe]), Err(InvalidSessionId::NotUtf8));
    }

    #[test]
    fn only_canonical_uuids_are_packed() {
        let lower = "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b";
        assert!(SessionId::new(lower).unwrap().canonical_uuid().is_some());
        assert_eq!(SessionId::new(lower.to_uppercase()).unwrap().canonical_uuid(), None);
        assert_eq!(SessionId::new("8a3f6c1e2b4d4e5f9a7b1c2d3e4f5a6b").unwrap().canonical_uuid(), None);
        assert_eq!(SessionId::new("plain").unwrap().canonical_uuid(), None);
        assert_ne!(SessionId::new(lower).unwrap(), SessionId::new(lower.to_uppercase()).unwrap());
    }

    #[test]
    fn debug_output_never_shows_the_whole_id() {
        let sid = SessionId::new("secret-session-id").unwrap();
        let shown = format!("{sid:?}");
        assert!(!shown.contains("secret"));
        assert_eq!(shown, format!("SessionId({})", sid.log_tag()));
        assert_eq!(sid.log_tag().len(), 8);
    }
}
