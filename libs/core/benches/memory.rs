//! Resident memory per session: RSS growth ÷ sessions, for our store and for
//! a bare `DashMap<[u8; 16], u64>` baseline, each measured in a fresh child
//! process so one measurement's freed memory cannot hide the next one's.
//! Then memory per user with a cutoff ("log out everywhere").
//!
//! Run with: cargo bench -p revocation-core --bench memory
//! (`BENCH_SIZES=1000000,10000000` and `BENCH_CUTOFF_USERS=1000000` by default.)
#![allow(missing_docs)]

use std::process::Command;
use std::time::Duration;

use dashmap::DashMap;
use revocation_core::{SessionEvent, SessionId, SessionStore, Timestamp, UserTag};
use time::OffsetDateTime;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn uuid(i: u64) -> uuid::Uuid {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    uuid::Builder::from_random_bytes(((u128::from(x) << 64) | u128::from(i)).to_le_bytes()).into_uuid()
}

/// Child: build one map of `n` sessions, print bytes of RSS growth.
fn measure(kind: &str, n: u64) -> u64 {
    let before = rss_bytes();
    match kind {
        "store" => {
            let store = SessionStore::new();
            let mut sid = String::with_capacity(36);
            for i in 0..n {
                sid.clear();
                sid.push_str(&uuid(i).to_string());
                store.apply(
                    &SessionEvent::Created {
                        sid: SessionId::new(sid.clone()).expect("uuid"),
                        user_id: String::new(),
                        created_at: OffsetDateTime::UNIX_EPOCH,
                        expires_at: Some(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000)),
                    },
                    Timestamp::from_unix_secs(0),
                );
            }
            let grown = rss_bytes() - before;
            assert_eq!(store.len() as u64, n);
            grown
        }
        "cutoffs" => {
            let store = SessionStore::new();
            for i in 0..n {
                let user = UserTag::of(&format!("user-{}", uuid(i)));
                store.cutoffs().raise(user, Timestamp::from_unix_secs(1_800_000_000 + (i % 3600) as i64));
            }
            let grown = rss_bytes() - before;
            assert!(store.cutoffs().len() as u64 >= n - n / 1000, "tags nearly all distinct");
            grown
        }
        _ => {
            let map = DashMap::<[u8; 16], u64>::new();
            for i in 0..n {
                map.insert(uuid(i).into_bytes(), i);
            }
            let grown = rss_bytes() - before;
            assert_eq!(map.len() as u64, n);
            grown
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, kind, n] = &args[..]
        && flag == "--child"
    {
        println!("{}", measure(kind, n.parse().expect("size")));
        return;
    }
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    let exe = std::env::current_exe().expect("own path");
    println!("{:>10}  {:>22}  {:>22}  {:>6}", "sessions", "store (B/session)", "bare DashMap (B/session)", "ratio");
    let mut rows = Vec::new();
    for n in sizes {
        let run = |kind: &str| -> f64 {
            let out = Command::new(&exe).args(["--child", kind, &n.to_string()]).output().expect("child");
            let bytes: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(f64::NAN);
            bytes / n as f64
        };
        let (ours, bare) = (run("store"), run("bare"));
        println!("{n:>10}  {ours:>22.1}  {bare:>22.1}  {:>6.2}", ours / bare);
        rows.push(format!(r#"{{"sessions": {n}, "store_bytes": {ours:.1}, "bare_bytes": {bare:.1}}}"#));
    }
    let users: u64 = std::env::var("BENCH_CUTOFF_USERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let out = Command::new(&exe).args(["--child", "cutoffs", &users.to_string()]).output().expect("child");
    let per_user = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap_or(f64::NAN) / users as f64;
    println!("{users:>10}  users with a cutoff: {per_user:.1} B/user");
    // For scripts/bench-report.
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(out.join("memory.json"), format!("[{}]\n", rows.join(", "))).expect("write memory.json");
    std::fs::write(
        out.join("cutoffs-memory.json"),
        format!(r#"{{"users": {users}, "bytes_per_user": {per_user:.1}}}"#) + "\n",
    )
    .expect("write cutoffs-memory.json");
}
