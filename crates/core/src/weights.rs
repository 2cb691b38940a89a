//! Model weights as bytes (burnpack, the bundle's `weights.bpk`) and tensors read back to
//! the host.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use sessionrank_model::{ModelConfig, SessionRankModel};

use crate::validate::{validate_config, validate_weights_size};
use crate::{CoreError, Result};

/// Apply burnpack bytes to a freshly initialised model.
pub fn load_weights(model: SessionRankModel, bytes: &[u8]) -> Result<SessionRankModel> {
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| CoreError::Weights(e.to_string()))?;
    model.try_load_record(record).map_err(|e| CoreError::Weights(e.to_string()))
}

/// A model of `config` with the weights in `bytes`, on `device`. The config is checked first
/// ([`validate_config`], [`validate_weights_size`]): nothing from a manifest sizes an
/// allocation before the bytes that must fill it are known to be there.
pub fn model_from_bytes(
    config: &ModelConfig,
    bytes: &[u8],
    device: &Device,
) -> Result<SessionRankModel> {
    validate_config(config)?;
    validate_weights_size(config, bytes.len())?;
    load_weights(config.init(device), bytes)
}

/// Burnpack bytes of a model's weights.
pub fn weights_bytes(model: &SessionRankModel) -> Result<Vec<u8>> {
    let bytes =
        model.clone().into_record().into_bytes().map_err(|e| CoreError::Weights(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Synchronous readback (native, and the CPU device in the browser).
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| CoreError::Device(format!("{e:?}")))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| CoreError::Device(format!("{e:?}")))
}

/// Readback without blocking (the only one WebGPU allows).
pub async fn read_f32_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data_async()
        .await
        .map_err(|e| CoreError::Device(format!("{e:?}")))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| CoreError::Device(format!("{e:?}")))
}
