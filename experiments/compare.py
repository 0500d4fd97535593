#!/usr/bin/env python3
"""bedside beside the baselines on the MIMIC-IV demo's five patient splits (`make baselines`):
reads, for each seed S, `seed-S/manifest.json` (bedside-train train), `seed-S-wide/manifest.json`
(the same with the wide half, `--wide true`) and `seed-S/baselines.json`
(experiments/baselines.py on seed-S/split.json, the same admissions), and prints a markdown table of
macro AUROC and micro-F1 at 0.5 per split, with the mean and SD over splits.

Run: python3 experiments/compare.py target/results/baselines/mimic4   (standard library only)
"""
import json
import pathlib
import statistics
import sys


def main():
    base = pathlib.Path(sys.argv[1])
    seeds = sorted(int(p.name.split("-")[1]) for p in base.glob("seed-*") if p.name.count("-") == 1)
    columns = [("bedside", lambda s: read(base / f"seed-{s}/manifest.json")["training"]["test"]),
               ("bedside + wide half", lambda s: read(base / f"seed-{s}-wide/manifest.json")["training"]["test"]),
               ("logistic regression", lambda s: read(base / f"seed-{s}/baselines.json")["logistic_regression"]),
               ("gradient-boosted trees", lambda s: read(base / f"seed-{s}/baselines.json")["gradient_boosted_trees"])]
    print("| split | test admissions | " + " | ".join(f"{name}: macro AUROC / micro-F1" for name, _ in columns) + " |")
    print("|---" * (2 + len(columns)) + "|")
    values = {name: [] for name, _ in columns}
    for s in seeds:
        row = []
        for name, get in columns:
            m = get(s)
            values[name].append((m["macro_auroc"], m["micro_f1"]))
            row.append(f"{m['macro_auroc']:.3f} / {m['micro_f1']:.3f}")
        n = read(base / f"seed-{s}/baselines.json")["test_admissions"]
        print(f"| {s} | {n} | " + " | ".join(row) + " |")
    summary = []
    for name, _ in columns:
        a = [v[0] for v in values[name]]
        f = [v[1] for v in values[name]]
        summary.append(f"**{statistics.mean(a):.3f} ± {statistics.stdev(a):.3f}** / {statistics.mean(f):.3f} ± {statistics.stdev(f):.3f}")
    print("| mean ± SD | | " + " | ".join(summary) + " |")


def read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


if __name__ == "__main__":
    main()
