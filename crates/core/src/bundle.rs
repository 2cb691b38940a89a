//! The model bundle: everything a server or a browser needs to run one model version.
//!
//! ```text
//! <version>/manifest.json    format version, model version, config, file list + sha256
//!           weights.bpk      burn record (burnpack) of the whole model
//!           tokenizer.json   item-text tokenizer (Hugging Face format)
//!           items.json       item index: external ids in id-row order, with their content
//!           model.safetensors  the same weights for PyTorch & co (optional)
//!
//! <version>/browser/manifest.json  kind "browser", the same model_version
//!                   weights.bpk    the same weights without the item-id and token tables
//!                   categories.json category names in embedding-row order
//! ```
//!
//! The **browser bundle** ([`BundleKind::Browser`], made by [`ModelBundle::browser`]) is what
//! a shopper's browser downloads before its first re-rank. It leaves out everything whose
//! size grows with the catalog: the item-id embedding, the tokenizer and its vocabulary's
//! embedding, the item index. Items reach the browser as vectors shipped with each candidate
//! page (as in Alibaba's EdgeRec), computed on the server by the full model's item encoder;
//! the browser runs the session encoder and the list scorer — the same model code — over
//! them. See `browser.rs`.
//!
//! Bundles are immutable: a URL that names a version always returns the same bytes, so
//! browsers and CDNs may cache them forever. Every file is checked against the manifest's
//! sha256 before it is parsed, so a truncated or tampered download is rejected up front.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sessionrank_data::{Catalog, Item};
use sessionrank_model::ModelConfig;
use sha2::{Digest, Sha256};

use crate::{CoreError, Result};

/// Bundle layout version this build reads and writes. Bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

pub const MANIFEST: &str = "manifest.json";
pub const WEIGHTS: &str = "weights.bpk";
pub const TOKENIZER: &str = "tokenizer.json";
pub const ITEMS: &str = "items.json";
pub const SAFETENSORS: &str = "model.safetensors";
/// Browser bundles: category names, row `i + 1` = `names[i]` (row 0 = unknown).
pub const CATEGORIES: &str = "categories.json";

/// What a bundle is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleKind {
    /// Everything: item index, tokenizer, the whole model. Server, trainer, tests.
    #[default]
    Full,
    /// The catalog-independent part of the model, for browsers (see the module docs).
    Browser,
}

impl BundleKind {
    /// Files a bundle of this kind cannot work without.
    pub fn required_files(self) -> &'static [&'static str] {
        match self {
            Self::Full => &[WEIGHTS, TOKENIZER, ITEMS],
            Self::Browser => &[WEIGHTS, CATEGORIES],
        }
    }

    fn is_full(&self) -> bool {
        *self == Self::Full
    }
}

/// Size and checksum of one bundle file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Full (absent in manifests written before browser bundles existed) or browser.
    #[serde(default, skip_serializing_if = "BundleKind::is_full")]
    pub kind: BundleKind,
    /// Immutable version name, e.g. `20261123-081500-3f2a9c1e`.
    pub model_version: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// The dataset / shop the model was trained on.
    pub dataset: String,
    pub config: ModelConfig,
    /// Feature encoding parameters (must match training).
    pub features: FeatureParams,
    /// Every other file of the bundle.
    pub files: BTreeMap<String, FileEntry>,
    /// Validation metrics recorded at publish time (free-form).
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Feature encoding parameters stored with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureParams {
    pub max_tokens: usize,
}

/// `items.json`: the item index (id row `i + 1` = `items[i]`) with each item's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemsFile {
    pub items: Vec<Item>,
}

impl ItemsFile {
    pub fn catalog(&self) -> Catalog {
        let mut c = Catalog::new();
        for it in &self.items {
            c.upsert(it.clone());
        }
        c
    }
}

/// A bundle in memory: the manifest plus the bytes of each file.
#[derive(Debug, Clone)]
pub struct ModelBundle {
    pub manifest: Manifest,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `name` may be a version name or a bundle file name, i.e. one plain path component:
/// 1 to 100 ASCII letters, digits, `-`, `_` or `.`, not starting with `.` (no `..`, no
/// separator, no hidden or staging name). A manifest is data from outside: its names are
/// joined to directories and deleted by, so they are checked before anything else reads them.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A suffix for temporary names that no other process writing to the same directory picks:
/// the time, the process id and a counter, hashed with this process's random hash keys
/// (in containers every server may be pid 1, sharing one volume).
pub fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{}-{:016x}", std::process::id(), h.finish())
}

impl ModelBundle {
    /// Assemble a bundle, computing each file's checksum.
    pub fn new(mut manifest: Manifest, files: BTreeMap<String, Vec<u8>>) -> Self {
        manifest.format_version = FORMAT_VERSION;
        manifest.files = files
            .iter()
            .map(|(name, bytes)| {
                (name.clone(), FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 })
            })
            .collect();
        Self { manifest, files }
    }

    /// Parse and check a manifest: JSON shape and format version.
    pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
        // Read the version first so a future layout reports "unsupported version", not a
        // confusing missing-field error.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|e| CoreError::InvalidFile {
            file: MANIFEST.into(),
            message: e.to_string(),
        })?;
        if v.format_version != FORMAT_VERSION {
            return Err(CoreError::UnsupportedFormat {
                found: v.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| CoreError::InvalidFile {
            file: MANIFEST.into(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| CoreError::InvalidFile { file: MANIFEST.into(), message };
        if !is_plain_name(&m.model_version) {
            return Err(invalid(format!(
                "model_version {:?} is not a plain name (letters, digits, `-`, `_`, `.`)",
                m.model_version
            )));
        }
        if let Some(name) = m.files.keys().find(|n| !is_plain_name(n) || *n == MANIFEST) {
            return Err(invalid(format!("file name {name:?} is not a plain bundle file name")));
        }
        for &name in m.kind.required_files() {
            if !m.files.contains_key(name) {
                return Err(CoreError::MissingFile(name.into()));
            }
        }
        Ok(m)
    }

    /// Check one file's bytes against the manifest.
    pub fn verify_file(manifest: &Manifest, name: &str, bytes: &[u8]) -> Result<()> {
        Self::check_digest(manifest, name, sha256_hex(bytes))
    }

    /// A file's sha256 (lowercase hex), however it was computed, against the manifest's.
    fn check_digest(manifest: &Manifest, name: &str, actual: String) -> Result<()> {
        let entry = manifest.files.get(name).ok_or_else(|| CoreError::MissingFile(name.into()))?;
        if actual != entry.sha256 {
            return Err(CoreError::ChecksumMismatch {
                file: name.into(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Build from a manifest and fetched files, verifying every checksum. `files` must hold
    /// at least the required files; optional ones (safetensors) may be left out.
    pub fn from_parts(manifest_bytes: &[u8], files: BTreeMap<String, Vec<u8>>) -> Result<Self> {
        Self::from_parts_with_digests(manifest_bytes, files, &BTreeMap::new())
    }

    /// [`Self::from_parts`] with some files' sha256 already computed by the caller (the
    /// browser package asks the browser's `crypto.subtle`, native code, instead of hashing a
    /// weights file with this crate's code freshly compiled in wasm: ~2 ms against ~20-40 ms of
    /// a cold start). Files missing from `digests` are hashed here; the checks are the same.
    pub fn from_parts_with_digests(
        manifest_bytes: &[u8],
        files: BTreeMap<String, Vec<u8>>,
        digests: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let manifest = Self::parse_manifest(manifest_bytes)?;
        for (name, bytes) in &files {
            let actual = match digests.get(name) {
                Some(d) => d.to_ascii_lowercase(),
                None => sha256_hex(bytes),
            };
            Self::check_digest(&manifest, name, actual)?;
        }
        for &name in manifest.kind.required_files() {
            if !files.contains_key(name) {
                return Err(CoreError::MissingFile(name.into()));
            }
        }
        Ok(Self { manifest, files })
    }

    pub fn file(&self, name: &str) -> Result<&[u8]> {
        self.files.get(name).map(Vec::as_slice).ok_or_else(|| CoreError::MissingFile(name.into()))
    }

    pub fn manifest_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.manifest)
            .map_err(|e| CoreError::InvalidFile { file: MANIFEST.into(), message: e.to_string() })
    }

    /// Category names of a browser bundle (row `i + 1` = `names[i]`).
    pub fn categories(&self) -> Result<Vec<String>> {
        serde_json::from_slice(self.file(CATEGORIES)?)
            .map_err(|e| CoreError::InvalidFile { file: CATEGORIES.into(), message: e.to_string() })
    }

    pub fn items(&self) -> Result<ItemsFile> {
        serde_json::from_slice(self.file(ITEMS)?)
            .map_err(|e| CoreError::InvalidFile { file: ITEMS.into(), message: e.to_string() })
    }

    /// Read a bundle directory, verifying every file the manifest lists.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p)
                .map_err(|source| CoreError::Io { path: p.display().to_string(), source })
        };
        let manifest_bytes = read(MANIFEST)?;
        let manifest = Self::parse_manifest(&manifest_bytes)?;
        let mut files = BTreeMap::new();
        for name in manifest.files.keys() {
            files.insert(name.clone(), read(name)?);
        }
        Self::from_parts(&manifest_bytes, files)
    }

    /// Write the bundle to `dir` atomically: everything goes to a sibling temporary
    /// directory, is fsynced, and the directory is renamed into place, so a reader never
    /// sees a half-written bundle (and a crash leaves only a `.tmp-*` directory behind).
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| CoreError::Io { path: p.clone(), source }
        };
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle".into());
        let tmp = parent.join(format!(".tmp-{name}-{}", unique_suffix()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let written = (|| {
            let mut all: Vec<(String, Vec<u8>)> =
                self.files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            all.push((MANIFEST.into(), self.manifest_json()?.into_bytes()));
            for (name, bytes) in &all {
                let p = tmp.join(name);
                let mut f = std::fs::File::create(&p).map_err(io(&p))?;
                std::io::Write::write_all(&mut f, bytes).map_err(io(&p))?;
                f.sync_all().map_err(io(&p))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // A full disk or a failing device: leave no partial bundle behind (and give the
            // space back) rather than waiting for the next start's clean-up.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::rename(&tmp, dir).map_err(io(dir))?;
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain_name, unique_suffix};

    #[test]
    fn only_plain_names_pass() {
        for ok in ["20261123-081500-3f2a9c1e", "v1", "weights.bpk", "model.safetensors"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", "..", "../x", "a/b", "a\\b", ".tmp-x", "/etc", "a b", "é"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
        assert!(!is_plain_name(&"a".repeat(101)));
    }

    #[test]
    fn temporary_suffixes_differ() {
        let (a, b) = (unique_suffix(), unique_suffix());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", std::process::id())), "{a}");
    }
}
