//! How a feed starts: warm, from a snapshot's positions once the broker
//! confirms it still holds every record after them, or cold, from the
//! beginning. And what the start reports while it runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use revocation_core::{Clock, SnapshotMeta, SystemClock};

use super::Shared;
use super::errors::{DiscoveryError, SnapshotRefusal};

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
pub(super) fn first_offsets(shared: &Shared, partitions: &[i32]) -> Result<Vec<(i32, Offset)>, DiscoveryError> {
    learn_topic(shared)?;
    let from_beginning = || partitions.iter().map(|&p| (p, Offset::Beginning)).collect::<Vec<_>>();
    let Some(warm) = shared.stats.start.pending.lock().map_err(|_| DiscoveryError::Poisoned("start"))?.clone() else {
        return Ok(from_beginning());
    };
    let mut watermarks = BTreeMap::new();
    for &p in partitions {
        let (low, high) = shared
            .sampler
            .fetch_watermarks(&shared.config.topic, p, shared.config.sample_timeout)
            .map_err(|source| DiscoveryError::SnapshotWatermarks { partition: p, source: Box::new(source) })?;
        watermarks.insert(p, (low, high));
    }
    if let Ok(mut pending) = shared.stats.start.pending.lock() {
        pending.take();
    }
    let store = shared.projection.store();
    let topic = TopicNow {
        cluster_id: shared.stats.cluster_id.get().map(String::as_str),
        tombstone_retention: shared.stats.tombstone_retention.get().cloned().unwrap_or(Ok(None)),
        now: SystemClock.now(),
    };
    match usable_positions(&warm.meta, &watermarks, &topic) {
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
                info.reason = Some(why.to_string());
                info.records_to_replay = Some(total.max(0) as u64);
            });
            Ok(from_beginning())
        }
    }
}

/// Learns, once per feed, the cluster's id and how long the topic keeps
/// tombstones. `Err` when the cluster's id cannot be read (the caller
/// retries); a topic configuration that cannot be read (an ACL without
/// DescribeConfigs, say) is remembered as such, and no snapshot is trusted.
fn learn_topic(shared: &Shared) -> Result<(), DiscoveryError> {
    if shared.stats.cluster_id.get().is_none() {
        let id = shared
            .sampler
            .client()
            .fetch_cluster_id(shared.config.sample_timeout.max(Duration::from_secs(2)))
            .ok_or(DiscoveryError::ClusterId)?;
        let _ = shared.stats.cluster_id.set(id);
    }
    if shared.stats.tombstone_retention.get().is_none() {
        let retention = futures::executor::block_on(crate::admin::tombstone_retention(&shared.config))
            .map_err(|e| format!("cannot read the topic's delete.retention.ms ({})", crate::ClientRefused(e)));
        if let Err(why) = &retention {
            tracing::warn!(topic = %shared.config.topic, reason = %why, "snapshots cannot be trusted on this topic");
        }
        let _ = shared.stats.tombstone_retention.set(retention);
    }
    Ok(())
}

/// What the broker says of the topic now, against which a snapshot is judged.
#[derive(Debug, Clone)]
pub(crate) struct TopicNow<'a> {
    /// The cluster's id.
    pub(crate) cluster_id: Option<&'a str>,
    /// `delete.retention.ms` when compacted (`Ok(None)`: not compacted).
    pub(crate) tombstone_retention: Result<Option<Duration>, String>,
    /// Our clock, now.
    pub(crate) now: revocation_core::Timestamp,
}

/// Positions older than this share of `delete.retention.ms` are not
/// resumed: the replay from them must also reach a tombstone before
/// compaction removes it, so half is left for the replay and for clocks.
const RETENTION_SHARE: u32 = 2;

/// How far in the future a snapshot's freshness may lie and still count as
/// age zero: clocks that agree to within this much. Beyond it the clocks
/// disagree and the age cannot be judged, so the snapshot is refused. This
/// catches a writer's clock ahead of ours only while the snapshot is
/// younger than the skew (a peer's always is); an older one's age is
/// understated by the skew, which the half of the retention left by
/// [`RETENTION_SHARE`] must cover.
const CLOCK_LEEWAY: Duration = Duration::from_secs(60);

/// Whether the snapshot's positions can be resumed: written on this
/// cluster; younger than half the topic's `delete.retention.ms` (older
/// positions may have missed a tombstone, and the records it erased, to
/// compaction); the same partition count; and each position between the
/// partition's log start and its high watermark. Returns the records to
/// replay, or why the snapshot cannot be used.
pub(crate) fn usable_positions(
    meta: &SnapshotMeta,
    watermarks: &BTreeMap<i32, (i64, i64)>,
    topic: &TopicNow<'_>,
) -> Result<u64, SnapshotRefusal> {
    match (meta.cluster_id.as_deref(), topic.cluster_id) {
        (Some(then), Some(now)) if then == now => {}
        (Some(then), Some(now)) => {
            return Err(SnapshotRefusal::OtherCluster { then: then.to_owned(), now: now.to_owned() });
        }
        (None, _) => return Err(SnapshotRefusal::ClusterNotRecorded),
        (_, None) => return Err(SnapshotRefusal::ClusterUnknown),
    }
    match &topic.tombstone_retention {
        Ok(None) => {}
        Ok(Some(retention)) => {
            let Some(fresh_as_of) = meta.fresh_as_of_micros else {
                return Err(SnapshotRefusal::FreshnessNotRecorded);
            };
            let fresh_as_of = revocation_core::Timestamp::from_unix_micros(fresh_as_of);
            let ahead = fresh_as_of.saturating_since(topic.now);
            if ahead > CLOCK_LEEWAY {
                return Err(SnapshotRefusal::FreshInFuture { ahead_secs: ahead.as_secs() });
            }
            let age = topic.now.saturating_since(fresh_as_of);
            if age > *retention / RETENTION_SHARE {
                return Err(SnapshotRefusal::OlderThanRetention {
                    age_secs: age.as_secs(),
                    retention_ms: retention.as_millis(),
                });
            }
        }
        Err(why) => return Err(SnapshotRefusal::RetentionUnknown(why.clone())),
    }
    if meta.partitions as usize != watermarks.len() {
        return Err(SnapshotRefusal::Partitions { snapshot: meta.partitions, topic: watermarks.len() });
    }
    let mut to_replay = 0i64;
    for (&p, &(low, high)) in watermarks {
        let Some(&position) = meta.positions.get(&p) else {
            to_replay += high - low;
            continue;
        };
        if position < low {
            return Err(SnapshotRefusal::Compacted { partition: p, position, low });
        }
        if position > high {
            return Err(SnapshotRefusal::PastHighWatermark { partition: p, position, high });
        }
        to_replay += high - position;
    }
    Ok(to_replay.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: revocation_core::Timestamp = revocation_core::Timestamp::from_unix_secs(1_800_000_000);

    fn topic(retention: Option<Duration>) -> TopicNow<'static> {
        TopicNow { cluster_id: Some("cluster-a"), tombstone_retention: Ok(retention), now: NOW }
    }

    fn meta(partitions: u32, positions: &[(i32, i64)]) -> SnapshotMeta {
        SnapshotMeta {
            topic: "t".into(),
            format: "events".into(),
            partitions,
            positions: positions.iter().copied().collect(),
            max_session_lifetime_secs: None,
            written_at_micros: 0,
            cluster_id: Some("cluster-a".into()),
            fresh_as_of_micros: Some(NOW.as_unix_micros() - 60_000_000),
            sessions: 0,
        }
    }

    #[test]
    fn positions_are_usable_only_where_the_broker_still_holds_what_follows() {
        let marks = |m: &[(i32, (i64, i64))]| m.iter().copied().collect::<BTreeMap<_, _>>();
        let two = marks(&[(0, (0, 100)), (1, (10, 50))]);
        assert_eq!(usable_positions(&meta(2, &[(0, 90), (1, 50)]), &two, &topic(None)), Ok(10));
        assert_eq!(usable_positions(&meta(2, &[(0, 90)]), &two, &topic(None)), Ok(10 + 40));
        assert!(
            usable_positions(&meta(3, &[(0, 90)]), &two, &topic(None)).unwrap_err().to_string().contains("partitions")
        );
        assert!(
            usable_positions(&meta(2, &[(1, 5)]), &two, &topic(None)).unwrap_err().to_string().contains("log start")
        );
        assert!(
            usable_positions(&meta(2, &[(0, 101)]), &two, &topic(None)).unwrap_err().to_string().contains("recreated")
        );
    }

    #[test]
    fn positions_older_than_half_the_tombstone_retention_or_of_another_cluster_are_refused() {
        let marks: BTreeMap<_, _> = [(0, (0, 100))].into_iter().collect();
        let snapshot = meta(1, &[(0, 90)]); // positions a minute old
        assert_eq!(usable_positions(&snapshot, &marks, &topic(Some(Duration::from_secs(3600)))), Ok(10));
        let why = usable_positions(&snapshot, &marks, &topic(Some(Duration::from_secs(100)))).unwrap_err().to_string();
        assert!(why.contains("delete.retention.ms"), "{why}");
        let unknown = TopicNow { tombstone_retention: Err("denied".into()), ..topic(None) };
        assert!(usable_positions(&snapshot, &marks, &unknown).unwrap_err().to_string().contains("denied"));
        let elsewhere = TopicNow { cluster_id: Some("cluster-b"), ..topic(None) };
        assert!(usable_positions(&snapshot, &marks, &elsewhere).unwrap_err().to_string().contains("cluster"));
        let old = SnapshotMeta { cluster_id: None, ..snapshot.clone() };
        assert!(usable_positions(&old, &marks, &topic(None)).unwrap_err().to_string().contains("cluster"));
        let ageless = SnapshotMeta { fresh_as_of_micros: None, ..snapshot.clone() };
        assert!(usable_positions(&ageless, &marks, &topic(Some(Duration::from_secs(3600)))).is_err());
    }

    #[test]
    fn positions_fresh_beyond_the_clock_leeway_in_the_future_are_refused() {
        let marks: BTreeMap<_, _> = [(0, (0, 100))].into_iter().collect();
        let hour = topic(Some(Duration::from_secs(3600)));
        let ahead = |secs: i64| SnapshotMeta {
            fresh_as_of_micros: Some(NOW.as_unix_micros() + secs * 1_000_000),
            ..meta(1, &[(0, 90)])
        };
        assert_eq!(usable_positions(&ahead(CLOCK_LEEWAY.as_secs() as i64), &marks, &hour), Ok(10));
        let why = usable_positions(&ahead(3 * 3600), &marks, &hour).unwrap_err();
        assert_eq!(why, SnapshotRefusal::FreshInFuture { ahead_secs: 3 * 3600 });
        assert!(why.to_string().contains("clock"), "{why}");
        // Without a tombstone retention there is no age rule to judge.
        assert_eq!(usable_positions(&ahead(3 * 3600), &marks, &topic(None)), Ok(10));
    }
}
