// A web developer's app bundled by webpack 5 (as Next.js does for the browser): installs the
// `npm pack` tarball of bedside and uses both entry points.
import { Bedside, webgpuAvailable } from "bedside";
import { BedsideWorker } from "bedside/worker";

const model = await Bedside.load(new URL("model/", location.href), { backend: (await webgpuAvailable()) ? "auto" : "cpu" });
const worker = await BedsideWorker.load(new URL("model/", location.href), { backend: "cpu" });
const record = { id: "webpack", observations: [{ channel: "lactate", hours: 1, value: 4.2 }] };
const [main, off] = [await model.diagnose(record), await worker.diagnose(record)];
document.getElementById("out").textContent = JSON.stringify({
  backend: model.backend,
  same: main.phenotypes.length > 0 && main.phenotypes.length === off.phenotypes.length && main.phenotypes.every((p, i) => Math.abs(p.probability - off.phenotypes[i].probability) < 1e-6),
  first: main.phenotypes[0].name,
});
