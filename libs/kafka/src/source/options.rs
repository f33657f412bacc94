//! [`SourceOptions`]: how a [`KafkaSource`](super::KafkaSource) reads its
//! topic and answers, and the defaults that follow from the record format,
//! resolved here and nowhere else.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use revocation_core::{
    EventJson, FreshnessBarrier, FreshnessConfig, LagPolicy, RecordFormat, SessionLiveness, TokenLiveness,
};

use crate::snapshots::{FetchedSnapshot, SnapshotOptions};

/// Options of a [`KafkaSource`](super::KafkaSource). The embedding API's
/// config holds one of these; the projector's flags fill it.
///
/// ```
/// use std::sync::Arc;
/// use revocation_core::Debezium;
/// use revocation_kafka::SourceOptions;
///
/// let options = SourceOptions { format: Arc::new(Debezium), ..SourceOptions::default() };
/// // Change data capture turns on the source's heartbeats by itself.
/// assert!(options.freshness().source_heartbeats);
/// ```
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// How the topic's records are read. Default: [`EventJson`], our own
    /// event format.
    pub format: Arc<dyn RecordFormat>,
    /// Beyond this staleness the projection stops answering.
    /// Default: [`FreshnessConfig::DEFAULT_MAX_STALENESS`].
    pub max_staleness: Duration,
    /// A Lagging projection is Live again at or below this staleness.
    /// Default: half of `max_staleness`.
    pub recover_below: Option<Duration>,
    /// Bound freshness by the source's heartbeats too (the staleness from
    /// the source's commit, `docs/cdc.md`). Default (`None`): on when the
    /// format mirrors a source table ([`RecordFormat::mirrors_source_table`]).
    pub source_heartbeats: Option<bool>,
    /// Bound on a read-your-writes barrier wait.
    /// Default: [`FreshnessBarrier::DEFAULT_TIMEOUT`].
    pub barrier_timeout: Duration,
    /// What to do while Lagging. Default: `Transient`.
    pub lag_policy: LagPolicy,
    /// Who answers while Cold (and Lagging under `LagPolicy::Fallback`).
    /// Default: none (Cold answers `Transient`).
    pub fallback: Option<Arc<dyn SessionLiveness>>,
    /// Who answers token checks (the epoch slot) while Cold (and Lagging
    /// under `LagPolicy::Fallback`). Default: none (`Transient` then).
    pub token_fallback: Option<Arc<dyn TokenLiveness>>,
    /// Ask the fallback about a session still unknown after the barrier, at
    /// most this many times a second (0: never). Default (`None`):
    /// [`Self::DEFAULT_CONFIRM_UNKNOWN_PER_SEC`] when the format mirrors a
    /// source table — a row committed before the check must not be answered
    /// revoked because its change is in flight — else never. Needs a
    /// fallback.
    pub confirm_unknown_per_sec: Option<u32>,
    /// Sessions to reserve room for up front (avoids rehashing during replay).
    pub expected_sessions: usize,
    /// Caps every session's expiry at its creation plus this, and keeps a
    /// revoked session that long after its revocation (what makes
    /// tombstoning expired sessions safe, `docs/lifecycle.md`). Default: none.
    pub max_session_lifetime: Option<Duration>,
    /// Warm restarts from a snapshot in this directory. Default: none (every
    /// start replays the topic).
    pub snapshot: Option<SnapshotOptions>,
    /// What came before reading the snapshot (a peer's snapshot fetched, or
    /// why none could be), prefixed to the reason of a cold start in the
    /// start report and the log. Set by the embedding.
    pub cold_start_note: Option<String>,
    /// The snapshot directory's snapshot as the peer fetch read and checked
    /// it (a peer's, or the local one it found sound), held in memory so
    /// the start restores it without reading the file again (every check
    /// still applies). Set by the embedding.
    pub peer_snapshot: Option<FetchedSnapshot>,
}

impl SourceOptions {
    /// Confirmations a second when [`Self::confirm_unknown_per_sec`] is left
    /// to its default under change data capture.
    pub const DEFAULT_CONFIRM_UNKNOWN_PER_SEC: u32 = 100;

    /// The freshness thresholds, with the format's defaults filled in.
    pub fn freshness(&self) -> FreshnessConfig {
        let source_heartbeats = self.source_heartbeats.unwrap_or(self.format.mirrors_source_table());
        FreshnessConfig {
            max_staleness: self.max_staleness,
            recover_below: self.recover_below.unwrap_or(self.max_staleness / 2),
            source_heartbeats,
            // The mirrored source has a cutoffs table beside its sessions.
            cutoffs_heartbeats: source_heartbeats && self.format.mirrors_source_table(),
        }
    }

    /// Confirmations of unknown sessions a second, if any: `None` without a
    /// fallback to ask.
    pub fn confirm_unknown_rate(&self) -> Option<NonZeroU32> {
        self.fallback.as_ref()?;
        let default = if self.format.mirrors_source_table() { Self::DEFAULT_CONFIRM_UNKNOWN_PER_SEC } else { 0 };
        NonZeroU32::new(self.confirm_unknown_per_sec.unwrap_or(default))
    }
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            format: Arc::new(EventJson),
            max_staleness: FreshnessConfig::DEFAULT_MAX_STALENESS,
            recover_below: None,
            source_heartbeats: None,
            barrier_timeout: FreshnessBarrier::DEFAULT_TIMEOUT,
            lag_policy: LagPolicy::default(),
            fallback: None,
            token_fallback: None,
            confirm_unknown_per_sec: None,
            expected_sessions: 0,
            max_session_lifetime: None,
            snapshot: None,
            cold_start_note: None,
            peer_snapshot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revocation_core::{CloudEvents, Debezium, SessionId, SessionLivenessError};

    #[derive(Debug)]
    struct Nobody;

    #[async_trait::async_trait]
    impl SessionLiveness for Nobody {
        async fn check(&self, _: &SessionId) -> Result<(), SessionLivenessError> {
            Err(SessionLivenessError::Revoked)
        }
    }

    #[test]
    fn the_format_decides_the_defaults_and_explicit_values_win() {
        let events = SourceOptions::default();
        assert!(!events.freshness().source_heartbeats);
        assert_eq!(events.freshness().recover_below, events.max_staleness / 2);
        let cloud = SourceOptions { format: Arc::new(CloudEvents), fallback: Some(Arc::new(Nobody)), ..events.clone() };
        assert_eq!(cloud.confirm_unknown_rate(), None);

        let cdc = SourceOptions { format: Arc::new(Debezium), ..SourceOptions::default() };
        assert!(cdc.freshness().source_heartbeats && cdc.freshness().cutoffs_heartbeats);
        assert_eq!(cdc.confirm_unknown_rate(), None, "nothing to confirm with");
        let cdc = SourceOptions { fallback: Some(Arc::new(Nobody)), ..cdc };
        assert_eq!(cdc.confirm_unknown_rate().map(NonZeroU32::get), Some(100));
        let off = SourceOptions { confirm_unknown_per_sec: Some(0), source_heartbeats: Some(false), ..cdc };
        assert_eq!(off.confirm_unknown_rate(), None);
        assert!(!off.freshness().source_heartbeats && !off.freshness().cutoffs_heartbeats);
    }
}
