//! `GET /health/lag`, `/livez`, `/readyz`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use revocation_core::{Answer, Clock, FreshnessState, ProjectedLiveness, Source};
use serde::Serialize;

use crate::Shared;

/// Where answers come from now, as `/health/lag` and `/metrics` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServingState {
    /// The projection has not caught up since start: the fallback answers.
    Cold,
    /// The projection answers from memory.
    Live,
    /// The projection is too stale: `Transient`, or the fallback.
    Lagging,
    /// No projection: every check asks Postgres (a deployment choice).
    PostgresOnly,
}

impl ServingState {
    /// Every state, in metric order.
    pub const ALL: [ServingState; 4] = [Self::Cold, Self::Live, Self::Lagging, Self::PostgresOnly];

    /// The label value: `cold`, `live`, `lagging`, `postgres-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Live => "live",
            Self::Lagging => "lagging",
            Self::PostgresOnly => "postgres-only",
        }
    }
}

impl From<FreshnessState> for ServingState {
    fn from(state: FreshnessState) -> Self {
        match state {
            FreshnessState::Cold => Self::Cold,
            FreshnessState::Live => Self::Live,
            FreshnessState::Lagging => Self::Lagging,
        }
    }
}

impl std::fmt::Display for ServingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything `/health/lag` reports, and what `/metrics` exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagReport {
    /// Where answers come from now.
    pub state: ServingState,
    /// Whether checks get correct answers now (`/readyz`).
    pub ready: bool,
    /// Whether answers come from the projection (`/health/lag` is 200 only then).
    pub live: bool,
    /// `now - fresh_as_of`, in milliseconds, once every partition is reached.
    pub staleness_ms: Option<u64>,
    /// The limit beyond which the projection stops answering.
    pub max_staleness_ms: u64,
    /// Staleness by the broker's watermarks alone.
    pub broker_staleness_ms: Option<u64>,
    /// Staleness by the source's heartbeats alone (change data capture: how
    /// far behind the Postgres commit); absent when heartbeats do not bound
    /// freshness or before every partition has read one.
    pub source_staleness_ms: Option<u64>,
    /// Every record acknowledged before this instant is applied (RFC 3339).
    pub fresh_as_of: Option<String>,
    /// Records between the consumer and the high watermarks, all partitions.
    pub offset_lag: i64,
    /// Partitions no source heartbeat has been read on (change data
    /// capture): the projection cannot be Live until each has one — the
    /// connector's heartbeat rows do not reach them (docs/cdc.md).
    pub partitions_without_source_heartbeat: Vec<i32>,
    /// True while the cutoffs table's heartbeat row is expected (change
    /// data capture) and none has been read: the projection cannot be Live —
    /// `user_session_cutoffs` is not captured, or not routed into this topic
    /// (docs/cdc.md), so a "log out everywhere" would be missed.
    pub cutoffs_heartbeat_missing: bool,
    /// Set when the topic stopped being a faithful copy of its source (the
    /// table was truncated, partitions were added under CDC, the feed stalled
    /// past compaction): the projection fails closed on it for good; the log
    /// says why and what to do (RFC 3339).
    pub distrusted_after: Option<String>,
    /// The last record rejected as malformed, without its key: what is
    /// wrong (e.g. a column the connector does not capture).
    pub last_rejected: Option<String>,
    /// Tombstones from a janitor run with another `--max-session-lifetime`
    /// than this projection's: run both with the same lifetime.
    pub janitor_lifetime_mismatches: u64,
    /// Per partition.
    pub partitions: Vec<PartitionLag>,
    /// Sessions held.
    pub sessions: u64,
    /// Sessions held that are revoked.
    pub revoked_sessions: u64,
    /// Records applied.
    pub records_applied: u64,
    /// Records rejected as malformed.
    pub records_rejected: u64,
    /// Records of unknown type skipped.
    pub records_unknown: u64,
    /// Checks by `source` then `answer`.
    pub checks: Vec<CheckCount>,
    /// Barrier waits started.
    pub barrier_waits: u64,
    /// Barrier waits that timed out.
    pub barrier_timeouts: u64,
    /// Why the feed cannot read the topic now, in librdkafka's words (TLS,
    /// authentication, a record it cannot decompress…); absent while it can.
    pub feed_error: Option<FeedErrorReport>,
    /// The fallback's last probe, when a fallback is configured.
    pub fallback: Option<FallbackReport>,
    /// How this process started (warm or cold) and how fast it replays.
    pub start: Option<StartReport>,
    /// The last snapshot written, when snapshots are configured.
    pub snapshot: Option<SnapshotReport>,
}

/// How the projection started, for someone watching a start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartReport {
    /// `warm` (from a snapshot) or `cold` (a full replay).
    pub kind: &'static str,
    /// Why a snapshot was not used, when one was looked for.
    pub reason: Option<String>,
    /// Sessions the snapshot held.
    pub snapshot_sessions: u64,
    /// Records the start had to replay (left now: `offset_lag`).
    pub records_to_replay: Option<u64>,
    /// Replay rate: recent while replaying, over the whole start once Live.
    pub records_per_sec: u64,
    /// Milliseconds from start to Live, once Live.
    pub caught_up_after_ms: Option<u64>,
}

/// The snapshot writer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotReport {
    /// When the last snapshot was written (RFC 3339); absent before the first.
    pub written_at: Option<String>,
    /// Sessions in it.
    pub sessions: u64,
    /// Its size.
    pub bytes: u64,
    /// How long writing it took.
    pub took_ms: u64,
    /// Writes that failed since start.
    pub failures: u64,
}

/// What keeps the feed from reading the topic now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedErrorReport {
    /// `client` (connecting, TLS, authentication), `consumer` (fetching or
    /// reading records) or `sampler` (watermark and metadata queries).
    pub source: &'static str,
    /// librdkafka's description.
    pub message: String,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
    /// How often since it appeared.
    pub occurrences: u64,
}

/// The fallback's last probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackReport {
    /// Whether it answered.
    pub reachable: bool,
    /// Why not.
    pub error: Option<String>,
    /// When (RFC 3339); absent before the first probe.
    pub checked_at: Option<String>,
}

/// One partition's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// Partition.
    pub partition: i32,
    /// Next offset to read.
    pub position: Option<i64>,
    /// Latest sampled high watermark.
    pub high_watermark: Option<i64>,
    /// `high_watermark - position`.
    pub offset_lag: Option<i64>,
    /// Instant of the latest sample the position reached (RFC 3339).
    pub fresh_as_of: Option<String>,
    /// Commit instant of the newest source heartbeat read (RFC 3339).
    pub source_fresh_as_of: Option<String>,
}

/// Checks answered, for one source and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckCount {
    /// `projection`, `barrier`, `fallback`, `unavailable`.
    pub source: &'static str,
    /// `live`, `revoked`, `transient`.
    pub answer: &'static str,
    /// How many.
    pub count: u64,
}

/// Something that can report its lag.
pub trait Health: Send + Sync + 'static {
    /// The report now.
    fn report(&self) -> LagReport;

    /// Every value [`FeedErrorReport::source`] can take, so `/metrics` has a
    /// series for each even while none fails. The feed that reports faults
    /// says which (the Kafka source: `FaultSource::NAMES`); none by default.
    fn fault_sources(&self) -> &'static [&'static str] {
        &[]
    }
}

impl<C: Clock> Health for ProjectedLiveness<C> {
    fn report(&self) -> LagReport {
        let status = self.status();
        let f = status.freshness;
        let counts = self.counts();
        LagReport {
            state: f.state.into(),
            ready: self.can_answer(),
            live: f.state == FreshnessState::Live,
            staleness_ms: f.staleness.map(|s| s.as_millis() as u64),
            max_staleness_ms: f.max_staleness.as_millis() as u64,
            broker_staleness_ms: f.broker_staleness.map(|s| s.as_millis() as u64),
            source_staleness_ms: f.source_staleness.map(|s| s.as_millis() as u64),
            fresh_as_of: f.fresh_as_of.map(|t| t.to_rfc3339()),
            offset_lag: f.offset_lag,
            partitions_without_source_heartbeat: f.partitions_without_source_heartbeat.clone(),
            cutoffs_heartbeat_missing: f.cutoffs_heartbeat_missing,
            distrusted_after: f.distrusted_after.map(|t| t.to_rfc3339()),
            last_rejected: None,
            janitor_lifetime_mismatches: 0,
            partitions: f
                .partitions
                .iter()
                .map(|p| PartitionLag {
                    partition: p.partition,
                    position: p.position,
                    high_watermark: p.high_watermark,
                    offset_lag: p.offset_lag,
                    fresh_as_of: p.fresh_as_of.map(|t| t.to_rfc3339()),
                    source_fresh_as_of: p.source_fresh_as_of.map(|t| t.to_rfc3339()),
                })
                .collect(),
            sessions: status.store.sessions,
            revoked_sessions: status.store.revoked,
            records_applied: status.store.applied,
            records_rejected: status.store.rejected,
            records_unknown: status.store.unknown,
            checks: Source::ALL
                .iter()
                .flat_map(|&s| {
                    Answer::ALL.iter().map(move |&a| CheckCount {
                        source: s.as_str(),
                        answer: a.as_str(),
                        count: counts.get(s, a),
                    })
                })
                .collect(),
            barrier_waits: counts.barrier_waits(),
            barrier_timeouts: counts.barrier_timeouts(),
            feed_error: None,
            fallback: None,
            start: None,
            snapshot: None,
        }
    }
}

impl<T: Health + ?Sized> Health for Arc<T> {
    fn report(&self) -> LagReport {
        (**self).report()
    }
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/health/lag", get(lag)).route("/livez", get(livez)).route("/readyz", get(readyz))
}

async fn lag(State(state): State<Shared>) -> Response {
    let report = state.health.report();
    let status = if report.live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Shared>) -> Response {
    let report = state.health.report();
    if report.ready {
        (StatusCode::OK, format!("ready ({})\n", report.state)).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready ({})\n", report.state)).into_response()
    }
}
