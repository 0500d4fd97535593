// The CDS Hooks example (examples/cds-hooks/service.mjs): discovery offers `patient-view` with no
// prefetch; a call full of patient data gets one card with a `smart` link to bedside and none of
// that data, and the service makes no request of its own (it never calls the FHIR server).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createCdsService } from "../../examples/cds-hooks/service.mjs";

test("a patient-view card launches bedside and carries no patient data", async () => {
  const app = "https://bedside.example.org/";
  const server = createCdsService({ app });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}/cds-services`;
  const ownFetch = globalThis.fetch;
  try {
    const { services } = await (await ownFetch(base)).json();
    assert.deepEqual(services.map((s) => [s.hook, s.id, s.prefetch]), [["patient-view", "bedside", undefined]], "patient-view, asking for no prefetch");
    const call = {
      hook: "patient-view",
      hookInstance: "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
      fhirServer: "https://ehr.example.org/fhir",
      fhirAuthorization: { access_token: "secret-token-42", token_type: "Bearer", scope: "patient/*.rs", subject: "cds" },
      context: { userId: "Practitioner/p-77", patientId: "patient-1234", encounterId: "enc-5678" },
      prefetch: { patient: { resourceType: "Patient", id: "patient-1234", name: [{ family: "Kowalski" }], birthDate: "1951-02-03" } },
    };
    // the service must not reach out: any fetch from this process now fails the test
    globalThis.fetch = () => assert.fail("the CDS service made a request of its own");
    const answer = await ownFetch(`${base}/bedside`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(call) });
    assert.equal(answer.status, 200);
    const { cards } = await answer.json();
    assert.equal(cards.length, 1);
    assert.deepEqual(cards[0].links, [{ label: "Open bedside on this chart", url: app, type: "smart" }]);
    assert.ok(cards[0].summary.length <= 140, "a card's summary is at most 140 characters");
    const text = JSON.stringify(cards);
    for (const secret of ["patient-1234", "enc-5678", "p-77", "Kowalski", "1951", "secret-token-42", "ehr.example.org"]) {
      assert.ok(!text.includes(secret), `the card holds ${secret}`);
    }
  } finally {
    globalThis.fetch = ownFetch;
    server.close();
  }
});
