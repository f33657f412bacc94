//! Booting from a peer, with real projector processes on the real Kafka: a
//! new replica with an empty disk fetches a live peer's snapshot, replays
//! only the tail and then holds what a full replay holds; every peer that
//! cannot give a sound snapshot (no token, not live, another topic, cluster
//! or format, too old, a truncated or broken-off stream) is refused, the replica starts
//! cold with the reason in `/health/lag` `start`, and nothing is half-loaded;
//! a torn local snapshot is replaced by a peer's, and so is one the broker
//! would refuse, and a peer's snapshot the broker would refuse sends the
//! replica to the next peer.
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
    let replica = projector(
        &topic,
        &["--snapshot-dir", &data, "--bootstrap-from", &peer.base, "--bootstrap-token-file", &dirs.file("token")],
    );
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
    let replica = projector(
        &topic,
        &["--snapshot-dir", &data, "--bootstrap-from", &busy, "--bootstrap-token-file", &dirs.file("token")],
    );
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
    let data = dirs.empty("torn");
    let local = std::path::Path::new(&data).join(format!("{topic}.snapshot"));
    std::fs::write(&local, &bytes[..bytes.len() / 2]).unwrap();
    let replica = projector(
        &topic,
        &["--snapshot-dir", &data, "--bootstrap-from", &peer.base, "--bootstrap-token-file", &dirs.file("token")],
    );
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    assert_eq!(std::fs::read(&local).unwrap().len(), bytes.len(), "the peer's snapshot replaced the torn one");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}

/// A sound local snapshot the broker would refuse — written days ago (a
/// volume that outlived half the topic's `delete.retention.ms`) — is as
/// good as none, and so is a peer's of another cluster: the replica asks
/// the next peer and boots warm from the one the broker would resume.
#[tokio::test]
async fn a_local_or_peer_snapshot_the_broker_would_refuse_sends_the_replica_to_the_next_peer() {
    let dirs = Dirs::new();
    let (topic, kafka, sids, peer) = live_peer(&dirs, 100, 3).await;
    let bytes = served_snapshot(&peer).await;
    let store = SessionStore::new();
    let (meta, _) = read_snapshot(&bytes[..], &store).unwrap();
    let rewritten = |edit: &dyn Fn(&mut SnapshotMeta)| {
        let mut edited = meta.clone();
        edit(&mut edited);
        let mut body = Vec::new();
        write_snapshot(&store, &edited, &mut body).unwrap();
        body
    };
    let three_days_ago = Timestamp::from_datetime(OffsetDateTime::now_utc() - time::Duration::days(3)).as_unix_micros();
    let old = rewritten(&|m| {
        m.written_at_micros = three_days_ago;
        m.fresh_as_of_micros = Some(three_days_ago);
    });
    let other_cluster = fake_peer(rewritten(&|m| m.cluster_id = Some("another-cluster".into())).into(), false).await;
    let data = dirs.empty("refused-local");
    let local = std::path::Path::new(&data).join(format!("{topic}.snapshot"));
    std::fs::write(&local, &old).unwrap();
    let peers = format!("{other_cluster},{}", peer.base);
    let replica = projector(
        &topic,
        &["--snapshot-dir", &data, "--bootstrap-from", &peers, "--bootstrap-token-file", &dirs.file("token")],
    );
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "warm", "{start}");
    assert_eq!(start["snapshot_sessions"], 100, "{start}");
    let (kept, _) = read_snapshot(std::fs::File::open(&local).unwrap(), &SessionStore::new()).unwrap();
    assert_eq!(kept.cluster_id, meta.cluster_id, "the live peer's snapshot, not the other cluster's");
    assert!(kept.fresh_as_of_micros > Some(three_days_ago), "the old local snapshot was replaced: {kept:?}");
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    delete_topic(&kafka).await.ok();
}

/// A fake peer answering 503 (busy, `Retry-After: 1`) to its first request
/// and `body` to the next; its URL and how often it was asked.
async fn busy_then_serving(body: axum::body::Bytes) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().route(
        "/admin/snapshot",
        axum::routing::get(move || {
            let (body, counter) = (body.clone(), counter.clone());
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    let busy = axum::Json(serde_json::json!({"reason": "2 snapshots are being streamed already"}));
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], busy).into_response()
                } else {
                    body.into_response()
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, asked)
}

/// A peer answering 401 with the request's `Authorization` header as its
/// reason (an endpoint that echoes what it was sent).
async fn echoing_peer() -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/admin/snapshot",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let reason = axum::Json(serde_json::json!({"reason": format!("refused {sent}")}));
            (axum::http::StatusCode::UNAUTHORIZED, reason).into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Serves `body` at `/admin/snapshot`; `broken`: the stream ends in an error
/// (the connection drops mid-transfer).
async fn fake_peer(body: axum::body::Bytes, broken: bool) -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/admin/snapshot",
        get(move || {
            let body = body.clone();
            async move {
                // Half the bytes go out; then, when `broken`, the peer dies.
                let stream = futures::stream::unfold(0, move |step| {
                    let body = body.clone();
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(body), 1)),
                            1 if broken => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Some((Err(std::io::Error::other("peer killed")), 2))
                            }
                            _ => None,
                        }
                    }
                });
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}
