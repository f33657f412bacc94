//! [`Projection`]: a session store and the freshness that says how far it can
//! be trusted — what a source fills and what [`ProjectedLiveness`] reads.
//!
//! [`ProjectedLiveness`]: crate::ProjectedLiveness

use crate::freshness::{Freshness, FreshnessConfig};
use crate::store::SessionStore;

/// A store and the freshness that says how far it can be trusted: what a
/// source fills and what [`ProjectedLiveness`] reads.
#[derive(Debug)]
pub struct Projection {
    pub(crate) store: SessionStore,
    pub(crate) freshness: Freshness,
}

impl Projection {
    /// An empty, Cold projection.
    pub fn new(config: FreshnessConfig) -> Self {
        Self::with_store(SessionStore::new(), config)
    }

    /// A Cold projection over `store` (e.g. one pre-sized for a replay).
    pub fn with_store(store: SessionStore, config: FreshnessConfig) -> Self {
        Self { store, freshness: Freshness::new(config) }
    }

    /// The sessions.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// How far the sessions can be trusted.
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }
}
