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
//! - [`port`]: [`SessionId`], the [`SessionLiveness`] trait and its three answers.
//! - [`event`]: the wire format of session events, and [`decode`], which
//!   classifies any bytes as an event, an unknown type, or malformed.
//! - [`state`]: one session's state as a join-semilattice (merge is idempotent,
//!   commutative, monotone; revocation absorbs).
//! - [`store`]: [`SessionStore`], a concurrent map of compact session ids to
//!   their state, with counters.
//! - [`freshness`]: watermark samples and consumer positions per partition →
//!   `fresh_as_of` → staleness → [`FreshnessState`] (Cold, Live, Lagging).
//! - [`barrier`]: read-your-writes for absent sessions ([`Barrier`],
//!   [`FreshnessBarrier`]).
//! - [`liveness`]: [`ProjectedLiveness`], which routes each check by state
//!   to the store, the barrier, the fallback, or `Transient`.
//! - [`clock`]: [`Clock`], [`SystemClock`], [`ManualClock`], [`Timestamp`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use revocation_core::{
//!     decode, Decoded, FreshnessConfig, ManualClock, Projection, ProjectedLiveness,
//!     SessionId, SessionLiveness, SessionLivenessError, Timestamp,
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
//! if let Decoded::Event(event) = decode(Some(b"s-1"), Some(value)) {
//!     projection.store().apply(&event);
//! }
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

pub mod barrier;
pub mod clock;
pub mod event;
pub mod freshness;
pub mod liveness;
pub mod port;
pub mod state;
pub mod store;

pub use barrier::{Barrier, BarrierTimeout, FreshnessBarrier, WatermarkProbe};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use event::{Decoded, SessionEvent, decode};
pub use freshness::{Freshness, FreshnessConfig, FreshnessReport, FreshnessState, PartitionReport};
pub use liveness::{
    Answer, CheckCounts, LagPolicy, ProjectedLiveness, ProjectedLivenessBuilder, Projection, ProjectionStatus, Source,
};
pub use port::{CheckFuture, InvalidSessionId, SessionId, SessionLiveness, SessionLivenessError};
pub use state::SessionState;
pub use store::{Applied, Lookup, SessionStore, StoreCounts};
