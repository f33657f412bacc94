//! [`TokenLiveness`] answered from the projection: the verifier's epoch
//! slot, by the same freshness rules as a session check. Live: the user's
//! cutoff decides (an absent cutoff admits, so the freshness bound is the
//! whole promise, as for a revocation). Cold: the token fallback. Lagging:
//! `Transient`, or the token fallback under [`LagPolicy::Fallback`].

use async_trait::async_trait;

use crate::check_counts::{Answer, Source};
use crate::clock::{Clock, Timestamp};
use crate::freshness::FreshnessState;
use crate::liveness::{LagPolicy, ProjectedLiveness, lag_reason};
use crate::port::{SessionLivenessError, TokenLiveness};
use crate::user::UserId;

#[async_trait]
impl<C: Clock> TokenLiveness for ProjectedLiveness<C> {
    async fn check_token(&self, user: &UserId, issued_at: Timestamp) -> Result<(), SessionLivenessError> {
        // Freshness before the data, as a session check reads them.
        let (state, refused, why) = self.projection.with(|projection| {
            let fresh_as_of = projection.freshness.fresh_as_of();
            let refused = projection.store.cutoffs().refuses(user.tag(), issued_at);
            let now = self.clock.now();
            let state = projection.freshness.state_as_of(fresh_as_of, now);
            let why = match state {
                FreshnessState::Live => String::new(),
                FreshnessState::Cold => "the projection is still catching up (cold start)".to_owned(),
                FreshnessState::Lagging => lag_reason(&projection.freshness, now),
            };
            (state, refused, why)
        });
        let ask_fallback = match state {
            FreshnessState::Live => false,
            FreshnessState::Cold => true,
            FreshnessState::Lagging => self.lag_policy == LagPolicy::Fallback,
        };
        let (source, result) = if state == FreshnessState::Live {
            (Source::Projection, if refused { Err(SessionLivenessError::Revoked) } else { Ok(()) })
        } else {
            match (&self.token_fallback, ask_fallback) {
                (Some(fallback), true) => (Source::Fallback, fallback.check_token(user, issued_at).await),
                _ => (Source::Unavailable, Err(SessionLivenessError::Transient(why))),
            }
        };
        self.counts.record(source, Answer::of(&result));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::{EventJson, RawRecord, RecordFormat, SessionEvent};
    use crate::{FreshnessConfig, ManualClock, Projection, SessionId, SessionLiveness, UserRevokedBefore};

    fn at(secs: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[tokio::test]
    async fn a_cutoff_revokes_the_users_older_sessions_and_tokens_and_nothing_else() {
        let clock = ManualClock::new(Timestamp::from_unix_secs(10_000));
        let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(Duration::from_secs(5))));
        let liveness = ProjectedLiveness::builder(projection.clone()).clock(clock.clone()).build();
        let store = projection.store();
        let created = |sid: &str, user: &str, secs| SessionEvent::Created {
            sid: SessionId::new(sid).unwrap(),
            user_id: user.into(),
            created_at: at(secs),
            expires_at: None,
        };
        for event in [created("old", "u", 1_000), created("new", "u", 3_000), created("other", "v", 1_000)] {
            store.apply(&event, clock.now());
        }
        let alice = UserId::new("u").unwrap();
        let cutoff = UserRevokedBefore { user_id: alice.clone(), not_before: at(2_000), reason: None };
        store.apply(EventJson.decode(&RawRecord::new(Some(&cutoff.key()), Some(&cutoff.to_value()))), clock.now());
        projection.freshness().track_partitions([0]);
        projection.freshness().record_high_watermark(0, 1, clock.now());
        projection.freshness().record_position(0, 1);

        let sid = |s: &str| SessionId::new(s).unwrap();
        assert_eq!(liveness.check(&sid("old")).await, Err(SessionLivenessError::Revoked), "created before the cutoff");
        assert_eq!(liveness.check(&sid("new")).await, Ok(()), "created after it");
        assert_eq!(liveness.check(&sid("other")).await, Ok(()), "another user");
        let secs = Timestamp::from_unix_secs;
        assert_eq!(liveness.check_token(&alice, secs(1_999)).await, Err(SessionLivenessError::Revoked));
        assert_eq!(liveness.check_token(&alice, secs(2_000)).await, Ok(()));
        assert_eq!(liveness.check_token(&UserId::new("v").unwrap(), secs(1)).await, Ok(()));

        // Stale past the bound: fail closed, without a token fallback.
        clock.advance(Duration::from_secs(6));
        let stale = liveness.check_token(&alice, secs(2_500)).await;
        assert!(matches!(stale, Err(SessionLivenessError::Transient(_))), "{stale:?}");
    }
}
