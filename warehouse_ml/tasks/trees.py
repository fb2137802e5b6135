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

A batch is 2048 rows and a forest's nodes are megabytes, so each tree is fetched from a far cache once per
batch: what costs is the bytes fetched and the wait on each row's chain of dependent loads. scikit-learn's
trees are therefore packed 16 bytes a node (float32 threshold, int32 feature and children: a float32
threshold decides a float32 x exactly as the float64 one does), and walked one level at a time for the whole
batch, with no branch on the data: each row's next node is a load indexed by the comparison, and a leaf
points to itself, so 2048 independent walks overlap in the processor (on a 100-tree forest, 2-3x the
speed of a walk that follows one row to its leaf, and of scikit-learn's own, on one core).
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
        _over_cores(self._walk, X, out)
        return out

    def _walk(self, X, out):
        _walk(X, self.roots, self.feature, self.threshold, self.left, self.right, self.missing_left, self.categorical,
              self.bitset_row, self.left_bitsets, self.known_bitsets, self.known_row, self.value, out)


def _over_cores(walk, X: np.ndarray, out: np.ndarray) -> None:
    """``walk(X, out)`` on the calling thread, or for a big matrix (evaluation, a front-door stream) over row
    ranges split across the cores, the GIL released."""
    if X.shape[0] <= _SPLIT_ROWS or _CORES == 1:
        walk(X, out)
        return
    bounds = np.linspace(0, X.shape[0], _CORES + 1).astype(int)
    with ThreadPoolExecutor(_CORES) as pool:
        list(pool.map(lambda k: walk(X[bounds[k]:bounds[k + 1]], out[bounds[k]:bounds[k + 1]]), range(_CORES)))


def _hgb_tree(nodes: np.ndarray) -> dict:
    leaf = nodes["is_leaf"].astype(bool)
    return {"feature": nodes["feature_idx"], "threshold": nodes["num_threshold"],
            "left": np.where(leaf, -1, nodes["left"].astype(np.int64)),
            "right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
            "missing_left": nodes["missing_go_to_left"], "categorical": nodes["is_categorical"],
            "bitset_row": nodes["bitset_idx"], "known_row": np.zeros(len(nodes), np.int64), "value": nodes["value"]}


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


_FEATURE = 0x3FFFFFFF  # the feature's bits of a packed node; bit 30: NaN goes right
_NAN_RIGHT = 30


@njit(nogil=True, cache=True)
def _walk_levels(X, roots, depths, nodes, thresholds, value, out):  # pragma: no cover  (compiled)
    """Add each tree's leaf value to ``out[i]`` for every row of the float32 ``X``: per tree, every row moves
    down one level per pass (``depths[t]`` passes; a leaf's children are itself)."""
    at = np.empty(X.shape[0], dtype=np.int32)
    for t in range(roots.shape[0]):
        at[:] = roots[t]
        for _ in range(depths[t]):
            for i in range(X.shape[0]):
                node = at[i]
                packed = nodes[node, 0]
                x = X[i, packed & _FEATURE]
                go_right = (x > thresholds[node, 3]) | ((x != x) & ((packed >> _NAN_RIGHT) == 1))
                at[i] = nodes[node, 1 + go_right]
        for i in range(X.shape[0]):
            for k in range(out.shape[1]):
                out[i, k] += value[at[i], k]


def _packed_tree(tree, first: int) -> np.ndarray:
    """One scikit-learn tree as (nodes × 4) int32 rows ``[feature | NaN-right << 30, left, right, threshold as
    float32 bits]``, node ids shifted by ``first``; a leaf's children are itself."""
    leaf = tree.children_left < 0
    ids = np.arange(tree.node_count) + first
    nan_right = ~np.asarray(tree.missing_go_to_left, dtype=bool) & ~leaf
    threshold = np.where(leaf, np.inf, tree.threshold)
    # scikit-learn's thresholds are float32 values already; any other rounds down to one, which decides every
    # float32 x alike (astype rounds to nearest: step down where it rounded up)
    down = threshold.astype(np.float32)
    down = np.where(down.astype(np.float64) > threshold, np.nextafter(down, np.float32(-np.inf)), down)
    packed = np.empty((tree.node_count, 4), dtype=np.int32)
    packed[:, 0] = np.where(leaf, 0, tree.feature) | (nan_right.astype(np.int32) << _NAN_RIGHT)
    packed[:, 1] = np.where(leaf, ids, tree.children_left + first)
    packed[:, 2] = np.where(leaf, ids, tree.children_right + first)
    packed[:, 3] = down.view(np.int32)
    return packed


class SkTreeForest:
    """A decision tree or random forest: the mean of its trees' (normalised) leaf values, walked level by level
    over packed nodes (``_walk_levels``)."""

    def __init__(self, est):
        self.classifier = isinstance(est, (DecisionTreeClassifier, RandomForestClassifier))
        self.n_classes = len(est.classes_) if self.classifier else 1
        trees = _trees(est)
        self.roots = np.cumsum([0] + [t.node_count for t in trees[:-1]]).astype(np.int32)
        self.depths = np.array([t.max_depth for t in trees], dtype=np.int32)
        self.nodes = np.ascontiguousarray(np.concatenate([_packed_tree(t, int(r)) for t, r in zip(trees, self.roots)]))
        self.thresholds = self.nodes.view(np.float32)
        # the scores kept per leaf: a binary classifier's class-1 fraction, every class's for more, a regressor's value
        keep = slice(1, 2) if self.n_classes == 2 else slice(0, self.n_classes)
        self.value = np.ascontiguousarray(np.concatenate([_leaf_values(t, self.classifier)[:, keep] for t in trees]))
        self.n_trees = len(trees)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], self.value.shape[1]))
        _over_cores(self._walk, np.asarray(X, dtype=np.float32), out)  # scikit-learn walks float32 X
        if self.n_trees > 1:
            out /= self.n_trees
        return out[:, 0] if out.shape[1] == 1 else out.max(axis=1)

    def _walk(self, X, out):
        _walk_levels(X, self.roots, self.depths, self.nodes, self.thresholds, self.value, out)


def _trees(est) -> list:
    """The fitted ``tree_`` of a decision tree, or of each member of a forest."""
    return [m.tree_ for m in (est.estimators_ if hasattr(est, "estimators_") else [est])]


def _leaf_values(tree, classifier: bool) -> np.ndarray:
    """Per node: a classifier's class fractions normalised as ``predict_proba`` does per tree, else the value."""
    value = tree.value[:, 0, :]
    if not classifier:
        return value[:, :1]
    total = value.sum(axis=1, keepdims=True)
    return value / np.where(total == 0.0, 1.0, total)


def tree_scorer(est):
    """A function X -> ``supervised.score(est, X, task)`` for a supported tree ensemble, else None."""
    if isinstance(est, HistGradientBoostingRegressor) or (
            isinstance(est, HistGradientBoostingClassifier) and len(est.classes_) == 2):
        return HgbForest(est)
    if isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor)):
        packable = est.n_features_in_ <= _FEATURE and sum(t.node_count for t in _trees(est)) < 2 ** 31
        if getattr(est, "n_outputs_", 1) == 1 and packable:  # (int32 node ids: 32 GB of packed nodes)
            return SkTreeForest(est)
    return None
