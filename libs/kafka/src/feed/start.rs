//! How a feed starts: warm, from a snapshot's positions once the broker
//! confirms it still holds every record after them, or cold, from the
//! beginning. And what the start reports while it runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use revocation_core::SnapshotMeta;

use super::Shared;

/// A snapshot loaded into the store, waiting for the broker's word.
#[derive(Debug, Clone)]
pub struct WarmStart {
    /// The snapshot's header (topic, partitions, positions).
    pub meta: SnapshotMeta,
    /// Sessions it held.
    pub sessions: u64,
}

/// How the feed started, and how fast it is replaying (`/health/lag`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartInfo {
    /// Whether the start resumed from a snapshot.
    pub warm: bool,
    /// Why a snapshot was not used, when one was looked for.
    pub reason: Option<String>,
    /// Sessions the snapshot held (0 for a cold start).
    pub snapshot_sessions: u64,
    /// Records the start had to replay, as first measured (the sum of high
    /// watermarks minus starting positions).
    pub records_to_replay: Option<u64>,
    /// Replay rate: over the last progress interval while replaying, over
    /// the whole start once Live.
    pub records_per_sec: u64,
    /// Time from start to Live, once Live.
    pub caught_up_after: Option<Duration>,
}

/// The start's shared state: the pending snapshot and the report.
#[derive(Debug, Default)]
pub(super) struct Start {
    pending: Mutex<Option<WarmStart>>,
    pub(super) info: Mutex<StartInfo>,
}

impl Start {
    pub(super) fn new(warm: Option<WarmStart>, reason: Option<String>) -> Self {
        let info = StartInfo { reason, ..StartInfo::default() };
        Self { pending: Mutex::new(warm), info: Mutex::new(info) }
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut StartInfo)) {
        if let Ok(mut info) = self.info.lock() {
            f(&mut info);
        }
    }
}

/// Where each of the topic's first partitions starts. With a pending
/// snapshot, the broker is asked whether its positions are still readable:
/// if so, the partitions start there (and the freshness knows it); if not,
/// the store is emptied and every partition starts from the beginning.
/// `Err` when the broker could not be asked (the caller retries).
pub(super) fn first_offsets(shared: &Shared, partitions: &[i32]) -> Result<Vec<(i32, Offset)>, String> {
    let from_beginning = || partitions.iter().map(|&p| (p, Offset::Beginning)).collect::<Vec<_>>();
    let Some(warm) = shared.stats.start.pending.lock().map_err(|_| "start lock poisoned")?.clone() else {
        return Ok(from_beginning());
    };
    let mut watermarks = BTreeMap::new();
    for &p in partitions {
        let (low, high) = shared
            .sampler
            .fetch_watermarks(&shared.config.topic, p, shared.config.sample_timeout)
            .map_err(|e| format!("watermark query of partition {p} (to check the snapshot): {e}"))?;
        watermarks.insert(p, (low, high));
    }
    if let Ok(mut pending) = shared.stats.start.pending.lock() {
        pending.take();
    }
    let store = shared.projection.store();
    match usable_positions(&warm.meta, &watermarks) {
        Ok(to_replay) => {
            let freshness = shared.projection.freshness();
            let offsets = partitions
                .iter()
                .map(|&p| match warm.meta.positions.get(&p) {
                    Some(&position) => {
                        freshness.record_position(p, position);
                        (p, Offset::Offset(position))
                    }
                    None => (p, Offset::Beginning),
                })
                .collect();
            tracing::info!(
                topic = %shared.config.topic,
                sessions = warm.sessions,
                records_to_replay = to_replay,
                "warm start: the snapshot's positions are on the broker; replaying the tail"
            );
            shared.stats.start.update(|info| {
                info.warm = true;
                info.snapshot_sessions = warm.sessions;
                info.records_to_replay = Some(to_replay);
            });
            Ok(offsets)
        }
        Err(why) => {
            store.clear();
            let total: i64 = watermarks.values().map(|(low, high)| high - low).sum();
            tracing::warn!(
                topic = %shared.config.topic,
                reason = %why,
                "snapshot not used: replaying the topic in full"
            );
            shared.stats.start.update(|info| {
                info.reason = Some(why);
                info.records_to_replay = Some(total.max(0) as u64);
            });
            Ok(from_beginning())
        }
    }
}

/// Whether the broker still holds every record after the snapshot's
/// positions: the same partition count, and each position between the
/// partition's log start and its high watermark. Returns the records to
/// replay, or why the snapshot cannot be used.
pub(super) fn usable_positions(meta: &SnapshotMeta, watermarks: &BTreeMap<i32, (i64, i64)>) -> Result<u64, String> {
    if meta.partitions as usize != watermarks.len() {
        return Err(format!("it has {} partitions, the topic has {}", meta.partitions, watermarks.len()));
    }
    let mut to_replay = 0i64;
    for (&p, &(low, high)) in watermarks {
        let Some(&position) = meta.positions.get(&p) else {
            to_replay += high - low;
            continue;
        };
        if position < low {
            return Err(format!(
                "partition {p}: the topic no longer holds offsets {position}..{low} (log start {low} is past the snapshot's position {position})"
            ));
        }
        if position > high {
            return Err(format!(
                "partition {p}: the snapshot's position {position} is past the high watermark {high} (was the topic recreated?)"
            ));
        }
        to_replay += high - position;
    }
    Ok(to_replay.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(partitions: u32, positions: &[(i32, i64)]) -> SnapshotMeta {
        SnapshotMeta {
            topic: "t".into(),
            format: "events".into(),
            partitions,
            positions: positions.iter().copied().collect(),
            max_session_lifetime_secs: None,
            written_at_micros: 0,
            sessions: 0,
        }
    }

    #[test]
    fn positions_are_usable_only_where_the_broker_still_holds_what_follows() {
        let marks = |m: &[(i32, (i64, i64))]| m.iter().copied().collect::<BTreeMap<_, _>>();
        let two = marks(&[(0, (0, 100)), (1, (10, 50))]);
        assert_eq!(usable_positions(&meta(2, &[(0, 90), (1, 50)]), &two), Ok(10));
        assert_eq!(usable_positions(&meta(2, &[(0, 90)]), &two), Ok(10 + 40));
        assert!(usable_positions(&meta(3, &[(0, 90)]), &two).unwrap_err().contains("partitions"));
        assert!(usable_positions(&meta(2, &[(1, 5)]), &two).unwrap_err().contains("log start"));
        assert!(usable_positions(&meta(2, &[(0, 101)]), &two).unwrap_err().contains("recreated"));
    }
}
