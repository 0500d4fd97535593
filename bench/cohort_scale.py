#!/usr/bin/env python3
"""`make cohort-scale`: the release `bedside-train cohort --source mimic4` on MIMIC-IV-shaped
inputs of 1×, 100× and 2,000× the demo (written by bench/mimic4_scaled.py under
target/cohort-scale/, kept for the next run): wall time, input rows per second and peak resident
memory (GNU time's maximum RSS), to target/cohort-scale/results.json and as a Markdown table.

    python3 bench/cohort_scale.py --demo ../shared/data/mimic-iv-demo --atc ATC [--copies 1 100 2000]
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "target" / "cohort-scale"
BINARY = ROOT / "target" / "release" / "bedside-train"


def generate(demo, copies):
    """The input of `copies` copies and its row count (every table), written once."""
    out = OUT / f"x{copies}"
    log = OUT / f"x{copies}.log"
    if not (log.exists() and "patients.csv.gz" in log.read_text()):
        with open(log, "w") as f:
            subprocess.run([sys.executable, HERE / "mimic4_scaled.py", "--demo", demo,
                            "--copies", str(copies), "--out", out], stdout=f, check=True)
    rows = sum(int(m) for m in re.findall(r": (\d+) rows", log.read_text()))
    return out, rows


def measure(input_dir, atc, rows):
    records = OUT / f"{input_dir.name}.jsonl"
    start = time.monotonic()
    run = subprocess.run(["/usr/bin/time", "-v", BINARY, "cohort", "--source", "mimic4",
                          "--input", input_dir, "--atc", atc, "--out", records],
                         capture_output=True, text=True)
    seconds = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"{input_dir}: {run.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    admissions = int(re.search(r"wrote (\d+) admissions", run.stderr).group(1))
    observations = int(re.search(r"(\d+) observations", run.stderr).group(1))
    size = records.stat().st_size
    records.unlink()  # 10 GB at 2,000×: measured, not kept
    records.with_suffix(".summary.json").unlink(missing_ok=True)
    return {"input_rows": rows, "admissions": admissions, "observations": observations,
            "seconds": round(seconds, 1), "rows_per_second": round(rows / seconds),
            "peak_mb": round(peak_kb / 1024), "output_mb": round(size / 2**20)}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", type=Path, required=True)
    p.add_argument("--atc", type=Path, required=True)
    p.add_argument("--copies", type=int, nargs="+", default=[1, 100, 2000])
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for copies in args.copies:
        input_dir, rows = generate(args.demo, copies)
        results[copies] = measure(input_dir, args.atc, rows)
        print(f"{copies}×: {results[copies]}", flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| size | input rows | admissions | observations | time | rows/s | peak memory | output |")
    print("|---|---|---|---|---|---|---|---|")
    for copies, r in results.items():
        print(f"| {copies}× | {r['input_rows']:,} | {r['admissions']:,} | {r['observations']:,} | "
              f"{r['seconds']} s | {r['rows_per_second']:,} | {r['peak_mb']:,} MB | "
              f"{r['output_mb']:,} MB |")


if __name__ == "__main__":
    main()
