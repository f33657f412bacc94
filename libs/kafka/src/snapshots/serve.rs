//! Serving this replica's snapshot to a new one (`GET /admin/snapshot`):
//! only while it is Live, caught up and trusting its topic, written from
//! the live map as checks go on.

use std::io::{self, Write};
use std::sync::Arc;

use revocation_core::{FreshnessState, ProjectedLiveness, SnapshotCounts, write_snapshot};

use super::{decoupled, snapshot_meta};

/// Why this replica cannot serve its snapshot to a peer now: only a Live
/// projection that has caught up and trusts its topic serves one.
pub(crate) fn refusal(liveness: &ProjectedLiveness) -> Option<String> {
    let state = liveness.state();
    if state != FreshnessState::Live {
        return Some(format!("this replica is {}, not live", state.as_str()));
    }
    let projection = liveness.projection();
    if !projection.freshness().has_caught_up() {
        return Some("this replica has not caught up since it started".into());
    }
    if projection.freshness().distrusted_after().is_some() {
        return Some("this replica distrusts its topic (see /health/lag distrusted_after)".into());
    }
    None
}

/// Writes the serving projection's snapshot to `out`, read from the live
/// map shard by shard (checks go on) and handed to `out` by a thread of
/// its own (a slow peer never holds a shard).
pub(crate) fn stream(
    liveness: &ProjectedLiveness,
    topic: &str,
    format: &str,
    cluster_id: Option<String>,
    out: impl Write + Send + 'static,
) -> io::Result<SnapshotCounts> {
    let projection = liveness.projection();
    let meta = snapshot_meta(&projection, topic, format, cluster_id);
    // Checked again after the header is read, on the projection it was read
    // from: the feed marks a topic distrusted before it publishes positions
    // past the record that distrusts it, and a rebuild may have swapped the
    // projection since the route's check.
    let swapped = !Arc::ptr_eq(&projection, &liveness.projection());
    let unready = liveness.state() != FreshnessState::Live || meta.positions.len() != meta.partitions as usize;
    if swapped || unready || projection.freshness().distrusted_after().is_some() {
        return Err(io::Error::other("this replica stopped being able to serve a snapshot; ask again"));
    }
    let (counts, _) = decoupled::write_through(out, |queue| write_snapshot(projection.store(), &meta, queue))?;
    Ok(counts)
}
