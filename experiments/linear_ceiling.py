"""How far linear models get on the splits bedside is measured on, with richer inputs than
experiments/baselines.py gives its logistic regression: runs that ask whether the last gaps between
bedside and the baselines (RESULTS.md) are inputs a linear model lacks.

- synthetic phenotypes (the demo model's 1,200 training and 300 test admissions): word unigrams
  against unigrams + bigrams, at three C;
- PhysioNet 2012 mortality (set-a -> set-b): summaries + statics with median imputation and
  missingness indicators, then with each feature also cut into quantile bins (one-hot), a
  piecewise-constant shape per feature (a U-shaped risk, as the trees can read), beside the trees.

Every C is scored on the test split itself (nothing is chosen on validation), so the best row of
each table flatters the linear model: an upper bound, which is what the question needs.

Reads what `make baselines` writes (target/results/baselines) and `make mortality`'s split.json.
Run:  target/pybase/bin/python -W ignore experiments/linear_ceiling.py
"""
import json
import pathlib
import sys

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import KBinsDiscretizer, StandardScaler

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import baselines as B  # noqa: E402

RESULTS = ROOT / "target" / "results"


def synthetic():
    train = B.read(RESULTS / "baselines" / "train.jsonl")
    test = B.read(RESULTS / "baselines" / "test.jsonl")
    names = json.loads((ROOT / "models" / "demo" / "manifest.json").read_text())["labels"]
    y_train, y_test = B.labels(train, names), B.labels(test, names)
    channels = sorted({o["channel"] for r in train for o in r.get("observations", [])})
    s_train, s_test = B.summaries(train, channels, 48), B.summaries(test, channels, 48)
    scaler = StandardScaler().fit(np.nan_to_num(s_train))
    a, b = csr_matrix(scaler.transform(np.nan_to_num(s_train))), csr_matrix(scaler.transform(np.nan_to_num(s_test)))
    print(f"synthetic phenotypes: {len(train)} training, {len(test)} test admissions")
    print("| words | C | inputs | micro-F1 | macro AUROC |\n|---|---|---|---|---|")
    for ngrams in [(1, 1), (1, 2)]:
        words = CountVectorizer(binary=True, min_df=2, ngram_range=ngrams).fit(B.notes(train))
        x_train = hstack([a, words.transform(B.notes(train))]).tocsr()
        x_test = hstack([b, words.transform(B.notes(test))]).tocsr()
        for c in [0.3, 1.0, 3.0]:
            p = B.fit_predict(lambda: LogisticRegression(C=c, max_iter=2000), x_train, y_train, x_test)
            r = B.report(y_test, p)
            print(f"| {'unigrams' if ngrams == (1, 1) else 'uni + bigrams'} | {c} | {x_train.shape[1]} | {r['micro_f1']:.4f} | {r['macro_auroc']:.4f} |")


def mortality():
    records = {r["id"]: r for r in B.read(RESULTS / "baselines" / "physionet2012.jsonl")}
    split = json.loads((RESULTS / "mortality" / "split.json").read_text())
    train = [records[i] for i in split["train"] + split.get("validation", [])]
    test = [records[i] for i in split["test"]]
    died = lambda rs: np.array([int(bool(((r.get("labels") or {}).get("outcomes") or {}).get("in_hospital_death"))) for r in rs])
    y_train, y_test = died(train), died(test)
    channels = sorted({o["channel"] for r in train for o in r.get("observations", [])})
    t_train = np.hstack([B.summaries(train, channels, 48), B.statics(train)])
    t_test = np.hstack([B.summaries(test, channels, 48), B.statics(test)])
    median = np.nan_to_num(np.nanmedian(t_train, axis=0))
    fill = lambda x: (np.where(np.isnan(x), median, x), np.isnan(x).astype(float))
    (x_train, m_train), (x_test, m_test) = fill(t_train), fill(t_test)
    scaler = StandardScaler().fit(x_train)
    z_train, z_test = scaler.transform(x_train), scaler.transform(x_test)
    auroc = lambda p: roc_auc_score(y_test, p)
    print(f"\nPhysioNet 2012 mortality: {len(train)} set-a stays -> {len(test)} set-b stays, {t_train.shape[1]} summaries and statics")
    print("| model | C | AUROC |\n|---|---|---|")
    for c in [0.01, 0.03, 0.1]:
        lr = LogisticRegression(C=c, max_iter=3000).fit(np.hstack([z_train, m_train]), y_train)
        print(f"| linear, imputed + missingness | {c} | {auroc(lr.predict_proba(np.hstack([z_test, m_test]))[:, 1]):.4f} |")
    for bins in [5, 10]:
        cut = KBinsDiscretizer(n_bins=bins, encode="onehot", strategy="quantile").fit(x_train)
        q_train = hstack([cut.transform(x_train), csr_matrix(z_train), csr_matrix(m_train)]).tocsr()
        q_test = hstack([cut.transform(x_test), csr_matrix(z_test), csr_matrix(m_test)]).tocsr()
        for c in [0.01, 0.03]:
            lr = LogisticRegression(C=c, max_iter=3000).fit(q_train, y_train)
            print(f"| + {bins} quantile bins per feature | {c} | {auroc(lr.predict_proba(q_test)[:, 1]):.4f} |")
    trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(t_train, y_train)
    print(f"| gradient-boosted trees (experiments/baselines.py) | | {auroc(trees.predict_proba(t_test)[:, 1]):.4f} |")


if __name__ == "__main__":
    synthetic()
    mortality()
