//! Versioned model publishing.
//!
//! ```text
//! <data-dir>/models/<version>/manifest.json, weights.bpk, tokenizer.json, items.json
//!                  /current      the live version's name (a mirror of the database pointer,
//!                                for operators and CDN sync scripts; written atomically)
//! ```
//!
//! A version directory is written by [`ModelBundle::write_dir`] (temporary directory, fsync,
//! rename), then recorded in the database together with the `current` pointer in one
//! transaction. A crash before the rename leaves a `.tmp-*` directory, a crash between rename
//! and commit an unrecorded directory: neither is ever served, and both are removed at the
//! next start. Only the last `keep_versions` versions are kept (the live one always is).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use anyhow::Context;
use burn::tensor::Device;
use bytes::Bytes;
use sessionrank_core::bundle::MANIFEST;
use sessionrank_core::{Manifest, ModelBundle, Reranker};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{Backend, Store};

/// Name of the pointer file in the models directory.
pub const CURRENT_FILE: &str = "current";

/// Non-live versions kept in memory for downloads and vectors.
const CACHED_VERSIONS: usize = 3;

/// One published version, verified and in memory.
pub struct LoadedModel {
    pub manifest: Manifest,
    /// `manifest.json` exactly as stored (what clients download and hash).
    pub manifest_bytes: Bytes,
    pub manifest_sha256: String,
    pub files: BTreeMap<String, Bytes>,
    bundle: ModelBundle,
    engine: OnceLock<Result<Arc<Reranker>, String>>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("version", &self.manifest.model_version).finish()
    }
}

impl LoadedModel {
    /// Read a version directory, verifying every file against the manifest.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let bundle = ModelBundle::read_dir(dir).with_context(|| format!("reading bundle {}", dir.display()))?;
        let manifest_bytes = std::fs::read(dir.join(MANIFEST)).with_context(|| format!("reading {}", dir.join(MANIFEST).display()))?;
        Ok(Self {
            manifest: bundle.manifest.clone(),
            manifest_sha256: sessionrank_core::bundle::sha256_hex(&manifest_bytes),
            manifest_bytes: Bytes::from(manifest_bytes),
            files: bundle.files.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect(),
            bundle,
            engine: OnceLock::new(),
        })
    }

    pub fn version(&self) -> &str {
        &self.manifest.model_version
    }

    pub fn bundle(&self) -> &ModelBundle {
        &self.bundle
    }

    /// The engine for this version on the CPU, built on first use (blocking: call it from a
    /// blocking thread).
    pub fn engine(&self) -> anyhow::Result<Arc<Reranker>> {
        self.engine
            .get_or_init(|| Reranker::from_bundle(&self.bundle, &Device::flex()).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| anyhow::anyhow!("building the engine of {}: {e}", self.version()))
    }
}

/// The live model and recently used versions.
#[derive(Debug)]
pub struct ModelRegistry {
    dir: PathBuf,
    current: RwLock<Option<Arc<LoadedModel>>>,
    recent: Mutex<VecDeque<Arc<LoadedModel>>>,
}

/// Version names are path components: letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn valid_version(v: &str) -> bool {
    !v.is_empty() && v.len() <= 100 && !v.starts_with('.') && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl ModelRegistry {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, current: RwLock::new(None), recent: Mutex::new(VecDeque::new()) }
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

    fn set_current(&self, model: Arc<LoadedModel>) {
        if let Ok(mut c) = self.current.write() {
            *c = Some(model);
        }
    }

    fn remember(&self, model: Arc<LoadedModel>) {
        if let Ok(mut r) = self.recent.lock() {
            r.retain(|m| m.version() != model.version());
            r.push_front(model);
            r.truncate(CACHED_VERSIONS);
        }
    }

    fn forget(&self, version: &str) {
        if let Ok(mut r) = self.recent.lock() {
            r.retain(|m| m.version() != version);
        }
    }

    /// A published version (live, cached, or read from disk and verified).
    pub async fn get(&self, store: &Store, version: &str) -> ApiResult<Arc<LoadedModel>> {
        if let Some(m) = self.current().filter(|m| m.version() == version) {
            return Ok(m);
        }
        if let Some(m) = self.recent.lock().ok().and_then(|r| r.iter().find(|m| m.version() == version).cloned()) {
            return Ok(m);
        }
        if !valid_version(version) || !store.model_exists(version).await? {
            return Err(ApiError::NotFound(format!("no model version `{version}`")));
        }
        let dir = self.dir.join(version);
        let model = tokio::task::spawn_blocking(move || LoadedModel::load(&dir)).await.map_err(ApiError::internal)??;
        let model = Arc::new(model);
        self.remember(model.clone());
        Ok(model)
    }

    /// Startup: remove what a crash left behind and load the live version.
    pub async fn recover(&self, store: &Store) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let known: HashSet<String> = store.models().await?.into_iter().map(|m| m.version).collect();
        for entry in std::fs::read_dir(&self.dir).with_context(|| format!("listing {}", self.dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let partial = name.starts_with(".tmp-") || name.starts_with(".trash-");
            // With PostgreSQL another instance sharing this directory may be between its rename
            // and its commit: only partial directories are removed then.
            let orphan = !known.contains(&name) && store.backend() == Backend::Sqlite;
            if partial || orphan {
                tracing::warn!("removing {} left by an interrupted publish", path.display());
                std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        self.refresh(store).await
    }

    /// Load the version the database names as live, if it is not the one loaded.
    pub async fn refresh(&self, store: &Store) -> anyhow::Result<()> {
        let Some(version) = store.current_model().await? else { return Ok(()) };
        if self.current_version().as_deref() == Some(version.as_str()) {
            return Ok(());
        }
        let dir = self.dir.join(&version);
        match tokio::task::spawn_blocking(move || LoadedModel::load(&dir)).await? {
            Ok(m) => {
                tracing::info!("live model: {version}");
                let m = Arc::new(m);
                write_current_file(&self.dir, &version)?;
                self.set_current(m);
            }
            Err(e) => tracing::error!("the live model {version} cannot be loaded: {e:#}"),
        }
        Ok(())
    }
}

/// Write `<models>/current` atomically (temporary file, fsync, rename, fsync the directory).
fn write_current_file(dir: &Path, version: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{CURRENT_FILE}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(format!("{version}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(CURRENT_FILE)).with_context(|| format!("renaming {}", tmp.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Publish a bundle as a new version; with `activate` it becomes live in the same database
/// transaction that records it. Returns the version.
pub async fn publish(state: &AppState, bundle: ModelBundle, activate: bool) -> anyhow::Result<String> {
    let version = bundle.manifest.model_version.clone();
    anyhow::ensure!(valid_version(&version), "invalid version name `{version}`");
    let models_dir = state.models.dir().to_path_buf();
    let dir = models_dir.join(&version);
    anyhow::ensure!(!dir.exists(), "version {version} exists already");
    let manifest_json = bundle.manifest_json()?;
    let created_at = bundle.manifest.created_at as i64;
    let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<LoadedModel> {
        bundle.write_dir(&dir).with_context(|| format!("writing {}", dir.display()))?;
        // Read back what is on disk: what we serve is what was verified.
        LoadedModel::load(&dir)
    })
    .await??;
    state.store.insert_model(&version, created_at, &manifest_json, activate).await?;
    let loaded = Arc::new(loaded);
    if activate {
        write_current_file(&models_dir, &version)?;
        state.models.set_current(loaded);
    } else {
        state.models.remember(loaded);
    }
    prune(state).await?;
    Ok(version)
}

/// Make a published version live (roll back or forward).
pub async fn activate(state: &AppState, version: &str) -> ApiResult<Arc<LoadedModel>> {
    let model = state.models.get(&state.store, version).await?;
    state.store.set_current_model(version).await?;
    write_current_file(state.models.dir(), version)?;
    state.models.set_current(model.clone());
    tracing::info!("activated model {version}");
    Ok(model)
}

/// Remove all but the newest `keep_versions` versions (never the live one).
pub async fn prune(state: &AppState) -> anyhow::Result<()> {
    let live = state.models.current_version();
    let versions = state.store.models().await?;
    // The live version counts towards the limit.
    let budget = state.config.keep_versions.saturating_sub(usize::from(live.is_some()));
    let mut kept = 0;
    for m in versions {
        if Some(&m.version) == live.as_ref() {
            continue;
        }
        if kept < budget {
            kept += 1;
            continue;
        }
        state.store.delete_model(&m.version).await?;
        state.models.forget(&m.version);
        let dir = state.models.dir().join(&m.version);
        let trash = state.models.dir().join(format!(".trash-{}", m.version));
        if dir.exists() {
            std::fs::rename(&dir, &trash).with_context(|| format!("renaming {}", dir.display()))?;
            std::fs::remove_dir_all(&trash).with_context(|| format!("removing {}", trash.display()))?;
        }
        tracing::info!("removed old model version {}", m.version);
    }
    Ok(())
}
