//! One published version: its directory layout, and the verified bundles read from it.
//!
//! ```text
//! <version>/manifest.json, weights.bpk, tokenizer.json, items.json    the full bundle
//! <version>/browser/manifest.json, weights.bpk, categories.json       the browser bundle
//! ```
//!
//! Every version has two bundles with the same `model_version`: the full one (server,
//! retraining, vectors) and the browser one ([`ModelBundle::browser`]: no item-id table, no
//! tokenizer, no item index), which is all a shopper's browser downloads — item vectors come
//! with the candidate page instead (`GET /v1/candidates`).
//!
//! A version directory is written whole or not at all ([`write_version_dir`]). A version
//! published before browser bundles existed has no `browser/`: loading it derives one
//! (deterministically, so every instance derives the same bytes) and writes it, best effort —
//! a read-only models directory still serves it from memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use burn::tensor::Device;
use bytes::Bytes;
use sessionrank_core::bundle::{MANIFEST, sha256_hex};
use sessionrank_core::{BundleKind, ItemContent, Manifest, ModelBundle, Reranker};

/// Name of the browser bundle's directory inside a version directory.
pub const BROWSER_DIR: &str = "browser";

/// Version names are path components: letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn valid_version(v: &str) -> bool {
    sessionrank_core::bundle::is_plain_name(v)
}

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

    /// The bundle in `files` (`manifest.json` and what it lists, stored under `prefix`),
    /// verified against its manifest.
    fn from_stored(
        files: &BTreeMap<String, Bytes>,
        prefix: &str,
    ) -> anyhow::Result<(ModelBundle, Self)> {
        let manifest = files
            .get(&format!("{prefix}{MANIFEST}"))
            .with_context(|| format!("no {prefix}{MANIFEST} stored"))?;
        let own: BTreeMap<String, Vec<u8>> = files
            .iter()
            .filter_map(|(name, bytes)| {
                let rest = name.strip_prefix(prefix)?;
                (!rest.contains('/') && rest != MANIFEST)
                    .then(|| (rest.to_string(), bytes.to_vec()))
            })
            .collect();
        let bundle = ModelBundle::from_parts(manifest, own)
            .with_context(|| format!("verifying the stored {prefix}{MANIFEST}"))?;
        let served = Self::new(&bundle, manifest.to_vec());
        Ok((bundle, served))
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

    /// A version as the database stores it (see [`LoadedModel::stored_files`]), every file
    /// verified against its manifest.
    pub fn from_stored(version: &str, files: &BTreeMap<String, Bytes>) -> anyhow::Result<Self> {
        let (bundle, full) = ServedFiles::from_stored(files, "")?;
        let browser_prefix = format!("{BROWSER_DIR}/");
        let (browser_bundle, browser) = ServedFiles::from_stored(files, &browser_prefix)?;
        anyhow::ensure!(
            bundle.manifest.kind == BundleKind::Full
                && browser_bundle.manifest.kind == BundleKind::Browser,
            "version {version}: the stored bundles are not a full and a browser bundle"
        );
        for m in [&bundle.manifest, &browser_bundle.manifest] {
            anyhow::ensure!(
                m.model_version == version,
                "version {version}: a stored manifest says {}",
                m.model_version
            );
        }
        Ok(Self { full, browser, bundle, engine: OnceLock::new() })
    }

    /// A new version from a full bundle: its browser bundle derived, both manifests serialised
    /// once (these bytes are what every instance stores, serves and hashes for the ETag).
    pub fn from_bundle(bundle: ModelBundle) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bundle.manifest.kind == BundleKind::Full,
            "only full bundles are published (their browser bundle is derived)"
        );
        let browser = bundle.browser().with_context(|| {
            format!("deriving the browser bundle of {}", bundle.manifest.model_version)
        })?;
        Ok(Self {
            full: ServedFiles::in_memory(&bundle)?,
            browser: ServedFiles::in_memory(&browser)?,
            bundle,
            engine: OnceLock::new(),
        })
    }

    /// Every file of both bundles as stored: `manifest.json`, the full bundle's files, and
    /// `browser/manifest.json` with the browser bundle's files.
    pub fn stored_files(&self) -> Vec<(String, Bytes)> {
        let mut out = Vec::new();
        for (prefix, b) in [("", &self.full), ("browser/", &self.browser)] {
            out.push((format!("{prefix}{MANIFEST}"), b.manifest_bytes.clone()));
            out.extend(b.files.iter().map(|(n, bytes)| (format!("{prefix}{n}"), bytes.clone())));
        }
        out
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

/// Write a version directory from its stored files (names as in
/// [`LoadedModel::stored_files`]), byte for byte, so that it appears complete or not at all
/// (a `.tmp-*` sibling, fsynced, renamed). `dir` must not exist.
pub fn write_stored_dir(files: &[(String, Bytes)], dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging =
        parent.join(format!(".tmp-version-{name}-{}", sessionrank_core::bundle::unique_suffix()));
    let written = write_staged(files, &staging, dir);
    if written.is_err() {
        // A full disk wants its space back; a restart would remove it too.
        let _ = std::fs::remove_dir_all(&staging);
    }
    written?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_stored_dir`]'s steps: the files into `staging`, fsynced, renamed to `dir`.
fn write_staged(files: &[(String, Bytes)], staging: &Path, dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(staging.join(BROWSER_DIR))
        .with_context(|| format!("creating {}", staging.display()))?;
    for (file, bytes) in files {
        anyhow::ensure!(
            file.split('/').all(sessionrank_core::bundle::is_plain_name),
            "stored file name `{file}` is not a plain bundle path"
        );
        let path = staging.join(file);
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    for d in [staging.join(BROWSER_DIR), staging.to_path_buf()] {
        std::fs::File::open(&d)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", d.display()))?;
    }
    std::fs::rename(staging, dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))
}

/// Write a version directory — the full bundle and its browser bundle — so that it appears
/// complete or not at all: both are assembled in a `.tmp-*` sibling (which a restart removes),
/// fsynced, and the directory renamed into place. `dir` must not exist.
pub fn write_version_dir(bundle: &ModelBundle, dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging =
        parent.join(format!(".tmp-version-{name}-{}", sessionrank_core::bundle::unique_suffix()));
    let browser =
        bundle.browser().with_context(|| format!("deriving the browser bundle of {name}"))?;
    let staged = (|| {
        bundle.write_dir(&staging).with_context(|| format!("writing {}", staging.display()))?;
        browser
            .write_dir(&staging.join(BROWSER_DIR))
            .with_context(|| format!("writing {}", staging.join(BROWSER_DIR).display()))?;
        std::fs::File::open(&staging)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", staging.display()))?;
        std::fs::rename(&staging, dir)
            .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))
    })();
    if let Err(e) = staged {
        // A full disk mid-write: no partial version stays behind (nor its space).
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}
