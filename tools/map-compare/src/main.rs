//! DashMap (what the store uses) against papaya and scc on the store's
//! workload: 16-byte random keys, 8-byte values, all with foldhash.
//!
//! Insert: ns per insert filling a pre-sized map. Get: ns per hit, one after
//! another (each key depends on the value read before, so lookups cannot
//! overlap, as in `libs/core/benches/check.rs`), medians of interleaved rounds.
use std::hint::black_box;
use std::time::Instant;

use dashmap::DashMap;

type Hasher = foldhash::fast::RandomState;
type Key = [u8; 16];
/// One map's lookup, returning the value it read.
type Get<'a> = Box<dyn Fn(&Key) -> u64 + 'a>;
const PROBES: usize = 1 << 20;
const ROUNDS: usize = 11;
const STEPS: usize = 300_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn key(&mut self) -> Key {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.next().to_le_bytes());
        k[8..].copy_from_slice(&self.next().to_le_bytes());
        k
    }
}

fn per_item(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MAP_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    for n in sizes {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let keys: Vec<Key> = (0..n).map(|_| rng.key()).collect();
        let probes: Vec<Key> = (0..PROBES).map(|_| keys[(rng.next() % n as u64) as usize]).collect();

        let dashmap: DashMap<Key, u64, Hasher> = DashMap::with_capacity_and_hasher(n, Hasher::default());
        let papaya: papaya::HashMap<Key, u64, Hasher> = papaya::HashMap::with_capacity_and_hasher(n, Hasher::default());
        let scc_map: scc::HashMap<Key, u64, Hasher> = scc::HashMap::with_capacity_and_hasher(n, Hasher::default());
        let scc_index: scc::HashIndex<Key, u64, Hasher> =
            scc::HashIndex::with_capacity_and_hasher(n, Hasher::default());
        let inserts = [
            per_item(n, || {
                keys.iter().enumerate().for_each(|(i, k)| {
                    let _ = dashmap.insert(*k, i as u64);
                })
            }),
            per_item(n, || {
                let map = papaya.pin();
                keys.iter().enumerate().for_each(|(i, k)| {
                    let _ = map.insert(*k, i as u64);
                });
            }),
            per_item(n, || {
                keys.iter().enumerate().for_each(|(i, k)| {
                    let _ = scc_map.insert(*k, i as u64);
                })
            }),
            per_item(n, || {
                keys.iter().enumerate().for_each(|(i, k)| {
                    let _ = scc_index.insert(*k, i as u64);
                })
            }),
        ];

        let gets: [(&str, Get<'_>); 4] = [
            ("dashmap", Box::new(|k| dashmap.get(k).map_or(0, |v| *v))),
            ("papaya", Box::new(|k| papaya.pin().get(k).copied().unwrap_or(0))),
            ("scc::HashMap", Box::new(|k| scc_map.read(k, |_, v| *v).unwrap_or(0))),
            ("scc::HashIndex", Box::new(|k| scc_index.peek_with(k, |_, v| *v).unwrap_or(0))),
        ];
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); gets.len()];
        let zero = black_box(0u64);
        for round in 0..ROUNDS {
            for j in 0..gets.len() {
                let m = (j + round) % gets.len();
                let mut i = round * 7919 % PROBES;
                let t = Instant::now();
                for _ in 0..STEPS {
                    let v = gets[m].1(&probes[i]);
                    i = (i + 1 + (v & zero) as usize) & (PROBES - 1);
                }
                ns[m].push(t.elapsed().as_nanos() as f64 / STEPS as f64);
            }
        }
        println!("{n} entries:");
        for (j, (name, _)) in gets.iter().enumerate() {
            println!("  {name:<15} insert {:>5.0} ns   get {:>5.0} ns", inserts[j], median(ns[j].clone()));
        }
    }
}
