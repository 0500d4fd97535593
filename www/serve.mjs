// Serves the demo on 127.0.0.1 only: www/ at /, the npm package at /pkg, the bundled model
// (models/demo, committed; `make train` remakes it) at /model, the mortality bundle
// (models/mortality) at /mortality, the sample patients at /samples and the SMART settings
// (www/smart.json: the FHIR servers and EHR origins this deployment allows) at /smart.json.
// Usage: node www/serve.mjs [--port 8080] [--pkg DIR] [--model DIR] [--mortality DIR] [--samples DIR]
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import sirv from "sirv";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
// The page's policy as headers: same-origin scripts and WebAssembly only, cross-origin isolated,
// no MIME sniffing; it may connect to its own origin and the FHIR servers (and their
// authorization servers) of the deployment's SMART settings (smart.json) only, and be framed by
// the EHR origins listed there only. The meta tag in index.html says the same, without
// frame-ancestors (which a meta tag cannot set), for static hosts that cannot set headers: this
// server writes the policy into it, from the same settings.
export const SMART = JSON.parse(readFileSync(path.join(here, "smart.json"), "utf8"));

/** The Content-Security-Policy for `smart` (the SMART settings); `meta`: the meta tag's (no frame-ancestors). */
export function policy(smart = SMART, { meta = false } = {}) {
  const origins = (list) => [...new Set((list ?? []).map((url) => new URL(url).origin))];
  const connect = ["'self'", ...origins([...(smart.fhirServers ?? []), ...(smart.authServers ?? [])])];
  const framers = origins(smart.ehrOrigins);
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect.join(" ")}`,
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    ...(meta ? [] : [`frame-ancestors ${framers.length ? framers.join(" ") : "'none'"}`]),
    "form-action 'self'",
  ].join("; ");
}

/** Every header the page is served with, for `smart`. */
export function headers(smart = SMART) {
  return {
    "Content-Security-Policy": policy(smart),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
  };
}

/** index.html with its meta policy written from `smart`. */
function page(smart) {
  const html = readFileSync(path.join(here, "index.html"), "utf8");
  return html.replace(/(<meta http-equiv="Content-Security-Policy" content=")[^"]*/, `$1${policy(smart, { meta: true })}`);
}

export function createServer({ pkg = "pkg", model = "models/demo", mortality = "models/mortality", samples = "target/demo/samples", smart = SMART } = {}) {
  const options = { dev: true, etag: true };
  const mounts = [
    ["/pkg/", sirv(path.resolve(root, pkg), options)],
    ["/model/", sirv(path.resolve(root, model), options)],
    ["/mortality/", sirv(path.resolve(root, mortality), options)],
    ["/samples/", sirv(path.resolve(root, samples), options)],
    ["/", sirv(here, options)],
  ];
  const own = headers(smart);
  return http.createServer((req, res) => {
    for (const [name, value] of Object.entries(own)) res.setHeader(name, value);
    const pathname = req.url.split("?")[0];
    if (pathname === "/" || pathname === "/index.html") {
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      return res.end(page(smart));
    }
    if (pathname === "/smart.json") {
      res.setHeader("Content-Type", "application/json");
      return res.end(JSON.stringify(smart));
    }
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
