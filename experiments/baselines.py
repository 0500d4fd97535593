#!/usr/bin/env python3
"""The baselines a user would try first, on the admissions bedside trains and is evaluated on.

scikit-learn, one-vs-rest over the 25 phenotype groups:
- logistic regression on a bag of words of the notes plus per-channel summaries (min, max, mean,
  last, count of the valid values in the first `--hours` hours);
- histogram gradient-boosted trees on the same summaries plus the static descriptors (age, sex).

Reads PatientRecord JSONL (`bedside-train cohort`), trains on --train, tests on --test (or on
the ids of a `split.json` that `bedside-train train` / `mortality` wrote, taken from --cohort),
and writes as JSON, with 95% bootstrap intervals (200 resamples of test admissions):
- phenotypes: micro-F1 at 0.5, macro AUROC, calibration error (ECE, 10 bins), Brier score;
- mortality (--task mortality, in-hospital death): AUROC, AUPRC, the 2012 challenge's Event 1
  score min(Se, +P) and the Hosmer-Lemeshow H statistic (bedside's mortality report computes the
  same, `training/src/pipelines/mortality/mod.rs`).
Usage:
  baselines.py --train train.jsonl --test test.jsonl --split-name NAME --out baselines.json
  baselines.py --cohort mimic4.jsonl --split run/split.json --split-name NAME --out baselines.json
    (a split.json of `bedside-train split`, with validation ids: the baselines train on those too)
  baselines.py --task mortality --cohort physionet.jsonl --split mortality/split.json --split-name NAME --out m.json
--split-name says which split of the protocol is scored (RESULTS.md, "How the figures are made");
it is printed first and written into the JSON.
"""

import argparse
import json
import math
import pathlib

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.preprocessing import StandardScaler
from scipy.sparse import csr_matrix, hstack

STATS = ("min", "max", "mean", "last", "count")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def read(path):
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def summaries(records, channels, hours):
    """[n, channels × 5]: NaN where a channel has no value (count 0)."""
    index = {c: i for i, c in enumerate(channels)}
    out = np.full((len(records), len(channels) * len(STATS)), np.nan)
    for r, record in enumerate(records):
        seen = {}
        for o in record.get("observations", []):
            c, v, h = o.get("channel"), o.get("value"), o.get("hours")
            if c in index and v is not None and h is not None and 0 <= h < hours and math.isfinite(v):
                seen.setdefault(c, []).append((h, v))
        for c, values in seen.items():
            values.sort()
            vs = np.array([v for _, v in values])
            base = index[c] * len(STATS)
            out[r, base:base + 5] = [vs.min(), vs.max(), vs.mean(), vs[-1], len(vs)]
        for i in range(len(channels)):
            if math.isnan(out[r, i * len(STATS) + 4]):
                out[r, i * len(STATS) + 4] = 0
    return out


def statics(records):
    sex = {"female": 0.0, "male": 1.0}
    return np.array([[r.get("demographics", {}).get("age", np.nan), sex.get(r.get("demographics", {}).get("sex"), np.nan)] for r in records])


def notes(records):
    return [" ".join(n.get("text", "") for n in r.get("notes", [])) for r in records]


def labels(records, names):
    return np.array([[name in (r.get("labels") or {}).get("phenotypes", []) for name in names] for r in records], dtype=int)


def macro_auroc(y, p):
    scores = [roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return float(np.mean(scores)) if scores else float("nan")


def ece(y, p, bins=10):
    """Expected calibration error over every (admission, label) pair, equal-width bins (as
    bedside's `metrics::expected_calibration_error`)."""
    y, p = y.ravel(), p.ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += abs(p[inside].mean() - y[inside].mean()) * inside.sum() / len(p)
    return float(total)


def report(y, p, seed=0):
    micro = float(f1_score(y, p >= 0.5, average="micro", zero_division=0))
    auroc = macro_auroc(y, p)
    rng = np.random.default_rng(seed)
    f1s, aurocs = [], []
    for _ in range(200):
        rows = rng.integers(0, len(y), len(y))
        f1s.append(f1_score(y[rows], p[rows] >= 0.5, average="micro", zero_division=0))
        aurocs.append(macro_auroc(y[rows], p[rows]))
    ci = lambda v: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
    return {"micro_f1": micro, "micro_f1_ci95": ci(f1s), "macro_auroc": auroc, "macro_auroc_ci95": ci(aurocs),
            "ece": ece(y, p), "brier": float(np.mean((p - y) ** 2))}


def event1(y, p, rate):
    """min(sensitivity, positive predictive value) when the `rate` share of stays with the highest
    risk is called positive (`rate`: the training death rate; no test label picks the threshold)."""
    called = p >= np.quantile(p, 1 - rate)
    tp = float((called & (y == 1)).sum())
    return min(tp / max(y.sum(), 1), tp / max(called.sum(), 1))


def hosmer_lemeshow(y, p, groups=10):
    """H: sum over deciles of predicted risk of (O - E)^2 / (E (1 - E / n))."""
    order = np.argsort(p, kind="stable")
    h = 0.0
    for part in np.array_split(order, groups):
        n, observed, expected = len(part), y[part].sum(), p[part].sum()
        if n and 0 < expected < n:
            h += (observed - expected) ** 2 / (expected * (1 - expected / n))
    return float(h)


def mortality_report(y, p, rate, seed=0):
    from sklearn.metrics import average_precision_score
    rng = np.random.default_rng(seed)
    aurocs, auprcs = [], []
    for _ in range(200):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            aurocs.append(roc_auc_score(y[rows], p[rows]))
            auprcs.append(average_precision_score(y[rows], p[rows]))
    ci = lambda v: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
    return {"auroc": float(roc_auc_score(y, p)), "auroc_ci95": ci(aurocs),
            "auprc": float(average_precision_score(y, p)), "auprc_ci95": ci(auprcs),
            "event1": event1(y, p, rate), "hosmer_lemeshow_h": hosmer_lemeshow(y, p),
            "brier": float(np.mean((p - y) ** 2))}


def fit_predict(make, x_train, y_train, x_test):
    """One classifier per label; a label with one class in training predicts its rate."""
    p = np.zeros((x_test.shape[0], y_train.shape[1]))
    for j in range(y_train.shape[1]):
        if y_train[:, j].min() == y_train[:, j].max():
            p[:, j] = y_train[0, j]
            continue
        p[:, j] = make().fit(x_train, y_train[:, j]).predict_proba(x_test)[:, 1]
    return p


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train")
    parser.add_argument("--test")
    parser.add_argument("--cohort")
    parser.add_argument("--split")
    parser.add_argument("--task", choices=["phenotypes", "mortality"], default="phenotypes")
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--out", required=True)
    parser.add_argument("--split-name", required=True,
                        help="which split of the protocol the test side is (RESULTS.md, 'How the figures are made')")
    args = parser.parse_args()
    print(f"baselines: scoring {args.split_name}", flush=True)
    if args.split:
        records = {r["id"]: r for r in read(args.cohort)}
        with open(args.split, encoding="utf-8") as f:
            split = json.load(f)
        # `bedside-train split` also lists validation patients: the baselines choose nothing on
        # them (fixed settings), so they train on them too
        train = [records[i] for i in split["train"] + split.get("validation", [])]
        test = [records[i] for i in split["test"]]
    else:
        train, test = read(args.train), read(args.test)
    if args.task == "mortality":
        died = lambda rs: np.array([int(bool(((r.get("labels") or {}).get("outcomes") or {}).get("in_hospital_death"))) for r in rs])
        names = ["in_hospital_death"]
        y_train, y_test = died(train)[:, None], died(test)[:, None]
    else:
        # bedside's 25 groups (its metrics count every one, present in the split or not)
        with open(ROOT / "models" / "demo" / "manifest.json", encoding="utf-8") as f:
            names = json.load(f)["labels"]
    channels = sorted({o["channel"] for r in train for o in r.get("observations", [])})
    if args.task == "phenotypes":
        y_train, y_test = labels(train, names), labels(test, names)

    s_train, s_test = summaries(train, channels, args.hours), summaries(test, channels, args.hours)
    scaler = StandardScaler().fit(np.nan_to_num(s_train))
    lr_train, lr_test = csr_matrix(scaler.transform(np.nan_to_num(s_train))), csr_matrix(scaler.transform(np.nan_to_num(s_test)))
    if any(t.strip() for t in notes(train)):  # cohorts without notes (MIMIC-IV demo, PhysioNet): summaries only
        words = CountVectorizer(binary=True, min_df=2).fit(notes(train))
        lr_train = hstack([lr_train, words.transform(notes(train))]).tocsr()
        lr_test = hstack([lr_test, words.transform(notes(test))]).tocsr()
    p_lr = fit_predict(lambda: LogisticRegression(C=1.0, max_iter=2000), lr_train, y_train, lr_test)

    t_train, t_test = np.hstack([s_train, statics(train)]), np.hstack([s_test, statics(test)])
    p_gb = fit_predict(lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0), t_train, y_train, t_test)

    out = {
        "split": args.split_name,
        "train_admissions": len(train),
        "test_admissions": len(test),
        "labels": len(names),
    }
    if args.task == "mortality":
        rate = float(y_train.mean())
        out["logistic_regression"] = mortality_report(y_test[:, 0], p_lr[:, 0], rate)
        out["gradient_boosted_trees"] = mortality_report(y_test[:, 0], p_gb[:, 0], rate)
    else:
        out["logistic_regression"] = report(y_test, p_lr)
        out["gradient_boosted_trees"] = report(y_test, p_gb)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
