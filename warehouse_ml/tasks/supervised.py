"""Supervised learning kernels (churn, conversion, click-through, any label): pure NumPy in and out.

``fit_supervised`` takes the numeric matrix a ``Featurizer`` made, the label, and the algorithm name, and
returns a fitted scikit-learn estimator with hold-out metrics, cross-validated candidates (for ``auto``),
the hold-out rows that global importances are computed from on first use, and baselines for per-row
explanations. Nothing here knows about DuckDB, so the same kernels run on another engine.
"""
from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid
from sklearn import metrics as skm
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils import assert_all_finite
from sklearn.utils.extmath import _approximate_mode

from ..errors import InvalidArgument, TrainingFailed
from ..progress import steps
from .compiled import fast_scorer
from .estimators import SEED, make_estimator

# random forests stay available by name; auto leaves them out: gradient boosting matched or beat them, and every
# extra candidate adds cross-validation time and the chance of a lucky winner
AUTO_CANDIDATES = ("logistic", "gbm")
CV_SAMPLE = 10_000
# auto adds 'mlp' to AUTO_CANDIDATES only from this many training rows (where a network can beat the trees and
# is worth its training time), and only when TensorFlow is installed
MLP_AUTO_MIN_ROWS = 50_000
HOLDOUT_KEEP = 5_000  # hold-out rows whose scores are stored with the model for the report's curves
# A forest's size grows with its training rows (leaves of min_samples_leaf rows): a default forest on 443k rows
# stored 654 MB. By default its trees stop at about this many leaves; params := {min_samples_leaf: ...} overrides.
FOREST_MAX_LEAVES = 2_000
LARGE_MODEL_BYTES = 100 * 2**20  # a stored model above this gets a note naming the parameter that shrinks it
SHRINK_PARAMS = {"random_forest": "{min_samples_leaf: 50} or {max_depth: 12} or {n_estimators: 50}",
                 "decision_tree": "{max_depth: 6}", "gbm": "{max_iter: 100} or {max_leaf_nodes: 15}"}


@dataclass
class FitResult:
    estimator: object
    algorithm: str
    task: str
    classes: list | None
    metrics: dict[str, float]
    candidates: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    importance_sample: dict = field(default_factory=dict)  # hold-out rows for ml_explain's importances
    baseline: list[float] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    holdout: dict = field(default_factory=dict)  # hold-out scores and labels (a sample) for curves drawn later
    holdout_rows: np.ndarray | None = None  # positions of the hold-out rows in X, in the order they were scored
    holdout_scores: np.ndarray | None = None  # ``score`` of each hold-out row: scored once, used by every summary
    beside: object = None  # what fit_supervised's ``beside`` returned


def infer_task(y: np.ndarray, is_text: bool) -> str:
    """Text, boolean or few-valued integer labels are classes; other numbers are a quantity to regress."""
    if is_text or y.dtype == bool:
        return "classification"
    finite = y[~np.isnan(y)] if y.dtype.kind == "f" else y
    distinct = pd.unique(finite)
    integral = np.all(np.mod(distinct, 1) == 0)
    return "classification" if integral and len(distinct) <= 20 else "regression"


def fit_supervised(X: np.ndarray, y: np.ndarray, *, task: str, algorithm: str, categorical: np.ndarray,
                   test_size: float = 0.2, params: dict | None = None, features: list[dict] | None = None,
                   progress=None, groups: np.ndarray | None = None, beside=None,
                   split: tuple[np.ndarray, np.ndarray] | None = None) -> FitResult:
    """Split, choose (for auto), fit, evaluate and explain. ``y`` holds class labels or numbers, no NULLs.
    Rows with the same ``groups`` id (copies, one user's rows) stay on one side of the hold-out split.
    ``split``, when given, is the (train, hold-out) row positions ``holdout_positions`` drew for these arguments
    (ml_train draws them while the features are made).

    ``beside(holdout_rows)``, when given, runs on a second thread while the estimator fits (work that needs the
    data and the split but not the model: few fits keep both cores busy throughout); its result is
    ``FitResult.beside``."""
    params = dict(params or {})
    progress = progress or (lambda msg: None)
    notes: list[str] = []
    n = len(y)
    if n < 10:
        raise TrainingFailed(f"only {n} labelled rows; at least 10 are needed to train and evaluate a model")
    if not 0.0 <= test_size < 1.0:
        raise InvalidArgument("test_size", f"must be in [0, 1), got {test_size}", "Use e.g. test_size := 0.2")
    classes = None
    class_weight = params.pop("class_weight", "auto")
    if task == "classification":
        classes, _, counts = class_counts(y)
        if len(classes) < 2:
            raise TrainingFailed(f"the label has a single class ({classes[0]!r}); a classifier needs at least two. "
                                 "Check the label's definition or the rows selected")
        if counts.min() < 2:
            raise TrainingFailed(f"class {classes[counts.argmin()]!r} has only {counts.min()} row; each class needs at least 2")
        minority = counts.min() / n
        if class_weight == "auto" and algorithm == "auto" and minority < 0.2:
            # auto ranks its candidates by ROC AUC, which balanced weights lowered (by 0.004-0.01 on Caravan, 6%
            # positive), and the reference models it must match are unweighted; their probabilities stay rates
            class_weight = None
            notes.append(f"imbalanced classes (smallest {minority:.1%}): auto fits without class weights (they "
                         "lowered ROC AUC); pass params := {class_weight: 'balanced'} to favour the rare class's "
                         "recall at the 0.5 threshold")
        elif class_weight == "auto":
            class_weight = "balanced" if minority < 0.2 else None
            if class_weight:
                notes.append(f"imbalanced classes (smallest {minority:.1%}): trained with balanced class weights; "
                             "pass params := {class_weight: 'none'} to turn this off")
        elif class_weight == "none":
            class_weight = None
    else:
        class_weight = None
    train, test = split or holdout_positions(y, task, test_size, groups)
    y_tr, y_te = y[train], y[test]
    X_tr, X_te = np.take(X, train, axis=0), np.take(X, test, axis=0)  # 0.06 s where X[train] took 0.12-0.4 (1.6M x 10)
    del X  # the fit reuses its memory where the caller passed the only reference
    if test_size == 0:
        notes.append("test_size := 0: metrics are measured on the training rows and are optimistic")

    candidates = []
    calibrate = False
    if algorithm == "auto":
        progress(f"choosing an algorithm by {CV_FOLDS}-fold cross-validation")
        oof: dict = {}
        candidates = _cross_validate(X_tr, y_tr, task, categorical, class_weight, oof,
                                     None if groups is None else np.asarray(groups)[train])
        algorithm = next(c["algorithm"] for c in candidates if c["chosen"])
        best = candidates[0]
        notes.append(f"auto chose {algorithm} by cross-validated {best['metric']}: "
                     + ", ".join(f"{c['algorithm']} {c['cv_score']:.4f} ± {c['cv_se']:.4f}" for c in candidates)
                     + ("" if algorithm == best["algorithm"] else
                        f" ({algorithm} is simpler, within the noise and {EQUIVALENT_SHORTFALL:.1%} of {best['algorithm']})"))
        if algorithm in oof and algorithm != "mlp":  # a Keras model is stored as itself, not inside a wrapper
            raw, platt = calibration_gain(*oof[algorithm])
            calibrate = platt < 0.98 * raw
            notes.append(f"probabilities {'calibrated' if calibrate else 'left as they are'}: out-of-fold Brier "
                         f"score {raw:.4f} as fitted, {platt:.4f} after Platt scaling")
    progress(f"fitting {algorithm} on {len(y_tr):,} rows")
    params = bounded_size_params(algorithm, len(y_tr), params, notes)
    est = make_estimator(algorithm, task, categorical, params, class_weight)
    if calibrate:  # the model refitted on every row, its scores mapped by a sigmoid fitted out of fold
        est = CalibratedClassifierCV(est, method="sigmoid", cv=3, ensemble=False)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        baseline = pool.submit(baseline_row, X_tr, categorical)
        side = pool.submit(beside, test) if beside else None
        est.fit(X_tr, y_tr)
    if calibrate and est.calibrated_classifiers_[0].calibrators[0].a_ >= 0:
        # sklearn's sigmoid is 1 / (1 + exp(a * score + b)): only a < 0 keeps the model's ranking (and its AUC)
        est = est.calibrated_classifiers_[0].estimator
        notes.append("calibration dropped: the fitted sigmoid was not increasing and would have reordered rows")
    notes.append(f"fit took {time.perf_counter() - t0:.2f}s")
    notes.extend(getattr(est, "notes_", []))  # e.g. the MLP's epochs, device and fallbacks
    progress(f"evaluating on {len(y_te):,} hold-out rows")
    predict = predict_fn(est, task, features) if features else (lambda X: score(est, X, task))
    scores = predict(X_te) if len(y_te) else np.array([])  # once: metrics, curves and the drift snapshot share them
    metrics = evaluate(est, X_te, y_te, task, scores=scores)
    sample = importance_sample(est, X_te, y_te, task)
    holdout = holdout_sample(est, y_te, task, scores) if test_size > 0 else {}
    used = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in params.items()}
    if class_weight:
        used["class_weight"] = class_weight
    return FitResult(est, algorithm, task, None if classes is None else classes.tolist(), metrics, candidates, notes,
                     len(y_tr), len(y_te), sample, baseline.result(), used, holdout, test, scores,
                     side and side.result())


def bounded_size_params(algorithm: str, n_train: int, params: dict, notes: list[str]) -> dict:
    """Parameters that keep a default random forest's size bounded on big data (said in ``notes``); parameters
    the user gave that bound the trees are kept as they are."""
    leaf = max(3, n_train // FOREST_MAX_LEAVES)
    if algorithm != "random_forest" or leaf == 3 or {"min_samples_leaf", "max_depth", "max_leaf_nodes"} & set(params):
        return params
    notes.append(f"random forest on {n_train:,} rows: min_samples_leaf = {leaf} (at most {FOREST_MAX_LEAVES:,} leaves "
                 "per tree) keeps the stored model small; pass params := {min_samples_leaf: 3} for deeper trees")
    return {**params, "min_samples_leaf": leaf}


def size_notes(algorithm: str, n_bytes: int) -> list[str]:
    """A note when a stored model is large enough to slow every query that loads it, naming what shrinks it."""
    if n_bytes < LARGE_MODEL_BYTES:
        return []
    shrink = SHRINK_PARAMS.get(algorithm, "fewer features (exclude := [...])")
    return [f"warning: the stored model is {n_bytes / 2**20:,.0f} MB, which every connection loads before scoring; "
            f"shrink it with params := {shrink}"]


def holdout_positions(y: np.ndarray, task: str, test_size: float, groups: np.ndarray | None = None):
    """The (train, hold-out) row positions of ``split_holdout``."""
    return tuple(split_holdout(np.arange(len(y)), y, task, test_size, groups)[:2])


def split_holdout(X: np.ndarray, y: np.ndarray, task: str, test_size: float, groups: np.ndarray | None = None):
    """The seeded (stratified, for classes) train/hold-out split every supervised fit uses: X_tr, X_te, y_tr,
    y_te. With ``groups``, whole groups go to one side (stratified by each group's first label)."""
    if test_size == 0:
        return X, X, y, y
    if groups is None:
        return _stratified_split(np.arange(len(y)), y, task, test_size, X, y)
    ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    _, g_te = _stratified_split(np.arange(len(ids)), y[first], task, test_size)
    test = np.isin(inverse.ravel(), g_te)
    return X[~test], X[test], y[~test], y[test]


def _stratified_split(units: np.ndarray, y: np.ndarray, task: str, test_size: float, *arrays):
    """Split ``units`` (rows, or groups labelled by ``y``); returns the split of ``arrays`` (default: units)."""
    _, codes, counts = class_counts(y) if task == "classification" else (None, None, np.array([len(y)]))
    n_classes = len(counts)
    strat = (codes, counts) if task == "classification" and counts.min() >= 2 else None
    n_test = min(max(int(round(len(y) * test_size)), n_classes), len(y) - n_classes)
    if n_test < 1:
        raise TrainingFailed(f"only {len(y)} distinct rows or groups to split between training and hold-out; "
                             "add data or pass test_size := 0")
    train, test = shuffle_split(strat, len(y), n_test)
    return [part for a in (arrays or (units,)) for part in (a[train], a[test])]


def class_counts(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(y, return_inverse=True, return_counts=True)`` through pandas' hash table instead of a sort of
    every row (a tenth of a second on two million labels, and training asked three times): the classes in
    order, each row's class, each class's count."""
    codes, classes = pd.factorize(y, sort=True)
    return np.asarray(classes), codes, np.bincount(codes, minlength=len(classes))


def shuffle_split(stratify: np.ndarray | tuple | None, n: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """The (train, test) positions ``train_test_split(range(n), test_size=n_test, random_state=SEED,
    stratify=stratify)`` picks, drawn the same way from the same generator, so the same rows: scikit-learn's
    stratified split gathers half a million positions through a Python list (0.1 s), this does not.
    ``stratify`` is the labels, or the (row codes, class counts) of ``class_counts`` when already known."""
    rng = np.random.RandomState(SEED)
    if stratify is None:
        order = rng.permutation(n)
        return order[n_test:], order[:n_test]
    inverse, counts = stratify if isinstance(stratify, tuple) else class_counts(stratify)[1:]
    if len(counts) <= 16:  # each class's rows in order: a pass per class beats a stable sort of every row
        by_class = [np.flatnonzero(inverse == c) for c in range(len(counts))]
    else:
        by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    n_train = _approximate_mode(counts, n - n_test, rng)  # rows of each class for training, then for the hold-out
    n_held = _approximate_mode(counts - n_train, n_test, rng)
    train, test = [], []
    for rows, k, t in zip(by_class, n_train, n_held):
        rows = rows.take(rng.permutation(len(rows)))
        train.append(rows[:k])
        test.append(rows[k:k + t])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


CV_FOLDS = 5
CV_ROWS_PER_REPEAT = 3_000  # small tables get the 5 folds repeated (up to 3 times) so the noise estimate is usable
# simpler first: auto keeps the simplest candidate whose score is within the noise of the best one
SIMPLICITY = ("logistic", "linear", "gbm", "random_forest", "blend", "mlp")
EQUIVALENT_SHORTFALL = 0.001  # of the best score: 0.00075 AUC at 0.75, 0.1% of an RMSE


def _cross_validate(X, y, task, categorical, class_weight, oof: dict | None = None,
                    groups: np.ndarray | None = None) -> list[dict]:
    """Every auto candidate scored by stratified 5-fold cross-validation (ROC AUC for two classes, macro F1 for
    more, RMSE for numbers) on at most CV_SAMPLE rows, repeated on small tables, best mean first. Each candidate carries its per-fold
    scores' mean, standard error and ``chosen`` (see ``choose``). ``oof``, when given, receives the out-of-fold
    probability of the positive class per candidate (two classes only), with the fold of each row. ``groups``
    (copies, or rows about the same user) keeps each group inside one fold, as the hold-out split does."""
    candidates = AUTO_CANDIDATES
    if len(y) >= MLP_AUTO_MIN_ROWS:
        from .tf_runtime import tensorflow_available

        if tensorflow_available():
            candidates = AUTO_CANDIDATES + ("mlp",)
    if len(y) > CV_SAMPLE:
        idx = np.random.default_rng(SEED).choice(len(y), CV_SAMPLE, replace=False)
        X, y = X[idx], y[idx]
        groups = None if groups is None else groups[idx]
    clf = task == "classification"
    binary = clf and len(np.unique(y)) == 2
    metric = "roc_auc" if binary else "f1_macro" if clf else "rmse"
    repeats = int(np.clip(np.ceil(CV_ROWS_PER_REPEAT / max(len(y), 1)), 1, 3))
    splits = []
    for r in range(repeats):
        splits += _folds(y, clf, groups, SEED + r)
    folds = len(splits) // repeats
    fold_of = np.empty(len(y), np.int64)
    for f, (_, val) in enumerate(splits[:folds]):  # out-of-fold probabilities come from the first repeat
        fold_of[val] = f
    out = []
    split_probs: dict[str, list] = {}
    for algo in steps(candidates, "auto: cross-validating candidates", unit="algorithm"):
        a = "linear" if algo == "logistic" and not clf else algo
        per_fold, p_oof = [], np.full(len(y), np.nan)
        for i, (train, val) in enumerate(splits):
            est = make_estimator(a, task, categorical, {}, class_weight).fit(X[train], y[train])
            if binary:
                p = est.predict_proba(X[val])[:, 1]
                split_probs.setdefault(a, []).append(p)
                if i < folds:
                    p_oof[val] = p
                per_fold.append(skm.roc_auc_score(y[val] == est.classes_[1], p))
            elif clf:
                per_fold.append(skm.f1_score(y[val], est.predict(X[val]), average="macro"))
            else:
                per_fold.append(float(np.sqrt(skm.mean_squared_error(y[val], est.predict(X[val])))))
            classes = getattr(est, "classes_", None)
        if oof is not None and binary:
            oof[a] = (y == classes[1], p_oof, fold_of)
        out.append(_cv_candidate(a, metric, per_fold))
    if binary and {"logistic", "gbm"} <= set(split_probs):  # the blend's folds come from its parts' probabilities
        blend = [(pl + pg) / 2 for pl, pg in zip(split_probs["logistic"], split_probs["gbm"])]
        out.append(_cv_candidate("blend", metric, [skm.roc_auc_score(y[val] == classes[1], p)
                                                   for (_, val), p in zip(splits, blend)]))
        if oof is not None:
            p_oof = np.full(len(y), np.nan)
            for (_, val), p in zip(splits[:folds], blend):
                p_oof[val] = p
            oof["blend"] = (y == classes[1], p_oof, fold_of)
    out.sort(key=lambda c: c["cv_score"] if metric == "rmse" else -c["cv_score"])  # best first
    chosen = choose(out)
    for c in out:
        c["chosen"] = c["algorithm"] == chosen
    return out


def _folds(y: np.ndarray, clf: bool, groups: np.ndarray | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One shuffled round of (train, validation) index pairs: CV_FOLDS folds, fewer when a class has fewer rows
    (or groups) than that; stratified for classes; whole groups in one fold when ``groups`` is given and every
    class spans at least two groups (otherwise a fold would miss a class, and rows are split one by one)."""
    classes = np.unique(y) if clf else [None]
    if groups is not None:
        g = np.unique(groups, return_inverse=True)[1].ravel()
        per_class = [len(np.unique(g if c is None else g[y == c])) for c in classes]
        if min(per_class) >= 2:
            folds = min(CV_FOLDS, min(per_class))
            cv = (StratifiedGroupKFold if clf else GroupKFold)(folds, shuffle=True, random_state=seed)
            return list(cv.split(y, y, g))
    per_class = [int(np.sum(y == c)) if clf else len(y) for c in classes]
    folds = max(2, min(CV_FOLDS, min(per_class)))
    return list((StratifiedKFold if clf else KFold)(folds, shuffle=True, random_state=seed).split(y, y))


def _cv_candidate(algorithm: str, metric: str, per_fold: list[float]) -> dict:
    scores = np.asarray(per_fold, dtype=np.float64)
    return {"algorithm": algorithm, "cv_score": float(scores.mean()), "metric": metric,
            "cv_se": float(scores.std(ddof=1) / np.sqrt(len(scores))), "folds": scores.tolist()}


def choose(candidates: list[dict]) -> str:
    """The one-standard-error rule in favour of the simplest candidate (the regularised linear model), paired
    across folds, with its price bounded: the simplest is kept when its per-fold shortfall against the best
    candidate averages no more than that shortfall's standard error (the validation's noise) and no more than
    EQUIVALENT_SHORTFALL of the best score (a difference no one would act on); otherwise the best candidate wins.
    On small tables the noise alone reaches 0.01 AUC, a loss the rule would otherwise accept on every such table.
    Intermediate models are not preferred for being simpler: one within the noise of the best is not known to
    be better than either."""
    best = candidates[0]
    simplest = min(candidates, key=lambda c: SIMPLICITY.index(c["algorithm"]) if c["algorithm"] in SIMPLICITY else 99)
    sign = 1.0 if best["metric"] == "rmse" else -1.0  # d: how much worse than the best, per fold
    d = sign * (np.asarray(best["folds"]) - np.asarray(simplest["folds"]))
    noise = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
    shortfall = -d.mean()
    tolerance = min(noise, EQUIVALENT_SHORTFALL * abs(best["cv_score"]))
    return simplest["algorithm"] if shortfall <= tolerance else best["algorithm"]


def calibration_gain(positive: np.ndarray, p: np.ndarray, fold_of: np.ndarray) -> tuple[float, float]:
    """Brier score of out-of-fold probabilities as they are and after Platt scaling (a logistic map of their
    log-odds), the map itself cross-fitted over the same folds so the comparison is honest."""
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1)).reshape(-1, 1)
    calibrated = np.empty(len(p))
    for f in np.unique(fold_of):
        rest, this = fold_of != f, fold_of == f
        if len(np.unique(positive[rest])) < 2:
            calibrated[this] = p[this]
            continue
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(z[rest], positive[rest])
        calibrated[this] = platt.predict_proba(z[this])[:, 1]
    return float(skm.brier_score_loss(positive, p)), float(skm.brier_score_loss(positive, calibrated))


def evaluate(est, X, y, task: str, predict=None, scores: np.ndarray | None = None) -> dict[str, float]:
    """Hold-out metrics: classification gets accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss.
    ``predict`` (the lean scorer from ``predict_fn``) scores regression and binary labels when given; ``scores``
    are those scores of ``X`` already computed (``score``'s number per row), so nothing is scored twice."""
    if len(y) == 0:
        return {}
    if scores is None and predict is not None:
        scores = predict(X)
    if task == "regression":
        pred = scores if scores is not None else est.predict(X)
        nz = y != 0
        out = {"mae": skm.mean_absolute_error(y, pred), "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
               "r2": skm.r2_score(y, pred) if len(y) > 1 else float("nan")}
        out["mape"] = float(np.mean(np.abs((y[nz] - pred[nz]) / y[nz]))) if nz.any() else float("nan")
        return {k: float(v) for k, v in out.items()}
    classes = est.classes_
    if scores is not None and len(classes) == 2:
        proba = np.column_stack([1.0 - scores, scores])
    else:
        proba = est.predict_proba(X)
    pred = classes[np.argmax(proba, axis=1)]
    out = {"accuracy": np.count_nonzero(y == pred) / len(y)}  # = skm.accuracy_score, without its checks of y
    if len(classes) == 2:
        positive = y == classes[1]
        out.update(binary_counts_metrics(positive, pred == classes[1]))
        out.update(binary_score_metrics(positive, proba))
        out["ece"] = expected_calibration_error(positive, proba[:, 1])
        return {k: float(v) for k, v in out.items()}
    out.update(precision=skm.precision_score(y, pred, average="macro", zero_division=0),
               recall=skm.recall_score(y, pred, average="macro", zero_division=0),
               f1=skm.f1_score(y, pred, average="macro", zero_division=0))
    if len(np.unique(y)) == len(classes):
        out["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    out["log_loss"] = skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=classes)
    return {k: float(v) for k, v in out.items()}


def binary_counts_metrics(positive: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of the positive class, as scikit-learn's ``precision_score``, ``recall_score`` and
    ``f1_score`` (zero_division=0) compute them from the counts (the same float operations, so the same values),
    without their three passes of label checks over the hold-out."""
    tp, n_predicted, n_positive = (np.count_nonzero(v) for v in (positive & predicted, predicted, positive))
    return {"precision": tp / n_predicted if n_predicted else 0.0, "recall": tp / n_positive if n_positive else 0.0,
            "f1": 2.0 * tp / (float(n_positive) + float(n_predicted)) if n_positive + n_predicted else 0.0}


def binary_score_metrics(positive: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision (when both classes are present), Brier score and log loss of two-class
    probabilities ``proba`` (columns: negative, positive), as scikit-learn's ``roc_auc_score``,
    ``average_precision_score``, ``brier_score_loss`` and ``log_loss`` (with our clip at 1e-15) compute them: the
    same float operations on the same arrays, so the same values (a test pins them), from one sort of the scores
    where scikit-learn sorts twice and checks the labels six times (0.3 s of 0.35 on 400k hold-out rows)."""
    assert_all_finite(proba, input_name="scores")  # the error scikit-learn's metrics would raise
    p = proba[:, 1]
    t = positive.astype(np.float64)
    out = {}
    n_positive = np.count_nonzero(positive)
    if 0 < n_positive < len(t):
        # confusion_matrix_at_thresholds: counts at each distinct score, highest first
        order = np.argsort(-p)  # the counts at each distinct score do not depend on the order within ties
        ranked = p[order]
        last = np.concatenate([np.flatnonzero(np.diff(ranked)), [len(p) - 1]])
        tps = np.cumsum(t[order], dtype=np.float64)[last]
        fps = 1 + last.astype(np.float64) - tps
        # roc_curve (drop_intermediate) and auc
        keep = np.concatenate([[True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]]) if len(fps) > 2 else slice(None)
        roc_tps, roc_fps = np.concatenate([[0.0], tps[keep]]), np.concatenate([[0.0], fps[keep]])
        out["roc_auc"] = trapezoid(roc_tps / roc_tps[-1], roc_fps / roc_fps[-1])
        # precision_recall_curve and the step integral of average_precision_score
        precision = np.concatenate([np.flip(tps / (tps + fps)), [1.0]])
        recall = np.concatenate([np.flip(tps / tps[-1]), [0.0]])
        out["pr_auc"] = max(0.0, -np.sum(np.diff(recall) * precision[:-1]))
    truth = np.stack((1 - t, t), axis=1)
    out["brier"] = np.average(np.sum((truth - np.stack((1 - p, p), axis=1)) ** 2, axis=1)) * 0.5
    eps = np.finfo(np.float64).eps
    clipped = np.clip(np.clip(proba, 1e-15, 1), eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # scikit-learn's xlogy: NumPy's log, 0 where truth is 0
        out["log_loss"] = np.average(-np.sum(np.where(truth == 0.0, 0.0, truth * np.log(clipped)), axis=1))
    return out


def calibration_bins(positive: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width probability bin: its number of rows, their mean predicted probability and their observed
    rate of positives (NaN for empty bins): the points of a reliability diagram."""
    positive = np.asarray(positive, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    n = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, np.bincount(which, p, bins) / n, np.bincount(which, positive, bins) / n


def expected_calibration_error(positive: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted probability| over ten equal-width probability bins, weighted by the
    share of rows in each bin (0 for perfectly calibrated probabilities)."""
    if not len(p):
        return float("nan")
    n, predicted, observed = calibration_bins(positive, p, bins)
    filled = n > 0
    return float(np.sum(n[filled] * np.abs(observed[filled] - predicted[filled])) / n.sum())


def holdout_sample(est, y_te, task: str, scores: np.ndarray, max_rows: int = HOLDOUT_KEEP) -> dict:
    """Scores and labels of (a seeded sample of) the hold-out rows, kept with the model so that reports draw
    ROC, lift and predicted-against-actual only from rows the model never trained on. ``scores`` are the
    hold-out rows' ``score``s. Binary labels give ``score`` (P(positive)) and ``positive`` (0/1); regression
    gives ``predicted`` and ``actual``."""
    if len(y_te) > max_rows:
        idx = np.sort(np.random.default_rng(SEED).choice(len(y_te), max_rows, replace=False))
        scores, y_te = scores[idx], y_te[idx]
    if task == "regression":
        return {"predicted": np.round(scores, 6).tolist(), "actual": np.asarray(y_te, float).tolist()}
    if len(est.classes_) != 2:
        return {}
    return {"score": np.round(scores, 6).tolist(), "positive": (y_te == est.classes_[1]).astype(int).tolist()}


def predict_fn(est, task: str, features: list[dict]):
    """The leanest exact scoring function for a fitted estimator (see ``compiled``)."""
    return fast_scorer(est, task, features) or (lambda X: score(est, X, task))


def score(est, X: np.ndarray, task: str) -> np.ndarray:
    """The number ml_predict returns: P(positive class) for binary, the value for regression, and the
    probability of the predicted class for multiclass."""
    if task == "regression":
        return np.asarray(est.predict(X), dtype=np.float64)
    proba = est.predict_proba(X)
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)


def predict_labels(est, X: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return np.asarray(est.predict(X), dtype=np.float64)
    proba = est.predict_proba(X)
    return est.classes_[np.argmax(proba, axis=1)]


def baseline_row(X_tr: np.ndarray, categorical: np.ndarray) -> list[float]:
    """The row ``row_contributions`` compares against: each numeric feature's median and each categorical
    feature's most frequent code, over the training rows (NaN for a column without values)."""
    baseline = []
    buffer = np.empty(X_tr.shape[0])  # one buffer for every column: memory touched once, not once per column
    for j in range(X_tr.shape[1]):
        np.copyto(buffer, X_tr[:, j])
        missing = np.isnan(buffer)
        col = buffer[~missing] if missing.any() else buffer
        if not len(col):
            baseline.append(float("nan"))
        elif categorical[j]:  # codes 0, 1, ...: the first most frequent, as np.unique's counts would pick it
            baseline.append(float(np.bincount(col.astype(np.intp)).argmax()))
        else:
            baseline.append(middle_value(col))
    return baseline


def middle_value(values: np.ndarray) -> float:
    """``np.median`` of finite values (the same float), reordering ``values`` in place: one partition at the
    middle, where np.median's three kth took 23 ms of 1.6M values against 4."""
    half = len(values) // 2
    values.partition(half)
    upper = values[half]
    return float(upper) if len(values) % 2 else float((values[:half].max() + upper) / 2.0)  # np.mean's two steps


def importance_sample(est, X_te: np.ndarray, y_te: np.ndarray, task: str, max_rows: int = 1000,
                      seed: int = SEED) -> dict:
    """The (seeded sample of) hold-out rows ``global_importance`` permutes, kept with the model so that the
    importances are computed on first use (``ml_explain``) rather than by every training: the matrix, and the
    target (a class's position in ``est.classes_``, -1 for a class it never saw; the value for regression),
    as base64 of little-endian float64 (JSON holds it; loading it runs no code)."""
    if len(y_te) > max_rows:
        idx = np.random.default_rng(seed).choice(len(y_te), max_rows, replace=False)
        X_te, y_te = X_te[idx], y_te[idx]
    target = y_te
    if task == "classification":
        match = y_te[:, None] == np.asarray(est.classes_)[None, :]
        target = np.where(match.any(axis=1), match.argmax(axis=1), -1)
    return {"rows": len(y_te), "x": _b64(X_te), "target": _b64(target)}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def global_importance(est, sample: dict, task: str, categorical: np.ndarray, names: list[str], predict=None,
                      repeats: int = 2, seed: int = SEED) -> list[dict]:
    """Permutation importance on the hold-out rows of ``importance_sample`` (per original column), and a
    direction per numeric feature.

    ``predict`` maps a matrix to scores (the lean scorer when there is one); the loss is RMSE for regression,
    log loss of the positive class for binary labels and 1 - accuracy for several classes."""
    rng = np.random.default_rng(seed)
    predict = predict or (lambda X: score(est, X, task))
    n = sample["rows"]
    X_te, target = _unb64(sample["x"]).reshape(n, -1), _unb64(sample["target"])
    # Every perturbed copy of the hold-out sample is scored in one call (one pass over the trees, not 3d).
    d = X_te.shape[1]
    variants = [X_te]
    for j in range(d):
        for _ in range(repeats):
            Xp = X_te.copy()
            Xp[:, j] = rng.permutation(Xp[:, j])
            variants.append(Xp)
        Xs = X_te.copy()
        if not categorical[j]:
            Xs[:, j] = X_te[:, j] + np.nanstd(X_te[:, j])
        variants.append(Xs)
    stacked = np.vstack(variants)
    if task == "classification" and len(est.classes_) > 2:
        proba = est.predict_proba(stacked)
        losses = (proba.argmax(axis=1).reshape(len(variants), n) != target[None, :]).mean(axis=1)
        scores = proba.max(axis=1).reshape(len(variants), n)
    else:
        scores = predict(stacked).reshape(len(variants), n)
        if task == "regression":
            losses = np.sqrt(np.mean((scores - target[None, :]) ** 2, axis=1))
        else:
            positive = (target == 1)[None, :]
            p = np.clip(scores, 1e-15, 1 - 1e-15)
            losses = -np.mean(np.where(positive, np.log(p), np.log(1 - p)), axis=1)  # log loss per variant
    out = []
    for j in range(d):
        first = 1 + j * (repeats + 1)
        direction = "categorical"
        if not categorical[j]:
            delta = float(np.nanmean(scores[first + repeats] - scores[0]))
            direction = "increases" if delta > 1e-9 else "decreases" if delta < -1e-9 else "flat"
        out.append({"feature": names[j] if j < len(names) else f"x{j}",
                    "importance": float(np.mean(losses[first:first + repeats]) - losses[0]), "direction": direction})
    out.sort(key=lambda r: -r["importance"])
    return out


def row_contributions(est, X: np.ndarray, baseline: np.ndarray, task: str) -> np.ndarray:
    """(n, d) contributions: how much each feature moves the score away from the baseline row's value,
    measured by replacing that feature with its baseline (one stacked predict call for all features)."""
    n, d = X.shape
    stacked = np.repeat(X[None, :, :], d + 1, axis=0)  # (d+1, n, d)
    for j in range(d):
        stacked[j + 1, :, j] = baseline[j]
    scores = score(est, stacked.reshape(-1, d), task).reshape(d + 1, n)
    return (scores[0][None, :] - scores[1:]).T
