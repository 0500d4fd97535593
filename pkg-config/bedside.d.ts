/** A PatientRecord (see the bedside README): one admission. */
export interface PatientRecord {
  format_version?: number;
  id: string;
  /** Patient id: a patient's admissions share it. */
  patient?: string;
  demographics?: { age?: number; sex?: "female" | "male" | "other" | "unknown"; care_unit?: string };
  /** What hour 0 of the observations is: the hospital admission where absent, or the ICU admission. */
  window_start?: "hospital_admission" | "icu_admission";
  /** `reference`: the resource the note or value came from (`DocumentReference/abc`), where the source names one. */
  notes?: { kind?: string; text: string; hours?: number; reference?: string }[];
  observations?: { channel: string; hours: number; value: number | null; unit?: string; reference?: string }[];
  visits?: { diagnoses?: string[]; procedures?: string[]; medications?: string[] }[];
  labels?: { phenotypes?: string[]; medications?: string[] };
  /** What the source held that the reader could not place (a FHIR Observation without a time, ...); each is also a `resource_skipped` notice. */
  skipped?: { path: string; reference?: string; reason: string }[];
}

/** A FHIR R4 resource, usually a `Bundle` of Patient, Encounter, Observation, Condition, ... */
export interface FhirResource {
  resourceType: string;
  [field: string]: unknown;
}

/** "auto": WebGPU on a hardware adapter that passes the self-test, else the CPU (a software
 * adapter such as SwiftShader is slower than the CPU and is passed over); "webgpu": WebGPU on
 * whatever adapter there is. */
export type BackendChoice = "auto" | "webgpu" | "cpu";

/**
 * One event of a load's progress. Phases come in order: "wasm", "download", "verify" (the engine
 * checks each file's sha256 and builds the model), "self-test" (on WebGPU also where the shaders
 * compile), "ready"; "verify" and "self-test" come again for the CPU when WebGPU fails (with
 * the fraction where it was). A load from `{ manifest, weights }` has no "download" phase.
 */
export interface LoadProgress {
  phase: "wasm" | "download" | "verify" | "self-test" | "ready";
  /** The share of the whole load done, 0–1, never decreasing (the downloads weigh 0.8). */
  fraction: number;
  /** "download": the file, its bytes so far and its size (the manifest's: never below `loaded`). */
  file?: string;
  loaded?: number;
  total?: number;
  /** The file came from the Cache API. */
  cached?: boolean;
  /** "verify", "self-test", "ready": the backend being set up. */
  backend?: "webgpu" | "cpu";
}

export interface LoadOptions {
  backend?: BackendChoice;
  /**
   * "auto" on a hardware WebGPU adapter times the self-test on WebGPU and on the CPU once per
   * adapter, browser and bundle and keeps the CPU only where it is at least 20% faster (WebGPU
   * leaves the page's thread free). The verdict is kept in localStorage on a page, and for the
   * worker's lifetime in a worker. `false` takes WebGPU without timing. Default true.
   */
  probe?: boolean;
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Keep the bundle's files in the Cache API (browsers; default true). A cached file is used only
   * while its sha256 is the one the manifest names (an updated bundle at the same URL is fetched
   * anew); the manifest is asked for first and its cached copy used offline.
   */
  cache?: boolean;
  /** Stops the downloads and the load; it then fails with `ABORTED`. */
  signal?: AbortSignal;
  /**
   * Pins the bundle: "sha256-" and the base64 sha256 of its manifest.json (Subresource Integrity's
   * form); the manifest pins every other file by its hash. A manifest that differs fails with
   * `BUNDLE_HASH_MISMATCH` before any other file is fetched.
   */
  integrity?: string;
  /** Where to get the wasm module from, if not next to this file. */
  wasm?: string | URL | Response | BufferSource | WebAssembly.Module;
}

/** `signal`: an aborted call fails with `ABORTED` (before the model runs, or once its forward pass
 * returns: a pass is not interrupted). */
export interface CallOptions {
  signal?: AbortSignal;
  /** For a FHIR chart: the encounter to read (`Encounter/123`), as a SMART launch names it;
   * absent, the chart's latest inpatient encounter (else its latest). */
  encounter?: string;
}

/** `signal` stops decoding at the next piece of text, and the iterator then throws `ABORTED`;
 * leaving the loop (`break`) stops decoding too. */
export interface ExplainOptions extends CallOptions {
  /** Longest generated text, in tokens (default 160). */
  maxTokens?: number;
}

export interface BundleFiles {
  /** `manifest.json`: its text, its bytes, or the parsed object. */
  manifest: string | Uint8Array | ArrayBuffer | object;
  weights: Uint8Array | ArrayBuffer;
  /** `tokenizer.json` (text or bytes): required by clinical bundles. */
  tokenizer?: string | Uint8Array | ArrayBuffer;
  /** `medrec.safetensors`: required by bundles with a medication recommender. */
  medrec?: Uint8Array | ArrayBuffer;
}

export interface PhenotypeScore {
  name: string;
  short: string;
  probability: number;
}

export interface GridNotice {
  path: string;
  kind:
    | "unknown_channel"
    | "missing_value"
    | "unknown_unit"
    | "unit_converted"
    | "out_of_range"
    | "outside_window"
    | "no_observations"
    | "no_notes"
    | "age_outside_training"
    | "setting_outside_training"
    | "resource_skipped"
    | "few_channels"
    /** `risk`: the hours count from the hospital admission, not from an ICU admission. */
    | "window_start"
    /** `risk`: a care unit that is none of the ICU types the mortality model knows. */
    | "care_unit";
  message: string;
}

/**
 * Why a record is outside the model's range: a child (under 18), a setting outside the hospital,
 * no observations, or fewer than 3 of the model's channels in its window. Then `diagnose` marks
 * nothing diagnosed and gives no evidence and `explain` writes only the reasons. `recommend`,
 * which reads the coded visits and no observation, abstains for a child or a setting outside the
 * hospital and then recommends nothing. The probabilities and drug scores are still computed.
 */
export interface OutOfRange {
  reasons: GridNotice[];
}

/** A bundle's model card, written by `bedside-train card`. */
export interface ModelCard {
  trained_on: { part: string; cohort: string; admissions: number; licence: string }[];
  evaluations: {
    cohort: string;
    /** Which split: development, final test, external real data. */
    split: string;
    admissions: number;
    measures: Record<string, { value: number; ci95?: [number, number] }>;
  }[];
  /** The out-of-range rule, in words. */
  out_of_range: string;
  intended_use: string;
  limits: string[];
}

/**
 * One fact of the record that supports a diagnosis. Every number and quote comes from the record,
 * never from the model: an observation fact names a real observation (`observation` indexes the
 * record's `observations`; `value` is in the channel's `unit`, converted where the record gave
 * another), a note fact a span of a note (`note` indexes `notes`; `start`/`end` are UTF-16
 * offsets, so `notes[note].text.slice(start, end) === text` for a PatientRecord; for a FHIR
 * Bundle the indices follow its resources in the order bedside reads them).
 */
export type Evidence =
  | {
      /** The phenotype it supports; `null` when the knowledge base links it to none written. */
      diagnosis: string | null;
      source: "observation";
      channel: string;
      label: string;
      direction: "high" | "low";
      value: number;
      unit: string;
      hours: number;
      normal: [number, number];
      trend?: "rising" | "falling";
      observation: number;
      /** The source resource of the observation (`Observation/123`), where the record names one. */
      reference?: string;
      /** The sentence the rationale states, e.g. "Lactate was high at 4.20 mmol/L at hour 1 (normal 0.50-2)." */
      text: string;
    }
  | {
      diagnosis: string | null;
      source: "note";
      note: number;
      /** The source resource of the note (`DocumentReference/abc`), where the record names one. */
      reference?: string;
      start: number;
      end: number;
      text: string;
    };

export interface Diagnosis {
  id: string;
  phenotypes: PhenotypeScore[];
  diagnosed: string[];
  observed_cells: number;
  /** The record's findings that the knowledge base links to each diagnosed phenotype. */
  evidence: Evidence[];
  notices: GridNotice[];
  /** Set when the record is outside the model's range; `diagnosed` and `evidence` are then empty. */
  out_of_range: OutOfRange | null;
  backend: "webgpu" | "cpu";
}

/** One of the record's findings with how much it moved the risk. */
export type RiskFinding = Extract<Evidence, { source: "observation" }> & {
  /** The risk less the risk without this channel's observations (occlusion): positive where the
   * finding raised it. Taking the channel out of the record moves the risk by exactly this. */
  effect: number;
};

/** What `risk` returns (mortality bundles). */
export interface Risk {
  id: string;
  /** What the probability is of, e.g. "In-hospital death". */
  outcome: string;
  /** Calibrated (the bundle's Platt scaling). */
  probability: number;
  /** The record's findings, the largest effect either way first; empty when out of range. */
  findings: RiskFinding[];
  observed_cells: number;
  notices: GridNotice[];
  /** Set when the record is outside the model's range: the probability is still computed (the demo
   * page shows the reasons instead of it), and `findings` is empty. */
  out_of_range: OutOfRange | null;
  /** The observed channels on the hourly grid, for a chart (attention is 0: none is computed). */
  series: ChannelSeries[];
  backend: "webgpu" | "cpu";
}

export type ErrorCode =
  | "RECORD_JSON"
  | "RECORD_INVALID"
  | "RECORD_FHIR"
  | "BUNDLE_INVALID"
  | "BUNDLE_HASH_MISMATCH"
  | "BUNDLE_INCOMPATIBLE"
  | "BUNDLE_FETCH"
  | "BACKEND_FAILED"
  | "WEBGPU_UNAVAILABLE"
  /** The WebGPU device was lost mid-run; load again ("auto" then picks the CPU). */
  | "WEBGPU_LOST"
  | "WASM_LOAD"
  /**
   * The wasm instance trapped (a bug, or memory exhausted): the call that hit it fails, models
   * and tokenizers loaded in it fail with this code too, and the next load runs in a fresh
   * instance (or, where none can be had, this code asks for a reload).
   */
  | "WASM_PANIC"
  | "BAD_OPTION"
  | "DISPOSED"
  | "ABORTED"
  | "WORKER_FAILED"
  | "INTERNAL"
  /** A SMART launch could not start or finish: a FHIR server not on the allowlist, a state that
   * does not match, a refused sign-in. */
  | "SMART_LAUNCH"
  /** The FHIR server refused the token (HTTP 401: expired or revoked): launch again. */
  | "FHIR_UNAUTHORIZED"
  /** The granted scopes do not allow a read or a write (HTTP 403, or checked before writing). */
  | "FHIR_FORBIDDEN"
  /** The FHIR server failed or could not be reached. */
  | "FHIR_SERVER"
  /** The patient's chart holds nothing the model reads. */
  | "FHIR_EMPTY";

export class BedsideError extends Error {
  readonly code: ErrorCode;
}

/** Every code a BedsideError can carry (the engine's and the package's). */
export const ERROR_CODES: readonly ErrorCode[];

export function webgpuAvailable(): Promise<boolean>;

/** A FHIR reference: "Patient/123", or `{ reference }` / `{ display }`. */
export type FhirReference = string | { reference?: string; display?: string };

export interface ToFhirOptions {
  /** The chart's Patient; without it the subject is the record's id as display text. */
  patient?: FhirReference;
  encounter?: FhirReference;
  /** The loaded model's manifest (`model.manifest`): the Provenance names the bundle by its weights' sha256. */
  manifest?: Bedside["manifest"];
  /** ISO 8601; default now. */
  date?: string;
  /** "all": an assessment for every phenotype group the model scores, not only the diagnosed ones. */
  groups?: "diagnosed" | "all";
}

/** One record's answers, any of them, to write as FHIR. */
export interface FhirAnswer {
  diagnosis?: Diagnosis;
  explanation?: Explanation;
  recommendation?: Recommendation;
}

/**
 * A FHIR R4 Bundle as `toFhir` writes it: a transaction (every entry a POST of a
 * RiskAssessment, MedicationRequest proposal, DetectedIssue or the Provenance), or, for an answer
 * outside the model's range, a collection holding one OperationOutcome with the reasons. The
 * `fhir/r4` types of `@types/fhir` describe each resource field by field.
 */
export interface FhirBundle {
  resourceType: "Bundle";
  type: "transaction" | "collection";
  timestamp: string;
  entry: { fullUrl: string; resource: FhirResource; request?: { method: "POST"; url: string } }[];
}

/** The answers as a FHIR R4 Bundle an EHR can store (see `FhirBundle`); pure, no I/O. */
export function toFhir(answer: FhirAnswer, options?: ToFhirOptions): FhirBundle;

export class Bedside {
  static load(source: string | URL | BundleFiles, options?: LoadOptions): Promise<Bedside>;
  /** Whether the bundle at this base URL loads from the Cache API alone (every file, hashes checked). */
  static isCached(source: string | URL): Promise<boolean>;
  /** Deletes the cached bundle at this base URL, or every cached bundle; false where there is no Cache API. */
  static clearCache(source?: string | URL): Promise<boolean>;
  readonly backend: "webgpu" | "cpu" | "disposed";
  readonly manifest: Record<string, unknown>;
  /** What the model was trained on and how it did on held-out data (`manifest.model_card`);
   * `null` for a bundle without one, which loads all the same: say so where it is shown. */
  readonly card: ModelCard | null;
  /** Largest difference of the known-answer self-test on this backend; `null` when the bundle
   * records no answer, so the test was not run. */
  readonly selfTestDifference: number | null;
  /** Why the model runs on the CPU, in words (no WebGPU adapter, a software adapter that "auto"
   * passes over, the CPU asked for, WebGPU lost earlier, "auto"'s timed probe finding the CPU
   * faster, or how WebGPU failed, e.g. its self-test); `null` on WebGPU. */
  readonly fallbackReason: string | null;
  /** Why this backend runs, on either: the CPU's `fallbackReason`, WebGPU asked for by name, or
   * what "auto"'s timed probe measured on this adapter. */
  readonly backendReason: string;
  /** `record`: a PatientRecord, a FHIR R4 resource (usually a Bundle), or either as JSON text. */
  diagnose(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Diagnosis>;
  /** Clinical bundles: text pieces as they are decoded, then the whole explanation. */
  explain(record: PatientRecord | FhirResource | string, options?: ExplainOptions): AsyncGenerator<string | Explanation, void, unknown>;
  /** Bundles with a medication recommender: ATC-3 drugs for the current visit, with DDI warnings. */
  recommend(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Recommendation>;
  /** Mortality bundles: the calibrated risk and the findings that moved it. */
  risk(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Risk>;
  dispose(): void;
}

export interface DrugScore {
  /** ATC level-3 code. */
  code: string;
  name: string;
  probability: number;
}

export interface DdiWarning {
  /** The recommended drug. */
  drug: string;
  drug_name: string;
  /** The drug it interacts with: another recommended drug, or a current medication. */
  with: string;
  with_name: string;
  with_current: boolean;
}

export interface Recommendation {
  id: string;
  /** Drugs at or above the bundle's threshold, most probable first. */
  medications: DrugScore[];
  /** Every drug the recommender knows, most probable first. */
  scores: DrugScore[];
  /** Medications the patient already takes (the current visit's, else the previous visit's). */
  current: string[];
  ddi_warnings: DdiWarning[];
  /** Codes of the record that the recommender does not know (not used). */
  unknown_codes: string[];
  /** Set for a child or a setting outside the hospital; `medications` and `ddi_warnings` are then empty. */
  out_of_range: OutOfRange | null;
  backend: "webgpu" | "cpu";
}

export interface Explanation {
  type: "explanation";
  id: string;
  /** The answer as streamed, for people: `A; B.` then one sentence per stated fact. */
  text: string;
  /** Phenotype names the model wrote: exactly `diagnose`'s `diagnosed`, in the model's order. */
  diagnoses: string[];
  /** The facts the model chose, each rendered from the record (machine-written selection). */
  rationale: string;
  /** One entry per (diagnosis, stated fact). */
  evidence: Evidence[];
  tokens: number;
  /** Rows of `knowledge_attention`. */
  channels: string[];
  /** `[channel][prototype]` knowledge-attention weights, averaged over heads. */
  knowledge_attention: number[][];
  /** The observed lab and vital channels as the model read them, for charts. */
  series: ChannelSeries[];
  /** Set when the record is outside the model's range; then `text` gives only the reasons. */
  out_of_range: OutOfRange | null;
  backend: "webgpu" | "cpu";
}

/** One observed channel over the model's window (hour 0 = admission). */
export interface ChannelSeries {
  name: string;
  label: string;
  unit: string;
  normal_low: number;
  normal_high: number;
  /** Mean of each hour's valid observations in `unit`; `null` where nothing was observed. */
  values: (number | null)[];
  /** Per hour, the time-series encoder's attention (last layer; the mean over the patches covering the hour),
   *  scaled so that the channel's most attended hour is 1. */
  attention: number[];
}

/** A HuggingFace `tokenizer.json` run in wasm: the token ids bedside's models see. */
export class Tokenizer {
  /** `source`: the tokenizer's URL (in Node also a path), its JSON text, or its bytes. */
  static load(source: string | URL | Uint8Array | ArrayBuffer, options?: { wasm?: WebAssembly.Module | BufferSource | URL }): Promise<Tokenizer>;
  /** Token ids of `text`, the end-of-sequence id last. */
  encode(text: string): number[];
  /** The text of `ids`, special tokens skipped. */
  decode(ids: ArrayLike<number>): string;
  readonly vocabSize: number;
  dispose(): void;
}

export default Bedside;
