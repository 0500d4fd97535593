// One backend's figures for `make bench`, the same code in Node (bench/wasm.mjs) and in Chromium
// (bench/page.html): cold start (`Bedside.load` whole — the module's instantiation overlapping
// the bundle's download, hash checks and the self-test — then the first diagnosis with its
// shader compilation), then warm `diagnose` latency and `explain` tokens/s; and, given the
// onnxruntime-web peer's inputs (bench/onnx_export.py's inputs.json), the model's own parts on
// those same tensors: the encoder + head and plain greedy decoding (`measureParts`). Medians with the 10th and 90th percentiles. With a WebGPU counter
// (bench/webgpu-count.js) it also counts the GPU work of each step: at load, per `diagnose`, in
// the first `explain` and per generated token (the difference between a long and a short
// `explain`, divided by the tokens between them, so the prompt's encoding cancels out).
import { adapterName, byFamily, perToken, since } from "./webgpu-count.js";

export function timing(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.round((s.length - 1) * q)];
  return { median_ms: at(0.5), p10_ms: at(0.1), p90_ms: at(0.9), runs: s.length };
}

/**
 * @param wasm the package's wasm module (bytes or URL), which `Bedside.load` instantiates
 * @param parts where given, `{ engine: () => Promise<BedsideEngine>, inputs }` for `measureParts`
 */
export async function measure({ Bedside, wasm, source, backend, record, repeats = 15, tokens = 128, explainRuns = 3, count = null, parts = null }) {
  const snap = () => count?.snapshot();
  const c0 = snap();
  const t1 = performance.now();
  const model = await Bedside.load(source, { backend, cache: false, wasm });
  const t2 = performance.now();
  await model.diagnose(record);
  const t3 = performance.now();
  const c1 = snap();
  // warm: V8 compiles the module's hot functions with its optimising tier over the first tens of
  // calls (the cold start above is the first call's figure)
  for (let i = 0; i < 20; i++) await model.diagnose(record);
  let counts = null;
  if (count) {
    const before = snap();
    await model.diagnose(record);
    const diagnose = since(before, snap());
    const explainCounted = async (maxTokens) => {
      const start = snap();
      const kernels = count.kernels();
      let produced = 0;
      for await (const piece of model.explain(record, { maxTokens })) if (typeof piece !== "string") produced = piece.tokens;
      return { counts: since(start, snap()), kernels: byFamily(kernels, count.kernels()), tokens: produced };
    };
    const first = await explainCounted(tokens);
    const short = await explainCounted(16);
    const long = await explainCounted(tokens);
    const span = long.tokens - short.tokens;
    counts = {
      load_and_first_diagnose: since(c0, c1), diagnose, first_explain: first.counts,
      per_token: perToken(short.counts, long.counts, span), per_token_by_kernel: perToken(short.kernels, long.kernels, span),
      tokens_span: [short.tokens, long.tokens],
    };
  }
  const diagnose = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await model.diagnose(record);
    diagnose.push(performance.now() - start);
  }
  const explain = [];
  let produced = 0;
  const firstPiece = [];
  for (let i = 0; i < explainRuns; i++) {
    const start = performance.now();
    let first;
    for await (const piece of model.explain(record, { maxTokens: tokens })) {
      first ??= performance.now() - start;
      if (typeof piece !== "string") produced = piece.tokens;
    }
    explain.push(performance.now() - start);
    firstPiece.push(first);
  }
  const explainTiming = timing(explain);
  const result = {
    backend: model.backend,
    cold_start: { load_ms: t2 - t1, first_diagnose_ms: t3 - t2 },
    diagnose_b1: timing(diagnose),
    explain: {
      tokens: produced,
      timing: explainTiming,
      first_piece: timing(firstPiece),
      tokens_per_s: produced / (explainTiming.median_ms / 1e3),
    },
    webgpu_counts: counts,
    adapter: backend === "webgpu" ? adapterName(await globalThis.navigator?.gpu?.requestAdapter()) : null,
  };
  model.dispose();
  if (parts) result.parts = await measureParts({ engine: await parts.engine(), inputs: parts.inputs, repeats, tokens, decodeRuns: explainRuns });
  return result;
}

/**
 * The model's own work on the tensors the onnxruntime-web peer reads (`inputs`: bench/onnx_export.py's
 * inputs.json), timed as bench/ort-measure.js times the peer: the encoder + phenotype head with the
 * probabilities read back, and greedy decoding of `tokens` tokens without a constraint. Both are
 * checked against PyTorch's answers first (the probabilities within the export's tolerance, the
 * same greedy tokens).
 * @param engine a BedsideEngine (the wasm-bindgen class) on the backend being measured
 */
export async function measureParts({ engine, inputs, repeats = 15, tokens = 128, decodeRuns = 3 }) {
  engine.prepareParts(Uint32Array.from(inputs.ids), Float32Array.from(inputs.values), Float32Array.from(inputs.observed));
  const probabilities = await engine.encodeParts();
  const difference = Math.max(...inputs.expected.probabilities.map((p, i) => Math.abs(p - probabilities[i])));
  if (!(difference <= inputs.expected.tolerance)) throw new Error(`bedside's encoder + head differs from PyTorch by ${difference}`);
  const produced = await engine.decodeParts(inputs.expected.tokens.length);
  if (Array.from(produced).join() !== inputs.expected.tokens.join()) throw new Error("bedside decodes other tokens than PyTorch");
  for (let i = 0; i < 20; i++) await engine.encodeParts();
  const encodeTimes = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await engine.encodeParts();
    encodeTimes.push(performance.now() - start);
  }
  await engine.decodeParts(tokens);
  const decodeTimes = [];
  for (let i = 0; i < decodeRuns; i++) {
    const start = performance.now();
    await engine.decodeParts(tokens);
    decodeTimes.push(performance.now() - start);
  }
  const decodeTiming = timing(decodeTimes);
  engine.free();
  return {
    parity: { max_abs_difference: difference, tolerance: inputs.expected.tolerance, tokens_equal: inputs.expected.tokens.length },
    encode_b1: timing(encodeTimes),
    decode: { tokens, timing: decodeTiming, tokens_per_s: tokens / (decodeTiming.median_ms / 1e3) },
  };
}
