// A CDS Hooks service (https://cds-hooks.hl7.org, 2.0) that surfaces bedside in an EHR's
// workflow: on `patient-view` it answers with one card whose `smart` link launches bedside for the
// patient in view. The service sees the hook's context but puts none of it in the card, asks for
// no prefetch, and never calls the FHIR server (it ignores `fhirAuthorization`): the chart is
// read by bedside in the clinician's browser, after the EHR's own SMART launch, and nothing about
// the patient reaches this service's answer or any server of bedside's.
// Usage: node examples/cds-hooks/service.mjs [--port 8091] [--app http://127.0.0.1:8080/]
import { randomUUID } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const SERVICE_ID = "bedside";

/** The discovery document (`GET /cds-services`). */
export function discovery() {
  return {
    services: [{
      hook: "patient-view",
      id: SERVICE_ID,
      title: "bedside: a clinical model that runs in your browser",
      description: "Offers to open bedside on the chart in view; the chart is read and the model runs in the browser.",
      usageRequirements: "The EHR registers bedside as a SMART app (client id bedside, the launch URL of the card's link).",
    }],
  };
}

/** The answer to a `patient-view` call: one card with a SMART link to `app`, whatever the request holds. */
export function patientView(app) {
  return {
    cards: [{
      uuid: randomUUID(),
      summary: "Open bedside: phenotypes, rationale and drug classes from this chart, computed in your browser",
      indicator: "info",
      source: { label: "bedside", topic: { code: "bedside-launch", display: "Launch bedside" } },
      links: [{ label: "Open bedside on this chart", url: app, type: "smart" }],
    }],
  };
}

/** The service over HTTP: discovery and the `patient-view` hook, with CORS for browser-based CDS clients. */
export function createCdsService({ app }) {
  return http.createServer(async (req, res) => {
    for await (const chunk of req) void chunk; // the request body is read and dropped: nothing of it is used
    res.setHeader("Access-Control-Allow-Origin", "*");
    res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.setHeader("Content-Type", "application/json");
    const path = new URL(req.url, "http://127.0.0.1").pathname;
    if (req.method === "OPTIONS") return res.writeHead(204).end();
    if (req.method === "GET" && path === "/cds-services") return res.end(JSON.stringify(discovery()));
    if (req.method === "POST" && path === `/cds-services/${SERVICE_ID}`) return res.end(JSON.stringify(patientView(app)));
    res.writeHead(404).end(JSON.stringify({ error: `no ${req.method} ${path} here` }));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8091" }, app: { type: "string", default: "http://127.0.0.1:8080/" } } });
  const server = createCdsService({ app: values.app });
  server.listen(Number(values.port), "127.0.0.1", () => console.log(`CDS Hooks service: http://127.0.0.1:${values.port}/cds-services`));
}
