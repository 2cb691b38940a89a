//! Versioned model publishing.
//!
//! ```text
//! <data-dir>/models/<version>/manifest.json, weights.bpk, tokenizer.json, items.json
//!                  /<version>/browser/manifest.json, weights.bpk, categories.json
//!                  /current      the live version's name (a mirror of the database pointer,
//!                                for operators and CDN sync scripts; written atomically)
//! ```
//!
//! Every version has two bundles with the same `model_version`: the full one (server,
//! retraining, vectors) and the browser one ([`ModelBundle::browser`]: no item-id table, no
//! tokenizer, no item index), which is all a shopper's browser downloads — item vectors come
//! with the candidate page instead (`GET /v1/candidates`).
//!
//! A version directory, browser bundle included, is assembled in a `.tmp-*` staging directory
//! (each bundle written by [`ModelBundle::write_dir`]: fsync, rename), fsynced and renamed
//! into place, then recorded in the database together with the `current` pointer in one
//! transaction. A crash before the rename leaves a `.tmp-*` directory, a crash between rename
//! and commit an unrecorded directory: neither is ever served, and both are removed at the
//! next start. Only the last `keep_versions` versions are kept (the live one always is).
//!
//! A version published before browser bundles existed has no `browser/`: loading it derives
//! one (deterministically, so every instance derives the same bytes) and writes it, best
//! effort — a read-only models directory still serves it from memory.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use anyhow::Context;
use burn::tensor::Device;
use bytes::Bytes;
use sessionrank_core::bundle::{MANIFEST, sha256_hex};
use sessionrank_core::{BundleKind, ItemContent, Manifest, ModelBundle, Reranker};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{Backend, Store};

/// Name of the pointer file in the models directory.
pub const CURRENT_FILE: &str = "current";

/// Name of the browser bundle's directory inside a version directory.
pub const BROWSER_DIR: &str = "browser";

/// Non-live versions kept in memory for downloads and vectors.
const CACHED_VERSIONS: usize = 3;

/// One bundle's files as served: the manifest exactly as stored (what clients download and
/// hash) and every file it lists, verified.
pub struct ServedFiles {
    pub manifest: Manifest,
    pub manifest_bytes: Bytes,
    pub manifest_sha256: String,
    pub files: BTreeMap<String, Bytes>,
}

impl ServedFiles {
    /// What `dir/manifest.json` says, with the bundle already read (and verified) from `dir`.
    fn read(dir: &Path, bundle: &ModelBundle) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let manifest_bytes =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::new(bundle, manifest_bytes))
    }

    /// A bundle held in memory only (its manifest as [`ModelBundle::write_dir`] would write it).
    fn in_memory(bundle: &ModelBundle) -> anyhow::Result<Self> {
        Ok(Self::new(bundle, bundle.manifest_json()?.into_bytes()))
    }

    fn new(bundle: &ModelBundle, manifest_bytes: Vec<u8>) -> Self {
        Self {
            manifest: bundle.manifest.clone(),
            manifest_sha256: sha256_hex(&manifest_bytes),
            manifest_bytes: Bytes::from(manifest_bytes),
            files: bundle.files.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect(),
        }
    }
}

/// One published version, verified and in memory: its full bundle and its browser bundle.
pub struct LoadedModel {
    pub full: ServedFiles,
    pub browser: ServedFiles,
    bundle: ModelBundle,
    engine: OnceLock<Result<Arc<Reranker>, String>>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("version", &self.full.manifest.model_version).finish()
    }
}

impl LoadedModel {
    /// Read a version directory, verifying every file against its manifest; derive the
    /// browser bundle when the version has none (see the module docs).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let bundle = ModelBundle::read_dir(dir)
            .with_context(|| format!("reading bundle {}", dir.display()))?;
        anyhow::ensure!(
            bundle.manifest.kind == BundleKind::Full,
            "{} holds a {:?} bundle, not a full one",
            dir.display(),
            bundle.manifest.kind
        );
        let full = ServedFiles::read(dir, &bundle)?;
        let browser = load_browser(dir, &bundle)?;
        Ok(Self { full, browser, bundle, engine: OnceLock::new() })
    }

    pub fn version(&self) -> &str {
        &self.full.manifest.model_version
    }

    /// The full bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.full.manifest
    }

    pub fn bundle(&self) -> &ModelBundle {
        &self.bundle
    }

    /// The engine for this version on the CPU, built on first use (blocking: call it from a
    /// blocking thread).
    pub fn engine(&self) -> anyhow::Result<Arc<Reranker>> {
        self.engine
            .get_or_init(|| {
                Reranker::from_bundle(&self.bundle, &Device::flex())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| anyhow::anyhow!("building the engine of {}: {e}", self.version()))
    }

    /// Item vectors of this version's full item encoder (id embedding + content tower), one
    /// per item: what a browser running the browser bundle gets instead of computing them.
    ///
    /// [`Reranker::item_vectors`] does the encoding — the same code as a re-rank — so an item
    /// the model knows is encoded from its id and trained content (`content` is ignored) and
    /// one it does not know from `content` alone. An unknown item without content gets `None`
    /// rather than the generic "unknown item" vector: the caller says it is missing. The one
    /// code path behind `/v1/candidates` and `/v1/models/{version}/vectors`; blocking (call it
    /// from a blocking thread).
    pub fn item_vectors(
        &self,
        items: &[(String, Option<ItemContent>)],
    ) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
        let engine = self.engine()?;
        let encodable: Vec<(&str, Option<&ItemContent>)> = items
            .iter()
            .filter(|(id, content)| content.is_some() || engine.encoder().item_row(id).is_some())
            .map(|(id, content)| (id.as_str(), content.as_ref()))
            .collect();
        let mut vectors = engine.item_vectors(&encodable)?.into_iter();
        items
            .iter()
            .map(|(id, content)| {
                if content.is_none() && engine.encoder().item_row(id).is_none() {
                    return Ok(None);
                }
                vectors
                    .next()
                    .map(Some)
                    .ok_or_else(|| anyhow::anyhow!("the engine returned fewer vectors than items"))
            })
            .collect()
    }
}

/// The browser bundle of the version in `dir`: read from `dir/browser` when it is there and
/// belongs to `full`, otherwise derived from `full` and written (best effort).
fn load_browser(dir: &Path, full: &ModelBundle) -> anyhow::Result<ServedFiles> {
    let browser_dir = dir.join(BROWSER_DIR);
    if browser_dir.is_dir() {
        match ModelBundle::read_dir(&browser_dir) {
            Ok(b)
                if b.manifest.kind == BundleKind::Browser
                    && b.manifest.model_version == full.manifest.model_version =>
            {
                return ServedFiles::read(&browser_dir, &b);
            }
            Ok(b) => tracing::warn!(
                "{} holds a {:?} bundle of version {}, not the browser bundle of {}: deriving it again",
                browser_dir.display(),
                b.manifest.kind,
                b.manifest.model_version,
                full.manifest.model_version
            ),
            Err(e) => {
                tracing::warn!("{} cannot be read ({e}): deriving it again", browser_dir.display())
            }
        }
    }
    let browser = full.browser().with_context(|| {
        format!("deriving the browser bundle of {}", full.manifest.model_version)
    })?;
    match browser.write_dir(&browser_dir) {
        Ok(()) => {
            tracing::info!(
                "wrote the browser bundle of {} to {}",
                full.manifest.model_version,
                browser_dir.display()
            );
            // Serve what is on disk, like the full bundle; fall back to memory if it will not read.
            match ModelBundle::read_dir(&browser_dir) {
                Ok(b) => ServedFiles::read(&browser_dir, &b),
                Err(e) => {
                    tracing::warn!(
                        "{} does not read back ({e}); serving the browser bundle from memory",
                        browser_dir.display()
                    );
                    ServedFiles::in_memory(&browser)
                }
            }
        }
        Err(e) => {
            tracing::warn!(
                "cannot write {} ({e}); serving the browser bundle from memory",
                browser_dir.display()
            );
            ServedFiles::in_memory(&browser)
        }
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
    !v.is_empty()
        && v.len() <= 100
        && !v.starts_with('.')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
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
        if let Some(m) =
            self.recent.lock().ok().and_then(|r| r.iter().find(|m| m.version() == version).cloned())
        {
            return Ok(m);
        }
        if !valid_version(version) || !store.model_exists(version).await? {
            return Err(ApiError::NotFound(format!("no model version `{version}`")));
        }
        let dir = self.dir.join(version);
        let model = tokio::task::spawn_blocking(move || LoadedModel::load(&dir))
            .await
            .map_err(ApiError::internal)??;
        let model = Arc::new(model);
        self.remember(model.clone());
        Ok(model)
    }

    /// Startup: remove what a crash left behind and load the live version.
    pub async fn recover(&self, store: &Store) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let known: HashSet<String> = store.models().await?.into_iter().map(|m| m.version).collect();
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
            // With PostgreSQL another instance sharing this directory may be between its rename
            // and its commit: only partial directories are removed then.
            let orphan = !known.contains(&name) && store.backend() == Backend::Sqlite;
            if partial || orphan {
                tracing::warn!("removing {} left by an interrupted publish", path.display());
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                continue;
            }
            // A browser bundle derived on load and interrupted leaves `<version>/.tmp-*`.
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
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(format!("{version}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(CURRENT_FILE))
        .with_context(|| format!("renaming {}", tmp.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Publish a bundle as a new version; with `activate` it becomes live in the same database
/// transaction that records it. Returns the version.
pub async fn publish(
    state: &AppState,
    bundle: ModelBundle,
    activate: bool,
) -> anyhow::Result<String> {
    let version = bundle.manifest.model_version.clone();
    anyhow::ensure!(valid_version(&version), "invalid version name `{version}`");
    anyhow::ensure!(
        bundle.manifest.kind == BundleKind::Full,
        "only full bundles are published (their browser bundle is derived)"
    );
    let models_dir = state.models.dir().to_path_buf();
    let dir = models_dir.join(&version);
    anyhow::ensure!(!dir.exists(), "version {version} exists already");
    let manifest_json = bundle.manifest_json()?;
    let created_at = bundle.manifest.created_at as i64;
    let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<LoadedModel> {
        write_version_dir(&bundle, &dir)?;
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

/// Write a version directory — the full bundle and its browser bundle — so that it appears
/// complete or not at all: both are assembled in a `.tmp-*` sibling (which a restart removes),
/// fsynced, and the directory renamed into place. `dir` must not exist.
pub fn write_version_dir(bundle: &ModelBundle, dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".tmp-version-{name}-{}", std::process::id()));
    let browser =
        bundle.browser().with_context(|| format!("deriving the browser bundle of {name}"))?;
    bundle.write_dir(&staging).with_context(|| format!("writing {}", staging.display()))?;
    browser
        .write_dir(&staging.join(BROWSER_DIR))
        .with_context(|| format!("writing {}", staging.join(BROWSER_DIR).display()))?;
    std::fs::File::open(&staging)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", staging.display()))?;
    std::fs::rename(&staging, dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
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
            std::fs::remove_dir_all(&trash)
                .with_context(|| format!("removing {}", trash.display()))?;
        }
        tracing::info!("removed old model version {}", m.version);
    }
    Ok(())
}
