//! What the peer tests share: their directories and token, a topic of
//! sessions, a projector process on it, and its answers.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part

use std::path::PathBuf;
use std::time::Duration;

use revocation_core::{SessionEvent, SessionId};
use revocation_kafka::{EventPublisher, KafkaConfig};
use revocation_test_support::{ProjectorProcess, bootstrap, create_topic};
use time::OffsetDateTime;

mod fakes;
#[allow(unused_imports)] // each test binary uses its own part
pub use fakes::*;

pub const TOKEN: &str = "a-long-random-admin-token-for-peers";

pub struct Dirs(PathBuf);

impl Dirs {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("peer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        std::fs::write(dir.join("wrong-token"), "a-long-but-wrong-admin-token").unwrap();
        Self(dir)
    }
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
    pub fn empty(&self, name: &str) -> String {
        let dir = self.0.join(format!("data-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir.display().to_string()
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn topic_with(sessions: usize, revoked_every: usize) -> (String, KafkaConfig, EventPublisher, Vec<String>) {
    let topic = format!("peer-{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    create_topic(&kafka, 3, &[]).await;
    let publisher = EventPublisher::new(&kafka).unwrap();
    let sids: Vec<String> = (0..sessions).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    publish(&publisher, &sids, revoked_every).await;
    (topic, kafka, publisher, sids)
}

pub async fn publish(publisher: &EventPublisher, sids: &[String], revoked_every: usize) {
    let now = OffsetDateTime::now_utc();
    for (i, s) in sids.iter().enumerate() {
        let sid = SessionId::new(s.clone()).unwrap();
        let created =
            SessionEvent::Created { sid: sid.clone(), user_id: "u".into(), created_at: now, expires_at: None };
        publisher.publish(&created).await.unwrap();
        if i % revoked_every == 0 {
            publisher.publish(&SessionEvent::Revoked { sid, revoked_at: now, reason: None }).await.unwrap();
        }
    }
}

pub fn projector(topic: &str, extra: &[&str]) -> ProjectorProcess {
    let mut args = vec!["--topic", topic, "--bootstrap-servers", "PLACEHOLDER", "--sample-interval", "100ms"];
    let brokers = bootstrap();
    args[3] = &brokers;
    args.extend_from_slice(extra);
    ProjectorProcess::start(env!("CARGO_BIN_EXE_projector"), &args)
}

pub async fn start_report(p: &ProjectorProcess) -> serde_json::Value {
    p.wait_until("/health/lag", 200, Duration::from_secs(60)).await["start"].clone()
}

pub async fn answers(p: &ProjectorProcess, sids: &[String]) -> Vec<u16> {
    let mut out = Vec::with_capacity(sids.len());
    for s in sids {
        out.push(p.get(&format!("/v1/sessions/{s}")).await.0);
    }
    out
}

/// A topic of `sessions` (every `revoked_every`th revoked) and a Live peer
/// on it that serves snapshots: the topic, its config, the sids, the peer.
pub async fn live_peer(
    dirs: &Dirs,
    sessions: usize,
    revoked_every: usize,
) -> (String, KafkaConfig, Vec<String>, ProjectorProcess) {
    let (topic, kafka, _publisher, sids) = topic_with(sessions, revoked_every).await;
    let peer = projector(&topic, &["--admin-token-file", &dirs.file("token")]);
    peer.wait_until("/health/lag", 200, Duration::from_secs(60)).await;
    (topic, kafka, sids, peer)
}

/// The snapshot `peer` serves, asked with the token.
pub async fn served_snapshot(peer: &ProjectorProcess) -> axum::body::Bytes {
    let url = format!("{}/admin/snapshot", peer.base);
    reqwest::Client::new().get(&url).bearer_auth(TOKEN).send().await.unwrap().bytes().await.unwrap()
}

/// A data directory holding `snapshot` as the topic's local snapshot.
pub fn holding(dirs: &Dirs, what: &str, topic: &str, snapshot: &[u8]) -> (String, PathBuf) {
    let data = dirs.empty(what);
    let local = std::path::Path::new(&data).join(format!("{topic}.snapshot"));
    std::fs::write(&local, snapshot).unwrap();
    (data, local)
}

/// A replica of `topic` keeping snapshots in `data`, booting from `peers`.
pub fn booting(topic: &str, data: &str, peers: &str, dirs: &Dirs) -> ProjectorProcess {
    projector(
        topic,
        &["--snapshot-dir", data, "--bootstrap-from", peers, "--bootstrap-token-file", &dirs.file("token")],
    )
}
