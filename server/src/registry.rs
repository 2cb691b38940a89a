//! The model registry: which versions are published, which one is live, and where their
//! files are.
//!
//! ```text
//! database  models        one row per published version, the live pointer in `settings`
//!           model_files   every file of every version (full and browser bundle), bytes + sha256
//! <data-dir>/models/<version>/…  this instance's mirror of a version (see [`crate::version`])
//!                  /current      the live version's name (for operators and CDN sync scripts)
//! ```
//!
//! The database is the source of truth for versions and their bytes, so any instance serves
//! any version, with the same bytes and ETags, whoever published it (issue 18). The models
//! directory is a mirror each instance writes for operators and CDN origins; nothing is served
//! from it, except a version published before bundles were stored in the database, which is
//! read from there once and copied into the database.
//!
//! [`ModelRegistry::publish`] records a version, all its files and (optionally) the live
//! pointer in one transaction, then mirrors the directory ([`write_stored_dir`]: a `.tmp-*`
//! staging directory, fsynced and renamed). A crash before the commit leaves nothing; one
//! after it leaves at most a `.tmp-*` directory, which
//! [`ModelRegistry::remove_partial_versions`] removes at the next start. Only the last
//! `keep_versions` versions are kept (the live one always is).
//!
//! **Cache.** The live version and the `keep_versions` most recently used ones stay in memory,
//! verified: every version a client may ask for is served without a database read. A version
//! that is not in memory is loaded once however many requests ask for it at the same time
//! (single flight: the others wait for that load).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use bytes::Bytes;
use sessionrank_core::{BundleKind, ModelBundle};
use tokio::sync::OnceCell;

use crate::error::{ApiError, ApiResult};
use crate::store::{Backend, Store, StoreError};
use crate::version::{LoadedModel, valid_version, write_stored_dir};

/// Name of the pointer file in the models directory.
pub const CURRENT_FILE: &str = "current";

/// A load in progress, shared by every request that waits for it.
type Loading = Arc<OnceCell<Arc<LoadedModel>>>;

/// The published versions: the live one and recently used ones in memory, all of them in the
/// database.
pub struct ModelRegistry {
    dir: PathBuf,
    store: Store,
    /// Versions kept, the live one included; also the depth of the in-memory cache.
    keep_versions: usize,
    current: RwLock<Option<Arc<LoadedModel>>>,
    recent: Mutex<VecDeque<Arc<LoadedModel>>>,
    loading: Mutex<HashMap<String, Loading>>,
    /// Versions loaded from the database (or a legacy directory) since start.
    loads: AtomicU64,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry")
            .field("dir", &self.dir)
            .field("keep_versions", &self.keep_versions)
            .field("current", &self.current_version())
            .finish()
    }
}

impl ModelRegistry {
    /// A registry over the models directory `dir` (created if missing), with nothing loaded:
    /// [`refresh`](Self::refresh) loads the live version.
    pub fn open(dir: PathBuf, store: Store, keep_versions: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            dir,
            store,
            keep_versions,
            current: RwLock::new(None),
            recent: Mutex::new(VecDeque::new()),
            loading: Mutex::new(HashMap::new()),
            loads: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    pub fn current_version(&self) -> Option<String> {
        self.current().map(|m| m.version().to_string())
    }

    /// How many times a version was read from storage and verified since start (the cache
    /// and single flight keep this at one per version while it stays in memory).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn set_current(&self, model: Arc<LoadedModel>) {
        if let Ok(mut c) = self.current.write() {
            *c = Some(model);
        }
    }

    fn remember(&self, model: Arc<LoadedModel>) {
        if let Ok(mut r) = self.recent.lock() {
            r.retain(|m| m.version() != model.version());
            r.push_front(model);
            r.truncate(self.keep_versions.max(1));
        }
    }

    fn forget(&self, version: &str) {
        if let Ok(mut r) = self.recent.lock() {
            r.retain(|m| m.version() != version);
        }
    }

    fn cached(&self, version: &str) -> Option<Arc<LoadedModel>> {
        if let Some(m) = self.current().filter(|m| m.version() == version) {
            return Some(m);
        }
        self.recent.lock().ok().and_then(|r| r.iter().find(|m| m.version() == version).cloned())
    }

    /// A published version: from memory, or loaded once (single flight) from the database.
    pub async fn get(&self, version: &str) -> ApiResult<Arc<LoadedModel>> {
        if let Some(m) = self.cached(version) {
            return Ok(m);
        }
        if !valid_version(version) {
            return Err(ApiError::NotFound(format!("no model version `{version}`")));
        }
        let cell = match self.loading.lock() {
            Ok(mut loading) => loading.entry(version.to_string()).or_default().clone(),
            Err(_) => Loading::default(),
        };
        let loaded = cell
            .get_or_try_init(|| async {
                // Finished while this request waited for the lock.
                if let Some(m) = self.cached(version) {
                    return Ok(m);
                }
                let m = self.load(version).await?;
                self.remember(m.clone());
                Ok::<_, ApiError>(m)
            })
            .await
            .cloned();
        if let Ok(mut loading) = self.loading.lock()
            && loading.get(version).is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            loading.remove(version);
        }
        loaded
    }

    /// Read a version from the database and verify it; mirror it to the models directory
    /// when this instance has no copy yet (best effort).
    async fn load(&self, version: &str) -> ApiResult<Arc<LoadedModel>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let rows = self.store.model_files(version).await?;
        if rows.is_empty() {
            if !self.store.model_exists(version).await? {
                return Err(ApiError::NotFound(format!("no model version `{version}`")));
            }
            return self.load_legacy(version).await;
        }
        let mut files = BTreeMap::new();
        for (name, sha256, bytes) in rows {
            files.insert(name, (sha256, Bytes::from(bytes)));
        }
        let version_owned = version.to_string();
        let dir = self.dir.join(version);
        let model = tokio::task::spawn_blocking(move || -> anyhow::Result<LoadedModel> {
            // The stored sha256 of each file (the manifest's included) must match its bytes:
            // a row damaged in the database is refused, never served.
            for (name, (sha256, bytes)) in &files {
                anyhow::ensure!(
                    sessionrank_core::bundle::sha256_hex(bytes) == *sha256,
                    "version {version_owned}: stored file {name} does not match its sha256"
                );
            }
            let files: BTreeMap<String, Bytes> =
                files.into_iter().map(|(n, (_, b))| (n, b)).collect();
            let model = LoadedModel::from_stored(&version_owned, &files)?;
            if !dir.exists() {
                let stored = model.stored_files();
                if let Err(e) = write_stored_dir(&stored, &dir) {
                    tracing::warn!("mirroring version {version_owned} to {}: {e:#}", dir.display());
                }
            }
            Ok(model)
        })
        .await
        .map_err(ApiError::internal)??;
        Ok(Arc::new(model))
    }

    /// A version recorded before bundles were stored in the database: read it from this
    /// instance's models directory and store its files, so other instances find them.
    async fn load_legacy(&self, version: &str) -> ApiResult<Arc<LoadedModel>> {
        let dir = self.dir.join(version);
        if !dir.is_dir() {
            return Err(ApiError::internal(anyhow::anyhow!(
                "version {version} has no files in the database and none in {}",
                self.dir.display()
            )));
        }
        let model = tokio::task::spawn_blocking(move || LoadedModel::load(&dir))
            .await
            .map_err(ApiError::internal)??;
        self.store.backfill_model_files(version, &model.stored_files()).await?;
        tracing::info!("stored the files of version {version} in the database");
        Ok(Arc::new(model))
    }

    /// Crash recovery: remove the version directories an interrupted publish left behind
    /// (`.tmp-*` staging, `.trash-*` of an interrupted prune, and — with SQLite, where no other
    /// instance can be between its commit and its mirror — directories the database does not
    /// record) and the `.tmp-*` of an interrupted browser-bundle write inside a version.
    pub async fn remove_partial_versions(&self) -> anyhow::Result<()> {
        let known: HashSet<String> =
            self.store.models().await?.into_iter().map(|m| m.version).collect();
        let single_instance = self.store.backend() == Backend::Sqlite;
        for entry in std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing {}", self.dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let partial = name.starts_with(".tmp-") || name.starts_with(".trash-");
            let orphan = !known.contains(&name) && single_instance;
            if partial || orphan {
                tracing::warn!("removing {} left by an interrupted publish", path.display());
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                continue;
            }
            for inner in
                std::fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))?
            {
                let inner = inner?;
                if inner.file_name().to_string_lossy().starts_with(".tmp-") && inner.path().is_dir()
                {
                    tracing::warn!(
                        "removing {} left by an interrupted write",
                        inner.path().display()
                    );
                    std::fs::remove_dir_all(inner.path())
                        .with_context(|| format!("removing {}", inner.path().display()))?;
                }
            }
        }
        Ok(())
    }

    /// Follow the database's live pointer: load the version it names if it is not the one
    /// live here (another instance published or activated it). Cheap when nothing changed
    /// (one small read), so the background task calls it every second.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(version) = self.store.current_model().await? else { return Ok(()) };
        if self.current_version().as_deref() == Some(version.as_str()) {
            return Ok(());
        }
        match self.get(&version).await {
            Ok(m) => {
                tracing::info!("live model: {version}");
                write_current_file(&self.dir, &version)?;
                self.set_current(m);
            }
            Err(e) => tracing::error!("the live model {version} cannot be loaded: {e}"),
        }
        Ok(())
    }

    /// Publish a bundle as a new version; with `activate` it becomes live in the same database
    /// transaction that records it. Returns the version. 409 when the version exists, 422 for
    /// a bundle that is not a full one or has an invalid name.
    pub async fn publish(&self, bundle: ModelBundle, activate: bool) -> ApiResult<String> {
        self.publish_fenced(bundle, activate, None).await
    }

    /// [`publish`](Self::publish) by a retraining job: `fence` (its id and owner) makes the
    /// transaction commit only while the job holds its lease.
    pub async fn publish_fenced(
        &self,
        bundle: ModelBundle,
        activate: bool,
        fence: Option<(&str, &str)>,
    ) -> ApiResult<String> {
        let version = bundle.manifest.model_version.clone();
        if !valid_version(&version) {
            return Err(ApiError::invalid("model_version", format!("invalid version `{version}`")));
        }
        if bundle.manifest.kind != BundleKind::Full {
            return Err(ApiError::invalid(
                "kind",
                "only full bundles are published (their browser bundle is derived)",
            ));
        }
        let exists = || ApiError::Conflict {
            message: format!("model version `{version}` exists already"),
            job_id: None,
        };
        if self.store.model_exists(&version).await? {
            return Err(exists());
        }
        let created_at = bundle.manifest.created_at as i64;
        let loaded = tokio::task::spawn_blocking(move || LoadedModel::from_bundle(bundle))
            .await
            .map_err(ApiError::internal)??;
        let manifest_json = String::from_utf8_lossy(&loaded.full.manifest_bytes).into_owned();
        let files = loaded.stored_files();
        match self
            .store
            .insert_model(&version, created_at, &manifest_json, &files, activate, fence)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Exists(_)) => return Err(exists()),
            Err(e @ StoreError::LeaseLost(_)) => {
                return Err(ApiError::Conflict { message: e.to_string(), job_id: None });
            }
            Err(e) => return Err(e.into()),
        }
        let loaded = Arc::new(loaded);
        // The database holds the version now; the directory is this instance's mirror.
        let dir = self.dir.join(&version);
        let mirrored = tokio::task::spawn_blocking(move || write_stored_dir(&files, &dir)).await;
        match mirrored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("published {version}, but mirroring it failed: {e:#}"),
            Err(e) => tracing::warn!("published {version}, but mirroring it failed: {e}"),
        }
        if activate {
            write_current_file(&self.dir, &version)?;
            self.set_current(loaded.clone());
        }
        self.remember(loaded);
        // The version is published and live: failing to remove old ones is worth a warning
        // (the next publish or restart tries again), not a failed publish.
        if let Err(e) = self.prune().await {
            tracing::warn!("published {version}, but removing old versions failed: {e:#}");
        }
        Ok(version)
    }

    /// Make a published version live (roll back or forward).
    pub async fn activate(&self, version: &str) -> ApiResult<Arc<LoadedModel>> {
        let model = self.get(version).await?;
        self.store.set_current_model(version).await?;
        write_current_file(&self.dir, version)?;
        self.set_current(model.clone());
        tracing::info!("activated model {version}");
        Ok(model)
    }

    /// Remove all but the newest `keep_versions` versions (never the live one).
    async fn prune(&self) -> anyhow::Result<()> {
        let live = self.current_version();
        let versions = self.store.models().await?;
        // The live version counts towards the limit.
        let budget = self.keep_versions.saturating_sub(usize::from(live.is_some()));
        let mut kept = 0;
        for m in versions {
            if Some(&m.version) == live.as_ref() {
                continue;
            }
            if kept < budget {
                kept += 1;
                continue;
            }
            self.store.delete_model(&m.version).await?;
            self.forget(&m.version);
            let dir = self.dir.join(&m.version);
            let trash = self.dir.join(format!(".trash-{}", m.version));
            if dir.exists() {
                std::fs::rename(&dir, &trash)
                    .with_context(|| format!("renaming {}", dir.display()))?;
                std::fs::remove_dir_all(&trash)
                    .with_context(|| format!("removing {}", trash.display()))?;
            }
            tracing::info!("removed old model version {}", m.version);
        }
        Ok(())
    }
}

/// Write `<models>/current` atomically (temporary file, fsync, rename, fsync the directory).
fn write_current_file(dir: &Path, version: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp =
        dir.join(format!(".{CURRENT_FILE}.tmp-{}", sessionrank_core::bundle::unique_suffix()));
    let written = (|| {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(format!("{version}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(CURRENT_FILE))
            .with_context(|| format!("renaming {}", tmp.display()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
