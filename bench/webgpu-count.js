// Counts what a GPU pays for, for `make bench`: compute dispatches, queue submits, buffer maps,
// pipelines and shader modules created, bytes uploaded. It wraps the WebGPU API's prototypes
// (the browser's, or Dawn's in Node), so the figures are the calls wgpu makes for bedside and hold
// on any adapter, software or hardware; bench/measure.js takes differences around each call.

const wrapped = [
  ["GPUComputePassEncoder", "dispatchWorkgroups", "dispatches"],
  ["GPUComputePassEncoder", "dispatchWorkgroupsIndirect", "dispatches"],
  ["GPUQueue", "submit", "submits"],
  ["GPUBuffer", "mapAsync", "maps"],
  ["GPUDevice", "createComputePipeline", "pipelines"],
  ["GPUDevice", "createComputePipelineAsync", "pipelines"],
  ["GPUDevice", "createShaderModule", "shader_modules"],
  ["GPUDevice", "createBuffer", "buffers"],
  ["GPUCommandEncoder", "copyBufferToBuffer", "copies"],
];

/** Patches the WebGPU classes found on `scope` (window, a worker's self, or Dawn's `globals`)
 * once, and returns the running totals; a scope without WebGPU gives a counter that stays at 0. */
export function countWebGPU(scope) {
  if (scope.__bedsideWebGPUCount) return scope.__bedsideWebGPUCount;
  const totals = { dispatches: 0, submits: 0, maps: 0, pipelines: 0, shader_modules: 0, buffers: 0, copies: 0, bytes_uploaded: 0 };
  for (const [cls, method, counter] of wrapped) {
    const proto = scope[cls]?.prototype;
    const original = proto?.[method];
    if (typeof original !== "function") continue;
    proto[method] = function (...args) {
      totals[counter] += 1;
      // a buffer created mapped is filled from the host: an upload like writeBuffer
      if (method === "createBuffer" && args[0]?.mappedAtCreation) totals.bytes_uploaded += args[0].size;
      return original.apply(this, args);
    };
  }
  const writeBuffer = scope.GPUQueue?.prototype.writeBuffer;
  if (typeof writeBuffer === "function") {
    scope.GPUQueue.prototype.writeBuffer = function (buffer, offset, data, dataOffset = 0, size) {
      const elementBytes = data.BYTES_PER_ELEMENT ?? 1;
      const elements = size ?? (data.byteLength / elementBytes - dataOffset);
      totals.bytes_uploaded += elements * elementBytes;
      return writeBuffer.apply(this, arguments);
    };
  }
  // dispatches by kernel: the pipeline's label (or its shader module's), as wgpu names it
  const kernels = {};
  const labels = new WeakMap();
  const passPipeline = new WeakMap();
  const device = scope.GPUDevice?.prototype;
  const pass = scope.GPUComputePassEncoder?.prototype;
  if (device && pass) {
    const create = device.createComputePipeline;
    device.createComputePipeline = function (descriptor) {
      const pipeline = create.call(this, descriptor);
      labels.set(pipeline, descriptor?.label || descriptor?.compute?.module?.label || "unlabelled");
      return pipeline;
    };
    const setPipeline = pass.setPipeline;
    pass.setPipeline = function (pipeline) {
      passPipeline.set(this, pipeline);
      return setPipeline.call(this, pipeline);
    };
    const dispatch = pass.dispatchWorkgroups;
    pass.dispatchWorkgroups = function (...args) {
      const label = labels.get(passPipeline.get(this)) ?? "unlabelled";
      kernels[label] = (kernels[label] ?? 0) + 1;
      return dispatch.apply(this, args);
    };
  }
  const counter = { snapshot: () => ({ ...totals }), kernels: () => ({ ...kernels }) };
  scope.__bedsideWebGPUCount = counter;
  return counter;
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
