//! A bundle's safetensors files: read once on load (each tensor checked against the manifest's
//! dtype and widened to f32 as it is taken out), and rewritten in another dtype on export.

use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::WeightsDtype;
use crate::error::{BedsideError, Result};
use crate::files::WEIGHTS_FILE;

/// The tensors of one weights file in f32, parsed once; [`Weights::apply_to`] loads them into a
/// model.
pub struct Weights {
    file: &'static str,
    tensors: Vec<PackTensor>,
}

impl Weights {
    /// Parses `bytes` (the file `file`): every tensor must be in `dtype`, the manifest's.
    pub fn read(bytes: &[u8], dtype: WeightsDtype, file: &'static str) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| BedsideError::bundle(file, e))?;
        let expected = dtype.safetensors();
        let tensors = tensors
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                if view.dtype() != expected {
                    return Err(BedsideError::bundle(
                        file,
                        format!(
                            "tensor {name} is {:?}, the manifest says {dtype}",
                            view.dtype()
                        ),
                    ));
                }
                let values = f32_values(view.data(), expected);
                let data = TensorData::new(values, view.shape().to_vec());
                Ok(burn::store::bridge::from_data(data, name, None))
            })
            .collect::<Result<_>>()?;
        Ok(Self { file, tensors })
    }

    /// Loads the tensors into `model`; every parameter of the model must be among them.
    pub fn apply_to<M: ModuleSnapshot>(self, model: &mut M) -> Result<()> {
        let applied = model.apply(self.tensors, None, None, false);
        if !applied.errors.is_empty() || !applied.missing.is_empty() {
            let missing: Vec<&str> = applied.missing.iter().map(|(p, _)| p.as_str()).collect();
            return Err(BedsideError::bundle(
                self.file,
                format!(
                    "does not fit {}: missing {:?}, errors {:?}",
                    crate::files::MANIFEST_FILE,
                    missing,
                    applied.errors
                ),
            ));
        }
        Ok(())
    }
}

/// Little-endian f32 or f16 bytes as f32 values (f16 through `half`'s slice conversion).
fn f32_values(bytes: &[u8], dtype: Dtype) -> Vec<f32> {
    match dtype {
        Dtype::F16 => {
            let halves: Vec<half::f16> = bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
                .collect();
            let mut out = vec![0.0f32; halves.len()];
            half::slice::HalfFloatSliceExt::convert_to_f32_slice(halves.as_slice(), &mut out);
            out
        }
        _ => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    }
}

/// Rewrites an f32 or f16 safetensors file with every tensor in `dtype`.
pub fn convert_weights(bytes: &[u8], dtype: WeightsDtype) -> Result<Vec<u8>> {
    let file = |e: safetensors::SafeTensorError| BedsideError::bundle(WEIGHTS_FILE, e);
    let tensors = SafeTensors::deserialize(bytes).map_err(file)?;
    let target = dtype.safetensors();
    let mut converted: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let data = view.data();
        let out = match (view.dtype(), target) {
            (a, b) if a == b => data.to_vec(),
            (Dtype::F32, Dtype::F16) => data
                .chunks_exact(4)
                .flat_map(|b| {
                    half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes()
                })
                .collect(),
            (Dtype::F16, Dtype::F32) => data
                .chunks_exact(2)
                .flat_map(|b| {
                    half::f16::from_le_bytes([b[0], b[1]])
                        .to_f32()
                        .to_le_bytes()
                })
                .collect(),
            (from, _) => {
                return Err(BedsideError::bundle(
                    WEIGHTS_FILE,
                    format!("tensor {name} is {from:?}; f32 or f16 expected"),
                ));
            }
        };
        converted.push((name, view.shape().to_vec(), out));
    }
    let views: Vec<(String, TensorView<'_>)> = converted
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(target, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(file)
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(file)
}
