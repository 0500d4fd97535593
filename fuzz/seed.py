#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets, from the bad-input catalogue and the fixtures:
python3 fuzz/seed.py OUT_DIR → OUT_DIR/{record,fhir,manifest,tokenizer,weights,csv}/N."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1])
records = [json.loads(l)["input"] for l in (root / "tests/catalogue/records.jsonl").read_text().splitlines() if l.strip()]
fixtures = [p.read_text() for p in sorted((root / "tests/fixtures/fhir").glob("*.json"))]
# manifest: the first byte picks the model kind (fuzz_targets/manifest.rs: even the tiny
# lab-phenotype bundle, odd the demo clinical bundle), the rest is that bundle's manifest
manifests = []
for kind, bundle in [(0, "tests/fixtures/tiny-bundle"), (1, "models/demo")]:
    manifest = json.loads((root / bundle / "manifest.json").read_text())
    manifest.pop("training", None)
    manifests += [chr(kind) + json.dumps(manifest), chr(kind) + json.dumps(manifest, indent=2)]
corpora = {
    "record": records + fixtures,
    "fhir": fixtures + [r for r in records if '"resourceType"' in r],
    "manifest": manifests,
    "tokenizer": ["Fever, hypotension and rising lactate. Started on vancomycin.", "発熱と低血圧。乳酸値上昇。🩺", " " * 300],
}
# csv: the first byte picks the table (the order of fuzz_targets/csv.rs), the rest replaces it
TABLES = ["patients.csv", "admissions.csv", "labevents.csv", "diagnoses_icd.csv", "procedures_icd.csv"]
mimic = [json.loads(l) for l in (root / "tests/catalogue/mimic.jsonl").read_text().splitlines() if l.strip()]
csv = {bytes([TABLES.index(name)]) + file["text"].encode()
       for case in mimic if case["source"] == "mimic4"
       for name, file in case["files"].items() if name in TABLES and "text" in file}
corpora = {name: [text.encode() for text in inputs] for name, inputs in corpora.items()}
corpora["weights"] = [(root / "tests/fixtures/tiny-bundle/model.safetensors").read_bytes()]
corpora["csv"] = sorted(csv)
for name, inputs in corpora.items():
    (out / name).mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(inputs):
        (out / name / str(i)).write_bytes(data)
    print(f"{name}: {len(inputs)} seeds")
