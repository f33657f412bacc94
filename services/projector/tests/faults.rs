//! The projector binary under faults, against the real servers: killed
//! mid-replay, it restarts and ends with the whole topic.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::{Duration, Instant};

use revocation_core::{SessionEvent, SessionId};
use revocation_kafka::EventPublisher;
use revocation_test_support::{ProjectorProcess, SERIAL, bootstrap, created, eventually, revoked, topic};

/// The projector binary serving `topic`, sampling every 100 ms.
fn projector(topic: &str) -> ProjectorProcess {
    ProjectorProcess::start(
        env!("CARGO_BIN_EXE_projector"),
        &["--topic", topic, "--bootstrap-servers", &bootstrap(), "--sample-interval", "100ms"],
    )
}

#[tokio::test]
async fn the_projector_killed_mid_replay_restarts_and_ends_with_the_whole_topic() {
    let _serial = SERIAL.lock().await;
    let config = topic("fault-replay", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let sessions = 100_000usize;
    let sids: Vec<SessionId> =
        (0..sessions).map(|_| SessionId::new(uuid::Uuid::new_v4().to_string()).unwrap()).collect();
    let mut events: Vec<SessionEvent> = sids.iter().map(|s| created(s.as_str(), None)).collect();
    events.extend(sids.iter().step_by(4).map(|s| revoked(s.as_str())));
    for chunk in events.chunks(5_000) {
        for ack in futures::future::join_all(chunk.iter().map(|e| publisher.publish(e))).await {
            ack.unwrap();
        }
    }

    let first = projector(&config.topic);
    let mut caught_mid_replay = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(lag) = first.lag().await
            && lag["records_applied"].as_u64().unwrap_or(0) > 0
        {
            caught_mid_replay = lag["state"] == "cold";
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(first); // SIGKILL
    eprintln!("killed {} replay", if caught_mid_replay { "in the middle of its" } else { "after its" });

    let second = projector(&config.topic);
    eventually(Duration::from_secs(60), "restarted projector is live", async || {
        second.lag().await.is_some_and(|l| l["state"] == "live")
    })
    .await;
    let lag = second.lag().await.unwrap();
    assert_eq!(lag["sessions"].as_u64(), Some(sessions as u64));
    assert_eq!(lag["revoked_sessions"].as_u64(), Some(sids.iter().step_by(4).count() as u64));
    assert_eq!(lag["records_applied"].as_u64(), Some(events.len() as u64));
    for (i, s) in sids.iter().enumerate().step_by(997) {
        let status = reqwest::get(format!("{}/v1/sessions/{}", second.base, s.as_str())).await.unwrap().status();
        assert_eq!(status.as_u16(), if i % 4 == 0 { 410 } else { 200 }, "{s:?}");
    }
    revocation_kafka::delete_topic(&config).await.ok();
}
