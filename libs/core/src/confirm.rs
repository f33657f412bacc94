//! [`AbsentConfirmation`]: asking the source of truth about a session the
//! projection does not hold, at a bounded rate.
//!
//! With change data capture the broker's watermarks do not cover a row
//! committed in Postgres whose change has not reached Kafka yet, so the
//! barrier alone could answer a brand-new session "revoked". Confirming an
//! absent session with the fallback (Postgres, the truth) closes that gap;
//! the limit keeps a flood of random session ids from becoming a flood of
//! queries — past it an absent session is answered `Transient` (503), never
//! guessed.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// At most `per_second` confirmations a second (with a burst of as many).
///
/// ```
/// use std::num::NonZeroU32;
/// use revocation_core::AbsentConfirmation;
/// let confirm = AbsentConfirmation::per_second(NonZeroU32::new(100).unwrap());
/// assert_eq!(confirm.limit(), 100);
/// ```
pub struct AbsentConfirmation {
    limiter: DefaultDirectRateLimiter,
    per_second: NonZeroU32,
}

impl AbsentConfirmation {
    /// Confirmations allowed per second.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self { limiter: RateLimiter::direct(Quota::per_second(per_second)), per_second }
    }

    /// The limit, per second.
    pub fn limit(&self) -> u32 {
        self.per_second.get()
    }

    /// Whether one more confirmation may be asked now.
    pub(crate) fn try_acquire(&self) -> bool {
        self.limiter.check().is_ok()
    }
}

impl std::fmt::Debug for AbsentConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbsentConfirmation").field("per_second", &self.per_second).finish()
    }
}
