// The wasm package in Node on WebGPU: Dawn (npm `webgpu`) over a CPU Vulkan driver gives Node a
// WebGPU adapter; the wgpu path must give the CPU's numbers.
//
// Dawn needs Vulkan features that Debian 12's lavapipe (Mesa 22.3) lacks, so the tests point it
// at the SwiftShader Vulkan driver that Debian's chromium ships (VK_ICD_FILENAMES, set by
// `make test`). Where neither gives an adapter, the test says so and skips, unless the layer is
// required (`layerUnavailable` in helpers.mjs: under CI), where it fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, globals } from "webgpu";
import { Bedside, webgpuAvailable } from "../../pkg/bedside.js";
import path from "node:path";
import { GPU_TOLERANCE, assertSameProbabilities, assertSameRisk, labBundleDir, layerUnavailable, mortalityDir, root, samples } from "./helpers.mjs";

Object.assign(globalThis, globals);
globalThis.navigator ??= {};
globalThis.navigator.gpu = create([]);
// wgpu's web backend looks for `Window` (or `WorkerGlobalScope`) on the global object.
globalThis.Window ??= class Window {};
// keep a handle on the device wgpu creates, as a driver reset would take it away
let testDevice;
// Dawn's adapter here is SwiftShader, a software renderer that "auto" passes over; where a test
// needs "auto" to try WebGPU, the adapter describes itself as a hardware GPU
let pretendHardware = false;
let devicesRequested = 0;
const requestAdapter = navigator.gpu.requestAdapter.bind(navigator.gpu);
navigator.gpu.requestAdapter = async (...args) => {
  const adapter = await requestAdapter(...args);
  const requestDevice = adapter?.requestDevice.bind(adapter);
  if (adapter) {
    adapter.requestDevice = async (...o) => {
      devicesRequested += 1;
      return (testDevice = await requestDevice(...o));
    };
  }
  if (adapter && pretendHardware) {
    const { vendor } = adapter.info;
    Object.defineProperty(adapter, "info", { value: { vendor, architecture: "test", device: "test", description: "a hardware GPU, as the test pretends", isFallbackAdapter: false } });
  }
  return adapter;
};

// GPU float reductions run in another order than the CPU's.
const TOLERANCE = GPU_TOLERANCE;

test("wasm on WebGPU gives the CPU's probabilities", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  const gpu = await Bedside.load(labBundleDir, { backend: "webgpu" });
  const cpu = await Bedside.load(labBundleDir, { backend: "cpu" });
  assert.equal(gpu.backend, "webgpu");
  for (const record of samples.slice(0, 3)) {
    const worst = assertSameProbabilities(await gpu.diagnose(record), await cpu.diagnose(record), TOLERANCE);
    console.log(`# ${record.id}: max |webgpu - cpu| = ${worst.toExponential(2)}`);
  }
  // "auto" passes over a software renderer, and says so; on a hardware adapter it takes WebGPU
  const software = await Bedside.load(labBundleDir, { backend: "auto" });
  assert.equal(software.backend, "cpu");
  assert.match(software.fallbackReason, /^the WebGPU adapter \(google swiftshader.*\) is a software renderer, slower than the CPU$/);
  pretendHardware = true;
  try {
    const auto = await Bedside.load(labBundleDir, { backend: "auto", probe: false });
    assert.equal(auto.backend, "webgpu");
    assert.equal(auto.fallbackReason, null, "no fallback reason on WebGPU");
    assert.match(auto.backendReason, /^WebGPU on .*a hardware GPU, as the test pretends, not timed \(probe: false\)$/);
    auto.dispose();
  } finally {
    pretendHardware = false;
  }
  for (const m of [gpu, cpu, software]) m.dispose();
});

test("the mortality bundle's risk on WebGPU is the CPU's", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  const gpu = await Bedside.load(mortalityDir, { backend: "webgpu" });
  const cpu = await Bedside.load(mortalityDir, { backend: "cpu" });
  assert.equal(gpu.backend, "webgpu");
  for (const record of samples.slice(0, 3)) {
    const worst = assertSameRisk(await gpu.risk(record), await cpu.risk(record), TOLERANCE);
    console.log(`# ${record.id}: max |webgpu - cpu| risk = ${worst.toExponential(2)}`);
  }
  for (const m of [gpu, cpu]) m.dispose();
});

test("auto times WebGPU against the CPU on a hardware adapter, keeps the faster and remembers", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  // SwiftShader dressed as a GPU: tens of times slower than the CPU on this model, so the probe
  // must pick the CPU however noisy the machine
  pretendHardware = true;
  try {
    const first = await Bedside.load(labBundleDir, { backend: "auto" });
    assert.equal(first.backend, "cpu");
    const measured = /^the CPU is faster here: the self-test took ([\d.]+) ms on WebGPU \(.*as the test pretends\) and ([\d.]+) ms on the CPU/;
    const [, gpuMs, cpuMs] = first.backendReason.match(measured) ?? assert.fail(`no probe in ${first.backendReason}`);
    assert.ok(Number(cpuMs) < Number(gpuMs));
    assert.equal(first.fallbackReason, first.backendReason);
    assert.ok((await first.diagnose(samples[0])).phenotypes.length > 0);
    // once per adapter and bundle: the second load goes to the CPU without starting WebGPU
    const devices = devicesRequested;
    const second = await Bedside.load(labBundleDir, { backend: "auto" });
    assert.equal(second.backend, "cpu");
    assert.equal(devicesRequested, devices, "WebGPU was started again");
    assert.match(second.backendReason, /\(measured earlier\)$/);
    assert.match(second.backendReason, measured);
    for (const m of [first, second]) m.dispose();
  } finally {
    pretendHardware = false;
  }
});

test("a WebGPU that computes wrong numbers fails the self-test; auto runs on the CPU and says why", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  // every mapped GPU buffer reads as zeros (and takes no writes), as from a broken driver: the
  // device works, its numbers are wrong, and only the known answer can tell
  const { GPUBuffer } = globals;
  const getMappedRange = GPUBuffer.prototype.getMappedRange;
  GPUBuffer.prototype.getMappedRange = function (...args) {
    return new ArrayBuffer(getMappedRange.apply(this, args).byteLength);
  };
  pretendHardware = true; // so that "auto" tries WebGPU first
  try {
    await assert.rejects(Bedside.load(labBundleDir, { backend: "webgpu" }), (e) => {
      assert.equal(e.code, "BACKEND_FAILED");
      assert.match(e.message, /self-test failed: probabilities differ from the recorded answer/);
      return true;
    });
    // untimed, so that the earlier test's remembered verdict does not skip WebGPU
    const auto = await Bedside.load(labBundleDir, { backend: "auto", probe: false });
    assert.equal(auto.backend, "cpu");
    assert.match(auto.fallbackReason, /^WebGPU failed \(BACKEND_FAILED: backend webgpu: self-test failed/);
    assert.ok((await auto.diagnose(samples[0])).phenotypes.length > 0);
    auto.dispose();
    GPUBuffer.prototype.getMappedRange = getMappedRange;
    // the device is still good once the driver is: WebGPU loads again
    const again = await Bedside.load(labBundleDir, { backend: "auto", probe: false });
    assert.equal(again.backend, "webgpu");
    again.dispose();
  } finally {
    GPUBuffer.prototype.getMappedRange = getMappedRange;
    pretendHardware = false;
  }
});

// Last in this file: it destroys the instance's one device.
test("a device destroyed while explain streams fails that call with WEBGPU_LOST; auto then gives the CPU", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  const clinical = path.join(root, "models/demo"); // explain needs the clinical bundle
  const model = await Bedside.load(clinical, { backend: "webgpu" });
  assert.ok(testDevice, "the test holds the device wgpu made");
  let pieces = 0;
  let failure;
  try {
    for await (const item of model.explain(samples[0], { maxTokens: 60 })) {
      // from inside the stream, after the first piece: the call is in flight
      if (typeof item === "string" && ++pieces === 1) testDevice.destroy();
    }
  } catch (error) {
    failure = error;
  }
  assert.ok(pieces >= 1, "a piece streamed before the loss");
  assert.equal(failure?.code, "WEBGPU_LOST", `the in-flight call fails with WEBGPU_LOST, not ${failure}`);
  await assert.rejects(model.diagnose(samples[0]), { code: "WEBGPU_LOST" });
  const auto = await Bedside.load(clinical, { backend: "auto" });
  assert.equal(auto.backend, "cpu");
  assert.match(auto.fallbackReason, /WebGPU was lost earlier/, "says why");
  assert.ok((await auto.diagnose(samples[0])).phenotypes.length > 0);
  model.dispose();
  auto.dispose();
});
