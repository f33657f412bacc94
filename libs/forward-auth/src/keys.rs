//! The verification keys: a JSON Web Key Set from a file or a URL, swapped
//! whole on every change, fetched again when a token names a key it does
//! not hold (at most once a `jwks_min_refetch`) and every `jwks_refresh`.

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::{ForwardAuthConfig, KeySource};

/// A JWKS larger than this is refused (a key set is a few kilobytes).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Longest a request waits for a fetch its unknown `kid` caused; then 503
/// (below the HTTP request timeout and the gateways' own).
const WAIT_FOR_FETCH: Duration = Duration::from_millis(900);

/// Why no key verifies a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The token names a key the set does not hold, even after a fetch.
    #[error("no key {0:?} in the key set")]
    UnknownKid(String),
    /// The token names no key and the set holds several for its algorithm.
    #[error("the token names no key (kid) and {0} keys fit its algorithm")]
    Ambiguous(usize),
    /// The token's algorithm is not the key's.
    #[error("the token's algorithm {0:?} is not its key's")]
    WrongAlgorithm(Algorithm),
    /// No key set could be loaded yet (unreachable URL, unreadable file).
    #[error("the key set is unavailable: {0}")]
    Unavailable(String),
}

/// Why a key set could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct LoadError(String);

struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: Arc<DecodingKey>,
}

/// One loaded set. `generation` changes whenever the keys do, which is how
/// cached verdicts made with a key since removed are dropped.
struct KeySet {
    generation: u64,
    raw: Option<JwkSet>,
    keys: Vec<Key>,
}

impl KeySet {
    fn find(&self, header: &Header) -> Result<Arc<DecodingKey>, KeyError> {
        let family = header.alg.family();
        let fits = |k: &&Key| k.family == family && k.alg.is_none_or(|a| a == header.alg);
        match &header.kid {
            Some(kid) => {
                let key = self.keys.iter().find(|k| k.kid.as_deref() == Some(kid.as_str()));
                let key = key.ok_or_else(|| KeyError::UnknownKid(kid.clone()))?;
                if fits(&key) { Ok(key.key.clone()) } else { Err(KeyError::WrongAlgorithm(header.alg)) }
            }
            None => {
                let mut fitting = self.keys.iter().filter(fits);
                match (fitting.next(), fitting.count()) {
                    (Some(key), 0) => Ok(key.key.clone()),
                    (None, _) => Err(KeyError::UnknownKid(String::new())),
                    (Some(_), more) => Err(KeyError::Ambiguous(more + 1)),
                }
            }
        }
    }
}

#[derive(Default)]
struct Fetches {
    last: Option<Instant>,
    last_error: Option<String>,
}

/// The current key set and how to load it again.
pub(crate) struct KeyStore {
    source: KeySource,
    http: reqwest::Client,
    set: ArcSwap<KeySet>,
    fetches: Mutex<Fetches>,
    min_refetch: Duration,
}

impl KeyStore {
    /// Loads the set once. A file that cannot be read or parsed is an
    /// error (a config mistake); an unreachable URL is logged and fetched
    /// again later, tokens answering 503 meanwhile.
    pub(crate) async fn start(config: &ForwardAuthConfig) -> Result<Arc<Self>, LoadError> {
        // Redirects only to https: a redirect must not downgrade the key set's transport.
        let https_only = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 || attempt.url().scheme() != "https" {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(config.jwks_timeout)
            .redirect(https_only)
            .build()
            .map_err(|e| LoadError(format!("cannot build the JWKS client: {e}")))?;
        let store = Arc::new(Self {
            source: config.keys.clone(),
            http,
            set: ArcSwap::from_pointee(KeySet { generation: 0, raw: None, keys: Vec::new() }),
            fetches: Mutex::new(Fetches::default()),
            min_refetch: config.jwks_min_refetch,
        });
        match (store.fetch().await, &store.source) {
            (Ok(()), _) => {}
            (Err(e), KeySource::File(_)) => return Err(e),
            (Err(e), KeySource::Url(url)) => {
                tracing::error!(url, error = %e, "cannot fetch the JWKS; tokens answer 503 until it is fetched")
            }
        }
        tokio::spawn(refresh_every(Arc::downgrade(&store), config.jwks_refresh));
        Ok(store)
    }

    /// Changes whenever the keys do.
    pub(crate) fn generation(&self) -> u64 {
        self.set.load().generation
    }

    /// The key that verifies a token with `header`, fetching the set again
    /// when the token names a key it does not hold.
    pub(crate) async fn key_for(self: &Arc<Self>, header: &Header) -> Result<(Arc<DecodingKey>, u64), KeyError> {
        let seen = self.set.load_full();
        match seen.find(header) {
            Ok(key) => return Ok((key, seen.generation)),
            Err(KeyError::UnknownKid(_)) => {}
            Err(other) => return Err(other),
        }
        // The fetch runs as a task of its own: a request that gives up (its
        // timeout, a gateway's) does not cancel it halfway, and its result is
        // recorded for the next request.
        let store = self.clone();
        let fetch = tokio::spawn(async move { store.refetch(seen.generation).await });
        let failed = match tokio::time::timeout(WAIT_FOR_FETCH, fetch).await {
            Ok(Ok(failed)) => failed,
            Ok(Err(_)) => Some("the key set fetch failed".into()),
            Err(_) => Some(format!("the key set is still being fetched after {WAIT_FOR_FETCH:?}")),
        };
        let set = self.set.load_full();
        match (set.find(header), failed) {
            // The key may be in the set we could not fetch: not provably invalid.
            (Err(KeyError::UnknownKid(_)), Some(why)) => Err(KeyError::Unavailable(why)),
            (Err(KeyError::UnknownKid(_)), None) if set.raw.is_none() => {
                Err(KeyError::Unavailable("the key set has not been fetched yet".into()))
            }
            (found, _) => found.map(|key| (key, set.generation)),
        }
    }

    /// Fetches again unless another request just did (the generation moved
    /// since `seen`) or the last fetch is more recent than `min_refetch`;
    /// the last fetch's error, if it failed.
    async fn refetch(&self, seen: u64) -> Option<String> {
        let mut fetches = self.fetches.lock().await;
        if self.generation() != seen || fetches.last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return fetches.last_error.clone();
        }
        self.fetch_locked(&mut fetches).await.err().map(|e| e.0)
    }

    async fn fetch(&self) -> Result<(), LoadError> {
        let mut fetches = self.fetches.lock().await;
        self.fetch_locked(&mut fetches).await
    }

    /// Loads the set and installs it when it differs from the current one.
    async fn fetch_locked(&self, fetches: &mut Fetches) -> Result<(), LoadError> {
        fetches.last = Some(Instant::now());
        let loaded = self.load().await.and_then(|raw| parse(&raw).map(|keys| (raw, keys)));
        match loaded {
            Ok((raw, keys)) => {
                fetches.last_error = None;
                let current = self.set.load();
                if current.raw.as_ref() != Some(&raw) {
                    tracing::info!(keys = keys.len(), generation = current.generation + 1, "JWKS loaded");
                    self.set.store(Arc::new(KeySet { generation: current.generation + 1, raw: Some(raw), keys }));
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys held");
                fetches.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn load(&self) -> Result<JwkSet, LoadError> {
        let bytes = match &self.source {
            KeySource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| LoadError(format!("cannot read JWKS file {}: {e}", path.display())))?,
            KeySource::Url(url) => {
                let mut response = self.http.get(url).send().await.map_err(|e| LoadError(format!("GET {url}: {e}")))?;
                if !response.status().is_success() {
                    return Err(LoadError(format!("GET {url}: {}", response.status())));
                }
                // Read up to the cap, never the whole of a hostile body.
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| LoadError(format!("GET {url}: {e}")))? {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_JWKS_BYTES {
                        break;
                    }
                }
                body
            }
        };
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(LoadError(format!("the JWKS is over {MAX_JWKS_BYTES} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|e| LoadError(format!("not a JWKS: {e}")))
    }
}

/// The set's signing keys; keys for encryption, HMAC secrets and unknown
/// types are skipped (a public key set never verifies with a secret).
fn parse(set: &JwkSet) -> Result<Vec<Key>, LoadError> {
    let mut keys = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone();
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)) {
            tracing::warn!(kid, "JWKS key skipped: only RSA, EC and OKP public keys verify tokens here");
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => match Algorithm::from_str(&a.to_string()) {
                Ok(alg) => Some(alg),
                Err(_) => {
                    tracing::warn!(kid, alg = %a, "JWKS key skipped: not a signature algorithm");
                    continue;
                }
            },
            None => None,
        };
        // One unusable key costs only itself: the set's other keys (and the
        // withdrawal of old ones) still take effect.
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(Key { kid, alg, family: key.family(), key: Arc::new(key) }),
            Err(e) => tracing::warn!(kid, error = %e, "JWKS key skipped: unusable"),
        }
    }
    if keys.is_empty() {
        return Err(LoadError("the JWKS holds no usable signing key".into()));
    }
    Ok(keys)
}

async fn refresh_every(store: Weak<KeyStore>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(store) = store.upgrade() else { return };
        let _ = store.fetch().await;
    }
}
