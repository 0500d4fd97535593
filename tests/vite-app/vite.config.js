// Builds the app for the browser; bedside's wasm is an asset next to the bundle.
export default { build: { target: "es2022", outDir: "dist", emptyOutDir: true } };
