//! Helpers shared by every integration test of the workspace (this crate's
//! own tests and, as a dev-dependency, the libraries' and the service's):
//! where the local servers are, the scripts that drive them, and polling with
//! a deadline.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Kafka bootstrap servers (`KAFKA_BOOTSTRAP`, default the local broker).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// PostgreSQL URL (`DATABASE_URL`, default the local role and database).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://revocation:revocation@127.0.0.1:5432/revocation".into())
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A script of `scripts/` (`kafka.sh`, `postgres.sh`, `servers.sh`).
pub fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

/// Polls `probe` every 10 ms until it returns true; returns how long that
/// took. Panics, naming `what`, when `limit` passes first.
pub async fn eventually(limit: Duration, what: &str, mut probe: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if probe().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within {limit:?}");
}
