// The demo page: load a bundled model (the clinical one, or the mortality one trained on real ICU
// stays), pick a sample patient or open a file, and show its answer: phenotype probabilities and —
// where the bundle has them — the streamed rationale with the knowledge attention, charts of the
// labs and vitals with the model's attention over time, and recommended medications with
// drug–drug-interaction warnings; or the risk of death with the findings that moved it.
// Opened from an EHR (SMART on FHIR, smart.json lists the FHIR servers allowed) it reads the
// launch's patient chart instead, runs the same calls on it, and can save the answer back.
import { Bedside, toFhir } from "./pkg/bedside.js";
import { authorize, completeAuthorization, isAuthorizationResponse, readChart } from "./pkg/smart.js";
import { drawCharts, highlight } from "./charts.js";

const $ = (id) => document.getElementById(id);
/** The page's own options (`backend`, `model`, `tokens`), kept across an EHR sign-in's redirect. */
const PAGE_OPTIONS = "bedside.page-options";
/** Set once a chart was read in this tab (the FHIR server, nothing secret): a reload says to launch again. */
const LAUNCHED = "bedside.launched";
const params = new URLSearchParams(isAuthorizationResponse(location.href) ? sessionStorage.getItem(PAGE_OPTIONS) ?? "" : location.search);
let model;
let samples = [];
/** The last complete answer (`{ record, diagnosis, recommendation, explanation }`), for the FHIR download. */
let lastAnswer;
/** The deployment's SMART settings (smart.json: client id, scopes, FHIR servers and EHR origins allowed). */
let smart;
/** The signed-in EHR session (its token in memory only: a reload launches again). */
let session;
/** The chart read from the EHR (`{ record, encounter }`), while it is the patient shown. */
let chart;

/** What went wrong, in words a clinician reads first; the library's code and message follow in a detail. */
const PLAIN = {
  RECORD_JSON: "This file is not a patient record the model can read.",
  RECORD_INVALID: "This record breaks the record format's rules (the details name the fields).",
  RECORD_FHIR: "This FHIR resource cannot be read as a patient record.",
  BUNDLE_FETCH: "The model files could not be downloaded. Check the connection and reload.",
  BUNDLE_INVALID: "The model files are damaged or incomplete. Reload the page to fetch them again.",
  BUNDLE_HASH_MISMATCH: "The model files do not match their checksums. Reload the page to fetch them again.",
  BUNDLE_INCOMPATIBLE: "These model files were made for another version of bedside.",
  WEBGPU_LOST: "The graphics processor stopped responding.",
  WEBGPU_UNAVAILABLE: "This browser offers no WebGPU. Choose the CPU under Advanced.",
  BACKEND_FAILED: "The chosen processor failed. Try another backend under Advanced.",
  WASM_LOAD: "The model's engine could not start in this browser.",
  WASM_PANIC: "The model's engine stopped unexpectedly. Diagnose again to restart it, or reload the page.",
  SMART_LAUNCH: "The launch from the EHR could not be completed (the details say why).",
  FHIR_UNAUTHORIZED: "The EHR sign-in has expired. Open bedside from the EHR again.",
  FHIR_FORBIDDEN: "The EHR did not grant the access this needs.",
  FHIR_SERVER: "The EHR's FHIR server failed or could not be reached.",
  FHIR_EMPTY: "This patient's chart holds nothing the model reads.",
};

function showError(error) {
  const box = $("error");
  const detail = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Details";
  const code = document.createElement("code");
  code.textContent = `${error.code ?? "ERROR"}: ${error.message}`;
  detail.append(summary, code);
  box.replaceChildren(`${PLAIN[error.code] ?? "Something went wrong."} `, detail);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

/** What the status line says in each phase of a load (said once a phase: screen readers hear
 * phases, not every chunk; the bar shows the bytes). */
const PHASES = {
  wasm: () => "Starting the engine…",
  download: () => "Downloading the model…",
  verify: ({ backend }) => `Checking the files and building the model (${backend === "webgpu" ? "WebGPU" : "CPU"})…`,
  "self-test": ({ backend }) => `Testing ${backend === "webgpu" ? "WebGPU" : "the CPU"} on a known answer…`,
  ready: () => "Model ready.",
};

async function loadModel(backend) {
  // a run of the model about to go stops first (its results would come from a disposed model)
  currentRun += 1;
  controller?.abort();
  $("stop").hidden = true;
  model?.dispose();
  model = undefined;
  $("run").disabled = true;
  $("status").textContent = `Loading model (${backend})…`;
  delete $("status").dataset.backend;
  const bar = $("load-progress");
  bar.value = 0;
  bar.hidden = false;
  let said;
  const started = performance.now();
  try {
    const directory = $("model-choice").value === "mortality" ? "mortality/" : "model/";
    model = await Bedside.load(new URL(directory, location.href), {
      backend,
      onProgress: (progress) => {
        bar.value = progress.fraction;
        const key = `${progress.phase} ${progress.backend ?? ""}`;
        if (key !== said) {
          said = key;
          $("status").textContent = PHASES[progress.phase]?.(progress) ?? "Loading…";
        }
      },
    });
  } catch (error) {
    $("status").textContent = "No model loaded. Choose a backend (under Advanced) to try again.";
    $("advanced").open = true;
    bar.hidden = true;
    throw error;
  }
  bar.hidden = true;
  const ms = performance.now() - started;
  $("status").dataset.backend = model.backend;
  $("status").textContent =
    `Model loaded on ${model.backend === "webgpu" ? "WebGPU" : "CPU"} in ${ms.toFixed(0)} ms.` +
    (model.fallbackReason ? ` Running on the CPU: ${model.fallbackReason}.` : "");
  showCard(model.card);
  $("run").textContent = model.manifest.model?.kind === "mortality" ? "Estimate risk" : "Diagnose";
  $("run").disabled = false;
}

/** The bundle's model card, or that it has none; every text set as text, never as markup. */
function showCard(card) {
  const element = (tag, text) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const list = (items) => {
    const ul = element("ul");
    ul.append(...items.map((item) => element("li", item)));
    return ul;
  };
  const body = $("model-card-body");
  if (!card) {
    body.replaceChildren(element("p", "This bundle has no model card: what it was trained on and how it does on held-out patients are not stated."));
    $("model-card").hidden = false;
    return;
  }
  const figure = ([name, m]) => `${name} ${m.value.toFixed(3)}${m.ci95 ? ` (${m.ci95[0].toFixed(3)}–${m.ci95[1].toFixed(3)})` : ""}`;
  body.replaceChildren(
    element("h3", "Intended use"),
    element("p", card.intended_use),
    element("h3", "Trained on"),
    list(card.trained_on.map((t) => `${t.part}: ${t.cohort}, ${t.admissions} admissions (${t.licence})`)),
    element("h3", "How it does on data it did not learn from"),
    list(card.evaluations.map((e) => `${e.split} — ${e.cohort}, ${e.admissions} admissions: ${Object.entries(e.measures).map(figure).join("; ")}`)),
    element("h3", "When it gives no answer"),
    element("p", card.out_of_range),
    element("h3", "Limits"),
    list(card.limits),
  );
  $("model-card").hidden = false;
}

function describe(record) {
  if (record?.resourceType) {
    $("patient-summary").textContent = `FHIR ${record.resourceType} with ${record.entry?.length ?? 0} entries.`;
    return;
  }
  const d = record.demographics ?? {};
  const observations = record.observations ?? [];
  const channels = new Set(observations.map((o) => o.channel));
  $("patient-summary").textContent =
    `${record.id}: ${d.age ?? "?"} y, ${d.sex ?? "sex unknown"}; ${observations.length} observations over ${channels.size} channels; ${(record.visits ?? []).length} visit(s).`;
}

function cell(text, title) {
  const td = document.createElement("td");
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

/**
 * The run whose results the page shows. Choosing another patient or pressing Diagnose while a run
 * streams starts a newer one: the older is cancelled (its decoding stops) and stops writing at
 * its next step (it would otherwise interleave its tokens with the newer one's in the same box).
 * The Stop button cancels the current run; what it wrote stays, marked as stopped.
 */
let currentRun = 0;
let controller;
class Superseded extends Error {}
function stillCurrent(run) {
  if (run !== currentRun) throw new Superseded("a newer run replaced this one");
}

async function explain(record, diagnosis, run, encounter) {
  $("rationale-section").hidden = false;
  $("rationale").textContent = "";
  $("evidence").replaceChildren();
  $("attention").hidden = true;
  $("charts-section").hidden = true;
  const started = performance.now();
  let first;
  let result;
  const maxTokens = Number(params.get("tokens") ?? 160);
  for await (const item of model.explain(record, { maxTokens, encounter, signal: controller.signal })) {
    stillCurrent(run);
    if (typeof item === "string") {
      first ??= performance.now() - started;
      $("rationale").textContent += item;
    } else {
      result = item;
    }
  }
  const total = performance.now() - started;
  $("rationale-timing").textContent =
    `${result.tokens} tokens on ${result.backend}: first token after ${(first ?? total).toFixed(0)} ms, all in ${total.toFixed(0)} ms.`;
  // the channels whose knowledge attention is most concentrated on one prototype
  const rows = result.channels
    .map((channel, i) => ({ channel, weight: Math.max(...(result.knowledge_attention[i] ?? [0])) }))
    .sort((a, b) => b.weight - a.weight)
    .slice(0, 8);
  $("attention").querySelector("tbody").replaceChildren(
    ...rows.map(({ channel, weight }) => {
      const row = document.createElement("tr");
      row.append(cell(channel), cell(`${(weight * 100).toFixed(1)} %`));
      return row;
    }),
  );
  $("attention").hidden = rows.length === 0;
  drawCharts($("charts"), result.series ?? []);
  $("charts-section").hidden = (result.series ?? []).length === 0;
  showEvidence(result, diagnosis);
  return result;
}

/** One evidence item as a sentence: the library's statement of the record's value, or the quote. */
function factText(e) {
  return e.source === "note" ? `Note ${e.note + 1}, characters ${e.start}–${e.end}: “${e.text}”` : e.text;
}

/**
 * Under each written diagnosis, its evidence; a lab fact is a button that marks its chart point.
 * Where the model stated no fact for a diagnosis, the record's findings that the knowledge base
 * links to it (`diagnose`'s evidence) are listed instead, marked as such.
 */
function showEvidence(result, diagnosis) {
  const groups = result.diagnoses.map((d) => {
    const stated = result.evidence.filter((e) => e.diagnosis === d).map((e) => [e, "model"]);
    const linked = (diagnosis?.evidence ?? []).filter((e) => e.diagnosis === d).map((e) => [e, "record"]);
    return [d, stated.length ? stated : linked];
  });
  const unlinked = result.evidence.filter((e) => e.diagnosis === null).map((e) => [e, "model"]);
  if (unlinked.length) groups.push(["Also stated (linked to no diagnosis written)", unlinked]);
  $("evidence").replaceChildren(
    ...groups.map(([name, items]) => {
      const li = document.createElement("li");
      li.className = "diagnosis";
      const title = document.createElement("strong");
      title.textContent = name;
      const list = document.createElement("ul");
      if (!items.length) {
        const none = document.createElement("li");
        none.textContent = "No supporting fact in the record.";
        list.append(none);
      } else if (items[0][1] === "record") {
        const note = document.createElement("li");
        note.className = "linked-note";
        note.textContent = "The model stated no fact for this one; the record's findings the knowledge base links to it:";
        list.append(note);
      }
      for (const [e, origin] of items) {
        const item = document.createElement("li");
        item.dataset.origin = origin;
        if (e.reference) item.dataset.reference = e.reference;
        if (e.source === "observation") Object.assign(item.dataset, { value: String(e.value), unit: e.unit });
        if (e.source === "observation") {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "fact";
          button.dataset.channel = e.channel;
          button.dataset.hours = String(e.hours);
          button.textContent = factText(e);
          button.addEventListener("click", () => {
            for (const b of document.querySelectorAll("button.fact[aria-pressed]")) b.removeAttribute("aria-pressed");
            button.setAttribute("aria-pressed", "true");
            highlight($("charts"), e)?.scrollIntoView({ block: "nearest" });
          });
          item.append(button);
        } else {
          const quote = document.createElement("q");
          quote.className = "quote";
          quote.textContent = factText(e);
          item.append(quote);
        }
        if (e.reference) {
          // the FHIR resource the fact came from, for the clinician to look up in the chart
          const source = document.createElement("cite");
          source.className = "reference";
          source.textContent = ` (${e.reference})`;
          item.append(source);
        }
        list.append(item);
      }
      li.append(title, list);
      return li;
    }),
  );
}

/** What the model cannot read well in this record, shown before its results. */
function showNotices(notices) {
  const counts = new Map();
  for (const n of notices) if (n.kind !== "unit_converted") counts.set(n.kind, [...(counts.get(n.kind) ?? []), n]);
  const items = [...counts].map(([kind, list]) => {
    const li = document.createElement("li");
    li.className = "notice";
    li.dataset.kind = kind;
    li.textContent = list.length === 1 ? `${list[0].path}: ${list[0].message}` : `${list.length} × ${kind.replaceAll("_", " ")} (first: ${list[0].path}: ${list[0].message})`;
    return li;
  });
  $("notices").replaceChildren(...items);
  $("notices").hidden = items.length === 0;
}

async function recommend(record, run, encounter) {
  $("medications-section").hidden = false;
  const result = await model.recommend(record, { encounter, signal: controller.signal });
  stillCurrent(run);
  $("medications").querySelector("tbody").replaceChildren(
    ...result.medications.map((d) => {
      const row = document.createElement("tr");
      row.dataset.code = d.code;
      row.append(cell(d.code), cell(d.name), cell(`${(d.probability * 100).toFixed(1)} %`));
      return row;
    }),
  );
  $("ddi").replaceChildren(
    ...result.ddi_warnings.map((w) => {
      const li = document.createElement("li");
      li.className = "ddi-warning";
      li.textContent = `Interaction: ${w.drug} (${w.drug_name}) with ${w.with_current ? "current medication " : ""}${w.with} (${w.with_name})`;
      return li;
    }),
  );
  $("current-medications").textContent = result.current.length
    ? `Current medications: ${result.current.join(", ")}.`
    : "No current medications listed.";
  return result;
}

/** Runs the model on the patient shown: the chart read from the EHR, else the chosen sample. */
async function diagnose() {
  await (chart ? analyse(chart.record, chart.encounter) : analyse(samples[Number($("sample").value)]));
}

/** `encounter`: of a FHIR chart, the encounter to read (a SMART launch's). */
async function analyse(record, encounter) {
  // an engine that crashed (WASM_PANIC) is started again first (loading supersedes any run)
  if (model?.backend === "disposed") await loadModel($("backend").value);
  const run = ++currentRun;
  controller?.abort();
  controller = new AbortController();
  clearError();
  document.body.dataset.state = "running";
  $("stop").hidden = false;
  try {
    await analyseRun(record, run, encounter);
  } catch (error) {
    if (run !== currentRun) throw new Superseded("a newer run replaced this one");
    if (error.code !== "ABORTED") throw error;
    $("rationale-timing").textContent = $("rationale-section").hidden
      ? ""
      : "Stopped: the text above is as far as the model had written.";
    $("diagnosed").textContent ||= "Stopped before the model answered.";
    document.body.dataset.state = "stopped";
  } finally {
    if (run === currentRun) $("stop").hidden = true;
  }
}

/** Hides what an earlier run showed, so that a run stopped early never shows another patient's results. */
function clearResults() {
  for (const id of ["phenotypes", "medications-section", "rationale-section", "charts-section", "attention", "out-of-range", "risk-section"]) $(id).hidden = true;
  for (const id of ["diagnosed", "rationale", "rationale-timing", "risk"]) $(id).textContent = "";
  $("evidence").replaceChildren();
  $("risk-findings").replaceChildren();
  $("fhir-section").hidden = true;
  $("fhir-save").hidden = true;
  $("save-status").textContent = "";
  lastAnswer = undefined;
  delete $("risk").dataset.probability;
}

/** The reasons a record is out of the model's range, in the alert box. */
function showOutOfRange(outOfRange) {
  $("out-of-range-reasons").replaceChildren(
    ...outOfRange.reasons.map((r) => {
      const li = document.createElement("li");
      li.dataset.kind = r.kind;
      li.textContent = r.message;
      return li;
    }),
  );
  $("out-of-range").hidden = false;
}

/** A finding's effect in percentage points, signed. */
const points = (effect) => `${effect >= 0 ? "+" : "−"}${Math.abs(effect * 100).toFixed(1)} points`;

/** The mortality bundle's answer: the risk, the findings that moved it (each a button marking its chart), the charts. */
async function showRisk(record, run, encounter) {
  const started = performance.now();
  const result = await model.risk(record, { encounter, signal: controller.signal });
  stillCurrent(run);
  const ms = performance.now() - started;
  showNotices(result.notices);
  $("phenotypes-section").hidden = true;
  $("risk-section").hidden = false;
  const outcome = record.labels?.outcomes?.in_hospital_death;
  const known = outcome === undefined || outcome === null ? "" : ` Recorded outcome: ${outcome ? "died in hospital" : "survived"}.`;
  if (result.out_of_range) {
    // the reasons instead of the number: no number is shown under a warning
    showOutOfRange(result.out_of_range);
    $("risk").textContent = `Out of the model's range (${ms.toFixed(0)} ms on ${result.backend}).${known}`;
    return;
  }
  $("risk").textContent = `${(result.probability * 100).toFixed(1)} % (${ms.toFixed(0)} ms on ${result.backend}).${known}`;
  $("risk").dataset.probability = String(result.probability);
  $("risk-findings").replaceChildren(
    ...result.findings.map((f) => {
      const li = document.createElement("li");
      li.dataset.effect = String(f.effect);
      li.className = f.effect >= 0 ? "raises" : "lowers";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "fact";
      button.dataset.channel = f.channel;
      button.textContent = `${f.text} ${f.effect >= 0 ? "Raised" : "Lowered"} the risk by ${points(f.effect).slice(1)}.`;
      button.addEventListener("click", () => {
        for (const b of document.querySelectorAll("button.fact[aria-pressed]")) b.removeAttribute("aria-pressed");
        button.setAttribute("aria-pressed", "true");
        highlight($("charts"), f)?.scrollIntoView({ block: "nearest" });
      });
      li.append(button);
      return li;
    }),
  );
  if (!result.findings.length) $("risk-findings").append(Object.assign(document.createElement("li"), { textContent: "No finding outside its normal range in the window." }));
  drawCharts($("charts"), result.series);
  $("charts-section").hidden = result.series.length === 0;
}

async function analyseRun(record, run, encounter) {
  clearResults();
  describe(record);
  if (model.manifest.model?.kind === "mortality") {
    await showRisk(record, run, encounter);
    document.body.dataset.state = "done";
    return;
  }
  $("phenotypes-section").hidden = false;
  const started = performance.now();
  const result = await model.diagnose(record, { encounter, signal: controller.signal });
  stillCurrent(run);
  const ms = performance.now() - started;
  showNotices(result.notices);
  if (result.out_of_range) {
    // the reasons instead of bars: no number is shown under a warning
    showOutOfRange(result.out_of_range);
    $("diagnosed").textContent = `Out of the model's range (${ms.toFixed(0)} ms on ${result.backend}).`;
    document.body.dataset.state = "done";
    return;
  }
  const labelled = new Set(record.labels?.phenotypes ?? []);
  const evidenced = new Set(result.evidence.map((e) => e.diagnosis));
  const body = $("phenotypes").querySelector("tbody");
  body.replaceChildren(
    ...result.phenotypes.map((p) => {
      const row = document.createElement("tr");
      row.dataset.name = p.name;
      row.dataset.probability = String(p.probability);
      const diagnosed = result.diagnosed.includes(p.name);
      if (diagnosed) row.className = "diagnosed";
      const name = document.createElement("td");
      // the full name in words (not only on hover), and "supported" said, not only shown in bold
      name.append(p.short);
      if (p.short !== p.name) {
        const full = document.createElement("span");
        full.className = "full-name";
        full.textContent = ` (${p.name})`;
        name.append(full);
      }
      if (diagnosed) {
        // supported: above the threshold with a finding of the record linked to it
        const mark = document.createElement("span");
        mark.className = evidenced.has(p.name) ? "supported" : "unsupported";
        mark.textContent = evidenced.has(p.name) ? " ✔ supported" : " above threshold, no supporting finding";
        name.append(mark);
      }
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
    ? `At or above the threshold of ${model.manifest.threshold}: ${result.diagnosed.length} phenotype group(s), ${evidenced.size} with a supporting finding; ${ms.toFixed(0)} ms on ${result.backend}.`
    : `No phenotype group reaches the threshold of ${model.manifest.threshold} (${ms.toFixed(0)} ms on ${result.backend}).`;
  const recommendation = model.manifest.medications ? await recommend(record, run, encounter) : undefined;
  const explanation = model.manifest.model?.kind === "clinical" ? await explain(record, result, run, encounter) : undefined;
  lastAnswer = { record, encounter, diagnosis: result, recommendation, explanation };
  $("fhir-section").hidden = result.diagnosed.length === 0 && !recommendation?.medications.length;
  offerSave();
  document.body.dataset.state = "done";
}

/** The last answer as a FHIR R4 Bundle (`toFhir`), made here from what the page shows. */
function answerAsFhir() {
  const { record, encounter, ...answer } = lastAnswer;
  const patient = record?.resourceType === "Bundle"
    ? record.entry?.find((e) => e.resource?.resourceType === "Patient")?.resource?.id
    : undefined;
  return toFhir(answer, { patient: patient ? `Patient/${patient}` : undefined, encounter, manifest: model.manifest });
}

/** Downloads the last answer as a FHIR R4 Bundle. */
function downloadFhir() {
  const bundle = answerAsFhir();
  const { diagnosis } = lastAnswer;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(bundle, null, 2)], { type: "application/fhir+json" }));
  link.download = `bedside-${diagnosis.id || "record"}.fhir.json`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
}

/**
 * Offers "Save to chart" for an answer from an EHR chart: only in a signed-in session, for an
 * answer in range (toFhir then writes a transaction), and where the granted scopes allow creating
 * what it writes; otherwise says why there is no button.
 */
function offerSave() {
  if (!session || !chart || lastAnswer?.record !== chart.record) return;
  const bundle = answerAsFhir();
  const types = [...new Set((bundle.entry ?? []).map((e) => e.resource.resourceType))];
  if (bundle.type !== "transaction") {
    $("save-status").textContent = "Outside the model's range: nothing is offered for the chart.";
  } else if (!session.canCreate(types)) {
    $("save-status").textContent = `Saving to the chart needs access the EHR did not grant (creating ${types.join(", ")}).`;
  } else {
    $("fhir-save").hidden = false;
  }
}

/**
 * Writes the answer to the chart (the user pressed "Save to chart"), then reads each saved
 * resource back. A write that went through is said as such (and not offered again) even when the
 * reading back fails.
 */
async function saveToChart() {
  $("fhir-save").disabled = true;
  $("save-status").textContent = "Saving to the chart…";
  let response;
  try {
    response = await session.save(answerAsFhir());
  } catch (error) {
    $("save-status").textContent = "Not saved.";
    $("fhir-save").disabled = false;
    throw error;
  }
  $("fhir-save").hidden = true;
  const locations = (response.entry ?? []).map((e) => e.response?.location?.split("/_history")[0]).filter(Boolean);
  $("save-status").dataset.locations = locations.join(" ");
  $("save-status").textContent = `Saved to the chart: ${locations.length} resources; reading them back…`;
  const saved = await Promise.all(locations.map((l) => session.request(l))).catch((error) => {
    $("save-status").textContent = `Saved to the chart (${locations.length} resources), but reading them back failed: ${error.message}`;
    throw error;
  });
  const counts = {};
  for (const r of saved) counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
  $("save-status").textContent = `Saved to the chart and read back: ${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(", ")}.`;
}

/** The deployment's SMART settings (smart.json), or undefined where it has none. */
async function loadSmartConfig() {
  const response = await fetch("smart.json").catch(() => undefined);
  if (!response?.ok) return undefined;
  const config = await response.json();
  $("fhir-server").replaceChildren(...(config.fhirServers ?? []).map((url) => new Option(url, url)));
  $("ehr").hidden = !config.fhirServers?.length;
  return config;
}

/** Starts a launch (EHR: with `launch`; standalone: without) at `iss`: to the EHR's sign-in page. */
async function startLaunch(iss, launch) {
  if (!smart) throw Object.assign(new Error("this deployment lists no FHIR servers (no smart.json)"), { code: "SMART_LAUNCH" });
  const url = await authorize({
    iss,
    launch,
    clientId: smart.clientId,
    scope: `${launch ? "launch" : "launch/patient"} ${smart.scope}`,
    redirectUri: `${location.origin}${location.pathname}`,
    allowed: smart.fhirServers,
  });
  const options = new URLSearchParams(location.search);
  for (const key of ["iss", "launch"]) options.delete(key);
  sessionStorage.setItem(PAGE_OPTIONS, options.toString());
  location.replace(url); // (back then returns to the EHR, not to a launch that would start again)
}

/** Back from the EHR's sign-in: the session, then the patient's chart, with progress for each query. */
async function finishLaunch() {
  try {
    session = await completeAuthorization();
  } finally {
    // the code and state are used once: off the address bar (a reload then starts afresh)
    history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}`);
    sessionStorage.removeItem(PAGE_OPTIONS);
  }
  const status = $("chart-status");
  const bar = $("chart-progress");
  status.hidden = bar.hidden = false;
  status.textContent = `Reading the chart of Patient/${session.patient} from ${session.serverUrl}…`;
  let said;
  try {
    const record = await readChart(session, {
      onProgress: ({ step, done, total, resources }) => {
        bar.value = done / total;
        if (step !== said) status.textContent = `Reading the chart: ${step} (${done + 1} of ${total})…`;
        said = step;
        status.dataset.resources = String(resources);
      },
    });
    status.textContent = `Read the chart of Patient/${session.patient} from ${session.serverUrl}: ${record.entry.length} resources.`;
    sessionStorage.setItem(LAUNCHED, session.serverUrl);
    return { record, encounter: session.encounter };
  } catch (error) {
    status.textContent = "The chart could not be read.";
    throw error;
  } finally {
    bar.hidden = true;
  }
}

function fail(error) {
  if (error instanceof Superseded) return; // the newer run shows its own results
  showError(error);
  document.body.dataset.state = "error";
  if (error.code === "WEBGPU_LOST") {
    // the GPU went away (driver reset, GPU process crash): carry on with the CPU
    $("backend").value = "cpu";
    loadModel("cpu")
      .then(() => {
        $("status").textContent += " WebGPU was lost; the model now runs on the CPU.";
        return diagnose();
      })
      .catch(fail);
  }
}

async function openFile(file) {
  let record;
  try {
    record = JSON.parse(await file.text());
  } catch (e) {
    throw Object.assign(new Error(`${file.name} is not JSON: ${e.message}`), { code: "RECORD_JSON" });
  }
  await analyse(record);
}

async function main() {
  const backend = params.get("backend") ?? "auto";
  $("backend").value = backend;
  if (params.get("model") === "mortality") $("model-choice").value = "mortality";
  try {
    smart = await loadSmartConfig();
    const query = new URLSearchParams(location.search);
    // an EHR launch: on to the EHR's sign-in (the page comes back with a code)
    if (query.has("iss") && query.has("launch")) return await startLaunch(query.get("iss"), query.get("launch"));
    // back from the sign-in: the chart is read while the model loads
    const launched = isAuthorizationResponse(location.href) ? finishLaunch() : undefined;
    launched?.catch(() => {}); // (awaited below, after the model)
    const response = await fetch("samples/samples.json");
    if (!response.ok) throw Object.assign(new Error(`samples: HTTP ${response.status}`), { code: "SAMPLES" });
    samples = await response.json();
    $("sample").replaceChildren(
      ...samples.map((r, i) => new Option(`${r.id} (${(r.labels?.phenotypes ?? []).length} labelled phenotypes)`, String(i))),
    );
    $("sample").disabled = false;
    await loadModel(backend);
    if (launched) chart = await launched;
    else if (sessionStorage.getItem(LAUNCHED)) {
      // a reload after a launch: the sign-in lived in the page, and no sample stands in for the chart
      $("chart-status").hidden = false;
      $("chart-status").textContent = `The sign-in to ${sessionStorage.getItem(LAUNCHED)} is not kept across a reload: open bedside from the EHR again, or sign in below. Nothing was diagnosed.`;
      sessionStorage.removeItem(LAUNCHED);
      document.body.dataset.state = "done";
      return;
    }
    await diagnose();
  } catch (error) {
    if (error instanceof Superseded) return;
    showError(error);
    document.body.dataset.state = "error";
  }
}

$("stop").addEventListener("click", () => controller?.abort());
$("fhir-save").addEventListener("click", () => saveToChart().catch(fail));
$("sign-in").addEventListener("click", () => startLaunch($("fhir-server").value).catch(fail));
$("fhir-download").addEventListener("click", () => {
  try {
    downloadFhir();
  } catch (error) {
    fail(error);
  }
});

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  diagnose().catch(fail);
});
$("backend").addEventListener("change", () => {
  loadModel($("backend").value).then(diagnose).catch(fail);
});
$("sample").addEventListener("change", () => {
  chart = undefined;
  diagnose().catch(fail);
});
$("model-choice").addEventListener("change", () => {
  loadModel($("backend").value).then(diagnose).catch(fail);
});
$("upload").addEventListener("change", () => {
  const file = $("upload").files?.[0];
  chart = undefined;
  if (file) openFile(file).catch(fail);
});

// offline once loaded (www/sw.js); a page without service workers (a file:// copy) still works
navigator.serviceWorker?.register("sw.js").catch(() => {});
main();
