//! Booting from a peer: a running replica streams the snapshot of its live
//! map (`GET /admin/snapshot`), and a new replica with an empty disk writes
//! it into its snapshot directory, where it is then read like a local one —
//! every check of a local snapshot applies (checksum, topic, format,
//! lifetime, the broker's positions, cluster and retention age), and
//! freshness is proven anew. A peer's snapshot is never trusted more.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use revocation_core::{FreshnessState, ProjectedLiveness, SnapshotCounts, write_snapshot};

use super::{SnapshotFile, decoupled, private_file, snapshot_meta};

/// Where a new replica fetches its first snapshot, and with what.
///
/// ```
/// use revocation_kafka::PeerBootstrap;
/// let peers = PeerBootstrap::new(vec!["http://projector.auth.svc:8080".into()], "the-peers-admin-token".into());
/// assert_eq!(peers.timeout, PeerBootstrap::DEFAULT_TIMEOUT);
/// ```
#[derive(Clone)]
pub struct PeerBootstrap {
    /// Base URLs of peers, tried in order; a name resolving to several
    /// addresses (a headless service) is tried address by address.
    pub peers: Vec<String>,
    /// The peers' admin token (sent as a bearer token).
    pub token: String,
    /// Longest one transfer may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for PeerBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerBootstrap").field("peers", &self.peers).field("timeout", &self.timeout).finish()
    }
}

impl PeerBootstrap {
    /// The route a peer serves its snapshot on.
    pub const PATH: &'static str = "/admin/snapshot";
    /// Default of [`Self::timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// Fetch from `peers` with `token`.
    pub fn new(peers: Vec<String>, token: String) -> Self {
        Self { peers, token, timeout: Self::DEFAULT_TIMEOUT }
    }
}

/// What a fetch from peers came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFetch {
    /// The directory already holds a snapshot of the topic: it is used (or
    /// refused) as a local one, and no peer is asked.
    LocalExists,
    /// A peer's snapshot is now the directory's snapshot of the topic.
    Fetched {
        /// The peer (and address) it came from.
        peer: String,
        /// Its size.
        bytes: u64,
    },
    /// No peer gave a complete snapshot; why, peer by peer.
    Failed(String),
}

/// Fetches a peer's snapshot into `dir` as `topic`'s snapshot file, unless
/// the directory holds one. A transfer is written to a temporary file and
/// renamed only once complete: a peer that dies mid-transfer leaves nothing.
pub async fn fetch_peer_snapshot(bootstrap: &PeerBootstrap, dir: &Path, topic: &str) -> PeerFetch {
    let file = SnapshotFile::in_dir(dir, topic);
    if file.path().exists() {
        return PeerFetch::LocalExists;
    }
    if let Err(e) = fs::create_dir_all(dir) {
        return PeerFetch::Failed(format!("cannot create {}: {e}", dir.display()));
    }
    let partial = file.path().with_extension("snapshot.peer");
    let mut reasons = Vec::new();
    for peer in &bootstrap.peers {
        let addresses = match addresses(peer).await {
            Ok(addresses) => addresses,
            Err(why) => {
                reasons.push(format!("{peer}: {why}"));
                continue;
            }
        };
        for address in addresses {
            let at = format!("{peer} ({address})");
            match transfer(bootstrap, peer, address, &partial).await {
                Ok(bytes) => match fs::rename(&partial, file.path()) {
                    Ok(()) => return PeerFetch::Fetched { peer: at, bytes },
                    Err(e) => reasons.push(format!("{at}: cannot rename {}: {e}", partial.display())),
                },
                Err(why) => {
                    let _ = fs::remove_file(&partial);
                    tracing::warn!(peer = %at, reason = %why, "no snapshot from this peer");
                    reasons.push(format!("{at}: {why}"));
                }
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("no peer given".into());
    }
    PeerFetch::Failed(reasons.join("; "))
}

/// The addresses `peer`'s host resolves to (one for an IP literal).
async fn addresses(peer: &str) -> Result<Vec<SocketAddr>, String> {
    let url = reqwest::Url::parse(peer).map_err(|e| format!("not a URL: {e}"))?;
    let host = url.host_str().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if found.is_empty() { Err(format!("{host} resolves to no address")) } else { Ok(found) }
}

async fn transfer(bootstrap: &PeerBootstrap, peer: &str, address: SocketAddr, to: &Path) -> Result<u64, String> {
    let url = reqwest::Url::parse(peer).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(bootstrap.timeout)
        .resolve(&host, address)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url.join(PeerBootstrap::PATH).map_err(|e| e.to_string())?)
        .bearer_auth(&bootstrap.token)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("answered {status}: {}", body.chars().take(300).collect::<String>()));
    }
    let mut out = io::BufWriter::with_capacity(1 << 20, private_file(to).map_err(|e| e.to_string())?);
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("transfer broken after {bytes} bytes: {e}"))? {
        out.write_all(&chunk).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        bytes += chunk.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(bytes)
}

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
    let (counts, _) = decoupled::write_through(out, |queue| write_snapshot(projection.store(), &meta, queue))?;
    Ok(counts)
}
