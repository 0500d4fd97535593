#!/usr/bin/env python3
"""Writes a MIMIC-IV-shaped input of any size from the MIMIC-IV demo's tables, for measuring
`bedside-train cohort --source mimic4` at full size (`make cohort-scale`).

Copy k of the demo gets new ids: every id column is zero-padded to one width per column name and
prefixed with k, so copies never share a subject, admission, stay or note. The demo has no
`chartevents` and no notes: copy 0 of each is made here, seeded, in MIMIC-IV's published column
layouts (`icu/chartevents`: about 3 rows per lab row, half of them vital-sign items bedside reads
and half items it does not, hourly during each ICU stay; `note/discharge`: one summary per
admission with a discharge-diagnosis section, `note/radiology`: three reports per admission).

Each copy is the same text with other ids, so the output is written as one template joined with
the copy's prefix (C speed) and gzipped at level 1, one process per table.

    python3 bench/mimic4_scaled.py --demo ../shared/data/mimic-iv-demo --copies 100 --out DIR
"""
import argparse
import csv
import gzip
import io
import random
import zlib
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

TABLES = {
    "hosp/patients": ["subject_id"],
    "hosp/admissions": ["subject_id", "hadm_id"],
    "hosp/labevents": ["labevent_id", "subject_id", "hadm_id", "specimen_id"],
    "hosp/diagnoses_icd": ["subject_id", "hadm_id"],
    "hosp/procedures_icd": ["subject_id", "hadm_id"],
    "hosp/prescriptions": ["subject_id", "hadm_id", "pharmacy_id"],
    "icu/icustays": ["subject_id", "hadm_id", "stay_id"],
    "icu/outputevents": ["subject_id", "hadm_id", "stay_id"],
    "icu/chartevents": ["subject_id", "hadm_id", "stay_id"],
    "note/discharge": ["note_id", "subject_id", "hadm_id"],
    "note/radiology": ["note_id", "subject_id", "hadm_id"],
}
MARK = "\x00"  # where a copy's prefix goes: before each id

# (itemid, unit, mean, sd) of vital-sign items bedside reads; then items it does not read
VITALS = [
    (220045, "bpm", 88, 15), (220179, "mmHg", 120, 18), (220180, "mmHg", 65, 10),
    (220181, "mmHg", 80, 12), (220210, "insp/min", 19, 4), (220277, "%", 96, 2),
    (223761, "°F", 98.6, 1.0), (220739, "", 3, 1), (223900, "", 4, 1), (223901, "", 5, 1),
    (223835, "%", 40, 10),
]
OTHER = [(220048, "SR (Sinus Rhythm)"), (224650, "None"), (224641, "Yes"), (224168, "Yes"),
         (224054, "Full"), (227969, "Bed"), (224093, "Supine"), (223999, "Dry")]
DISCHARGE = """Name: ___ Unit No: ___
Admission Date: ___ Discharge Date: ___
Service: MEDICINE
Chief Complaint:
{complaint}
History of Present Illness:
___ is a ___ year old with {complaint} who presented to the emergency department.
{history}
Brief Hospital Course:
{course}
Discharge Medications:
1. Aspirin 81 mg PO DAILY
2. Metoprolol Succinate XL 25 mg PO DAILY
Discharge Disposition:
Home
Discharge Diagnosis:
{diagnoses}
Discharge Condition:
Mental Status: Clear and coherent.
Discharge Instructions:
{instructions}
"""
WORDS = ("patient was treated with fluids and antibiotics blood pressure improved renal function "
         "trended down no events overnight tolerated diet ambulating with assistance follow up "
         "with primary care physician in one week labs stable").split()


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def read_demo(demo, table):
    path = demo / f"{table}.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def synthetic_tables(demo, seed):
    """Copy 0 of `icu/chartevents` and `note/`, made from the demo's stays and admissions."""
    rng = random.Random(seed)
    _, labs = read_demo(demo, "hosp/labevents")
    head, stays = read_demo(demo, "icu/icustays")
    col = {c: i for i, c in enumerate(head)}
    fmt = "%Y-%m-%d %H:%M:%S"
    hours = sum(max(1, int(float(s[col["los"]] or 0) * 24)) for s in stays)
    per_hour = max(1, round(3 * len(labs) / hours))  # ≈ 3 chart rows per lab row
    chart = [["subject_id", "hadm_id", "stay_id", "caregiver_id", "charttime", "storetime",
              "itemid", "value", "valuenum", "valueuom", "warning"]]
    for s in stays:
        intime = datetime.strptime(s[col["intime"]], fmt)
        for h in range(max(1, int(float(s[col["los"]] or 0) * 24))):
            t = intime + timedelta(hours=h, minutes=rng.randrange(60))
            for i in range(per_hour):
                if i % 2 == 0:
                    item, unit, mean, sd = VITALS[(h + i // 2) % len(VITALS)]
                    v = round(rng.gauss(mean, sd), 1)
                    value, valuenum = str(v), str(v)
                else:
                    item, value = OTHER[(h + i) % len(OTHER)]
                    unit, valuenum = "", ""
                chart.append([s[col["subject_id"]], s[col["hadm_id"]], s[col["stay_id"]],
                              str(10000 + rng.randrange(9000)), t.strftime(fmt),
                              (t + timedelta(minutes=5)).strftime(fmt), str(item), value,
                              valuenum, unit, "0"])
    head, admissions = read_demo(demo, "hosp/admissions")
    col = {c: i for i, c in enumerate(head)}
    note_head = ["note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime",
                 "storetime", "text"]
    discharge, radiology = [note_head], [note_head]
    for n, a in enumerate(admissions):
        subject, hadm = a[col["subject_id"]], a[col["hadm_id"]]
        admit = datetime.strptime(a[col["admittime"]], fmt)
        body = DISCHARGE.format(
            complaint=text(rng, 4), history=text(rng, 250), course=text(rng, 700),
            diagnoses="\n".join(text(rng, 3) for _ in range(4)), instructions=text(rng, 200))
        discharge.append([f"{n:06d}-DS", subject, hadm, "DS", "1",
                          a[col["dischtime"]], a[col["dischtime"]], body])
        for r in range(3):
            t = admit + timedelta(hours=6 + 12 * r)
            radiology.append([f"{n:06d}-RR-{r}", subject, hadm, "RR", str(r + 1),
                              t.strftime(fmt), t.strftime(fmt),
                              "EXAMINATION: CHEST (PORTABLE AP)\nFINDINGS: " + text(rng, 80)])
    return {"icu/chartevents": chart, "note/discharge": discharge, "note/radiology": radiology}


def template(rows, ids, widths):
    """The table as CSV text with MARK before each id, ids zero-padded to their column's width."""
    head = rows[0]
    at = [head.index(c) for c in ids]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for row in rows[1:]:
        row = list(row)
        for i, c in zip(at, ids):
            if row[i]:
                row[i] = MARK + row[i].zfill(widths[c])
        w.writerow(row)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(head)
    return header.getvalue(), out.getvalue().split(MARK)


def write(job):
    path, header, pieces, rows, copies = job
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        # one gzip member, level 1: the speed of the writer, not of the reader, is at stake here
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        f.write(z.compress(header.encode()))
        for k in range(copies):
            f.write(z.compress(str(k + 1).join(pieces).encode()))
        f.write(z.flush())
    tmp.rename(path)
    return str(path), rows * copies


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", type=Path, required=True)
    p.add_argument("--copies", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    tables = {t: read_demo(args.demo, t) for t in TABLES if (args.demo / f"{t}.csv.gz").exists()}
    tables = {t: [h] + rows for t, (h, rows) in tables.items()}
    tables.update(synthetic_tables(args.demo, args.seed))
    widths = {}
    for t, rows in tables.items():
        for c in TABLES[t]:
            i = rows[0].index(c)
            widths[c] = max(widths.get(c, 0), max((len(r[i]) for r in rows[1:]), default=0))
    jobs = []
    for t, rows in tables.items():
        header, pieces = template(rows, TABLES[t], widths)
        jobs.append((args.out / f"{t}.csv.gz", header, pieces, len(rows) - 1, args.copies))
    # the biggest first, so the two processes end together
    jobs.sort(key=lambda j: -sum(len(p) for p in j[2]))
    with ProcessPoolExecutor(args.jobs) as pool:
        for path, rows in pool.map(write, jobs):
            print(f"{path}: {rows} rows", flush=True)


if __name__ == "__main__":
    main()
