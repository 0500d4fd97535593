// Type-checked with `tsc --noEmit` against the built package (tests/types/tsconfig.json): every
// call of the public API as a TypeScript user writes it.
import { Bedside, BedsideError, Tokenizer, webgpuAvailable, type Diagnosis, type Explanation, type ModelCard, type Recommendation, type Risk } from "bedside";
import { BedsideWorker } from "bedside/worker";

export async function usage(record: object): Promise<string[]> {
  const gpu: boolean = await webgpuAvailable();
  const model = await Bedside.load("https://example.org/bundle/", {
    backend: gpu ? "auto" : "cpu",
    cache: false,
    signal: new AbortController().signal,
    integrity: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    onProgress: ({ file, loaded, total, cached }) => console.log(file, loaded, total ?? 0, cached ?? false),
  });
  const backend: "webgpu" | "cpu" | "disposed" = model.backend;
  const why: string = model.fallbackReason ?? "WebGPU";
  const cached: boolean = (await Bedside.isCached("https://example.org/bundle/")) && (await BedsideWorker.isCached(new URL("https://example.org/bundle/")));
  const cleared: boolean = (await Bedside.clearCache("https://example.org/bundle/")) || (await BedsideWorker.clearCache());
  const controller = new AbortController();
  const d: Diagnosis = await model.diagnose({ id: "x", observations: [{ channel: "lactate", hours: 1, value: 4.2 }] }, { signal: controller.signal });
  const card: ModelCard | null = model.card;
  const trainedOn: string = card?.trained_on.map((t) => `${t.cohort} (${t.admissions})`).join("; ") ?? "no model card";
  const reasons: string[] = d.out_of_range?.reasons.map((r) => r.message) ?? [];
  const r: Recommendation = await model.recommend({ resourceType: "Bundle", entry: [] });
  const risk: Risk = await model.risk({ id: "z", demographics: { age: 70 }, observations: [] });
  const moved: string[] = risk.findings.map((f) => `${f.label} ${f.direction} ${f.value} ${f.unit} at ${f.hours} h: ${f.effect > 0 ? "+" : ""}${f.effect} (${risk.outcome} ${risk.probability})`);
  const warnings: string[] = r.ddi_warnings.map((w) => `${w.drug} × ${w.with}${w.with_current ? " (current)" : ""}`);
  let text = "";
  for await (const item of model.explain(JSON.stringify(record), { maxTokens: 32, signal: AbortSignal.timeout(10_000) })) {
    if (typeof item === "string") text += item;
    else {
      const e: Explanation = item;
      // an evidence item is narrowed by its source: observations carry values, notes spans
      const facts = e.evidence.map((f) =>
        f.source === "observation" ? `${f.diagnosis ?? "-"}: ${f.label} ${f.direction} ${f.value} ${f.unit} at ${f.hours} h (${f.normal[0]}-${f.normal[1]})` : `${f.note}:${f.start}-${f.end} ${f.text}`,
      );
      text = facts.join() + e.rationale + e.knowledge_attention.length + e.series.map((c) => `${c.label} ${c.unit} ${c.values.filter((v) => v !== null).length} ${Math.max(...c.attention)}`).join();
    }
  }
  model.dispose();
  const worker = await BedsideWorker.load("model/", { backend: "cpu", worker: new URL("worker.js", import.meta.url) });
  const w: Diagnosis = await worker.diagnose({ id: "y" });
  const restarts: number = worker.restarts;
  const workerWhy: string | null = worker.fallbackReason;
  const workerCard: ModelCard | null = worker.card;
  worker.dispose();
  const tokenizer = await Tokenizer.load("tokenizer.json");
  const ids: number[] = tokenizer.encode("Lactate 4.2 mmol/L");
  try {
    await Bedside.load({ manifest: "{}", weights: new Uint8Array(0) });
  } catch (e) {
    if (e instanceof BedsideError && e.code === "BUNDLE_INVALID") text += e.message;
  }
  return [backend, d.id, w.id, text, String(ids.length), String(model.selfTestDifference), String(cached && cleared), why, String(workerWhy), trainedOn, String(workerCard === null), ...reasons, ...warnings, ...moved];
}

// bedside/smart: a SMART launch, the chart read, diagnosed with the launch's encounter, saved back
export async function smartUsage(model: Bedside): Promise<string> {
  const { authorize, completeAuthorization, isAuthorizationResponse, readChart } = await import("bedside/smart");
  if (!isAuthorizationResponse(location.href)) {
    location.assign(await authorize({ iss: "https://ehr.example.org/fhir", launch: "abc", clientId: "bedside", redirectUri: location.href, allowed: ["https://ehr.example.org/fhir"] }));
    return "redirected";
  }
  const session = await completeAuthorization();
  const chart = await readChart(session, { onProgress: ({ step, done, total, resources }) => console.log(`${step} ${done}/${total}: ${resources}`) });
  const d: Diagnosis = await model.diagnose(chart, { encounter: session.encounter ?? "Encounter/1" });
  const writable: boolean = session.canCreate(["RiskAssessment", "Provenance"]);
  return `${d.diagnosed.join(", ")} ${writable} ${session.scopes.join(" ")} ${session.expiresAt ?? 0}`;
}
