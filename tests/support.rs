//! Where the local servers are, for the workspace-level tests.

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
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
