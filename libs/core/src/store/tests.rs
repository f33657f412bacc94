//! Unit and property tests of the store.

use super::*;
use crate::SessionEvent;
use crate::format::{EventJson, RawRecord, RecordFormat};
use time::macros::datetime;

fn sid(s: &str) -> SessionId {
    SessionId::new(s).unwrap()
}
fn created(s: &str, expires: Option<time::OffsetDateTime>) -> SessionEvent {
    SessionEvent::Created {
        sid: sid(s),
        user_id: "u".into(),
        created_at: datetime!(2026-11-27 10:00 UTC),
        expires_at: expires,
    }
}
fn revoked(s: &str) -> SessionEvent {
    SessionEvent::Revoked { sid: sid(s), revoked_at: datetime!(2026-11-27 11:00 UTC), reason: None }
}
const NOW: Timestamp = Timestamp::from_unix_secs(1_795_000_000); // 2026-11-18

#[test]
fn uuid_and_text_ids_are_both_stored_exactly() {
    let store = SessionStore::new();
    let lower = "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b";
    let upper = "8A3F6C1E-2B4D-4E5F-9A7B-1C2D3E4F5A6B";
    store.apply(&created(lower, None), NOW);
    store.apply(&created("plain", None), NOW);
    assert_eq!(store.lookup(&sid(lower), NOW), Lookup::Live);
    assert_eq!(store.lookup(&sid("plain"), NOW), Lookup::Live);
    assert_eq!(store.lookup(&sid(upper), NOW), Lookup::Absent, "ids compare exactly, like the text column");
    assert_eq!(store.uuids.len(), 1);
    assert_eq!(store.texts.len(), 1);
}

#[test]
fn revocation_is_sticky_against_a_late_created_event() {
    let store = SessionStore::new();
    store.apply(&revoked("s"), NOW);
    store.apply(&created("s", None), NOW);
    store.apply(&created("s", None), NOW);
    assert_eq!(store.lookup(&sid("s"), NOW), Lookup::Revoked);
    assert_eq!(store.counts().revoked, 1);
}

#[test]
fn expiry_is_honoured_and_swept() {
    let store = SessionStore::new();
    store.apply(&created("old", Some(datetime!(2026-01-01 00:00 UTC))), NOW);
    store.apply(&created("new", Some(datetime!(2027-01-01 00:00 UTC))), NOW);
    store.apply(&revoked("old"), NOW);
    assert_eq!(store.lookup(&sid("old"), NOW), Lookup::Revoked);
    store.apply(&created("exp", Some(datetime!(2026-01-01 00:00 UTC))), NOW);
    assert_eq!(store.lookup(&sid("exp"), NOW), Lookup::Expired);
    assert_eq!(store.sweep(NOW), 2);
    assert_eq!(store.lookup(&sid("exp"), NOW), Lookup::Absent);
    assert_eq!(store.lookup(&sid("new"), NOW), Lookup::Live);
    assert_eq!(store.counts().revoked, 0);
    assert_eq!(store.len(), 1);
}

#[test]
fn a_tombstone_forgets_the_session() {
    let store = SessionStore::new();
    store.apply(&revoked("s"), NOW);
    store.apply(&SessionEvent::Tombstone { sid: sid("s") }, NOW);
    assert_eq!(store.lookup(&sid("s"), NOW), Lookup::Absent);
    assert_eq!(store.counts(), StoreCounts { sessions: 0, revoked: 0, applied: 2, rejected: 0, unknown: 0 });
}

#[test]
fn a_malformed_record_revokes_its_key_and_is_counted() {
    let store = SessionStore::new();
    store.apply(&created("s", None), NOW);
    let read = |key: Option<&'static [u8]>, value: &'static [u8]| EventJson.decode(&RawRecord::new(key, Some(value)));
    store.apply(read(Some(b"s"), b"{garbage"), NOW);
    store.apply(read(None, b"{garbage"), NOW);
    store.apply(read(Some(b"s"), br#"{"type":"x.y","sid":"s"}"#), NOW);
    assert_eq!(store.lookup(&sid("s"), NOW), Lookup::Revoked);
    let counts = store.counts();
    assert_eq!((counts.rejected, counts.unknown, counts.revoked), (2, 1, 1));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    /// The store's answer is a function of the set of records applied:
    /// any order, any duplication, the same states and counts of
    /// sessions (revocation is sticky, a tombstone only forgets what came
    /// before it in the same key's order, so tombstones are left out).
    #[test]
    fn any_order_and_duplication_of_records_gives_the_same_store(
        records in proptest::collection::vec((0..3usize, 0..3usize), 0..16),
        seed in proptest::num::u64::ANY,
    ) {
        let ids = ["8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b", "8A3F6C1E-2B4D-4E5F-9A7B-1C2D3E4F5A6B", "s"];
        let events: Vec<SessionEvent> = records
            .iter()
            .map(|&(id, kind)| match kind {
                0 => created(ids[id], None),
                1 => created(ids[id], Some(datetime!(2030-01-01 00:00 UTC))),
                _ => revoked(ids[id]),
            })
            .collect();
        let forward = SessionStore::new();
        for event in &events {
            forward.apply(event, NOW);
        }
        let shuffled = SessionStore::new();
        let mut order: Vec<usize> = (0..events.len()).chain(0..events.len() / 2).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for i in order {
            shuffled.apply(&events[i], NOW);
        }
        proptest::prop_assert_eq!(forward.len(), shuffled.len());
        proptest::prop_assert_eq!(forward.counts().revoked, shuffled.counts().revoked);
        for id in ids {
            proptest::prop_assert_eq!(forward.state(&sid(id)), shuffled.state(&sid(id)), "{}", id);
        }
    }
}

#[test]
fn with_a_lifetime_a_forgotten_revoked_session_stays_revoked_against_any_late_created() {
    let day = std::time::Duration::from_secs(86_400);
    let store = SessionStore::new().with_max_session_lifetime(day);
    let created_at = datetime!(2026-11-27 10:00 UTC);
    let late = |expires| SessionEvent::Created { sid: sid("s"), user_id: "u".into(), created_at, expires_at: expires };
    store.apply(&late(Some(datetime!(2026-11-27 12:00 UTC))), NOW);
    store.apply(&revoked("s"), NOW); // revoked 11:00
    let at = |t: time::OffsetDateTime| Timestamp::from_datetime(t);
    // Expired at 12:00, but kept until its revocation is a lifetime old.
    assert_eq!(store.sweep(at(datetime!(2026-11-28 10:59 UTC))), 0);
    assert_eq!(store.sweep(at(datetime!(2026-11-28 11:00 UTC))), 1);
    assert_eq!(store.counts().revoked, 0);
    // Forgotten; a created with a far later expiry (or none) for the same
    // session is capped at created_at + a day, which has passed.
    let after = at(datetime!(2026-11-28 11:00 UTC));
    store.apply(&late(Some(datetime!(2027-06-01 0:00 UTC))), after);
    assert_eq!(store.lookup(&sid("s"), after), Lookup::Expired);
    store.apply(&late(None), after);
    assert_eq!(store.lookup(&sid("s"), after), Lookup::Expired);
}

#[test]
fn without_a_lifetime_sweeping_is_by_expiry_alone() {
    let store = SessionStore::new();
    store.apply(&created("e", Some(datetime!(2026-11-27 12:00 UTC))), NOW);
    store.apply(&revoked("e"), NOW);
    store.apply(&revoked("r"), NOW);
    assert_eq!(store.sweep(Timestamp::from_datetime(datetime!(2030-01-01 0:00 UTC))), 1);
    assert_eq!(store.lookup(&sid("r"), NOW), Lookup::Revoked, "a revocation without an expiry is kept");
}

mod cutoff_order {
    use super::*;
    use crate::event::UserRevokedBefore;
    use crate::user::UserId;
    use proptest::prelude::*;

    /// A session event or a cutoff, over 4 sessions, 2 users and 8 seconds.
    fn step() -> impl Strategy<Value = (Option<SessionEvent>, Option<UserRevokedBefore>)> {
        let at = |quarters: i64| {
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
                + time::Duration::milliseconds(quarters * 250)
        };
        (0u8..4, 0u8..2, 0u8..3, 0i64..32).prop_map(move |(n, user, kind, t)| {
            let sid = sid(&format!("s-{n}"));
            let user_id = format!("user-{user}");
            match kind {
                0 => (Some(SessionEvent::Created { sid, user_id, created_at: at(t), expires_at: None }), None),
                1 => (Some(SessionEvent::Revoked { sid, revoked_at: at(t), reason: None }), None),
                _ => (
                    None,
                    Some(UserRevokedBefore { user_id: UserId::new(user_id).unwrap(), not_before: at(t), reason: None }),
                ),
            }
        })
    }

    fn answers(steps: &[(Option<SessionEvent>, Option<UserRevokedBefore>)]) -> Vec<Lookup> {
        let store = SessionStore::new();
        for (event, cutoff) in steps {
            if let Some(event) = event {
                store.apply(event, NOW);
            }
            if let Some(cutoff) = cutoff {
                let (key, value) = (cutoff.key(), cutoff.to_value());
                store.apply(EventJson.decode(&RawRecord::new(Some(&key), Some(&value))), NOW);
            }
        }
        (0..4).map(|n| store.lookup(&sid(&format!("s-{n}")), NOW)).collect()
    }

    proptest! {
        #[test]
        fn sessions_and_cutoffs_in_any_order_and_with_duplicates_answer_alike(
            (steps, shuffled) in proptest::collection::vec(step(), 1..16).prop_flat_map(|steps| {
                let mut all = steps.clone();
                all.extend(steps.iter().take(4).cloned());
                (Just(steps), Just(all).prop_shuffle())
            })
        ) {
            prop_assert_eq!(answers(&shuffled), answers(&steps));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1_000))]
    /// A batch applies records exactly as applying them one by one does,
    /// wherever it is flushed, with or without a maximum lifetime.
    #[test]
    fn a_batch_applies_as_one_by_one(
        records in proptest::collection::vec((0..4usize, 0..5usize, 0..3i64, proptest::bool::ANY), 0..40),
        lifetime in proptest::bool::ANY,
    ) {
        let sids = ["8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b", "00000000-0000-4000-8000-000000000001", "plain-id", "9b3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b"];
        let store = |_| {
            let store = SessionStore::new();
            if lifetime { store.with_max_session_lifetime(Duration::from_secs(3_600)) } else { store }
        };
        let (one_by_one, batched) = (store(0), store(1));
        let mut batch = ChangeBatch::default();
        for &(s, kind, hours, flush) in &records {
            let at = datetime!(2026-11-27 10:00 UTC) + time::Duration::hours(hours);
            let event = match kind {
                0 => SessionEvent::Created { sid: sid(sids[s]), user_id: "u".into(), created_at: at, expires_at: Some(at + time::Duration::hours(2)) },
                1 => SessionEvent::Created { sid: sid(sids[s]), user_id: "v".into(), created_at: at, expires_at: None },
                2 => SessionEvent::Revoked { sid: sid(sids[s]), revoked_at: at, reason: None },
                3 => SessionEvent::Tombstone { sid: sid(sids[s]) },
                // A malformed record of a UUID session: not batched, so the
                // batch is applied first, then it (revoking the session).
                _ => {
                    fn malformed(s: &SessionId) -> Decoded<'_> {
                        Decoded::Malformed { key: Some(s.as_sid_ref()), reason: "bad".into() }
                    }
                    let id = sid(sids[s]);
                    one_by_one.apply(malformed(&id), NOW);
                    if let Err(other) = batch.add(&batched, malformed(&id)) {
                        batched.apply_batch(&mut batch);
                        batched.apply(other, NOW);
                    }
                    continue;
                }
            };
            one_by_one.apply(&event, NOW);
            if let Err(other) = batch.add(&batched, (&event).into()) {
                batched.apply_batch(&mut batch);
                batched.apply(other, NOW);
            }
            if flush {
                batched.apply_batch(&mut batch);
            }
        }
        batched.apply_batch(&mut batch);
        proptest::prop_assert!(batch.is_empty());
        let held = |store: &SessionStore| {
            let mut held = Vec::new();
            store.for_each(|sid, state| held.push((sid.as_str().to_owned(), state)));
            held.sort_by(|a, b| a.0.cmp(&b.0));
            held
        };
        proptest::prop_assert_eq!(held(&one_by_one), held(&batched));
        proptest::prop_assert_eq!(one_by_one.counts(), batched.counts());
    }
}
