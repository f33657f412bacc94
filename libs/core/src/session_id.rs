//! [`SessionId`]: the id a verifier asks about, validated once, and
//! [`SidRef`], the same id borrowed from a record key.
//!
//! A canonical UUID id is parsed into its 16 bytes here, once, so the store's
//! hot path never parses it again.

use std::fmt;

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
    /// comparing the text alone). A plain aligned array beside a flag rather
    /// than an `Option<[u8; 16]>`, so the store borrows the bytes in place
    /// without a copy (see `docs/benchmarks-notes.md`, "the packed id").
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

    /// The id borrowed as a [`SidRef`] (no allocation).
    #[inline]
    pub fn as_sid_ref(&self) -> SidRef<'_> {
        SidRef { text: &self.text, uuid: [0; 16], packed: false, borrowed: self.packed.then_some(&self.uuid) }
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
/// use revocation_core::SidRef;
/// let sid = SidRef::new("8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b").unwrap();
/// assert_eq!(sid.to_owned().as_str(), sid.as_str());
/// assert!(SidRef::from_bytes(b"bad\nid").is_err());
/// ```
#[derive(Clone, Copy)]
pub struct SidRef<'a> {
    text: &'a str,
    /// The bytes parsed from `text` (a record key), valid when `packed`.
    uuid: [u8; 16],
    packed: bool,
    /// The bytes of the [`SessionId`] this borrows, in place: copying them
    /// into `uuid` just before the store reads them stalls the read (see
    /// `docs/benchmarks-notes.md`, "the packed id").
    borrowed: Option<&'a [u8; 16]>,
}

/// Two borrowed ids are equal when their text is (everything else follows
/// from it).
impl PartialEq for SidRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SidRef<'_> {}

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
        Ok(Self { text: id, uuid, packed, borrowed: None })
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
        match self.borrowed {
            Some(bytes) => Some(bytes),
            None => self.packed.then_some(&self.uuid),
        }
    }

    /// An owned [`SessionId`] (allocates the text).
    pub fn to_owned(&self) -> SessionId {
        let (uuid, packed) = self.packed_uuid().map_or(([0; 16], false), |bytes| (*bytes, true));
        SessionId { text: self.text.to_owned(), uuid, packed }
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

impl fmt::Debug for SidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SidRef({})", log_tag(self.text.as_bytes()))
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
    fn a_borrowed_id_is_the_same_id() {
        for text in ["8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b", "plain"] {
            let owned = SessionId::new(text).unwrap();
            let parsed = SidRef::new(text).unwrap();
            assert_eq!(owned.as_sid_ref(), parsed);
            assert_eq!(owned.as_sid_ref().packed_uuid(), parsed.packed_uuid());
            assert_eq!(owned.as_sid_ref().to_owned(), owned);
            assert_eq!(parsed.to_owned(), owned);
        }
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
