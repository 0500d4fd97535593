// webpack 5 for the browser (target "web", production): bedside's wasm becomes an asset and its
// worker a chunk of its own, through `new URL(…, import.meta.url)` and `new Worker(new URL(…))`.
import path from "node:path";

export default {
  mode: "production",
  target: "web",
  entry: "./main.js",
  experiments: { topLevelAwait: true },
  output: { path: path.resolve("dist"), filename: "main.js", clean: true },
};
