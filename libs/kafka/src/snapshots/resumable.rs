//! Whether the broker would resume a snapshot now, asked by a replica that
//! boots from peers before it settles for one: a local snapshot written
//! days ago (a pod whose volume outlived half the topic's
//! `delete.retention.ms`), or a peer's from another cluster, would only be
//! refused by the start and leave a cold start, while another peer could
//! have given one the broker resumes. The rules are the start's own
//! (`feed::start::usable_positions`), which judges again at start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use revocation_core::{Clock, SnapshotMeta, SystemClock};

use crate::ClientRefused;
use crate::KafkaConfig;
use crate::feed::{SnapshotRefusal, TopicNow, usable_positions};

/// What the broker says of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The start would resume it.
    Resumable,
    /// The start would refuse it, and why; `lasting` when no later start
    /// could resume it either (its cluster, its age, positions compacted
    /// away), so the file is worth nothing here.
    Refused { why: String, lasting: bool },
    /// The broker could not be asked (the start judges it once it can).
    Unknown(String),
}

/// The longest the broker is waited for, per question.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a verdict takes, all questions together; then it is Unknown.
const JUDGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Judges `meta` against the topic as the broker holds it now.
pub(crate) async fn judge(config: &KafkaConfig, meta: &SnapshotMeta) -> Verdict {
    let started = Instant::now();
    let verdict = match tokio::time::timeout(JUDGE_TIMEOUT, ask(config, meta, started + JUDGE_TIMEOUT)).await {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Unknown(format!("no answer within {JUDGE_TIMEOUT:?}")),
    };
    tracing::info!(
        millis = started.elapsed().as_millis() as u64,
        ?verdict,
        "asked the broker whether it would resume the snapshot"
    );
    verdict
}

async fn ask(config: &KafkaConfig, meta: &SnapshotMeta, deadline: Instant) -> Verdict {
    // Asked at once, each on a client and thread of its own; an unreachable
    // broker is told by the first, without waiting for the second's longer
    // timeout. A question given up on ends on its thread.
    let retention = async { Ok(crate::admin::tombstone_retention(config).await) };
    let ((cluster_id, watermarks), retention) =
        match futures::future::try_join(topic_now(config, deadline), retention).await {
            Ok(answers) => answers,
            Err(why) => return Verdict::Unknown(why),
        };
    let retention =
        retention.map_err(|e| format!("cannot read the topic's delete.retention.ms ({})", ClientRefused(e)));
    let topic = TopicNow { cluster_id: Some(&cluster_id), tombstone_retention: retention, now: SystemClock.now() };
    verdict_of(usable_positions(meta, &watermarks, &topic))
}

/// The start's judgement of a snapshot as a verdict.
fn verdict_of(judged: Result<u64, SnapshotRefusal>) -> Verdict {
    match judged {
        Ok(_) => Verdict::Resumable,
        // Of the topic, not of this snapshot: every snapshot would be
        // refused alike, so there is nothing to gain from asking peers.
        Err(why @ (SnapshotRefusal::RetentionUnknown(_) | SnapshotRefusal::ClusterUnknown)) => {
            Verdict::Unknown(why.to_string())
        }
        Err(why) => {
            // A clock behind at boot, or metadata not yet showing added
            // partitions, may pass a moment later; the rest stays.
            let lasting = !matches!(
                why,
                SnapshotRefusal::FreshInFuture { .. }
                    | SnapshotRefusal::Partitions { .. }
                    | SnapshotRefusal::PastHighWatermark { .. }
            );
            Verdict::Refused { why: why.to_string(), lasting }
        }
    }
}

/// Every partition's watermarks: (low, high).
type Watermarks = BTreeMap<i32, (i64, i64)>;

/// The cluster's id and the topic's watermarks, asked on a client and a
/// thread of their own, which then destroys the client (librdkafka's
/// destroy waits ~100 ms for the client's threads to end).
async fn topic_now(config: &KafkaConfig, deadline: Instant) -> Result<(String, Watermarks), String> {
    let (answer, answered) = futures::channel::oneshot::channel();
    let config = config.clone();
    std::thread::Builder::new()
        .name("kafka-snapshot-check".into())
        .spawn(move || match config.consumer("peer-boot-check").create::<BaseConsumer>() {
            Ok(client) => {
                let _ = answer.send(ask_on(&client, &config, deadline));
                drop(client);
            }
            Err(e) => {
                let _ = answer.send(Err(format!("no client for the broker: {}", ClientRefused(e))));
            }
        })
        .map_err(|e| format!("no thread to ask the broker on: {e}"))?;
    answered.await.unwrap_or_else(|_| Err("the broker's answer was lost".into()))
}

/// Each question waits at most [`ASK_TIMEOUT`], and none past `deadline`.
fn ask_on(client: &BaseConsumer, config: &KafkaConfig, deadline: Instant) -> Result<(String, Watermarks), String> {
    let timeout = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() { Err(format!("no answer within {JUDGE_TIMEOUT:?}")) } else { Ok(left.min(ASK_TIMEOUT)) }
    };
    let metadata = client
        .fetch_metadata(Some(&config.topic), timeout()?)
        .map_err(|e| format!("cannot read the topic's metadata: {e}"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == config.topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        .filter(|found| !found.is_empty())
        .ok_or_else(|| format!("the broker does not list topic {}", config.topic))?;
    let cluster_id = client.client().fetch_cluster_id(timeout()?).ok_or("cannot read the cluster's id")?;
    let mut watermarks = Watermarks::new();
    for p in partitions {
        let found = client
            .fetch_watermarks(&config.topic, p, timeout()?)
            .map_err(|e| format!("cannot read partition {p}'s watermarks: {e}"))?;
        watermarks.insert(p, found);
    }
    Ok((cluster_id, watermarks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_of_the_snapshot_itself_refuses_it_and_only_one_that_stays_lasts() {
        assert_eq!(verdict_of(Ok(3)), Verdict::Resumable);
        let unknown = [SnapshotRefusal::RetentionUnknown("no ACL".into()), SnapshotRefusal::ClusterUnknown];
        for why in unknown {
            assert!(matches!(verdict_of(Err(why.clone())), Verdict::Unknown(_)), "{why}");
        }
        let other = SnapshotRefusal::OtherCluster { then: "a".into(), now: "b".into() };
        let old = SnapshotRefusal::OlderThanRetention { age_secs: 90_000, retention_ms: 86_400_000 };
        let compacted = SnapshotRefusal::Compacted { partition: 0, position: 5, low: 9 };
        for why in [other, old, compacted, SnapshotRefusal::ClusterNotRecorded, SnapshotRefusal::FreshnessNotRecorded] {
            assert_eq!(verdict_of(Err(why.clone())), Verdict::Refused { why: why.to_string(), lasting: true });
        }
        let ahead = SnapshotRefusal::FreshInFuture { ahead_secs: 120 };
        let partitions = SnapshotRefusal::Partitions { snapshot: 6, topic: 3 };
        let past = SnapshotRefusal::PastHighWatermark { partition: 1, position: 9, high: 5 };
        for why in [ahead, partitions, past] {
            assert_eq!(verdict_of(Err(why.clone())), Verdict::Refused { why: why.to_string(), lasting: false });
        }
    }
}
