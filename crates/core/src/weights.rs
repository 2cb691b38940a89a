//! Model weights as bytes (burnpack, the bundle's `weights.bpk`) and tensors read back to
//! the host.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use sessionrank_model::{ModelConfig, SessionRankModel};

use crate::validate::{validate_config, validate_weights_size};
use crate::{CoreError, Result};

/// Apply burnpack bytes to a freshly initialised model.
///
/// The header is read twice, by `check_tensors` and by `ModuleRecord::from_bytes`: burn's
/// `ModuleRecord` neither exposes its tensors' dtypes nor can be made from a reader, and the
/// second read costs a fraction of a millisecond for the shipped student.
pub fn load_weights(model: SessionRankModel, bytes: &[u8]) -> Result<SessionRankModel> {
    check_tensors(bytes)?;
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| CoreError::Weights(e.to_string()))?;
    model.try_load_record(record).map_err(|e| CoreError::Weights(e.to_string()))
}

/// Every tensor in a weights file must be f32 with exactly the bytes its shape needs. burn
/// loads a tensor of another dtype as it is and panics at the first float operation on it:
/// the `bundle` fuzz target found this with one byte that turned a weight's `F32` into `I32`.
fn check_tensors(bytes: &[u8]) -> Result<()> {
    let bad = |e: burn_pack::Error| CoreError::Weights(e.to_string());
    let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(bad)?;
    for tensor in reader.into_tensors().map_err(bad)? {
        if tensor.dtype != burn_pack::DType::F32 {
            return Err(CoreError::Weights(format!(
                "tensor {} is {:?}; weights are F32",
                tensor.name, tensor.dtype
            )));
        }
        let elements = tensor.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements.and_then(|n| n.checked_mul(4)) != Some(tensor.byte_len()) {
            return Err(CoreError::Weights(format!(
                "tensor {} has {} bytes for shape {:?}",
                tensor.name,
                tensor.byte_len(),
                tensor.shape.as_slice()
            )));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SessionRankModel {
        let config = ModelConfig::new()
            .with_n_items(5)
            .with_vocab_size(6)
            .with_n_categories(3)
            .with_d_model(4)
            .with_n_heads(1)
            .with_d_ff(4)
            .with_max_len(4);
        config.init(&Device::flex())
    }

    /// A weight declared as another dtype (the fuzz target's find: one byte, `F32` → `I32`) is
    /// an error, not a panic at the first operation on it; the untouched bytes still load.
    #[test]
    fn a_weight_of_another_dtype_is_refused() {
        let bytes = weights_bytes(&tiny()).expect("bytes");
        assert!(load_weights(tiny(), &bytes).is_ok());
        let at = bytes.windows(3).position(|w| w == b"F32").expect("a dtype in the header");
        let mut bad = bytes.clone();
        bad[at] = b'I';
        match load_weights(tiny(), &bad) {
            Err(err) => assert!(err.to_string().contains("I32"), "{err}"),
            Ok(_) => panic!("a weight declared I32 was loaded"),
        }
    }
}
