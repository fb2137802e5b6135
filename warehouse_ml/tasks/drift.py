"""Drift and skew statistics, training snapshots and deploy decisions: pure NumPy/SciPy kernels.

A *profile* summarises one column without keeping any row: a numeric column keeps quantile bin edges (deciles of
the training data) with the count of rows per bin; a text column keeps its category frequencies (the model's
categories, then one count for every other value); both keep the NULL count. Every distribution is a vector of
counts over the same bins, so a new relation is summarised by counting rows per stored bin (done in SQL by the
caller) and compared with:

* ``psi`` (population stability index) for numeric columns and predictions: sum((a - e) * ln(a / e)) over
  bins, proportions floored at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
* ``jensen_shannon`` for categories: the Jensen-Shannon distance (base 2, in [0, 1]) between the frequencies.
* ``ks`` (two-sample Kolmogorov-Smirnov on the binned CDFs, a lower bound of the exact statistic) and
  ``chi_square`` (test of homogeneity of the bin counts) as significance tests: the value is the p-value and a
  check is flagged when it falls below the threshold. On large samples they flag differences too small to
  matter, which is why the effect sizes above are the defaults.

Nothing here imports DuckDB: the same kernels run on another engine.
"""
from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import roc_auc_score

from ..errors import InvalidArgument
from .features import encode_column
from .privacy import hash_categories

NUMERIC_BINS = 10
PROFILE_SAMPLE = 100_000  # rows sampled (seeded) to place the bin edges and count per bin at training time
PROPORTION_FLOOR = 1e-4
NUMERIC_STATISTICS = ("psi", "ks")
CATEGORICAL_STATISTICS = ("jensen_shannon", "chi_square")
# Defaults: effect sizes flag a shift at the usual rule-of-thumb values; tests at a 5% significance level;
# decay is the relative loss of the model's main metric (0.1 = 10% worse than on the training hold-out; at 0.05 the
# noise of a few hundred hold-out rows alone raised 12% false alarms on fresh samples).
DEFAULT_THRESHOLDS = {"psi": 0.2, "jensen_shannon": 0.1, "ks": 0.05, "chi_square": 0.05, "decay": 0.1}
TESTS = ("ks", "chi_square")  # statistics whose value is a p-value (drifted when below the threshold)
# An effect size (psi, jensen_shannon) flags a shift only when a chi-square test on the same bin counts also says
# it is not sampling noise: on a few hundred rows PSI alone passed 0.2 by chance (real data, random halves).
NOISE_P_VALUE = 0.01
SEED = 0


# -- profiles ----------------------------------------------------------------------------------------------------
def sample_rows(n: int, limit: int = PROFILE_SAMPLE, seed: int = SEED) -> np.ndarray | None:
    """Row positions of a seeded sample of at most ``limit`` rows (None when every row fits)."""
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def profile_column(spec: dict, col) -> dict:
    """The profile of one feature column (Arrow) as the model sees it (``spec`` from the Featurizer)."""
    if spec["kind"] == "numeric":
        return numeric_profile(spec["name"], encode_column(col, spec))
    profile = categorical_profile(spec["name"], spec["categories"], category_codes(col, spec))
    if "hash_salt" in spec:  # already stored with the model's features; the counts need it to match digests
        profile["hash_salt"] = spec["hash_salt"]
    return profile


def as_categories(col, spec: dict) -> pa.Array:
    """A text column as the model stores its categories: the values, or their salted digests for a personal
    column kept with ``personal := 'hash'``."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return hash_categories(col, spec["hash_salt"]) if "hash_salt" in spec else col


def category_codes(col, spec: dict) -> np.ndarray:
    """Each row's position in the model's categories, -1 for another value, -2 for NULL."""
    categories = spec["categories"]
    col = as_categories(col, spec)
    codes = pc.index_in(col, value_set=pa.array(categories, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
    codes = codes.astype(np.int64)
    codes[pc.is_null(col).to_numpy(zero_copy_only=False)] = -2
    return codes


def numeric_profile(name: str, values: np.ndarray, n_bins: int = NUMERIC_BINS) -> dict:
    """Decile edges (deduplicated, so discrete columns get fewer bins) and the counts per bin and of NULLs."""
    x = np.asarray(values, dtype=np.float64)
    present = x[np.isfinite(x)]  # edges from finite values: an infinity falls in the first or last bin
    if len(present):
        edges = np.unique(np.quantile(present, np.arange(1, n_bins) / n_bins))
    else:
        edges = np.array([], dtype=np.float64)
    return {"name": name, "kind": "numeric", "edges": edges.tolist(),
            "counts": numeric_counts(x, edges).tolist()}


def numeric_counts(values: np.ndarray, edges) -> np.ndarray:
    """Counts over the bins of ``edges`` (bin i holds edges[i-1] <= x < edges[i]) followed by the NULL count."""
    x = np.asarray(values, dtype=np.float64)
    missing = np.isnan(x)
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.bincount(np.searchsorted(edges, x[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def categorical_profile(name: str, categories: list[str], codes: np.ndarray) -> dict:
    """Frequencies of the model's categories. ``codes`` holds each row's category position, -1 for a value
    outside the list and -2 for NULL; the counts end with 'other' and NULL."""
    return {"name": name, "kind": "categorical", "categories": list(categories),
            "counts": categorical_counts(codes, len(categories)).tolist()}


def categorical_counts(codes: np.ndarray, n_categories: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    known = np.bincount(codes[codes >= 0], minlength=n_categories)
    return np.concatenate([known, [(codes == -1).sum(), (codes == -2).sum()]]).astype(np.int64)


def bin_labels(profile: dict) -> list[str]:
    """A readable name per count of a profile, for notes ('[12.5, 40)', 'paid', 'other', 'NULL')."""
    if profile["kind"] == "numeric":
        e = [f"{v:.4g}" for v in profile["edges"]]
        if not e:
            return ["all values", "NULL"]
        return [f"< {e[0]}"] + [f"[{a}, {b})" for a, b in zip(e, e[1:])] + [f">= {e[-1]}", "NULL"]
    return list(profile["categories"]) + ["other", "NULL"]


# -- statistics ---------------------------------------------------------------------------------------------------
def _proportions(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else c


def psi(expected, actual) -> float:
    e = np.maximum(_proportions(expected), PROPORTION_FLOOR)
    a = np.maximum(_proportions(actual), PROPORTION_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected, actual) -> float:
    p, q = _proportions(expected), _proportions(actual)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    return float(jensenshannon(p, q, base=2))


def ks_p_value(expected, actual) -> float:
    """Two-sample Kolmogorov-Smirnov over the non-NULL bins: the largest gap between the two binned CDFs
    (a lower bound of the exact statistic), with the asymptotic p-value for the two sample sizes."""
    e, a = np.asarray(expected, dtype=np.float64)[:-1], np.asarray(actual, dtype=np.float64)[:-1]
    n, m = e.sum(), a.sum()
    if n == 0 or m == 0:
        return float("nan")
    d = float(np.max(np.abs(np.cumsum(e) / n - np.cumsum(a) / m)))
    return float(stats.kstwobign.sf(d * np.sqrt(n * m / (n + m))))


def chi_square_p_value(expected, actual) -> float:
    """Chi-square test that both count vectors come from one distribution (bins empty in both dropped)."""
    table = np.vstack([np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False)[1])


STATISTICS = {"psi": psi, "jensen_shannon": js_distance, "ks": ks_p_value, "chi_square": chi_square_p_value}


def compare(statistic: str, expected, actual, threshold: float) -> tuple[float, bool]:
    """(value, drifted): tests (p-values) drift below the threshold; effect sizes above it, when the counts'
    chi-square test also rejects sampling noise (p < NOISE_P_VALUE)."""
    value = STATISTICS[statistic](expected, actual)
    if np.isnan(value):
        return value, False
    if statistic in TESTS:
        return value, bool(value < threshold)
    return value, bool(value > threshold and chi_square_p_value(expected, actual) < NOISE_P_VALUE)


def largest_shift(profile: dict, expected, actual) -> str:
    """Which bin moved most, in words: "'paid' 30.0% -> 52.1%"."""
    p, q = _proportions(expected), _proportions(actual)
    if p.sum() == 0 or q.sum() == 0:
        return "no rows to compare"
    i = int(np.argmax(np.abs(q - p)))
    return f"largest change in {bin_labels(profile)[i]}: {p[i]:.1%} -> {q[i]:.1%}"


def thresholds(given) -> dict[str, float]:
    """Per-statistic thresholds: the defaults, a single number for every statistic but decay, or a struct
    naming some of them ({psi: 0.25, decay: 0.1})."""
    out = dict(DEFAULT_THRESHOLDS)
    if given is None:
        return out
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        if not 0 < given:
            raise InvalidArgument("threshold", f"must be a positive number, got {given!r}", "Use e.g. threshold := 0.2")
        return {k: (v if k == "decay" else float(given)) for k, v in out.items()}
    if isinstance(given, dict):
        for k, v in given.items():
            if k not in out:
                raise InvalidArgument("threshold", f"names an unknown statistic '{k}'",
                                      f"Use a number or a struct of: {', '.join(out)}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v:
                raise InvalidArgument("threshold", f"{k} must be a positive number, got {v!r}",
                                      f"Use e.g. threshold := {{{k}: {DEFAULT_THRESHOLDS[k]}}}")
            out[k] = float(v)
        return out
    raise InvalidArgument("threshold", f"expected a number or a struct, got {given!r}",
                          "Use e.g. threshold := 0.2 or threshold := {psi: 0.25, decay: 0.1}")


# -- model quality -----------------------------------------------------------------------------------------------
def primary_metric(task: str, metrics: dict) -> tuple[str, bool] | None:
    """The metric a model is judged by, and whether higher is better: ROC AUC for classes (accuracy when the
    hold-out lacks a class), RMSE for regression."""
    if task == "regression":
        return ("rmse", False) if "rmse" in metrics else None
    for name in ("roc_auc", "accuracy"):
        if name in metrics:
            return name, True
    return None


def metric_value(task: str, reference_metrics: dict, y: np.ndarray, scores: np.ndarray, labels: np.ndarray | None,
                 classes: list | None) -> tuple[str, bool, float, float] | None:
    """(metric, higher is better, value on the training hold-out, value on these labelled rows) for the model's
    main metric, computed from its scores (``labels``: predicted classes, for accuracy)."""
    key = primary_metric(task, reference_metrics)
    if key is None or len(y) == 0:
        return None
    name, higher = key
    if name == "rmse":
        current = float(np.sqrt(np.mean((scores - y.astype(np.float64)) ** 2)))
    elif name == "roc_auc" and classes is not None and len(classes) == 2:
        positive = y.astype(str) == str(classes[1])
        if positive.all() or not positive.any():
            return None  # AUC needs both classes among the labelled rows
        current = float(roc_auc_score(positive, scores))
    else:
        name, higher = "accuracy", True
        if labels is None or name not in reference_metrics:
            return None
        current = float(np.mean(np.asarray(labels).astype(str) == y.astype(str)))
    return name, higher, float(reference_metrics[name]), current


def relative_decay(metric: str, higher_is_better: bool, reference: float, current: float) -> float:
    """How much worse ``current`` is than ``reference``, as a fraction of the reference (negative: better)."""
    scale = max(abs(reference), 1e-12)
    return float((reference - current) / scale if higher_is_better else (current - reference) / scale)


DEPLOY_POLICIES = ("if_better", "always", "never")


def deploy_decision(policy: str, task: str, new: dict, active: dict | None, active_version: int | None,
                    comparable: str | None = None) -> tuple[bool, str]:
    """Whether a new version becomes active, and a note saying what was compared and why.

    ``new`` and ``active`` are metrics of the new and active versions on the same hold-out; ``comparable`` is
    the reason they could not be compared, when that is so (the new version is then deployed)."""
    if policy == "always":
        return True, "deploy := 'always': the new version is active"
    if policy == "never":
        return False, "deploy := 'never': stored, not active (activate it with ml_deploy)"
    if active_version is None:
        return True, "deployed: the model had no active version"
    if comparable is not None:
        return True, f"deployed: version {active_version} could not be scored on the new hold-out ({comparable})"
    key = primary_metric(task, new)
    if key is None or key[0] not in (active or {}):
        return True, f"deployed: no metric common to both versions to compare on (new: {sorted(new)})"
    name, higher = key
    a, b = float(active[name]), float(new[name])
    better = b >= a if higher else b <= a
    verdict = "deployed" if better else "not deployed (kept the active version)"
    return better, (f"{verdict}: on the same hold-out the new version's {name} is {b:.4f} against {a:.4f} for "
                    f"active version {active_version} (deploy := 'if_better')")


# -- continual learning ------------------------------------------------------------------------------------------
# Algorithms updated in place on new rows (trees added to a forest, a warm-started network); every other one is
# retrained (on a rolling window when one is given). Histogram gradient boosting is not among them: its warm start
# re-bins the new rows and scores the earlier trees on those new bins, which is only right when the data did not
# move, the one case an update is not needed.
UPDATABLE = {"random_forest": "added_trees", "mlp": "warm_start"}


def update_estimator(algorithm: str, est, X: np.ndarray, y: np.ndarray, trees: int | None = None,
                     epochs: int | None = None):
    """A copy of a fitted model updated on new rows, and a note saying how; ValueError when it cannot be."""
    if algorithm == "random_forest":
        return add_trees(est, X, y, trees)
    new = est.warm_started(X, y, epochs or 5)
    return new, new.notes_[0]


def add_trees(est, X: np.ndarray, y: np.ndarray, trees: int | None = None):
    """A copy of a fitted random forest with ``trees`` more trees (half as many again by default) grown on the
    new rows, so the forest votes with both the old and the new data; (forest, note)."""
    if hasattr(est, "classes_") and not np.array_equal(np.unique(y).astype(str), np.asarray(est.classes_).astype(str)):
        raise ValueError(f"the new rows hold classes {np.unique(y).tolist()}, the model {np.asarray(est.classes_).tolist()}")
    est = copy.deepcopy(est)
    before = est.n_estimators
    more = max(1, before // 2) if trees is None else int(trees)
    est.set_params(warm_start=True, n_estimators=before + more)
    est.fit(X, y)
    est.set_params(warm_start=False)
    return est, f"added {more} trees grown on {len(y):,} new rows to the {before} of the active version"
