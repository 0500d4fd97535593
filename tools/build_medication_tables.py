"""Writes the medication tables of the knowledge base from ../shared/data/medrec:

  src/knowledge/data/atc3.tsv   every ATC level-3 code (4 characters) with its name
  src/knowledge/data/ddi.tsv    drug-drug-interaction pairs between ATC level-3 codes (TWOSIDES,
                                as derived by GAMENet/SafeDrug), each unordered pair once, sorted

Run: python3 tools/build_medication_tables.py
"""
import csv
import gzip
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "data" / "medrec"
OUT = ROOT / "src" / "knowledge" / "data"

with gzip.open(SRC / "atc_code_names.csv.gz", "rt", encoding="utf-8") as f:
    names = {row["atc_code"]: row["atc_name"].strip() for row in csv.DictReader(f)}
level3 = sorted(code for code in names if len(code) == 4)
with open(OUT / "atc3.tsv", "w", encoding="utf-8") as out:
    out.write("# ATC level-3 code\tname  (tools/build_medication_tables.py; WHO ATC names via medrec/atc_code_names.csv.gz)\n")
    for code in level3:
        out.write(f"{code}\t{names[code]}\n")

pairs = set()
with open(SRC / "ddi_edges_atc3.csv", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        a, b = sorted((row["atc3_a"].strip(), row["atc3_b"].strip()))
        if a != b:
            pairs.add((a, b))
missing = {c for p in pairs for c in p} - set(level3)
with open(OUT / "ddi.tsv", "w", encoding="utf-8") as out:
    out.write("# atc3_a\tatc3_b  (tools/build_medication_tables.py; TWOSIDES-derived edges of GAMENet, MIT)\n")
    for a, b in sorted(pairs):
        out.write(f"{a}\t{b}\n")
print(f"{len(level3)} ATC-3 codes, {len(pairs)} DDI pairs; codes in DDI pairs without a name: {sorted(missing)}")
