//! Item feature tables of a training step: the whole catalog's, a subset of its rows (sampled
//! softmax, a teacher's row map), and the catalog with a share of its ids hidden (id dropout).

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use sessionrank_core::features::FeatureEncoder;
use sessionrank_model::ItemFeatures;

/// Feature table for the whole catalog (row 0 padding, row `i + 1` = catalog item `i`).
pub fn catalog_features(encoder: &FeatureEncoder, device: &Device) -> ItemFeatures {
    encoder.features(encoder.known_items().iter(), device)
}

/// The feature rows `rows` of a table.
pub fn select_rows(f: ItemFeatures, rows: Tensor<1, Int>) -> ItemFeatures {
    ItemFeatures {
        ids: f.ids.select(0, rows.clone()),
        tokens: f.tokens.select(0, rows.clone()),
        categories: f.categories.select(0, rows.clone()),
        prices: f.prices.select(0, rows),
    }
}

/// Hide a random `share` of item ids (set to 0, "unknown") for one step, so that the content
/// tower learns to carry an item the id table does not know.
pub fn drop_ids(
    features: &ItemFeatures,
    share: f64,
    rng: &mut StdRng,
    device: &Device,
) -> ItemFeatures {
    if share <= 0.0 {
        return features.clone();
    }
    let n = features.ids.dims()[0];
    let k = ((n as f64) * share) as usize;
    let mut keep = vec![1i64; n];
    for i in sample(rng, n, k.min(n)) {
        keep[i] = 0;
    }
    let keep = Tensor::<1, Int>::from_data(TensorData::new(keep, [n]), device);
    ItemFeatures { ids: features.ids.clone() * keep, ..features.clone() }
}
