// The bad-input catalogue for the JS harnesses (Node and the browser): reading the cases, the edits
// of bundles.jsonl (the same as in tests/catalogue.rs) and the check of an outcome against a case.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const demo = path.resolve(here, "../../models/demo");

/**
 * The one refusal `recommend` may give an accepted record: it has no visits, so no current visit's
 * codes (`$.visits: empty: …`). A record with visits must get its recommendation, as in the Rust
 * harness (tests/catalogue.rs). The browser test passes NO_VISITS into the page and checks the
 * same there.
 */
export const NO_VISITS = "$.visits: empty:";
export const refusedForNoVisits = (e) => e.code === "RECORD_INVALID" && String(e.message).includes(NO_VISITS);

export function cases(file) {
  return readFileSync(path.join(here, file), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The demo bundle's files as bytes, keyed by file name. */
export function demoFiles() {
  const names = ["manifest.json", "model.safetensors", "tokenizer.json", "medrec.safetensors"];
  return Object.fromEntries(names.map((n) => [n, new Uint8Array(readFileSync(path.join(demo, n)))]));
}

/** `files` with a case's edits applied (a new object; the input is not changed). */
export function edited(files, edits) {
  const out = { ...files };
  for (const edit of edits) {
    if (edit.rehash) {
      const bytes = out[edit.rehash];
      const manifest = JSON.parse(new TextDecoder().decode(out["manifest.json"]));
      manifest.files[edit.rehash] = { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
      out["manifest.json"] = new TextEncoder().encode(JSON.stringify(manifest));
      continue;
    }
    out[edit.file] = apply(out[edit.file], edit);
  }
  return out;
}

function apply(bytes, edit) {
  const at = (n) => (n < 0 ? bytes.length + n : n);
  if (edit.truncate !== undefined) return bytes.slice(0, at(edit.truncate));
  if (edit.truncate_fraction !== undefined) return bytes.slice(0, Math.floor(bytes.length * edit.truncate_fraction));
  if (edit.append !== undefined) return new Uint8Array([...bytes, ...new Uint8Array(edit.append)]);
  if (edit.flip !== undefined) {
    const copy = bytes.slice();
    copy[at(edit.flip)] ^= 1;
    return copy;
  }
  if (edit.text !== undefined) return new TextEncoder().encode(edit.text);
  const jsonEdit = ["json_remove", "json_set", "json_pop", "json_reverse"].find((k) => edit[k] !== undefined);
  if (jsonEdit) {
    const json = JSON.parse(new TextDecoder().decode(bytes));
    const keys = jsonEdit === "json_set" ? edit.json_set[0] : edit[jsonEdit];
    const parent = keys.slice(0, -1).reduce((node, key) => node[key], json);
    const last = keys.at(-1);
    if (jsonEdit === "json_set") parent[last] = edit.json_set[1];
    else if (jsonEdit === "json_remove") delete parent[last];
    else if (jsonEdit === "json_pop") parent[last].pop();
    else parent[last].reverse();
    return new TextEncoder().encode(JSON.stringify(json));
  }
  return editHeader(bytes, edit);
}

/** Edits of a safetensors header (8-byte little-endian length, then JSON). */
function editHeader(bytes, edit) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  if (edit.header_length !== undefined || edit.header_length_add !== undefined) {
    const copy = bytes.slice();
    const value = edit.header_length !== undefined ? BigInt(edit.header_length) : BigInt(bytes.length - 8 + edit.header_length_add);
    new DataView(copy.buffer).setBigUint64(0, value, true);
    return copy;
  }
  let header = new TextDecoder().decode(bytes.subarray(8, 8 + length));
  if (edit.header_replace) {
    header = header.replace(edit.header_replace[0], edit.header_replace[1]);
  } else {
    const json = JSON.parse(header);
    const names = Object.keys(json).filter((k) => k !== "__metadata__").sort();
    if (edit.header_dtype) json[names[0]].dtype = edit.header_dtype;
    else if (edit.header_shape_swap) {
      const name = names.find((n) => json[n].shape.length === 2 && json[n].shape[0] !== json[n].shape[1]);
      json[name].shape.reverse();
    } else if (edit.header_rename) {
      json[`${names[0]}_renamed`] = json[names[0]];
      delete json[names[0]];
    } else if (edit.header_offsets_overlap) json[names[1]].data_offsets = json[names[0]].data_offsets;
    else throw new Error(`unknown edit ${JSON.stringify(edit)}`);
    header = JSON.stringify(json);
  }
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.length);
  return out;
}

/**
 * What went wrong with a case, or undefined when the outcome is what it expects. `outcome`:
 * `{ notices: [kind, ...] }` when accepted, `{ code, message }` when refused.
 */
export function mismatch(c, outcome) {
  if (c.ok) {
    if (outcome.code) return `refused: ${outcome.code} ${outcome.message}`;
    // exactly the expected kinds (cases of other files expect none)
    const got = [...new Set(outcome.notices)].sort();
    const expected = [...(c.notices ?? [])].sort();
    if (got.join() !== expected.join()) return `accepted with notices [${got}], expected [${expected}]`;
    return undefined;
  }
  if (!outcome.code) return "accepted";
  const missing = c.mentions.filter((m) => !outcome.message.includes(m));
  if (outcome.code !== c.code || missing.length) return `${outcome.code}: ${outcome.message} (does not mention ${JSON.stringify(missing)})`;
  return undefined;
}
