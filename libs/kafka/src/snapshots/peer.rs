//! Booting from a peer: a running replica streams the snapshot of its live
//! map (`GET /admin/snapshot`, `serve.rs`), and a new replica with an empty disk writes
//! it into its snapshot directory and restores it as a local one (kept in
//! memory from the check, not read again) — every check of a local
//! snapshot applies (checksum, topic, format, lifetime, the broker's
//! positions, cluster and retention age), and freshness is proven anew. A
//! peer's snapshot is never trusted more. The broker's checks are asked
//! before one is settled for (`resumable.rs`), so a local snapshot or a
//! peer's that the start would refuse sends the replica to the next peer.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use revocation_core::Snapshot;

use super::resumable::{self, Verdict};
use super::{Expected, SnapshotFile, SnapshotOptions, private_file};
use crate::{KafkaConfig, SourceOptions};

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
    /// Longest the whole fetch may take, all peers together.
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
#[derive(Debug, Clone)]
pub enum PeerFetch {
    /// The directory already holds a sound snapshot of the topic (whole,
    /// of this topic, format and lifetime) that the broker would resume, or
    /// the broker cannot be asked now: it is used as a local one (the
    /// broker's checks follow at start), and no peer is asked. One that is
    /// not sound — torn by a crash, say — or that the broker would refuse —
    /// older than half the topic's `delete.retention.ms`, of another
    /// cluster — is as good as none: peers are asked.
    LocalExists {
        /// The local snapshot, read and checked here, for the source to
        /// restore without reading the file again.
        snapshot: FetchedSnapshot,
    },
    /// A peer's snapshot is now the directory's snapshot of the topic.
    Fetched {
        /// The peer (and address) it came from.
        peer: String,
        /// Its size.
        bytes: u64,
        /// The snapshot itself, checked, for the source to restore without
        /// reading the file back ([`SourceOptions::peer_snapshot`]).
        snapshot: FetchedSnapshot,
    },
    /// No peer gave a complete snapshot; why, peer by peer.
    Failed(String),
}

/// A snapshot fetched from a peer and checked (checksum, topic, format,
/// lifetime), held in memory for the source's start: restored from here,
/// it is not read back from the file it was also written to. Taken once.
#[derive(Clone)]
pub struct FetchedSnapshot(Arc<Mutex<Option<(Snapshot, usize)>>>);

impl FetchedSnapshot {
    fn new(snapshot: Snapshot, bytes: usize) -> Self {
        Self(Arc::new(Mutex::new(Some((snapshot, bytes)))))
    }

    /// The snapshot and its size in bytes, the first time only.
    pub(crate) fn take(&self) -> Option<(Snapshot, usize)> {
        self.0.lock().ok()?.take()
    }
}

impl std::fmt::Debug for FetchedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FetchedSnapshot")
    }
}

/// Fetches a peer's snapshot into `snapshot.dir` as the topic's snapshot
/// file, unless the directory holds a sound one the broker would resume. A
/// transfer is written to a temporary file of this process's own and
/// renamed only once complete, of what this projection reads (checksum,
/// topic, format, lifetime) and not refused by the broker (cluster, age
/// against `delete.retention.ms`, positions; judged again at start): a peer
/// that dies mid-transfer, or serves something else, leaves nothing, and
/// the next peer is asked. All peers together get at most
/// `bootstrap.timeout`.
pub async fn fetch_peer_snapshot(
    bootstrap: &PeerBootstrap,
    config: &KafkaConfig,
    options: &SourceOptions,
    snapshot: &SnapshotOptions,
) -> PeerFetch {
    let file = SnapshotFile::in_dir(&snapshot.dir, &config.topic);
    let expected = Expected {
        topic: &config.topic,
        format: options.format.name(),
        max_session_lifetime_secs: options.max_session_lifetime.map(|d| d.as_secs()),
    };
    let mut reasons = Vec::new();
    let mut refused_local = false;
    if file.path().exists() {
        let why = match check(file.path(), &expected) {
            Ok((snapshot, size)) => match resumable::judge(config, snapshot.meta()).await {
                Verdict::Refused { why, lasting } => {
                    refused_local = lasting;
                    format!("the broker would not resume it: {why}")
                }
                verdict => {
                    if let Verdict::Unknown(why) = verdict {
                        tracing::info!(reason = %why, "the broker cannot be asked now; the local snapshot is judged at start");
                    }
                    return PeerFetch::LocalExists { snapshot: FetchedSnapshot::new(snapshot, size) };
                }
            },
            Err(why) => why,
        };
        tracing::warn!(path = %file.path().display(), reason = %why, "the local snapshot cannot be used: asking peers");
        reasons.push(format!("the local snapshot: {why}"));
    }
    if let Err(e) = fs::create_dir_all(&snapshot.dir) {
        return PeerFetch::Failed(format!("cannot create {}: {e}", snapshot.dir.display()));
    }
    let partial = file.path().with_extension(format!("snapshot.peer-{}", std::process::id()));
    let fetch = Fetch { bootstrap, config, expected: &expected, partial: &partial, to: file.path() };
    let all = ask_in_rounds(&fetch, &mut reasons);
    let outcome = match tokio::time::timeout(bootstrap.timeout, all).await {
        Ok(Some(fetched)) => fetched,
        Ok(None) => PeerFetch::Failed(if reasons.is_empty() { "no peer given".into() } else { reasons.join("; ") }),
        Err(_) => {
            reasons.push(format!("no complete snapshot within {:?}", bootstrap.timeout));
            PeerFetch::Failed(reasons.join("; "))
        }
    };
    let _ = fs::remove_file(&partial);
    // No peer's snapshot replaced it: the start would read it only to
    // refuse it again (its cluster, age or compacted positions stay what
    // they are), and the start's reason would then hide the peers' answers.
    if refused_local && matches!(outcome, PeerFetch::Failed(_)) {
        match fs::remove_file(file.path()) {
            Ok(()) => {
                tracing::warn!(path = %file.path().display(), "the local snapshot the broker would not resume is removed")
            }
            Err(e) => {
                tracing::warn!(path = %file.path().display(), error = %e, "cannot remove the refused local snapshot")
            }
        }
    }
    outcome
}

/// Rounds of asking every peer. A peer that answers 503 with `Retry-After`
/// (busy streaming to others, or not Live yet) is worth asking again: a
/// scale-out of many pods at once meets busy peers, and a stream takes
/// seconds. Waiting is bounded, since a new replica answers from Postgres
/// meanwhile: at most [`ROUNDS`] rounds, each wait at most [`LONGEST_WAIT`].
async fn ask_in_rounds(fetch: &Fetch<'_>, reasons: &mut Vec<String>) -> Option<PeerFetch> {
    for round in 1..=ROUNDS {
        let mut retry_after = None;
        // Every round's reasons are kept, so a timeout mid-round still says
        // what the peers answered before it.
        if let Some(fetched) = ask_peers(fetch, reasons, &mut retry_after).await {
            return Some(fetched);
        }
        let wait = retry_after.filter(|_| round < ROUNDS)?;
        reasons.push(format!("round {round}: asked again after {} ms", wait.as_millis()));
        tracing::info!(round, wait_ms = wait.as_millis() as u64, "peers asked to be asked again; waiting");
        tokio::time::sleep(wait).await;
    }
    None
}

/// Rounds of asking the peers (see [`ask_in_rounds`]).
const ROUNDS: u32 = 3;
/// The longest wait between rounds, whatever a peer's `Retry-After` says.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// What every round asks for, and where the answer goes.
struct Fetch<'a> {
    bootstrap: &'a PeerBootstrap,
    /// The broker, asked whether it would resume a fetched snapshot.
    config: &'a KafkaConfig,
    expected: &'a Expected<'a>,
    /// This process's temporary file for a transfer.
    partial: &'a Path,
    /// The directory's snapshot of the topic, once a transfer is sound.
    to: &'a Path,
}

/// One round over every peer and address. A failure that asks to be
/// retried lowers `retry_after` to its own wait.
async fn ask_peers(
    fetch: &Fetch<'_>,
    reasons: &mut Vec<String>,
    retry_after: &mut Option<Duration>,
) -> Option<PeerFetch> {
    let Fetch { bootstrap, config, expected, partial, to } = *fetch;
    for peer in &bootstrap.peers {
        let shown = shown(peer);
        let addresses = match addresses(peer).await {
            Ok(addresses) => addresses,
            Err(why) => {
                reasons.push(format!("{shown}: {why}"));
                continue;
            }
        };
        for address in addresses {
            let at = format!("{shown} ({address})");
            let fetched = match transfer(bootstrap, peer, address, partial).await {
                Ok(()) => match check(partial, expected) {
                    Ok((snapshot, size)) => match resumable::judge(config, snapshot.meta()).await {
                        Verdict::Refused { why, .. } => Err(format!("the broker would not resume its snapshot: {why}")),
                        Verdict::Resumable => Ok((snapshot, size)),
                        Verdict::Unknown(why) => {
                            tracing::info!(peer = %at, reason = %why, "the broker cannot be asked now; the peer's snapshot is judged at start");
                            Ok((snapshot, size))
                        }
                    },
                    Err(why) => Err(why),
                },
                Err(failure) => {
                    if let Some(wait) = failure.retry_after {
                        *retry_after = Some(retry_after.map_or(wait, |w| w.min(wait)));
                    }
                    Err(failure.why)
                }
            };
            match fetched.and_then(|kept| fs::rename(partial, to).map(|()| kept).map_err(|e| format!("rename: {e}"))) {
                Ok((snapshot, bytes)) => {
                    let snapshot = FetchedSnapshot::new(snapshot, bytes);
                    return Some(PeerFetch::Fetched { peer: at, bytes: bytes as u64, snapshot });
                }
                Err(why) => {
                    let _ = fs::remove_file(partial);
                    tracing::warn!(peer = %at, reason = %why, "no snapshot from this peer");
                    reasons.push(format!("{at}: {why}"));
                }
            }
        }
    }
    None
}

/// Reads a snapshot file and checks it: a whole snapshot of what this
/// projection reads, kept in memory for the start, and its size.
fn check(path: &Path, expected: &Expected<'_>) -> Result<(Snapshot, usize), String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_or(0, |m| m.len() as usize);
    let snapshot = Snapshot::read_sized(file, size).map_err(|e| e.to_string())?;
    expected.check(snapshot.meta())?;
    Ok((snapshot, size))
}

/// A peer URL as logs and the start report may show it (no credentials).
fn shown(peer: &str) -> String {
    match reqwest::Url::parse(peer) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => "(a peer URL that does not parse)".into(),
    }
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

/// Why a transfer from one address failed, and whether the peer asked to
/// be asked again later (a 503 with `Retry-After`).
struct Failure {
    why: String,
    retry_after: Option<Duration>,
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Self { why, retry_after: None }
    }
}

/// The peer's answer, written to `to` as it arrives. Not synced
/// to disk: a file torn by a crash is not sound at the next start, which
/// then asks the peers again.
async fn transfer(bootstrap: &PeerBootstrap, peer: &str, address: SocketAddr, to: &Path) -> Result<(), Failure> {
    let url = reqwest::Url::parse(peer).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or_default().to_owned();
    // No redirect (another host's body is not this peer's snapshot) and no
    // proxy from the environment (the token would travel to it, and the
    // address pinning would not hold).
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(bootstrap.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve(&host, address)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url.join(PeerBootstrap::PATH).map_err(|e| e.to_string())?)
        .bearer_auth(&bootstrap.token)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(refused(response, &bootstrap.token).await);
    }
    let mut out = io::BufWriter::with_capacity(1 << 20, private_file(to).map_err(|e| e.to_string())?);
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("transfer broken after {bytes} bytes: {e}"))? {
        out.write_all(&chunk).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        bytes += chunk.len() as u64;
    }
    out.flush().map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    Ok(())
}

/// A peer's answer other than 200: its own reason when it is ours
/// (`{"reason": …}`), never raw text (an echoing endpoint must not put the
/// token into logs and the start report), and its `Retry-After` on a 503.
async fn refused(response: reqwest::Response, token: &str) -> Failure {
    let status = response.status();
    let retry_after = (status == reqwest::StatusCode::SERVICE_UNAVAILABLE)
        .then(|| response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok())
        .flatten()
        .map(|secs| Duration::from_secs(secs).min(LONGEST_WAIT));
    let reason = response.json::<serde_json::Value>().await.ok().and_then(|v| v["reason"].as_str().map(str::to_owned));
    Failure { why: answered(status, reason.as_deref(), token), retry_after }
}

/// How a refusal is shown: the peer's reason, without the token should the
/// peer echo it (the reason reaches logs and `/health/lag`), cut to 200
/// characters.
fn answered(status: reqwest::StatusCode, reason: Option<&str>, token: &str) -> String {
    match reason {
        Some(reason) => {
            let shown = if token.is_empty() { reason.to_owned() } else { reason.replace(token, "[the token]") };
            format!("answered {status}: {}", shown.chars().take(200).collect::<String>())
        }
        None => format!("answered {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_never_shows_the_token_the_peer_echoes() {
        let status = reqwest::StatusCode::UNAUTHORIZED;
        let echoed = answered(status, Some("bad credentials: Bearer s3cret-token, try again"), "s3cret-token");
        assert_eq!(echoed, "answered 401 Unauthorized: bad credentials: Bearer [the token], try again");
        assert_eq!(
            answered(status, Some("no"), ""),
            "answered 401 Unauthorized: no",
            "an empty token replaces nothing"
        );
        assert_eq!(answered(status, None, "t"), "answered 401 Unauthorized");
        assert_eq!(answered(status, Some(&"x".repeat(500)), "t").len(), "answered 401 Unauthorized: ".len() + 200);
    }
}
