"""Writes src/knowledge/data/mimic3_items.tsv: the MIMIC-III CHARTEVENTS/LABEVENTS item ids of the
MIMIC-III benchmark's 17 variables (itemid_to_variable_map.csv, STATUS ready; CareVue and
MetaVision), each with bedside's channel and the unit its values are charted in (read from the
item's label where the table leaves it blank: "Temperature F" is Fahrenheit, "(lb)" pounds, ...).

Run: python3 tools/build_mimic3_items.py
"""
import csv
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "data" / "mimic3-benchmarks" / "itemid_to_variable_map.csv"
OUT = ROOT / "src" / "knowledge" / "data" / "mimic3_items.tsv"

CHANNEL = {
    "Capillary refill rate": "capillary_refill",
    "Diastolic blood pressure": "diastolic_bp",
    "Fraction inspired oxygen": "fio2",
    "Glascow coma scale eye opening": "gcs_eye",
    "Glascow coma scale motor response": "gcs_motor",
    "Glascow coma scale total": "gcs_total",
    "Glascow coma scale verbal response": "gcs_verbal",
    "Glucose": "glucose",
    "Heart Rate": "heart_rate",
    "Height": "height",
    "Mean blood pressure": "mean_bp",
    "Oxygen saturation": "spo2",
    "Respiratory rate": "resp_rate",
    "Systolic blood pressure": "systolic_bp",
    "Temperature": "temperature",
    "Weight": "weight",
    "pH": "ph",
}
ARTERIAL_SATURATION = {"834", "50817", "220227"}  # SaO2, not pulse oximetry


def unit(variable: str, label: str, unitname: str) -> str:
    low = label.lower()
    if variable == "Temperature":
        return "[degF]" if ("f" in low.replace("(calc)", "").split() or "[f]" in low or "fahrenheit" in low) else "Cel"
    if variable == "Weight":
        return "[lb_av]" if "lb" in low else "[oz_av]" if "(oz)" in low else "kg"
    if variable == "Height":
        return "cm" if "cm" in low else "[in_i]"
    if variable == "Fraction inspired oxygen":
        return ""  # charted as a fraction or a percentage; the reader decides by value
    return ""  # the channel's canonical unit


rows = [r for r in csv.DictReader(open(SRC, encoding="utf-8")) if r["STATUS"] == "ready"]
with open(OUT, "w", encoding="utf-8") as out:
    out.write("# itemid\tchannel\tunit\ttable\tdbsource  (tools/build_mimic3_items.py; YerevaNN/mimic3-benchmarks, MIT)\n")
    for r in sorted(rows, key=lambda r: int(r["ITEMID"])):
        channel = "sao2" if r["ITEMID"] in ARTERIAL_SATURATION else CHANNEL[r["LEVEL2"]]
        out.write(f"{r['ITEMID']}\t{channel}\t{unit(r['LEVEL2'], r['MIMIC LABEL'], r['UNITNAME'])}\t{r['LINKSTO']}\t{r['DBSOURCE']}\n")
print(f"{len(rows)} item ids → {OUT}")
