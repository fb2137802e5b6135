"""Key drivers (contribution analysis): which segments explain a metric's change between a control and a test period.

Pure kernels over NumPy arrays (no database), so they run unchanged on Spark later. The input is the relation
already aggregated to one row per combination of dimension values and period (a ``CellTable``: the heavy
GROUP BY runs in the database); the search and the statistics run here on that much smaller table.

**Segments** are conjunctions of dimension values (``channel=paid_search AND device=mobile``) up to
``max_depth`` dimensions. The search is Apriori-style: a segment is kept only when its share of rows (both
periods together) reaches ``min_support``, and a segment of depth k is only formed from rows whose every
depth k-1 parent was kept (a child never has more rows than its parents, so nothing frequent is missed).
Support uses row counts only, never the metric, so pruning does not bias the tests below.

**Metrics.** A summable metric (revenue, orders) is the sum of a column; a segment's contribution is its own
change, and contributions of the values of one dimension add up to the total change. A ratio metric is
sum(numerator) / sum(denominator) (conversion = purchases / sessions). Its change splits exactly into a rate
effect and a mix effect per segment, with the midpoint (Shapley) weights::

    rate_s = (w0_s + w1_s) / 2 * (r1_s - r0_s)          w = the segment's share of the denominator
    mix_s  = (w1_s - w0_s) * ((r0_s + r1_s) / 2 - (R0 + R1) / 2)

so that over any partition of the rows (the values of one dimension) the contributions add up to R1 - R0.
A segment absent from one period has no rate there; its rate is taken as unchanged and all of its
contribution is mix.

**Significance.** Each segment's own change is tested with a two-sided z-test: for a summable metric the
difference of the two sums with variance sum(y^2) per period (rows arrive as a Poisson process); for a ratio
metric the difference of the two ratios with the delta-method variance sum((y - r d)^2) / sum(d)^2 per period.
p-values are corrected for the number of segments tested (Holm by default; ``correction`` takes any
``statsmodels.stats.multitest.multipletests`` method).

**Explained segments and ranking.** Between a significant segment (the parent) and a significant segment inside it
(the child: more dimension values fixed) that moves the same way, the rest of the parent (parent minus child:
their sums are differences) decides which explains which. With z_rest the rest's change over its standard error and z_split the difference between
the child's change and the rest's over its standard error (relative changes of sums, changes of ratios):

* z_split > z_rest (the child differs from the rest more than the rest moved) and the child carries at least half
  of the parent's contribution: the parent is ``explained_by`` the child ("paid search moved" because "paid
  search on mobile" did);
* otherwise the child is ``explained_by`` the parent: it is a slice of a wider change ("paid search on mobile in
  the south" moved because all of "paid search on mobile" did).

A significant segment explained by no other is a primary driver. Rows are ranked primary drivers first, then the
other significant segments, then the rest, each by the size of the contribution.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import stats as sps

from ..errors import InvalidArgument

SUM_STATS = ("n", "y", "yy")
RATIO_STATS = ("n", "y", "yy", "d", "dd", "yd")
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni", "by": "fdr_by",
               "fdr_by": "fdr_by", "hommel": "hommel", "sidak": "sidak", "holm-sidak": "holm-sidak"}
MAX_CUBOIDS = 5000  # combinations of dimensions one call may scan
_DENSE_CELLS = 1 << 20  # cuboids with at most this many possible cells (and few per row) are grouped by bincount


@dataclass
class CellTable:
    """A relation aggregated to one row per (combination of dimension values, period).

    ``codes[j]`` holds, per row, the code of dimension j's value in ``labels[j]`` (None is a NULL value);
    ``is_test`` says which period the row belongs to; ``stats`` holds per row the row count ``n``, the sums of
    the metric ``y`` and its square ``yy`` and, for a ratio metric, of the denominator ``d``, ``dd`` and ``yd``.
    """

    codes: list[np.ndarray]
    labels: list[list]
    is_test: np.ndarray
    stats: dict[str, np.ndarray]

    @property
    def ratio(self) -> bool:
        return "d" in self.stats


@dataclass
class DriversResult:
    rows: pa.Table
    notes: list[str]


def _strictly_between_0_and_1(name: str, value, what: str, fix: str) -> float:
    """``value`` as a float in (0, 1), or InvalidArgument naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not 0 < x < 1:
        raise InvalidArgument(name, f"expected {what} strictly between 0 and 1, got {value!r}", fix)
    return x


def check_options(max_depth, min_support, alpha, correction, max_segments, n_dimensions: int) -> tuple:
    """Validated (max_depth, min_support, alpha, multipletests method, max_segments)."""
    try:
        depth = int(max_depth)
    except (TypeError, ValueError, OverflowError):
        depth = None
    if depth is None or depth != max_depth or isinstance(max_depth, bool) or not 1 <= depth <= 6:
        raise InvalidArgument("max_depth", f"expected a whole number from 1 to 6, got {max_depth!r}",
                              "Pass e.g. max_depth := 3 (segments of up to three dimension values)")
    depth = min(depth, n_dimensions)  # deeper than the dimensions given finds nothing more
    n_cuboids = sum(math.comb(n_dimensions, k) for k in range(1, depth + 1))
    if n_cuboids > MAX_CUBOIDS:
        raise InvalidArgument("dimensions", f"{n_dimensions} dimensions up to max_depth := {depth} make {n_cuboids:,} "
                              f"combinations of dimensions to scan (the limit is {MAX_CUBOIDS:,})",
                              "Pass fewer dimensions or lower max_depth")
    support = _strictly_between_0_and_1("min_support", min_support, "a share of rows",
                                        "Pass e.g. min_support := 0.01 (segments with at least 1% of the rows)")
    a = _strictly_between_0_and_1("alpha", alpha, "a number", "Pass e.g. alpha := 0.05")
    method = CORRECTIONS.get(str(correction).lower())
    if method is None:
        raise InvalidArgument("correction", f"unknown correction {correction!r}",
                              "Use 'holm' (family-wise error), 'bh' (false discovery rate) or 'bonferroni'")
    try:
        limit = int(max_segments)
    except (TypeError, ValueError, OverflowError):
        limit = 0
    if limit != max_segments or limit < 1:
        raise InvalidArgument("max_segments", f"expected a positive whole number, got {max_segments!r}",
                              "Pass e.g. max_segments := 10000")
    return depth, support, a, method, limit


# -- grouping ------------------------------------------------------------------------------------------------------
def _radix(cards: list[int]) -> np.ndarray:
    """Mixed-radix weights so that sum(code_j * radix_j) numbers the cells of a cuboid without collisions."""
    return np.concatenate([[1], np.cumprod(cards[:0:-1])])[::-1].astype(np.int64)


def _aggregate(key: np.ndarray, is_test: np.ndarray, values: np.ndarray, space: int):
    """Per occupied cell: (cell keys, sums of shape (cells, 2 periods, stats))."""
    if space <= min(_DENSE_CELLS, 2 * len(key) + 4096):
        cell_of_row, n_cells, present = key, space, None
    else:
        present, cell_of_row = np.unique(key, return_inverse=True)
        n_cells = len(present)
    slot = cell_of_row * 2 + is_test
    sums = np.stack([np.bincount(slot, weights=values[:, s], minlength=2 * n_cells) for s in range(values.shape[1])],
                    axis=-1).reshape(n_cells, 2, values.shape[1])
    if present is None:
        present = np.flatnonzero(sums[:, :, 0].sum(axis=1) > 0)
        sums = sums[present]
    return present, sums


def _decode(keys: np.ndarray, dims: tuple[int, ...], cards: list[int], n_dims: int) -> np.ndarray:
    """Cell keys back to a (cells, n_dims) code matrix with -1 for dimensions the segment leaves free."""
    out = np.full((len(keys), n_dims), -1, dtype=np.int64)
    radix = _radix([cards[d] for d in dims])
    for d, r in zip(dims, radix):
        out[:, d] = (keys // r) % cards[d]
    return out


def search_segments(cells: CellTable, max_depth: int, min_support: float, max_segments: int):
    """Apriori search of the segments with support >= min_support: (codes (m, dims), sums (m, 2, stats)).

    Depth 1 keeps the frequent values of each dimension and recodes the rest to one "other" code that never forms a
    segment; a combination of dimensions is only scanned when each of its parent combinations kept a segment, and
    a cell is only kept when it is frequent itself (then so are all its parents). Raises InvalidArgument naming what
    to change when the search would exceed ``max_segments`` segments (``check_options`` bounds the combinations)."""
    names = RATIO_STATS if cells.ratio else SUM_STATS
    values = np.stack([np.asarray(cells.stats[s], dtype=np.float64) for s in names], axis=1)
    is_test = np.asarray(cells.is_test, dtype=np.int64)
    n_dims = len(cells.codes)
    threshold = min_support * values[:, 0].sum()
    codes, cards, frequent_values = [], [], []
    for j, c in enumerate(cells.codes):  # depth 1: frequent values first, everything else is "other"
        c = np.asarray(c, dtype=np.int64)
        support = np.bincount(c, weights=values[:, 0], minlength=len(cells.labels[j]))
        keep = np.flatnonzero(support >= threshold)
        recode = np.full(len(support), len(keep), dtype=np.int64)
        recode[keep] = np.arange(len(keep))
        codes.append(recode[c])
        cards.append(len(keep) + 1)
        frequent_values.append(keep)
    found_codes, found_sums, kept = [], [], {()}
    for depth in range(1, max_depth + 1):
        next_kept = set()
        for dims in itertools.combinations(range(n_dims), depth):
            if any(dims[:i] + dims[i + 1:] not in kept for i in range(depth)):
                continue  # a parent combination kept no segment: Apriori prunes this one whole
            radix = _radix([cards[d] for d in dims])
            key = codes[dims[0]] * radix[0]
            for d, r in zip(dims[1:], radix[1:]):
                key = key + codes[d] * r
            cell_keys, sums = _aggregate(key, is_test, values, int(np.prod([cards[d] for d in dims], dtype=np.float64)))
            found = _decode(cell_keys, dims, cards, n_dims)
            frequent = sums[:, :, 0].sum(axis=1) >= threshold
            for d in dims:
                frequent &= found[:, d] < cards[d] - 1  # the "other" code is no segment
            if not frequent.any():
                continue
            next_kept.add(dims)
            found = found[frequent]
            for d in dims:
                found[:, d] = frequent_values[d][found[:, d]]
            found_codes.append(found)
            found_sums.append(sums[frequent])
            if sum(len(f) for f in found_codes) > max_segments:
                raise InvalidArgument("max_segments", f"the search reached more than {max_segments:,} segments at depth "
                                      f"{depth} (min_support := {min_support:g}, max_depth := {max_depth})",
                                      "Raise min_support, lower max_depth, pass fewer dimensions, or raise max_segments")
        kept = next_kept
        if not kept:
            break
    if not found_codes:
        return np.zeros((0, n_dims), dtype=np.int64), np.zeros((0, 2, len(names)))
    return np.concatenate(found_codes), np.concatenate(found_sums)


# -- statistics ----------------------------------------------------------------------------------------------------
def adjust_p_values(p: np.ndarray, method: str) -> np.ndarray:
    """Multiple-testing adjusted p-values. Holm's step-down is written out (it equals statsmodels' to rounding)
    because statsmodels' holm branch calls gc.collect(), which costs ~0.2 s per query in a large process."""
    if method != "holm":
        from statsmodels.stats.multitest import multipletests

        return multipletests(p, method=method)[1]
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)), 1.0)
    out = np.empty(len(p))
    out[order] = stepped
    return out


def _p_values(diff: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values; an exact (zero-variance) difference is certain either way."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(diff) / np.sqrt(var)
    p = 2 * sps.norm.sf(z)
    exact = ~(var > 0)
    p[exact] = np.where(diff[exact] == 0, 1.0, 0.0)
    return p


def _ratio_parts(sums: np.ndarray):
    """Per segment and period: the ratio and the delta-method variance of the ratio (NaN without denominator)."""
    y, yy, d, dd, yd = (sums[..., i] for i in range(1, 6))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d != 0, y / d, np.nan)
        var = np.maximum(yy - 2 * r * yd + r * r * dd, 0) / (d * d)
    return r, var


def segment_statistics(sums: np.ndarray, totals: np.ndarray, ratio: bool) -> dict[str, np.ndarray]:
    """Control and test value, difference, contribution (with rate and mix for ratios), the raw p-value."""
    if not ratio:
        c, t = sums[:, 0, 1], sums[:, 1, 1]
        diff = t - c
        return dict(control=c, test=t, difference=diff, contribution=diff, rate=None, mix=None,
                    p=_p_values(diff, sums[:, 0, 2] + sums[:, 1, 2]))
    r, var = _ratio_parts(sums)
    big_r = totals[:, 1] / totals[:, 3]
    w = sums[:, :, 3] / totals[:, 3]
    r0 = np.where(np.isnan(r[:, 0]), r[:, 1], r[:, 0])  # absent from a period: no rate change there
    r1 = np.where(np.isnan(r[:, 1]), r[:, 0], r[:, 1])
    rate = (w[:, 0] + w[:, 1]) / 2 * (r1 - r0)
    mix = (w[:, 1] - w[:, 0]) * ((r0 + r1) / 2 - big_r.mean())
    diff = r[:, 1] - r[:, 0]
    testable = ~np.isnan(diff)
    p = np.full(len(diff), np.nan)
    p[testable] = _p_values(diff[testable], (var[:, 0] + var[:, 1])[testable])
    return dict(control=r[:, 0], test=r[:, 1], difference=diff, contribution=rate + mix, rate=rate, mix=mix, p=p)


def _change(sums: np.ndarray, ratio: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's change and its standard error: the relative change of a sum, or the change of a ratio
    (NaN where a period has nothing to compare)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if ratio:
            r, var = _ratio_parts(sums)
            return r[:, 1] - r[:, 0], np.sqrt(var[:, 0] + var[:, 1])
        s0, s1 = sums[:, 0, 1], sums[:, 1, 1]
        growth = np.where(s0 != 0, s1 / s0, np.nan)
        return growth - 1, np.sqrt(sums[:, 1, 2] + growth ** 2 * sums[:, 0, 2]) / np.abs(s0)


def _explained_by(codes: np.ndarray, sums: np.ndarray, contribution: np.ndarray, significant: np.ndarray,
                  ratio: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each segment, the index of the segment that explains it (-1 for none) and whether that one is a more
    specific segment carrying its change (True) or a wider one whose change it shares (False); see the module
    docstring. Pairs are every significant segment with each significant segment that contains it."""
    index = {row.tobytes(): i for i, row in enumerate(codes)}
    child_idx, parent_idx = [], []
    for j in np.flatnonzero(significant & ((codes >= 0).sum(axis=1) > 1)):
        fixed = np.flatnonzero(codes[j] >= 0)
        for k in range(1, len(fixed)):
            for dropped in itertools.combinations(fixed, k):
                parent = codes[j].copy()
                parent[list(dropped)] = -1
                i = index.get(parent.tobytes())
                if i is not None and significant[i] and np.sign(contribution[i]) == np.sign(contribution[j]):
                    child_idx.append(j)
                    parent_idx.append(i)
    explained = np.full(len(codes), -1)
    by_child = np.zeros(len(codes), dtype=bool)
    if not child_idx:
        return explained, by_child
    narrow, wide = np.array(child_idx), np.array(parent_idx)
    child_change, child_se = _change(sums[narrow], ratio)
    rest_change, rest_se = _change(sums[wide] - sums[narrow], ratio)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_rest = np.abs(rest_change) / rest_se  # did the rest of the parent move at all?
        z_split = np.abs(child_change - rest_change) / np.hypot(child_se, rest_se)  # does the child differ from it?
    comparable = np.isfinite(z_rest) & np.isfinite(z_split)
    carries = comparable & (z_split > z_rest) & (np.abs(contribution[narrow]) >= 0.5 * np.abs(contribution[wide]))
    shares = comparable & (z_split <= z_rest)
    for keep, target, source, is_child in ((shares, narrow, wide, False), (carries, wide, narrow, True)):
        t, src = target[keep], source[keep]
        order = np.argsort(np.abs(contribution[src]))  # the largest explaining segment is written last, so it wins
        explained[t[order]] = src[order]
        by_child[t[order]] = is_child
    return explained, by_child


# -- words ---------------------------------------------------------------------------------------------------------
def _condition(name: str, value) -> str:
    return f"{name} IS NULL" if value is None else f"{name}={value}"


def _number(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "none"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def _describe(words: str, contribution: float, share: float, control: float, test: float, total_change: float,
              metric_name: str, ratio: bool, rate: float | None, mix: float | None, p: float, significant: bool,
              explained: str | None, by_child: bool) -> str:
    direction = "drop" if total_change < 0 else "rise"
    if total_change == 0 or not np.isfinite(share):
        head = f"{words}: {metric_name} moved by {_number(contribution)} while the total did not change"
    elif share >= 0:
        head = f"{words} explains {share:.0%} of the {direction} in {metric_name}"
    else:
        head = f"{words} offsets {-share:.0%} of the {direction} in {metric_name}"
    values = f"{_number(control)} → {_number(test)}"
    if control and np.isfinite(control) and np.isfinite(test):
        values += f", {(test - control) / abs(control):+.0%}"
    if ratio:
        values += f"; rate effect {rate:+.3g}, mix effect {mix:+.3g}"
    tail = "" if significant else f"; not significant (p = {p:.2g})" if np.isfinite(p) else "; not tested"
    if explained:
        tail += f"; mostly through {explained}" if by_child else f"; part of the change of {explained}"
    return f"{head} ({values}){tail}"


# -- entry ---------------------------------------------------------------------------------------------------------
def key_drivers(cells: CellTable, dimensions: list[str], metric_name: str, max_depth: int = 3,
                min_support: float = 0.01, alpha: float = 0.05, correction: str = "holm",
                max_segments: int = 10_000) -> DriversResult:
    """Rank the segments that explain the change from control to test (see the module docstring)."""
    depth, support, alpha, method, limit = check_options(max_depth, min_support, alpha, correction, max_segments,
                                                         len(dimensions))
    names = RATIO_STATS if cells.ratio else SUM_STATS
    values = np.stack([np.asarray(cells.stats[s], dtype=np.float64) for s in names], axis=1)
    is_test = np.asarray(cells.is_test, dtype=bool)
    totals = np.stack([values[~is_test].sum(axis=0), values[is_test].sum(axis=0)])  # (2 periods, stats)
    for period, argument in ((0, "control"), (1, "test")):
        if totals[period, 0] == 0:
            raise InvalidArgument(argument, "no rows with a non-NULL metric fall in this period",
                                  "Check the period value and the metric column")
        if cells.ratio and totals[period, 3] == 0:
            raise InvalidArgument("denominator", f"the denominator sums to 0 in the {argument} period",
                                  "Pass a denominator that is positive (e.g. sessions), or '*' to divide by rows")
    codes, sums = search_segments(cells, depth, support, limit)
    st = segment_statistics(sums, totals, cells.ratio)
    notes = []
    if cells.ratio:
        total_control, total_test = totals[0, 1] / totals[0, 3], totals[1, 1] / totals[1, 3]
    else:
        total_control, total_test = totals[0, 1], totals[1, 1]
    total_change = total_test - total_control
    p = st["p"]
    tested = ~np.isnan(p)
    p_adj = np.full(len(p), np.nan)
    if tested.any():
        p_adj[tested] = adjust_p_values(p[tested], method)
    significant = tested & (np.nan_to_num(p_adj, nan=1.0) < alpha)
    n_tested = int(tested.sum())
    notes.append(f"{metric_name}: {_number(total_control)} → {_number(total_test)}; {len(codes)} segments with at "
                 f"least {support:.2%} of the rows, {n_tested} tested, p-values corrected ({method})")
    explained, by_child = _explained_by(codes, sums, st["contribution"], significant, cells.ratio)
    group = np.where(significant & (explained < 0), 0, np.where(significant, 1, 2))
    order = np.lexsort((-np.abs(st["contribution"]), group))
    segments = []
    for row in codes:
        segments.append([(dimensions[d], cells.labels[d][c]) for d, c in enumerate(row) if c >= 0])
    text = [" AND ".join(_condition(n, v) for n, v in s) for s in segments]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = st["contribution"] / total_change if total_change != 0 else np.full(len(codes), np.nan)
        relative = np.where(st["control"] != 0, st["difference"] / np.abs(st["control"]), np.nan)
    n_all = totals[:, 0].sum()
    out = {k: [] for k in ("segment", "description", "explained_by", "dimensions")}
    for i in order:
        by = text[explained[i]] if explained[i] >= 0 else None
        words = " and ".join(_condition(n, v) for n, v in segments[i])
        out["segment"].append(text[i])
        out["explained_by"].append(by)
        out["dimensions"].append([(n, None if v is None else str(v)) for n, v in segments[i]])
        out["description"].append(_describe(
            words, st["contribution"][i], share[i], st["control"][i], st["test"][i], total_change, metric_name,
            cells.ratio, None if st["rate"] is None else st["rate"][i], None if st["mix"] is None else st["mix"][i],
            p_adj[i], bool(significant[i]), by, bool(by_child[i])))

    def col(a, typ=pa.float64()):
        a = np.asarray(a)[order]
        return pa.array(a, typ, mask=np.isnan(a)) if typ == pa.float64() else pa.array(a, typ)

    none = np.full(len(codes), np.nan)
    table = pa.table({
        "rank": pa.array(np.arange(1, len(codes) + 1), pa.int32()),
        "segment": pa.array(out["segment"], pa.string()),
        "depth": col((codes >= 0).sum(axis=1), pa.int32()),
        "dimensions": pa.array(out["dimensions"], pa.map_(pa.string(), pa.string())),
        "control_value": col(st["control"]), "test_value": col(st["test"]),
        "difference": col(st["difference"]), "relative_change": col(relative),
        "contribution": col(st["contribution"]), "share_of_change": col(share),
        "rate_effect": col(none if st["rate"] is None else st["rate"]),
        "mix_effect": col(none if st["mix"] is None else st["mix"]),
        "share_of_rows": col((sums[:, 0, 0] + sums[:, 1, 0]) / n_all),
        "n_control": col(sums[:, 0, 0].astype(np.int64), pa.int64()),
        "n_test": col(sums[:, 1, 0].astype(np.int64), pa.int64()),
        "p_value": col(p_adj), "p_value_raw": col(p),
        "significant": pa.array(significant[order], pa.bool_(), mask=~tested[order]),
        "explained_by": pa.array(out["explained_by"], pa.string()),
        "description": pa.array(out["description"], pa.string()),
    })
    return DriversResult(table, notes)


# -- simulation (tests) ---------------------------------------------------------------------------------------------
def simulate_sales(n: int = 20_000, seed: int = 0, drivers: dict | None = None, ratio: bool = False) -> dict:
    """Rows of a shop in two periods ('control', 'test') over four dimensions, with known planted drivers.

    ``drivers`` maps a segment, as a tuple of (dimension, value) pairs, to the factor its metric is multiplied by
    in the test period (revenue per row, or the conversion probability when ``ratio``). Without drivers the two
    periods are draws from one distribution (pure noise)."""
    rng = np.random.default_rng(seed)
    levels = {"channel": ["organic", "paid_search", "social", "email", "referral"],
              "category": ["electronics", "home", "beauty", "fashion", "sports", "toys"],
              "region": ["north", "south", "east", "west"], "device": ["mobile", "desktop", "tablet"]}
    probs = {"channel": [0.35, 0.25, 0.15, 0.15, 0.10], "category": [0.25, 0.2, 0.2, 0.15, 0.1, 0.1],
             "region": [0.3, 0.3, 0.2, 0.2], "device": [0.55, 0.35, 0.10]}
    data = {k: np.asarray(v, dtype=object)[rng.choice(len(v), n, p=probs[k])] for k, v in levels.items()}
    test = rng.random(n) < 0.5
    factor = np.ones(n)
    for segment, f in (drivers or {}).items():
        inside = test.copy()
        for dim, value in segment:
            inside &= data[dim] == value
        factor[inside] *= f
    if ratio:
        data["purchased"] = (rng.random(n) < 0.1 * factor).astype(np.int64)
    else:
        data["revenue"] = np.round(rng.gamma(2.0, 30.0, n) * factor, 2)
    data["period"] = np.where(test, "test", "control").astype(object)
    return data
