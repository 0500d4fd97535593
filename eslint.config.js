// ESLint for every JavaScript file of the project (`make lint`): the package's sources, the demo
// page, the tests and the benchmark harnesses. eslint's recommended rules, with the globals of
// where each file runs; the built package (pkg/) is wasm-bindgen's output and is not linted.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["pkg/", "node_modules/", "target/", "fuzz/", "**/dist/", "**/.next/", "**/out/"] },
  js.configs.recommended,
  {
    rules: {
      eqeqeq: "error",
      "prefer-const": "error",
      "no-var": "error",
      // a local named like module state (the package's `gpu`) hides which one a line means
      "no-shadow": "error",
    },
  },
  {
    // the package runs in browsers, workers and Node alike
    files: ["pkg-config/**/*.js"],
    languageOptions: { globals: { ...globals.browser, ...globals.worker, process: "readonly" } },
  },
  {
    files: ["www/**/*.js", "tests/vite-app/main.js", "tests/webpack-app/main.js"],
    languageOptions: { globals: globals.browser },
  },
  { files: ["www/sw.js"], languageOptions: { globals: globals.serviceworker } },
  {
    // the Next.js app's React components (JSX)
    files: ["tests/next-app/app/**/*.js"],
    languageOptions: { globals: globals.browser, parserOptions: { ecmaFeatures: { jsx: true } } },
  },
  {
    // Node scripts whose callbacks also run in the page (Playwright's evaluate)
    files: ["**/*.mjs", "tests/**/*.config.js", "bench/**/*.js"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
];
