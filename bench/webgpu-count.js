// Counts what a GPU pays for, for `make bench`: compute dispatches, queue submits, buffer maps,
// pipelines and shader modules created, bytes uploaded. It wraps the WebGPU API's prototypes
// (the browser's, or Dawn's in Node), so the figures are the calls wgpu makes for bedside, whatever
// the adapter does with them; bench/measure.js takes differences around each call.

const wrapped = [
  ["GPUComputePassEncoder", "dispatchWorkgroupsIndirect", "dispatches"],
  ["GPUQueue", "submit", "submits"],
  ["GPUBuffer", "mapAsync", "maps"],
  ["GPUDevice", "createComputePipelineAsync", "pipelines"],
  ["GPUDevice", "createShaderModule", "shader_modules"],
  ["GPUDevice", "createBuffer", "buffers"],
  ["GPUCommandEncoder", "copyBufferToBuffer", "copies"],
];

/** Patches the WebGPU classes found on `scope` (window, a worker's self, or Dawn's `globals`)
 * once, and returns the running totals and the dispatches by kernel (the pipeline's label, or its
 * shader module's, as wgpu names it); a scope without WebGPU gives a counter that stays at 0. */
export function countWebGPU(scope) {
  if (scope.__bedsideWebGPUCount) return scope.__bedsideWebGPUCount;
  const totals = { dispatches: 0, submits: 0, maps: 0, pipelines: 0, shader_modules: 0, buffers: 0, copies: 0, bytes_uploaded: 0 };
  const patch = (cls, method, wrap) => {
    const proto = scope[cls]?.prototype;
    const original = proto?.[method];
    if (typeof original === "function") proto[method] = wrap(original);
  };
  for (const [cls, method, counter] of wrapped) {
    patch(cls, method, (original) => function (...args) {
      totals[counter] += 1;
      // a buffer created mapped is filled from the host: an upload like writeBuffer
      if (method === "createBuffer" && args[0]?.mappedAtCreation) totals.bytes_uploaded += args[0].size;
      return original.apply(this, args);
    });
  }
  patch("GPUQueue", "writeBuffer", (original) => function (buffer, offset, data, dataOffset = 0, size) {
    const elementBytes = data.BYTES_PER_ELEMENT ?? 1;
    totals.bytes_uploaded += (size ?? data.byteLength / elementBytes - dataOffset) * elementBytes;
    return original.apply(this, arguments);
  });
  const kernels = {};
  const labels = new WeakMap();
  const passPipeline = new WeakMap();
  patch("GPUDevice", "createComputePipeline", (original) => function (descriptor) {
    totals.pipelines += 1;
    const pipeline = original.call(this, descriptor);
    labels.set(pipeline, descriptor?.label || descriptor?.compute?.module?.label || "unlabelled");
    return pipeline;
  });
  patch("GPUComputePassEncoder", "setPipeline", (original) => function (pipeline) {
    passPipeline.set(this, pipeline);
    return original.call(this, pipeline);
  });
  patch("GPUComputePassEncoder", "dispatchWorkgroups", (original) => function (...args) {
    totals.dispatches += 1;
    const label = labels.get(passPipeline.get(this)) ?? "unlabelled";
    kernels[label] = (kernels[label] ?? 0) + 1;
    return original.apply(this, args);
  });
  const counter = { snapshot: () => ({ ...totals }), kernels: () => ({ ...kernels }) };
  scope.__bedsideWebGPUCount = counter;
  return counter;
}

/** An adapter's name as the reports print it (vendor, architecture, description). */
export function adapterName(adapter) {
  const info = adapter?.info ?? {};
  return adapter ? [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter" : null;
}

/** Each count per generated token: the difference between a `long` and a `short` run, divided by
 * the `span` of tokens between them (null when there is none). */
export function perToken(short, long, span) {
  return span > 0 ? Object.fromEntries(Object.entries(long).map(([k, v]) => [k, (v - (short[k] ?? 0)) / span])) : null;
}

/** Dispatches by kernel family (cubecl's kernel name without its type and size parameters:
 * `kernel_binop_c_f32_n_4_2672c636` -> `kernel_binop`) between two `kernels()` readings. */
export function byFamily(before, after) {
  const out = {};
  for (const [label, n] of Object.entries(after)) {
    const family = label.match(/^(.*?)_(?:t|e|c|f|i|b|in|lhs)_/)?.[1] ?? label;
    out[family] = (out[family] ?? 0) + n - (before[label] ?? 0);
  }
  return Object.fromEntries(Object.entries(out).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]));
}

/** What happened between two snapshots. */
export function since(before, after) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
}
