// The peer a web developer would pick instead of bedside: the same model and weights exported to
// ONNX (bench/onnx_export.py) and run with onnxruntime-web, measured the way bench/measure.js
// measures bedside, in Node (wasm) and in Chromium (wasm, WebGPU): the cold start (sessions
// created, first encoding), the warm encoding (ids and lab grid already built: the model part of
// `diagnose`) and greedy decoding with the key/value cache, the next token chosen on the host as
// bedside does. The answers are checked against PyTorch's first (inputs.json).
import { timing } from "./measure.js";
import { perToken, since } from "./webgpu-count.js";

/**
 * @param ort the onnxruntime-web module
 * @param fetchBytes (name) => Promise<Uint8Array> of a file in the export directory
 * @param provider "wasm" or "webgpu"
 */
export async function measureOrt({ ort, fetchBytes, provider, repeats = 15, tokens = 128, decodeRuns = 3, count = null }) {
  ort.env.wasm.numThreads = 1; // bedside's wasm is single-threaded
  const inputs = JSON.parse(new TextDecoder().decode(await fetchBytes("inputs.json")));
  const t0 = performance.now();
  const names = (kind) => Array.from({ length: inputs.layers }, (_, i) => [`${kind}_key_${i}`, `${kind}_value_${i}`]).flat();
  // On WebGPU the caches stay on the device between steps, as transformers.js keeps them; only
  // the probabilities and the logits come back.
  const onDevice = (kinds) => provider === "webgpu"
    ? { preferredOutputLocation: Object.fromEntries(kinds.flatMap(names).map((name) => [name, "gpu-buffer"])) } : {};
  const options = { executionProviders: [provider], graphOptimizationLevel: "all" };
  const encode = await ort.InferenceSession.create(await fetchBytes("encode.onnx"), { ...options, ...onDevice(["cross"]) });
  const step = await ort.InferenceSession.create(await fetchBytes("decoder_step.onnx"), { ...options, ...onDevice(["present"]) });
  const t1 = performance.now();
  // an encoding's outputs on the device are freed once a newer one replaces them
  const release = (outputs) => {
    if (provider === "webgpu") for (const name of names("cross")) outputs[name].dispose();
  };
  const int64 = (values, dims) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), dims);
  const feeds = {
    ids: int64(inputs.ids, [1, inputs.ids.length]),
    lengths: int64(inputs.lengths, [1]),
    values: new ort.Tensor("float32", Float32Array.from(inputs.values), inputs.values_shape),
    observed: new ort.Tensor("float32", Float32Array.from(inputs.observed), inputs.values_shape),
  };
  let encoded = await encode.run(feeds);
  await encoded.probabilities.getData();
  const t2 = performance.now();
  const probabilities = await encoded.probabilities.getData();
  const difference = Math.max(...inputs.expected.probabilities.map((p, i) => Math.abs(p - probabilities[i])));
  if (!(difference <= inputs.expected.tolerance)) throw new Error(`onnxruntime-web (${provider}) differs from PyTorch by ${difference}`);

  const [pastNames, presentNames] = [names("past"), names("present")];
  const decode = async (n) => {
    const cross = Object.fromEntries(names("cross").map((name) => [name, encoded[name]]));
    const empty = new ort.Tensor("float32", new Float32Array(0), [1, inputs.heads, 0, inputs.d_kv]);
    let past = Object.fromEntries(pastNames.map((name) => [name, empty]));
    let token = inputs.start_token;
    const out = [];
    for (let i = 0; i < n; i++) {
      const result = await step.run({ token: int64([token], [1, 1]), mask: encoded.mask, ...past, ...cross });
      const logits = await result.logits.getData();
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      token = best;
      out.push(best);
      if (i > 0) for (const tensor of Object.values(past)) tensor.dispose();
      past = Object.fromEntries(pastNames.map((name, j) => [name, result[presentNames[j]]]));
    }
    for (const tensor of Object.values(past)) tensor.dispose();
    return out;
  };
  const produced = await decode(inputs.expected.tokens.length);
  if (produced.join() !== inputs.expected.tokens.join()) throw new Error(`onnxruntime-web (${provider}) decodes other tokens than PyTorch`);

  for (let i = 0; i < 2; i++) {
    const warm = await encode.run(feeds);
    await warm.probabilities.getData();
    release(warm);
  }
  const encodeTimes = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    const next = await encode.run(feeds);
    await next.probabilities.getData();
    encodeTimes.push(performance.now() - start);
    release(encoded);
    encoded = next;
  }
  const decodeTimes = [];
  for (let i = 0; i < decodeRuns; i++) {
    const start = performance.now();
    await decode(tokens);
    decodeTimes.push(performance.now() - start);
  }
  const decodeTiming = timing(decodeTimes);
  let counts = null;
  if (count) {
    const counted = async (f) => {
      const before = count.snapshot();
      await f();
      return since(before, count.snapshot());
    };
    const encodeCounts = await counted(async () => {
      const outputs = await encode.run(feeds);
      await outputs.probabilities.getData();
      release(outputs);
    });
    const short = await counted(() => decode(16));
    const long = await counted(() => decode(tokens));
    counts = { encode: encodeCounts, per_token: perToken(short, long, tokens - 16) };
  }
  release(encoded);
  await encode.release();
  await step.release();
  return {
    provider,
    version: ort.env.versions?.web ?? null,
    parity: { max_abs_difference: difference, tolerance: inputs.expected.tolerance, tokens_equal: inputs.expected.tokens.length },
    cold_start: { sessions_ms: t1 - t0, first_encode_ms: t2 - t1 },
    encode_b1: timing(encodeTimes),
    decode: { tokens, timing: decodeTiming, tokens_per_s: tokens / (decodeTiming.median_ms / 1e3) },
    webgpu_counts: counts,
  };
}
