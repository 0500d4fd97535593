"""Writes src/knowledge/data/mimic3_items.tsv: the MIMIC-III CHARTEVENTS/LABEVENTS item ids of the
MIMIC-III benchmark's 17 variables (itemid_to_variable_map.csv, STATUS ready; CareVue and
MetaVision), each with bedside's channel and the unit its values are charted in (read from the
item's label where the table leaves it blank: "Temperature F" is Fahrenheit, "(lb)" pounds, ...).

Two channels the benchmark's 17 variables leave out are added:
- urine output: the same map's OUTPUTEVENTS items of its "Urine output" variable, whatever their
  STATUS (the benchmark marks them verify/maybe only because it does not use them), and those of
  mimic-code's concepts/fluid_balance/urine_output.sql (voids, nephrostomies, ureteral stents,
  straight catheters); not the GU irrigant items, whose volume includes the irrigation;
- mechanical ventilation: the CHARTEVENTS items that mark a ventilated hour in MIT-licensed
  mimic-code's concepts/durations/ventilation_classification.sql (MIMIC-III v1.4). For 720, 223848
  and 467 the charted text decides (the reader applies those rules); any other item's presence is
  the sign.

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


URINE = [
    40055, 43175, 40069, 40094, 40715, 40473, 40085, 40057, 40056, 40405, 40428, 40086, 40096, 40651,  # CareVue
    226559, 226560, 226561, 226584, 226563, 226564, 226565, 226567, 226557, 226558,  # MetaVision
]
VENTILATION = [
    720, 223848, 223849, 467,  # vent type, vent mode, O2 delivery device (text rules in the reader)
    445, 448, 449, 450, 1340, 1486, 1600, 224687,  # minute volume
    639, 654, 681, 682, 683, 684, 224685, 224684, 224686,  # tidal volume
    218, 436, 535, 444, 459, 224697, 224695, 224696, 224746, 224747,  # airway pressures
    221, 1, 1211, 1655, 2000, 226873, 224738, 224419, 224750, 227187,  # inspiratory pressure
    543,  # plateau pressure
    5865, 5866, 224707, 224709, 224705, 224706,  # APRV pressures
    60, 437, 505, 506, 686, 220339, 224700,  # PEEP
    3459,  # high pressure relief
    501, 502, 503, 224702,  # PCV
    223, 667, 668, 669, 670, 671, 672,  # TCPCV
    224701,  # PSV level
]

mapped = list(csv.DictReader(open(SRC, encoding="utf-8")))
rows = []
for r in mapped:
    if r["STATUS"] == "ready":
        channel = "sao2" if r["ITEMID"] in ARTERIAL_SATURATION else CHANNEL[r["LEVEL2"]]
        rows.append((int(r["ITEMID"]), channel, unit(r["LEVEL2"], r["MIMIC LABEL"], r["UNITNAME"]), r["LINKSTO"], r["DBSOURCE"]))
    elif r["LEVEL2"] == "Urine output" and r["LINKSTO"] == "outputevents":
        rows.append((int(r["ITEMID"]), "urine_output", "mL", "outputevents", r["DBSOURCE"]))
for item in URINE:
    if item not in {row[0] for row in rows}:
        rows.append((item, "urine_output", "mL", "outputevents", "metavision" if item >= 220000 else "carevue"))
taken = {row[0] for row in rows}
assert not taken & set(VENTILATION), taken & set(VENTILATION)
for item in VENTILATION:
    rows.append((item, "mech_vent", "", "chartevents", "metavision" if item >= 220000 else "carevue"))
with open(OUT, "w", encoding="utf-8") as out:
    out.write("# itemid\tchannel\tunit\ttable\tdbsource  (tools/build_mimic3_items.py; YerevaNN/mimic3-benchmarks and MIT-Lab-for-Computational-Physiology/mimic-code, MIT)\n")
    for row in sorted(rows):
        out.write("\t".join(map(str, row)) + "\n")
print(f"{len(rows)} item ids → {OUT}")
