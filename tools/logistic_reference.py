"""Reference fixture for stage 0 of `distill` (training/src/pipelines/distill/wide_fit.rs): the coefficients that
scikit-learn's LogisticRegression(C) (lbfgs, L2 on the weights, the intercept unpenalised) fits,
one model per label, on a small fixed multi-label problem. bedside solves the same objective with
burn's L-BFGS and must land on the same weights.

Writes tests/fixtures/logistic/reference.json:
  x [n, d], y [n, labels] (0/1), and for each C in `cs`: coef [labels, d], intercept [labels],
  probabilities [n, labels] (predict_proba of the positive class).

Run:  target/pybase/bin/python tools/logistic_reference.py   (numpy + scikit-learn)
"""
import json
import pathlib

import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(2012)
n, d, labels = 80, 6, 3
# a few binary "word" columns and a few continuous "summary" columns, as the wide head sees
x = np.hstack([(rng.random((n, 3)) < 0.3).astype(float), rng.normal(size=(n, 3))])
true = rng.normal(size=(d, labels)) * 1.5
y = (rng.random((n, labels)) < 1 / (1 + np.exp(-(x @ true - 0.5)))).astype(int)

out = {"x": x.tolist(), "y": y.tolist(), "fits": []}
for c in (0.1, 1.0, 10.0):
    coef, intercept, probabilities = [], [], []
    for j in range(labels):
        model = LogisticRegression(C=c, tol=1e-10, max_iter=10000).fit(x, y[:, j])
        coef.append(model.coef_[0].tolist())
        intercept.append(float(model.intercept_[0]))
        probabilities.append(model.predict_proba(x)[:, 1].tolist())
    out["fits"].append({"c": c, "coef": coef, "intercept": intercept,
                        "probabilities": np.array(probabilities).T.tolist()})

path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "logistic" / "reference.json"
path.write_text(json.dumps(out) + "\n", encoding="utf-8")
print(f"wrote {path}")
