use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::clock::Timestamp;
use crate::event::SessionEvent;
use crate::format::RecordFormat;
use crate::session_id::SessionId;

const PARTITIONS: usize = 3;

/// One record of a simulated topic: its partition follows its key, as a
/// producer's partitioner does.
#[derive(Debug, Clone)]
struct Record {
    partition: usize,
    event: SessionEvent,
}

fn sid(n: u8) -> SessionId {
    // Half UUIDs (the packed map), half other ids (the text map).
    if n % 2 == 0 {
        SessionId::new(format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
    } else {
        SessionId::new(format!("session-{n}")).unwrap()
    }
}

fn record() -> impl Strategy<Value = Record> {
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap();
    (0u8..12, 0u8..3, 0i64..1000, proptest::option::of(0i64..1000)).prop_map(move |(n, kind, t, expiry)| {
        let sid = sid(n);
        let event = match kind {
            0 => SessionEvent::Created { sid, user_id: "u".into(), created_at: at(t), expires_at: expiry.map(at) },
            1 => SessionEvent::Revoked { sid, revoked_at: at(t), reason: None },
            _ => SessionEvent::Tombstone { sid },
        };
        Record { partition: usize::from(n) % PARTITIONS, event }
    })
}

fn contents(store: &SessionStore) -> BTreeMap<String, SessionState> {
    let mut all = BTreeMap::new();
    store.for_each(|sid, state| {
        all.insert(sid.as_str().to_owned(), state);
    });
    all
}

fn round_trip(store: &SessionStore, meta: &SnapshotMeta) -> SessionStore {
    let mut bytes = Vec::new();
    write_snapshot(store, meta, &mut bytes).unwrap();
    let restored = SessionStore::new();
    let (read, _) = read_snapshot(bytes.as_slice(), &restored).unwrap();
    assert_eq!(&read, meta);
    restored
}

fn meta(positions: BTreeMap<i32, i64>) -> SnapshotMeta {
    SnapshotMeta {
        topic: "t".into(),
        format: "events".into(),
        partitions: PARTITIONS as u32,
        positions,
        max_session_lifetime_secs: None,
        written_at_micros: 0,
        cluster_id: None,
        fresh_as_of_micros: None,
        sessions: 0,
    }
}

proptest! {
    /// Positions taken at `cut`, then a store that also holds any subset of
    /// the later records (those applied while the copy ran), then a replay
    /// of every partition from its position: the same store as a full replay.
    #[test]
    fn a_snapshot_at_any_point_plus_the_tail_is_a_full_replay(
        records in proptest::collection::vec(record(), 0..60),
        cut in 0usize..60,
        seen_during_copy in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let at = Timestamp::from_unix_secs(1_800_000_000);
        let cut = cut.min(records.len());
        let full = SessionStore::new();
        for r in &records {
            full.apply(&r.event, at);
        }
        // Offsets per partition, in topic order.
        let mut offsets = Vec::new();
        let mut next = [0i64; PARTITIONS];
        for r in &records {
            offsets.push(next[r.partition]);
            next[r.partition] += 1;
        }
        let live = SessionStore::new();
        let mut positions = BTreeMap::new();
        for (i, r) in records[..cut].iter().enumerate() {
            live.apply(&r.event, at);
            positions.insert(r.partition as i32, offsets[i] + 1);
        }
        // Per partition, records are applied in order: a record is seen
        // during the copy only if every earlier one of its partition was.
        let mut applied_to = [true; PARTITIONS];
        for (r, seen) in records[cut..].iter().zip(&seen_during_copy) {
            applied_to[r.partition] &= *seen;
            if applied_to[r.partition] {
                live.apply(&r.event, at);
            }
        }
        let warm = round_trip(&live, &meta(positions.clone()));
        for (i, r) in records.iter().enumerate() {
            let from = positions.get(&(r.partition as i32)).copied().unwrap_or(0);
            if offsets[i] >= from {
                warm.apply(&r.event, at);
            }
        }
        prop_assert_eq!(contents(&warm), contents(&full));
    }
}

#[test]
fn a_snapshot_written_while_records_arrive_plus_the_tail_is_a_full_replay() {
    let at = Timestamp::from_unix_secs(1_800_000_000);
    let events: Vec<SessionEvent> = (0..200_000u32)
        .map(|i| {
            let sid = SessionId::new(format!("{:08x}-0000-4000-8000-{:012x}", i % 50_000, i)).unwrap();
            if i % 3 == 0 {
                SessionEvent::Revoked { sid, revoked_at: time::macros::datetime!(2027-01-01 0:00 UTC), reason: None }
            } else {
                SessionEvent::Created {
                    sid,
                    user_id: "u".into(),
                    created_at: time::macros::datetime!(2027-01-01 0:00 UTC),
                    expires_at: None,
                }
            }
        })
        .collect();
    let full = SessionStore::new();
    for e in &events {
        full.apply(e, at);
    }
    let live = SessionStore::new();
    let cut = events.len() / 2;
    for e in &events[..cut] {
        live.apply(e, at);
    }
    let mut bytes = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            for e in &events[cut..] {
                live.apply(e, at);
            }
        });
        write_snapshot(&live, &meta([(0, cut as i64)].into()), &mut bytes).unwrap();
    });
    let warm = SessionStore::new();
    read_snapshot(bytes.as_slice(), &warm).unwrap();
    for e in &events[cut..] {
        warm.apply(e, at);
    }
    assert_eq!(contents(&warm), contents(&full));
}

#[test]
fn a_damaged_snapshot_is_refused_with_its_reason() {
    let store = SessionStore::new();
    for n in 0..40 {
        store.apply(
            &SessionEvent::Revoked {
                sid: sid(n),
                revoked_at: time::macros::datetime!(2027-01-01 0:00 UTC),
                reason: None,
            },
            Timestamp::EPOCH,
        );
    }
    let mut bytes = Vec::new();
    write_snapshot(&store, &meta([(0, 40)].into()), &mut bytes).unwrap();
    let read = |bytes: &[u8]| read_snapshot(bytes, &SessionStore::new());

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    assert!(matches!(read(&flipped), Err(SnapshotError::Checksum { .. } | SnapshotError::BadEntry)));

    let truncated = &bytes[..bytes.len() - 7];
    assert!(matches!(read(truncated), Err(SnapshotError::Checksum { .. })), "{:?}", read(truncated));
    assert!(matches!(read(&bytes[..10]), Err(SnapshotError::Truncated)));

    let mut other_version = bytes.clone();
    other_version[8..12].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    assert!(matches!(read(&other_version), Err(SnapshotError::Version { found }) if found == SNAPSHOT_VERSION + 1));

    assert!(matches!(read(b"{\"topic\":1}"), Err(SnapshotError::NotASnapshot)));
    assert!(read(&bytes).is_ok());
}

/// Many sessions restored into a store laid out as the written one (the warm
/// start), into one of another seed that must grow, and into one that
/// already holds some: each ends up with exactly what was written, merged
/// with what it held.
#[test]
fn a_large_snapshot_restores_every_session_in_whatever_store_it_meets() {
    let store = SessionStore::with_capacity(300_000);
    let now = time::macros::datetime!(2027-01-01 0:00 UTC);
    let uuid = |i: u64| uuid::Uuid::from_u64_pair(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i).to_string();
    for i in 0..300_000u64 {
        let sid = SessionId::new(uuid(i)).unwrap();
        let event = if i % 7 == 0 {
            SessionEvent::Revoked { sid, revoked_at: now, reason: None }
        } else {
            SessionEvent::Created { sid, user_id: "u".into(), created_at: now, expires_at: None }
        };
        store.apply(&event, Timestamp::EPOCH);
    }
    let mut bytes = Vec::new();
    write_snapshot(&store, &meta([(0, 300_000)].into()), &mut bytes).unwrap();
    let snapshot = Snapshot::read(bytes.as_slice()).unwrap();

    let sized = snapshot.new_store();
    assert_eq!(sized.hash_seed(), store.hash_seed());
    let growing = SessionStore::new();
    let holding = SessionStore::new();
    let revoked_before = SessionId::new(uuid(1)).unwrap();
    holding.apply(&SessionEvent::Revoked { sid: revoked_before, revoked_at: now, reason: None }, Timestamp::EPOCH);
    for into in [&sized, &growing, &holding] {
        assert_eq!(snapshot.restore(into).unwrap().sessions, 300_000);
    }
    let expected = contents(&store);
    assert_eq!(contents(&sized), expected);
    assert_eq!(contents(&growing), expected);
    let mut expected_holding = expected.clone();
    let one = expected_holding.get_mut(&uuid(1)).unwrap();
    *one = one.merge(SessionState::revoked(now));
    assert_eq!(contents(&holding), expected_holding);
    assert_eq!(holding.counts().revoked, store.counts().revoked + 1);
}

#[test]
fn a_snapshot_keeps_every_users_cutoff_and_each_sessions_owner() {
    let store = SessionStore::new();
    let now = Timestamp::from_unix_secs(1_800_000_000);
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap();
    for n in 0..6u8 {
        let user_id = format!("user-{}", n % 2);
        store.apply(
            &SessionEvent::Created { sid: sid(n), user_id, created_at: at(i64::from(n)), expires_at: None },
            now,
        );
    }
    let cutoff = crate::event::UserRevokedBefore {
        user_id: crate::user::UserId::new("user-0").unwrap(),
        not_before: at(3),
        reason: None,
    };
    let (key, value) = (cutoff.key(), cutoff.to_value());
    store.apply(crate::format::EventJson.decode(&crate::format::RawRecord::new(Some(&key), Some(&value))), now);
    let restored = round_trip(&store, &meta(BTreeMap::new()));
    assert_eq!(restored.cutoffs().len(), 1);
    assert_eq!(
        restored.cutoffs().get(crate::user::UserTag::of("user-0")),
        Some(Timestamp::from_unix_secs(1_800_000_003))
    );
    for n in 0..6u8 {
        let answer = |s: &SessionStore| s.lookup(&sid(n), now);
        assert_eq!(answer(&restored), answer(&store), "session {n}");
    }
    // user-0's sessions 0 and 2 were created before its cutoff; 4 after it.
    assert_eq!(restored.lookup(&sid(0), now), crate::store::Lookup::Revoked);
    assert_eq!(restored.lookup(&sid(2), now), crate::store::Lookup::Revoked);
    assert_eq!(restored.lookup(&sid(4), now), crate::store::Lookup::Live);
    assert_eq!(restored.lookup(&sid(1), now), crate::store::Lookup::Live, "another user");
}
