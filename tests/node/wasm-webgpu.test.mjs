// The wasm package in Node on WebGPU: Dawn (npm `webgpu`) over a CPU Vulkan driver gives Node a
// WebGPU adapter; the wgpu path must give the CPU's numbers.
//
// Dawn needs Vulkan features that Debian 12's lavapipe (Mesa 22.3) lacks, so the tests point it
// at the SwiftShader Vulkan driver that Debian's chromium ships (VK_ICD_FILENAMES, set by
// `make test`). Where neither gives an adapter, the test says so and skips, unless
// BEDSIDE_REQUIRE_WEBGPU=1 (as in `make test`), where it fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, globals } from "webgpu";
import { Bedside, webgpuAvailable } from "../../pkg/bedside.js";
import { assertSameProbabilities, bundleDir, samples } from "./helpers.mjs";

Object.assign(globalThis, globals);
globalThis.navigator ??= {};
globalThis.navigator.gpu = create([]);
// wgpu's web backend looks for `Window` (or `WorkerGlobalScope`) on the global object.
globalThis.Window ??= class Window {};

// GPU float reductions run in another order than the CPU's.
const TOLERANCE = 1e-4;

test("wasm on WebGPU gives the CPU's probabilities", async (t) => {
  if (!(await webgpuAvailable())) {
    assert.notEqual(process.env.BEDSIDE_REQUIRE_WEBGPU, "1", "no WebGPU adapter in Node (Dawn)");
    t.skip("no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  const gpu = await Bedside.load(bundleDir, { backend: "webgpu" });
  const cpu = await Bedside.load(bundleDir, { backend: "cpu" });
  assert.equal(gpu.backend, "webgpu");
  for (const record of samples.slice(0, 3)) {
    const worst = assertSameProbabilities(await gpu.diagnose(record), await cpu.diagnose(record), TOLERANCE);
    console.log(`# ${record.id}: max |webgpu - cpu| = ${worst.toExponential(2)}`);
  }
  const auto = await Bedside.load(bundleDir, { backend: "auto" });
  assert.equal(auto.backend, "webgpu");
  for (const m of [gpu, cpu, auto]) m.dispose();
});
