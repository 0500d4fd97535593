"use client";
// A web developer's Next.js page: a client component that loads bedside from the installed
// `npm pack` tarball and diagnoses a record on the page and in a Web Worker.
import { useEffect, useState } from "react";

export default function Page() {
  const [out, setOut] = useState("loading…");
  useEffect(() => {
    (async () => {
      const { Bedside } = await import("bedside");
      const { BedsideWorker } = await import("bedside/worker");
      const bundle = new URL("model/", location.href);
      const record = { id: "next", observations: [{ channel: "lactate", hours: 1, value: 4.2 }] };
      const model = await Bedside.load(bundle, { backend: "cpu" });
      const worker = await BedsideWorker.load(bundle.href, { backend: "cpu" });
      const [main, off] = [await model.diagnose(record), await worker.diagnose(record)];
      const same = main.phenotypes.length > 0 && main.phenotypes.length === off.phenotypes.length && main.phenotypes.every((p, i) => Math.abs(p.probability - off.phenotypes[i].probability) < 1e-6);
      setOut(JSON.stringify({ backend: model.backend, same, first: main.phenotypes[0].name }));
    })().catch((e) => setOut(`error ${e.code}: ${e.message}`));
  }, []);
  return <p id="out">{out}</p>;
}
