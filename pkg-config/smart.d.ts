// SMART on FHIR (App Launch 2) for bedside: launch, read the chart, write the answer back.
import type { BedsideError } from "./bedside.js";

export interface AuthorizeOptions {
  /** The FHIR server's base URL: the EHR launch's `iss`, or the server chosen for a standalone launch. */
  iss: string;
  /** The EHR launch's `launch` id; absent for a standalone launch. */
  launch?: string;
  /** The id the EHR registered this app under. */
  clientId: string;
  /** The scopes to ask for (default: `launch openid fhirUser patient/*.rs`, `launch/patient …` standalone). */
  scope?: string;
  /** Where the EHR sends the sign-in back to (registered with the EHR). */
  redirectUri: string;
  /** The FHIR servers this deployment allows; `iss` must be one of them (`SMART_LAUNCH` otherwise). */
  allowed: readonly string[];
  fetch?: typeof fetch;
}

/** Checks `iss`, reads its SMART configuration, keeps the PKCE verifier and state in
 * sessionStorage; the authorization URL to navigate to. */
export function authorize(options: AuthorizeOptions): Promise<string>;

/** Whether `url` is an authorization's answer (a `code` or an `error`, with `state`). */
export function isAuthorizationResponse(url: string | URL): boolean;

/** Finishes the launch at the redirect: checks the state, swaps the code (with the PKCE verifier)
 * for a token, which only the returned session holds, in memory. */
export function completeAuthorization(options?: { url?: string | URL; fetch?: typeof fetch }): Promise<SmartSession>;

export class SmartSession {
  readonly serverUrl: string;
  /** The patient in context (an id). */
  readonly patient: string;
  /** The encounter in context (`Encounter/123`), where the EHR named one. */
  readonly encounter: string | undefined;
  /** The scopes granted. */
  readonly scopes: readonly string[];
  /** When the token expires (ms since the epoch), where the server said. */
  readonly expiresAt: number | undefined;
  /** Whether the granted scopes allow creating each of `types`. */
  canCreate(types: readonly string[]): boolean;
  /** One FHIR interaction on this server, as JSON (`raw`: the Response). */
  request(path: string, options?: { method?: string; body?: unknown; signal?: AbortSignal; accept?: string; raw?: boolean }): Promise<any>;
  /** Every resource a search finds, every page. */
  search(path: string, options?: { signal?: AbortSignal; onPage?: (found: number) => void }): Promise<any[]>;
  /** Writes a transaction Bundle (`toFhir`'s) to the chart: `FHIR_FORBIDDEN` where the scopes do not allow it. */
  save(bundle: object, options?: { signal?: AbortSignal }): Promise<any>;
}

export interface ChartProgress {
  /** The query just read ("Vital signs", "Clinical notes", …). */
  step: string;
  /** Queries finished, of `total`. */
  done: number;
  total: number;
  /** Resources this query found so far. */
  resources: number;
}

/** The patient's chart, read from the server into one FHIR Bundle (a collection) that
 * `diagnose`, `explain` and `recommend` read as an uploaded one; `FHIR_EMPTY` for an empty chart. */
export function readChart(session: SmartSession, options?: { onProgress?: (progress: ChartProgress) => void; signal?: AbortSignal }): Promise<{ resourceType: "Bundle"; type: "collection"; entry: { fullUrl: string; resource: any }[] }>;

export type { BedsideError };
