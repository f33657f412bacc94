//! Booting from a peer, with real projector processes on the real Kafka: a
//! new replica with an empty disk fetches a live peer's snapshot, replays
//! only the tail and then holds what a full replay holds; every peer that
//! cannot give a sound snapshot (no token, not live, another topic, cluster
//! or format, too old, a truncated or broken-off stream) is refused, the replica starts
//! cold with the reason in `/health/lag` `start`, and nothing is half-loaded;
//! a torn local snapshot is replaced by a peer's (and one the broker would
//! refuse: `peer_refused.rs`).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_core::{SessionEvent, SessionId, SessionStore, SnapshotMeta, Timestamp, read_snapshot, write_snapshot};
use revocation_kafka::delete_topic;
use revocation_test_support::ProjectorProcess;
use time::OffsetDateTime;

mod peer_support;
use peer_support::*;

#[tokio::test]
async fn a_new_replica_boots_from_a_live_peer_replays_the_tail_and_holds_what_a_full_replay_holds() {
    let dirs = Dirs::new();
    let (topic, kafka, publisher, mut sids) = topic_with(300, 7).await;
    let peer = projector(&topic, &["--admin-token-file", &dirs.file("token")]);
    peer.wait_until("/health/lag", 200, Duration::from_secs(60)).await;
    let data = dirs.empty("new");
    let replica = booting(&topic, &data, &peer.base, &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 300, "{start}");
    // The tail: published after the peer's snapshot, revoking some of the first sessions too.
    let tail: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    publish(&publisher, &tail, 5).await;
    let now = OffsetDateTime::now_utc();
    for s in sids.iter().step_by(11) {
        let sid = SessionId::new(s.clone()).unwrap();
        publisher.publish(&SessionEvent::Revoked { sid, revoked_at: now, reason: None }).await.unwrap();
    }
    sids.extend(tail);
    let full = projector(&topic, &[]);
    assert_eq!(start_report(&full).await["kind"], "cold");
    tokio::time::sleep(Duration::from_secs(1)).await; // both past the tail (bound: 2 s)
    replica.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    let (from_peer, from_topic) = (answers(&replica, &sids).await, answers(&full, &sids).await);
    assert_eq!(from_peer, from_topic, "the replica booted from the peer answers as a full replay does");
    assert!(from_peer.contains(&410) && from_peer.contains(&200));
    delete_topic(&kafka).await.ok();
}

#[tokio::test]
async fn every_unsound_peer_is_refused_and_the_replica_starts_cold_saying_why() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;

    // No token, a wrong one: refused by the peer.
    assert_eq!(reqwest::get(format!("{}/admin/snapshot", peer.base)).await.unwrap().status(), 401);
    let bytes = served_snapshot(&peer).await;
    assert!(bytes.len() > 100 * 16, "a snapshot of 100 sessions: {} bytes", bytes.len());

    let cold = |what, peer_url, token, more| start_cold(&dirs, &topic, what, peer_url, token, more);
    let (_, why, _) = cold("wrong-token", peer.base.clone(), "wrong-token", vec![]).await;
    assert!(why.contains("401"), "wrong token: {why}");

    // A peer echoing the request's Authorization header in its reason: the token shows nowhere.
    let (_, why, _) = cold("echoing", echoing_peer().await, "token", vec![]).await;
    assert!(why.contains("401") && why.contains("[the token]") && !why.contains(TOKEN), "echoing peer: {why}");

    // Another format: the peer's snapshot is fetched, then refused as a local one would be.
    let (_, why, _) = cold("format", peer.base.clone(), "token", vec!["--format".into(), "cloudevents".into()]).await;
    assert!(why.contains("format"), "another format: {why}");

    // A peer that is not live (its broker unreachable: Cold) serves nothing.
    let down = ProjectorProcess::start(
        env!("CARGO_BIN_EXE_projector"),
        &["--topic", &topic, "--bootstrap-servers", "127.0.0.1:1", "--admin-token-file", &dirs.file("token")],
    );
    down.wait_until("/livez", 200, Duration::from_secs(10)).await;
    let (_, why, _) = cold("not-live", down.base.clone(), "token", vec![]).await;
    assert!(why.contains("503") && why.contains("not live"), "peer not live: {why}");

    // Truncated, corrupt, broken off mid-transfer: served by a fake peer.
    let half = bytes.slice(..bytes.len() / 2);
    let mut corrupt = bytes.to_vec();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    for (what, body, broken) in
        [("truncated", half.clone(), false), ("corrupt", corrupt.into(), false), ("broken-off", half, true)]
    {
        let fake = fake_peer(body, broken).await;
        let (replica, why, data) = cold(what, fake, "token", vec![]).await;
        eprintln!("{what}: {why}");
        assert!(why.contains("fetched from") || why.contains("no snapshot from any peer"), "{what}: {why}");
        // Nothing half-loaded: the replica holds what the topic says.
        assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await, "{what}");
        if broken {
            assert!(why.contains("transfer broken after"), "{what}: {why}");
            let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(
                left.iter().all(|f| !f.to_string_lossy().ends_with(".peer")),
                "{what}: a partial file left: {left:?}"
            );
        }
    }
    delete_topic(&kafka).await.ok();
}

/// A replica of `topic` with an empty disk booting from `peer_url` with the
/// token in file `token`, which must start cold: it, why, and its data dir.
async fn start_cold(
    dirs: &Dirs,
    topic: &str,
    what: &str,
    peer_url: String,
    token: &str,
    more: Vec<String>,
) -> (ProjectorProcess, String, String) {
    let data = dirs.empty(what);
    let mut args = vec!["--snapshot-dir".to_owned(), data.clone(), "--bootstrap-from".to_owned(), peer_url];
    args.extend(["--bootstrap-token-file".to_owned(), dirs.file(token)]);
    args.extend(more);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let replica = projector(topic, &args);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "cold", "{what}: {start}");
    (replica, start["reason"].as_str().unwrap_or_default().to_owned(), data)
}

/// A sound snapshot — checksum right, stream whole — of another topic, of
/// another Kafka cluster, or older than the topic's tombstones last, from a
/// (fake) peer: refused as a local one would be, and the replica replays.
#[tokio::test]
async fn a_sound_snapshot_of_another_topic_cluster_or_age_is_refused() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let bytes = served_snapshot(&peer).await;
    let store = SessionStore::new();
    let (meta, _) = read_snapshot(&bytes[..], &store).unwrap();
    assert!(meta.cluster_id.is_some(), "a peer's snapshot names its cluster: {meta:?}");
    let now = OffsetDateTime::now_utc();
    let three_days_ago = Timestamp::from_datetime(now - time::Duration::days(3)).as_unix_micros();
    let in_an_hour = Timestamp::from_datetime(now + time::Duration::hours(1)).as_unix_micros();
    type Edit = fn(&mut SnapshotMeta, i64, i64);
    let edits: [(&str, Edit, &str); 4] = [
        ("other-topic", |m, _, _| m.topic = "another-topic".into(), "topic"),
        ("other-cluster", |m, _, _| m.cluster_id = Some("another-cluster".into()), "cluster"),
        (
            "too-old",
            |m, at, _| {
                m.written_at_micros = at;
                m.fresh_as_of_micros = Some(at);
            },
            "retention",
        ),
        // A writer's clock an hour ahead: the snapshot's age cannot be judged.
        ("fresh-in-the-future", |m, _, ahead| m.fresh_as_of_micros = Some(ahead), "in the future"),
    ];
    for (what, edit, expected) in edits {
        let mut edited = meta.clone();
        edit(&mut edited, three_days_ago, in_an_hour);
        let mut body = Vec::new();
        write_snapshot(&store, &edited, &mut body).unwrap();
        let fake = fake_peer(body.into(), false).await;
        let (replica, why, _) = start_cold(&dirs, &topic, what, fake, "token", vec![]).await;
        eprintln!("{what}: {why}");
        assert!(why.contains(expected), "{what}: {why}");
        assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await, "{what}");
    }
    delete_topic(&kafka).await.ok();
}

/// A peer busy streaming to others (503 with `Retry-After`) is asked again,
/// and its snapshot is then used.
#[tokio::test]
async fn a_busy_peer_is_asked_again_and_its_snapshot_used() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let bytes = served_snapshot(&peer).await;
    let (busy, asked) = busy_then_serving(bytes).await;
    let data = dirs.empty("busy");
    let replica = booting(&topic, &data, &busy, &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2, "asked once busy, then served");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}

/// A snapshot torn by a crash (a fetched one is not synced to disk) is as
/// good as none: the next start asks the peer again, and the peer's
/// snapshot replaces it.
#[tokio::test]
async fn a_torn_local_snapshot_is_replaced_by_a_peers() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let bytes = served_snapshot(&peer).await;
    let (data, local) = holding(&dirs, "torn", &topic, &bytes[..bytes.len() / 2]);
    let replica = booting(&topic, &data, &peer.base, &dirs);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    assert_eq!(std::fs::read(&local).unwrap().len(), bytes.len(), "the peer's snapshot replaced the torn one");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}
