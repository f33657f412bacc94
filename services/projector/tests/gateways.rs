//! Real nginx and Caddy (`scripts/gateways.sh install`), run from the
//! snippets in `deploy/`, in front of a tiny upstream and the real
//! projector binary on the real Kafka: what a client sees through each
//! gateway. Live token → the upstream answers, told the verified user and
//! session; revoked session → 401 within the bound after the revocation's
//! ack; forged, wrong audience, expired, `alg: none` → 401; a rotated key
//! → 200; broker paused past the bound → 503; projector down → 503.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::path::PathBuf;
use std::time::{Duration, Instant};

use revocation_core::{SessionEvent, SessionId};
use revocation_forward_auth::{Algorithm, SigningKey, jwks};
use revocation_kafka::{EventPublisher, KafkaConfig, delete_topic};
use revocation_test_support::{
    Gateway, GatewayProcess, Heal, KeyKind, ProjectorProcess, SERIAL, bootstrap, create_topic, echo_upstream,
    private_key_pem, run_script,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The freshness bound the projector runs with here.
const BOUND: Duration = Duration::from_secs(1);

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(sid: Option<&str>, extra: Value) -> Value {
    let now = now_secs();
    let mut c = json!({"iss": "https://id.test", "aud": "api", "sub": "alice", "iat": now, "exp": now + 600});
    if let Some(sid) = sid {
        c["sid"] = sid.into();
    }
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn write_jwks(path: &PathBuf, keys: &[&SigningKey]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&jwks(keys).unwrap()).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

async fn get(base: &str, token: Option<&str>, spoof: bool) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{base}/orders/42"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if spoof {
        request = request
            .header("x-auth-user", "mallory")
            .header("x-auth-session", "someone-else")
            .header("x_auth_user", "mallory")
            .header("x_auth_session", "someone-else");
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// `projector token ARGS`'s output (EdDSA, kid k1 by default).
fn token_command(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_projector")).arg("token").args(args).output().unwrap();
    assert!(out.status.success(), "projector token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn through(gateway: Gateway) {
    let _serial = SERIAL.lock().await;
    let _heal = Heal;
    let topic = format!("gw-{}", uuid::Uuid::new_v4().simple());
    let kafka = KafkaConfig::new(bootstrap(), topic.clone());
    create_topic(&kafka, 3, &[]).await;
    let publisher = EventPublisher::new(&kafka).unwrap();
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    for s in ["alice-phone", "alice-laptop"] {
        let sid = SessionId::new(s).unwrap();
        publisher
            .publish(&SessionEvent::Created { sid, user_id: "alice".into(), created_at: at, expires_at: None })
            .await
            .unwrap();
    }

    let dir = std::env::temp_dir().join(format!("gw-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // The first key set and token come from `projector token`, as the README shows.
    let pem = private_key_pem(KeyKind::Ed25519);
    let pem_path = dir.join("key.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    let key = SigningKey::from_pem(&pem, Algorithm::EdDSA, "k1").unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, token_command(&["jwks", "--key", pem_path.to_str().unwrap()])).unwrap();

    let projector = ProjectorProcess::start(
        env!("CARGO_BIN_EXE_projector"),
        &[
            "--topic",
            &topic,
            "--bootstrap-servers",
            &bootstrap(),
            "--max-staleness",
            &humantime::format_duration(BOUND).to_string(),
            "--sample-interval",
            "100ms",
            "--forward-auth-jwks-file",
            jwks_path.to_str().unwrap(),
            "--forward-auth-issuer",
            "https://id.test",
            "--forward-auth-audience",
            "api",
            "--forward-auth-jwks-min-refetch",
            "1s",
        ],
    );
    projector.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    let app = echo_upstream().await;
    let gw = GatewayProcess::start(gateway, projector.base.trim_start_matches("http://"), &app);
    let base = gw.base.as_str();

    // Live: the upstream answers, told who, whatever the client claimed.
    let phone = token_command(&[
        "mint",
        "--key",
        pem_path.to_str().unwrap(),
        "--sid",
        "alice-phone",
        "--sub",
        "alice",
        "--iss",
        "https://id.test",
        "--aud",
        "api",
    ]);
    let phone = phone.trim();
    let (status, _, body) = get(base, Some(phone), true).await;
    assert_eq!(status, 200, "{gateway:?}: {body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let expected =
        json!({"path": "/orders/42", "user": "alice", "session": "alice-phone", "underscored": [null, null]});
    assert_eq!(echoed, expected, "{gateway:?}");
    // A machine token (no session claim) passes; the client's session header does not reach the upstream.
    let machine = key.sign(&claims(None, json!({"sub": "svc-reports"}))).unwrap();
    let (status, _, body) = get(base, Some(&machine), true).await;
    assert_eq!(status, 200, "{gateway:?}: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["session"], Value::Null, "{gateway:?}: {body}");

    // Every bad token: 401 at the client, the upstream never asked.
    let other = SigningKey::from_pem(&private_key_pem(KeyKind::Ed25519), Algorithm::EdDSA, "k1").unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims(Some("alice-phone"), json!({})).to_string()));
    let bad = [
        ("no token", None),
        ("forged signature", Some(other.sign(&claims(Some("alice-phone"), json!({}))).unwrap())),
        ("wrong aud", Some(key.sign(&claims(Some("alice-phone"), json!({"aud": "billing"}))).unwrap())),
        ("expired", Some(key.sign(&claims(Some("alice-phone"), json!({"exp": now_secs() - 120}))).unwrap())),
        ("alg none", Some(none)),
        ("unknown session", Some(key.sign(&claims(Some("mallory-1"), json!({}))).unwrap())),
    ];
    for (what, token) in bad {
        let (status, headers, body) = get(base, token.as_deref(), false).await;
        assert_eq!(status, 401, "{gateway:?}, {what}: {body}");
        assert!(!body.contains("/orders/42"), "{gateway:?}, {what}: the upstream answered");
        assert!(headers.get("www-authenticate").is_some(), "{gateway:?}, {what}: no WWW-Authenticate");
    }

    // Key rotation: a new key published, tokens signed with it pass at once.
    let next = SigningKey::from_pem(&private_key_pem(KeyKind::Ec), Algorithm::ES256, "k2").unwrap();
    write_jwks(&jwks_path, &[&key, &next]);
    tokio::time::sleep(Duration::from_secs(1)).await; // --forward-auth-jwks-min-refetch
    let rotated = next.sign(&claims(Some("alice-laptop"), json!({}))).unwrap();
    let (status, _, body) = get(base, Some(&rotated), false).await;
    assert_eq!(status, 200, "{gateway:?}, rotated key: {body}");

    // Revocation: acknowledged, then refused within the bound.
    let revoked = SessionEvent::Revoked { sid: SessionId::new("alice-phone").unwrap(), revoked_at: at, reason: None };
    publisher.publish(&revoked).await.unwrap();
    let acked = Instant::now();
    let mut first_refused = None;
    while acked.elapsed() < BOUND {
        if get(base, Some(phone), false).await.0 == 401 {
            first_refused = Some(acked.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(first_refused.is_some(), "{gateway:?}: the revoked session still passed {BOUND:?} after the ack");
    eprintln!("{gateway:?}: revoked session refused {:?} after the ack", first_refused.unwrap());
    assert_eq!(get(base, Some(&rotated), false).await.0, 200, "{gateway:?}: the other session stays live");

    // Broker paused past the bound: the projection cannot prove anything → 503.
    run_script("kafka.sh", "pause");
    tokio::time::sleep(BOUND * 3).await;
    let (status, headers, body) = get(base, Some(&rotated), false).await;
    run_script("kafka.sh", "resume");
    assert_eq!(status, 503, "{gateway:?}, broker paused: {body}");
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{gateway:?}");
    projector.wait_until("/health/lag", 200, Duration::from_secs(30)).await;
    assert_eq!(get(base, Some(&rotated), false).await.0, 200, "{gateway:?}: live again once the broker is back");

    // Projector down: the gateway fails closed.
    drop(projector);
    let (status, _, body) = get(base, Some(&rotated), false).await;
    assert_eq!(status, 503, "{gateway:?}, projector down: {body}");
    delete_topic(&kafka).await.ok();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn through_nginx() {
    through(Gateway::Nginx).await;
}

#[tokio::test]
async fn through_caddy() {
    through(Gateway::Caddy).await;
}
