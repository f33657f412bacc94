//! The endpoint driven through its router, against a real projection and
//! keys made by openssl: every answer a gateway relies on, and every way a
//! token can be wrong answered 401 (or 503 when unprovable), never 2xx.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::get_current_timestamp;
use revocation_core::{
    EventJson, FreshnessConfig, ProjectedLiveness, Projection, RawRecord, RecordFormat, SessionEvent, SessionId,
    SystemClock, UserId, UserRevokedBefore,
};
use revocation_forward_auth::{Algorithm, ForwardAuth, ForwardAuthConfig, KeySource, NoSession, SigningKey, jwks};
use revocation_test_support::{KeyKind, private_key_pem};
use serde_json::{Value, json};
use tower::ServiceExt;

const CUTOFF_USER: &str = "u-cut";

/// A Live projection: session `live` of user `u`, `gone` revoked, and user
/// `u-cut` logged out everywhere an hour ago.
fn live_projection() -> Arc<ProjectedLiveness> {
    let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(Duration::from_secs(60))));
    let at = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    let now = revocation_core::Clock::now(&SystemClock);
    let store = projection.store();
    let sid = |s: &str| SessionId::new(s).unwrap();
    store
        .apply(&SessionEvent::Created { sid: sid("live"), user_id: "u".into(), created_at: at, expires_at: None }, now);
    store.apply(&SessionEvent::Revoked { sid: sid("gone"), revoked_at: at, reason: None }, now);
    let cutoff = UserRevokedBefore {
        user_id: UserId::new(CUTOFF_USER).unwrap(),
        not_before: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        reason: None,
    };
    let (key, value) = (cutoff.key(), cutoff.to_value());
    store.apply(EventJson.decode(&RawRecord::new(Some(&key), Some(&value))), now);
    projection.freshness().track_partitions([0]);
    projection.freshness().record_position(0, 3);
    projection.freshness().record_high_watermark(0, 3, now);
    Arc::new(ProjectedLiveness::builder(projection).build())
}

struct Fixture {
    dir: PathBuf,
    ed: SigningKey,
    rsa: SigningKey,
    ec: SigningKey,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("fa-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = Self {
            dir,
            ed: SigningKey::from_pem(&private_key_pem(KeyKind::Ed25519), Algorithm::EdDSA, "ed-1").unwrap(),
            rsa: SigningKey::from_pem(&private_key_pem(KeyKind::Rsa), Algorithm::RS256, "rsa-1").unwrap(),
            ec: SigningKey::from_pem(&private_key_pem(KeyKind::Ec), Algorithm::ES256, "ec-1").unwrap(),
        };
        f.publish(&[&f.ed, &f.rsa, &f.ec]);
        f
    }

    fn jwks_path(&self) -> PathBuf {
        self.dir.join("jwks.json")
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let tmp = self.dir.join("jwks.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&jwks(keys).unwrap()).unwrap()).unwrap();
        std::fs::rename(tmp, self.jwks_path()).unwrap();
    }

    fn config(&self) -> ForwardAuthConfig {
        let mut config = ForwardAuthConfig::new(KeySource::File(self.jwks_path()));
        config.issuers = vec!["https://id.test".into()];
        config.audiences = vec!["api".into()];
        config.jwks_min_refetch = ForwardAuthConfig::MIN_JWKS_REFETCH;
        config
    }

    async fn start(&self, config: ForwardAuthConfig) -> Arc<ForwardAuth> {
        let liveness = live_projection();
        ForwardAuth::start(config, liveness.clone(), Some(liveness)).await.unwrap()
    }
}

fn claims(extra: Value) -> Value {
    let now = get_current_timestamp();
    let mut c =
        json!({"iss": "https://id.test", "aud": "api", "sub": "u", "sid": "live", "iat": now, "exp": now + 600});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn ask(auth: &Arc<ForwardAuth>, token: Option<&str>) -> (StatusCode, axum::http::HeaderMap, String) {
    ask_at(auth, "GET", "/v1/forward-auth", token).await
}

async fn ask_at(
    auth: &Arc<ForwardAuth>,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = auth.router().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_valid_token_of_a_live_session_passes_with_each_algorithm_and_names_user_and_session() {
    let f = Fixture::new();
    let auth = f.start(f.config()).await;
    for key in [&f.ed, &f.rsa, &f.ec] {
        let (status, headers, body) = ask(&auth, Some(&key.sign(&claims(json!({}))).unwrap())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-auth-user"], "u");
        assert_eq!(headers["x-auth-session"], "live");
    }
    // Envoy appends the original path (`/` too) and keeps the method.
    let token = f.ed.sign(&claims(json!({}))).unwrap();
    assert_eq!(ask_at(&auth, "POST", "/v1/forward-auth/orders/42?x=1", Some(&token)).await.0, StatusCode::OK);
    assert_eq!(ask_at(&auth, "GET", "/v1/forward-auth/", Some(&token)).await.0, StatusCode::OK);
    // Two Authorization headers: which one would the upstream read?
    let request = Request::builder()
        .uri("/v1/forward-auth")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, "Bearer forged.token.here")
        .body(Body::empty())
        .unwrap();
    assert_eq!(auth.router().oneshot(request).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_invalid_token_is_401() {
    let f = Fixture::new();
    let auth = f.start(f.config()).await;
    let now = get_current_timestamp();
    let other = SigningKey::from_pem(&private_key_pem(KeyKind::Ed25519), Algorithm::EdDSA, "ed-1").unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("revoked session", f.ed.sign(&claims(json!({"sid": "gone"}))).unwrap()),
        ("unknown session (never created)", f.ed.sign(&claims(json!({"sid": "never"}))).unwrap()),
        ("forged signature (same kid, other key)", other.sign(&claims(json!({}))).unwrap()),
        ("wrong aud", f.ed.sign(&claims(json!({"aud": "other"}))).unwrap()),
        ("no aud", f.ed.sign(&claims(json!({"aud": null}))).unwrap()),
        ("wrong iss", f.ed.sign(&claims(json!({"iss": "https://evil.test"}))).unwrap()),
        ("expired past the leeway", f.ed.sign(&claims(json!({"exp": now - 31}))).unwrap()),
        ("no exp", f.ed.sign(&claims(json!({"exp": null}))).unwrap()),
        ("not yet valid", f.ed.sign(&claims(json!({"nbf": now + 120}))).unwrap()),
        ("sid not a string", f.ed.sign(&claims(json!({"sid": 7}))).unwrap()),
        ("sid with a control character", f.ed.sign(&claims(json!({"sid": "a\u{1}b"}))).unwrap()),
        (
            "issued before its user logged out everywhere",
            f.ed.sign(&claims(json!({"sub": CUTOFF_USER, "iat": now - 7200}))).unwrap(),
        ),
        ("no iat for a user with a cutoff", f.ed.sign(&claims(json!({"sub": CUTOFF_USER, "iat": null}))).unwrap()),
        (
            "unknown kid",
            SigningKey::from_pem(&private_key_pem(KeyKind::Ed25519), Algorithm::EdDSA, "nope")
                .unwrap()
                .sign(&claims(json!({})))
                .unwrap(),
        ),
        ("alg none", unsigned(&claims(json!({})))),
        ("HS256 keyed with the public JWK (algorithm confusion)", hs256_with_public_key(&f.rsa)),
        ("garbage", "not.a.jwt".into()),
        (
            "a user padded with a space (the upstream would read it trimmed)",
            f.ed.sign(&claims(json!({"sub": " u"}))).unwrap(),
        ),
        ("a user holding a comma (an upstream may split it)", f.ed.sign(&claims(json!({"sub": "eve,u"}))).unwrap()),
        ("a user in non-ASCII bytes", f.ed.sign(&claims(json!({"sub": "ü"}))).unwrap()),
        (
            "issued in the future (it would outrank every cutoff)",
            f.ed.sign(&claims(json!({"iat": now + 3600}))).unwrap(),
        ),
    ];
    for (what, token) in cases {
        let (status, headers, body) = ask(&auth, Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"), "{what}");
        assert!(!headers.contains_key("x-auth-user"), "{what}");
    }
    let (status, headers, _) = ask(&auth, None).await;
    assert_eq!((status, &headers[header::WWW_AUTHENTICATE]), (StatusCode::UNAUTHORIZED, &"Bearer".parse().unwrap()));
    // Within the leeway, and a token issued after the user's cutoff, pass.
    assert_eq!(ask(&auth, Some(&f.ed.sign(&claims(json!({"exp": now - 5}))).unwrap())).await.0, StatusCode::OK);
    let after = claims(json!({"sub": CUTOFF_USER, "sid": null}));
    assert_eq!(ask(&auth, Some(&f.ed.sign(&after).unwrap())).await.0, StatusCode::OK);
}

fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims.to_string()))
}

/// The classic confusion: sign with HMAC using the RSA key's public JWK
/// text as the secret, hoping the verifier uses the "key" it has.
fn hs256_with_public_key(rsa: &SigningKey) -> String {
    let secret = serde_json::to_vec(&rsa.jwk().unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, &claims(json!({})), &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_token_without_a_session_claim_passes_by_default_and_is_refused_when_configured() {
    let f = Fixture::new();
    let token = f.ed.sign(&claims(json!({"sid": null}))).unwrap();
    let (status, headers, _) = ask(&f.start(f.config()).await, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-auth-session"], "", "sent empty: a gateway must not pass on the client's own");
    let mut strict = f.config();
    strict.no_session = NoSession::Refuse;
    assert_eq!(ask(&f.start(strict).await, Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cold_projection_answers_503_and_a_repeated_token_is_verified_once() {
    let f = Fixture::new();
    let cold = Arc::new(ProjectedLiveness::builder(Arc::new(Projection::new(FreshnessConfig::default()))).build());
    let auth = ForwardAuth::start(f.config(), cold.clone(), Some(cold)).await.unwrap();
    let token = f.ed.sign(&claims(json!({}))).unwrap();
    let (status, headers, _) = ask(&auth, Some(&token)).await;
    assert_eq!((status, &headers[header::RETRY_AFTER]), (StatusCode::SERVICE_UNAVAILABLE, &"1".parse().unwrap()));
    assert_eq!(ask(&auth, Some(&token)).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let counts = auth.counts();
    assert_eq!(counts.verified.load(Ordering::Relaxed), 1, "the second ask is a cache hit");
    assert_eq!(counts.cache_hits.load(Ordering::Relaxed), 1);
    assert_eq!(counts.unavailable.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_rotated_key_set_admits_the_new_key_at_once_and_stops_admitting_a_removed_one() {
    let f = Fixture::new();
    f.publish(&[&f.ed]);
    let mut config = f.config();
    config.jwks_refresh = Duration::from_millis(200);
    let auth = f.start(config).await;
    let old = f.ed.sign(&claims(json!({}))).unwrap();
    assert_eq!(ask(&auth, Some(&old)).await.0, StatusCode::OK);
    // Rotation: the new key is published, then tokens signed with it arrive.
    let next = SigningKey::from_pem(&private_key_pem(KeyKind::Ec), Algorithm::ES256, "ec-2").unwrap();
    f.publish(&[&f.ed, &next]);
    tokio::time::sleep(ForwardAuthConfig::MIN_JWKS_REFETCH).await; // the start's load counts as a fetch
    assert_eq!(ask(&auth, Some(&next.sign(&claims(json!({}))).unwrap())).await.0, StatusCode::OK);
    // The old key is withdrawn: its cached tokens stop passing with the next refresh.
    f.publish(&[&next]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ask(&auth, Some(&old)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_from_a_url_that_cannot_be_fetched_answer_503_then_pass_once_it_serves() {
    let f = Fixture::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = f.config();
    config.keys = KeySource::Url(format!("http://{addr}/jwks.json"));
    let auth = f.start(config).await;
    let token = f.ed.sign(&claims(json!({}))).unwrap();
    let (status, _, body) = ask(&auth, Some(&token)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let set = std::fs::read(f.jwks_path()).unwrap();
    let app = axum::Router::new().route("/jwks.json", axum::routing::get(move || async move { set.clone() }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::time::sleep(ForwardAuthConfig::MIN_JWKS_REFETCH).await;
    assert_eq!(ask(&auth, Some(&token)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_or_malformed_jwks_file_is_a_start_error() {
    let f = Fixture::new();
    let liveness = live_projection();
    let mut config = f.config();
    config.keys = KeySource::File(f.dir.join("absent.json"));
    let err = ForwardAuth::start(config.clone(), liveness.clone(), None).await.unwrap_err();
    assert!(err.to_string().contains("absent.json"), "{err}");
    std::fs::write(f.dir.join("absent.json"), br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let err = ForwardAuth::start(config, liveness, None).await.unwrap_err();
    assert!(err.to_string().contains("no usable signing key"), "{err}");
}
