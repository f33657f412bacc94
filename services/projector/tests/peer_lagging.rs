//! A peer that was Live and now lags serves no snapshot: the broker is
//! frozen (SIGSTOP via `scripts/kafka.sh pause`) until the peer reports
//! Lagging, a new replica asks it, is refused with the reason, and once the
//! broker thaws it starts cold and holds what the topic says. Its own test
//! binary, because it freezes the shared broker (cargo runs test binaries
//! one after another).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_kafka::delete_topic;
use revocation_test_support::{Heal, eventually, run_script};

mod peer_support;
use peer_support::*;

#[tokio::test]
async fn a_lagging_peer_serves_no_snapshot_and_the_replica_starts_cold_saying_why() {
    let dirs = Dirs::new();
    let (topic, kafka, _publisher, sids) = topic_with(100, 3).await;
    let peer = projector(&topic, &["--admin-token-file", &dirs.file("token"), "--max-staleness", "1s"]);
    peer.wait_until("/health/lag", 200, Duration::from_secs(60)).await;
    let data = dirs.empty("lagging");
    let heal = Heal; // the broker is thawed even if the test fails half-way
    run_script("kafka.sh", "pause");
    eventually(Duration::from_secs(20), "the peer reports lagging", async || {
        peer.lag().await.is_some_and(|lag| lag["state"] == "lagging")
    })
    .await;
    let replica = projector(
        &topic,
        &["--snapshot-dir", &data, "--bootstrap-from", &peer.base, "--bootstrap-token-file", &dirs.file("token")],
    );
    // The refusal is known once the replica answers HTTP (after asking its peers).
    eventually(Duration::from_secs(30), "the replica answers", async || replica.lag().await.is_some()).await;
    assert_eq!(peer.lag().await.unwrap()["state"], "lagging", "the peer still lagged when it was asked");
    run_script("kafka.sh", "resume");
    drop(heal);
    let start = start_report(&replica).await;
    assert_eq!(start["kind"], "cold", "{start}");
    let why = start["reason"].as_str().unwrap_or_default();
    assert!(why.contains("503") && why.contains("lagging, not live"), "{why}");
    peer.wait_until("/health/lag", 200, Duration::from_secs(60)).await;
    assert_eq!(answers(&replica, &sids).await, answers(&peer, &sids).await);
    assert!(std::fs::read_dir(&data).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".peer")));
    delete_topic(&kafka).await.ok();
}
