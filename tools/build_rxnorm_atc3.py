"""Writes src/knowledge/data/rxnorm_atc3.tsv: RxNorm concept (RxCUI) → ATC level-3 class, by joining
medrec/ndc2rxnorm_mapping.csv (NDC → RxCUI) with medrec/gsn_atc_ndc_mapping.csv.gz (NDC → ATC) on
the NDC (leading zeros ignored). Only RxCUIs that reach exactly one ATC-3 class are kept.

Run: python3 tools/build_rxnorm_atc3.py
"""
import csv
import gzip
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "data" / "medrec"
OUT = ROOT / "src" / "knowledge" / "data" / "rxnorm_atc3.tsv"

atc = {}
with gzip.open(SRC / "gsn_atc_ndc_mapping.csv.gz", "rt", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        if len(row["atc"]) >= 4:
            atc.setdefault(row["ndc"].lstrip("0"), set()).add(row["atc"][:4].upper())
classes = {}
with open(SRC / "ndc2rxnorm_mapping.csv", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        if not row["RXCUI"].strip().isdigit():
            continue
        for atc3 in atc.get(row["NDC"].lstrip("0"), ()):
            classes.setdefault(row["RXCUI"].strip(), set()).add(atc3)
unique = {rx: next(iter(c)) for rx, c in classes.items() if len(c) == 1}
with open(OUT, "w", encoding="utf-8") as out:
    out.write("# rxcui\tatc3  (tools/build_rxnorm_atc3.py; medrec NDC tables, MIT)\n")
    for rx in sorted(unique, key=int):
        out.write(f"{rx}\t{unique[rx]}\n")
print(f"{len(unique)} RxCUIs → ATC-3 ({len(classes) - len(unique)} ambiguous left out)")
