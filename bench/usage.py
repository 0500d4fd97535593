#!/usr/bin/env python3
"""Time and peak memory of each step of the demo pipeline (`make usage`): the stand-alone
commands under GNU time (`/usr/bin/time -v`: wall time and maximum resident set), the three
distillation stages and LEADER's teacher and student from their own `usage` records (time and
peak memory per step, one process). Epochs are cut to 1 per stage (LEADER: 1 teacher, 2 student
epochs; mortality: 1) so that the whole run takes minutes: the per-epoch figures scale to the
full runs of RESULTS.md. Writes OUT/usage.json and OUT/usage.md.

python3 bench/usage.py --train target/debug/bedside-train --shared ../shared --out target/results/usage
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def timed(label, args, out):
    """Runs `args` under GNU time; returns a row with wall seconds and peak memory in MiB."""
    log = out / f"{label.replace(' ', '-')}.time"
    run = subprocess.run(["/usr/bin/time", "-v", "-o", str(log), *map(str, args)], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{label} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return {"step": label, "seconds": round(seconds, 1), "peak_rss_mib": round(rss)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--shared", required=True)
    parser.add_argument("--out", required=True)
    a = parser.parse_args()
    train, shared, out = pathlib.Path(a.train).resolve(), pathlib.Path(a.shared).resolve(), pathlib.Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = []

    rows.append(timed("cohort (synthetic, 400)", [train, "cohort", "--source", "synthetic", "--n", 400, "--seed", 7, "--out", out / "cohort.jsonl"], out))
    rows.append(timed("teach (knowledge teacher, 400)", [train, "teach", "--cohort", out / "cohort.jsonl", "--teacher", "knowledge", "--out", out / "rationales.jsonl"], out))
    rows.append(timed("tokenizer (2,000 tokens)", [train, "tokenizer", "--cohort", out / "cohort.jsonl", "--rationales", out / "rationales.jsonl", "--vocab-size", 2000, "--out", out / "tokenizer.json"], out))

    config = (ROOT / "training/demo-run.toml").read_text()
    config = re.sub(r"^epochs = \[.*\]$", "epochs = [1, 1, 1]", config, flags=re.M)
    (out / "run.toml").write_text(config)
    distill = timed("distill (whole command)", [train, "distill", "--config", out / "run.toml", "--out", out / "run"], out)
    stages = json.loads((out / "run/usage.json").read_text())
    rows += [{"step": f"distill {s['step']}, per epoch", "seconds": round(s["seconds"] / max(s["epochs"], 1), 1), "peak_rss_mib": round(s["peak_rss_mib"])} for s in stages]
    rows.append(distill)
    rows.append(timed("export (f16)", [train, "export", "--run", out / "run", "--out", out / "bundle", "--dtype", "f16"], out))
    rows.append(timed("eval (100 admissions)", [train, "eval", "--bundle", out / "bundle", "--synthetic", 100, "--out", out / "eval"], out))

    mimic4 = out / "mimic4.jsonl"
    rows.append(timed("cohort (MIMIC-IV demo)", [train, "cohort", "--source", "mimic4", "--input", shared / "data/mimic-iv-demo",
                                                 "--atc", shared / "data/medrec/gsn_atc_ndc_mapping.csv.gz", "--out", mimic4], out))
    medrec = (ROOT / "training/medrec-demo.toml").read_text()
    medrec = medrec.replace('"../target/demo/mimic4.jsonl"', json.dumps(str(mimic4)))
    medrec = medrec.replace('"../target/demo/synthetic.jsonl"', json.dumps(str(out / "cohort.jsonl")))
    medrec = medrec.replace('"../../shared/', json.dumps(str(shared))[:-1] + "/")
    medrec = re.sub(r"^epochs = 25$", "epochs = 2", medrec, flags=re.M)
    medrec = re.sub(r"^epochs = 6$", "epochs = 1", medrec, flags=re.M)
    (out / "medrec.toml").write_text(medrec)
    whole = timed("medrec (whole command)", [train, "medrec", "--config", out / "medrec.toml", "--out", out / "medrec"], out)
    report = json.loads((out / "medrec/report.json").read_text())
    rows += [{"step": f"medrec {s['step']}, per epoch", "seconds": round(s["seconds"] / max(s["epochs"], 1), 1), "peak_rss_mib": round(s["peak_rss_mib"])} for s in report["usage"]]
    rows.append(whole)
    rows.append(timed("mortality (1 epoch, 100 resamples)", [train, "mortality", "--epochs", 1, "--resamples", 100, "--input", shared / "data/physionet2012", "--out", out / "mortality"], out))

    (out / "usage.json").write_text(json.dumps(rows, indent=2))
    table = "| step | wall time (s) | peak memory (MiB) |\n|---|---|---|\n" + "".join(f"| {r['step']} | {r['seconds']} | {r['peak_rss_mib']} |\n" for r in rows)
    (out / "usage.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
