// A web developer's app: installs the `npm pack` tarball of bedside and uses it as a dependency,
// on the page and in a Web Worker.
import { Bedside, webgpuAvailable } from "bedside";
import { BedsideWorker } from "bedside/worker";

const out = document.getElementById("out");
const record = { id: "vite", observations: [{ channel: "lactate", hours: 1, value: 4.2 }] };
try {
  const bundle = new URL("model/", location.href);
  const model = await Bedside.load(bundle, { backend: (await webgpuAvailable()) ? "auto" : "cpu" });
  const result = await model.diagnose(record);
  const worker = await BedsideWorker.load(bundle.href, { backend: "cpu" });
  const inWorker = await worker.diagnose(record);
  const same = inWorker.phenotypes[0].probability === result.phenotypes[0].probability;
  out.textContent = `${model.backend}: ${result.phenotypes[0].name}; worker ${same ? "same" : "differs"}`;
} catch (e) {
  out.textContent = `error ${e.code}: ${e.message}`;
}
