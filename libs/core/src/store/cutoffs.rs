//! The store's side of per-user cutoffs: a session whose user has a cutoff
//! later than its creation answers revoked, wherever the store is asked.

use crate::clock::Timestamp;
use crate::state::SessionState;
use crate::store::{Lookup, SessionStore};
use crate::user::UserCutoffs;

impl SessionStore {
    /// The per-user cutoffs ("log out everywhere").
    pub fn cutoffs(&self) -> &UserCutoffs {
        &self.cutoffs
    }

    /// What `state` (`None`: absent) answers at `now`, its user's cutoff
    /// included. Costs one atomic load while no user has a cutoff.
    #[inline]
    pub fn judge(&self, state: Option<SessionState>, now: Timestamp) -> Lookup {
        let answer = Lookup::of(state, now);
        // Whether any user has a cutoff first: it does not wait on the
        // state's (likely missed) load, so while there are none the check is
        // the one it was before cutoffs existed.
        if self.cutoffs.is_empty() {
            return answer;
        }
        match answer {
            Lookup::Live if state.is_some_and(|s| self.is_cut_off(s)) => Lookup::Revoked,
            answer => answer,
        }
    }

    /// Whether a live `state` was created before its user's cutoff.
    #[inline]
    pub fn is_cut_off(&self, state: SessionState) -> bool {
        state.user().and_then(|user| self.cutoffs.secs(user.get())).is_some_and(|cutoff| state.created_before(cutoff))
    }
}
