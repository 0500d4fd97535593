// The demo page as a SMART on FHIR app in headless Chromium, against the local sandbox
// (tests/sandbox/server.mjs: a FHIR R4 server, a SMART authorization server, a pretend EHR): the
// EHR launch and the standalone launch run to a diagnosis of the chart; every evidence reference
// resolves on the server to the observation whose value, in the channel's unit, the page shows;
// "Save to chart" (pressed from the keyboard) writes toFhir's Bundle and reads it back; an expired
// sign-in and a server not on the allowlist say so; no request goes anywhere but the page's origin
// and the sandbox; axe-core finds nothing serious on the new screens.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createServer } from "../../www/serve.mjs";
import { SYNTHEA, startSandbox } from "../sandbox/server.mjs";
import { quantityFor } from "../sandbox/us-core.mjs";
import { root, samples } from "../node/helpers.mjs";
import { launchWatched } from "./chromium.mjs";

const shots = path.join(root, "target/screenshots");
const settled = 'body[data-state="done"], body[data-state="error"]';
let sandbox;
let server;
let origin;

before(async () => {
  mkdirSync(shots, { recursive: true });
  sandbox = await startSandbox({ charts: samples, synthea: existsSync(SYNTHEA) ? SYNTHEA : undefined });
  const smart = JSON.parse(readFileSync(path.join(root, "www/smart.json"), "utf8"));
  server = createServer({ smart: { ...smart, fhirServers: [sandbox.fhirBase], ehrOrigins: [sandbox.origin] } });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server?.close();
  await sandbox?.close();
});

/** Chromium on the CPU that may ask the page's origin and the sandbox only. */
const launch = () => launchWatched(["--disable-features=WebGPU"], (url) => url.startsWith(`${origin}/`) || url.startsWith(`${sandbox.origin}/`));

/** A page that records CSP violations and page errors. */
async function newPage(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  return { page, problems };
}

async function settle(page) {
  await page.waitForSelector(settled, { timeout: 300_000 });
  const state = await page.getAttribute("body", "data-state");
  assert.equal(state, "done", `page ended in state ${state}: ${await page.textContent("#error")}`);
}

/** The page's lab evidence against the server: each reference holds the value and unit shown. */
async function checkEvidence(page) {
  const items = await page.$$eval("#evidence li[data-reference][data-value]", (list) =>
    list.map((li) => ({ reference: li.dataset.reference, value: Number(li.dataset.value), unit: li.dataset.unit, channel: li.querySelector("[data-channel]")?.dataset.channel, text: li.textContent })),
  );
  assert.ok(items.length > 0, "the page shows lab evidence with its FHIR references");
  for (const item of items) {
    const resource = await sandbox.read(item.reference);
    assert.ok(resource, `${item.reference} is on the server`);
    const quantity = quantityFor(resource, item.channel);
    assert.ok(quantity, `${item.reference} holds ${item.channel}`);
    assert.equal(quantity.unit, item.unit, `${item.reference}: the unit shown`);
    assert.ok(Math.abs(quantity.value - item.value) <= 1e-9 * Math.max(1, Math.abs(item.value)), `${item.reference}: ${quantity.value} on the server, ${item.value} on the page`);
    assert.ok(item.text.includes(item.unit) && item.text.includes(`(${item.reference})`), `the page says the unit and cites ${item.reference}`);
  }
  return items.length;
}

async function axe(page) {
  await page.evaluate(readFileSync(path.join(root, "node_modules/axe-core/axe.min.js"), "utf8"));
  const found = await page.evaluate(async () =>
    (await globalThis.axe.run(document, { resultTypes: ["violations"] })).violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
  );
  assert.deepEqual(found, [], "axe-core: serious or critical accessibility violations");
}

test("an EHR launch: the chart is read and diagnosed, its evidence resolves, Save to chart writes it back", async () => {
  const chart = sandbox.charts.find((c) => c.record.notes?.length && c.record.visits?.length > 1);
  const browser = await launch();
  try {
    const { page, problems } = await newPage(browser);
    // the clinician's click in the EHR: to the app with iss and launch, on to the sign-in, back with a code
    await page.goto(sandbox.launchUrl(`${origin}/?backend=cpu&tokens=48`, chart.patient, `Encounter/${chart.encounter}`));
    await settle(page);
    assert.match(await page.textContent("#chart-status"), /^Read the chart of Patient\/bedside-\d+-patient/);
    const address = new URL(page.url());
    assert.deepEqual([...address.searchParams.keys()].sort(), ["backend", "tokens"], "the code and state are off the address bar; the page's options kept");
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
    assert.doesNotMatch(stored, /access_token|bedside\.smart/, "no token and no launch state are left in storage");
    // nor in the service worker's cache: no chart, no sign-in's code
    const cached = await page.evaluate(async () => (await Promise.all((await caches.keys()).map(async (name) => (await (await caches.open(name)).keys()).map((r) => r.url)))).flat());
    for (const url of cached) assert.ok(url.startsWith(`${origin}/`) && !/[?&](code|state|iss|launch)=/.test(url), `cached: ${url}`);
    const requested = sandbox.requests.filter((r) => r.path.startsWith("/fhir/") && r.origin === origin).map((r) => r.path.split("?")[0]);
    for (const query of ["/fhir/Patient/", "/fhir/Encounter", "/fhir/Observation", "/fhir/Condition", "/fhir/MedicationRequest", "/fhir/DocumentReference"]) {
      assert.ok(requested.some((p) => p.startsWith(query)), `${query} read`);
    }
    await checkEvidence(page);
    await page.screenshot({ path: path.join(shots, "smart-ehr-launch.png"), fullPage: true });

    // Save to chart, from the keyboard
    const diagnosed = await page.$$eval("#phenotypes tr.diagnosed", (rows) => rows.length);
    assert.ok(diagnosed > 0, "the chart gets a diagnosis to save");
    await page.focus("#fhir-save");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => /^Saved to the chart and read back|reading them back failed/.test(document.getElementById("save-status").textContent), null, { timeout: 60_000 });
    assert.match(await page.textContent("#save-status"), /^Saved to the chart and read back: /);
    const locations = (await page.getAttribute("#save-status", "data-locations")).split(" ");
    const saved = await Promise.all(locations.map((l) => sandbox.read(l)));
    assert.ok(saved.every(Boolean), "every saved resource is on the server");
    const assessments = saved.filter((r) => r.resourceType === "RiskAssessment");
    assert.equal(assessments.length, diagnosed, "one RiskAssessment per diagnosed group");
    for (const a of assessments) {
      assert.equal(a.subject.reference, `Patient/${chart.patient}`);
      assert.equal(a.encounter?.reference, `Encounter/${chart.encounter}`);
      for (const b of a.basis ?? []) assert.ok(await sandbox.read(b.reference), `basis ${b.reference} resolves`);
    }
    assert.ok(saved.some((r) => r.resourceType === "Provenance"), "a Provenance is saved");
    await axe(page);
    assert.deepEqual(await page.evaluate(() => window.__violations), [], "Content-Security-Policy violations");
    assert.deepEqual(problems, []);

    // a reload: the sign-in is gone with the page, and no sample is diagnosed in the chart's place
    await page.reload();
    await settle(page);
    assert.match(await page.textContent("#chart-status"), /not kept across a reload: open bedside from the EHR again/);
    assert.equal(await page.$$eval("#phenotypes tbody tr", (rows) => rows.length), 0, "nothing diagnosed");
  } finally {
    await browser.close();
  }
});

test("a standalone launch from the page, by keyboard; an expired sign-in and a server not allowed say so", async () => {
  const chart = sandbox.charts.find((c) => c.record.notes?.length && c.resources.some((r) => r.resourceType === "Binary"));
  const browser = await launch();
  try {
    const { page, problems } = await newPage(browser);
    await page.goto(`${origin}/?backend=cpu&tokens=48`);
    await settle(page);
    assert.equal(await page.isVisible("#ehr"), true, "the page offers the EHR sign-in");
    assert.equal(await page.inputValue("#fhir-server"), sandbox.fhirBase);
    await page.focus("#sign-in");
    await page.evaluate(() => { document.body.dataset.state = "waiting"; });
    await page.keyboard.press("Enter");
    // the EHR's patient picker (the sandbox's page), then back to bedside
    await page.click(`#patients a:text-is("${chart.record.id}")`);
    await settle(page);
    assert.match(await page.textContent("#chart-status"), new RegExp(`^Read the chart of Patient/${chart.patient} `));
    await checkEvidence(page);
    await axe(page);

    // the sign-in expires: saving says to launch again, and nothing is written
    sandbox.expireTokens();
    const since = sandbox.requests.length;
    await page.evaluate(() => { document.body.dataset.state = "waiting"; });
    await page.click("#fhir-save");
    await page.waitForSelector("#error:not([hidden])");
    assert.match(await page.textContent("#error"), /sign-in has expired.*FHIR_UNAUTHORIZED/s);
    assert.equal(await page.textContent("#save-status"), "Not saved.");
    const writes = sandbox.requests.slice(since).filter((r) => r.method === "POST" && /^\/fhir\/?$/.test(r.path));
    assert.deepEqual(writes.map((r) => r.status), [401], "the one write was refused, nothing written");

    // a FHIR server not on this deployment's list is refused before anything is sent to it
    await page.goto(`${origin}/?iss=${encodeURIComponent("http://127.0.0.1:1/fhir")}&launch=abc`);
    await page.waitForSelector("#error:not([hidden])");
    assert.match(await page.textContent("#error"), /SMART_LAUNCH: the FHIR server http:\/\/127\.0\.0\.1:1\/fhir is not on this deployment's list/);
    await page.screenshot({ path: path.join(shots, "smart-not-allowed.png"), fullPage: true });
    assert.deepEqual(await page.evaluate(() => window.__violations), []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
