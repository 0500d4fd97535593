//! Range checks for every number a bundle manifest or a HuggingFace `config.json` gives a model,
//! run before any module is built. burn asserts on bad configurations (a dropout rate outside
//! `[0, 1)`, a norm epsilon that is not positive) and divides by head counts; a value from a file
//! must never reach those, on wasm a panic kills the module. Errors name the field.

use super::series::SeriesEncoderConfig;
use super::t5::T5Config;

/// `Err` holds the field (relative to the config checked) and what is wrong with it.
pub type Checked = std::result::Result<(), String>;

/// A size: at least 1, at most `max` (bounds keep a hostile file from allocating without limit).
pub fn size(field: &str, value: usize, max: usize) -> Checked {
    if value == 0 || value > max {
        return Err(format!("{field} = {value} is outside 1..={max}"));
    }
    Ok(())
}

/// A dropout rate: finite, in `[0, 1)`.
pub fn rate(field: &str, value: f64) -> Checked {
    if !(value.is_finite() && (0.0..1.0).contains(&value)) {
        return Err(format!("{field} = {value} is not a dropout rate in [0, 1)"));
    }
    Ok(())
}

/// A normalisation epsilon: finite, in `(0, 1]`.
pub fn epsilon(field: &str, value: f64) -> Checked {
    if !(value.is_finite() && value > 0.0 && value <= 1.0) {
        return Err(format!("{field} = {value} is not an epsilon in (0, 1]"));
    }
    Ok(())
}

/// A head count that splits a width evenly (both already checked as sizes); the error names the
/// head count's field.
pub fn heads(field: &str, heads: usize, width_field: &str, width: usize) -> Checked {
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(format!(
            "{field} = {heads} does not divide {width_field} = {width}"
        ));
    }
    Ok(())
}

/// A token id inside the vocabulary.
pub fn token(field: &str, id: usize, vocab_size: usize) -> Checked {
    if id >= vocab_size {
        return Err(format!(
            "{field} = {id} is outside the vocabulary (vocab_size {vocab_size})"
        ));
    }
    Ok(())
}

impl T5Config {
    /// Every field in range; the one set of bounds for bundles and imported checkpoints.
    pub fn check(&self) -> Checked {
        size("vocab_size", self.vocab_size, 1 << 18)?;
        size("d_model", self.d_model, 4096)?;
        size("d_kv", self.d_kv, 1024)?;
        size("d_ff", self.d_ff, 16384)?;
        size("num_layers", self.num_layers, 64)?;
        size("num_decoder_layers", self.num_decoder_layers, 64)?;
        size("num_heads", self.num_heads, 128)?;
        size(
            "relative_attention_num_buckets",
            self.relative_attention_num_buckets,
            1024,
        )?;
        if self.relative_attention_num_buckets < 4 {
            return Err("relative_attention_num_buckets must be at least 4".into());
        }
        size(
            "relative_attention_max_distance",
            self.relative_attention_max_distance,
            1 << 20,
        )?;
        epsilon("layer_norm_epsilon", self.layer_norm_epsilon)?;
        rate("dropout_rate", self.dropout_rate)?;
        token("pad_token_id", self.pad_token_id, self.vocab_size)?;
        token("eos_token_id", self.eos_token_id, self.vocab_size)?;
        token(
            "decoder_start_token_id",
            self.decoder_start_token_id,
            self.vocab_size,
        )
    }
}

impl SeriesEncoderConfig {
    /// Every field in range, and at least one patch fits the window.
    pub fn check(&self) -> Checked {
        size("hours", self.hours, 24 * 31)?;
        size("patch_len", self.patch_len, self.hours)?;
        size("stride", self.stride, self.hours)?;
        size("d_model", self.d_model, 4096)?;
        size("n_heads", self.n_heads, 128)?;
        heads("n_heads", self.n_heads, "d_model", self.d_model)?;
        size("n_layers", self.n_layers, 64)?;
        size("d_ff", self.d_ff, 16384)?;
        rate("dropout", self.dropout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_names_its_field() {
        let t5 = T5Config::new(100);
        assert_eq!(t5.check(), Ok(()));
        for (bad, field) in [
            (t5.clone().with_dropout_rate(1.0), "dropout_rate"),
            (t5.clone().with_dropout_rate(-0.1), "dropout_rate"),
            (t5.clone().with_dropout_rate(f64::NAN), "dropout_rate"),
            (
                t5.clone().with_layer_norm_epsilon(0.0),
                "layer_norm_epsilon",
            ),
            (
                t5.clone().with_layer_norm_epsilon(-1e-6),
                "layer_norm_epsilon",
            ),
            (
                t5.clone().with_decoder_start_token_id(100),
                "decoder_start_token_id",
            ),
            (t5.clone().with_eos_token_id(1000), "eos_token_id"),
            (t5.clone().with_num_heads(0), "num_heads"),
            (
                t5.clone().with_relative_attention_max_distance(0),
                "relative_attention_max_distance",
            ),
        ] {
            let e = bad.check().unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
        let series = SeriesEncoderConfig::new(40);
        assert_eq!(series.check(), Ok(()));
        for (bad, field) in [
            (series.clone().with_patch_len(0), "patch_len"),
            (series.clone().with_stride(0), "stride"),
            (series.clone().with_n_heads(0), "n_heads"),
            (series.clone().with_n_heads(3), "n_heads"),
            (series.clone().with_dropout(1.5), "dropout"),
        ] {
            let e = bad.check().unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
