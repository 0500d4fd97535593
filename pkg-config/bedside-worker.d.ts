import type { Diagnosis, Explanation, FhirResource, LoadOptions, PatientRecord, Recommendation, BundleFiles } from "./bedside.js";

/** The Bedside API run in a Web Worker (browsers): the same calls, off the main thread. */
export class BedsideWorker {
  static load(source: string | URL | BundleFiles, options?: LoadOptions): Promise<BedsideWorker>;
  readonly backend: "webgpu" | "cpu";
  readonly manifest: Record<string, unknown>;
  readonly selfTestDifference: number;
  diagnose(record: PatientRecord | FhirResource | string): Promise<Diagnosis>;
  recommend(record: PatientRecord | FhirResource | string): Promise<Recommendation>;
  explain(record: PatientRecord | FhirResource | string, options?: { maxTokens?: number }): AsyncGenerator<string | Explanation, void, unknown>;
  dispose(): void;
}

export default BedsideWorker;
