//! The model registry: which versions are published, which one is live, and the models
//! directory that holds them.
//!
//! ```text
//! <data-dir>/models/<version>/…  one directory per published version (see [`crate::version`])
//!                  /current      the live version's name (a mirror of the database pointer,
//!                                for operators and CDN sync scripts; written atomically)
//! ```
//!
//! The database is the source of truth (the `models` table and the live pointer); the
//! registry keeps the live version and a few recently used ones in memory and follows the
//! pointer when another instance moves it ([`ModelRegistry::refresh`]).
//!
//! [`ModelRegistry::publish`] writes a version directory whole ([`write_version_dir`]: a
//! `.tmp-*` staging directory, fsynced and renamed into place), then records it in the
//! database together with the live pointer in one transaction. A crash before the rename
//! leaves a `.tmp-*` directory, a crash between rename and commit an unrecorded directory:
//! neither is ever served, and [`ModelRegistry::remove_partial_versions`] removes both at the
//! next start. Only the last `keep_versions` versions are kept (the live one always is).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use sessionrank_core::{BundleKind, ModelBundle};

use crate::error::{ApiError, ApiResult};
use crate::store::{Backend, Store};
use crate::version::{LoadedModel, valid_version, write_version_dir};

/// Name of the pointer file in the models directory.
pub const CURRENT_FILE: &str = "current";

/// Non-live versions kept in memory for downloads and vectors.
const CACHED_VERSIONS: usize = 3;

/// The published versions: the live one and recently used ones in memory, all of them on disk.
pub struct ModelRegistry {
    dir: PathBuf,
    store: Store,
    /// Versions kept on disk, the live one included.
    keep_versions: usize,
    current: RwLock<Option<Arc<LoadedModel>>>,
    recent: Mutex<VecDeque<Arc<LoadedModel>>>,
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
    pub async fn get(&self, version: &str) -> ApiResult<Arc<LoadedModel>> {
        if let Some(m) = self.current().filter(|m| m.version() == version) {
            return Ok(m);
        }
        if let Some(m) =
            self.recent.lock().ok().and_then(|r| r.iter().find(|m| m.version() == version).cloned())
        {
            return Ok(m);
        }
        if !valid_version(version) || !self.store.model_exists(version).await? {
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

    /// Crash recovery: remove the version directories an interrupted publish left behind
    /// (`.tmp-*` staging, `.trash-*` of an interrupted prune, and — with SQLite, where no other
    /// instance can be between its rename and its commit — directories the database does not
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

    /// Load the version the database names as live, if it is not the one loaded.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(version) = self.store.current_model().await? else { return Ok(()) };
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

    /// Publish a bundle as a new version; with `activate` it becomes live in the same database
    /// transaction that records it. Returns the version.
    pub async fn publish(&self, bundle: ModelBundle, activate: bool) -> anyhow::Result<String> {
        let version = bundle.manifest.model_version.clone();
        anyhow::ensure!(valid_version(&version), "invalid version name `{version}`");
        anyhow::ensure!(
            bundle.manifest.kind == BundleKind::Full,
            "only full bundles are published (their browser bundle is derived)"
        );
        let dir = self.dir.join(&version);
        anyhow::ensure!(!dir.exists(), "version {version} exists already");
        let manifest_json = bundle.manifest_json()?;
        let created_at = bundle.manifest.created_at as i64;
        let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<LoadedModel> {
            write_version_dir(&bundle, &dir)?;
            // Read back what is on disk: what we serve is what was verified.
            LoadedModel::load(&dir)
        })
        .await??;
        if let Err(e) =
            self.store.insert_model(&version, created_at, &manifest_json, activate).await
        {
            // Not recorded, so not published: its files go too (a full disk wants them back).
            let dir = self.dir.join(&version);
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
            return Err(e.into());
        }
        let loaded = Arc::new(loaded);
        if activate {
            write_current_file(&self.dir, &version)?;
            self.set_current(loaded);
        } else {
            self.remember(loaded);
        }
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
