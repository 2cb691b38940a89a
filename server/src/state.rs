//! Shared state of the service: configuration, storage, the model registry, metrics, the
//! job running here, a cache of known item ids and the candidate pages.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::job::JobTracker;
use crate::metrics::Metrics;
use crate::pages::PageCache;
use crate::registry::ModelRegistry;
use crate::store::Store;

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("config", &self.config).finish()
    }
}

pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub models: ModelRegistry,
    /// An `Arc` of its own: the metrics middleware holds it without the rest of the state.
    pub metrics: Arc<Metrics>,
    pub jobs: JobTracker,
    pub items: KnownItems,
    /// `/v1/candidates`' pages.
    pub pages: PageCache,
    /// This process's name in the database (`jobs.owner`): unique per start, so a restarted
    /// instance does not mistake its predecessor's lease for its own.
    pub instance: String,
    /// sha256 of the admin token: compared in constant time, and equal length whatever the
    /// token's length, so neither the content nor the length leaks through timing.
    admin_token_digest: Option<[u8; 32]>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Open storage and load the live model. What an earlier crash left behind is cleaned up
    /// by [`crate::serve::recover`], before serving.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let store = Store::open(&config.database_url).await.with_context(|| {
            format!("opening the database {}", crate::config::redact_url(&config.database_url))
        })?;
        let models = ModelRegistry::open(
            config.data_dir.join("models"),
            store.clone(),
            config.keep_versions,
        )?;
        models.refresh().await?;
        let items = KnownItems::default();
        items.extend(store.item_ids().await?);
        let config_ttl = config.candidates_ttl;
        let admin_token_digest =
            config.admin_token.as_ref().map(|t| Sha256::digest(t.as_bytes()).into());
        Ok(Self(Arc::new(Shared {
            config,
            store,
            models,
            metrics: Arc::default(),
            jobs: JobTracker::default(),
            items,
            pages: PageCache::new(config_ttl),
            instance: format!("instance-{}", sessionrank_core::bundle::unique_suffix()),
            admin_token_digest,
        })))
    }

    /// `Some(true)` if `token` is the admin token, `None` when no token is configured.
    pub fn check_admin_token(&self, token: &str) -> Option<bool> {
        let expected = self.admin_token_digest.as_ref()?;
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Some(bool::from(given.ct_eq(expected)))
    }
}

/// Item ids known to exist. Items are never deleted, so a hit is always right; a miss is
/// checked against the database (another instance may have added the item).
#[derive(Debug, Default)]
pub struct KnownItems(RwLock<HashSet<String>>);

impl KnownItems {
    pub fn extend(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut set) = self.0.write() {
            set.extend(ids);
        }
    }

    /// The ids of `ids` not in the cache.
    pub fn unknown<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        match self.0.read() {
            Ok(set) => ids.filter(|id| !set.contains(*id)).collect(),
            Err(_) => ids.collect(),
        }
    }
}
