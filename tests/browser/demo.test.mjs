// The demo page in headless Chromium (Debian's chromium, driven by playwright-core) with the
// committed demo bundle (models/demo): on WebGPU (SwiftShader, with --enable-unsafe-webgpu) and,
// with WebGPU unavailable, on the CPU fallback; phenotype and drug probabilities and the written
// rationale must match the native CLI's. Screenshots go to target/screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createServer, headers } from "../../www/serve.mjs";
import { launchWatched } from "./chromium.mjs";
import { CPU_TOLERANCE, GPU_TOLERANCE, assertSameProbabilities, assertSameRisk, mortalityDir, nativePredict, root, samples } from "../node/helpers.mjs";
import { NO_VISITS, cases, demoFiles, edited, mismatch } from "../catalogue/catalogue.mjs";

const HEADERS = headers();
const shots = path.join(root, "target/screenshots");
const demoBundle = path.join(root, "models/demo");
// a whole answer for the sample (the list, then the facts: about 70 tokens), though WebGPU on
// SwiftShader takes a while per token
const TOKENS = 72;
const settled = 'body[data-state="done"], body[data-state="error"]';
let server;
let origin;

before(async () => {
  mkdirSync(shots, { recursive: true });
  server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(() => server?.close());

/**
 * What a page may ask for: the demo page's own files, the package, the bundle and the samples,
 * the routes the tests serve (/swap/, /catalogue/, /trap-worker.js), and data:/blob: URLs.
 */
const ALLOWED = /^\/(|index\.html|app\.js|smart\.json|charts\.js|style\.css|sw\.js|favicon\.ico|trap-worker\.js|(pkg|model|mortality|samples|swap|catalogue)\/.*)(\?.*)?$/;

/** Chromium where every request goes only to `ALLOWED` paths of the demo's origin (or data:/blob:). */
const launch = (args) => launchWatched(args, (url) => url.startsWith(`${origin}/`) && ALLOWED.test(url.slice(origin.length)));

/** Marks the page busy, does `action` (which starts a run) and waits until the run settles; the
 * page's final state, "done" or "error". */
async function settle(page, action) {
  await page.evaluate(() => { document.body.dataset.state = "waiting"; });
  await action();
  await page.waitForSelector(settled, { timeout: 300_000 });
  return page.getAttribute("body", "data-state");
}

/** The demo in a new page of `browser`, once its first run settled; page errors go to `problems`. */
async function openDemo(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${origin}/?tokens=${TOKENS}`);
  await page.waitForSelector(settled, { timeout: 300_000 });
  return { page, problems };
}

async function runPage(args, screenshot, query = "") {
  const browser = await launch(args);
  try {
    const page = await browser.newPage();
    const problems = [];
    const requests = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    // any violation of the page's Content-Security-Policy is a failure
    await page.addInitScript(() => {
      window.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective}: ${e.blockedURI}`));
      // every text the status line (a live region) takes, to check what a screen reader hears
      window.__statuses = [];
      document.addEventListener("DOMContentLoaded", () => {
        const status = document.getElementById("status");
        new MutationObserver(() => window.__statuses.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
      });
    });
    const response = await page.goto(`${origin}/?tokens=${TOKENS}${query}`);
    for (const [name, value] of Object.entries(HEADERS)) assert.equal(response.headers()[name.toLowerCase()], value, name);
    await page.waitForSelector(settled, { timeout: 600_000 });
    const state = await page.getAttribute("body", "data-state");
    const error = await page.textContent("#error");
    assert.equal(state, "done", `page ended in state ${state}: ${error}`);
    await page.screenshot({ path: path.join(shots, screenshot), fullPage: true });
    const backend = await page.getAttribute("#status", "data-backend");
    const status = await page.textContent("#status");
    const statuses = await page.evaluate(() => window.__statuses);
    const bar = await page.$eval("#load-progress", (p) => ({ value: p.value, hidden: p.hidden }));
    const phenotypes = await page.$$eval("#phenotypes tbody tr", (rows) =>
      rows.map((r) => ({ name: r.dataset.name, probability: Number(r.dataset.probability) })),
    );
    // a supported group is said in words, not only set in bold
    const supported = await page.$$eval("#phenotypes tbody tr", (rows) =>
      rows.map((r) => [r.classList.contains("diagnosed"), r.querySelector(".supported, .unsupported")?.textContent.trim() ?? null, r.dataset.name]),
    );
    const drugs = await page.$$eval("#medications tbody tr", (rows) => rows.map((r) => r.dataset.code));
    const warnings = await page.$$eval(".ddi-warning", (items) => items.map((li) => li.textContent));
    const rationale = await page.textContent("#rationale");
    const evidence = await page.$$eval('#evidence li[data-origin="model"] :is(button.fact, q.quote)', (items) =>
      items.map((item) => ({ channel: item.dataset.channel ?? null, text: item.textContent })),
    );
    // every diagnosis shown lists evidence: the facts the model stated, else the record's
    // findings the knowledge base links to it, else says there is none
    const groups = await page.$$eval("#evidence li.diagnosis", (items) => items.map((li) => li.querySelectorAll("li").length));
    // a lab fact, chosen from the keyboard, marks its point on its chart
    let selected = null;
    if (await page.$('#evidence li[data-origin="model"] button.fact')) {
      await page.focus('#evidence li[data-origin="model"] button.fact');
      await page.keyboard.press("Enter");
      selected = await page.$eval("#charts figure.selected", (f) => ({
        channel: f.dataset.channel,
        marks: f.querySelectorAll(".evidence-mark").length,
        text: f.querySelector(".evidence-mark text")?.textContent ?? "",
      }));
      await page.screenshot({ path: path.join(shots, screenshot.replace(".png", "-evidence.png")), fullPage: true });
    }
    const charts = await page.$$eval("#charts figure.channel", (figures) =>
      figures.map((f) => ({
        channel: f.dataset.channel,
        label: f.querySelector("svg")?.getAttribute("aria-label") ?? "",
        attention: f.querySelectorAll(".attention").length,
        abnormal: f.querySelectorAll(".point.abnormal").length,
        // marked by shape, not only colour: triangles outside the range, dots inside
        shapes: [...new Set([...f.querySelectorAll(".point")].map((p) => `${p.tagName}${p.classList.contains("abnormal") ? " abnormal" : ""}`))].sort(),
      })),
    );
    assert.deepEqual(problems, []);
    // accessibility of the finished page (axe-core's WCAG rules): no serious or critical finding
    await page.evaluate(readFileSync(path.join(root, "node_modules/axe-core/axe.min.js"), "utf8"));
    const accessibility = await page.evaluate(async () =>
      (await globalThis.axe.run(document, { resultTypes: ["violations"] })).violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    );
    assert.deepEqual(accessibility, [], "axe-core: serious or critical accessibility violations");
    assert.deepEqual(await page.evaluate(() => window.__violations), [], "Content-Security-Policy violations");
    const foreign = requests.filter((u) => !u.startsWith(origin));
    assert.deepEqual(foreign, [], "the page made requests outside its own origin");
    // the backend selector waits, closed, under "Advanced"
    assert.equal(await page.evaluate(() => document.querySelector("#backend").closest("details#advanced")?.open), false);
    assert.equal(await page.isVisible("#backend"), false, "the backend selector is under Advanced");
    const card = { shown: await page.isVisible("#model-card"), text: await page.textContent("#model-card-body") };
    return { backend, status, statuses, bar, supported, phenotypes, drugs, warnings, rationale, charts, evidence, selected, groups, card };
  } finally {
    await browser.close();
  }
}

function native() {
  return nativePredict(samples[0], "cpu", demoBundle, ["--explain", "--recommend", "--max-tokens", String(TOKENS)]);
}

function check(page, expected, tolerance) {
  const worst = assertSameProbabilities({ phenotypes: page.phenotypes }, expected.diagnosis, tolerance);
  assert.deepEqual(page.drugs, expected.recommendation.medications.map((d) => d.code));
  assert.equal(page.warnings.length, expected.recommendation.ddi_warnings.length);
  assert.ok(page.warnings.length > 0, "the sample shows a drug–drug-interaction warning");
  assert.ok(!page.rationale.includes("###") && !page.rationale.includes("<lab:"), `no target markup: ${page.rationale}`);
  // the evidence under each diagnosis is the native evidence, in its order; the first lab fact
  // marks its own channel's chart at the fact's hour
  const evidence = expected.explanation.evidence;
  assert.ok(evidence.length > 0, "the sample's diagnoses come with evidence");
  assert.ok(page.groups.length >= expected.explanation.diagnoses.length && page.groups.every((n) => n > 0), `${page.groups}`);
  assert.deepEqual(page.evidence.map((e) => e.channel), evidence.map((e) => (e.source === "observation" ? e.channel : null)));
  const firstLab = evidence.find((e) => e.source === "observation");
  if (firstLab) {
    assert.equal(page.selected?.channel, firstLab.channel);
    assert.equal(page.selected.marks, 1);
    assert.match(page.selected.text, new RegExp(`at ${Math.floor(firstLab.hours)} h$`));
  }
  // a chart per observed channel, each with the attention overlay and a text summary; the red
  // points are exactly the native values outside the normal range
  const series = expected.explanation.series;
  assert.deepEqual(page.charts.map((c) => c.channel).sort(), series.map((c) => c.name).sort());
  for (const c of page.charts) {
    assert.ok(c.attention > 0, `${c.channel}: no attention overlay`);
    assert.match(c.label, /hourly values, \d+ above and \d+ below the normal range/);
  }
  const outside = series.flatMap((c) => c.values.filter((v) => v !== null && (v > c.normal_high || v < c.normal_low)));
  assert.equal(page.charts.reduce((n, c) => n + c.abnormal, 0), outside.length);
  for (const c of page.charts) {
    assert.deepEqual(c.shapes.filter((s) => !["circle", "path abnormal"].includes(s)), [], `${c.channel}: ${c.shapes}`);
  }
  assert.ok(outside.length > 0, "the sample has values outside the normal range");
  return worst;
}

test("the demo runs on WebGPU and matches the native CPU numbers", async () => {
  // WebGPU by name: Chromium's adapter here is SwiftShader, which "auto" passes over (below)
  const page = await runPage(["--enable-unsafe-webgpu"], "demo-webgpu.png", "&backend=webgpu");
  assert.equal(page.backend, "webgpu");
  assert.doesNotMatch(page.status, /Running on the CPU/);
  const worst = check(page, native(), GPU_TOLERANCE);
  console.log(`# browser WebGPU: max |webgpu - native cpu| = ${worst.toExponential(2)}; ${page.drugs.length} drugs, ${page.warnings.length} DDI warnings`);
});

test("the mortality model on the page: its risk and findings as natively, on WebGPU and the CPU", async () => {
  const browser = await launch(["--enable-unsafe-webgpu"]);
  const expected = nativePredict(samples[0], "cpu", mortalityDir);
  assert.equal(expected.out_of_range, null, "the first sample is in range");
  try {
    for (const [backend, tolerance] of [["webgpu", GPU_TOLERANCE], ["cpu", CPU_TOLERANCE]]) {
      const page = await browser.newPage();
      const problems = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${origin}/?model=mortality&backend=${backend}`);
      await page.waitForSelector(settled, { timeout: 300_000 });
      assert.equal(await page.getAttribute("body", "data-state"), "done", await page.textContent("#error"));
      assert.equal(await page.getAttribute("#status", "data-backend"), backend);
      assert.equal(await page.isVisible("#phenotypes-section"), false, "no phenotype table for the mortality model");
      const findings = await page.$$eval("#risk-findings li[data-effect]", (items) =>
        items.map((li) => ({ channel: li.querySelector("button").dataset.channel, effect: Number(li.dataset.effect), text: li.textContent })),
      );
      const shown = { probability: Number(await page.getAttribute("#risk", "data-probability")), findings };
      const worst = assertSameRisk(shown, expected, tolerance);
      // the largest effect first (the order of near ties may differ from the native one), each said
      // in words with its direction
      const sizes = findings.map((f) => Math.abs(f.effect));
      assert.deepEqual(sizes, [...sizes].sort((a, b) => b - a));
      for (const f of findings) assert.match(f.text, f.effect >= 0 ? /Raised the risk by \d+\.\d points\.$/ : /Lowered the risk by \d+\.\d points\.$/);
      // a finding chosen from the keyboard marks its own channel's chart
      await page.focus("#risk-findings button.fact");
      await page.keyboard.press("Enter");
      assert.equal(await page.$eval("#charts figure.selected", (f) => f.dataset.channel), findings[0].channel);
      const card = await page.textContent("#model-card-body");
      for (const words of ["PhysioNet", "ODC-By", "final test", "Not for triage"]) assert.ok(card.includes(words), `the card says ${words}: ${card}`);
      await page.screenshot({ path: path.join(shots, `mortality-${backend}.png`), fullPage: true });
      await page.evaluate(readFileSync(path.join(root, "node_modules/axe-core/axe.min.js"), "utf8"));
      const accessibility = await page.evaluate(async () =>
        (await globalThis.axe.run(document, { resultTypes: ["violations"] })).violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id}: ${v.help}`),
      );
      assert.deepEqual(accessibility, [], "axe-core: serious or critical accessibility violations");
      assert.deepEqual(problems, []);
      console.log(`# browser ${backend}, mortality: max |page - native cpu| = ${worst.toExponential(2)}; ${findings.length} findings`);
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test("without WebGPU the demo falls back to the CPU", async () => {
  const page = await runPage(["--disable-features=WebGPU"], "demo-cpu.png");
  assert.equal(page.backend, "cpu");
  assert.match(page.status, /Running on the CPU: this browser or runtime has no WebGPU adapter\./, "the page says why");
  // the load is announced by phase, not by chunk, and its bar ends full and hidden
  // (a live region's changes within one task are heard as the last: "Loading model (auto)…" is
  // replaced at once by the first phase)
  assert.deepEqual(page.statuses.slice(0, 5), [
    "Starting the engine…",
    "Downloading the model…",
    "Checking the files and building the model (CPU)…",
    "Testing the CPU on a known answer…",
    "Model ready.",
  ]);
  assert.match(page.statuses[5], /^Model loaded on CPU in \d+ ms\./);
  assert.deepEqual(page.bar, { value: 1, hidden: true });
  assert.ok(page.supported.some(([diagnosed]) => diagnosed), "the sample has a supported group");
  // the committed bundle's model card: its data and licence, its final test and a real cohort
  assert.ok(page.card.shown, "the model card is shown");
  for (const words of ["MIMIC-IV", "ODbL", "final test", "final test of the real data", "under 18"]) {
    assert.ok(page.card.text.includes(words), `the model card says ${words}: ${page.card.text}`);
  }
  const expected = native();
  // a diagnosed group is "supported" exactly when the record holds a finding linked to it
  const evidenced = new Set(expected.diagnosis.evidence.map((e) => e.diagnosis));
  assert.deepEqual(
    page.supported.filter(([d, word, name]) => (d && evidenced.has(name)) !== (word === "✔ supported") || d !== (word !== null)),
    [],
    "supported rows say so, diagnosed rows without a finding say that, the others say nothing",
  );
  const worst = check(page, expected, CPU_TOLERANCE);
  assert.equal(page.rationale, expected.explanation.text, "the CPU in the browser writes the native text");
  console.log(`# browser CPU: max |wasm cpu - native cpu| = ${worst.toExponential(2)}; rationale identical`);
});

test("a FHIR file opens, a broken file gives a coded error, and the page stays usable", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    const { page, problems } = await openDemo(browser);
    const open = (name, mimeType, text) =>
      settle(page, () => page.setInputFiles("#upload", { name, mimeType, buffer: Buffer.from(text) }));
    const fhir = readFileSync(path.join(root, "tests/fixtures/fhir/mimic3-1001-bundle.json"), "utf8");
    assert.equal(await open("patient.json", "application/fhir+json", fhir), "done", await page.textContent("#error"));
    assert.match(await page.textContent("#patient-summary"), /FHIR Bundle/);
    assert.ok((await page.$$("#phenotypes tbody tr")).length > 0);
    await page.screenshot({ path: path.join(shots, "demo-fhir.png"), fullPage: true });
    // the answer back as FHIR, by keyboard: a transaction for the chart's Patient, one
    // RiskAssessment per diagnosed group, made in the page (no request leaves it: `problems`)
    const diagnosed = await page.$$eval("#phenotypes tr.diagnosed", (rows) => rows.length);
    assert.equal(await page.isVisible("#fhir-section"), diagnosed > 0);
    if (diagnosed > 0) {
      await page.focus("#fhir-download");
      const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
      const written = JSON.parse(readFileSync(await download.path(), "utf8"));
      const patient = JSON.parse(fhir).entry.find((e) => e.resource.resourceType === "Patient").resource.id;
      assert.equal(written.type, "transaction");
      const assessments = written.entry.filter((e) => e.resource.resourceType === "RiskAssessment");
      assert.equal(assessments.length, diagnosed);
      assert.ok(assessments.every((e) => e.resource.subject.reference === `Patient/${patient}`));
    }
    // a healthy child's outpatient chart (no observation; a note of headings and boilerplate):
    // the reasons instead of bars, no drug, no rationale
    const child = readFileSync(path.join(root, "tests/fixtures/fhir/healthy-child-bundle.json"), "utf8");
    assert.equal(await open("child.json", "application/fhir+json", child), "done", await page.textContent("#error"));
    assert.equal(await page.isVisible("#out-of-range"), true);
    const reasons = await page.$$eval("#out-of-range-reasons li", (items) => items.map((li) => li.dataset.kind));
    assert.deepEqual(reasons, ["no_observations", "age_outside_training", "setting_outside_training"]);
    for (const id of ["#phenotypes", "#medications-section", "#rationale-section", "#fhir-section"]) assert.equal(await page.isHidden(id), true, id);
    await page.screenshot({ path: path.join(shots, "demo-out-of-range.png"), fullPage: true });

    const bad = [
      ["broken.json", "{ not json", "RECORD_JSON"],
      ["wrong-type.json", JSON.stringify({ resourceType: "Observation", id: "x" }), "RECORD_FHIR"],
      ["no-id.json", JSON.stringify({ observations: [] }), "RECORD_JSON"],
    ];
    for (const [name, text, code] of bad) {
      assert.equal(await open(name, "application/json", text), "error", name);
      // words first, then the library's code and message in a detail
      const message = await page.textContent("#error details code");
      assert.ok(message.startsWith(`${code}:`), `${name}: ${message}`);
      assert.doesNotMatch(await page.textContent("#error"), /^[A-Z_]+:/, `${name}: the error opens in plain words`);
    }
    await page.screenshot({ path: path.join(shots, "demo-error.png"), fullPage: true });
    // still usable: a sample runs again and clears the error
    assert.equal(await settle(page, () => page.click("#run")), "done");
    assert.equal(await page.isHidden("#error"), true);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("a run started while another streams replaces it: one clean text, not two interleaved", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    const { page, problems } = await openDemo(browser);
    const run = async (start) => {
      assert.equal(await settle(page, start), "done", await page.textContent("#error"));
      return page.textContent("#rationale");
    };
    const alone = await run(() => page.selectOption("#sample", "1"));
    // patient 0 starts streaming, then patient 1 is chosen and Diagnose pressed before it ends
    const raced = await run(async () => {
      await page.selectOption("#sample", "0");
      await page.selectOption("#sample", "1");
      await page.click("#run");
    });
    assert.equal(raced, alone, "the last run's text alone, as when it runs by itself");
    assert.equal(await page.isHidden("#error"), true, "a replaced run is not an error");
    // Stop, pressed as the first piece of text appears: decoding ends there, marked as stopped
    await page.evaluate(() => {
      const box = document.querySelector("#rationale");
      const observer = new MutationObserver(() => {
        if (!box.textContent) return;
        observer.disconnect();
        document.querySelector("#stop").click();
      });
      observer.observe(box, { childList: true, characterData: true, subtree: true });
    });
    await page.evaluate(() => { document.body.dataset.state = "waiting"; });
    await page.selectOption("#sample", "0");
    await page.waitForSelector(`body[data-state="stopped"], ${settled}`, { timeout: 300_000 });
    assert.equal(await page.getAttribute("body", "data-state"), "stopped", await page.textContent("#error"));
    const stopped = await page.textContent("#rationale");
    assert.match(await page.textContent("#rationale-timing"), /^Stopped/);
    assert.equal(await page.isHidden("#stop"), true, "no Stop button once nothing runs");
    assert.equal(await page.isHidden("#error"), true, "a stopped run is not an error");
    const whole = await run(() => page.click("#run"));
    assert.ok(stopped.length > 0 && stopped.length < whole.length && whole.startsWith(stopped), `${stopped} | ${whole}`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("a truncated weights file and a manifest hash mismatch give coded errors; the page recovers", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    // the demo's service worker would fetch past page.route
    const page = await browser.newPage({ serviceWorkers: "block" });
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    const weights = readFileSync(path.join(demoBundle, "model.safetensors"));
    const manifest = JSON.parse(readFileSync(path.join(demoBundle, "manifest.json"), "utf8"));
    const flipped = Buffer.from(weights);
    flipped[5000] ^= 1;
    const broken = [
      // served weights cut short, as a dropped connection or a full disk leaves them
      ["truncated weights", "**/model/model.safetensors", weights.subarray(0, weights.length - 4096), "BUNDLE_INVALID", /model\.safetensors.*(truncated|bytes)/],
      // one flipped bit: the size matches, the sha256 does not
      ["flipped byte", "**/model/model.safetensors", flipped, "BUNDLE_HASH_MISMATCH", /sha256/],
      // a manifest that names a hash no file has
      [
        "manifest hash",
        "**/model/manifest.json",
        JSON.stringify({ ...manifest, files: { ...manifest.files, "model.safetensors": { ...manifest.files["model.safetensors"], sha256: "0".repeat(64) } } }),
        "BUNDLE_HASH_MISMATCH",
        /sha256/,
      ],
    ];
    for (const [name, url, body, code, pattern] of broken) {
      await page.route(url, (route) => route.fulfill({ status: 200, contentType: "application/octet-stream", body }));
      await page.goto(`${origin}/?tokens=${TOKENS}`);
      await page.waitForSelector(settled, { timeout: 300_000 });
      assert.equal(await page.getAttribute("body", "data-state"), "error", name);
      const message = await page.textContent("#error details code");
      assert.ok(message.startsWith(`${code}:`), `${name}: ${message}`);
      assert.match(message, pattern, name);
      assert.equal(await page.isEnabled("#backend"), true, `${name}: the backend can still be chosen`);
      assert.match(await page.textContent("#status"), /No model loaded/, name);
      if (name === "truncated weights") await page.screenshot({ path: path.join(shots, "demo-broken-bundle.png"), fullPage: true });
      await page.unroute(url);
    }
    // the intact bundle loads in the same page (no broken copy kept in the Cache API) by choosing
    // a backend again, and a diagnosis clears the error
    // a failed load opens "Advanced", where the backend is chosen
    assert.equal(await page.isVisible("#backend"), true, "the backend selector is shown after a failed load");
    assert.equal(await settle(page, () => page.selectOption("#backend", "cpu")), "done", await page.textContent("#error"));
    assert.equal(await page.isHidden("#error"), true);
    assert.ok((await page.$$("#phenotypes tbody tr")).length > 0);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("a WebGPU device lost mid-run gives WEBGPU_LOST and the page carries on with the CPU", async () => {
  const browser = await launch(["--enable-unsafe-webgpu"]);
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // keep a handle on the device wgpu creates, as a driver reset would take it away
    await page.addInitScript(() => {
      const gpu = navigator.gpu;
      const requestAdapter = gpu?.requestAdapter;
      if (!requestAdapter) return;
      gpu.requestAdapter = async function (...args) {
        const adapter = await requestAdapter.apply(this, args);
        const requestDevice = adapter?.requestDevice;
        if (adapter) adapter.requestDevice = async (...o) => (globalThis.testDevice = await requestDevice.apply(adapter, o));
        return adapter;
      };
    });
    await page.goto(`${origin}/?tokens=4&backend=webgpu`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    assert.equal(await page.getAttribute("#status", "data-backend"), "webgpu");
    // "auto" passes over the software adapter (SwiftShader) for the CPU, and says why
    const passedOver = await page.evaluate(async () => {
      const { Bedside } = await import("/pkg/bedside.js");
      const model = await Bedside.load("model/", { backend: "auto" });
      const { backend, fallbackReason } = model;
      model.dispose();
      return { backend, fallbackReason };
    });
    assert.equal(passedOver.backend, "cpu");
    assert.match(passedOver.fallbackReason, /^the WebGPU adapter \(.*\) is a software renderer, slower than the CPU$/);
    console.log(`# auto in Chromium: ${passedOver.fallbackReason}`);
    await page.evaluate(() => globalThis.testDevice.destroy());
    await page.evaluate(() => { document.body.dataset.state = "waiting"; });
    await page.click("#run");
    await page.waitForFunction(() => document.querySelector("#status").textContent.includes("WebGPU was lost") && document.body.dataset.state === "done", null, {
      timeout: 300_000,
    });
    assert.equal(await page.getAttribute("#status", "data-backend"), "cpu");
    assert.ok((await page.$$("#phenotypes tbody tr")).length > 0);
    // the package itself: WebGPU is refused with the code, "auto" gives the CPU
    const reloaded = await page.evaluate(async () => {
      const { Bedside } = await import("/pkg/bedside.js");
      const code = await Bedside.load("model/", { backend: "webgpu" }).then(() => "loaded", (e) => e.code);
      const auto = await Bedside.load("model/", { backend: "auto" });
      const { backend, fallbackReason } = auto;
      auto.dispose();
      return { code, backend, fallbackReason };
    });
    assert.deepEqual(reloaded, {
      code: "WEBGPU_LOST",
      backend: "cpu",
      fallbackReason: "WebGPU was lost earlier in this page; only the CPU is left in this wasm instance",
    });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("bedside/worker runs the same model in a Web Worker and replaces a worker that died", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    // the demo's service worker would fetch past page.route
    const page = await browser.newPage({ serviceWorkers: "block" });
    // the package's worker, except that the record "trap" first tears the instance's memory
    // (every byte zero), so that the call into it traps as a real bug would
    const trapWorker = `import "/pkg/worker-thread.js";
      import init from "/pkg/wasm/bedside.js";
      const handle = self.onmessage;
      self.onmessage = async (event) => {
        const { method, args } = event.data;
        if (method === "diagnose" && args[0] === "trap") new Uint8Array((await init()).memory.buffer).fill(0);
        handle(event);
      };`;
    // served with the demo's headers: a cross-origin-isolated page runs only workers that say so
    await page.route("**/trap-worker.js", (route) => route.fulfill({ status: 200, contentType: "text/javascript", headers: HEADERS, body: trapWorker }));
    await page.goto(`${origin}/?tokens=${TOKENS}`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    const result = await page.evaluate(async ([record, tokens]) => {
      const { BedsideWorker } = await import("/pkg/worker-page.js");
      const model = await BedsideWorker.load("model/", { backend: "cpu" });
      const diagnosis = await model.diagnose(record);
      const drugs = await model.recommend(record);
      let text = "";
      let last;
      for await (const item of model.explain(record, { maxTokens: tokens })) {
        if (typeof item === "string") text += item;
        else last = item;
      }
      let error;
      try {
        await model.diagnose("{ not json");
      } catch (e) {
        error = e.code;
      }
      // cancelled in the worker: explain by its signal after the first piece, then the same
      // answer again; a call still pending when the model is disposed
      const controller = new AbortController();
      let piecesBeforeAbort = 0;
      const aborted = await (async () => {
        for await (const item of model.explain(record, { maxTokens: tokens, signal: controller.signal })) {
          if (typeof item === "string" && ++piecesBeforeAbort === 1) controller.abort();
        }
        return "finished";
      })().catch((e) => e.code);
      let again = "";
      for await (const item of model.explain(record, { maxTokens: tokens })) if (typeof item === "string") again += item;
      const pending = model.diagnose(record);
      // two microtasks: the call is posted to the worker (after #call's await) before dispose()
      await Promise.resolve();
      await Promise.resolve();
      model.dispose();
      const disposed = await pending.then(() => "answered", (e) => e.code);
      // a worker whose wasm instance dies is replaced
      const trapping = await BedsideWorker.load("model/", { backend: "cpu", worker: "/trap-worker.js" });
      const trap = await trapping.diagnose("trap").then(() => "no error", (e) => e.code);
      const afterTrap = await trapping.diagnose(record);
      const restarts = trapping.restarts;
      trapping.dispose();
      return {
        backend: model.backend,
        phenotypes: diagnosis.phenotypes,
        drugs: drugs.medications.map((d) => d.code),
        text,
        final: last.text,
        error,
        aborted,
        piecesBeforeAbort,
        again,
        disposed,
        trap,
        restarts,
        afterTrap: afterTrap.phenotypes,
      };
    }, [samples[0], TOKENS]);
    const expected = native();
    assert.equal(result.backend, "cpu");
    assertSameProbabilities({ phenotypes: result.phenotypes }, expected.diagnosis, CPU_TOLERANCE);
    assert.deepEqual(result.drugs, expected.recommendation.medications.map((d) => d.code));
    assert.equal(result.text, expected.explanation.text);
    assert.equal(result.final, result.text);
    assert.equal(result.error, "RECORD_JSON");
    assert.equal(result.aborted, "ABORTED");
    assert.equal(result.piecesBeforeAbort, 1, "no piece after the abort");
    assert.equal(result.again, expected.explanation.text, "the worker's model carries on after a cancel");
    assert.equal(result.disposed, "DISPOSED", "a call pending at dispose() fails with its code");
    assert.equal(result.trap, "WASM_PANIC");
    assert.equal(result.restarts, 1, "a fresh worker replaced the one that trapped");
    assertSameProbabilities({ phenotypes: result.afterTrap }, expected.diagnosis, CPU_TOLERANCE);
  } finally {
    await browser.close();
  }
});

test("a wasm trap on the page fails the call it hit, mid-explain too; the next load starts afresh", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    const page = await browser.newPage({ serviceWorkers: "block" });
    await page.goto(`${origin}/?tokens=${TOKENS}`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    const result = await page.evaluate(async ([record, tokens]) => {
      const { Bedside } = await import("/pkg/bedside.js");
      const { default: init } = await import("/pkg/wasm/bedside.js");
      const model = await Bedside.load("model/", { backend: "cpu" });
      const memory = (await init()).memory; // the instance the package (and the page) run in
      // the memory torn after the first piece: the next token's step, a task of its own, traps
      let pieces = 0;
      const during = await (async () => {
        for await (const item of model.explain(record, { maxTokens: tokens })) {
          if (typeof item === "string" && ++pieces === 1) new Uint8Array(memory.buffer).fill(0);
        }
        return "finished";
      })().catch((e) => `${e.code}: ${e.message}`);
      const stale = await model.diagnose(record).then(() => "answered", (e) => e.code);
      // a fresh instance, or (where the browser will not instantiate this module synchronously on
      // the main thread) a WASM_PANIC that asks for a reload
      const fresh = await Bedside.load("model/", { backend: "cpu" }).then(
        async (m) => ({ phenotypes: (await m.diagnose(record)).phenotypes }),
        (e) => ({ code: e.code, message: e.message }),
      );
      return { during, pieces, stale, fresh };
    }, [samples[0], TOKENS]);
    assert.equal(result.pieces, 1, "no piece after the trap");
    assert.match(result.during, /^WASM_PANIC: the wasm module crashed/, "the trap in an asynchronous step fails the call");
    assert.equal(result.stale, "WASM_PANIC", "a model of the dead instance is refused");
    console.log(`# after the trap: ${JSON.stringify(result.fresh).slice(0, 200)}`);
    assert.ok(result.fresh.phenotypes, `a fresh instance on the page's main thread: ${result.fresh.message}`);
    assertSameProbabilities({ phenotypes: result.fresh.phenotypes }, native().diagnosis, CPU_TOLERANCE);
    // the demo's own model died with the instance: Diagnose starts it again
    assert.equal(await settle(page, () => page.click("#run")), "done", await page.textContent("#error"));
    assert.equal(await page.getAttribute("#status", "data-backend"), "cpu");
  } finally {
    await browser.close();
  }
});

test("once loaded, the demo works offline", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${origin}/?tokens=${TOKENS}`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    // the page's service worker controls it (bounded: without one the test fails, not hangs)
    await page.waitForFunction(() => !!navigator.serviceWorker?.controller, null, { timeout: 30_000 });
    const online = await page.$$eval("#phenotypes tbody tr", (rows) => rows.map((r) => r.dataset.probability));
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector(settled, { timeout: 300_000 });
    assert.equal(await page.getAttribute("body", "data-state"), "done", await page.textContent("#error"));
    const offline = await page.$$eval("#phenotypes tbody tr", (rows) => rows.map((r) => r.dataset.probability));
    assert.deepEqual(offline, online, "the same answers offline");
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("the bundle cache is keyed by content: an updated bundle at the same URL loads at once; offline from the cache", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    // no service worker: the package's own cache is what is tested, and the routes see every fetch
    const page = await (await browser.newContext({ serviceWorkers: "block" })).newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${origin}/?tokens=1`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    // /swap/ serves the demo bundle, then the tiny lab-phenotype bundle, at the same URL
    const bundles = { demo: demoBundle, tiny: path.join(root, "tests/fixtures/tiny-bundle") };
    let serving = "demo";
    let offline = false;
    await page.route("**/swap/**", (route) => {
      if (offline) return route.abort("internetdisconnected");
      const file = path.join(bundles[serving], new URL(route.request().url()).pathname.replace(/^\/swap\//, ""));
      try {
        return route.fulfill({ status: 200, body: readFileSync(file) });
      } catch {
        return route.fulfill({ status: 404, body: "" });
      }
    });
    const load = () =>
      page.evaluate(async () => {
        const { Bedside } = await import("/pkg/bedside.js");
        const progress = [];
        try {
          const model = await Bedside.load("/swap/", { backend: "cpu", onProgress: (p) => progress.push(p) });
          const files = Object.keys(model.manifest.files).sort();
          model.dispose();
          const cached = progress.filter((p) => p.cached).map((p) => p.file).sort();
          return { files, cached, isCached: await Bedside.isCached("/swap/") };
        } catch (e) {
          return { code: e.code, message: e.message, isCached: await Bedside.isCached("/swap/") };
        }
      });
    const demoFilesListed = ["medrec.safetensors", "model.safetensors", "tokenizer.json"];
    assert.deepEqual(await load(), { files: demoFilesListed, cached: [], isCached: true }, "first load: fetched, then cached");
    assert.deepEqual(await load(), { files: demoFilesListed, cached: demoFilesListed, isCached: true }, "second load: from the cache");
    serving = "tiny";
    assert.deepEqual(
      await load(),
      { files: ["model.safetensors"], cached: [], isCached: true },
      "the republished bundle loads on the first try: the cached weights no longer match the manifest",
    );
    offline = true;
    assert.deepEqual(await load(), { files: ["model.safetensors"], cached: ["model.safetensors"], isCached: true }, "offline: manifest and weights from the cache");
    const cleared = await page.evaluate(async () => {
      const { Bedside } = await import("/pkg/bedside.js");
      return [await Bedside.clearCache("/swap/"), await Bedside.isCached("/swap/")];
    });
    assert.deepEqual(cleared, [true, false]);
    const failed = await load();
    assert.equal(failed.code, "BUNDLE_FETCH", "offline with nothing cached: " + failed.message);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test("the bad-input catalogue in the browser: every record and every damaged bundle as in Node", async () => {
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    // the demo's service worker would fetch past page.route
    const page = await browser.newPage({ serviceWorkers: "block" });
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${origin}/?tokens=${TOKENS}`);
    await page.waitForSelector(settled, { timeout: 300_000 });
    // damaged bundles are served under /catalogue/<case>/ (edited here in Node, as in the Node test)
    const bundleCases = cases("bundles.jsonl");
    const demo = demoFiles();
    await page.route("**/catalogue/**", (route) => {
      const [, index, file] = new URL(route.request().url()).pathname.match(/^\/catalogue\/(\d+)\/(.+)$/);
      const files = edited(demo, bundleCases[Number(index)].edits);
      return files[file] ? route.fulfill({ status: 200, body: Buffer.from(files[file]) }) : route.fulfill({ status: 404, body: "" });
    });
    const recordCases = cases("records.jsonl");
    const outcomes = await page.evaluate(
      async ([inputs, bundles, noVisits]) => {
        const { Bedside } = await import("/pkg/bedside.js");
        const outcomeOf = (e) => ({ code: e.code ?? `not a BedsideError: ${e}`, message: String(e.message) });
        const model = await Bedside.load("model/", { backend: "cpu" });
        const records = [];
        for (const input of inputs) {
          try {
            const diagnosis = await model.diagnose(input);
            await model.recommend(input).catch((e) => {
              // only a record without visits may be refused (refusedForNoVisits in catalogue.mjs)
              if (!(e.code === "RECORD_INVALID" && String(e.message).includes(noVisits))) throw e;
            });
            records.push({ notices: diagnosis.notices.map((n) => n.kind) });
          } catch (e) {
            records.push(outcomeOf(e));
          }
        }
        model.dispose();
        const loads = [];
        for (let i = 0; i < bundles; i++) {
          try {
            (await Bedside.load(`/catalogue/${i}/`, { backend: "cpu", cache: false })).dispose();
            loads.push({ notices: [] });
          } catch (e) {
            loads.push(outcomeOf(e));
          }
        }
        return { records, loads };
      },
      [recordCases.map((c) => c.input), bundleCases.length, NO_VISITS],
    );
    const failures = [
      ...recordCases.map((c, i) => [c.name, mismatch(c, outcomes.records[i])]),
      ...bundleCases.map((c, i) => [c.name, mismatch(c, outcomes.loads[i])]),
    ].filter(([, wrong]) => wrong).map(([name, wrong]) => `${name}: ${wrong}`);
    console.log(`# browser catalogue: ${recordCases.length} records, ${bundleCases.length} bundles, ${failures.length} unexpected`);
    assert.deepEqual(failures, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
