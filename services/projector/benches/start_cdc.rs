//! A whole-process cold start of the release `projector` on a topic of
//! Debezium change events (`--format debezium`), against a raw no-op
//! consumer of the same topic in the same run: the path we tell teams to
//! adopt, with values three times the size of our own events.
//!
//! Records as the connector of `deploy/debezium-connector.json` writes them
//! (JSON converter, schemas off, ~600 B values): one row per session, UUID
//! ids and owners, `timestamptz` columns, 1 in 10 rows revoked (an update),
//! 6 partitions, lz4. No heartbeat rows, so the projector runs with
//! `--source-heartbeats false` (its freshness is then the topic's, as for
//! our own events).
//!
//! Run by `scripts/bench`:
//! `BENCH_START_CDC_ROWS=5000000 cargo bench -p projector --bench start_cdc`.
#![allow(clippy::unwrap_used)] // a benchmark states its expectations with unwrap

mod whole_process;

use std::time::Instant;

use time::OffsetDateTime;
use whole_process::{env_usize, root, run_projector};

const PARTITIONS: i32 = 6;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows = env_usize("BENCH_START_CDC_ROWS", 1_000_000);
    whole_process::binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = whole_process::new_topic(&runtime, "bench-start-cdc", PARTITIONS);
    println!(
        "cold start on Debezium change events at {rows} rows (topic {}, {PARTITIONS} partitions, lz4)",
        config.topic
    );

    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let records = (0..rows).map(|i| revocation_test_support::debezium_row(i, now));
    let options = [("linger.ms", "50"), ("compression.codec", "lz4")];
    let value_bytes = revocation_test_support::produce_records(&config, records, &options) as f64 / rows as f64;
    println!("  filled in {:.1} s, {:.0} B per value", started.elapsed().as_secs_f64(), value_bytes);

    let base = whole_process::baselines(&config, PARTITIONS, rows);
    let raw_rate = rows as f64 / base.raw.as_secs_f64();
    let (raw_cpu_s, raw_batched_s, batched_cpu_s) = (base.raw_cpu_s, base.batched.as_secs_f64(), base.batched_cpu_s);
    let cold = run_projector(&config, None, &["--format", "debezium", "--source-heartbeats", "false"]);
    let cold_rate = rows as f64 / cold.live_after.as_secs_f64();
    println!(
        "  cold start to Live           {:>7.2} s  {:>9.0} records/s = {:.0} % of raw; CPU {:.1} s; RSS {} MB ({:.1} B/session)",
        cold.live_after.as_secs_f64(),
        cold_rate,
        100.0 * cold_rate / raw_rate,
        cold.cpu_s,
        cold.rss_kb / 1024,
        cold.rss_kb as f64 * 1024.0 / rows as f64,
    );
    whole_process::drop_topic(&runtime, &config);
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("start-cdc.json"),
        format!(
            r#"{{"rows": {rows}, "partitions": {PARTITIONS}, "value_bytes": {value_bytes:.0}, "raw_s": {:.3}, "raw_cpu_s": {raw_cpu_s:.2}, "raw_batched_s": {raw_batched_s:.3}, "raw_batched_cpu_s": {batched_cpu_s:.2}, "cold_s": {:.3}, "cold_vs_raw": {:.4}, "cold_rss_kb": {}, "cold_cpu_s": {:.2}}}"#,
            base.raw.as_secs_f64(),
            cold.live_after.as_secs_f64(),
            cold_rate / raw_rate,
            cold.rss_kb,
            cold.cpu_s,
        ),
    )
    .unwrap();
}
