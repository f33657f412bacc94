//! [`Embedded`]: a running projection (or the Postgres-only baseline).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use revocation_core::{Clock, RebuildReport, SessionLiveness, SystemClock, TokenLiveness};
use revocation_http::{AdminConfig, Health, HttpState, Rebuild, SnapshotSource};
use revocation_kafka::{FetchedSnapshot, KafkaSource, PeerBootstrap, PeerFetch, fetch_peer_snapshot};
use revocation_postgres::{MigrateError, PgSessionLiveness};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, EmbedConfig, Mode};
use crate::fallback_probe::FallbackProbe;
use crate::health::ProjectionHealth;
use crate::postgres_only::PostgresOnlyHealth;

/// A rebuild did not complete; whatever was serving still serves.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// There is no projection to rebuild: this process answers from
    /// Postgres only.
    #[error("nothing to rebuild: this process answers from Postgres only (no Kafka projection)")]
    NoProjection,
    /// The Kafka projection's rebuild failed (busy, timed out, feed error).
    #[error(transparent)]
    Kafka(#[from] revocation_kafka::KafkaRebuildError),
}

/// The projection could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Kafka feed could not start.
    #[error("kafka")]
    Feed(#[from] revocation_kafka::FeedError),
    /// Migrations were asked for and failed.
    #[error("postgres")]
    Migrate(#[from] MigrateError),
}

/// A running projection.
pub struct Embedded {
    config: EmbedConfig,
    kafka: Option<Arc<KafkaSource>>,
    postgres: Option<PgSessionLiveness>,
    liveness: Arc<dyn SessionLiveness>,
    tokens: Arc<dyn TokenLiveness>,
    health: Arc<dyn Health>,
    sweeper: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("mode", &self.config.mode).field("liveness", &self.liveness).finish()
    }
}

impl Embedded {
    /// Starts the projection described by `config`. Returns once the feed is
    /// started (not caught up: it answers from the fallback until it is),
    /// even if the broker or the database is unreachable. Only migrations,
    /// when asked for, must succeed. Call it inside a Tokio runtime.
    pub async fn start(config: EmbedConfig) -> Result<Self, StartError> {
        config.validate()?;
        let postgres =
            config.postgres.as_ref().map(PgSessionLiveness::connect).transpose().map_err(ConfigError::from)?;
        if config.migrate
            && let Some(pg) = &postgres
        {
            pg.migrate().await?;
            tracing::info!(table = %pg.config().qualified_table(), "migrations applied");
        }
        if config.mode == Mode::PostgresOnly {
            let pg = postgres.clone().ok_or(ConfigError::NeedsDatabase { option: "mode postgres-only" })?;
            tracing::info!(table = %pg.config().qualified_table(), "answering every check from Postgres (postgres-only mode)");
            return Ok(Self {
                config,
                kafka: None,
                liveness: Arc::new(pg.clone()),
                tokens: Arc::new(pg.clone()),
                health: Arc::new(PostgresOnlyHealth { probe: FallbackProbe::start(pg.clone()) }),
                postgres: Some(pg),
                sweeper: None,
            });
        }
        let mut options = config.source.clone();
        if options.fallback.is_none() {
            options.fallback = postgres.clone().map(|pg| Arc::new(pg) as Arc<dyn SessionLiveness>);
        }
        if options.token_fallback.is_none() {
            options.token_fallback = postgres.clone().map(|pg| Arc::new(pg) as Arc<dyn TokenLiveness>);
        }
        if let (Some(peers), Some(snapshot)) = (&config.peer_bootstrap, &options.snapshot) {
            (options.cold_start_note, options.peer_snapshot) =
                boot_from_peer(peers, &config.kafka, &options, snapshot).await;
        }
        let kafka = Arc::new(KafkaSource::start(config.kafka.clone(), options)?);
        tracing::info!(
            topic = %config.kafka.topic,
            brokers = %config.kafka.bootstrap_servers,
            fallback = postgres.is_some(),
            max_staleness_ms = config.source.max_staleness.as_millis() as u64,
            snapshot_dir = ?config.source.snapshot.as_ref().map(|s| s.dir.display().to_string()),
            "projection started"
        );
        let sweeper = tokio::spawn(sweep(kafka.clone(), config.sweep_interval));
        let liveness = kafka.liveness();
        let health = ProjectionHealth {
            liveness: liveness.clone(),
            kafka: kafka.clone(),
            fallback: postgres.clone().map(FallbackProbe::start),
        };
        Ok(Self {
            config,
            health: Arc::new(health),
            tokens: liveness.clone(),
            liveness,
            kafka: Some(kafka),
            postgres,
            sweeper: Some(sweeper),
        })
    }

    /// The port, to hand to the verifier.
    pub fn liveness(&self) -> Arc<dyn SessionLiveness> {
        self.liveness.clone()
    }

    /// The epoch slot ([`TokenLiveness`]): is a token of this user, issued
    /// then, still valid? Per-user cutoffs, under the same freshness rules.
    pub fn tokens(&self) -> Arc<dyn TokenLiveness> {
        self.tokens.clone()
    }

    /// The health report (what `/health/lag` shows).
    pub fn health(&self) -> Arc<dyn Health> {
        self.health.clone()
    }

    /// `/livez`, `/readyz`, `/health/lag`, `/metrics`, to merge into the
    /// verifier's router.
    pub fn health_router(&self) -> axum::Router {
        revocation_http::health_router(self.http_state())
    }

    /// What the full HTTP app needs (check API included).
    pub fn http_state(&self) -> HttpState {
        HttpState::new(self.liveness.clone(), self.health.clone()).with_tokens(self.tokens.clone())
    }

    /// The admin capability for `POST /admin/rebuild`, guarded by `token`
    /// (at least [`AdminConfig::MIN_TOKEN_LEN`] characters, or
    /// [`ConfigError::AdminToken`]). `Ok(None)` in Postgres-only mode
    /// (nothing to rebuild).
    pub fn admin(&self, token: String) -> Result<Option<AdminConfig>, ConfigError> {
        AdminConfig::check_token(&token)?;
        let Some(kafka) = self.kafka.clone() else { return Ok(None) };
        let rebuild = Arc::new(Rebuilder { kafka: kafka.clone(), timeout: self.config.rebuild_timeout });
        // `GET /admin/snapshot`: what a new replica boots from.
        Ok(Some(AdminConfig::new(token, rebuild)?.with_snapshots(Arc::new(PeerSnapshots(kafka)))))
    }

    /// The Postgres adapter, when configured.
    pub fn postgres(&self) -> Option<&PgSessionLiveness> {
        self.postgres.as_ref()
    }

    /// The Kafka projection (absent in Postgres-only mode).
    pub fn kafka(&self) -> Option<&Arc<KafkaSource>> {
        self.kafka.as_ref()
    }

    /// Replays the topic into a fresh projection and swaps it in when caught
    /// up; the current projection serves meanwhile. In Postgres-only mode
    /// there is nothing to rebuild: [`RebuildError::NoProjection`].
    pub async fn rebuild(&self) -> Result<RebuildReport, RebuildError> {
        match &self.kafka {
            Some(kafka) => Ok(kafka.rebuild(self.config.rebuild_timeout).await?),
            None => Err(RebuildError::NoProjection),
        }
    }

    /// Stops the feed and the sweeper.
    pub async fn shutdown(mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
        }
        if let Some(kafka) = &self.kafka {
            kafka.shutdown().await;
        }
        tracing::info!("projection stopped");
    }
}

/// Fetches a peer's snapshot into `dir` when it holds no sound one; what to say of
/// it in the start report if the start ends up cold (`None`: nothing to
/// say), and the snapshot fetched.
async fn boot_from_peer(
    peers: &PeerBootstrap,
    kafka: &revocation_kafka::KafkaConfig,
    options: &revocation_kafka::SourceOptions,
    snapshot: &revocation_kafka::SnapshotOptions,
) -> (Option<String>, Option<FetchedSnapshot>) {
    let started = std::time::Instant::now();
    match fetch_peer_snapshot(peers, kafka, options, snapshot).await {
        PeerFetch::LocalExists { snapshot: local } => {
            tracing::info!(dir = %snapshot.dir.display(), "a sound local snapshot exists: no peer asked");
            (None, Some(local))
        }
        PeerFetch::Fetched { peer, bytes, snapshot } => {
            let millis = started.elapsed().as_millis() as u64;
            tracing::info!(peer, bytes, millis, "snapshot fetched from a peer; checking it as a local one");
            (Some(format!("the snapshot fetched from {peer}")), Some(snapshot))
        }
        PeerFetch::Failed(why) => {
            tracing::warn!(reason = %why, "no snapshot from any peer: starting cold");
            (Some(format!("no snapshot from any peer ({why})")), None)
        }
    }
}

/// The Kafka source as what serves a peer its snapshot.
struct PeerSnapshots(Arc<KafkaSource>);

impl SnapshotSource for PeerSnapshots {
    fn refusal(&self) -> Option<String> {
        self.0.peer_snapshot_refusal()
    }

    fn write_to(&self, out: Box<dyn std::io::Write + Send>) -> std::io::Result<u64> {
        self.0.write_peer_snapshot(out)
    }
}

/// Frees memory held by expired sessions, every `interval`.
async fn sweep(kafka: Arc<KafkaSource>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let projection = kafka.liveness().projection();
        let swept = tokio::task::spawn_blocking(move || projection.store().sweep(SystemClock.now())).await;
        if let Ok(n) = swept
            && n > 0
        {
            tracing::info!(sessions = n, "swept expired sessions");
        }
    }
}

struct Rebuilder {
    kafka: Arc<KafkaSource>,
    timeout: Duration,
}

#[async_trait]
impl Rebuild for Rebuilder {
    fn busy(&self) -> bool {
        self.kafka.is_rebuilding()
    }

    async fn rebuild(&self) -> Result<RebuildReport, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.kafka.rebuild(self.timeout).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    #[tokio::test]
    async fn a_postgres_only_handle_says_there_is_nothing_to_rebuild() {
        // The pool connects lazily: no database is needed to start.
        let mut config = EmbedConfig::new("127.0.0.1:9092", "unused");
        config.mode = Mode::PostgresOnly;
        config.postgres = Some(revocation_postgres::PgConfig::new("postgres://u:p@127.0.0.1:1/db"));
        let handle = Embedded::start(config).await.expect("start");
        let err = handle.rebuild().await.expect_err("nothing to rebuild");
        assert!(matches!(err, RebuildError::NoProjection), "{err:?}");
        assert!(err.to_string().contains("Postgres only"), "{err}");
        assert!(matches!(handle.admin("short".into()), Err(ConfigError::AdminToken(_))), "checked in every mode");
        assert!(handle.admin("a-long-random-admin-token".into()).unwrap().is_none(), "nothing to rebuild");
    }
}
