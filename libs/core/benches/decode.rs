//! Decoding one record, per format, against `serde_json` passing over the
//! same value without keeping anything (`IgnoredAny`: every byte checked,
//! nothing allocated) — the least a reader built on the crate could cost.
//!
//! Records as the start benches write them: UUID sessions and owners,
//! RFC 3339 times (`revocation_test_support::realistic`); our events
//! (~180 B) and Debezium envelopes of `user_sessions` (~650 B, schemas off).
//!
//! Run with: cargo bench -p revocation-core --bench decode
//! (`BENCH_RECORDS=200000` records a round, 7 interleaved rounds; medians;
//! `BENCH_FORMATS=debezium` reads one format, for a profile of it alone.)
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use revocation_core::{Debezium, Decoded, EventJson, RawRecord, RecordFormat};
use revocation_test_support::{debezium_row, realistic_event};
use serde::de::IgnoredAny;
use time::OffsetDateTime;

const ROUNDS: usize = 7;

type Record = (Vec<u8>, Vec<u8>);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let now = OffsetDateTime::now_utc();
    let events: Vec<Record> = (0..n)
        .map(|i| realistic_event(i, now))
        .map(|e| (e.sid().as_str().as_bytes().to_vec(), e.to_value().unwrap_or_default()))
        .collect();
    let envelopes: Vec<Record> =
        (0..n).map(|i| debezium_row(i, now)).map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let only = std::env::var("BENCH_FORMATS").unwrap_or_default();
    println!("decoding {n} records a round, {ROUNDS} interleaved rounds, median ns a record");
    for (name, records, format) in
        [("events", &events, &EventJson as &dyn RecordFormat), ("debezium", &envelopes, &Debezium)]
    {
        if !only.is_empty() && !only.split(',').any(|f| f == name) {
            continue;
        }
        let bytes = records.iter().map(|(_, v)| v.len()).sum::<usize>() / n;
        let (mut ours, mut skip) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(per_record(records, |key, value| {
                changes(format.decode(&RawRecord::new(Some(key), Some(value))))
            }));
            skip.push(per_record(records, |_, value| usize::from(serde_json::from_slice::<IgnoredAny>(value).is_ok())));
        }
        let (ours, skip) = (median(ours), median(skip));
        println!(
            "decode/{name:<8} {bytes:>4} B  ours {ours:>6.0} ns  serde_json skipping the value {skip:>6.0} ns  ratio {:.2}",
            ours / skip
        );
    }
}

/// Median ns a record of `read` over `records` (the count it returns is
/// checked, so nothing is optimized away).
fn per_record(records: &[Record], read: impl Fn(&[u8], &[u8]) -> usize) -> f64 {
    let started = Instant::now();
    let read_ok: usize = records.iter().map(|(k, v)| read(black_box(k), black_box(v))).sum();
    let elapsed = started.elapsed();
    assert_eq!(read_ok, records.len(), "every record reads");
    elapsed.as_nanos() as f64 / records.len() as f64
}

fn changes(decoded: Decoded<'_>) -> usize {
    usize::from(matches!(decoded, Decoded::Change { .. }))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
