"""Reference fixture for the f16 bundles (`bedside::bundle::convert_weights`): numpy's own
float32 -> float16 conversion (IEEE round to nearest, ties to even) of values chosen to hit every
case -- exact values, ties, the largest finite half, overflow to infinity, half subnormals, values
that flush to zero, signed zeros and infinities -- next to the float32 they came from.

Writes tests/fixtures/f16/reference.safetensors: `f32` (float32) and `f16` (float16, numpy's
conversion of `f32`), plus a [2, 3] tensor `matrix` in both dtypes (shape must survive).

Run:  target/pyref5/bin/python tools/f16_reference.py   (numpy + safetensors)
"""
import pathlib

import numpy as np
from safetensors.numpy import save_file

special = np.array([
    0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 65504.0, 65519.99, 65520.0, 1e6, -1e6,
    np.inf, -np.inf,
    2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 2.0 ** -26, 3 * 2.0 ** -26, 1e-8, -6e-8,
    1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 2049.0, 2051.0, 0.00006103515625,
], dtype=np.float32)
rng = np.random.default_rng(16)
spread = (rng.standard_normal(512) * 10.0 ** rng.uniform(-9, 6, 512)).astype(np.float32)
values = np.concatenate([special, spread])
matrix = np.array([[0.5, -2.25, 1e-5], [7.0, 65504.0, -0.1]], dtype=np.float32)
with np.errstate(over="ignore"):
    tensors = {
        "f32": values, "f16": values.astype(np.float16),
        "matrix_f32": matrix, "matrix_f16": matrix.astype(np.float16),
    }
path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "f16" / "reference.safetensors"
save_file(tensors, str(path))
print(f"wrote {path}")
