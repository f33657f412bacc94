//! Unit and property tests of the freshness.

use super::*;
use proptest::prelude::*;

const MAX: Duration = Duration::from_secs(1);

fn at_ms(ms: i64) -> Timestamp {
    Timestamp::from_unix_micros(ms * 1_000)
}

fn fresh(partitions: &[i32]) -> Freshness {
    let f = Freshness::new(FreshnessConfig::with_max_staleness(MAX));
    f.track_partitions(partitions.iter().copied());
    f
}

/// A reader that took `fresh_as_of` before looking at the data is judged
/// by that, not by a freshness that advanced after it looked.
#[test]
fn state_as_of_judges_by_the_freshness_read_before() {
    let f = fresh(&[0]);
    f.record_high_watermark(0, 5, at_ms(0));
    let before = f.fresh_as_of();
    assert_eq!(before, None);
    f.record_position(0, 5);
    assert_eq!(f.state(at_ms(10)), FreshnessState::Live);
    // Not Live (Lagging rather than Cold: the projection has been Live).
    assert_eq!(f.state_as_of(before, at_ms(10)), FreshnessState::Lagging);
    // And a later `now` only makes it staler.
    let live = f.fresh_as_of();
    assert_eq!(f.state_as_of(live, at_ms(10)), FreshnessState::Live);
    assert_eq!(f.state_as_of(live, at_ms(5_000)), FreshnessState::Lagging);
}

#[test]
fn cold_until_every_partition_reaches_a_sample() {
    let f = fresh(&[0, 1, 2]);
    assert_eq!(f.state(at_ms(0)), FreshnessState::Cold);
    for p in 0..3 {
        f.record_high_watermark(p, 5, at_ms(0));
    }
    f.record_position(0, 5);
    f.record_position(1, 5);
    assert_eq!(f.state(at_ms(10)), FreshnessState::Cold);
    f.record_position(2, 7);
    assert_eq!(f.state(at_ms(10)), FreshnessState::Live);
}

#[test]
fn stays_cold_while_caught_up_but_too_stale() {
    let f = fresh(&[0]);
    f.record_high_watermark(0, 1, at_ms(0));
    f.record_position(0, 1);
    assert_eq!(f.state(at_ms(5_000)), FreshnessState::Cold);
}

/// The limits hold to the microsecond, including limits finer than a
/// microsecond (staleness is whole microseconds; the hot path compares
/// integers), and a clock behind the sample counts as no staleness.
#[test]
fn limits_hold_to_the_microsecond() {
    let config = FreshnessConfig {
        max_staleness: Duration::from_nanos(1_000_000_500),
        recover_below: Duration::from_nanos(400_000_999),
        source_heartbeats: false,
        cutoffs_heartbeats: false,
    };
    let f = Freshness::new(config);
    f.track_partitions([0]);
    f.record_position(0, 0);
    f.record_high_watermark(0, 0, Timestamp::from_unix_micros(0));
    let at = Timestamp::from_unix_micros;
    assert_eq!(f.state(at(-5_000_000)), FreshnessState::Live);
    assert_eq!(f.state(at(1_000_000)), FreshnessState::Live); // 1 s ≤ 1 s + 500 ns
    assert_eq!(f.state(at(1_000_001)), FreshnessState::Lagging);
    f.record_high_watermark(0, 0, Timestamp::from_unix_micros(600_000));
    assert_eq!(f.state(at(1_000_001)), FreshnessState::Lagging); // 400 001 µs > 400 000.999
    assert_eq!(f.state(at(1_000_000)), FreshnessState::Live); // 400 000 µs ≤ 400 000.999
}

#[test]
fn an_idle_topic_stays_live_on_samples_alone() {
    let f = fresh(&[0]);
    f.record_position(0, 3);
    for ms in (0..10_000).step_by(200) {
        f.record_high_watermark(0, 3, at_ms(ms));
        assert_eq!(f.state(at_ms(ms + 100)), FreshnessState::Live);
    }
}

#[test]
fn lagging_projection_recovers_only_below_the_hysteresis_threshold() {
    let f = fresh(&[0]);
    f.record_position(0, 0);
    f.record_high_watermark(0, 0, at_ms(0));
    assert_eq!(f.state(at_ms(0)), FreshnessState::Live);
    // Samples stop (broker unreachable): staleness grows past the limit.
    assert_eq!(f.state(at_ms(1_001)), FreshnessState::Lagging);
    // One sample reached 800 ms ago: within max, but above recover_below.
    f.record_high_watermark(0, 0, at_ms(1_200));
    assert_eq!(f.state(at_ms(2_000)), FreshnessState::Lagging);
    f.record_high_watermark(0, 0, at_ms(1_600));
    assert_eq!(f.state(at_ms(2_000)), FreshnessState::Live);
}

#[test]
fn position_behind_a_sample_is_not_fresh_until_it_passes_it() {
    let f = fresh(&[0]);
    f.record_position(0, 0);
    f.record_high_watermark(0, 0, at_ms(0));
    f.record_high_watermark(0, 10, at_ms(100));
    assert_eq!(f.fresh_as_of(), Some(at_ms(0)));
    f.record_position(0, 9);
    assert_eq!(f.fresh_as_of(), Some(at_ms(0)));
    f.record_position(0, 10);
    assert_eq!(f.fresh_as_of(), Some(at_ms(100)));
}

#[test]
fn a_new_partition_holds_freshness_back_until_reached() {
    let f = fresh(&[0]);
    f.record_position(0, 0);
    f.record_high_watermark(0, 0, at_ms(0));
    assert_eq!(f.state(at_ms(0)), FreshnessState::Live);
    f.track_partitions([1]);
    assert_eq!(f.state(at_ms(1)), FreshnessState::Lagging);
    f.record_position(1, 0);
    f.record_high_watermark(1, 0, at_ms(2));
    f.record_high_watermark(0, 0, at_ms(2));
    assert_eq!(f.state(at_ms(3)), FreshnessState::Live);
}

#[test]
fn the_report_shows_every_partition() {
    let f = fresh(&[0, 1]);
    f.record_position(0, 4);
    f.record_high_watermark(0, 10, at_ms(0));
    let report = f.report(at_ms(0));
    assert_eq!(report.offset_lag, 6);
    assert_eq!(report.partitions.len(), 2);
    assert_eq!(report.partitions[0].offset_lag, Some(6));
    assert_eq!(report.state, FreshnessState::Cold);
}

#[derive(Debug, Clone)]
enum Step {
    Position(i32, i64),
    Sample(i32, i64),
    Tick(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3i32, 0..50i64).prop_map(|(p, o)| Step::Position(p, o)),
        (0..3i32, 0..50i64).prop_map(|(p, h)| Step::Sample(p, h)),
        (0..1_500i64).prop_map(Step::Tick),
    ]
}

proptest! {
    /// Never Live while any partition's latest sample is unreached by its
    /// position and older than max_staleness, nor while any partition has
    /// no reached sample at all.
    #[test]
    fn never_live_while_a_partition_is_unreached_or_stale(steps in proptest::collection::vec(step(), 0..80)) {
        let f = fresh(&[0, 1, 2]);
        let mut now = 0i64;
        let mut position = [None::<i64>; 3];
        // Per partition: all samples (hwm, at) recorded, to judge them independently.
        let mut samples: [Vec<(i64, i64)>; 3] = Default::default();
        for s in steps {
            match s {
                Step::Position(p, o) => {
                    f.record_position(p, o);
                    let pos = &mut position[p as usize];
                    *pos = Some(pos.map_or(o, |x: i64| x.max(o)));
                }
                Step::Sample(p, h) => {
                    f.record_high_watermark(p, h, at_ms(now));
                    samples[p as usize].push((h, now));
                }
                Step::Tick(ms) => now += ms,
            }
            if f.state(at_ms(now)) == FreshnessState::Live {
                for p in 0..3 {
                    // The newest sample this partition's position has reached.
                    let pos = position[p];
                    let reached = samples[p].iter().filter(|(h, _)| pos.is_some_and(|x| x >= *h)).map(|(_, t)| *t).max();
                    prop_assert!(reached.is_some(), "partition {} never reached a sample", p);
                    let age = now - reached.unwrap_or(i64::MIN);
                    prop_assert!(age <= MAX.as_millis() as i64, "partition {} fresh only as of {} ms ago", p, age);
                }
            }
        }
    }
}

#[test]
fn with_source_heartbeats_a_partition_is_fresh_only_as_of_the_older_bound() {
    let config =
        FreshnessConfig { source_heartbeats: true, ..FreshnessConfig::with_max_staleness(Duration::from_secs(1)) };
    let f = Freshness::new(config);
    let t = |secs: i64| Timestamp::from_unix_secs(1_800_000_000 + secs);
    f.track_partitions([0, 1]);
    for p in [0, 1] {
        f.record_position(p, 10);
        f.record_high_watermark(p, 10, t(5));
    }
    // The broker is caught up, but no heartbeat was read: nothing proves the
    // source's commits arrived.
    assert_eq!(f.fresh_as_of(), None);
    assert_eq!(f.state(t(5)), FreshnessState::Cold);
    f.record_source_heartbeat(0, t(4), t(9));
    assert_eq!(f.fresh_as_of(), None, "partition 1 has no heartbeat yet");
    f.record_source_heartbeat(1, t(3), t(9));
    assert_eq!(f.fresh_as_of(), Some(t(3)));
    assert_eq!(f.state(t(4)), FreshnessState::Live);
    // The connector stops: heartbeats stop, the broker stays fresh, staleness
    // grows from the last heartbeat and the projection fails closed.
    for p in [0, 1] {
        f.record_high_watermark(p, 10, t(9));
    }
    assert_eq!(f.state(t(9)), FreshnessState::Lagging);
    let report = f.report(t(9));
    assert_eq!(report.broker_staleness, Some(Duration::ZERO));
    assert_eq!(report.source_staleness, Some(Duration::from_secs(6)));
    // An older heartbeat changes nothing; newer ones recover.
    f.record_source_heartbeat(1, t(2), t(9));
    assert_eq!(f.fresh_as_of(), Some(t(3)));
    f.record_source_heartbeat(0, t(9), t(9));
    f.record_source_heartbeat(1, t(9), t(9));
    assert_eq!(f.state(t(9)), FreshnessState::Live);
}

#[test]
fn a_source_clock_ahead_of_ours_cannot_pin_freshness_in_the_future() {
    let config =
        FreshnessConfig { source_heartbeats: true, ..FreshnessConfig::with_max_staleness(Duration::from_secs(1)) };
    let f = Freshness::new(config);
    let t = |secs: i64| Timestamp::from_unix_secs(1_800_000_000 + secs);
    f.track_partitions([0]);
    f.record_position(0, 10);
    f.record_high_watermark(0, 10, t(5));
    // Postgres' clock stepped an hour ahead: its heartbeat says t(3605),
    // read at t(5). Then the connector dies.
    f.record_source_heartbeat(0, t(3605), t(5));
    assert_eq!(f.fresh_as_of(), Some(t(5)));
    assert_eq!(f.state(t(5)), FreshnessState::Live);
    f.record_high_watermark(0, 10, t(8));
    assert_eq!(f.state(t(8)), FreshnessState::Lagging, "a dead connector shows within the bound");
}

#[test]
fn after_a_truncate_of_the_source_the_projection_is_never_fresh_past_it() {
    let config =
        FreshnessConfig { source_heartbeats: true, ..FreshnessConfig::with_max_staleness(Duration::from_secs(1)) };
    let f = Freshness::new(config);
    let t = |secs: i64| Timestamp::from_unix_secs(1_800_000_000 + secs);
    f.track_partitions([0, 1]);
    for p in [0, 1] {
        f.record_position(p, 10);
        f.record_high_watermark(p, 10, t(5));
        f.record_source_heartbeat(p, t(5), t(5));
    }
    assert_eq!(f.state(t(5)), FreshnessState::Live);
    f.distrust_after(t(6), t(6));
    // Heartbeats and samples go on; freshness stays at the truncate.
    for p in [0, 1] {
        f.record_high_watermark(p, 10, t(9));
        f.record_source_heartbeat(p, t(9), t(9));
    }
    assert_eq!(f.fresh_as_of(), Some(t(6)));
    assert_eq!(f.distrusted_after(), Some(t(6)));
    assert_eq!(f.state(t(9)), FreshnessState::Lagging);
    // A projection that had not caught up stays Cold (its fallback answers).
    let cold = Freshness::new(config);
    cold.track_partitions([0]);
    cold.distrust_after(t(1), t(1));
    cold.record_position(0, 10);
    cold.record_high_watermark(0, 10, t(9));
    cold.record_source_heartbeat(0, t(9), t(9));
    assert_eq!(cold.state(t(9)), FreshnessState::Cold);
}

#[test]
fn without_the_cutoffs_tables_heartbeat_the_projection_is_never_fresh() {
    let config = FreshnessConfig {
        source_heartbeats: true,
        cutoffs_heartbeats: true,
        ..FreshnessConfig::with_max_staleness(Duration::from_secs(1))
    };
    let f = Freshness::new(config);
    let t0 = Timestamp::from_unix_secs(1_000);
    f.track_partitions([0]);
    f.record_high_watermark(0, 5, t0);
    f.record_position(0, 5);
    f.record_source_heartbeat(0, t0, t0);
    assert_eq!(f.fresh_as_of(), None, "the sessions' heartbeats alone do not do");
    assert!(f.report(t0).cutoffs_heartbeat_missing);
    let before = Timestamp::from_unix_micros(999_800_000);
    f.record_cutoffs_heartbeat(before, t0);
    assert_eq!(f.fresh_as_of(), Some(before), "bounded by the older of the two");
    assert!(!f.report(t0).cutoffs_heartbeat_missing);
    f.record_cutoffs_heartbeat(Timestamp::from_unix_secs(1_005), Timestamp::from_unix_micros(1_000_100_000));
    assert_eq!(f.fresh_as_of(), Some(t0), "clamped to the read instant, then the partition bounds it");
}
