"""Which calibration map for the phenotype head: cross-validated on the validation logits a
`distill` run was calibrated on (`<run>/validation-logits.json`), per group (records with notes,
records without). It chose the map `training/src/measure/calibration.rs` fits: Platt scaling with a shift
per label under a Gaussian prior of weight LAMBDA (RESULTS.md, "Real patients").

    target/pybase/bin/python experiments/calibration_cv.py target/demo/clinical-run/validation-logits.json

Each fold's map is fitted on the other folds' rows and scores its own rows; the table gives the
ECE (10 equal-width bins, eval's definition) and the mean binary cross-entropy of the pooled
out-of-fold probabilities. Folds are contiguous runs of rows (a patient's admissions are adjacent).
"""

import json
import sys

import numpy as np
from scipy.optimize import minimize

from baselines import ece

LAMBDAS = [0.1, 0.3, 1.0, 2.0, 3.0, 10.0, 30.0]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def bce(p, t):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def fit(kind, z, y, lam=None):
    """A map of logits z [rows, labels] fitted to y by maximum likelihood."""
    labels = z.shape[1]
    if kind == "none":
        return lambda z: sigmoid(z)
    if kind == "temperature":
        r = minimize(lambda th: bce(sigmoid(z / np.exp(th[0])), y), [0.0])
        t = np.exp(r.x[0])
        return lambda z: sigmoid(z / t)
    if kind == "platt":
        r = minimize(lambda th: bce(sigmoid(th[0] * z + th[1]), y), [1.0, 0.0])
        a, b = r.x
        return lambda z: sigmoid(a * z + b)
    # Platt scaling and a shift per label, penalised λ·Σc² against the summed log-loss
    def objective(th):
        a, b, c = th[0], th[1], th[2:]
        return bce(sigmoid(a * z + b + c), y) + lam * np.sum(c**2) / z.size

    r = minimize(objective, np.r_[1.0, 0.0, np.zeros(labels)])
    a, b, c = r.x[0], r.x[1], r.x[2:]
    return lambda z: sigmoid(a * z + b + c)


def cross_validated(kind, z, y, folds, lam=None):
    n = len(z)
    p = np.zeros_like(z)
    for held in np.array_split(np.arange(n), folds):
        rest = np.setdiff1d(np.arange(n), held)
        p[held] = fit(kind, z[rest], y[rest], lam)(z[held])
    return ece(y, p), bce(p, y)


def main(path):
    d = json.load(open(path))
    labels = d["labels"]
    z = np.array(d["logits"], dtype=float).reshape(-1, labels)
    y = np.array(d["truth"], dtype=float).reshape(-1, labels)
    notes = np.array(d["has_notes"], dtype=bool)
    for name, rows in [("with notes", notes), ("without notes", ~notes)]:
        zg, yg = z[rows], y[rows]
        if len(zg) < 5:
            continue
        print(f"\n{name}: {len(zg)} admissions, prevalence {yg.mean():.3f}")
        print("| map | 5-fold ECE | 5-fold BCE | leave-one-out ECE | leave-one-out BCE |")
        print("|---|---|---|---|---|")
        variants = [("none", None), ("temperature", None), ("platt", None)]
        variants += [("platt + label shifts", lam) for lam in LAMBDAS]
        for kind, lam in variants:
            five = cross_validated(kind, zg, yg, 5, lam)
            loo = cross_validated(kind, zg, yg, len(zg), lam) if len(zg) <= 60 else (np.nan, np.nan)
            label = kind if lam is None else f"{kind}, λ = {lam}"
            print(f"| {label} | {five[0]:.4f} | {five[1]:.4f} | {loo[0]:.4f} | {loo[1]:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1])
