//! The session-liveness port and the pure projection behind it.
//!
//! A JWT verifier asks one question per request: *is this session still live?*
//! This crate defines that question ([`SessionLiveness`]) and answers it from an
//! in-memory, event-sourced projection ([`ProjectedLiveness`]) that a source
//! (the Kafka adapter) keeps up to date. Nothing here does I/O: time comes
//! from a [`Clock`], events arrive as bytes, and the fallback and the barrier
//! are traits the adapters implement.
//!
//! # Layout
//!
//! Every item is exported here, at the crate root; the modules are private.
//!
//! - `session_id`: [`SessionId`], validated once, and [`SidRef`], the same id
//!   borrowed from a record key.
//! - `port`: the [`SessionLiveness`] trait and its three answers, and
//!   [`TokenLiveness`], the epoch slot beside it.
//! - `event`: [`SessionEvent`], the facts of our own event format, and how
//!   they are written.
//! - `format`: [`RecordFormat`] — a record's key, value and headers
//!   ([`RawRecord`]) to a change, an unknown kind, or malformed
//!   ([`Decoded`]) — and its first implementation, [`EventJson`].
//! - `state`: one session's state as a join-semilattice (merge is
//!   idempotent, commutative, monotone; revocation absorbs).
//! - `store`: [`SessionStore`], a concurrent map of compact session ids to
//!   their state, with its one apply path.
//! - `freshness`: watermark samples and consumer positions per partition →
//!   `fresh_as_of` → staleness → [`FreshnessState`] (Cold, Live, Lagging).
//! - `projection`: [`Projection`], a store and its freshness.
//! - `rebuild`: [`RebuildReport`], what a replay into a fresh projection did.
//! - `barrier`: read-your-writes for absent sessions ([`Barrier`],
//!   [`FreshnessBarrier`]).
//! - `current`: the projection answering now, swappable by a rebuild and read
//!   through a per-thread handle (no locked instruction per check).
//! - `liveness`: [`ProjectedLiveness`], which routes each check by state
//!   to the store, the barrier, the fallback, or `Transient`.
//! - `confirm`: [`AbsentConfirmation`], asking the fallback about a session
//!   the projection does not hold, at a bounded rate (change data capture).
//! - `token`: [`TokenLiveness`] (the verifier's epoch slot) answered by
//!   [`ProjectedLiveness`] under the same freshness rules.
//! - `user`: per-user cutoffs ("log out everywhere"): [`UserId`],
//!   [`UserTag`] (the owner as each session keeps it), [`UserCutoffs`].
//! - `snapshot`: the snapshot format — a store and the positions it is
//!   complete up to, as checksummed bytes ([`SnapshotMeta`]).
//! - `check_counts`: [`CheckCounts`], checks by source and answer, counted
//!   per thread.
//! - `clock`: [`Clock`], [`SystemClock`], [`ManualClock`], [`Timestamp`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use revocation_core::{
//!     EventJson, FreshnessConfig, ManualClock, Projection, ProjectedLiveness, RawRecord,
//!     RecordFormat, SessionId, SessionLiveness, SessionLivenessError, Timestamp,
//! };
//!
//! # tokio_test_block_on(async {
//! let clock = ManualClock::new(Timestamp::from_unix_secs(1_800_000_000));
//! let projection = Arc::new(Projection::new(FreshnessConfig::default()));
//! let liveness = ProjectedLiveness::builder(projection.clone())
//!     .clock(clock.clone())
//!     .build();
//!
//! // The source applies records and reports how far it has read.
//! let value = br#"{"type":"session.revoked","sid":"s-1","revoked_at":"2026-11-27T11:00:00Z"}"#;
//! let record = RawRecord::new(Some(b"s-1"), Some(value));
//! projection.store().apply(EventJson.decode(&record), clock.now());
//! projection.freshness().track_partitions([0]);
//! projection.freshness().record_position(0, 1);
//! projection.freshness().record_high_watermark(0, 1, clock.now());
//!
//! let sid = SessionId::new("s-1").unwrap();
//! assert_eq!(liveness.check(&sid).await, Err(SessionLivenessError::Revoked));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! # use revocation_core::Clock;
//! ```
#![forbid(unsafe_code)]

mod barrier;
mod check_counts;
mod clock;
mod confirm;
mod current;
mod event;
mod format;
mod freshness;
mod liveness;
mod port;
mod projection;
mod rebuild;
mod session_id;
mod snapshot;
mod state;
mod store;
mod token;
mod user;

pub use barrier::{Barrier, BarrierTimeout, FreshnessBarrier, WatermarkProbe};
pub use check_counts::{Answer, CheckCounts, Source};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use confirm::AbsentConfirmation;
pub use event::{CREATED, CUTOFFS_HEARTBEAT_USER, REVOKED, SessionEvent, USER_REVOKED_BEFORE, UserRevokedBefore};
pub use format::{
    Change, CloudEvents, Debezium, Decoded, EventJson, HEARTBEAT_PREFIX, Header, RawRecord, RecordFormat,
    TRUNCATE_MARKER_ID,
};
pub use freshness::{Freshness, FreshnessConfig, FreshnessReport, FreshnessState, PartitionReport};
pub use liveness::{LagPolicy, ProjectedLiveness, ProjectedLivenessBuilder, ProjectionStatus};
pub use port::{CheckFuture, SessionLiveness, SessionLivenessError, TokenLiveness};
pub use projection::Projection;
pub use rebuild::RebuildReport;
pub use session_id::{InvalidSessionId, MAX_SESSION_ID_LEN, SessionId, SidRef, log_tag};
pub use snapshot::{
    SNAPSHOT_VERSION, Snapshot, SnapshotCounts, SnapshotError, SnapshotMeta, read_snapshot, write_snapshot,
};
pub use state::{SessionState, Standing};
pub use store::{Applied, ChangeBatch, Lookup, SessionStore, StoreCounts};
pub use user::{InvalidUserId, UserCutoffs, UserId, UserTag};
