//! Picking a burn device. Training code never names a backend: it receives a `Device`.

use burn::tensor::Device;

/// The best wgpu adapter (a GPU; lavapipe/software Vulkan where there is none).
#[cfg(feature = "wgpu")]
pub fn wgpu_default() -> Result<Device, String> {
    Device::wgpu_options().init().map_err(|e| format!("{e:?}"))
}

/// The pure-Rust CPU backend, available everywhere (native and wasm32).
pub fn cpu() -> Device {
    Device::flex()
}
