#!/usr/bin/env python3
"""Writes the bad-input catalogue (tests/catalogue/*.jsonl) from mutation rules.

Each case is one JSON line: `name`, the input, and what must happen — `{"code": ..., "mentions":
[...]}` (refused with that stable error code; the message names each of `mentions`: the field,
file or line at fault) or `{"ok": true, "notices": [...]}` (accepted, with exactly these kinds of
notice: an everyday oddity reported, and what the record as a whole lacks). The expectations come from the rules below, i.e. from the record format and the bundle
format, not from running bedside. The harnesses are tests/catalogue.rs (native library),
training/tests/catalogue.rs (CLI), tests/node/catalogue.test.mjs (wasm in Node) and the browser
test. Regenerate with `python3 tests/catalogue/generate.py` and commit the result.

  records.jsonl  text given to diagnose (PatientRecord JSON or FHIR R4); `notices` is the set of
                 notice kinds the diagnosis must carry, no more and no fewer
  bundles.jsonl  edits of the demo bundle (models/demo) given to load, applied in order:
                 truncate N (negative: from the end), truncate_fraction F, append N, flip OFFSET,
                 text T, json_remove PATH, json_set [PATH, VALUE], json_pop PATH (last element),
                 json_reverse PATH, rehash FILE (the manifest entry of FILE made to match it), and
                 on a safetensors file header_length N, header_length_add N, header_replace [A, B]
                 (first occurrence in the header text), header_dtype D, header_shape_swap,
                 header_rename, header_offsets_overlap (each on the first tensor by name that
                 the edit applies to)
  teacher.jsonl  lines of a teacher-rationale JSONL file given to `bedside-train teach --teacher jsonl`
  physionet.jsonl  PhysioNet 2012 stay files given to the reader (training/cohort/src/physionet2012.rs):
                 `skip` is the reason the reader must count with the file and line, `record`
                 whether the stay is still read (a bad row never drops the rest of the stay)
  mimic.jsonl    MIMIC-IV (hosp/) and MIMIC-III tables given to the readers (training/cohort) and to
                 `bedside-train cohort`: `files` maps each file name to its `text` or its bytes in
                 `base64`; expected: `error` (the read fails; the message names each of them) or
                 `records` (admissions read), `more_observations` (than the untouched tables of the
                 same source, the case named "untouched"), `skip` (the reason counted, with the
                 `file:line` in `at` among its examples; null: nothing skipped beyond the untouched
                 tables). A bad row never drops the other rows.
"""
import base64
import copy
import gzip
import json
import sys
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

BASE = {
    "format_version": 1,
    "id": "catalogue-1",
    "patient": "p-1",
    "demographics": {"age": 67, "sex": "female", "care_unit": "medical ICU"},
    "notes": [{"kind": "discharge summary", "text": "Fever, hypotension and rising lactate.", "hours": 2}],
    "observations": [
        {"channel": "heart_rate", "hours": 1.5, "value": 112, "unit": "/min"},
        {"channel": "lactate", "hours": 3, "value": 4.1, "unit": "mmol/L"},
    ],
    "visits": [{"diagnoses": ["99591"], "procedures": ["9604"], "medications": ["J01D"]}],
    "labels": {
        "phenotypes": ["Septicemia (except in labor)"],
        "medications": ["J01D"],
        "outcomes": {"in_hospital_death": False, "length_of_stay_days": 5.5, "saps_i": 14, "sofa": 6},
    },
}

# path → (kind, required, nullable). Kinds: str, num (f64), u32, bool, list (of str), obj, enum.
FIELDS = {
    "format_version": ("u32", False, False),
    "id": ("str", True, False),
    "patient": ("str", False, True),
    "demographics": ("obj", False, False),
    "demographics.age": ("num", False, True),
    "demographics.sex": ("enum", False, True),
    "demographics.care_unit": ("str", False, True),
    "notes": ("list", False, False),
    "notes[0].kind": ("str", False, False),
    "notes[0].text": ("str", True, False),
    "notes[0].hours": ("num", False, True),
    "observations": ("list", False, False),
    "observations[0].channel": ("str", True, False),
    "observations[0].hours": ("num", True, False),
    "observations[0].value": ("num", False, True),
    "observations[0].unit": ("str", False, True),
    "visits": ("list", False, False),
    "visits[0].diagnoses": ("list", False, False),
    "visits[0].procedures": ("list", False, False),
    "visits[0].medications": ("list", False, False),
    "labels": ("obj", False, True),
    "labels.phenotypes": ("list", False, False),
    "labels.medications": ("list", False, False),
    "labels.outcomes": ("obj", False, True),
    "labels.outcomes.in_hospital_death": ("bool", False, True),
    "labels.outcomes.length_of_stay_days": ("num", False, True),
    "labels.outcomes.saps_i": ("num", False, True),
}
OBJECTS = ["", "demographics", "notes[0]", "observations[0]", "visits[0]", "labels", "labels.outcomes"]

# values of other JSON kinds than the field's
WRONG = {
    "str": [1, True, [], {}],
    "num": ["1.5", True, [], {}],
    "u32": [-1, 1.5, 4294967296, "1"],
    "bool": ["true", 1, []],
    "list": ["J01D", {}, 1, [1]],
    "obj": [[], "x", 1],
    "enum": ["robot", 1, "FEMALE"],
}


def steps(path):
    """'notes[0].text' → ['notes', 0, 'text']"""
    out = []
    for part in path.split(".") if path else []:
        if "[" in part:
            name, index = part[:-1].split("[")
            out += [name, int(index)]
        else:
            out.append(part)
    return out


def edit(path, fn):
    record = copy.deepcopy(BASE)
    *parents, last = steps(path)
    node = record
    for step in parents:
        node = node[step]
    fn(node, last)
    return record


def put(path, value):
    return edit(path, lambda node, key: node.__setitem__(key, value))


def drop(path):
    return edit(path, lambda node, key: node.pop(key))


def jpath(path):
    return "$." + path if path else "$"


records = []


def refused(name, value, code, *mentions):
    text = value if isinstance(value, str) else json.dumps(value)
    records.append({"name": name, "input": text, "code": code, "mentions": list(mentions)})


# the words of a care unit outside the hospital, as the record format documents them
OUTSIDE_HOSPITAL = ["outpatient", "ambulatory", "clinic", "virtual", "home"]


def record_level(value):
    """The notices a PatientRecord draws as a whole, by the record format's rules: no
    observations, no note with text, an age under 18, a care unit outside the hospital. FHIR
    inputs state theirs per case."""
    if isinstance(value, str):
        value = json.loads(value.lstrip("\ufeff"))
    if "resourceType" in value:
        return set()
    out = set()
    if not value.get("observations"):
        out.add("no_observations")
    if all(not (n.get("text") or "").strip() for n in value.get("notes") or []):
        out.add("no_notes")
    demographics = value.get("demographics") or {}
    if demographics.get("age") is not None and demographics["age"] < 18:
        out.add("age_outside_training")
    if any(w in (demographics.get("care_unit") or "").lower() for w in OUTSIDE_HOSPITAL):
        out.add("setting_outside_training")
    return out


def accepted(name, value, notice=None, also=()):
    """An accepted input whose diagnosis carries `notice` (the oddity the case is about), the
    record-level notices and `also`, and no other kind."""
    text = value if isinstance(value, str) else json.dumps(value)
    notices = ({notice} - {None}) | record_level(value) | set(also)
    records.append({"name": name, "input": text, "ok": True, "notices": sorted(notices)})


# optional fields whose absence the diagnosis reports: an observation without a value is unused
ABSENT_NOTICE = {"observations[0].value": "missing_value"}

# --- PatientRecord: a value of the wrong JSON kind in every field ---------------------------------
for path, (kind, required, nullable) in FIELDS.items():
    for value in WRONG[kind]:
        refused(f"{path} = {json.dumps(value)}", put(path, value), "RECORD_JSON", jpath(path))
    if not nullable:
        refused(f"{path} = null", put(path, None), "RECORD_JSON", jpath(path))
    else:
        accepted(f"{path} = null (optional)", put(path, None), ABSENT_NOTICE.get(path))
    if required:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        refused(f"{path} missing", drop(path), "RECORD_JSON", jpath(parent), path.rsplit(".", 1)[-1])
    elif kind != "obj":
        accepted(f"{path} missing (optional)", drop(path), ABSENT_NOTICE.get(path))

# an element of a list of the wrong kind
# an object written as an array: serde would read it by position; refused
for path in ["", "demographics", "labels", "labels.outcomes"]:
    refused(f"{jpath(path)} as an array by position", put(path, [67, "female"]) if path else [BASE["id"]], "RECORD_JSON", jpath(path))
refused("an observation as an array by position", put("observations[0]", ["heart_rate", 1.5, 112]), "RECORD_JSON", "$.observations[0]")
for path, value in [
    ("notes[0]", "a note as text"),
    ("observations[0]", [1.5, 112]),
    ("visits[0]", ["99591"]),
    ("visits[0].diagnoses[0]", 99591),
    ("labels.phenotypes[0]", {"name": "Shock"}),
    ("labels.medications[0]", None),
]:
    refused(f"{path} = {json.dumps(value)}", put(path, value), "RECORD_JSON", jpath(path))

# a field the format does not have, in every object (a typo must not be silently ignored)
for parent in OBJECTS:
    refused(f"unknown field in {jpath(parent)}", put(f"{parent}.hours_since" if parent else "hours_since", 3), "RECORD_JSON", "hours_since")
refused("misspelt observations", {**copy.deepcopy(BASE), "observation": BASE["observations"]}, "RECORD_JSON", "observation")

# values of the right kind the rules refuse (every problem reported, each with its path)
for path, value in [
    ("format_version", 0),
    ("format_version", 2),
    ("format_version", 99),
    ("id", ""),
    ("id", "   "),
    ("demographics.age", -1),
    ("demographics.age", 131),
    ("demographics.age", 1e300),
    ("observations[0].channel", ""),
    ("observations[0].channel", " \t"),
]:
    refused(f"{path} = {json.dumps(value)}", put(path, value), "RECORD_INVALID", jpath(path))
both = put("id", "")
both["observations"][1]["channel"] = ""
refused("two problems at once", both, "RECORD_INVALID", "$.id", "$.observations[1].channel")
# numbers beyond f64 fail in the JSON parser, which names the line and column
refused("hours beyond f64", json.dumps(BASE).replace('"hours": 1.5', '"hours": 1e400'), "RECORD_JSON", "line 1 column")
refused("value beyond f64", json.dumps(BASE).replace('"value": 112', '"value": -1e999'), "RECORD_JSON", "line 1 column")

# not JSON, or JSON of the wrong shape: no field is at fault, so a syntax error names the line
# and column where parsing stopped, and a document of the wrong kind says what was expected
text = json.dumps(BASE)
for cut in [0, 1, 2, 10, 40, 100, 200, 300, 400, len(text) // 2, len(text) - 2, len(text) - 1]:
    refused(f"cut after {cut} characters", text[:cut], "RECORD_JSON", "$", "EOF", f"line 1 column {cut}")
for name, bad in [("null", "null"), ("an array", "[]"), ("a number", "42"), ("a string", '"catalogue-1"'), ("true", "true")]:
    refused(name, bad, "RECORD_JSON", "$", "invalid type", "expected")
refused("duplicate key", '{"id": "a", "id": "b"}', "RECORD_JSON", "duplicate field `id`", "line 1 column")
for name, bad in [
    ("whitespace only", " \n\t "),
    ("closing brace", "}"),
    ("single quotes", "{'id': 'x'}"),
    ("trailing comma", '{"id": "x",}'),
    ("comment", '{"id": "x" /* comment */}'),
    ("NaN literal", '{"id": "x", "observations": [{"channel": "heart_rate", "hours": NaN, "value": 1}]}'),
    ("Infinity literal", '{"id": "x", "observations": [{"channel": "heart_rate", "hours": 1, "value": Infinity}]}'),
    ("unquoted key", "{id: 1}"),
    ("control character in a string", '{"id": "x\u0001y"}'),
    ("lone surrogate escape", '{"id": "\\ud800"}'),
    ("bad escape", '{"id": "\\q"}'),
    ("two documents", '{"id": "a"} {"id": "b"}'),
    ("10,000 nested arrays", "[" * 10000 + "]" * 10000),
    ("10,000 nested objects", '{"a":' * 10000 + "1" + "}" * 10000),
    ("JSON Lines of two records", '{"id": "a"}\n{"id": "b"}'),
]:
    refused(name, bad, "RECORD_JSON", "$", " line ", " column ")

# everyday oddities: accepted, and reported where the model cannot use them
accepted("byte-order mark before the JSON", "\ufeff" + json.dumps(BASE))
accepted("only an id", {"id": "bare"})
accepted("unknown channel", put("observations[0].channel", "pulse_pressure_variation"), "unknown_channel")
accepted("channel alias", put("observations[0].channel", "HR"))
accepted("missing value", put("observations[0].value", None), "missing_value")
accepted("negative hours (before admission)", put("observations[0].hours", -5), "outside_window")
accepted("hours after the window", put("observations[0].hours", 500), "outside_window")
accepted("temperature in Fahrenheit", put("observations", [{"channel": "temperature", "hours": 1, "value": 101.3, "unit": "degF"}]), "unit_converted")
accepted("unknown unit", put("observations[1].unit", "furlongs"), "unknown_unit")
accepted("implausible value", put("observations[0].value", 1e9), "out_of_range")
accepted("unknown ICD code", put("visits[0].diagnoses", ["XXX.99", ""]))
accepted("unknown ATC code", put("visits[0].medications", ["Z99Q"]))
accepted("unknown phenotype label", put("labels.phenotypes", ["Dragon pox"]))
accepted("empty note", put("notes[0].text", ""))
accepted("note in another script", put("notes[0].text", "発熱と低血圧。乳酸値上昇。🩺"))
accepted("1,000 duplicate observations", put("observations", [BASE["observations"][0]] * 1000))
# records outside what the model was trained on: said before the results
accepted("no observations", put("observations", []))
accepted("only blank notes", put("notes", [{"kind": "nursing", "text": "  \n "}]))
accepted("a child of 4", put("demographics.age", 4))
accepted("an outpatient clinic visit", put("demographics.care_unit", "Outpatient cardiology clinic"))
accepted("a child at home with nothing recorded", {"id": "c", "demographics": {"age": 2, "care_unit": "home visit"}})

# --- FHIR R4 ------------------------------------------------------------------------------------
FHIR = json.loads((HERE.parent / "fixtures/fhir/mimic3-1001-bundle.json").read_text())
kinds = [e["resource"]["resourceType"] for e in FHIR["entry"]]
OBS = kinds.index("Observation")
PATIENT = kinds.index("Patient")
DOC = kinds.index("DocumentReference")
MED = kinds.index("MedicationRequest")


# the fixture's temperature is in °F ([degF]), converted to °C: every case built on it says so
FHIR_NOTICES = ["unit_converted"]


def fhir(fn):
    bundle = copy.deepcopy(FHIR)
    fn(bundle)
    return bundle


def set_in(bundle, index, key, value):
    bundle["entry"][index]["resource"][key] = value


def fhir_refused(name, fn, *mentions):
    refused(f"FHIR: {name}", fhir(fn), "RECORD_FHIR", *mentions)


at = lambda i, field: f"$.entry[{i}].resource.{field}"
fhir_refused("entry is an object", lambda b: b.__setitem__("entry", {}), "$.entry")
fhir_refused("entry is missing", lambda b: b.pop("entry"), "$.entry")
fhir_refused("entry is a string", lambda b: b.__setitem__("entry", "Observation"), "$.entry")
# an Observation the reader cannot place (no time, no code) is skipped and reported with the
# answer (`resource_skipped`); the rest of the chart is read
for name, fn in [
    ("Observation without a time", lambda b: b["entry"][OBS]["resource"].pop("effectiveDateTime")),
    ("Observation time is not a dateTime", lambda b: set_in(b, OBS, "effectiveDateTime", "yesterday")),
    ("Observation time is a number", lambda b: set_in(b, OBS, "effectiveDateTime", 20500301)),
    ("Observation time month 13", lambda b: set_in(b, OBS, "effectiveDateTime", "2150-13-01T09:00:00Z")),
    ("Observation without a code", lambda b: b["entry"][OBS]["resource"].pop("code")),
    ("Observation code without codings", lambda b: set_in(b, OBS, "code", {"coding": []})),
    ("Observation code is text", lambda b: set_in(b, OBS, "code", "heart rate")),
    ("Observation entered in error", lambda b: set_in(b, OBS, "status", "entered-in-error")),
    ("MedicationRequest without a date", lambda b: b["entry"][MED]["resource"].pop("authoredOn")),
    ("DocumentReference at a URL", lambda b: b["entry"][DOC]["resource"]["content"][0].__setitem__("attachment", {"url": "Binary/1"})),
    ("attachment data not base64", lambda b: b["entry"][DOC]["resource"]["content"][0]["attachment"].__setitem__("data", "%%%")),
    ("attachment data not UTF-8", lambda b: b["entry"][DOC]["resource"]["content"][0]["attachment"].__setitem__("data", "//79")),
]:
    accepted(f"FHIR: {name}", fhir(fn), "resource_skipped",
             also=FHIR_NOTICES + (["no_notes"] if "URL" in name or "attachment" in name else []))
fhir_refused("Patient gender unknown to FHIR", lambda b: set_in(b, PATIENT, "gender", "robot"), at(PATIENT, "gender"))
fhir_refused("Patient gender is a number", lambda b: set_in(b, PATIENT, "gender", 1), at(PATIENT, "gender"))
fhir_refused("Patient birthDate is not a date", lambda b: set_in(b, PATIENT, "birthDate", "in the spring"), at(PATIENT, "birthDate"))
fhir_refused("Patient birthDate is a number", lambda b: set_in(b, PATIENT, "birthDate", 1950), at(PATIENT, "birthDate"))
for kind in ["Observation", "Condition", "Encounter", "Medication", "Basic", "bundle", ""]:
    refused(f"FHIR: a lone {kind or 'empty'} resource", {"resourceType": kind, "id": "x"}, "RECORD_FHIR", "$.resourceType")
refused("FHIR: resourceType is a number", {"resourceType": 7}, "RECORD_FHIR", "$.resourceType")
refused("FHIR: resourceType is null", {"resourceType": None, "id": "x"}, "RECORD_FHIR", "$.resourceType")
accepted("FHIR: a resource bedside does not read", fhir(lambda b: b["entry"].append({"resource": {"resourceType": "Coverage", "id": "c"}})), also=FHIR_NOTICES)
accepted("FHIR: an entry without a resource", fhir(lambda b: b["entry"].append({"fullUrl": "urn:uuid:1"})), also=FHIR_NOTICES)
accepted("FHIR: an empty Bundle", {"resourceType": "Bundle", "type": "collection", "entry": []}, also=["no_observations", "no_notes"])
accepted("FHIR: an Observation of an unknown LOINC code", fhir(lambda b: b["entry"][OBS]["resource"]["code"]["coding"][0].__setitem__("code", "99999-9")), "unknown_channel", also=FHIR_NOTICES)
accepted("FHIR: an Observation without a value", fhir(lambda b: b["entry"][OBS]["resource"].pop("valueQuantity")), "missing_value", also=FHIR_NOTICES)
accepted("FHIR: a Patient alone", {"resourceType": "Patient", "id": "p", "gender": "female"}, also=["no_observations", "no_notes"])

# --- bundles: edits of models/demo ------------------------------------------------------------------
bundles = []


def bundle(name, edits, code, *mentions):
    bundles.append({"name": name, "edits": edits, "code": code, "mentions": list(mentions)})


M = "manifest.json"
W = "model.safetensors"
for cut in [0, 1, 50, 500, 2000]:
    bundle(f"manifest cut after {cut} bytes", [{"file": M, "truncate": cut}], "BUNDLE_INVALID", M)
bundle("manifest is not JSON", [{"file": M, "text": "<html>404</html>"}], "BUNDLE_INVALID", M)
bundle("manifest is an array", [{"file": M, "text": "[]"}], "BUNDLE_INVALID", M)
for field in ["format", "format_version", "model", "labels", "channels", "knowledge_hash", "dtype", "files"]:
    bundle(f"manifest without {field}", [{"file": M, "json_remove": [field]}], "BUNDLE_INVALID", M, field)
for field, value in [("format", 1), ("format_version", "1"), ("labels", "all"), ("channels", {}), ("dtype", 16), ("files", []), ("threshold", "0.5"), ("model", "clinical")]:
    bundle(f"manifest {field} = {json.dumps(value)}", [{"file": M, "json_set": [[field], value]}], "BUNDLE_INVALID", M, field)
bundle("another format", [{"file": M, "json_set": [["format"], "onnx"]}], "BUNDLE_INCOMPATIBLE", M, "format")
for version in [0, 2, 99]:
    bundle(f"format_version {version}", [{"file": M, "json_set": [["format_version"], version]}], "BUNDLE_INCOMPATIBLE", M, "format_version")
bundle("another knowledge base", [{"file": M, "json_set": [["knowledge_hash"], "0" * 64]}], "BUNDLE_INCOMPATIBLE", M, "knowledge_hash")
for dtype in ["bf16", "f64", "int8", ""]:
    bundle(f"dtype {dtype!r}", [{"file": M, "json_set": [["dtype"], dtype]}], "BUNDLE_INCOMPATIBLE", M, "dtype")
bundle("a label dropped", [{"file": M, "json_pop": ["labels"]}], "BUNDLE_INVALID", M, "labels")
bundle("a channel dropped", [{"file": M, "json_pop": ["channels"]}], "BUNDLE_INVALID", M, "channels")
bundle("labels reordered", [{"file": M, "json_reverse": ["labels"]}], "BUNDLE_INVALID", M, "labels")
for field, value in [("t5.d_model", 1 << 20), ("t5.num_layers", 100000), ("t5.vocab_size", 1 << 30), ("series.hours", 10**6), ("series.d_ff", 1 << 24), ("prototypes", 1 << 20)]:
    path = ["model", "config", *field.split(".")]
    bundle(f"model.config.{field} = {value}", [{"file": M, "json_set": [path, value]}], "BUNDLE_INVALID", M, field)
bundle("series n_heads 0", [{"file": M, "json_set": [["model", "config", "series", "n_heads"], 0]}], "BUNDLE_INVALID", M, "n_heads")
# every number a module is built from, bounded before it is built (these panicked inside burn)
for path, value in [
    ("t5.dropout_rate", 1.0), ("t5.dropout_rate", -0.5), ("t5.dropout_rate", 7),
    ("t5.layer_norm_epsilon", 0), ("t5.layer_norm_epsilon", -1e-6), ("t5.layer_norm_epsilon", 1e300),
    ("t5.decoder_start_token_id", 99999), ("t5.pad_token_id", 1 << 40), ("t5.eos_token_id", 2000),
    ("t5.relative_attention_max_distance", 0), ("knowledge_heads", 0), ("knowledge_heads", 3),
    ("knowledge_tokens", 0), ("head_hidden", 0), ("head_hidden", 1 << 30),
    ("series.dropout", 1.0), ("series.dropout", -1), ("series.patch_len", 0), ("series.stride", 0),
    ("series.patch_len", 49), ("series.n_heads", 3),
]:
    bundle(f"model.config.{path} = {json.dumps(value)}", [{"file": M, "json_set": [["model", "config", *path.split(".")], value]}],
           "BUNDLE_INVALID", M, path)
# the head's temperature divides every logit: zero, negative, huge or not a number is refused
for value in [0, -1, 1e9, "hot"]:
    bundle(f"manifest temperature = {json.dumps(value)}", [{"file": M, "json_set": [["temperature"], value]}], "BUNDLE_INVALID", M, "temperature")
for path, value in [("wide", "yes"), ("t5.scale_decoder_outputs", "yes")]:
    bundle(f"model.config.{path} = {json.dumps(value)}", [{"file": M, "json_set": [["model", "config", *path.split(".")], value]}],
           "BUNDLE_INVALID", M, path.split(".")[-1])
for path, value in [("config.dropout", 1.0), ("config.dropout", -0.1)]:
    bundle(f"medications.{path} = {json.dumps(value)}", [{"file": M, "json_set": [["medications", *path.split(".")], value]}],
           "BUNDLE_INVALID", M, path)
bundle("no entry for the weights", [{"file": M, "json_remove": ["files", W]}], "BUNDLE_INVALID", W)
bundle("weights size listed wrong", [{"file": M, "json_set": [["files", W, "bytes"], 12]}], "BUNDLE_INVALID", W)
bundle("weights hash listed wrong", [{"file": M, "json_set": [["files", W, "sha256"], "f" * 64]}], "BUNDLE_HASH_MISMATCH", W, "sha256")
# the files themselves, as a dropped connection or bit rot leaves them (the manifest as exported)
for name, edit_ in [
    ("weights empty", {"truncate": 0}),
    ("weights cut to 7 bytes", {"truncate": 7}),
    ("weights cut after the header", {"truncate": 4096}),
    ("weights cut in half", {"truncate_fraction": 0.5}),
    ("weights one byte short", {"truncate": -1}),
    ("weights one byte too many", {"append": 1}),
]:
    bundle(name, [{"file": W, **edit_}], "BUNDLE_INVALID", W)
for offset in [0, 9, 100000, -1]:
    bundle(f"weights byte {offset} flipped", [{"file": W, "flip": offset}], "BUNDLE_HASH_MISMATCH", W, "sha256")
# a damaged file whose manifest entry was updated to match (a re-export gone wrong): the
# safetensors reader itself must refuse it
for name, edit_, mentions in [
    ("weights cut in half, manifest updated", {"truncate_fraction": 0.5}, [W]),
    ("weights header length huge", {"header_length": 1 << 60}, [W]),
    ("weights header length past the end", {"header_length_add": 1}, [W]),
    ("weights header not JSON", {"header_replace": ["{", "["]}, [W]),
    ("weights in f64", {"header_dtype": "F64"}, [W]),
    ("weights in i8", {"header_dtype": "I8"}, [W]),
    ("a weight with another shape", {"header_shape_swap": True}, [W]),
    ("a weight renamed", {"header_rename": True}, [W]),
    ("data offsets out of order", {"header_offsets_overlap": True}, [W]),
]:
    bundle(name, [{"file": W, **edit_}, {"file": M, "rehash": W}], "BUNDLE_INVALID", *mentions)
for name, edit_ in [("tokenizer empty", {"truncate": 0}), ("tokenizer cut", {"truncate_fraction": 0.5}), ("tokenizer not JSON", {"text": "vocab"}), ("tokenizer of another kind", {"text": '{"model": {"type": "Unigram"}}'})]:
    bundle(name, [{"file": "tokenizer.json", **edit_}, {"file": M, "rehash": "tokenizer.json"}], "BUNDLE_INVALID", "tokenizer.json")
# ids past the model's vocabulary (1512 tokens), the count unchanged: in the vocabulary, as the
# pad or eos token, only in the post-processor's template; and a pad that is not the model's
T = "tokenizer.json"
for name, path, value in [
    ("tokenizer id beyond the model's vocabulary", ["model", "vocab", "<note:17>"], 99999),
    ("tokenizer pad id beyond the model's vocabulary", ["model", "vocab", "<pad>"], 1512),
    ("tokenizer eos id beyond the model's vocabulary", ["model", "vocab", "</s>"], 1 << 31),
    ("tokenizer pad id not the model's", ["model", "vocab", "<pad>"], 5),
    ("tokenizer post-processor id beyond the model's vocabulary", ["post_processor", "special_tokens", "</s>", "ids"], [4000]),
]:
    bundle(name, [{"file": T, "json_set": [path, value]}, {"file": M, "rehash": T}], "BUNDLE_INVALID", T)
# the model card is for people, but bounded and typed like the rest
bundle("model card text too long", [{"file": M, "json_set": [["model_card", "intended_use"], "x" * 5000]}], "BUNDLE_INVALID", M, "model_card.intended_use")
bundle("model card of another shape", [{"file": M, "json_set": [["model_card", "limits"], "not a list"]}], "BUNDLE_INVALID", M, "model_card")
for name, edit_ in [("medication weights cut", {"truncate_fraction": 0.5}), ("medication weights header not JSON", {"header_replace": ["{", "["]})]:
    bundle(name, [{"file": "medrec.safetensors", **edit_}, {"file": M, "rehash": "medrec.safetensors"}], "BUNDLE_INVALID", "medrec.safetensors")
bundle("medication weights flipped byte", [{"file": "medrec.safetensors", "flip": 5000}], "BUNDLE_HASH_MISMATCH", "medrec.safetensors")

# --- teacher rationale JSONL lines ----------------------------------------------------------------
GOOD = {"id": "synthetic-7-00000", "note_rationale": "The notes report fever.", "lab_rationale": "Lactate was 4.1 mmol/L at hour 3.", "teacher": "endpoint"}
teacher = []


def teacher_case(name, lines, mentions):
    teacher.append({"name": name, "lines": lines, "code": "CLI_EXIT_1", "mentions": mentions})


for field in GOOD:
    teacher_case(f"rationale without {field}", [json.dumps({k: v for k, v in GOOD.items() if k != field})], [":1", field])
    teacher_case(f"rationale {field} = 7", [json.dumps({**GOOD, field: 7})], [":1", field])
teacher_case("rationale with an unknown field", [json.dumps({**GOOD, "score": 1})], [":1", "score"])
teacher_case("empty id", [json.dumps({**GOOD, "id": " "})], [":1", "id"])
teacher_case("id twice", [json.dumps(GOOD), json.dumps(GOOD)], [":2", "twice"])
teacher_case("third line cut", [json.dumps(GOOD), json.dumps({**GOOD, "id": "synthetic-7-00001"}), json.dumps(GOOD)[:30]], [":3"])
teacher_case("a line that is an array", [json.dumps([GOOD])], [":1"])
teacher_case("a line of plain text", ["Here are the rationales:"], [":1"])

# --- PhysioNet 2012 stay files ------------------------------------------------------------------
STAY = ["Time,Parameter,Value", "00:00,RecordID,132539", "00:00,Age,54", "00:00,Gender,0", "00:00,ICUType,4", "00:07,HR,73", "00:37,NIMAP,91", "01:10,Temp,35.1"]
physionet = []


def stay(name, lines, skip, record=True, line=None):
    physionet.append({"name": name, "text": "\n".join(lines) + "\n", "skip": skip, "record": record, "line": line})


def with_row(row, at=5):
    return STAY[:at] + [row] + STAY[at:]


for name, row, reason in [
    ("time without a colon", "0007,HR,73", "unreadable time"),
    ("time with letters", "ab:cd,HR,73", "unreadable time"),
    ("minutes past 59", "00:75,HR,73", "unreadable time"),
    ("negative time", "-1:00,HR,73", "unreadable time"),
    ("empty time", ",HR,73", "unreadable time"),
    ("value as text", "00:10,HR,high", "unreadable value"),
    ("empty value", "00:10,HR,", "unreadable value"),
    ("value NaN", "00:10,HR,NaN", "unreadable value"),
    ("value inf", "00:10,HR,inf", "unreadable value"),
    ("value with a unit", "00:10,Temp,37.2C", "unreadable value"),
    ("two fields", "00:10,HR", "malformed row"),
    ("four fields", "00:10,HR,73,bpm", "malformed row"),
    ("unknown parameter", "00:10,Mystery,3", "unknown parameter (kept in the record)"),
    ("parameter in lower case", "00:10,hr_typo,3", "unknown parameter (kept in the record)"),
]:
    stay(name, with_row(row), reason, line=6)
stay("no header", STAY[1:], "stay file without a Time,Parameter,Value header", record=False)
stay("another header", ["time;parameter;value"] + STAY[1:], "stay file without a Time,Parameter,Value header", record=False)
stay("empty file", [""], "stay file without a Time,Parameter,Value header", record=False)
stay("no RecordID", [STAY[0]] + STAY[2:], "stay file without RecordID", record=False)
stay("RecordID unreadable", [STAY[0], "00:00,RecordID,abc"] + STAY[2:], "unreadable value", record=False, line=2)
stay("RecordID without an outcome", [STAY[0], "00:00,RecordID,999999"] + STAY[2:], "stay without an outcome row (kept, unlabelled)")
stay("file cut inside a row", STAY[:-1] + ["01:10,Te"], "malformed row", line=8)

# --- MIMIC tables ---------------------------------------------------------------------------------
# MIMIC-IV hosp/: three admissions of two patients, four labs inside the first 48 hours.
MIMIC4 = {
    "patients.csv": ["subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
                     "10001,F,67,2180,2017 - 2019,", "10002,M,54,2181,2017 - 2019,2181-01-09"],
    "admissions.csv": ["subject_id,hadm_id,admittime,dischtime,admission_type,hospital_expire_flag",
                       "10001,20001,2180-05-06 22:00:00,2180-05-09 10:00:00,EW EMER.,0",
                       "10001,20003,2180-07-01 10:00:00,2180-07-05 10:00:00,URGENT,0",
                       "10002,20002,2181-01-02 08:00:00,2181-01-09 12:00:00,EW EMER.,1"],
    "labevents.csv": ["labevent_id,subject_id,hadm_id,specimen_id,itemid,charttime,value,valuenum,valueuom,comments",
                      "1,10001,20001,1,50912,2180-05-07 02:00:00,1.9,1.9,mg/dL,",
                      "2,10001,20001,1,50813,2180-05-07 02:00:00,4.1,4.1,mmol/L,",
                      "3,10002,20002,2,50971,2181-01-02 12:00:00,5.9,5.9,mEq/L,",
                      "4,10001,20003,3,51301,2180-07-01 16:00:00,14.2,14.2,K/uL,"],
    "diagnoses_icd.csv": ["subject_id,hadm_id,seq_num,icd_code,icd_version",
                          "10001,20001,1,5849,9", "10002,20002,1,A419,10", "10001,20003,1,99591,9"],
    "procedures_icd.csv": ["subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version",
                           "10001,20001,1,2180-05-07,3995,9", "10002,20002,1,2181-01-03,5A1955Z,10"],
}
FIXTURE = HERE.parent / "fixtures" / "mimic3"
MIMIC3 = {}
for path in sorted(FIXTURE.glob("*.csv*")):
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    MIMIC3[path.name.removesuffix(".gz")] = text.rstrip("\n").split("\n")
mimic = []


def mimic_case(name, source, edit, records, more_observations=0, skip=None, at=None, error=None, encode=None):
    """`edit(tables)` changes the tables (file name → list of lines); `encode(name, text)` may turn
    a file into bytes (base64) or rename it (gzip)."""
    tables = copy.deepcopy(MIMIC4 if source == "mimic4" else MIMIC3)
    edit(tables)
    files = {}
    for file, lines in tables.items():
        if lines is None:
            continue
        text = "\n".join(lines) + "\n" if lines else ""
        encoded = encode(file, text) if encode else None
        if encoded is None:
            files[file] = {"text": text}
        else:
            files[encoded[0]] = {"base64": base64.b64encode(encoded[1]).decode()}
    case = {"name": name, "source": source, "files": files}
    if error:
        case["error"] = error
    else:
        case.update(records=records, more_observations=more_observations, skip=skip, at=at)
    mimic.append(case)


def insert(file, row, at=2):
    """The row becomes data row `at` + 1 (line `at` + 2 of the file)."""
    return lambda tables: tables[file].insert(at + 1, row)


def replace_header(file, old, new):
    return lambda tables: tables[file].__setitem__(0, tables[file][0].replace(old, new))


LAB_SKIP = "event with an unknown admission id or an unreadable chart time"
mimic_case("untouched", "mimic4", lambda t: None, 3)
for name, row, more, skip in [
    ("lab of an unknown admission", "5,10001,99999,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab charttime as text", "5,10001,20001,4,50912,yesterday,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab charttime 30 February", "5,10001,20001,4,50912,2180-02-30 03:00:00,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab charttime in ISO 8601 with T", "5,10001,20001,4,50912,2180-05-07T03:00:00,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab charttime without seconds", "5,10001,20001,4,50912,2180-05-07 03:00,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab charttime empty", "5,10001,20001,4,50912,,2.0,2.0,mg/dL,", 0, LAB_SKIP),
    ("lab row cut after itemid", "5,10001,20001,4,50912", 0, LAB_SKIP),
    ("lab without hadm_id", "5,10001,,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,", 0,
     "lab outside any admission (no hadm_id; not an error)"),
    ("lab valuenum NaN (kept without a value)", "5,10001,20001,4,50912,2180-05-07 03:00:00,NaN,NaN,mg/dL,", 1, None),
    ("lab valuenum inf (kept without a value)", "5,10001,20001,4,50912,2180-05-07 03:00:00,inf,inf,mg/dL,", 1, None),
    ("lab valuenum with a decimal comma", '5,10001,20001,4,50912,2180-05-07 03:00:00,"2,0","2,0",mg/dL,', 1, None),
    ("lab valuenum empty", "5,10001,20001,4,50912,2180-05-07 03:00:00,___,,mg/dL,", 1, None),
    ("lab valuenum -1e308", "5,10001,20001,4,50912,2180-05-07 03:00:00,x,-1e308,mg/dL,", 1, None),
    ("lab without a unit", "5,10001,20001,4,50912,2180-05-07 03:00:00,2.0,2.0,,", 1, None),
    ("lab with extra fields", "5,10001,20001,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,,x,y,z", 1, None),
    ("lab of an item bedside does not read", "5,10001,20001,4,99999,2180-05-07 03:00:00,2.0,2.0,mg/dL,", 0, None),
    ("lab itemid as text", "5,10001,20001,4,creat,2180-05-07 03:00:00,2.0,2.0,mg/dL,", 0, None),
    ("lab 60 hours after admission (outside the window)", "5,10001,20001,4,50912,2180-05-09 10:00:00,2.0,2.0,mg/dL,", 0, None),
    ("lab before admission (outside the window)", "5,10001,20001,4,50912,2180-05-06 21:00:00,2.0,2.0,mg/dL,", 0, None),
    ("lab listed twice (both kept)", "5,10001,20001,1,50912,2180-05-07 02:00:00,1.9,1.9,mg/dL,", 1, None),
    ("lab comment with a quoted comma", '5,10001,20001,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,"haemolysed, repeat"', 1, None),
]:
    mimic_case(name, "mimic4", insert("labevents.csv", row), 3, more, skip, "labevents.csv:4" if skip else None)
mimic_case("lab comment over two lines, then a bad row", "mimic4",
           lambda t: t["labevents.csv"].__setitem__(2, t["labevents.csv"][2] + '"see\nnote"') or
           t["labevents.csv"].insert(3, "5,10001,20001,4,50912,yesterday,2.0,2.0,mg/dL,"),
           3, 0, LAB_SKIP, "labevents.csv:5")
mimic_case("blank lines between rows, then a bad row", "mimic4",
           lambda t: t["labevents.csv"].insert(2, "") or t["labevents.csv"].insert(3, "") or
           t["labevents.csv"].insert(4, "5,10001,99999,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,"),
           3, 0, LAB_SKIP, "labevents.csv:5")
mimic_case("last row bad, without a final newline", "mimic4",
           lambda t: t["labevents.csv"].append("5,10001,20001,4,50912,yesterday,2.0,2.0,mg/dL,"),
           3, 0, LAB_SKIP, "labevents.csv:6",
           encode=lambda f, text: (f, text.rstrip("\n").encode()) if f == "labevents.csv" else None)
mimic_case("lab row in Latin-1 (not UTF-8)", "mimic4",
           insert("labevents.csv", "5,10001,20001,4,50912,2180-05-07 03:00:00,2.0,2.0,mg/dL,hémolysé"),
           3, 0, "malformed row", "labevents.csv:4",
           encode=lambda f, text: (f, text.encode("latin-1")) if f == "labevents.csv" else None)
mimic_case("labevents with a byte-order mark", "mimic4", lambda t: t["labevents.csv"].__setitem__(0, "\ufeff" + t["labevents.csv"][0]), 3)
mimic_case("labevents headers in upper case", "mimic4", lambda t: t["labevents.csv"].__setitem__(0, t["labevents.csv"][0].upper()), 3)
mimic_case("labevents headers with spaces", "mimic4", replace_header("labevents.csv", ",", ", "), 3)
mimic_case("labevents with CRLF line ends", "mimic4",
           lambda t: t.__setitem__("labevents.csv", [l + "\r" for l in t["labevents.csv"]]), 3)
mimic_case("labevents without valuenum", "mimic4", replace_header("labevents.csv", "valuenum", "value_num"), 0,
           error=["labevents.csv", "valuenum"])
mimic_case("labevents empty", "mimic4", lambda t: t.__setitem__("labevents.csv", []), 0, error=["labevents.csv", "hadm_id"])
mimic_case("labevents missing", "mimic4", lambda t: t.__setitem__("labevents.csv", None), 0, error=["labevents.csv"])
mimic_case("labevents header in Latin-1", "mimic4", replace_header("labevents.csv", "comments", "commentaire_é"), 0,
           error=["labevents.csv"],
           encode=lambda f, text: (f, text.encode("latin-1")) if f == "labevents.csv" else None)


def gz(fraction=None):
    def encode(file, text):
        if file != "labevents.csv":
            return None
        data = gzip.compress(text.encode(), mtime=0)
        return file + ".gz", data[: int(len(data) * fraction)] if fraction else data
    return encode


mimic_case("labevents gzipped", "mimic4", lambda t: None, 3, encode=gz())
mimic_case("labevents gzip cut short", "mimic4", lambda t: t["labevents.csv"].extend(
    f"{i},10001,20001,9,50912,2180-05-07 03:00:00,{i},{i},mg/dL," for i in range(10, 400)),
           3, None, "damaged file (rest of the file not read)", "labevents.csv.gz", encode=gz(0.5))
mimic_case("labevents.csv.gz that is not gzip", "mimic4", lambda t: None, 0, error=["labevents.csv.gz", "header"],
           encode=lambda f, text: (f + ".gz", text.encode()) if f == "labevents.csv" else None)

ADM_SKIP = "admission without hadm_id or admittime"
for name, row, admissions, skip in [
    ("admission without hadm_id", "10002,,2181-03-01 08:00:00,2181-03-02 08:00:00,URGENT,0", 3, ADM_SKIP),
    ("admission admittime month 13", "10002,20004,2181-13-01 08:00:00,2181-03-02 08:00:00,URGENT,0", 3, ADM_SKIP),
    ("admission admittime empty", "10002,20004,,2181-03-02 08:00:00,URGENT,0", 3, ADM_SKIP),
    ("admission listed twice", "10001,20001,2180-05-06 22:00:00,2180-05-09 10:00:00,EW EMER.,0", 3,
     "admission listed twice (the first row kept)"),
    ("admission hospital_expire_flag yes (unknown outcome)", "10002,20004,2181-03-01 08:00:00,2181-03-02 08:00:00,URGENT,yes", 4, None),
    ("admission of a patient not in patients", "10009,20009,2181-03-01 08:00:00,2181-03-02 08:00:00,URGENT,0", 4, None),
    ("admission with the fields shifted", "10002,2181-03-01 08:00:00,20004,2181-03-02 08:00:00,URGENT,0", 3, ADM_SKIP),
]:
    mimic_case(name, "mimic4", insert("admissions.csv", row), admissions, 0, skip, "admissions.csv:4" if skip else None)
mimic_case("admissions without admittime", "mimic4", replace_header("admissions.csv", "admittime", "admit_time"), 0,
           error=["admissions.csv", "admittime"])
for name, row in [
    ("patient gender X", "10003,X,40,2180,2017 - 2019,"),
    ("patient anchor_age as text", "10003,F,forty,2180,2017 - 2019,"),
    ("patient anchor_age 300", "10003,F,300,2180,2017 - 2019,"),
    ("patient listed twice", "10001,F,67,2180,2017 - 2019,"),
]:
    mimic_case(name, "mimic4", insert("patients.csv", row, at=1), 3)
mimic_case("patients without anchor_year", "mimic4", replace_header("patients.csv", "anchor_year,", "year,"), 0,
           error=["patients.csv", "anchor_year"])
for name, row, skip in [
    ("diagnosis icd_version 11", "10001,20001,2,XY123,11", "diagnosis with an unknown icd_version"),
    ("diagnosis icd_version empty", "10001,20001,2,5849,", "diagnosis with an unknown icd_version"),
    ("diagnosis without icd_code", "10001,20001,2,,9", "diagnosis without an icd_code"),
    ("diagnosis seq_num as text (kept, last)", "10001,20001,first,4280,9", None),
    ("diagnosis code with a dot and spaces (normalised)", "10001,20001,2, 428.0 ,9", None),
    ("diagnosis of an unknown admission", "10001,99999,1,4280,9", None),
]:
    mimic_case(name, "mimic4", insert("diagnoses_icd.csv", row), 3, 0, skip, "diagnoses_icd.csv:4" if skip else None)
mimic_case("procedure without icd_code", "mimic4", insert("procedures_icd.csv", "10001,20001,2,2180-05-07,,9"), 3, 0,
           "procedure without an icd_code", "procedures_icd.csv:4")
mimic_case("diagnoses_icd missing", "mimic4", lambda t: t.__setitem__("diagnoses_icd.csv", None), 0, error=["diagnoses_icd.csv"])

# MIMIC-III: the fixture tables (tests/fixtures/mimic3) with one bad row each
mimic_case("untouched", "mimic3", lambda t: None, 3)
for name, file, row, more, skip in [
    ("LABEVENTS row of an unknown admission", "LABEVENTS.csv", "9,101,9999,50912,2150-03-01 12:00:00,2.0,2.0,mg/dL,", 0,
     "event with an unknown admission id or an unreadable chart time"),
    ("LABEVENTS VALUENUM NaN (kept without a value)", "LABEVENTS.csv", "9,101,1001,50912,2150-03-01 12:00:00,NaN,NaN,mg/dL,", 1, None),
    ("CHARTEVENTS heart rate marked as an error", "CHARTEVENTS.csv",
     "11,101,1001,5001,211,2150-03-01 12:00:00,2150-03-01 12:10:00,1,300,300,BPM,,1,,NotStopd", 0, "charted value marked as an error"),
    ("CHARTEVENTS CHARTTIME as text", "CHARTEVENTS.csv",
     "11,101,1001,5001,211,noon,2150-03-01 12:10:00,1,90,90,BPM,,,,NotStopd", 0,
     "event with an unknown admission id or an unreadable chart time"),
    ("CHARTEVENTS ventilator mode (ventilated, value 1)", "CHARTEVENTS.csv",
     "18,101,1001,5001,223849,2150-03-01 12:00:00,2150-03-01 12:10:00,1,PCV+,,,0,0,,", 1, None),
    ("CHARTEVENTS O2 delivery by nasal cannula (not ventilation)", "CHARTEVENTS.csv",
     "18,101,1001,5001,467,2150-03-01 12:00:00,2150-03-01 12:10:00,1,Nasal cannula,,,,,,NotStopd", 0, None),
    ("OUTPUTEVENTS urine of an unknown admission", "OUTPUTEVENTS.csv",
     "7,101,9999,5004,2151-06-10 14:00:00,40055,100,ml,2151-06-10 14:05:00,3,,,", 0,
     "event with an unknown admission id or an unreadable chart time"),
    ("OUTPUTEVENTS urine marked as an error", "OUTPUTEVENTS.csv",
     "7,101,1001,5001,2150-03-01 12:00:00,40055,100,ml,2150-03-01 12:05:00,3,,,1", 0, "output marked as an error"),
    ("OUTPUTEVENTS urine as text (kept without a value)", "OUTPUTEVENTS.csv",
     "7,101,1001,5001,2150-03-01 12:00:00,40055,lots,ml,2150-03-01 12:05:00,3,,,", 1, None),
    ("DIAGNOSES_ICD without ICD9_CODE", "DIAGNOSES_ICD.csv", "6,101,1002,2,", 0, "diagnosis without an ICD9_CODE"),
    ("PROCEDURES_ICD without ICD9_CODE", "PROCEDURES_ICD.csv", "2,101,1001,2,", 0, "procedure without an ICD9_CODE"),
    ("ADMISSIONS row listed twice", "ADMISSIONS.csv",
     "10,101,1001,2150-03-01 08:00:00,2150-03-05 08:00:00,,EMERGENCY,EMERGENCY ROOM ADMIT,HOME,Medicare,ENGL,,MARRIED,WHITE,,,SEPSIS,0,1",
     0, "admission listed twice (the first row kept)"),
]:
    line = min(3, len(MIMIC3[file])) + 1
    mimic_case(name, "mimic3", insert(file, row), 3, more, skip, f"{file}:{line}" if skip else None)
mimic_case("NOTEEVENTS missing (notes are optional)", "mimic3", lambda t: t.__setitem__("NOTEEVENTS.csv", None), 3)
mimic_case("OUTPUTEVENTS missing (urine output is read from it)", "mimic3",
           lambda t: t.__setitem__("OUTPUTEVENTS.csv", None), 0, error=["OUTPUTEVENTS.csv"])
mimic_case("OUTPUTEVENTS without ISERROR", "mimic3", replace_header("OUTPUTEVENTS.csv", "ISERROR", "IS_ERROR"), 0,
           error=["OUTPUTEVENTS.csv", "ISERROR"])
mimic_case("ICUSTAYS without FIRST_CAREUNIT", "mimic3", replace_header("ICUSTAYS.csv", "FIRST_CAREUNIT", "CAREUNIT"), 0,
           error=["ICUSTAYS.csv", "FIRST_CAREUNIT"])

# `--check`: compare with the committed files instead of writing them (tests/catalogue.rs runs it,
# so an edit of this script that was not regenerated, or of a JSONL by hand, fails)
stale = []


def comparable(text):
    """The cases of a JSONL text with gzip payloads left out: another zlib (zlib-ng) compresses the
    same text to other bytes, and the check must not depend on the machine."""
    def strip(value):
        if isinstance(value, dict):
            return {k: "<gzip>" if k.endswith(".gz") and isinstance(v, dict) and "base64" in v else strip(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return [strip(json.loads(line)) for line in text.splitlines() if line.strip()]


for file, cases in [("records.jsonl", records), ("bundles.jsonl", bundles), ("teacher.jsonl", teacher),
                    ("physionet.jsonl", physionet), ("mimic.jsonl", mimic)]:
    text = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
    if "--check" in sys.argv:
        if comparable((HERE / file).read_text()) != comparable(text):
            stale.append(file)
    else:
        (HERE / file).write_text(text)
    print(f"{file}: {len(cases)} cases")
if stale:
    sys.exit(f"stale: {', '.join(stale)}; regenerate with python3 tests/catalogue/generate.py")
print(f"total: {len(records) + len(bundles) + len(teacher) + len(physionet) + len(mimic)}")
