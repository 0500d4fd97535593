//! Where training runs: the CPU (burn-flex, everywhere), wgpu (Vulkan, Metal, DX12) or, in a
//! build with the `cuda` feature, an NVIDIA GPU through CUDA. A backend that is not there is an
//! error that says so, not a panic deep inside burn.

use anyhow::{Result, bail};
use burn::prelude::Device;
use burn::store::ModuleSnapshot;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrainingBackend {
    #[default]
    Cpu,
    Wgpu,
    /// Needs a build with `--features bedside-train/cuda` and the CUDA driver at run time.
    Cuda,
}

impl TrainingBackend {
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(pollster::block_on(bedside::Backend::Cpu.device())?),
            Self::Wgpu => Ok(pollster::block_on(bedside::Backend::Gpu.device())?),
            Self::Cuda => cuda(),
        }
    }
}

/// A module whose initial weights are drawn on the CPU right after seeding with `seed`, then
/// loaded into the same module built on the training `device`. A GPU draws other random numbers,
/// and burn initialises parameters lazily (at first use, after later reseeding), so this is what
/// makes a seed start at the same point on every backend.
pub fn initialised<M: ModuleSnapshot>(
    seed: u64,
    device: &Device,
    init: impl Fn(&Device) -> M,
) -> Result<M> {
    let cpu = Device::flex();
    cpu.seed(seed);
    let bytes = crate::shared::fit::weights_bytes(&init(&cpu), "initial weights")?;
    let mut module = init(device);
    crate::shared::fit::load_weights_bytes(&mut module, bytes, "initial weights")?;
    Ok(module)
}

/// CUDA device 0, after a one-element round trip: cubecl panics when there is no driver or
/// device, so the first use happens here, where the panic becomes an error.
#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    let probe = std::panic::catch_unwind(|| {
        let device = Device::cuda(0);
        let value = burn::tensor::Tensor::<1>::ones([1], &device)
            .into_data()
            .try_to_vec::<f32>()
            .ok();
        (device, value)
    });
    match probe {
        Ok((device, Some(value))) if value == [1.0] => Ok(device),
        Ok(_) => bail!("CUDA device 0 gave a wrong answer to a one-element test"),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            bail!(
                "no usable CUDA device 0: {}",
                reason.unwrap_or_else(|| "the CUDA runtime panicked".into())
            )
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    bail!(
        "this bedside-train was built without CUDA; rebuild it with `cargo build --release --workspace --features bedside-train/cuda`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let error = TrainingBackend::Cuda
            .device()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("--features bedside-train/cuda"), "{error}");
    }

    #[test]
    fn a_seed_gives_the_same_initial_weights_whatever_happens_before_first_use() -> Result<()> {
        use burn::nn::LinearConfig;
        let device = Device::flex().autodiff();
        let weights = |seed, reseed| -> Result<Vec<f32>> {
            let layer = initialised(seed, &device, |d| LinearConfig::new(4, 3).init(d))?;
            device.seed(reseed); // what a training loop does before the first forward
            layer
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow!("{e:?}"))
        };
        let (a, b, other) = (weights(7, 100)?, weights(7, 200)?, weights(8, 100)?);
        assert_eq!(a, b, "the reseeding before first use changed the weights");
        assert_ne!(a, other);
        Ok(())
    }

    #[test]
    fn backends_are_named_in_lower_case() -> Result<()> {
        #[derive(Deserialize)]
        struct Config {
            backend: TrainingBackend,
        }
        let config: Config = toml::from_str("backend = \"cuda\"")?;
        assert_eq!(config.backend, TrainingBackend::Cuda);
        assert!(toml::from_str::<Config>("backend = \"metal\"").is_err());
        Ok(())
    }
}
