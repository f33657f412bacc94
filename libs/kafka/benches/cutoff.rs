//! "Log out everywhere", measured: one `user.revoked_before` record revokes
//! all 10,000 sessions of its user at two replicas. For each round, the time
//! from the broker's acknowledgement until both replicas answer a session of
//! the user revoked (the cutoff is one map update, so every session of the
//! user flips at that instant; each round then checks all of them, untimed).
//!
//! Run with: cargo bench -p revocation-kafka --bench cutoff
//! (`BENCH_CUTOFF_ROUNDS=200`, `BENCH_CUTOFF_SESSIONS=10000` by default: 2M sessions.)
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use revocation_core::{
    FreshnessState, SessionEvent, SessionId, SessionLiveness, SessionLivenessError, UserId, UserRevokedBefore,
};
use revocation_kafka::{EventPublisher, KafkaConfig, KafkaSource, SourceOptions, TopicSpec};
use revocation_test_support::{bootstrap, produce_fast};
use time::OffsetDateTime;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (rounds, per_user) = (env("BENCH_CUTOFF_ROUNDS", 200), env("BENCH_CUTOFF_SESSIONS", 10_000));
    let config = KafkaConfig::new(bootstrap(), format!("bench-cutoff-{}", uuid::Uuid::new_v4().simple()));
    revocation_kafka::ensure_topic(&config, TopicSpec { partitions: 3, replication: 1, compacted: false })
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let users: Vec<UserId> = (0..rounds).map(|r| UserId::new(format!("user-{r}")).unwrap()).collect();
    let sids: Vec<Vec<SessionId>> = (0..rounds)
        .map(|_| (0..per_user).map(|_| SessionId::new(uuid::Uuid::new_v4().to_string()).unwrap()).collect())
        .collect();
    let events = sids.iter().zip(&users).flat_map(|(sids, user)| {
        sids.iter().map(move |sid| SessionEvent::Created {
            sid: sid.clone(),
            user_id: user.as_str().to_owned(),
            created_at: an_hour_ago,
            expires_at: Some(an_hour_ago + time::Duration::days(1)),
        })
    });
    produce_fast(&config, events, &[]);
    let published = rounds * per_user;
    eprintln!("cutoff: {published} sessions published; starting two replicas");
    let replicas = [
        KafkaSource::start(config.clone(), SourceOptions::default()).unwrap(),
        KafkaSource::start(config.clone(), SourceOptions::default()).unwrap(),
    ];
    for replica in &replicas {
        let liveness = replica.liveness();
        while liveness.state() != FreshnessState::Live || liveness.projection().store().len() < published {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("cutoff: both replicas Live");
    let publisher = EventPublisher::new(&config).unwrap();
    let mut latencies = Vec::with_capacity(rounds);
    let mut still_live = 0usize;
    for (user, sids) in users.iter().zip(&sids) {
        for replica in &replicas {
            assert_eq!(replica.liveness().check(&sids[0]).await, Ok(()));
        }
        let cutoff = UserRevokedBefore { user_id: user.clone(), not_before: OffsetDateTime::now_utc(), reason: None };
        publisher.publish_cutoff(&cutoff).await.unwrap();
        let acked = Instant::now();
        let mut last = Duration::ZERO;
        for replica in &replicas {
            let liveness = replica.liveness();
            while liveness.check(&sids[per_user - 1]).await != Err(SessionLivenessError::Revoked) {
                tokio::task::yield_now().await;
            }
            last = last.max(acked.elapsed());
        }
        latencies.push(last);
        for replica in &replicas {
            let liveness = replica.liveness();
            for sid in sids {
                still_live += usize::from(liveness.check(sid).await.is_ok());
            }
        }
    }
    assert_eq!(still_live, 0, "every session of every logged-out user answers revoked at both replicas");
    latencies.sort();
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
    let max = latencies[latencies.len() - 1].as_secs_f64() * 1e3;
    println!(
        "log out everywhere, broker ack → all {per_user} sessions of the user revoked at 2 replicas, {rounds} cutoffs:"
    );
    println!("  p50 {:.3} ms  p99 {:.3} ms  max {max:.3} ms  ({published} sessions held)", q(0.5), q(0.99));
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("cutoff-propagation.json"),
        format!(
            r#"{{"rounds": {rounds}, "sessions_per_user": {per_user}, "replicas": 2, "p50_ms": {:.4}, "p99_ms": {:.4}, "max_ms": {max:.4}}}"#,
            q(0.5),
            q(0.99)
        ) + "\n",
    )
    .unwrap();
    for replica in &replicas {
        replica.shutdown().await;
    }
    revocation_kafka::delete_topic(&config).await.ok();
}
