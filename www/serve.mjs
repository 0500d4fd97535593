// Serves the demo on 127.0.0.1 only: www/ at /, the npm package at /pkg, the bundled model
// (models/demo, committed; `make train` remakes it) at /model and the sample patients at /samples.
// Usage: node www/serve.mjs [--port 8080] [--pkg DIR] [--model DIR] [--samples DIR]
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import sirv from "sirv";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
export function createServer({ pkg = "pkg", model = "models/demo", samples = "target/demo/samples" } = {}) {
  const options = { dev: true, etag: true };
  const mounts = [
    ["/pkg/", sirv(path.resolve(root, pkg), options)],
    ["/model/", sirv(path.resolve(root, model), options)],
    ["/samples/", sirv(path.resolve(root, samples), options)],
    ["/", sirv(here, options)],
  ];
  return http.createServer((req, res) => {
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
    options: { port: { type: "string", default: "8080" }, pkg: { type: "string" }, model: { type: "string" }, samples: { type: "string" } },
  });
  const server = createServer({ pkg: values.pkg, model: values.model, samples: values.samples });
  server.listen(Number(values.port), "127.0.0.1", () => {
    console.log(`bedside demo: http://127.0.0.1:${server.address().port}/`);
  });
}
