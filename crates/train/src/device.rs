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

/// A hardware GPU through wgpu (discrete first, then integrated), never a software adapter:
/// lavapipe is a correctness tool, 10–20× slower than `flex` for training.
#[cfg(feature = "wgpu")]
pub fn hardware_gpu() -> Result<Device, String> {
    use burn::tensor::DeviceKind;
    let mut last = String::from("no adapter");
    for kind in [DeviceKind::DiscreteGpu(0), DeviceKind::IntegratedGpu(0)] {
        match Device::wgpu_options().device_kind(kind).init() {
            Ok(d) => return Ok(d),
            Err(e) => last = format!("{e:?}"),
        }
    }
    Err(last)
}
