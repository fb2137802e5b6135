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
_FEATURE = 0x1FFFFFFF  # a packed node's first int32: the feature's bits, then two flags
_CATEGORICAL, _NAN_RIGHT = 29, 30


@njit(nogil=True, cache=True)
def _category_goes_right(x, nan_right, left_bits, known_bits):  # pragma: no cover  (compiled)
    """HGB's categorical split: the left bitset's codes go left, other known codes right, the rest as NaN."""
    if np.isnan(x) or x < 0:
        return nan_right == 1
    code = np.uint8(x)
    if (left_bits[code >> 5] >> (code & 31)) & 1:
        return False
    if (known_bits[code >> 5] >> (code & 31)) & 1:
        return True
    return nan_right == 1


@njit(nogil=True, cache=True)
def _walk_levels(X, roots, depths, nodes, thresholds, left_bitsets, known_bitsets, known_row, value,
                 out):  # pragma: no cover  (compiled: exercised through the tests)
    """Add each tree's leaf value to ``out[i]`` for every row of ``X``, trees in order: per tree, every row moves
    down one level per pass (``depths[t]`` passes; a leaf's children are itself)."""
    at = np.empty(X.shape[0], dtype=np.int32)
    for t in range(roots.shape[0]):
        at[:] = roots[t]
        for _ in range(depths[t]):
            for i in range(X.shape[0]):
                node = at[i]
                packed = nodes[node, 0]
                feature = packed & _FEATURE
                x = X[i, feature]
                nan_right = (packed >> _NAN_RIGHT) & 1
                if (packed >> _CATEGORICAL) & 1:  # the same way for every row at this node
                    go_right = _category_goes_right(x, nan_right, left_bitsets[nodes[node, 3]],
                                                    known_bitsets[known_row[feature]])
                else:
                    go_right = (x > thresholds[node]) | ((x != x) & (nan_right == 1))
                at[i] = nodes[node, 1 + go_right]
        for i in range(X.shape[0]):
            for k in range(out.shape[1]):
                out[i, k] += value[at[i], k]


def _packed_tree(leaf, feature, left, right, nan_right, threshold, first: int, categorical=None, bitset_row=None):
    """One tree as int32 rows ``[feature | categorical << 29 | NaN-right << 30, left, right, x, threshold]``, node
    ids shifted by ``first``, a leaf's children itself. The threshold is a float32 (x: its bits, 4 int32 a node)
    when ``categorical`` is None, else a float64 in the last two (x: the categorical split's bitset row, 6 int32)."""
    ids = np.arange(len(leaf)) + first
    flags = (nan_right & ~leaf).astype(np.int32) << _NAN_RIGHT
    threshold = np.where(leaf, np.inf, threshold)
    packed = np.zeros((len(leaf), 4 if categorical is None else 6), dtype=np.int32)
    packed[:, 1] = np.where(leaf, ids, left + first)
    packed[:, 2] = np.where(leaf, ids, right + first)
    if categorical is None:
        # scikit-learn's tree thresholds are float32 values already; any other rounds down to one, which decides
        # every float32 x alike (astype rounds to nearest: step down where it rounded up)
        down = threshold.astype(np.float32)
        packed[:, 3] = np.where(down.astype(np.float64) > threshold, np.nextafter(down, np.float32(-np.inf)), down).view(np.int32)
    else:
        flags |= (categorical & ~leaf).astype(np.int32) << _CATEGORICAL
        packed[:, 3] = np.where(categorical, bitset_row, 0)
        packed[:, 4:].view(np.float64)[:, 0] = threshold
    packed[:, 0] = np.where(leaf, 0, feature) | flags
    return packed


class PackedForest:
    """Trees (``_packed_tree``'s arguments and each one's depth) packed into one node array; ``raw(X)`` is the sum of
    leaf values (``value``: nodes × outputs) over trees."""

    def __init__(self, trees: list[dict], value: np.ndarray, bitsets=(_NO_BITSETS, _NO_BITSETS),
                 known_row: np.ndarray | None = None):
        self.roots = np.cumsum([0] + [len(t["leaf"]) for t in trees[:-1]]).astype(np.int32)
        self.depths = np.array([t["depth"] for t in trees], dtype=np.int32)
        self.nodes = np.ascontiguousarray(np.concatenate([
            _packed_tree(**{k: v for k, v in t.items() if k != "depth"}, first=int(r)) for t, r in zip(trees, self.roots)]))
        wide = self.nodes.shape[1] == 6
        self.thresholds = self.nodes.view(np.float64)[:, 2] if wide else self.nodes.view(np.float32)[:, 3]
        self.left_bitsets = np.ascontiguousarray(bitsets[0], dtype=np.uint32)
        self.known_bitsets = np.ascontiguousarray(bitsets[1], dtype=np.uint32)
        self.known_row = np.zeros(1, np.int32) if known_row is None else np.asarray(known_row, dtype=np.int32)
        self.value = np.ascontiguousarray(value, dtype=np.float64)

    def raw(self, X: np.ndarray, start: np.ndarray | float = 0.0) -> np.ndarray:
        """``start`` plus every tree's leaf value, per row (rows × outputs); X as float32 for narrow nodes (a number
        beyond float32's range becomes its infinity, as in scikit-learn's own cast)."""
        with np.errstate(over="ignore"):
            X = np.asarray(X, dtype=np.float32 if self.thresholds.dtype == np.float32 else np.float64)
        out = np.empty((X.shape[0], self.value.shape[1]))
        out[:] = start
        _over_cores(self._walk, X, out)
        return out

    def _walk(self, X, out):
        _walk_levels(X, self.roots, self.depths, self.nodes, self.thresholds, self.left_bitsets, self.known_bitsets,
                     self.known_row, self.value, out)


def _over_cores(walk, X: np.ndarray, out: np.ndarray) -> None:
    """``walk(X, out)`` on the calling thread, or for a big matrix (evaluation, a front-door stream) over row
    ranges split across the cores, the GIL released."""
    if X.shape[0] <= _SPLIT_ROWS or _CORES == 1:
        walk(X, out)
        return
    bounds = np.linspace(0, X.shape[0], _CORES + 1).astype(int)
    with ThreadPoolExecutor(_CORES) as pool:
        list(pool.map(lambda k: walk(X[bounds[k]:bounds[k + 1]], out[bounds[k]:bounds[k + 1]]), range(_CORES)))


def _hgb_tree(nodes: np.ndarray, bitset_shift: int) -> dict:
    """A ``_packed_tree`` argument set of one HGB predictor's nodes, its bitset rows shifted to the stacked ones."""
    return {"leaf": nodes["is_leaf"].astype(bool), "feature": nodes["feature_idx"], "left": nodes["left"].astype(np.int64),
            "right": nodes["right"].astype(np.int64), "nan_right": ~nodes["missing_go_to_left"].astype(bool),
            "threshold": nodes["num_threshold"], "categorical": nodes["is_categorical"].astype(bool),
            "bitset_row": nodes["bitset_idx"].astype(np.int64) + bitset_shift, "depth": int(nodes["depth"].max())}


class HgbForest:
    """Histogram gradient boosting (binary classifier or regressor) with its categorical re-encoding."""

    def __init__(self, est):
        known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        left_bitsets = [it[0].raw_left_cat_bitsets for it in est._predictors]
        # each tree numbers its categorical splits' bitsets from 0: stack them and shift every tree's rows
        shift = np.cumsum([0] + [len(b) for b in left_bitsets])
        trees = [_hgb_tree(it[0].nodes, int(s)) for it, s in zip(est._predictors, shift)]
        value = np.concatenate([it[0].nodes["value"] for it in est._predictors])[:, None]
        stacked = np.concatenate([b for b in left_bitsets if len(b)]) if shift[-1] else _NO_BITSETS
        self.forest = PackedForest(trees, value, (stacked, known if len(known) else _NO_BITSETS), f_idx_map)
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
        trees = _trees(est)
        value = np.concatenate([_kept_values(t, self.classifier, self.n_classes) for t in trees])
        self.forest = PackedForest([{"leaf": t.children_left < 0, "feature": t.feature, "left": t.children_left,
                                     "right": t.children_right, "nan_right": ~np.asarray(t.missing_go_to_left, dtype=bool),
                                     "threshold": t.threshold, "depth": t.max_depth} for t in trees], value)
        self.n_trees = len(trees)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = self.forest.raw(X)  # as float32, as scikit-learn walks
        if self.n_trees > 1:
            out /= self.n_trees
        return out[:, 0] if out.shape[1] == 1 else out.max(axis=1)


def _trees(est) -> list:
    """The fitted ``tree_`` of a decision tree, or of each member of a forest."""
    return [m.tree_ for m in (est.estimators_ if hasattr(est, "estimators_") else [est])]


def _kept_values(tree, classifier: bool, n_classes: int) -> np.ndarray:
    """The scores kept per node: a binary classifier's class-1 fraction, every class's for more, a regressor's
    value."""
    return _leaf_values(tree, classifier)[:, slice(1, 2) if n_classes == 2 else slice(0, n_classes)]


def leaf_scores(est) -> np.ndarray:
    """Per node of a single decision tree, the score ``SkTreeForest`` gives a row ending there (for more than two
    classes, the largest class fraction)."""
    classifier = isinstance(est, DecisionTreeClassifier)
    return _kept_values(est.tree_, classifier, len(est.classes_) if classifier else 1).max(axis=1)


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
