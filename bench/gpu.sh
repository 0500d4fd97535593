#!/usr/bin/env bash
# `make bench-gpu`: bedside's WebGPU figures on this machine's GPU, with the onnxruntime-web peer,
# in one short run (make bench-setup has built and installed everything first: the release
# binary, the npm package, Chromium, onnxruntime-web, PyTorch for the ONNX export).
#
#   native wgpu    bedside-train bench on the GPU through wgpu (Vulkan)
#   Node           the npm package on Dawn (npm `webgpu`) over the GPU's Vulkan driver
#   Chromium       headless, on the GPU (Vulkan, ANGLE on Vulkan, the blocklist ignored):
#                  bedside's WebGPU backend, then onnxruntime-web's WebGPU backend on the same
#                  model, both with every WebGPU call counted (bench/webgpu-count.js)
#
# The tables go to $BENCH_GPU_OUT/BENCHMARKS.md (default target/bench-gpu) in the layout of
# BENCHMARKS.md. The measuring part is bounded by $BENCH_GPU_SECONDS (480: under 8 minutes).
# BENCH_GPU_SOFTWARE=1 runs the same script on the software adapters (SwiftShader for Dawn and
# Chromium, lavapipe for wgpu), which is how a machine without a GPU checks it. Without it, a run
# whose Node or Chromium adapter turns out to be a software renderer fails (native wgpu's adapter
# is not recorded: check the GPU line printed first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=${BENCH_GPU_OUT:-$target_dir/bench-gpu}
seconds=${BENCH_GPU_SECONDS:-480}
repeats=${BENCH_GPU_REPEATS:-5}
release=$target_dir/release/bedside-train
onnx=$root/target/bench/onnx # where bench/ort-page.html fetches it
python=${PYREF:-$target_dir/pyref}/bin/python
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/bedside-xdg-$(id -u)}
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
mkdir -p "$out"

if [ "${BENCH_GPU_SOFTWARE:-0}" = 1 ]; then
  echo "bench-gpu: on the software adapters (BENCH_GPU_SOFTWARE=1)"
  node_icd=(env VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)
  chromium_gpu=()
  repeats=${BENCH_GPU_REPEATS:-2}
else
  node_icd=(env)
  chromium_gpu=(--gpu)
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/bench-gpu: GPU /' || true
  fi
fi

# set-up outside the timed budget: a record and the ONNX export of the committed model (PyTorch;
# again whenever the weights changed)
"$release" cohort --source synthetic --n 1 --seed 99 --hours 48 --out "$out/record.json" >/dev/null
weights=$(sha256sum models/demo/model.safetensors | cut -d' ' -f1)
if ! grep -q "\"model_sha256\": \"$weights\"" "$onnx/inputs.json" 2>/dev/null; then
  [ -f "$target_dir/bench/inputs.safetensors" ] || RAYON_NUM_THREADS=1 "$release" bench --bundle models/demo \
    --config training/demo-run.toml --part inference --repeats 1 --inputs "$target_dir/bench/inputs.safetensors" --out "$out/inputs-run.json"
  "$python" bench/onnx_export.py --bundle models/demo --inputs "$target_dir/bench/inputs.safetensors" --out "$onnx"
fi

start=$(date +%s)
# each step gets what is left of the budget
# (an assignment from a failing $(left) stops the script under set -e, with left's 124)
left() { local l=$(( seconds - ($(date +%s) - start) )); [ "$l" -gt 0 ] || { echo "bench-gpu: over ${seconds} s" >&2; exit 124; }; echo "$l"; }
t=$(left)
timeout "$t" "$release" bench --bundle models/demo --backend wgpu --part inference --repeats "$repeats" --out "$out/native-wgpu.json"
t=$(left)
timeout "$t" "${node_icd[@]}" node bench/wasm.mjs --backend webgpu --record "$out/record.json" --repeats "$repeats" \
  --out "$out/wasm-webgpu.json"
t=$(left)
timeout "$t" node bench/browser.mjs --record "$out/record.json" --repeats "$repeats" --backends webgpu --ort \
  "${chromium_gpu[@]}" --out "$out/browser.json"
echo "bench-gpu: measured in $(( $(date +%s) - start )) s"

python3 bench/report.py --dir "$out" --results "$out/results.json" --markdown "$out/BENCHMARKS.md" \
  --title "Benchmarks on the GPU" --command "make bench-gpu" --notes ""
python3 - "$out" "${BENCH_GPU_SOFTWARE:-0}" <<'EOF'
import json, re, sys
out, software = sys.argv[1], sys.argv[2] == "1"
adapters = {"Node (Dawn)": json.load(open(f"{out}/wasm-webgpu.json")).get("adapter"),
            "Chromium": json.load(open(f"{out}/browser.json")).get("webgpu", {}).get("adapter")}
for where, name in adapters.items():
    print(f"bench-gpu: {where} ran on {name}")
soft = [w for w, n in adapters.items() if re.search(r"swiftshader|llvmpipe|lavapipe|software", n or "", re.I)]
if soft and not software:
    sys.exit(f"bench-gpu: {', '.join(soft)} ran on a software renderer, not the GPU")
EOF
