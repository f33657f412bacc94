//! The router, driven with `tower::ServiceExt::oneshot`: every status code,
//! and bad input answered with a 4xx, never a 5xx or a panic.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use revocation_core::{
    FreshnessConfig, ProjectedLiveness, Projection, RebuildReport, SessionEvent, SessionId, SessionLiveness,
    SessionLivenessError, SystemClock,
};
use revocation_http::{AdminConfig, FeedErrorReport, Health, HttpState, LagReport, Limits, Rebuild, app};
use tower::ServiceExt;

/// Answers by the sid's prefix; `slow-` sleeps first.
#[derive(Debug)]
struct ByPrefix;

#[async_trait]
impl SessionLiveness for ByPrefix {
    async fn check(&self, sid: &SessionId) -> Result<(), SessionLivenessError> {
        let s = sid.as_str();
        if s.starts_with("slow-") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if s.starts_with("live") || s.starts_with("slow-") {
            Ok(())
        } else if s.starts_with("down") {
            Err(SessionLivenessError::Transient("projection lagging".into()))
        } else {
            Err(SessionLivenessError::Revoked)
        }
    }
}

/// A Live projection holding one live and one revoked session.
fn live_projection() -> Arc<ProjectedLiveness> {
    let projection = Arc::new(Projection::new(FreshnessConfig::with_max_staleness(Duration::from_secs(60))));
    let sid = |s: &str| SessionId::new(s).unwrap();
    let at = time::OffsetDateTime::now_utc();
    let now = revocation_core::Clock::now(&SystemClock);
    let created = SessionEvent::Created { sid: sid("a"), user_id: "u".into(), created_at: at, expires_at: None };
    projection.store().apply(&created, now);
    projection.store().apply(&SessionEvent::Revoked { sid: sid("b"), revoked_at: at, reason: None }, now);
    projection.freshness().track_partitions([0]);
    projection.freshness().record_position(0, 2);
    projection.freshness().record_high_watermark(0, 2, revocation_core::Clock::now(&SystemClock));
    Arc::new(ProjectedLiveness::builder(projection).build())
}

fn cold_projection() -> Arc<ProjectedLiveness> {
    Arc::new(ProjectedLiveness::builder(Arc::new(Projection::new(FreshnessConfig::default()))).build())
}

fn stub_state() -> HttpState {
    HttpState::new(Arc::new(ByPrefix), live_projection())
}

async fn call(state: HttpState, method: &str, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    call_with(state, Request::builder().method(method).uri(uri).body(Body::empty()).unwrap()).await
}

async fn call_with(state: HttpState, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app(state).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_live_session_is_200() {
    let (status, _, body) = call(stub_state(), "GET", "/v1/sessions/live-1").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"live"}"#));
}

#[tokio::test]
async fn a_revoked_session_is_410() {
    let (status, _, body) = call(stub_state(), "GET", "/v1/sessions/gone-1").await;
    assert_eq!((status, body.as_str()), (StatusCode::GONE, r#"{"status":"revoked"}"#));
}

#[tokio::test]
async fn an_unavailable_answer_is_503_with_retry_after() {
    let (status, headers, body) = call(stub_state(), "GET", "/v1/sessions/down-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(body, r#"{"reason":"projection lagging","status":"unavailable"}"#);
}

#[tokio::test]
async fn answers_from_a_real_projection() {
    let liveness = live_projection();
    let state = HttpState::new(liveness.clone(), liveness);
    assert_eq!(call(state.clone(), "GET", "/v1/sessions/a").await.0, StatusCode::OK);
    assert_eq!(call(state.clone(), "GET", "/v1/sessions/b").await.0, StatusCode::GONE);
    assert_eq!(call(state, "GET", "/v1/sessions/never").await.0, StatusCode::GONE);
}

#[tokio::test]
async fn odd_but_valid_sids_are_just_data() {
    for uri in ["/v1/sessions/live-%C3%A9%F0%9F%A6%80", "/v1/sessions/'%20OR%20'1'='1", "/v1/sessions/%22%3B--"] {
        let (status, _, _) = call(stub_state(), "GET", uri).await;
        assert!(status == StatusCode::OK || status == StatusCode::GONE, "{uri}: {status}");
    }
}

#[tokio::test]
async fn bad_sids_are_400() {
    let long = format!("/v1/sessions/{}", "x".repeat(300));
    for uri in [long.as_str(), "/v1/sessions/a%00b", "/v1/sessions/a%0Ab", "/v1/sessions/%FF%FE"] {
        let (status, _, body) = call(stub_state(), "GET", uri).await;
        assert!(status == StatusCode::BAD_REQUEST, "{uri}: {status} {body}");
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_4xx() {
    assert_eq!(call(stub_state(), "GET", "/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(stub_state(), "GET", "/v1/sessions/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(stub_state(), "POST", "/v1/sessions/live-1").await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(stub_state(), "DELETE", "/health/lag").await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(stub_state(), "GET", "/admin/rebuild").await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn lag_health_is_200_when_live_and_503_otherwise() {
    let live = live_projection();
    let (status, _, body) = call(HttpState::new(live.clone(), live), "GET", "/health/lag").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["state"], "live");
    assert_eq!(report["sessions"], 2);
    assert_eq!(report["partitions"][0]["position"], 2);
    assert!(report["staleness_ms"].as_u64().unwrap() < 60_000);

    let cold = cold_projection();
    let (status, _, body) = call(HttpState::new(cold.clone(), cold), "GET", "/health/lag").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains(r#""state":"cold""#), "{body}");
}

#[tokio::test]
async fn probes_say_alive_and_whether_ready() {
    let cold = cold_projection();
    let state = HttpState::new(cold.clone(), cold);
    assert_eq!(call(state.clone(), "GET", "/livez").await.0, StatusCode::OK);
    assert_eq!(call(state, "GET", "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let live = live_projection();
    assert_eq!(call(HttpState::new(live.clone(), live), "GET", "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let live = live_projection();
    let state = HttpState::new(live.clone(), live);
    call(state.clone(), "GET", "/v1/sessions/a").await;
    let (status, _, body) = call(state, "GET", "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "projection_state{state=\"live\"} 1",
        "projection_staleness_seconds",
        "projection_partition_offset_lag{partition=\"0\"}",
        "projection_sessions",
        "projection_records_applied_total",
        "projection_records_rejected_total",
        "projection_checks_total{source=\"projection\",answer=\"live\"}",
        "projection_barrier_waits_total",
        "projection_fallback_calls_total",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}

/// A feed with two fault sources, one of them failing.
struct FailingFeed(Arc<ProjectedLiveness>);

impl Health for FailingFeed {
    fn report(&self) -> LagReport {
        let mut report = self.0.report();
        report.feed_error = Some(FeedErrorReport {
            source: "consumer",
            message: "codec".into(),
            first_seen: String::new(),
            last_seen: String::new(),
            occurrences: 1,
        });
        report
    }

    fn fault_sources(&self) -> &'static [&'static str] {
        &["client", "consumer"]
    }
}

#[tokio::test]
async fn metrics_have_a_feed_error_series_for_each_source_the_feed_names() {
    let live = live_projection();
    let (_, _, body) = call(HttpState::new(live.clone(), Arc::new(FailingFeed(live))), "GET", "/metrics").await;
    assert!(body.contains("projection_feed_error{source=\"consumer\"} 1"), "{body}");
    assert!(body.contains("projection_feed_error{source=\"client\"} 0"), "{body}");
}

#[tokio::test]
async fn the_token_route_answers_from_the_users_cutoff() {
    let live = live_projection();
    let cutoff = revocation_core::UserRevokedBefore {
        user_id: revocation_core::UserId::new("u-42").unwrap(),
        not_before: time::OffsetDateTime::from_unix_timestamp(2_000).unwrap(),
        reason: None,
    };
    let (key, value) = (cutoff.key(), cutoff.to_value());
    let record = revocation_core::RawRecord::new(Some(&key), Some(&value));
    live.projection().store().apply(
        revocation_core::RecordFormat::decode(&revocation_core::EventJson, &record),
        revocation_core::Clock::now(&SystemClock),
    );
    let state = HttpState::new(live.clone(), live.clone()).with_tokens(live);
    assert_eq!(call(state.clone(), "GET", "/v1/users/u-42/tokens/1999").await.0, StatusCode::GONE);
    assert_eq!(call(state.clone(), "GET", "/v1/users/u-42/tokens/2000").await.0, StatusCode::OK);
    assert_eq!(call(state.clone(), "GET", "/v1/users/u-7/tokens/1").await.0, StatusCode::OK);
    assert_eq!(call(state.clone(), "GET", "/v1/users/u-42/tokens/yesterday").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(call(stub_state(), "GET", "/v1/users/u-42/tokens/1").await.0, StatusCode::NOT_FOUND, "not wired");
    let cold = cold_projection();
    let (status, _, body) =
        call(HttpState::new(cold.clone(), cold.clone()).with_tokens(cold), "GET", "/v1/users/u/tokens/1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "cold without a fallback: {body}");
}

#[derive(Default)]
struct FakeRebuild {
    busy: AtomicBool,
    ran: AtomicBool,
}

#[async_trait]
impl Rebuild for FakeRebuild {
    fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }
    async fn rebuild(&self) -> Result<RebuildReport, Box<dyn std::error::Error + Send + Sync>> {
        self.ran.store(true, Ordering::SeqCst);
        Ok(RebuildReport { sessions: 0, records: 0, took: Duration::ZERO })
    }
}

fn admin_state(rebuild: Arc<FakeRebuild>) -> HttpState {
    stub_state().with_admin(AdminConfig::new("s3cret-admin-token", rebuild).unwrap())
}

fn post_rebuild(token: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method("POST").uri("/admin/rebuild");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn rebuild_is_off_by_default() {
    assert_eq!(call_with(stub_state(), post_rebuild(Some("s3cret-admin-token"))).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rebuild_needs_the_bearer_token() {
    let rebuild = Arc::new(FakeRebuild::default());
    assert_eq!(call_with(admin_state(rebuild.clone()), post_rebuild(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call_with(admin_state(rebuild.clone()), post_rebuild(Some("wrong"))).await.0, StatusCode::UNAUTHORIZED);
    assert!(!rebuild.ran.load(Ordering::SeqCst));
    assert_eq!(
        call_with(admin_state(rebuild.clone()), post_rebuild(Some("s3cret-admin-token"))).await.0,
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rebuild.ran.load(Ordering::SeqCst));
    rebuild.busy.store(true, Ordering::SeqCst);
    assert_eq!(call_with(admin_state(rebuild), post_rebuild(Some("s3cret-admin-token"))).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let request = Request::builder()
        .method("POST")
        .uri("/admin/rebuild")
        .header(header::AUTHORIZATION, "Bearer s3cret-admin-token")
        .header(header::CONTENT_LENGTH, "4096")
        .body(Body::from(vec![b'x'; 4096]))
        .unwrap();
    let (status, _, _) = call_with(admin_state(Arc::new(FakeRebuild::default())), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_slow_check_times_out_with_503() {
    let state = stub_state().with_limits(Limits { request_timeout: Duration::from_millis(50), ..Limits::default() });
    let (status, headers, _) = call(state, "GET", "/v1/sessions/slow-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_flood_beyond_the_concurrency_limit_is_shed_with_503() {
    let state = stub_state().with_limits(Limits { max_in_flight: 1, ..Limits::default() });
    let router = app(state);
    let slow = router.clone().oneshot(Request::get("/v1/sessions/slow-1").body(Body::empty()).unwrap());
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shed = router.oneshot(Request::get("/v1/sessions/live-2").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    slow.abort();
}
