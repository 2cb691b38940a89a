//! Picking a burn device: the one place that turns "where should this run" into a `Device`.
//! Training code never names a backend; it receives a `Device`. The CLI (`--device`) and the
//! server's retraining job (`retrain.device`) both call [`pick`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{Result, TrainError};

/// Where to train (or evaluate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A hardware GPU through wgpu when one initialises, else the CPU. Never a software
    /// adapter: lavapipe trains 10–20× slower than `flex`.
    #[default]
    Auto,
    /// burn's pure-Rust CPU backend, available everywhere (native and wasm32).
    Flex,
    /// burn's wgpu backend on its preferred adapter (lavapipe where no GPU exists, which is
    /// how CI checks wgpu); an error when no adapter initialises.
    Wgpu,
}

impl DeviceChoice {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: [Self; 3] = [Self::Auto, Self::Flex, Self::Wgpu];
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        })
    }
}

impl FromStr for DeviceChoice {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.to_string().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| TrainError::UnknownDevice(s.to_string()))
    }
}

/// A device ready to use and what it is, as recorded in results files and logs.
#[derive(Debug, Clone)]
pub struct PickedDevice {
    pub device: Device,
    /// The backend and the machine, e.g. `flex (CPU), 2 cores, Intel Xeon …`.
    pub description: String,
}

/// Initialise the device `choice` names.
///
/// `Auto` never fails: without a hardware GPU (or without the `wgpu` feature) it picks the
/// CPU and logs why. `Wgpu` fails with [`TrainError::Device`] when no adapter initialises.
pub fn pick(choice: DeviceChoice) -> Result<PickedDevice> {
    let picked = |device, backend: &str| PickedDevice {
        device,
        description: format!("{backend}, {}", machine_description()),
    };
    match choice {
        DeviceChoice::Flex => Ok(picked(cpu(), "flex (CPU)")),
        DeviceChoice::Wgpu => wgpu_any().map(|d| picked(d, "wgpu")),
        DeviceChoice::Auto => match wgpu_hardware() {
            Ok(d) => Ok(picked(d, "wgpu (GPU)")),
            Err(e) => {
                tracing::info!("no hardware GPU ({e}): using the CPU");
                Ok(picked(cpu(), "flex (CPU)"))
            }
        },
    }
}

/// A short description of this machine (cores and CPU model) for results files.
pub fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

/// The pure-Rust CPU backend, available everywhere (native and wasm32).
pub fn cpu() -> Device {
    Device::flex()
}

fn device_error(reason: impl Into<String>) -> TrainError {
    TrainError::Device { reason: reason.into() }
}

/// wgpu's preferred adapter: a GPU, or lavapipe (software Vulkan) where there is none.
#[cfg(feature = "wgpu")]
fn wgpu_any() -> Result<Device> {
    guarded(|| Device::wgpu_options().init().map_err(|e| device_error(format!("{e:?}"))))
}

/// A hardware GPU through wgpu (discrete first, then integrated), never a software adapter.
#[cfg(feature = "wgpu")]
fn wgpu_hardware() -> Result<Device> {
    use burn::tensor::DeviceKind;
    let mut last = device_error("no adapter");
    for kind in [DeviceKind::DiscreteGpu(0), DeviceKind::IntegratedGpu(0)] {
        match guarded(|| {
            Device::wgpu_options()
                .device_kind(kind)
                .init()
                .map_err(|e| device_error(format!("{e:?}")))
        }) {
            Ok(d) => return Ok(d),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Run a wgpu initialiser. Adapter discovery can panic inside the driver stack; a missing GPU
/// must fail this call, not the process (the server's retraining job runs in a live service).
#[cfg(feature = "wgpu")]
fn guarded(init: impl FnOnce() -> Result<Device> + std::panic::UnwindSafe) -> Result<Device> {
    std::panic::catch_unwind(init)
        .unwrap_or_else(|_| Err(device_error("wgpu initialisation panicked")))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_any() -> Result<Device> {
    Err(device_error("this build has no wgpu backend: rebuild with `--features wgpu`"))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_hardware() -> Result<Device> {
    wgpu_any()
}

/// wgpu's preferred adapter (lavapipe where no GPU exists). Prefer [`pick`]`(Wgpu)`.
#[cfg(feature = "wgpu")]
pub fn wgpu_default() -> Result<Device, String> {
    wgpu_any().map_err(|e| e.to_string())
}

/// A hardware GPU, never a software adapter. Prefer [`pick`]`(Auto)`.
#[cfg(feature = "wgpu")]
pub fn hardware_gpu() -> Result<Device, String> {
    wgpu_hardware().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_through_text_and_serde() {
        for c in DeviceChoice::ALL {
            assert_eq!(c.to_string().parse::<DeviceChoice>().ok(), Some(c));
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{c}\""));
        }
        assert_eq!(" WGPU ".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Wgpu));
        assert!(matches!("tpu".parse::<DeviceChoice>(), Err(TrainError::UnknownDevice(_))));
    }

    #[test]
    fn flex_is_always_there_and_named_with_the_machine() -> Result<()> {
        let p = pick(DeviceChoice::Flex)?;
        assert!(p.description.starts_with("flex (CPU), "), "{}", p.description);
        assert!(p.description.contains("cores"), "{}", p.description);
        Ok(())
    }
}
