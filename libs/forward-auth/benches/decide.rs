//! What one forward-auth decision costs, against the session check it wraps
//! (measured in the same run): a repeated token (a cache hit: SHA-256 and a
//! lookup) and a token seen for the first time (a signature check), for
//! each algorithm. Realistic tokens: UUID sids, iss/aud/sub/iat/exp.
//!
//!   cargo bench -p revocation-forward-auth --bench decide
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use criterion::{Criterion, criterion_group, criterion_main};
use revocation_core::{
    FreshnessConfig, ProjectedLiveness, Projection, SessionEvent, SessionId, SessionLiveness, SystemClock,
};
use revocation_forward_auth::{Algorithm, Decision, ForwardAuth, ForwardAuthConfig, KeySource, SigningKey, jwks};
use revocation_test_support::{KeyKind, private_key_pem};

fn live(sids: &[String]) -> Arc<ProjectedLiveness> {
    let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(Duration::from_secs(3600))));
    let now = revocation_core::Clock::now(&SystemClock);
    let at = time::OffsetDateTime::now_utc();
    for sid in sids {
        let sid = SessionId::new(sid.clone()).unwrap();
        projection
            .store()
            .apply(&SessionEvent::Created { sid, user_id: "u".into(), created_at: at, expires_at: None }, now);
    }
    projection.freshness().track_partitions([0]);
    projection.freshness().record_position(0, sids.len() as i64);
    projection.freshness().record_high_watermark(0, sids.len() as i64, now);
    Arc::new(ProjectedLiveness::builder(projection).build())
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sids: Vec<String> = (0..1000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let liveness = live(&sids);
    let keys = [
        ("EdDSA", SigningKey::from_pem(&private_key_pem(KeyKind::Ed25519), Algorithm::EdDSA, "ed").unwrap()),
        ("ES256", SigningKey::from_pem(&private_key_pem(KeyKind::Ec), Algorithm::ES256, "ec").unwrap()),
        ("RS256", SigningKey::from_pem(&private_key_pem(KeyKind::Rsa), Algorithm::RS256, "rsa").unwrap()),
    ];
    let dir = std::env::temp_dir().join(format!("fa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(
        &jwks_path,
        serde_json::to_vec(&jwks(&keys.iter().map(|(_, k)| k).collect::<Vec<_>>()).unwrap()).unwrap(),
    )
    .unwrap();
    let start = |capacity: usize| {
        let mut config = ForwardAuthConfig::new(KeySource::File(jwks_path.clone()));
        config.audiences = vec!["api".into()];
        config.issuers = vec!["https://id.example.com".into()];
        config.cache_capacity = capacity;
        runtime.block_on(ForwardAuth::start(config, liveness.clone(), Some(liveness.clone()))).unwrap()
    };
    let (cached, uncached) = (start(100_000), start(0));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = |key: &SigningKey| -> Vec<HeaderMap> {
        sids.iter()
            .map(|sid| {
                let claims = serde_json::json!({"iss": "https://id.example.com", "aud": "api", "sub": "u",
                    "sid": sid, "iat": now, "exp": now + 3600});
                let mut h = HeaderMap::new();
                h.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {}", key.sign(&claims).unwrap())).unwrap(),
                );
                h
            })
            .collect()
    };
    let mut group = c.benchmark_group("forward_auth");
    let session_ids: Vec<SessionId> = sids.iter().map(|s| SessionId::new(s.clone()).unwrap()).collect();
    let mut i = 0;
    group.bench_function("session check alone (baseline)", |b| {
        b.iter(|| {
            i = (i + 1) % session_ids.len();
            runtime.block_on(liveness.check(&session_ids[i])).unwrap()
        })
    });
    for (name, key) in &keys {
        let requests = headers(key);
        for h in &requests {
            assert!(matches!(runtime.block_on(cached.decide(h)), Decision::Allow(_)));
        }
        let mut i = 0;
        group.bench_function(format!("repeated token, cache hit ({name})"), |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                runtime.block_on(cached.decide(&requests[i]))
            })
        });
        group.bench_function(format!("new token, signature checked ({name})"), |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                runtime.block_on(uncached.decide(&requests[i]))
            })
        });
    }
    group.finish();
    std::fs::remove_dir_all(dir).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
