// bedside as a SMART on FHIR app (SMART App Launch 2: EHR launch and standalone launch, a public
// client, authorization code with PKCE S256). A small client of its own rather than the
// `fhirclient` package: fhirclient keeps the token response in sessionStorage, where bedside keeps
// tokens in memory only (a reload launches again), and it needs a bundler where bedside's page is
// plain ES modules. What crosses the redirect — the PKCE verifier, the state, the server's token
// endpoint — is in sessionStorage, used once. `readChart` reads the patient's chart (every page of
// each search, the notes at a URL fetched, referenced Medications resolved) into one FHIR Bundle,
// which the model then reads exactly as an uploaded one.
import { BedsideError, checkSignal } from "./errors.js";

const PENDING = "bedside.smart.pending";
/** The most pages one search follows (a server whose `next` links never end is refused, not followed forever). */
const MAX_PAGES = 100;

/** Base64url of bytes, unpadded (PKCE and state). */
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Base64 of a text's UTF-8 bytes (a note's attachment `data`). */
function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

const random = (n) => base64url(crypto.getRandomValues(new Uint8Array(n)));

/** A FHIR base URL as the allowlist and the requests compare it: normalised by URL (case of the
 * host, default port, percent-encoding), no trailing slash; not a URL: as given. */
function base(url) {
  let href = String(url);
  try {
    href = new URL(href).href;
  } catch {
    // compared as text: matches no normalised entry
  }
  return href.replace(/\/+$/, "");
}

const launchError = (message, cause) => new BedsideError("SMART_LAUNCH", message, { cause });

/** The FHIR servers a deployment allows, as base URLs; `iss` must be one of them. */
function checkAllowed(iss, allowed) {
  if (!iss) throw launchError("no FHIR server (iss) was named");
  if (!(allowed ?? []).map(base).includes(base(iss))) {
    throw launchError(`the FHIR server ${iss} is not on this deployment's list of FHIR servers: ask the administrator to add it`);
  }
}

/** The server's SMART configuration (`.well-known/smart-configuration`): its endpoints, PKCE S256 required. */
async function discover(iss, fetchImpl) {
  let config;
  try {
    const response = await fetchImpl(`${base(iss)}/.well-known/smart-configuration`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (e) {
    throw launchError(`the SMART configuration of ${iss} could not be read (${e.message})`, e);
  }
  for (const field of ["authorization_endpoint", "token_endpoint"]) {
    if (typeof config?.[field] !== "string") throw launchError(`${iss}'s SMART configuration has no ${field}`);
  }
  const methods = config.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) {
    throw launchError(`${iss} does not support PKCE with S256, which this app requires`);
  }
  return config;
}

/**
 * Starts a launch: checks `iss` against `allowed`, reads the server's SMART configuration, keeps
 * the PKCE verifier and a fresh state in sessionStorage, and returns the authorization URL to go
 * to (the caller navigates: `location.assign(url)`).
 * `options`: `{ iss, launch, clientId, scope, redirectUri, allowed }`; `launch` (the EHR's launch
 * id) makes it an EHR launch, its absence a standalone launch.
 */
export async function authorize({ iss, launch, clientId, scope, redirectUri, allowed, fetch: fetchImpl = globalThis.fetch }) {
  checkAllowed(iss, allowed);
  if (!clientId) throw new BedsideError("BAD_OPTION", "options.clientId is required: the id the EHR registered this app under");
  const config = await discover(iss, fetchImpl);
  const state = random(32);
  const verifier = random(48);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const requested = scope ?? (launch ? "launch openid fhirUser patient/*.rs" : "launch/patient openid fhirUser patient/*.rs");
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, iss: base(iss), tokenEndpoint: config.token_endpoint, clientId, redirectUri }));
  const url = new URL(config.authorization_endpoint);
  const query = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: requested,
    state,
    aud: base(iss),
    code_challenge: base64url(digest),
    code_challenge_method: "S256",
  };
  if (launch) query.launch = launch;
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.href;
}

/** Whether `url` is the return of an authorization (`code` or `error`, with a `state`). */
export function isAuthorizationResponse(url) {
  const query = new URL(url).searchParams;
  return query.has("state") && (query.has("code") || query.has("error"));
}

/**
 * Ends a launch at the redirect: checks the state against the one kept, swaps the code and the
 * PKCE verifier for a token, and forgets what was kept. The token lives only in the returned
 * session (memory): nothing of it is stored.
 */
export async function completeAuthorization({ url, fetch: fetchImpl = globalThis.fetch } = {}) {
  const query = new URL(url ?? globalThis.location.href).searchParams;
  const kept = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  let pending;
  try {
    pending = kept ? JSON.parse(kept) : undefined;
  } catch {
    pending = undefined; // damaged: as if none was kept
  }
  if (!pending || pending.state !== query.get("state")) {
    throw launchError("this sign-in answer does not match a launch started here (its state differs): launch again from the EHR");
  }
  if (query.has("error")) {
    const why = query.get("error_description") ?? query.get("error");
    throw launchError(`the EHR refused the launch: ${why}`);
  }
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: query.get("code"),
    redirect_uri: pending.redirectUri,
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  let token;
  try {
    const response = await fetchImpl(pending.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
    });
    token = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(token.error_description ?? token.error ?? `HTTP ${response.status}`);
  } catch (e) {
    throw launchError(`the token endpoint refused the sign-in (${e.message})`, e);
  }
  if (typeof token.access_token !== "string") throw launchError("the token endpoint gave no access token");
  if (typeof token.patient !== "string") throw launchError("the EHR named no patient (the launch context has no `patient`)");
  return new SmartSession(pending.iss, token);
}

/** A signed-in session with one FHIR server: the patient and encounter in context, the granted scopes; the token in memory. */
export class SmartSession {
  #token;
  constructor(serverUrl, token) {
    this.serverUrl = base(serverUrl);
    this.#token = token.access_token;
    this.patient = token.patient;
    // SMART gives the encounter as an id; some servers as a reference
    const encounter = typeof token.encounter === "string" && token.encounter ? token.encounter : undefined;
    this.encounter = encounter && !encounter.includes("/") ? `Encounter/${encounter}` : encounter;
    this.scopes = String(token.scope ?? "").split(/\s+/).filter(Boolean);
    this.expiresAt = Number.isFinite(token.expires_in) ? Date.now() + token.expires_in * 1000 : undefined;
  }

  /** Whether the granted scopes allow creating each of `types` for this patient (SMART 2 `.c`, or v1 `.write`). */
  canCreate(types) {
    const grants = (type) =>
      this.scopes.some((s) => {
        const m = /^(patient|user|system)\/([A-Za-z]+|\*)\.(\*|write|[cruds]+)$/.exec(s);
        return m && (m[2] === "*" || m[2] === type) && (m[3] === "*" || m[3] === "write" || m[3].includes("c"));
      });
    return types.every(grants);
  }

  /** One FHIR interaction (`path` relative to the server, or an absolute URL on it), as JSON (`raw`:
   * the Response); HTTP failures as coded errors. */
  async request(path, { method = "GET", body, signal, accept = "application/fhir+json", raw = false } = {}) {
    const url = new URL(path, `${this.serverUrl}/`);
    if (!url.href.startsWith(`${this.serverUrl}/`)) {
      throw new BedsideError("FHIR_SERVER", `${url.href} is not on ${this.serverUrl}: the token is sent to no other address`);
    }
    const what = `${method} ${url.pathname.slice(new URL(this.serverUrl).pathname.length)}${url.search}`;
    let response;
    try {
      response = await fetch(url, {
        method,
        signal,
        redirect: "error", // a redirect would carry the token elsewhere
        headers: {
          Authorization: `Bearer ${this.#token}`,
          Accept: accept,
          ...(body === undefined ? {} : { "Content-Type": "application/fhir+json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      if (e?.name === "AbortError") throw new BedsideError("ABORTED", `${what} stopped by the caller`, { cause: e });
      throw new BedsideError("FHIR_SERVER", `the FHIR server could not be reached for ${what} (${e.message})`, { cause: e });
    }
    if (response.ok) {
      if (raw) return response;
      try {
        return await response.json();
      } catch (e) {
        throw new BedsideError("FHIR_SERVER", `the FHIR server's answer to ${what} is not JSON (${e.message})`, { cause: e });
      }
    }
    const outcome = await response.json().catch(() => undefined);
    const said = outcome?.issue?.map((i) => i.diagnostics ?? i.details?.text).filter(Boolean).join("; ");
    const detail = said ? `: ${said}` : "";
    if (response.status === 401) throw new BedsideError("FHIR_UNAUTHORIZED", `the FHIR server no longer accepts this sign-in (HTTP 401 for ${what}${detail}); launch again`);
    if (response.status === 403) throw new BedsideError("FHIR_FORBIDDEN", `the granted scopes do not allow ${what} (HTTP 403${detail})`);
    throw new BedsideError("FHIR_SERVER", `the FHIR server answered HTTP ${response.status} to ${what}${detail}`);
  }

  /** Every resource a search finds, following its `next` links (on this server only). */
  async search(path, { signal, onPage } = {}) {
    const found = [];
    let next = path;
    for (let page = 0; next; page += 1) {
      if (page === MAX_PAGES) throw new BedsideError("FHIR_SERVER", `${path} has more than ${MAX_PAGES} pages: not read`);
      const bundle = await this.request(next, { signal });
      for (const entry of bundle.entry ?? []) {
        if (entry.resource && entry.search?.mode !== "outcome") found.push(entry.resource);
      }
      onPage?.(found.length);
      next = bundle.link?.find((l) => l.relation === "next")?.url;
    }
    return found;
  }

  /** Writes a transaction Bundle (`toFhir`'s) to the chart; the server's transaction-response. */
  async save(bundle, { signal } = {}) {
    if (bundle?.resourceType !== "Bundle" || bundle.type !== "transaction") {
      throw new BedsideError("BAD_OPTION", "only a transaction Bundle (toFhir's, for an answer in range) is written to a chart");
    }
    const types = [...new Set(bundle.entry.map((e) => e.resource.resourceType))];
    if (!this.canCreate(types)) {
      throw new BedsideError("FHIR_FORBIDDEN", `the granted scopes (${this.scopes.join(" ") || "none"}) do not allow creating ${types.join(", ")}`);
    }
    return this.request("", { method: "POST", body: bundle, signal });
  }
}

/** The searches that make a chart: what the model reads, by name for progress. */
function queries(patient) {
  const p = encodeURIComponent(patient);
  return [
    ["Encounters", `Encounter?patient=${p}&_count=100`],
    ["Vital signs", `Observation?patient=${p}&category=vital-signs&_count=200`],
    ["Laboratory results", `Observation?patient=${p}&category=laboratory&_count=200`],
    ["Conditions", `Condition?patient=${p}&_count=100`],
    ["Medication requests", `MedicationRequest?patient=${p}&_count=100`],
    ["Medication statements", `MedicationStatement?patient=${p}&_count=100`],
    ["Procedures", `Procedure?patient=${p}&_count=100`],
    ["Clinical notes", `DocumentReference?patient=${p}&_count=100`],
  ];
}

/**
 * A note at a URL, fetched (with the token, from the FHIR server only) and inlined as `data`. A
 * note elsewhere, or one the server cannot give, stays as it is: the reader reports it as unread.
 */
async function inlineNote(session, attachment, signal) {
  const type = String(attachment.contentType ?? "text/plain");
  if (attachment.data || !attachment.url || !/^text\/(plain|html)/.test(type)) return;
  const url = new URL(attachment.url, `${session.serverUrl}/`);
  if (!url.href.startsWith(`${session.serverUrl}/`)) return;
  let response;
  try {
    response = await session.request(url.href, { signal, raw: true, accept: `${type.split(";")[0]}, application/fhir+json;q=0.5` });
  } catch (e) {
    if (e.code === "FHIR_SERVER" || e.code === "FHIR_FORBIDDEN") return;
    throw e;
  }
  const text = await response.text();
  let binary;
  if (/json/.test(response.headers.get("content-type") ?? "")) {
    try {
      binary = JSON.parse(text);
    } catch {
      binary = undefined;
    }
  }
  attachment.data = binary?.resourceType === "Binary" ? binary.data : base64(text);
}

/**
 * The patient's chart as one FHIR Bundle (a collection), read from the server: the Patient, their
 * encounters, vital signs and laboratory results, conditions, medication requests and
 * statements (a `medicationReference` read and added), procedures and notes (DocumentReference;
 * a text/plain or text/html note at a `url` fetched and inlined). `onProgress({ step, done,
 * total, resources })` after each query. An empty chart (no encounter, observation, condition or
 * note) is `FHIR_EMPTY`.
 */
export async function readChart(session, { onProgress, signal } = {}) {
  const steps = queries(session.patient);
  const total = steps.length + 1;
  const byReference = new Map();
  const add = (resource) => byReference.set(`${resource.resourceType}/${resource.id}`, resource);
  checkSignal(signal, "readChart");
  add(await session.request(`Patient/${encodeURIComponent(session.patient)}`, { signal }));
  onProgress?.({ step: "Patient", done: 1, total, resources: 1 });
  for (const [i, [step, path]] of steps.entries()) {
    const found = await session.search(path, { signal, onPage: (n) => onProgress?.({ step, done: i + 1, total, resources: n }) });
    found.forEach(add);
    onProgress?.({ step, done: i + 2, total, resources: found.length });
  }
  for (const resource of [...byReference.values()]) {
    const medication = resource.medicationReference?.reference;
    if (/^Medication\/[^/]+$/.test(medication ?? "") && !byReference.has(medication)) {
      // a Medication the server cannot give leaves its request uncoded (the reader reports it)
      const found = await session.request(medication, { signal }).catch((e) => {
        if (e.code === "FHIR_SERVER" || e.code === "FHIR_FORBIDDEN") return undefined;
        throw e;
      });
      if (found) add(found);
    }
    if (resource.resourceType === "DocumentReference") {
      for (const content of resource.content ?? []) if (content.attachment) await inlineNote(session, content.attachment, signal);
    }
  }
  const resources = [...byReference.values()];
  if (!resources.some((r) => ["Encounter", "Observation", "Condition", "DocumentReference"].includes(r.resourceType))) {
    throw new BedsideError("FHIR_EMPTY", `the chart of Patient/${session.patient} holds no encounter, observation, condition or note to read`);
  }
  return {
    resourceType: "Bundle",
    type: "collection",
    entry: resources.map((resource) => ({ fullUrl: `${session.serverUrl}/${resource.resourceType}/${resource.id}`, resource })),
  };
}
