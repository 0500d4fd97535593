// Serves the demo on 127.0.0.1 only: www/ at /, the npm package at /pkg, the bundled model
// (models/demo, committed; `make train` remakes it) at /model, the mortality bundle
// (models/mortality) at /mortality and the sample patients at /samples.
// Usage: node www/serve.mjs [--port 8080] [--pkg DIR] [--model DIR] [--mortality DIR] [--samples DIR]
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import sirv from "sirv";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
// The page's policy as headers (the meta tag in index.html says the same for static hosts that
// cannot set headers): same-origin scripts and WebAssembly only, nothing framed, cross-origin
// isolated, no MIME sniffing.
export const HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

export function createServer({ pkg = "pkg", model = "models/demo", mortality = "models/mortality", samples = "target/demo/samples" } = {}) {
  const options = { dev: true, etag: true };
  const mounts = [
    ["/pkg/", sirv(path.resolve(root, pkg), options)],
    ["/model/", sirv(path.resolve(root, model), options)],
    ["/mortality/", sirv(path.resolve(root, mortality), options)],
    ["/samples/", sirv(path.resolve(root, samples), options)],
    ["/", sirv(here, options)],
  ];
  return http.createServer((req, res) => {
    for (const [name, value] of Object.entries(HEADERS)) res.setHeader(name, value);
    const [prefix, handler] = mounts.find(([p]) => req.url.startsWith(p));
    if (prefix !== "/") req.url = req.url.slice(prefix.length - 1);
    handler(req, res, () => {
      res.statusCode = 404;
      res.end("not found");
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { port: { type: "string", default: "8080" }, pkg: { type: "string" }, model: { type: "string" }, mortality: { type: "string" }, samples: { type: "string" } },
  });
  const server = createServer({ pkg: values.pkg, model: values.model, mortality: values.mortality, samples: values.samples });
  server.listen(Number(values.port), "127.0.0.1", () => {
    console.log(`bedside demo: http://127.0.0.1:${server.address().port}/`);
  });
}
