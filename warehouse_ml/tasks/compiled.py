"""Lean scoring paths for fitted models: what makes inference from SQL fast.

* Linear models (binary logistic regression, ridge) reduce exactly to one affine form over the raw feature
  columns: ``b + sum_j w_j * (x_j - mean_j) / scale_j + ... + W_c[category]``, where a missing x_j (NULL, NaN,
  inf, unparsable text) scores its median and its missing-indicator weight instead. That form
  scores a NumPy matrix without scikit-learn's per-call overhead, and compiles to a plain SQL expression that
  DuckDB runs in parallel with no Python at all (also usable by clients without this package).
* Tree ensembles (histogram gradient boosting, random forests, decision trees) are scored by one compiled
  traversal that releases the GIL (``trees``), so DuckDB's threads score batches in parallel.

Everything else falls back to the estimator's own ``predict_proba``/``predict``.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from .trees import tree_scorer


def linear_form(est, features: list[dict]) -> dict | None:
    """The exact affine form of a fitted linear pipeline made by ``supervised.make_estimator``, or None."""
    if not isinstance(est, Pipeline) or len(est.steps) != 2:
        return None
    prep, model = est.steps[0][1], est.steps[1][1]
    if isinstance(model, LogisticRegression) and model.coef_.shape[0] == 1:
        link, w, b = "logistic", model.coef_[0], float(model.intercept_[0])
    elif isinstance(model, Ridge) and np.ndim(model.coef_) == 1:
        link, w, b = "identity", np.asarray(model.coef_), float(model.intercept_)
    else:
        return None
    numeric, categorical, pos = [], [], 0
    for name, pipe, cols in prep.transformers_:
        if name == "num":
            imputer, scaler = pipe.named_steps["impute"], pipe.named_steps["scale"]
            k = len(cols)
            ind_cols = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
            mean, scale = scaler.mean_, scaler.scale_
            for i, j in enumerate(cols):
                term = {"name": features[j]["name"], "index": int(j), "median": float(imputer.statistics_[i]),
                        "mean": float(mean[i]), "scale": float(scale[i]), "weight": float(w[pos + i]),
                        "missing_weight": 0.0}
                if i in ind_cols:
                    m = k + ind_cols.index(i)
                    # the indicator is scaled too: its contribution is w * (1[missing] - mean) / scale
                    term["missing_weight"] = float(w[pos + m] / scale[m])
                    b += float(-w[pos + m] * mean[m] / scale[m])
                numeric.append(term)
            pos += k + len(ind_cols)
        elif name == "cat":
            onehot = pipe.named_steps["onehot"]
            for i, j in enumerate(cols):
                codes = onehot.categories_[i]
                weights = {float(c): float(w[pos + t]) for t, c in enumerate(codes)}
                cats = features[j]["categories"]
                categorical.append({"name": features[j]["name"], "index": int(j),
                                    "weights": {cats[int(c)]: v for c, v in weights.items() if c >= 0},
                                    "missing_weight": weights.get(-1.0, 0.0)})
                pos += len(codes)
        elif name != "remainder":
            return None
    if pos != len(w):
        return None
    return {"link": link, "intercept": b, "numeric": numeric, "categorical": categorical}


class LinearScorer:
    """Scores a Featurizer matrix with the affine form, its constants packed once per model: a batch costs a
    column gather, a fill of missing values, two matrix-vector products and one lookup per category column."""

    def __init__(self, form: dict, features: list[dict]):
        num = form["numeric"]
        self.num_idx = np.array([t["index"] for t in num], dtype=np.intp)
        self.median = np.array([t["median"] for t in num])
        self.slope = np.array([t["weight"] / t["scale"] for t in num])
        self.missing_weight = np.array([t["missing_weight"] for t in num])
        # b + sum w * (x - mean) / scale == (b - sum slope * mean) + sum slope * x
        self.offset = form["intercept"] - float(np.dot(self.slope, [t["mean"] for t in num]))
        self.categorical = []
        for t in form["categorical"]:
            cats = features[t["index"]]["categories"]
            table = np.array([t["weights"].get(c, 0.0) for c in cats] + [t["missing_weight"]])
            self.categorical.append((t["index"], table))
        self.logistic = form["link"] == "logistic"

    def __call__(self, X: np.ndarray) -> np.ndarray:
        xn = X[:, self.num_idx]
        missing = np.isnan(xn)
        np.copyto(xn, self.median, where=missing)
        z = xn @ self.slope + self.offset
        if self.missing_weight.any():
            z += missing @ self.missing_weight
        for j, table in self.categorical:
            codes = X[:, j]
            z += table[np.where(np.isnan(codes), len(table) - 1, codes).astype(np.intp)]
        return 1.0 / (1.0 + np.exp(-z)) if self.logistic else z


def linear_sql(form: dict, row: str) -> str:
    """The affine form as a DuckDB SQL expression over the struct ``row`` (e.g. ``u`` in ``FROM uf u``)."""
    parts = [_num(form["intercept"])]
    for t in form["numeric"]:
        # The numeric policy: NULL, NaN, +-inf and text that is not a number are all missing (isfinite is NULL
        # or false), so they score the imputed median plus the missing indicator, as in score_linear.
        x = f"TRY_CAST({row}.{_ident(t['name'])} AS DOUBLE)"
        slope = t["weight"] / t["scale"]
        missing = slope * (t["median"] - t["mean"]) + t["missing_weight"]
        parts.append(f"CASE WHEN isfinite({x}) THEN {_num(slope)} * ({x} - {_num(t['mean'])}) ELSE {_num(missing)} END")
    for t in form["categorical"]:
        x = f"CAST({row}.{_ident(t['name'])} AS VARCHAR)"
        whens = " ".join(f"WHEN {_str(c)} THEN {_num(v)}" for c, v in t["weights"].items())
        if whens or t["missing_weight"]:
            parts.append(f"CASE {x} {whens} ELSE {_num(t['missing_weight'])} END" if whens else _num(t["missing_weight"]))
    z = " + ".join(parts)
    return f"(1.0 / (1.0 + exp(-({z}))))" if form["link"] == "logistic" else f"({z})"


def fast_scorer(est, task: str, features: list[dict]):
    """A function X -> scores equal to ``supervised.score(est, X, task)``, or None when no lean path applies."""
    form = linear_form(est, features)
    if form is not None:
        return LinearScorer(form, features)
    return tree_scorer(est)


def _num(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError("non-finite weight cannot be compiled to SQL")
    return repr(float(v))


def _str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'
