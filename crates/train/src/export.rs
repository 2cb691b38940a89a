//! Trained model → versioned model bundle (manifest, weights, tokenizer, item index, and a
//! safetensors copy of the weights for PyTorch).

use std::collections::BTreeMap;

use burn_store::{ModuleSnapshot, SafetensorsStore};
use sessionrank_core::bundle::{ITEMS, SAFETENSORS, TOKENIZER, WEIGHTS};
use sessionrank_core::features::FeatureEncoder;
use sessionrank_core::reranker::weights_bytes;
use sessionrank_core::{FeatureParams, ItemsFile, Manifest, ModelBundle};
use sessionrank_data::Catalog;
use sessionrank_model::{ModelConfig, SessionRankModel};

use crate::{Result, TrainError};

/// A version name that sorts by time and never repeats: `YYYYMMDD-HHMMSS-<8 hex of sha256>`.
pub fn version_name(created_at: u64, weights: &[u8]) -> String {
    let days = created_at / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let s = created_at % 86_400;
    let hash = sessionrank_core::bundle::sha256_hex(weights);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{}", s / 3600, s / 60 % 60, s % 60, &hash[..8])
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Everything the bundle is made of.
#[derive(Debug)]
pub struct BundleParts<'a> {
    pub dataset: &'a str,
    pub config: &'a ModelConfig,
    pub model: &'a SessionRankModel,
    pub encoder: &'a FeatureEncoder,
    pub catalog: &'a Catalog,
    pub metrics: serde_json::Value,
    /// Also write `model.safetensors` (PyTorch-readable copy of the weights).
    pub safetensors: bool,
    /// Seconds since the epoch (a parameter so tests are reproducible).
    pub created_at: u64,
}

pub fn build_bundle(parts: BundleParts<'_>) -> Result<ModelBundle> {
    let weights = weights_bytes(parts.model)?;
    let mut files = BTreeMap::new();
    files.insert(TOKENIZER.to_string(), parts.encoder.tokenizer.to_json()?.into_bytes());
    let items = ItemsFile { items: parts.catalog.items().to_vec() };
    files.insert(
        ITEMS.to_string(),
        serde_json::to_vec(&items).map_err(|source| TrainError::Json {
            what: "the item index (items.json)".into(),
            source,
        })?,
    );
    if parts.safetensors {
        let mut store = SafetensorsStore::from_bytes(None)
            .metadata("format", "sessionrank")
            .metadata("dataset", parts.dataset);
        parts.model.save_into(&mut store).map_err(TrainError::Safetensors)?;
        let bytes = store.get_bytes().map_err(TrainError::Safetensors)?;
        files.insert(SAFETENSORS.to_string(), bytes);
    }
    let model_version = version_name(parts.created_at, &weights);
    files.insert(WEIGHTS.to_string(), weights);
    let manifest = Manifest {
        format_version: sessionrank_core::FORMAT_VERSION,
        kind: sessionrank_core::BundleKind::Full,
        model_version,
        created_at: parts.created_at,
        dataset: parts.dataset.to_string(),
        config: parts.config.clone(),
        features: FeatureParams { max_tokens: parts.encoder.max_tokens },
        files: BTreeMap::new(),
        metrics: parts.metrics,
    };
    Ok(ModelBundle::new(manifest, files))
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(super::version_name(86_400 + 3661, b"x").len(), "19700102-010101-".len() + 8);
    }
}
