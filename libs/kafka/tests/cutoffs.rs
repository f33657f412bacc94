//! Per-user cutoffs ("log out everywhere") through the real broker and
//! PostgreSQL (`scripts/servers.sh up`): a seeded workload published to the
//! topic and written to the tables answers alike from the projection and
//! from Postgres, for every session and every (user, issued_at); a cutoff
//! survives a warm restart and the janitor.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use revocation_core::{
    FreshnessState, SessionLiveness, SessionLivenessError, Timestamp, TokenLiveness, UserId, UserRevokedBefore,
};
use revocation_kafka::{
    EventPublisher, JanitorOptions, KafkaConfig, KafkaSource, SnapshotOptions, SourceOptions, run_janitor,
};
use revocation_test_support::*;

async fn publish(publisher: &EventPublisher, workload: &CutoffWorkload, table: &revocation_postgres::PgSessionTable) {
    for step in &workload.steps {
        match step {
            Step::Session(event) => {
                publisher.publish(event).await.unwrap();
                table.record(event).await.unwrap();
            }
            Step::Cutoff(cutoff) => {
                publisher.publish_cutoff(cutoff).await.unwrap();
                table.record_cutoff(cutoff).await.unwrap();
            }
        }
    }
}

/// Waits until the projection is Live and has read everything acknowledged
/// so far (a barrier-free way: its freshness passes an instant taken now).
async fn caught_up(source: &KafkaSource) {
    let liveness = source.liveness();
    let now = revocation_core::Clock::now(&revocation_core::SystemClock);
    eventually(Duration::from_secs(30), "caught up with what was acknowledged", async || {
        liveness.state() == FreshnessState::Live && liveness.status().freshness.fresh_as_of.is_some_and(|f| f > now)
    })
    .await;
}

async fn agree(source: &KafkaSource, pg: &revocation_postgres::PgSessionLiveness, workload: &CutoffWorkload) {
    let liveness = source.liveness();
    let (mut cut, mut refused) = (0, 0);
    for sid in &workload.sids {
        let expected = pg.check(sid).await;
        assert_eq!(liveness.check(sid).await, expected, "session {sid:?}");
        let store = liveness.projection();
        cut += usize::from(store.store().state(sid).is_some_and(|s| store.store().is_cut_off(s)));
    }
    for (user, issued_at) in &workload.tokens {
        let issued_at = Timestamp::from_datetime(*issued_at);
        let expected = pg.check_token(user, issued_at).await;
        refused += usize::from(expected.is_err());
        assert_eq!(liveness.check_token(user, issued_at).await, expected, "{user:?} at {issued_at:?}");
    }
    assert!(
        cut > 10 && refused > 10,
        "the workload exercises cutoffs: {cut} sessions cut off, {refused} tokens refused"
    );
}

#[tokio::test]
async fn after_the_bound_every_session_and_token_answers_as_postgres_does() {
    let TestSchema { liveness: pg, table, .. } = fresh_schema().await;
    let config = topic("cutoffs-differential", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let workload = cutoff_workload(11, 400, 16);
    let source = KafkaSource::start(config.clone(), source_options()).unwrap();
    publish(&publisher, &workload, &table).await;
    caught_up(&source).await;
    agree(&source, &pg, &workload).await;
    // And from a cold replay of the whole topic.
    let replayed = KafkaSource::start(config.clone(), source_options()).unwrap();
    caught_up(&replayed).await;
    agree(&replayed, &pg, &workload).await;
    source.shutdown().await;
    replayed.shutdown().await;
}

#[tokio::test]
async fn a_cutoff_revokes_sessions_created_just_before_it_and_not_just_after_while_they_are_being_created() {
    let config = topic("cutoffs-race", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let source = KafkaSource::start(config.clone(), source_options()).unwrap();
    let liveness = source.liveness();
    let user = UserId::new("racer").unwrap();
    let t = time::OffsetDateTime::now_utc().replace_nanosecond(500_000_000).unwrap();
    let created = |n: usize, at: time::OffsetDateTime| revocation_core::SessionEvent::Created {
        sid: sid(&format!("race-{n}")),
        user_id: user.as_str().into(),
        created_at: at,
        expires_at: None,
    };
    // Sessions just before T, in T's own second after it, and in the next
    // second, published concurrently with the cutoff.
    let before: Vec<_> = (0..50).map(|n| created(n, t - time::Duration::milliseconds(300))).collect();
    let same_second: Vec<_> = (50..100).map(|n| created(n, t + time::Duration::milliseconds(300))).collect();
    let after: Vec<_> = (100..150).map(|n| created(n, t + time::Duration::milliseconds(600))).collect();
    let cutoff = UserRevokedBefore { user_id: user.clone(), not_before: t, reason: None };
    let sessions = before.iter().chain(&same_second).chain(&after);
    let (acks, cut) = tokio::join!(
        futures::future::join_all(sessions.map(|e| publisher.publish(e))),
        publisher.publish_cutoff(&cutoff)
    );
    acks.into_iter().chain([cut]).for_each(|ack| {
        ack.unwrap();
    });
    caught_up(&source).await;
    for event in &before {
        assert_eq!(liveness.check(event.sid()).await, Err(SessionLivenessError::Revoked), "created before T");
    }
    for event in &same_second {
        // Created after T but in its second: refused (rounded fail closed).
        assert_eq!(liveness.check(event.sid()).await, Err(SessionLivenessError::Revoked), "T's own second");
    }
    for event in &after {
        assert_eq!(liveness.check(event.sid()).await, Ok(()), "created in the next second");
    }
    source.shutdown().await;
}

#[tokio::test]
async fn a_warm_restart_and_the_janitor_keep_every_cutoff() {
    let config: KafkaConfig = topic("cutoffs-keep", 3).await;
    let publisher = EventPublisher::new(&config).unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("cutoffs-{}", uuid::Uuid::new_v4().simple()));
    let with_snapshots = || SourceOptions {
        snapshot: Some(SnapshotOptions { dir: dir.clone(), interval: Duration::from_secs(3600) }),
        max_session_lifetime: Some(Duration::from_secs(86_400)),
        ..source_options()
    };
    let user = UserId::new("kept").unwrap();
    let hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let old = revocation_core::SessionEvent::Created {
        sid: sid("kept-old"),
        user_id: user.as_str().into(),
        created_at: hour_ago,
        expires_at: None,
    };
    publisher.publish(&old).await.unwrap();
    let cutoff =
        UserRevokedBefore { user_id: user.clone(), not_before: hour_ago + time::Duration::minutes(30), reason: None };
    publisher.publish_cutoff(&cutoff).await.unwrap();
    let source = KafkaSource::start(config.clone(), with_snapshots()).unwrap();
    caught_up(&source).await;
    let answers = async |source: &KafkaSource| {
        let liveness: Arc<revocation_core::ProjectedLiveness> = source.liveness();
        let token = liveness.check_token(&user, Timestamp::from_datetime(hour_ago)).await;
        (liveness.check(&sid("kept-old")).await, token)
    };
    let revoked = (Err(SessionLivenessError::Revoked), Err(SessionLivenessError::Revoked));
    assert_eq!(answers(&source).await, revoked);
    source.shutdown().await; // writes the snapshot

    // Warm: the snapshot's positions are past the cutoff's record.
    let warm = KafkaSource::start(config.clone(), with_snapshots()).unwrap();
    caught_up(&warm).await;
    assert!(warm.feed_stats().unwrap().start.warm, "started from the snapshot");
    assert_eq!(answers(&warm).await, revoked, "after a warm restart");
    warm.shutdown().await;

    // The janitor tombstones only what can be forgotten: the cutoff stays.
    let report = run_janitor(
        &config,
        JanitorOptions { grace: Duration::from_secs(1), ..JanitorOptions::new(Duration::from_secs(86_400)) },
    )
    .await
    .unwrap();
    println!("janitor: {report:?}");
    std::fs::remove_dir_all(&dir).ok();
    let cold = KafkaSource::start(config.clone(), source_options()).unwrap();
    caught_up(&cold).await;
    assert_eq!(answers(&cold).await, revoked, "after the janitor and a cold replay");
    cold.shutdown().await;
}
