// Builds the app for the browser; bedside's wasm is an asset next to the bundle. The dev server
// must not pre-bundle bedside: a pre-bundled copy under node_modules/.vite/ looks for its wasm
// and worker (`new URL(…, import.meta.url)`) beside itself, where they are not.
export default {
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  optimizeDeps: { exclude: ["bedside"] },
};
