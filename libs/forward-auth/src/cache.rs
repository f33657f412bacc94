//! Verified tokens, kept until their `exp` so a repeated token costs a
//! hash and a lookup instead of a signature check. Keyed by the token's
//! SHA-256: a collision-resistant hash, so no forged token can land on a
//! verified one's entry. Bounded by count; an entry made with a key set
//! since changed is not used (a removed key stops admitting its tokens).

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::verify::Verified;

pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) struct VerifiedCache {
    entries: Option<Cache<TokenHash, Verified>>,
    leeway_secs: u64,
}

impl VerifiedCache {
    /// `capacity` 0 keeps nothing.
    pub(crate) fn new(capacity: usize, leeway_secs: u64) -> Self {
        Self { entries: (capacity > 0).then(|| Cache::new(capacity)), leeway_secs }
    }

    /// The entry for `hash`, if it was verified with key set `generation`
    /// and is not expired at `now` (Unix seconds; the verifier's own rule).
    pub(crate) fn get(&self, hash: &TokenHash, generation: u64, now: u64) -> Option<Verified> {
        let entries = self.entries.as_ref()?;
        let verified = entries.get(hash)?;
        if verified.generation == generation && verified.expires_at.saturating_add(self.leeway_secs) >= now {
            Some(verified)
        } else {
            entries.remove(hash);
            None
        }
    }

    pub(crate) fn insert(&self, hash: TokenHash, verified: Verified) {
        if let Some(entries) = &self.entries {
            entries.insert(hash, verified);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::verify::VerifiedToken;

    fn entry(expires_at: u64, generation: u64) -> Verified {
        Arc::new(VerifiedToken {
            session: None,
            user: None,
            issued_at: None,
            expires_at,
            generation,
            session_header: None,
            user_header: None,
        })
    }

    #[test]
    fn an_entry_serves_until_its_expiry_plus_leeway_and_only_for_its_key_set() {
        let cache = VerifiedCache::new(10, 30);
        let h = token_hash("a.b.c");
        cache.insert(h, entry(1_000, 1));
        assert!(cache.get(&h, 1, 1_030).is_some());
        assert!(cache.get(&h, 2, 1_000).is_none(), "another key set: verify again");
        cache.insert(h, entry(1_000, 1));
        assert!(cache.get(&h, 1, 1_031).is_none(), "expired");
        assert!(cache.get(&h, 1, 0).is_none(), "an expired entry is dropped, not kept");
    }

    #[test]
    fn capacity_zero_keeps_nothing_and_tokens_differing_in_one_byte_do_not_share() {
        let off = VerifiedCache::new(0, 0);
        off.insert(token_hash("t"), entry(u64::MAX / 2, 0));
        assert!(off.get(&token_hash("t"), 0, 0).is_none());
        let on = VerifiedCache::new(10, 0);
        on.insert(token_hash("a.b.c"), entry(u64::MAX / 2, 0));
        assert!(on.get(&token_hash("a.b.d"), 0, 0).is_none());
    }
}
