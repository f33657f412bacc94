use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::clock::Timestamp;
use crate::event::SessionEvent;
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
    other_version[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(read(&other_version), Err(SnapshotError::Version { found: 2 })));

    assert!(matches!(read(b"{\"topic\":1}"), Err(SnapshotError::NotASnapshot)));
    assert!(read(&bytes).is_ok());
}
