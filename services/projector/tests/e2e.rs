//! The real `projector` binary against the real Kafka and PostgreSQL
//! (`scripts/servers.sh up`): live, revoked and unavailable answers and the
//! lag report over HTTP, a clean exit on SIGTERM, a warm restart from
//! `--snapshot-dir`, and `projector janitor`.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::process::Command;
use std::time::Duration;

use revocation_core::{SessionEvent, SessionId};
use revocation_kafka::{EventPublisher, KafkaConfig, TopicSpec, delete_topic, ensure_topic};
use revocation_test_support::{ProjectorProcess, bootstrap, database_url};
use time::OffsetDateTime;

/// The projector binary, serving with `args`.
fn projector(args: &[&str]) -> ProjectorProcess {
    ProjectorProcess::start(env!("CARGO_BIN_EXE_projector"), args)
}

fn sid(s: &str) -> SessionId {
    SessionId::new(s).unwrap()
}

#[tokio::test]
async fn the_binary_serves_live_revoked_and_lag_answers_and_exits_cleanly() {
    let topic = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let schema = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    ensure_topic(&kafka, TopicSpec::default())
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    let publisher = EventPublisher::new(&kafka).unwrap();
    let now = OffsetDateTime::now_utc();
    for event in [
        SessionEvent::Created { sid: sid("alice"), user_id: "u1".into(), created_at: now, expires_at: None },
        SessionEvent::Created { sid: sid("bob"), user_id: "u2".into(), created_at: now, expires_at: None },
        SessionEvent::Revoked { sid: sid("bob"), revoked_at: now, reason: Some("logout".into()) },
    ] {
        publisher.publish(&event).await.unwrap();
    }

    let projector = projector(&[
        "--topic",
        &topic,
        "--bootstrap-servers",
        &bootstrap(),
        "--database-url",
        &database_url(),
        "--pg-schema",
        &schema,
        "--migrate",
        "--max-staleness",
        "1s",
        "--sample-interval",
        "100ms",
    ]);
    let report = projector.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    assert_eq!(report["state"], "live");
    assert_eq!(report["sessions"], 2);
    assert_eq!(report["revoked_sessions"], 1);
    assert_eq!(report["records_applied"], 3);
    assert_eq!(report["partitions"].as_array().unwrap().len(), 3);
    assert!(report["staleness_ms"].as_u64().unwrap() <= 1_000);

    assert_eq!(projector.get("/v1/sessions/alice").await.2, serde_json::json!({"status": "live"}));
    let (status, _, body) = projector.get("/v1/sessions/bob").await;
    assert_eq!((status, body), (410, serde_json::json!({"status": "revoked"})));
    assert_eq!(projector.get("/v1/sessions/nobody").await.0, 410);
    assert_eq!(projector.get("/livez").await.0, 200);
    assert_eq!(reqwest::get(format!("{}/readyz", projector.base)).await.unwrap().status().as_u16(), 200);

    // A revocation published now is answered within the staleness bound.
    publisher.publish(&SessionEvent::Revoked { sid: sid("alice"), revoked_at: now, reason: None }).await.unwrap();
    projector.wait_until("/v1/sessions/alice", 410, Duration::from_secs(2)).await;

    let metrics = reqwest::get(format!("{}/metrics", projector.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("projection_state{state=\"live\"} 1"), "{metrics}");

    let exit = projector.terminate();
    assert!(exit.success(), "exit status {exit:?}");
    delete_topic(&kafka).await.ok();
}

#[tokio::test]
async fn a_cold_projector_without_a_reachable_database_answers_unavailable_with_retry_after() {
    // A topic that does not exist keeps it cold; the database port is closed.
    let projector = projector(&[
        "--topic",
        &format!("absent-{}", uuid::Uuid::new_v4().simple()),
        "--bootstrap-servers",
        &bootstrap(),
        "--database-url",
        "postgres://revocation:revocation@127.0.0.1:1/revocation",
    ]);
    projector.wait_until("/livez", 200, Duration::from_secs(30)).await;
    let (status, retry_after, body) = projector.get("/v1/sessions/alice").await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["status"], "unavailable");
    assert!(body["reason"].as_str().unwrap().contains("user_sessions"), "{body}");
    let (status, _, report) = projector.get("/health/lag").await;
    assert_eq!((status, report["state"].as_str()), (503, Some("cold")));
    assert!(projector.terminate().success());
}

#[test]
fn bad_configuration_is_refused_with_a_sentence_naming_the_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["serve", "--max-staleness", "100ms", "--sample-interval", "200ms"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must exceed both 10 ms and the sample interval"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_projector")).args(["serve", "--listen", "nowhere"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));

    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["serve", "--lag-policy", "fallback"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lag policy fallback needs a database URL"));
}

/// A misspelt setting in the environment would leave its option at the
/// default without a word: the start is refused, naming the one meant.
#[test]
fn a_misspelt_setting_in_the_environment_is_refused_naming_the_one_meant() {
    // A command that ends at once either way, so a broken check fails
    // this test instead of starting a server that never returns.
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["cdc-heartbeat-query", "--partitions", "2"])
        .env("PROJECTOR_MAX_STALENES", "30s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PROJECTOR_MAX_STALENES (did you mean PROJECTOR_MAX_STALENESS?)"), "{stderr}");
    // Kubernetes' service links for a Service named `projector` pass.
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["cdc-heartbeat-query", "--partitions", "2"])
        .env("PROJECTOR_SERVICE_HOST", "10.0.0.7")
        .env("PROJECTOR_PORT_8080_TCP", "tcp://10.0.0.7:8080")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_client_option_librdkafka_refuses_is_named_once_on_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["serve", "-X", "fetch.wait.max.ms=soon", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("fetch.wait.max.ms")).collect();
    assert_eq!(lines.len(), 1, "one line names the option: {stderr}");
    assert_eq!(lines[0].matches("fetch.wait.max.ms").count(), 1, "each cause once: {stderr}");
    assert!(lines[0].contains("could not create the Kafka consumer"), "{stderr}");
}

#[tokio::test]
async fn a_restart_with_a_snapshot_dir_is_warm_and_says_so() {
    let topic = format!("e2e-warm-{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    ensure_topic(&kafka, TopicSpec::default())
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    let publisher = EventPublisher::new(&kafka).unwrap();
    let now = OffsetDateTime::now_utc();
    for s in ["alice", "bob"] {
        publisher
            .publish(&SessionEvent::Created { sid: sid(s), user_id: "u".into(), created_at: now, expires_at: None })
            .await
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("projector-e2e-{}", uuid::Uuid::new_v4().simple()));
    let dir_arg = dir.display().to_string();
    let args = ["--topic", &topic, "--bootstrap-servers", &bootstrap(), "--snapshot-dir", &dir_arg];

    let first = projector(&args);
    let report = first.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    assert_eq!(report["start"]["kind"], "cold");
    assert!(report["start"]["reason"].as_str().unwrap().contains("no snapshot"), "{report}");
    assert_eq!(report["snapshot"]["failures"], 0);
    publisher.publish(&SessionEvent::Revoked { sid: sid("bob"), revoked_at: now, reason: None }).await.unwrap();
    first.wait_until("/v1/sessions/bob", 410, Duration::from_secs(5)).await;
    assert!(first.terminate().success());
    assert!(dir.join(format!("{topic}.snapshot")).exists(), "written at shutdown");

    publisher
        .publish(&SessionEvent::Created { sid: sid("carol"), user_id: "u".into(), created_at: now, expires_at: None })
        .await
        .unwrap();
    let second = projector(&args);
    let report = second.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    assert_eq!(report["start"]["kind"], "warm", "{report}");
    assert_eq!(report["start"]["snapshot_sessions"], 2);
    assert_eq!(report["start"]["records_to_replay"], 1);
    assert_eq!(report["records_applied"], 1, "only the tail is replayed");
    for (s, status) in [("alice", 200), ("bob", 410), ("carol", 200), ("dave", 410)] {
        assert_eq!(second.get(&format!("/v1/sessions/{s}")).await.0, status, "{s}");
    }
    assert!(second.terminate().success());
    delete_topic(&kafka).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_janitor_tombstones_only_what_can_be_forgotten_and_needs_the_lifetime() {
    let topic = format!("e2e-janitor-{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    ensure_topic(&kafka, TopicSpec::default())
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    let publisher = EventPublisher::new(&kafka).unwrap();
    let ago = |m: i64| OffsetDateTime::now_utc() - time::Duration::minutes(m);
    let created = |s: &str, at, expires| SessionEvent::Created {
        sid: sid(s),
        user_id: "u".into(),
        created_at: at,
        expires_at: Some(expires),
    };
    for event in [
        created("expired", ago(40), ago(25)),
        created("live", ago(1), ago(-60)),
        created("revoked-long-ago", ago(50), ago(-60)),
        SessionEvent::Revoked { sid: sid("revoked-long-ago"), revoked_at: ago(45), reason: None },
        created("revoked-now", ago(5), ago(-60)),
        SessionEvent::Revoked { sid: sid("revoked-now"), revoked_at: ago(1), reason: None },
    ] {
        publisher.publish(&event).await.unwrap();
    }
    let janitor = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["janitor", "--topic", &topic, "--bootstrap-servers", &bootstrap(), "--grace", "1s"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let refused = janitor(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-session-lifetime"));

    let dry = janitor(&["--max-session-lifetime", "30m", "--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(out.contains("would tombstone 2"), "{out}");
    let done = janitor(&["--max-session-lifetime", "30m"]);
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success() && out.contains("tombstoned 2"), "{out}");
    // The tombstones are read: nothing more to do.
    let again = janitor(&["--max-session-lifetime", "30m", "--dry-run"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("would tombstone 0"));
    delete_topic(&kafka).await.ok();
}

/// The README's "log out everywhere" from a shell: `projector publish
/// revoked-before --user-id …`, then the session and token routes refuse
/// what came before it.
#[tokio::test]
async fn publish_revoked_before_logs_a_user_out_everywhere_over_http() {
    let topic = format!("e2e-cutoff-{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    ensure_topic(&kafka, TopicSpec::default())
        .await
        .unwrap_or_else(|e| panic!("Kafka unreachable at {} ({e}); run `scripts/servers.sh up`", bootstrap()));
    let publish = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_projector"))
            .arg("publish")
            .args(args)
            .args(["--topic", &topic, "--bootstrap-servers", &bootstrap()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    publish(&["created", "--sid", "carol-phone", "--user-id", "carol"]);
    publish(&["created", "--sid", "dave-phone", "--user-id", "dave"]);
    let projector = projector(&["--topic", &topic, "--bootstrap-servers", &bootstrap(), "--sample-interval", "100ms"]);
    projector.wait_until("/v1/sessions/carol-phone", 200, Duration::from_secs(30)).await;
    let before = OffsetDateTime::now_utc().unix_timestamp() - 1;
    std::thread::sleep(Duration::from_millis(1100));
    publish(&["revoked-before", "--user-id", "carol"]);
    projector.wait_until("/v1/sessions/carol-phone", 410, Duration::from_secs(10)).await;
    assert_eq!(projector.get("/v1/sessions/dave-phone").await.0, 200, "another user");
    assert_eq!(projector.get(&format!("/v1/users/carol/tokens/{before}")).await.0, 410);
    let after = OffsetDateTime::now_utc().unix_timestamp() + 1;
    assert_eq!(projector.get(&format!("/v1/users/carol/tokens/{after}")).await.0, 200);
    assert_eq!(projector.get("/v1/users/carol/tokens/soon").await.0, 400);
    let missing = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["publish", "created", "--topic", &topic, "--bootstrap-servers", &bootstrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("needs --sid"), "{missing:?}");
    projector.terminate();
    delete_topic(&kafka).await.ok();
}
