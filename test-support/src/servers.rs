//! Where the local servers are, and the scripts that start, stop, pause and
//! kill them.

use std::path::PathBuf;

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
