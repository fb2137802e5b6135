"""Tree ensembles flattened to arrays and scored by one compiled traversal that releases the GIL.

Why: DuckDB calls a Python UDF on 2048-row batches from several threads, but the GIL lets only one run Python
at a time. scikit-learn's own predictors walk one tree per call, with Python between trees, so DuckDB's second
thread mostly waits. Here every tree of a model is packed into flat node arrays once, and one Numba function
(compiled with ``nogil``) walks all trees for a whole batch: while one DuckDB thread scores, the other can too.

The traversal repeats scikit-learn's decisions exactly, so scores are equal to the estimator's own:

* histogram gradient boosting (``_predictor.pyx``): NaN follows ``missing_go_to_left``; categorical splits
  test the left-category bitset, then the known-category bitset (unknown categories count as missing);
  numeric splits go left when ``x <= num_threshold``. The raw score is the baseline plus each tree's leaf
  value, added in tree order.
* decision trees and random forests (``_tree.pyx``): features are compared as float32 (scikit-learn casts X
  to float32 before walking), NaN follows ``missing_go_to_left``; a classifier's leaf holds class fractions,
  normalised per tree as ``predict_proba`` does, and a forest averages its trees.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit
from sklearn.ensemble import (
    HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
#: below this many rows a matrix is scored on the calling thread (DuckDB's batches: its threads give parallelism)
_SPLIT_ROWS = 65_536

_NO_BITSETS = np.zeros((1, 8), dtype=np.uint32)


@njit(nogil=True, cache=True)
def _walk(X, roots, feature, threshold, left, right, missing_left, categorical, bitset_row, left_bitsets,
          known_bitsets, known_row, value, out):  # pragma: no cover  (compiled: exercised through the tests)
    """Add each tree's leaf value to ``out[i]`` for every row of ``X``, trees in order. Trees are the outer loop
    so one tree's nodes stay in cache while every row walks it (a forest's nodes together do not fit)."""
    n_outputs = out.shape[1]
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = X[i, feature[node]]
                if np.isnan(x):
                    go_left = missing_left[node]
                elif categorical[node]:
                    if x < 0:
                        go_left = missing_left[node]
                    else:
                        code = np.uint8(x)
                        if (left_bitsets[bitset_row[node], code >> 5] >> (code & 31)) & 1:
                            go_left = True
                        elif (known_bitsets[known_row[node], code >> 5] >> (code & 31)) & 1:
                            go_left = False
                        else:
                            go_left = missing_left[node]
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            for k in range(n_outputs):
                out[i, k] += value[node, k]


class Forest:
    """A fitted tree ensemble as flat node arrays; ``raw(X)`` is the sum of leaf values over trees."""

    def __init__(self, trees: list[dict], n_outputs: int, bitsets=(_NO_BITSETS, _NO_BITSETS)):
        offsets = np.cumsum([0] + [len(t["feature"]) for t in trees])
        self.roots = offsets[:-1].astype(np.int64)

        def cat(key, dtype):
            return np.ascontiguousarray(np.concatenate([t[key] for t in trees]), dtype=dtype)

        def child(key):  # node ids are per tree: shift them by the tree's offset, leaves stay -1
            return np.concatenate([np.where(t[key] >= 0, t[key] + off, -1) for t, off in zip(trees, offsets)]).astype(np.int64)

        self.feature = cat("feature", np.int64)
        self.threshold = cat("threshold", np.float64)
        self.left, self.right = child("left"), child("right")
        self.missing_left = cat("missing_left", np.bool_)
        self.categorical = cat("categorical", np.bool_)
        self.bitset_row = cat("bitset_row", np.int64)
        self.known_row = cat("known_row", np.int64)
        self.value = np.ascontiguousarray(np.concatenate([t["value"] for t in trees]).reshape(-1, n_outputs), dtype=np.float64)
        self.left_bitsets = np.ascontiguousarray(bitsets[0], dtype=np.uint32)
        self.known_bitsets = np.ascontiguousarray(bitsets[1], dtype=np.uint32)
        self.n_outputs = n_outputs

    def raw(self, X: np.ndarray, start: np.ndarray | float = 0.0) -> np.ndarray:
        """``start`` plus every tree's leaf value, per row (rows × outputs)."""
        X = np.asarray(X, dtype=np.float64)  # C- or F-ordered (ml_predict's batches): compiled for each
        out = np.empty((X.shape[0], self.n_outputs))
        out[:] = start
        if X.shape[0] <= _SPLIT_ROWS or _CORES == 1:
            self._walk(X, out)
        else:  # a big matrix (evaluation, a front-door stream): split the rows over the cores, GIL released
            bounds = np.linspace(0, X.shape[0], _CORES + 1).astype(int)
            with ThreadPoolExecutor(_CORES) as pool:
                list(pool.map(lambda k: self._walk(X[bounds[k]:bounds[k + 1]], out[bounds[k]:bounds[k + 1]]), range(_CORES)))
        return out

    def _walk(self, X, out):
        _walk(X, self.roots, self.feature, self.threshold, self.left, self.right, self.missing_left, self.categorical,
              self.bitset_row, self.left_bitsets, self.known_bitsets, self.known_row, self.value, out)


def _hgb_tree(nodes: np.ndarray) -> dict:
    leaf = nodes["is_leaf"].astype(bool)
    return {"feature": nodes["feature_idx"], "threshold": nodes["num_threshold"],
            "left": np.where(leaf, -1, nodes["left"].astype(np.int64)),
            "right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
            "missing_left": nodes["missing_go_to_left"], "categorical": nodes["is_categorical"],
            "bitset_row": nodes["bitset_idx"], "known_row": np.zeros(len(nodes), np.int64), "value": nodes["value"]}


def _sk_tree(tree, n_outputs: int, classifier: bool) -> dict:
    value = tree.value[:, 0, :n_outputs] if classifier else tree.value[:, 0, :1]
    if classifier:  # predict_proba normalises each tree's leaf fractions before averaging
        total = value.sum(axis=1, keepdims=True)
        value = value / np.where(total == 0.0, 1.0, total)
    n = tree.node_count
    return {"feature": np.maximum(tree.feature, 0), "threshold": tree.threshold,
            "left": tree.children_left.astype(np.int64), "right": tree.children_right.astype(np.int64),
            "missing_left": np.asarray(tree.missing_go_to_left, dtype=bool), "categorical": np.zeros(n, bool),
            "bitset_row": np.zeros(n, np.int64), "known_row": np.zeros(n, np.int64), "value": value}


class HgbForest:
    """Histogram gradient boosting (binary classifier or regressor) with its categorical re-encoding."""

    def __init__(self, est):
        known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        trees = [_hgb_tree(it[0].nodes) for it in est._predictors]
        left_bitsets = [it[0].raw_left_cat_bitsets for it in est._predictors]
        # each tree numbers its categorical splits' bitsets from 0: stack them and shift every tree's rows
        shift = np.cumsum([0] + [len(b) for b in left_bitsets])
        for t, s in zip(trees, shift):
            t["bitset_row"] = np.where(t["categorical"], t["bitset_row"].astype(np.int64) + s, 0)
            t["known_row"] = np.where(t["categorical"], f_idx_map[t["feature"]], 0).astype(np.int64)
        stacked = np.concatenate([b for b in left_bitsets if len(b)]) if shift[-1] else _NO_BITSETS
        self.forest = Forest(trees, 1, (stacked, known if len(known) else _NO_BITSETS))
        self.baseline = float(np.ravel(est._baseline_prediction)[0])
        self.classifier = isinstance(est, HistGradientBoostingClassifier)
        # With categorical features sklearn re-encodes them with an OrdinalEncoder and moves them first.
        self.cat_cols, self.num_cols, self.categories = None, None, None
        if est._preprocessor is not None:
            mask = np.asarray(est.is_categorical_, dtype=bool)
            self.cat_cols, self.num_cols = np.flatnonzero(mask), np.flatnonzero(~mask)
            self.categories = list(est._preprocessor.named_transformers_["encoder"].categories_)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        if self.cat_cols is None:
            return X
        out = np.empty_like(X, dtype=np.float64)
        for k, (j, cats) in enumerate(zip(self.cat_cols, self.categories)):
            x = X[:, j]
            pos = np.minimum(np.searchsorted(cats, x), len(cats) - 1)
            out[:, k] = np.where(cats[pos] == x, pos, np.nan)  # unseen or missing -> NaN, as sklearn does
        out[:, len(self.cat_cols):] = X[:, self.num_cols]
        return out

    def __call__(self, X: np.ndarray) -> np.ndarray:
        raw = self.forest.raw(self._encode(X), self.baseline)[:, 0]
        return 1.0 / (1.0 + np.exp(-raw)) if self.classifier else raw


class SkTreeForest:
    """A decision tree or random forest: the mean of its trees' (normalised) leaf values."""

    def __init__(self, est):
        self.classifier = isinstance(est, (DecisionTreeClassifier, RandomForestClassifier))
        self.n_classes = len(est.classes_) if self.classifier else 1
        members = est.estimators_ if hasattr(est, "estimators_") else [est]
        self.forest = Forest([_sk_tree(m.tree_, self.n_classes, self.classifier) for m in members], self.n_classes)
        self.n_trees = len(members)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = self.forest.raw(X.astype(np.float32).astype(np.float64))
        if self.n_trees > 1:
            out /= self.n_trees
        if not self.classifier:
            return out[:, 0]
        return out[:, 1] if self.n_classes == 2 else out.max(axis=1)


def tree_scorer(est):
    """A function X -> ``supervised.score(est, X, task)`` for a supported tree ensemble, else None."""
    if isinstance(est, HistGradientBoostingRegressor) or (
            isinstance(est, HistGradientBoostingClassifier) and len(est.classes_) == 2):
        return HgbForest(est)
    if isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor)):
        if getattr(est, "n_outputs_", 1) == 1:
            return SkTreeForest(est)
    return None
