//! A batch as the clinical model reads it: the prompt ids padded to one width with their real
//! lengths, the hourly series, and the padding mask. Both the model and its wide head read these
//! (and training builds them), so they live apart from either.

use burn::prelude::*;

/// The inputs of a batch; either part may be absent (stage 1 reads notes only, stage 2 labs only).
#[derive(Debug, Clone)]
pub struct ClinicalInput {
    /// Prompt token ids `[batch, len]` (padded at the end) and each row's real length.
    pub text: Option<(Tensor<2, Int>, Vec<usize>)>,
    /// Standardised values and observed-mask `[batch, channels, hours]`.
    pub series: Option<(Tensor<3>, Tensor<3>)>,
}

/// Pads token id rows with 0 (T5's pad) to `[rows, longest]`; returns the ids and each row's
/// real length, as [`ClinicalInput::text`] takes them.
pub fn pad_ids(rows: &[Vec<u32>], device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = vec![0i64; rows.len() * width];
    for (i, row) in rows.iter().enumerate() {
        for (j, id) in row.iter().enumerate() {
            ids[i * width + j] = i64::from(*id);
        }
    }
    let tensor = Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len() * width]), device)
        .reshape([rows.len(), width]);
    (tensor, rows.iter().map(Vec::len).collect())
}

/// `[rows, width]` mask, 1 for the first `lengths[r]` positions of row `r` (0 for rows beyond
/// `lengths`): the padding mask of ids padded by [`pad_ids`].
pub fn length_mask(lengths: &[usize], rows: usize, width: usize, device: &Device) -> Tensor<2> {
    let mask: Vec<f32> = (0..rows)
        .flat_map(|r| {
            (0..width).map(move |i| f32::from(u8::from(i < lengths.get(r).copied().unwrap_or(0))))
        })
        .collect();
    Tensor::<1>::from_data(TensorData::new(mask, [rows * width]), device).reshape([rows, width])
}
