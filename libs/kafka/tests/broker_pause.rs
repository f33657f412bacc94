//! The broker frozen (SIGSTOP via `scripts/kafka.sh pause`) and thawed: the
//! projection fails closed within its staleness bound, then recovers with
//! correct answers. Its own test binary, because it freezes the shared
//! broker (cargo runs test binaries one after another).
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::process::Command;
use std::time::{Duration, Instant};

use revocation_core::{FreshnessState, SessionLiveness, SessionLivenessError};
use revocation_kafka::{EventPublisher, KafkaSource, SourceOptions, delete_topic};
use revocation_test_support::*;

/// Thaws the broker even if the test fails half-way.
struct Paused;

impl Paused {
    fn start() -> Self {
        run("pause");
        Paused
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        run("resume");
    }
}

fn run(action: &str) {
    let status = Command::new(script("kafka.sh")).arg(action).status().expect("run scripts/kafka.sh");
    assert!(status.success(), "scripts/kafka.sh {action} failed");
}

#[tokio::test]
async fn a_paused_broker_turns_answers_transient_within_the_bound_and_resuming_restores_them() {
    let config = topic("pause", 3).await;
    let max_staleness = Duration::from_secs(1);
    let interval = config.sample_interval;
    let options = SourceOptions { max_staleness, barrier_timeout: Duration::from_secs(1), ..SourceOptions::default() };
    let publisher = EventPublisher::new(&config).unwrap();
    publisher.publish(&created("alice", None)).await.unwrap();
    publisher.publish(&created("bob", None)).await.unwrap();
    let projection = KafkaSource::start(config.clone(), options).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "Live", async || liveness.state() == FreshnessState::Live).await;
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));

    let paused_at;
    let transient_after;
    {
        let _paused = Paused::start();
        paused_at = Instant::now();
        loop {
            match liveness.check(&sid("alice")).await {
                Ok(()) => {}
                Err(SessionLivenessError::Transient(_)) => break,
                Err(e) => panic!("unexpected answer while paused: {e}"),
            }
            assert!(paused_at.elapsed() < Duration::from_secs(10), "never turned Transient");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        transient_after = paused_at.elapsed();
        // Stays Transient while paused.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(matches!(liveness.check(&sid("alice")).await, Err(SessionLivenessError::Transient(_))));
        assert_eq!(liveness.state(), FreshnessState::Lagging);
    }
    eprintln!("Transient {transient_after:?} after the pause (bound {:?})", max_staleness + interval);
    // The pause is signalled by a script, so allow its own run time on top.
    assert!(transient_after <= max_staleness + interval + Duration::from_millis(200), "{transient_after:?}");

    let resumed_at = Instant::now();
    eventually(Duration::from_secs(30), "Live again after resume", async || liveness.state() == FreshnessState::Live)
        .await;
    eprintln!("Live again {:?} after resume", resumed_at.elapsed());
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));
    publisher.publish(&revoked("bob")).await.unwrap();
    eventually(Duration::from_secs(5), "revocation after resume", async || {
        liveness.check(&sid("bob")).await == Err(SessionLivenessError::Revoked)
    })
    .await;
    projection.shutdown().await;
    delete_topic(&config).await.ok();
}
