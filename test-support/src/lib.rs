//! What every integration test of the workspace shares: where the local
//! servers are and the scripts that drive them (`servers`), a topic or a
//! schema of the test's own (`kafka`, `postgres`), the broker's TLS and SASL
//! listeners (`secured`), a Debezium connector of the test's own (`cdc`) and the
//! schema and source a CDC test starts from (`cdc_source`), filling a topic fast (`produce`) with realistic records (`realistic`), the
//! projector binary as a process (`process`), faults on the shared servers (`faults`), session fixtures
//! (`fixtures`), a seeded workload with per-user cutoffs (`cutoff_workload`), private keys for test
//! tokens made by openssl (`keys`), nginx and Caddy run from `deploy/`'s snippets (`gateway`), and polling with a deadline (`eventually`).
//!
//! A test that needs a server fails — never skips — naming the command that
//! starts it.
#![forbid(unsafe_code)]

mod cdc;
mod cdc_source;
mod cutoff_workload;
mod faults;
mod fixtures;
mod gateway;
mod kafka;
mod keys;
mod postgres;
mod process;
mod produce;
mod realistic;
mod secured;
mod servers;

use std::time::{Duration, Instant};

pub use cdc::{CdcConnector, documented_cleanup, require_connect};
pub use cdc_source::{CdcSchema, debezium_options, live_source, sql, wait_live};
pub use cutoff_workload::{CutoffWorkload, Step, cutoff_workload};
pub use faults::{Heal, SERIAL, run_script};
pub use fixtures::{created, revoked, sid};
pub use gateway::{Gateway, GatewayProcess, echo_upstream};
pub use kafka::{create_topic, require_broker, source_options, topic, topic_config, topic_with};
pub use keys::{KeyKind, private_key_pem};
pub use postgres::{TestSchema, fresh_schema, statement_pool};
pub use process::{ProjectorProcess, free_port};
pub use produce::{produce_fast, produce_records};
pub use realistic::{debezium_row, realistic_event};
pub use secured::{SASL_PASSWORD, SASL_USER, Security, require_tls_listeners, tls_dir, tls_file};
pub use servers::{bootstrap, database_url, repo_root, script};

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
