// The tokenizer in wasm gives the native ids: a tokenizer trained by `bedside-train tokenizer`,
// texts encoded by `bedside-train tokenize` and by the npm package's Tokenizer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Tokenizer } from "../../pkg/bedside.js";
import { samples, train } from "./helpers.mjs";

const dir = mkdtempSync(path.join(tmpdir(), "bedside-tok-"));
const file = path.join(dir, "tokenizer.json");
execFileSync(train, ["train-tokenizer", "--synthetic", "80", "--vocab-size", "1500", "--out", file]);

const texts = [
  "",
  "### Disease Diagnosed: Septicemia (except in labor),Shock . ### Rationale:",
  "Lactate 4.2 mmol/L at 06:00, creatinine 2.31 mg/dL (ref 0.6–1.2).",
  "Pt c/o SOB; SpO₂ 88 % on 4 L NC — ﬁnal: pneumonia?",
  "Unicode: Ölsäure, 肺炎, emoji 🫁, tabs\tand\nnewlines",
  ...samples.slice(0, 5).flatMap((r) => r.notes.map((n) => n.text)),
];

test("wasm and native give the same token ids", async () => {
  const native = JSON.parse(execFileSync(train, ["tokenize", "--tokenizer", file], { input: JSON.stringify(texts), encoding: "utf8" }));
  const tokenizer = await Tokenizer.load(readFileSync(file));
  assert.ok(tokenizer.vocabSize > 500 && tokenizer.vocabSize <= 1500, `vocab ${tokenizer.vocabSize}`);
  texts.forEach((text, i) => {
    const ids = tokenizer.encode(text);
    assert.deepEqual(ids, native[i], `text ${i}: ${JSON.stringify(text.slice(0, 40))}`);
    assert.equal(ids.at(-1), 1, "</s> last");
  });
  console.log(`# ${texts.length} texts, ${native.flat().length} tokens: identical ids`);
  assert.equal(tokenizer.decode(tokenizer.encode(texts[1])), texts[1]);
  tokenizer.dispose();
  assert.throws(() => tokenizer.encode("x"), { code: "DISPOSED" });
});

test("a broken tokenizer.json is refused with its name", async () => {
  await assert.rejects(Tokenizer.load("{\"model\": 1}"), (e) => e.code === "BUNDLE_INVALID" && /tokenizer\.json/.test(e.message));
  const text = readFileSync(file, "utf8");
  await assert.rejects(Tokenizer.load(text.slice(0, text.length / 2)), { code: "BUNDLE_INVALID" });
});
