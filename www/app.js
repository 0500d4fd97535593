// The demo page: load the bundled model, pick a sample patient, show phenotype probabilities.
import { Bedside } from "./pkg/bedside.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let model;
let samples = [];

function showError(error) {
  $("error").hidden = false;
  $("error").textContent = `${error.code ?? "ERROR"}: ${error.message}`;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function loadModel(backend) {
  model?.dispose();
  model = undefined;
  $("run").disabled = true;
  $("status").textContent = `Loading model (${backend})…`;
  const started = performance.now();
  model = await Bedside.load(new URL("model/", location.href), {
    backend,
    onProgress: ({ file, loaded, total }) => {
      $("status").textContent = `Loading ${file}: ${Math.round(loaded / 1024)}${total ? ` of ${Math.round(total / 1024)}` : ""} KiB`;
    },
  });
  const ms = performance.now() - started;
  $("status").dataset.backend = model.backend;
  $("status").textContent = `Model loaded on ${model.backend === "webgpu" ? "WebGPU" : "CPU"} in ${ms.toFixed(0)} ms.`;
  $("run").disabled = false;
}

function describe(record) {
  const d = record.demographics ?? {};
  const channels = new Set(record.observations.map((o) => o.channel));
  $("patient-summary").textContent =
    `${record.id}: ${d.age ?? "?"} y, ${d.sex ?? "sex unknown"}; ${record.observations.length} observations over ${channels.size} channels.`;
}

async function diagnose() {
  clearError();
  const record = samples[Number($("sample").value)];
  describe(record);
  const started = performance.now();
  const result = await model.diagnose(record);
  const ms = performance.now() - started;
  const labelled = new Set(record.labels?.phenotypes ?? []);
  const body = $("phenotypes").querySelector("tbody");
  body.replaceChildren(
    ...result.phenotypes.map((p) => {
      const row = document.createElement("tr");
      row.dataset.name = p.name;
      row.dataset.probability = String(p.probability);
      if (result.diagnosed.includes(p.name)) row.className = "diagnosed";
      const name = document.createElement("td");
      name.textContent = p.short;
      name.title = p.name;
      const bar = document.createElement("td");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${(p.probability * 100).toFixed(1)}%`;
      fill.setAttribute("aria-hidden", "true");
      bar.append(fill, `${(p.probability * 100).toFixed(1)} %`);
      const truth = document.createElement("td");
      truth.textContent = labelled.has(p.name) ? "yes" : "";
      row.append(name, bar, truth);
      return row;
    }),
  );
  $("phenotypes").hidden = false;
  $("diagnosed").textContent = result.diagnosed.length
    ? `Supported: ${result.diagnosed.length} phenotype group(s), ${ms.toFixed(0)} ms on ${result.backend}.`
    : `No phenotype group above the threshold (${ms.toFixed(0)} ms on ${result.backend}).`;
  document.body.dataset.state = "done";
}

async function main() {
  const backend = params.get("backend") ?? "auto";
  $("backend").value = backend;
  try {
    const response = await fetch("samples/samples.json");
    if (!response.ok) throw Object.assign(new Error(`samples: HTTP ${response.status}`), { code: "SAMPLES" });
    samples = await response.json();
    $("sample").replaceChildren(
      ...samples.map((r, i) => new Option(`${r.id} (${(r.labels?.phenotypes ?? []).length} labelled phenotypes)`, String(i))),
    );
    $("sample").disabled = false;
    await loadModel(backend);
    await diagnose();
  } catch (error) {
    showError(error);
    document.body.dataset.state = "error";
  }
}

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  diagnose().catch(showError);
});
$("backend").addEventListener("change", () => {
  loadModel($("backend").value).then(diagnose).catch(showError);
});
$("sample").addEventListener("change", () => diagnose().catch(showError));

main();
