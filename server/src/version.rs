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
