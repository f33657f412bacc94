//! `GET /metrics`: Prometheus text.
//!
//! Values are pulled from the [`Health`](crate::Health) report at scrape
//! time, so the hot path (`check`, `apply`) pays only for its own atomic
//! counters, never for a metrics registry lookup.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use revocation_core::Source;

use crate::Shared;
use crate::health::{LagReport, ServingState};

/// The process-wide Prometheus recorder, installed on first use. `None` when
/// the application installed a recorder of its own (our metrics then go to
/// it, and `/metrics` here answers 404).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().ok()).as_ref()
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(state): State<Shared>) -> Response {
    let Some(handle) = prometheus() else {
        return (StatusCode::NOT_FOUND, "metrics are exported through the application's own recorder\n")
            .into_response();
    };
    export(&state.health.report(), state.health.fault_sources());
    for hook in &state.scrape_hooks {
        hook();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

/// Writes one report into the metrics registry, with a
/// `projection_feed_error` series for each of `fault_sources`.
pub fn export(report: &LagReport, fault_sources: &[&'static str]) {
    use metrics::{counter, gauge};
    for state in ServingState::ALL {
        gauge!("projection_state", "state" => state.as_str()).set(f64::from(u8::from(report.state == state)));
    }
    gauge!("projection_ready").set(f64::from(u8::from(report.ready)));
    for &source in fault_sources {
        let standing = report.feed_error.as_ref().is_some_and(|e| e.source == source);
        gauge!("projection_feed_error", "source" => source).set(f64::from(u8::from(standing)));
    }
    if let Some(fallback) = &report.fallback {
        gauge!("projection_fallback_reachable").set(f64::from(u8::from(fallback.reachable)));
    }
    gauge!("projection_staleness_seconds").set(report.staleness_ms.map_or(f64::INFINITY, |ms| ms as f64 / 1e3));
    gauge!("projection_max_staleness_seconds").set(report.max_staleness_ms as f64 / 1e3);
    gauge!("projection_offset_lag").set(report.offset_lag as f64);
    gauge!("projection_partitions_without_source_heartbeat")
        .set(report.partitions_without_source_heartbeat.len() as f64);
    gauge!("projection_cutoffs_heartbeat_missing").set(f64::from(u8::from(report.cutoffs_heartbeat_missing)));
    gauge!("projection_topic_distrusted").set(f64::from(u8::from(report.distrusted_after.is_some())));
    for p in &report.partitions {
        let partition = p.partition.to_string();
        gauge!("projection_partition_offset_lag", "partition" => partition.clone())
            .set(p.offset_lag.unwrap_or(0) as f64);
        gauge!("projection_partition_position", "partition" => partition.clone()).set(p.position.unwrap_or(0) as f64);
        gauge!("projection_partition_high_watermark", "partition" => partition)
            .set(p.high_watermark.unwrap_or(0) as f64);
    }
    gauge!("projection_sessions").set(report.sessions as f64);
    gauge!("projection_revoked_sessions").set(report.revoked_sessions as f64);
    counter!("projection_records_applied_total").absolute(report.records_applied);
    counter!("projection_records_rejected_total").absolute(report.records_rejected);
    counter!("projection_records_unknown_total").absolute(report.records_unknown);
    counter!("projection_janitor_lifetime_mismatches_total").absolute(report.janitor_lifetime_mismatches);
    for c in &report.checks {
        counter!("projection_checks_total", "source" => c.source, "answer" => c.answer).absolute(c.count);
    }
    let fallback: u64 = report.checks.iter().filter(|c| c.source == Source::Fallback.as_str()).map(|c| c.count).sum();
    counter!("projection_fallback_calls_total").absolute(fallback);
    counter!("projection_barrier_waits_total").absolute(report.barrier_waits);
    counter!("projection_barrier_timeouts_total").absolute(report.barrier_timeouts);
}
