"""LEADER's three teachers side by side over the patient splits: reads the `report.json` of
`medrec` runs named `MODE-SEED` (MODE: none, online, offline) in a directory and prints a
Markdown table — per split the test Jaccard with its bootstrap CI, then the mean and the
standard deviation over splits — for the student under each teacher and for the teachers
themselves."""
import json
import statistics
import sys
from pathlib import Path

LABELS = {
    "none": "student, no teacher",
    "online": "student ← bedside-LM teacher",
    "offline": "student ← LLM-feature teacher",
}


def main(directory: Path) -> None:
    runs = {}
    for report in sorted(directory.glob("*/report.json")):
        mode, seed = report.parent.name.rsplit("-", 1)
        runs.setdefault(mode, {})[int(seed)] = json.loads(report.read_text())
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    rows = []
    for mode in ["none", "online", "offline"]:
        by_seed = runs.get(mode, {})
        for who in ["student", "teacher"]:
            if who == "teacher" and mode == "none":
                continue
            name = LABELS[mode] if who == "student" else {
                "online": "bedside-LM teacher (1.2 M-parameter T5)",
                "offline": "LLM-feature teacher (Gemma 3 270M + logistic regression)",
            }[mode]
            cells, jaccards, praucs = [], [], []
            for s in seeds:
                r = by_seed.get(s)
                m = r and r.get(who) and r[who]["overall"]
                if not m:
                    cells.append("–")
                    continue
                lo, hi = m["jaccard_ci95"]
                cells.append(f"{m['jaccard']:.3f} ({lo:.3f}–{hi:.3f})")
                jaccards.append(m["jaccard"])
                praucs.append(m["prauc"])
            mean = lambda v: f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else "–"
            rows.append(f"| {name} | " + " | ".join(cells) + f" | {mean(jaccards)} | {mean(praucs)} |")
    head = "| model | " + " | ".join(f"split {s}" for s in seeds) + " | Jaccard mean ± SD | PRAUC mean ± SD |"
    print(head)
    print("|" + "---|" * (len(seeds) + 3))
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
