#!/usr/bin/env bash
# Builds the npm package into pkg/: cargo (wasm32, size profile) → wasm-bindgen (web target,
# which also runs in Node) → the JS wrapper, types and a package.json from pkg-config/.
# `--experimental-reset-state-function` lets the wrapper replace an instance that trapped.
# wasm-opt is left out: Debian's binaryen corrupts the module, and npm's adds nothing after
# LTO + opt-level "z".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$root/pkg}

cargo build --locked --lib -p bedside --target wasm32-unknown-unknown --profile wasm
rm -rf "$out"
mkdir -p "$out/wasm"
wasm-bindgen --target web --experimental-reset-state-function --remove-name-section --remove-producers-section \
  --out-dir "$out/wasm" --out-name bedside \
  "$target_dir/wasm32-unknown-unknown/wasm/bedside.wasm"
cp pkg-config/*.js pkg-config/*.d.ts LICENSE-MIT LICENSE-APACHE "$out/"
cp README.md "$out/README.md"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  pkg.version = process.argv[2];
  fs.writeFileSync(process.argv[3], JSON.stringify(pkg, null, 2) + "\n");
' pkg-config/package.json "$version" "$out/package.json"
wasm="$out/wasm/bedside_bg.wasm"
gzipped=$(gzip -9c "$wasm" | wc -c)
echo "pkg: $(stat -c %s "$wasm") bytes wasm, $gzipped gzip → $out"
# the package budget (what a page downloads before its first answer): 3.3 MB gzip
budget=3300000
if [ "$gzipped" -gt "$budget" ]; then
  echo "pkg: the wasm module is $gzipped bytes gzip, over the budget of $budget" >&2
  exit 1
fi
