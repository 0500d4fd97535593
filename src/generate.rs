//! Decoding for the T5 decoder: greedy and beam search, with the key/value cache, a maximum
//! length, a stop at EOS, a per-token callback for streaming, and an optional constraint on the
//! next token (constrained decoding of label names). Read-backs are asynchronous (synchronous
//! read-back panics on wasm). Greedy decoding without a constraint picks the next token on the
//! device and reads back one id per row; with the cache, the next step reads those ids where they
//! are, so a step uploads nothing and maps one small buffer. Constrained decoding and beam
//! search read the logits back and choose on the host: sorting is not available on WebGPU in burn
//! on wasm. One sequence on the CPU decodes through bedside-cpu's allocation-free step
//! ([`HostDecoder`]) instead of burn's operations.

use burn::prelude::*;

use crate::error::{BedsideError, Result};
use crate::model::t5::{DecoderCache, HostDecoder, T5};
use bedside_cpu::t5_step::DecoderState;
use std::borrow::Cow;

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Maximum number of generated tokens (the start token not counted).
    pub max_new_tokens: usize,
    /// 1 = greedy.
    pub beams: usize,
    /// Beam scores are divided by `length ^ length_penalty` (transformers' convention).
    pub length_penalty: f32,
    /// Use the key/value cache (off only to measure its gain).
    pub use_cache: bool,
    /// Decode one sequence on the CPU through bedside-cpu's step (off only to compare it with
    /// burn's operations).
    pub host_step: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 128,
            beams: 1,
            length_penalty: 1.0,
            use_cache: true,
            host_step: true,
        }
    }
}

/// Limits the next token given the tokens generated so far (start token excluded): `None` allows
/// every token.
pub type Constraint<'a> = &'a dyn Fn(&[u32]) -> Option<Vec<u32>>;

/// Log-probabilities of one row of logits, with disallowed tokens at -inf.
fn log_probs(logits: &[f32], allowed: Option<Vec<u32>>) -> Vec<f32> {
    let mut out = vec![f32::NEG_INFINITY; logits.len()];
    let mut keep = |i: usize| {
        if let Some(v) = logits.get(i) {
            out[i] = *v;
        }
    };
    match allowed {
        Some(tokens) => tokens.iter().for_each(|t| keep(*t as usize)),
        None => (0..logits.len()).for_each(&mut keep),
    }
    // the logits are finite (`check_finite` refuses any other); -inf marks a disallowed token
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max); // nan-ok: finite or -inf
    if max.is_finite() {
        let log_sum = out.iter().map(|v| (v - max).exp()).sum::<f32>().ln() + max;
        out.iter_mut().for_each(|v| *v -= log_sum);
    }
    out
}

/// The first of the largest finite values, as the device's argmax and transformers pick it.
fn argmax(values: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        if best.is_none_or(|(_, b)| *v > b) {
            best = Some((i, *v));
        }
    }
    best.map(|(i, _)| i as u32)
}

/// A NaN or infinite logit is a broken backend: said, never decoded around.
fn check_finite(logits: &[f32]) -> Result<()> {
    match logits.iter().all(|v| v.is_finite()) {
        true => Ok(()),
        false => Err(BedsideError::backend(
            "readback",
            "the model returned a non-finite logit",
        )),
    }
}

/// Reads logits `[rows, vocab]` back to the host.
async fn read_logits(logits: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, vocab] = logits.dims();
    let data = logits
        .into_data_async()
        .await
        .map_err(|e| BedsideError::backend("readback", format!("{e:?}")))?;
    let values = data
        .try_to_vec::<f32>()
        .map_err(|e| BedsideError::backend("readback", format!("{e:?}")))?;
    check_finite(&values)?;
    Ok(values.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
}

/// Reads token ids `[rows, 1]` back to the host.
async fn read_ids(ids: Tensor<2, Int>) -> Result<Vec<u32>> {
    let data = ids
        .into_data_async()
        .await
        .map_err(|e| BedsideError::backend("readback", format!("{e:?}")))?;
    data.iter::<i64>()
        .map(|id| {
            u32::try_from(id)
                .map_err(|_| BedsideError::backend("readback", format!("token id {id}")))
        })
        .collect()
}

/// The decoder's logits for the next position of every row of `tokens` (start token first).
struct Stepper<'a> {
    model: &'a T5,
    encoder: Tensor<3>,
    mask: Tensor<2>,
    cache: DecoderCache,
    use_cache: bool,
}

impl Stepper<'_> {
    /// The ids `[rows, width]` the next step reads: each row's last token with the cache, all of
    /// them without.
    fn ids(&self, tokens: &[Vec<u32>]) -> Tensor<2, Int> {
        let width = if self.use_cache {
            1
        } else {
            tokens.first().map_or(0, Vec::len)
        };
        let ids: Vec<i64> = tokens
            .iter()
            .flat_map(|row| row[row.len() - width..].iter().map(|t| *t as i64))
            .collect();
        Tensor::<1, Int>::from_data(
            TensorData::new(ids, [tokens.len() * width]),
            &self.encoder.device(),
        )
        .reshape([tokens.len(), width])
    }

    /// The logits `[rows, vocab]` of the next position, on the device.
    fn logits(&mut self, ids: Tensor<2, Int>) -> Tensor<2> {
        let logits = if self.use_cache {
            self.model
                .decode(ids, &self.encoder, &self.mask, &mut self.cache)
        } else {
            self.model
                .decode(ids, &self.encoder, &self.mask, &mut DecoderCache::default())
        };
        let [rows, len, vocab] = logits.dims();
        logits.narrow(1, len - 1, 1).reshape([rows, vocab])
    }

    /// The next position's logits of every row of `tokens` (start token first), on the host.
    async fn next(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let ids = self.ids(tokens);
        read_logits(self.logits(ids)).await
    }
}

/// bedside-cpu's decoder for the one sequence of `encoder`, where it applies (burn's CPU
/// backend, no autodiff): `packed` where the caller keeps one (the engine packs it at load),
/// else packed now; with room for `capacity` positions (the caches grow past it).
fn host_decoder<'a>(
    model: &T5,
    packed: Option<&'a HostDecoder>,
    encoder: &Tensor<3>,
    mask: &Tensor<2>,
    capacity: usize,
) -> Result<Option<(Cow<'a, HostDecoder>, DecoderState)>> {
    let decoder = match packed {
        Some(decoder) => Cow::Borrowed(decoder),
        None => match HostDecoder::new(model).transpose()? {
            Some(decoder) => Cow::Owned(decoder),
            None => return Ok(None),
        },
    };
    let state = decoder.start(model, encoder, mask, capacity).transpose()?;
    Ok(state.map(|state| (decoder, state)))
}

/// Room the host step's caches start with: a generation longer than this grows them.
const HOST_STEP_ROOM: usize = 1024;

/// Greedy decoding of every row of `encoder` (`[batch, len, d_model]`, padding `mask`
/// `[batch, len]`). `on_token(row, token)` sees each token as it is chosen and returns whether to
/// go on: `false` stops decoding after this step (a caller that was cancelled). Returns the
/// generated tokens of each row, without the start token, ending with EOS unless
/// `max_new_tokens` ran out or `on_token` stopped it. `packed`: the model's decoder packed for
/// the CPU step where the caller keeps one (else a batch of one on the CPU packs it here).
#[expect(
    clippy::too_many_arguments,
    reason = "the decoding inputs as burn passes them; a struct would only rename them"
)]
pub async fn greedy(
    model: &T5,
    packed: Option<&HostDecoder>,
    encoder: Tensor<3>,
    mask: Tensor<2>,
    start: u32,
    eos: u32,
    options: &GenerateOptions,
    constraint: Option<Constraint<'_>>,
    on_token: &mut dyn FnMut(usize, u32) -> bool,
) -> Result<Vec<Vec<u32>>> {
    let rows = encoder.dims()[0];
    let mut host = match rows == 1 && options.use_cache && options.host_step {
        true => host_decoder(
            model,
            packed,
            &encoder,
            &mask,
            options.max_new_tokens.min(HOST_STEP_ROOM) + 1,
        )?,
        false => None,
    };
    let mut stepper = Stepper {
        model,
        encoder,
        mask,
        cache: DecoderCache::default(),
        use_cache: options.use_cache,
    };
    let mut tokens = vec![vec![start]; rows];
    let mut done = vec![false; rows];
    let mut stopped = false;
    // the ids chosen on the device at the previous step, which the next one reads with the cache
    let mut chosen: Option<Tensor<2, Int>> = None;
    for _ in 0..options.max_new_tokens {
        yield_to_host().await;
        let next: Vec<u32> = match (&mut host, constraint) {
            (Some((decoder, state)), _) => {
                let last = tokens[0].last().copied().unwrap_or(start);
                let logits = decoder.step(state, last)?;
                check_finite(logits)?;
                let allowed = constraint.map(|c| c(&tokens[0][1..]));
                let best = match allowed {
                    None => argmax(logits),
                    Some(allowed) => argmax(&log_probs(logits, allowed)),
                };
                vec![best.unwrap_or(eos)]
            }
            (None, None) => {
                let ids = match chosen.take() {
                    Some(ids) if options.use_cache => ids,
                    _ => stepper.ids(&tokens),
                };
                let best = stepper.logits(ids).argmax(1);
                let next = read_ids(best.clone()).await?;
                chosen = Some(best);
                next
            }
            (None, Some(c)) => stepper
                .next(&tokens)
                .await?
                .iter()
                .enumerate()
                .map(|(row, logits)| {
                    argmax(&log_probs(logits, c(&tokens[row][1..]))).unwrap_or(eos)
                })
                .collect(),
        };
        for (row, token) in next.into_iter().enumerate() {
            // finished rows keep decoding (batch shapes stay fixed) but their tokens are dropped
            let token = match done[row] {
                true => eos,
                false => token,
            };
            if !done[row] {
                stopped |= !on_token(row, token);
            }
            done[row] |= token == eos;
            tokens[row].push(token);
        }
        if stopped || done.iter().all(|d| *d) {
            break;
        }
    }
    Ok(tokens
        .into_iter()
        .map(|row| {
            let end = row
                .iter()
                .skip(1)
                .position(|t| *t == eos)
                .map_or(row.len(), |i| i + 2);
            row[1..end].to_vec()
        })
        .collect())
}

/// Lets the host run between tokens. On wasm the CPU backend's read-backs complete at once, so
/// without this a whole generation runs in one task: the page would not repaint and a stream's
/// consumer would see every piece at the end. Each token it yields to the event loop through a
/// `MessageChannel` message (a macrotask without the 1–4 ms clamp of `setTimeout`; the port is
/// closed when the message arrives); where there is none, through `setTimeout`. Natively it does
/// nothing.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn yield_to_host() {
    use wasm_bindgen::{JsCast, JsValue, closure::Closure};
    fn get(object: &JsValue, key: &str) -> Option<JsValue> {
        js_sys::Reflect::get(object, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined())
    }
    fn function(object: &JsValue, key: &str) -> Option<js_sys::Function> {
        get(object, key).and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    }
    let promise = js_sys::Promise::new(&mut |resolve: js_sys::Function, _| {
        let global = js_sys::global();
        let channel = function(&global, "MessageChannel")
            .and_then(|c| js_sys::Reflect::construct(&c, &js_sys::Array::new()).ok());
        if let Some((port1, port2)) =
            channel.and_then(|c| Some((get(&c, "port1")?, get(&c, "port2")?)))
        {
            let receiver = port1.clone();
            let done = resolve.clone();
            let on_message = Closure::once_into_js(move |_: JsValue| {
                if let Some(close) = function(&receiver, "close") {
                    let _ = close.call0(&receiver);
                }
                let _ = done.call0(&JsValue::NULL);
            });
            let posted = js_sys::Reflect::set(&port1, &JsValue::from_str("onmessage"), &on_message)
                .unwrap_or(false)
                && function(&port2, "postMessage")
                    .is_some_and(|post| post.call1(&port2, &JsValue::NULL).is_ok());
            if posted {
                return;
            }
        }
        let scheduled = function(&global, "setTimeout")
            .is_some_and(|f| f.call2(&global, &resolve, &0.into()).is_ok());
        if !scheduled {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn yield_to_host() {}

/// A beam hypothesis: tokens (start first) and summed log-probability.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    log_prob: f32,
}

/// Beam search for one encoded input (`encoder`: `[1, len, d_model]`). Returns the best
/// hypothesis (without the start token) and its length-normalised score.
pub async fn beam_search(
    model: &T5,
    encoder: Tensor<3>,
    mask: Tensor<2>,
    start: u32,
    eos: u32,
    options: &GenerateOptions,
    constraint: Option<Constraint<'_>>,
) -> Result<(Vec<u32>, f32)> {
    let beams = options.beams.max(1);
    let device = encoder.device();
    let normalise = |h: &Hypothesis| {
        h.log_prob / ((h.tokens.len() - 1).max(1) as f32).powf(options.length_penalty)
    };
    let first = Tensor::<1, Int>::zeros([1], &device);
    let (encoder, mask) = (encoder.select(0, first.clone()), mask.select(0, first));
    let mut stepper = Stepper {
        model,
        encoder: encoder.clone(),
        mask: mask.clone(),
        cache: DecoderCache::default(),
        use_cache: options.use_cache,
    };
    let mut alive = vec![Hypothesis {
        tokens: vec![start],
        log_prob: 0.0,
    }];
    let mut finished: Vec<Hypothesis> = Vec::new();
    for step in 0..options.max_new_tokens {
        yield_to_host().await;
        let tokens: Vec<Vec<u32>> = alive.iter().map(|h| h.tokens.clone()).collect();
        let logits = stepper.next(&tokens).await?;
        let mut candidates: Vec<(usize, u32, f32)> = Vec::new();
        for (i, row) in logits.iter().enumerate() {
            let allowed = constraint.and_then(|c| c(&alive[i].tokens[1..]));
            let lp = log_probs(row, allowed);
            let mut best: Vec<(u32, f32)> = lp
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| (t as u32, *v))
                .collect();
            best.sort_by(|a, b| b.1.total_cmp(&a.1));
            best.truncate(2 * beams);
            candidates.extend(best.into_iter().map(|(t, v)| (i, t, alive[i].log_prob + v)));
        }
        candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut next = Vec::new();
        let mut parents = Vec::new();
        for (parent, token, log_prob) in candidates {
            let mut tokens = alive[parent].tokens.clone();
            tokens.push(token);
            let h = Hypothesis { tokens, log_prob };
            if token == eos || step + 1 == options.max_new_tokens {
                finished.push(h);
            } else if next.len() < beams {
                next.push(h);
                parents.push(parent as i64);
            }
            if next.len() == beams && finished.len() >= beams {
                break;
            }
        }
        finished.sort_by(|a, b| normalise(b).total_cmp(&normalise(a)));
        finished.truncate(beams);
        // done when no live hypothesis can still beat the worst kept finished one
        let worst = finished.last().map(normalise);
        let best_alive = next.iter().map(normalise).fold(f32::NEG_INFINITY, f32::max); // nan-ok: a stop rule
        if next.is_empty() || (finished.len() == beams && worst.is_some_and(|w| w >= best_alive)) {
            break;
        }
        // every hypothesis reads the same input; the cache follows each one's parent
        let zeros = Tensor::<1, Int>::zeros([next.len()], &device);
        stepper.encoder = encoder.clone().select(0, zeros.clone());
        stepper.mask = mask.clone().select(0, zeros);
        if options.use_cache {
            let parents = TensorData::new(parents, [next.len()]);
            stepper.cache = stepper.cache.select(Tensor::from_data(parents, &device));
        }
        alive = next;
    }
    let best = finished
        .into_iter()
        .max_by(|a, b| normalise(a).total_cmp(&normalise(b)));
    match best {
        Some(h) => {
            let score = normalise(&h);
            Ok((h.tokens[1..].to_vec(), score))
        }
        None => Ok((Vec::new(), f32::NEG_INFINITY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probs_respect_the_constraint() {
        let lp = log_probs(&[1.0, 2.0, 3.0], Some(vec![0, 1]));
        assert!(lp[2].is_infinite());
        let total: f32 = lp.iter().filter(|v| v.is_finite()).map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&lp), Some(1));
        // ties go to the first, as on the device
        assert_eq!(argmax(&[0.5, 2.0, 2.0, f32::NAN]), Some(1));
        // an out-of-vocabulary allowed token is ignored, not a panic
        assert_eq!(argmax(&log_probs(&[0.5], Some(vec![7]))), None);
    }
}
