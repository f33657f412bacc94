//! Booting from peers past snapshots the broker would refuse, with real
//! projector processes on the real Kafka: a sound local snapshot written
//! days ago (a volume that outlived half the topic's `delete.retention.ms`)
//! is as good as none, and so is a peer's of another cluster — the replica
//! asks the next peer; with none to give one it starts cold saying why,
//! peer by peer. A broker that cannot be asked leaves the local snapshot
//! to the start's own checks, as without peers. And a release that changes
//! the snapshot layout, rolled out a pod at a time: the replica passes the
//! snapshots of the other layout and boots from a peer already on its own.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::sync::atomic::Ordering;
use std::time::Duration;

use revocation_core::{SNAPSHOT_VERSION, SessionStore, SnapshotMeta, Timestamp, read_snapshot, write_snapshot};
use revocation_kafka::delete_topic;
use revocation_test_support::ProjectorProcess;
use time::OffsetDateTime;

mod peer_support;
use peer_support::*;

/// A live peer's snapshot as it serves it, to be rewritten.
struct Served {
    meta: SnapshotMeta,
    store: SessionStore,
}

impl Served {
    async fn of(peer: &ProjectorProcess) -> Self {
        let store = SessionStore::new();
        let (meta, _) = read_snapshot(&served_snapshot(peer).await[..], &store).unwrap();
        Self { meta, store }
    }

    /// The same sessions under an edited header (checksum right).
    fn rewritten(&self, edit: impl Fn(&mut SnapshotMeta)) -> Vec<u8> {
        let mut meta = self.meta.clone();
        edit(&mut meta);
        let mut body = Vec::new();
        write_snapshot(&self.store, &meta, &mut body).unwrap();
        body
    }

    /// Fresh as of three days ago: past half the broker's default
    /// `delete.retention.ms` (one day), which the test topics keep.
    fn days_old(&self) -> Vec<u8> {
        self.rewritten(|m| {
            m.written_at_micros = three_days_ago();
            m.fresh_as_of_micros = Some(three_days_ago());
        })
    }
}

fn three_days_ago() -> i64 {
    Timestamp::from_datetime(OffsetDateTime::now_utc() - time::Duration::days(3)).as_unix_micros()
}

#[tokio::test]
async fn a_local_or_peer_snapshot_the_broker_would_refuse_sends_the_replica_to_the_next_peer() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let served = Served::of(&peer).await;
    let other_cluster = served.rewritten(|m| m.cluster_id = Some("another-cluster".into()));
    let (other, asked) = counted_fake_peer(other_cluster.into(), false).await;
    let (data, local) = holding(&dirs, "next-peer", &topic, &served.days_old());
    let replica = booting(&topic, &data, &format!("{other},{}", peer.base), &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the other cluster's peer was asked first");
    let (kept, _) = read_snapshot(std::fs::File::open(&local).unwrap(), &SessionStore::new()).unwrap();
    assert_eq!(kept.cluster_id, served.meta.cluster_id, "the live peer's snapshot, not the other cluster's");
    assert!(kept.fresh_as_of_micros > Some(three_days_ago()), "the old local snapshot was replaced: {kept:?}");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}

#[tokio::test]
async fn with_no_peer_to_replace_a_refused_local_snapshot_the_start_is_cold_saying_why_peer_by_peer() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let served = Served::of(&peer).await;
    let other = fake_peer(served.rewritten(|m| m.cluster_id = Some("another-cluster".into())).into(), false).await;
    let (data, local) = holding(&dirs, "no-peer", &topic, &served.days_old());
    let replica = booting(&topic, &data, &other, &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "cold", "{start}");
    let why = start["reason"].as_str().unwrap_or_default();
    assert!(why.contains("the local snapshot: the broker would not resume it") && why.contains("retention"), "{why}");
    assert!(why.contains("another-cluster"), "the peer's answer is in the reason too: {why}");
    assert!(!local.exists(), "the refused local snapshot is not kept to be refused again");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}

/// The broker unreachable: its verdict is unknown, the local snapshot is
/// used as without peers (the start judges it once the broker answers),
/// and no peer is asked.
#[tokio::test]
async fn a_broker_that_cannot_be_asked_leaves_the_local_snapshot_to_the_start() {
    let dirs = Dirs::new();
    let (topic, kafka, _sids, peer) = live_peer(&dirs, 10, 3).await;
    let served = Served::of(&peer).await;
    let (counted, asked) = counted_fake_peer(served.rewritten(|_| {}).into(), false).await;
    let local_bytes = served.rewritten(|_| {});
    let (data, local) = holding(&dirs, "unreachable", &topic, &local_bytes);
    let args = ["--topic", &topic, "--bootstrap-servers", "127.0.0.1:1", "--snapshot-dir", &data];
    let token = dirs.file("token");
    let more = ["--bootstrap-from", &counted, "--bootstrap-token-file", &token];
    let replica = ProjectorProcess::start(env!("CARGO_BIN_EXE_projector"), &[&args[..], &more[..]].concat());
    replica.wait_until("/livez", 200, Duration::from_secs(60)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 0, "no peer asked");
    assert_eq!(std::fs::read(&local).unwrap(), local_bytes, "the local snapshot is kept as it was");
    delete_topic(&kafka).await.ok();
}

/// The same snapshot as another release would write it: another version in
/// the header and a checksum that holds, so only the version refuses it.
fn in_another_layout(mut snapshot: Vec<u8>) -> Vec<u8> {
    snapshot[8..12].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    let body = snapshot.len() - 4;
    let crc = crc32fast::hash(&snapshot[..body]);
    snapshot[body..].copy_from_slice(&crc.to_le_bytes());
    snapshot
}

/// What `docs/operations.md` ("Upgrades") tells an operator: during a
/// rollout that changes the layout, the pods' own snapshots and the peers
/// not yet replaced hold the other one; a peer already replaced serves this
/// one, and the replica boots warm from it.
#[tokio::test]
async fn across_a_snapshot_layout_change_the_replica_boots_from_a_peer_on_its_own_layout() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let served = Served::of(&peer).await;
    let other_layout = in_another_layout(served.rewritten(|_| {}));
    let (not_replaced, asked) = counted_fake_peer(other_layout.clone().into(), false).await;
    let (data, local) = holding(&dirs, "layout", &topic, &other_layout);
    let replica = booting(&topic, &data, &format!("{not_replaced},{}", peer.base), &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the peer not yet replaced was asked first");
    let kept = std::fs::read(&local).unwrap();
    assert_eq!(kept[8..12], SNAPSHOT_VERSION.to_le_bytes(), "the local snapshot is now of this layout");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}
