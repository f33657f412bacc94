//! A seeded workload of sessions, revocations and per-user cutoffs ("log
//! out everywhere"), with times around each cutoff's own second, for the
//! tests that hold the projection and Postgres to the same answers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use revocation_core::{SessionEvent, SessionId, UserId, UserRevokedBefore};
use time::{Duration, OffsetDateTime};

/// One thing a producer does.
#[derive(Debug, Clone)]
pub enum Step {
    /// A session event.
    Session(SessionEvent),
    /// A user's cutoff.
    Cutoff(UserRevokedBefore),
}

/// The steps, in publishing order, and what to ask afterwards.
#[derive(Debug, Clone)]
pub struct CutoffWorkload {
    /// What to publish (or write), in order.
    pub steps: Vec<Step>,
    /// Every session the steps name.
    pub sids: Vec<SessionId>,
    /// Every user, with the issue times to ask about for each.
    pub tokens: Vec<(UserId, OffsetDateTime)>,
}

/// `sessions` sessions of `users` users created over 60 s from an hour ago
/// (quarter seconds), a fifth of them revoked, and for most users one or two
/// cutoffs in that minute — the second sometimes earlier than the first (it
/// must change nothing). Seeded: the same seed, the same workload.
pub fn cutoff_workload(seed: u64, sessions: usize, users: usize) -> CutoffWorkload {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| OffsetDateTime::now_utc())
        - Duration::hours(1);
    let at = |quarters: i64| base + Duration::milliseconds(quarters * 250);
    let user_ids: Vec<UserId> = (0..users).map(|u| user(&format!("user-{seed}-{u}"))).collect();
    let mut steps = Vec::new();
    let mut sids = Vec::new();
    for n in 0..sessions {
        let sid = SessionId::new(format!("{}", uuid::Uuid::from_u64_pair(seed, n as u64)))
            .unwrap_or_else(|e| panic!("generated sid: {e}"));
        let owner = &user_ids[rng.random_range(0..users)];
        let expires_at = rng.random_bool(0.8).then(|| base + Duration::days(1));
        steps.push(Step::Session(SessionEvent::Created {
            sid: sid.clone(),
            user_id: owner.as_str().to_owned(),
            created_at: at(rng.random_range(0..240)),
            expires_at,
        }));
        if rng.random_bool(0.2) {
            steps.push(Step::Session(SessionEvent::Revoked {
                sid: sid.clone(),
                revoked_at: at(rng.random_range(0..240)),
                reason: Some("logout".into()),
            }));
        }
        sids.push(sid);
    }
    for user_id in &user_ids {
        if rng.random_bool(0.75) {
            for _ in 0..rng.random_range(1..=2) {
                // Sometimes a fraction of a second, sometimes a whole second.
                let not_before = at(rng.random_range(0..240)) + Duration::milliseconds(rng.random_range(0..2) * 100);
                let cutoff =
                    UserRevokedBefore { user_id: user_id.clone(), not_before, reason: Some("logout_all".into()) };
                let slot = rng.random_range(0..=steps.len());
                steps.insert(slot, Step::Cutoff(cutoff));
            }
        }
    }
    let tokens = user_ids
        .iter()
        .flat_map(|u| (0..240).step_by(3).map(move |q| (u.clone(), base + Duration::milliseconds(q * 250))))
        .collect();
    CutoffWorkload { steps, sids, tokens }
}

fn user(id: &str) -> UserId {
    UserId::new(id).unwrap_or_else(|e| panic!("generated user id {id:?}: {e}"))
}
