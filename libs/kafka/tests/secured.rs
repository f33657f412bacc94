//! The projection end to end over the broker's TLS and SASL listeners
//! (`scripts/kafka.sh` makes them, with `scripts/tls.sh`'s certificates):
//! SASL/PLAIN, SCRAM-SHA-256 and -512 and OAUTHBEARER over SASL_SSL, and
//! mutual TLS. Each mode: replay, a revocation while live, the
//! read-your-writes barrier, freshness from watermarks. Then the ways a
//! production connection goes wrong — a wrong password, an unknown CA, an
//! expired certificate, another host's certificate: the feed keeps running,
//! the projection stays Cold, and the fault says what is wrong, without the
//! secret.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::time::Duration;

use revocation_core::{Clock, FreshnessState, SessionLiveness, SessionLivenessError, SystemClock};
use revocation_kafka::{EventPublisher, FaultSource, KafkaConfig, KafkaSource, TopicSpec, delete_topic, ensure_topic};
use revocation_test_support::*;

/// A new topic, created over `security`'s own listener — but for
/// OAUTHBEARER, whose token librdkafka refreshes only from a client's poll,
/// which rdkafka's admin client never calls (README: not supported for the
/// admin commands), so that one is created over plaintext.
async fn secured_topic(test: &str, security: Security) -> KafkaConfig {
    require_tls_listeners();
    let config = security.config(&format!("{test}-{}", uuid::Uuid::new_v4().simple()));
    let admin = match security {
        Security::OAuthBearer => KafkaConfig::new(bootstrap(), config.topic.clone()),
        _ => config.clone(),
    };
    let created = ensure_topic(&admin, TopicSpec::default()).await;
    assert!(created.unwrap_or_else(|e| panic!("create a topic over {security:?}: {e}")), "the topic is new");
    config
}

async fn end_to_end_over(security: Security) {
    let config = secured_topic("secured", security).await;
    let publisher = EventPublisher::new(&config).unwrap();
    publisher.publish(&created("alice", None)).await.unwrap();
    publisher.publish(&created("bob", None)).await.unwrap();
    publisher.publish(&revoked("bob")).await.unwrap();

    // Replay.
    let projection = KafkaSource::start(config.clone(), source_options()).unwrap();
    let liveness = projection.liveness();
    eventually(Duration::from_secs(30), "Live", async || liveness.state() == FreshnessState::Live).await;
    assert_eq!(liveness.check(&sid("alice")).await, Ok(()));
    assert_eq!(liveness.check(&sid("bob")).await, Err(SessionLivenessError::Revoked));

    // Freshness from watermarks sampled over this listener: fresh as of a
    // moment ago, and moving.
    let fresh = |l: &revocation_core::ProjectedLiveness| l.status().freshness.fresh_as_of.unwrap();
    let first = fresh(&liveness);
    assert!(SystemClock.now().as_unix_micros() - first.as_unix_micros() < 2_000_000);
    eventually(Duration::from_secs(5), "fresh_as_of advances", async || fresh(&liveness) > first).await;

    // A revocation while live.
    publisher.publish(&revoked("alice")).await.unwrap();
    eventually(Duration::from_secs(5), "the revocation arrives", async || {
        liveness.check(&sid("alice")).await == Err(SessionLivenessError::Revoked)
    })
    .await;

    // Read-your-writes: acknowledged before the check began, so never Revoked.
    publisher.publish(&created("carol", None)).await.unwrap();
    assert_eq!(liveness.check(&sid("carol")).await, Ok(()));

    assert_eq!(projection.feed_stats().unwrap().fault, None);
    projection.shutdown().await;
    delete_topic(&KafkaConfig::new(bootstrap(), config.topic.clone())).await.ok();
}

#[tokio::test]
async fn the_projection_works_over_sasl_plain_on_tls() {
    end_to_end_over(Security::SaslPlain).await;
}

#[tokio::test]
async fn the_projection_works_over_scram_sha_256_on_tls() {
    end_to_end_over(Security::Scram256).await;
}

#[tokio::test]
async fn the_projection_works_over_scram_sha_512_on_tls() {
    end_to_end_over(Security::Scram512).await;
}

#[tokio::test]
async fn the_projection_works_over_oauthbearer_on_tls() {
    end_to_end_over(Security::OAuthBearer).await;
}

#[tokio::test]
async fn the_projection_works_over_mutual_tls() {
    end_to_end_over(Security::MutualTls).await;
}

/// Starts a projection with `config`, which cannot connect: it must start,
/// stay Cold (a check answers Transient without a fallback), and report a
/// client fault whose message contains `expect` and no secret.
async fn refused(config: KafkaConfig, expect: &[&str]) {
    require_tls_listeners();
    let projection = KafkaSource::start(config, source_options()).unwrap();
    let liveness = projection.liveness();
    let fault = async || projection.feed_stats().and_then(|s| s.fault);
    eventually(Duration::from_secs(20), "the fault is reported", async || {
        fault().await.is_some_and(|f| f.source == FaultSource::Client)
    })
    .await;
    let fault = fault().await.unwrap();
    let message = fault.message.to_lowercase();
    assert!(expect.iter().any(|e| message.contains(e)), "{expect:?} in {:?}", fault.message);
    assert!(!fault.message.contains(SASL_PASSWORD) && !fault.message.contains("wrong-password"));
    assert_eq!(liveness.state(), FreshnessState::Cold);
    assert!(matches!(liveness.check(&sid("anyone")).await, Err(SessionLivenessError::Transient(_))));
    projection.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_and_the_projection_stays_cold() {
    let mut config = Security::Scram256.config("never-created");
    config.librdkafka_options.insert("sasl.password".into(), "wrong-password".into());
    refused(config, &["authentication"]).await;
}

#[tokio::test]
async fn an_unknown_certificate_authority_is_reported() {
    let mut config = Security::Scram256.config("never-created");
    config.librdkafka_options.insert("ssl.ca.location".into(), tls_file("other-ca.pem"));
    refused(config, &["certificate verify failed", "ssl handshake failed"]).await;
}

#[tokio::test]
async fn an_expired_server_certificate_is_reported() {
    let mut config = Security::MutualTls.config("never-created");
    config.bootstrap_servers = "127.0.0.1:9096".into();
    // librdkafka says the verification failed, not why (it has OpenSSL's
    // reason only in its "security" debug log).
    refused(config, &["certificate verify failed"]).await;
}

#[tokio::test]
async fn a_certificate_for_another_host_is_reported() {
    let mut config = Security::MutualTls.config("never-created");
    config.bootstrap_servers = "127.0.0.1:9097".into();
    refused(config, &["certificate verify failed", "hostname mismatch", "ip address mismatch"]).await;
}
