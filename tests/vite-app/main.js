// A web developer's app: installs the `npm pack` tarball of bedside and uses it as a dependency.
import { Bedside, webgpuAvailable } from "bedside";
import { BedsideWorker } from "bedside/worker";

const out = document.getElementById("out");
const model = await Bedside.load(new URL("model/", location.href), { backend: (await webgpuAvailable()) ? "auto" : "cpu" });
const result = await model.diagnose({ id: "vite", observations: [{ channel: "lactate", hours: 1, value: 4.2 }] });
out.textContent = `${model.backend}: ${result.phenotypes[0].name}`;
export { BedsideWorker };
