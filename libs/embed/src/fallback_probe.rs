//! [`FallbackProbe`]: whether the Postgres fallback answers now, asked in the
//! background so that readiness (`/readyz`) tells the truth without a query
//! per probe: a cold projector whose fallback is down answers every check
//! 503, and must not say it is ready.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use revocation_core::{Clock, SystemClock, Timestamp};
use revocation_postgres::PgSessionLiveness;
use tokio::task::JoinHandle;

/// How often the fallback is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The last probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackStatus {
    /// Whether the last probe got an answer.
    pub reachable: bool,
    /// Why it did not (the adapter's words; never the password).
    pub error: Option<String>,
    /// When the last probe finished; `None` before the first.
    pub checked_at: Option<Timestamp>,
}

/// Probes the fallback every second, until dropped.
#[derive(Debug)]
pub(crate) struct FallbackProbe {
    status: Arc<Mutex<FallbackStatus>>,
    task: JoinHandle<()>,
}

impl FallbackProbe {
    /// Starts probing `pg` (inside a Tokio runtime). Unreachable until the
    /// first probe answers.
    pub(crate) fn start(pg: PgSessionLiveness) -> Self {
        let status = Arc::new(Mutex::new(FallbackStatus {
            reachable: false,
            error: Some("not probed yet".into()),
            checked_at: None,
        }));
        let shared = status.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PROBE_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_reachable = None;
            loop {
                ticker.tick().await;
                let outcome = pg.probe().await;
                let reachable = outcome.is_ok();
                if was_reachable != Some(reachable) {
                    match &outcome {
                        Ok(()) => {
                            tracing::info!(table = %pg.config().qualified_table(), "the Postgres fallback answers")
                        }
                        Err(why) => tracing::error!("the Postgres fallback does not answer: {why}"),
                    }
                    was_reachable = Some(reachable);
                }
                let mut status = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *status = FallbackStatus {
                    reachable,
                    error: outcome.err().map(|e| e.to_string()),
                    checked_at: Some(SystemClock.now()),
                };
            }
        });
        Self { status, task }
    }

    /// The last probe's outcome.
    pub(crate) fn status(&self) -> FallbackStatus {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Drop for FallbackProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
