"""A/B test statistics: pure kernels over NumPy arrays (no database), so they run unchanged on Spark later.

``ab_test`` compares every variant with the control on one metric:

* a 0/1 metric gets the two-proportion z-test (``statsmodels.stats.proportion.proportions_ztest``, pooled
  standard error for the p-value) with a Wald interval for the difference
  (``confint_proportions_2indep(compare='diff', method='wald')``);
* any other numeric metric gets Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) with its interval;
* with a pre-period covariate, CUPED first replaces the metric by ``y - theta * (x - mean(x))`` with
  ``theta = cov(x, y) / var(x)`` pooled over all variants, then runs Welch's t-test on the adjusted metric;
* with more than one treatment, p-values are Holm-adjusted (``multipletests(method='holm')``), ``significant``
  uses the adjusted p-value, and intervals are Bonferroni-widened (level ``1 - alpha / m``) so that an
  interval that excludes zero always agrees with a Holm rejection;
* the sample-ratio-mismatch check is ``scipy.stats.chisquare`` of the per-variant row counts (every row with a
  variant, whatever its metric) against the intended split (equal unless given).

Under CUPED, ``mean`` is the covariate-adjusted mean, so that ``lift`` is the difference of the reported means.
The relative lift is ``lift / mean(control)``; its interval is the delta-method interval of the ratio of the
two means. Rows with a NULL metric (or a NULL covariate under CUPED) are excluded and counted per variant.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InvalidArgument

Z_TEST = "two-proportion z-test"
WELCH = "Welch t-test"
CUPED = "Welch t-test (CUPED)"


def _missing_notes(what: str, values: np.ndarray, counted: np.ndarray) -> list[str]:
    """'k rows with a NULL metric excluded', and how many more were NaN or infinite, among ``counted`` rows."""
    null = int((np.isnan(values) & counted).sum())  # SQL NULL arrives as NaN; NaN itself cannot be told apart
    infinite = int((np.isinf(values) & counted).sum())
    notes = [f"{null} rows with a NULL or NaN {what} excluded"] if null else []
    if infinite:
        notes.append(f"{infinite} rows with an infinite {what} treated as missing and excluded")
    return notes


def check_probability(name: str, value, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(name, f"expected a number between 0 and 1, got {value!r}", fix) from None
    if not 0.0 < v < 1.0 or not np.isfinite(v):
        raise InvalidArgument(name, f"must lie strictly between 0 and 1, got {value!r}", fix)
    return v


@dataclass
class AbResult:
    rows: list[dict]
    notes: list[str]


def encode_variants(variants, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """(codes, sorted labels): ``variants`` is an array of labels with None for missing, or, with ``labels``
    given, integer codes into ``labels`` with -1 for missing (as a dictionary-encoded column arrives)."""
    if labels is None:
        arr = np.asarray(variants, dtype=object)
        missing = np.equal(arr, None)
        levels, inv = np.unique(arr[~missing].astype(str), return_inverse=True)
        codes = np.full(len(arr), -1, dtype=np.int64)
        codes[~missing] = inv
        return codes, levels
    levels = np.asarray([str(v) for v in labels], dtype=str)  # distinct values only
    codes = np.asarray(variants, dtype=np.int64)
    order = np.argsort(levels, kind="stable")
    rank = np.empty(len(levels), dtype=np.int64)
    rank[order] = np.arange(len(levels))
    return np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(levels) else -1, -1), levels[order]


def ab_test(variants: np.ndarray, metric: np.ndarray, control=None, covariate: np.ndarray | None = None,
            alpha: float = 0.05, split: dict | list | None = None, test: str = "auto", labels=None) -> AbResult:
    """Compare each variant with ``control``.

    ``variants``: array of labels (None for a missing variant: excluded and counted), or integer codes into
    ``labels`` (-1 for missing); ``metric``: float array with NaN for NULL; ``covariate``: float array with NaN
    for NULL, or None; ``split``: intended share per variant as ``{label: share}`` or a list in the order
    control first, then the others sorted.
    """
    alpha = check_probability("alpha", alpha, "Pass e.g. alpha := 0.05")
    all_codes, levels = encode_variants(variants, labels)
    metric = np.asarray(metric, dtype=float)
    if len(all_codes) != len(metric):
        raise ValueError("variants and metric differ in length")
    has_variant = all_codes >= 0
    notes: list[str] = []
    n_no_variant = int((~has_variant).sum())
    if n_no_variant:
        notes.append(f"{n_no_variant} rows with a NULL variant excluded")
    codes = all_codes[has_variant]
    metric = metric[has_variant]
    cov = None if covariate is None else np.asarray(covariate, dtype=float)[has_variant]
    if len(levels) < 2:
        found = f"only '{levels[0]}'" if len(levels) else "no values"
        raise InvalidArgument("variant", f"the variant column has {found}; an A/B test needs at least two variants",
                              "Pass the column that holds the assignment (e.g. variant := 'variant') or check the filter")
    control_label = _pick_control(levels, control)
    c_idx = int(np.where(levels == control_label)[0][0])
    order = [c_idx] + [i for i in range(len(levels)) if i != c_idx]
    k = len(levels)

    # sample-ratio mismatch: assignment counts (every row with a variant) against the intended split
    assigned = np.bincount(codes, minlength=k).astype(float)
    shares = _split_shares(split, levels, order)
    srm_p = float(stats.chisquare(assigned, f_exp=shares * assigned.sum()).pvalue)

    # The numeric policy: NaN and +-inf are missing values, excluded like NULL and counted in the notes
    valid = np.isfinite(metric)
    if cov is not None:
        valid &= np.isfinite(cov)
    excluded = np.bincount(codes[~valid], minlength=k)
    notes += _missing_notes("metric", metric, np.ones(len(metric), bool))
    if cov is not None:
        notes += _missing_notes("covariate", cov, np.isfinite(metric))
    y_all, g_all = metric[valid], codes[valid]
    n = np.bincount(g_all, minlength=k)
    empty = [str(levels[i]) for i in range(k) if n[i] < 2]
    if empty:
        raise InvalidArgument("metric", f"variant(s) {empty} have fewer than 2 rows with a non-NULL metric",
                              "Check the metric column for NULLs or pick a metric recorded for every variant")
    binary = bool(np.all((y_all == 0) | (y_all == 1)))
    if test not in ("auto", "z", "t"):
        raise InvalidArgument("test", f"unknown test {test!r}", "Use 'auto', 'z' (proportions) or 't' (Welch)")
    use_z = (binary if test == "auto" else test == "z") and cov is None
    if test == "z" and not binary:
        raise InvalidArgument("test", "the z-test for proportions needs a 0/1 metric", "Use test := 'auto' or 't'")

    means = np.bincount(g_all, weights=y_all, minlength=k) / n
    y_test = y_all
    if cov is not None:
        x = cov[valid]
        vx = np.var(x, ddof=1)
        if not vx > 0:
            raise InvalidArgument("covariate", "the covariate is constant, so CUPED cannot use it",
                                  "Pass a pre-period measure that varies between users, or leave covariate out")
        theta = float(np.cov(x, y_all, ddof=1)[0, 1] / vx)
        y_test = y_all - theta * (x - x.mean())
        v_before, v_after = np.var(y_all, ddof=1), np.var(y_test, ddof=1)
        notes.append(f"CUPED: theta = {theta:.6g}, metric variance reduced by {100 * (1 - v_after / v_before):.1f}%; "
                     "means are covariate-adjusted")
        means = np.bincount(g_all, weights=y_test, minlength=k) / n

    m = k - 1
    level = 1 - alpha / m if m > 1 else 1 - alpha  # Bonferroni-widened intervals alongside Holm p-values
    yc = y_test[g_all == c_idx]
    results = []
    for i in order[1:]:
        yt = y_test[g_all == i]
        if use_z:
            results.append(_z_test(yt, yc, level))
        else:
            results.append(_welch(yt, yc, level))
    p_raw = np.array([r[3] for r in results])
    if m > 1:
        from statsmodels.stats.multitest import multipletests

        p_adj = multipletests(p_raw, alpha=alpha, method="holm")[1]
        notes.append(f"{m} comparisons with the control: p-values Holm-adjusted, intervals at "
                     f"{100 * level:.4g}% (Bonferroni)")
    else:
        p_adj = p_raw
    name = Z_TEST if use_z else (CUPED if cov is not None else WELCH)
    rows = [dict(variant=str(levels[c_idx]), is_control=True, n=int(n[c_idx]), n_excluded=int(excluded[c_idx]),
                 mean=float(means[c_idx]), lift=None, ci_low=None, ci_high=None, relative_lift=None,
                 relative_ci_low=None, relative_ci_high=None, p_value=None, p_value_raw=None, significant=None,
                 test=name, srm_p_value=srm_p)]
    for j, i in enumerate(order[1:]):
        diff, lo, hi, _, rel, rlo, rhi = results[j]
        rows.append(dict(variant=str(levels[i]), is_control=False, n=int(n[i]), n_excluded=int(excluded[i]),
                         mean=float(means[i]), lift=diff, ci_low=lo, ci_high=hi, relative_lift=rel,
                         relative_ci_low=rlo, relative_ci_high=rhi, p_value=float(p_adj[j]),
                         p_value_raw=float(p_raw[j]), significant=bool(p_adj[j] < alpha), test=name,
                         srm_p_value=srm_p))
    if srm_p < 0.001:
        notes.append(f"sample ratio mismatch: p = {srm_p:.2g} against the intended split; check the assignment "
                     "before trusting the lift")
    return AbResult(rows, notes)


def _pick_control(levels: np.ndarray, control) -> str:
    if control is None:
        lower = {str(v).lower(): str(v) for v in levels}
        for name in ("control", "a", "ctrl", "baseline", "0"):
            if name in lower:
                return lower[name]
        raise InvalidArgument("control", f"no control given and none of the variants {list(map(str, levels))} "
                                         "is called 'control' or 'A'",
                              f"Name it, e.g. control := '{levels[0]}'")
    key = str(control)
    if isinstance(control, float) and control.is_integer():
        key = str(int(control)) if key not in set(levels.tolist()) else key
    if key not in set(levels.tolist()):
        from ..errors import did_you_mean

        raise InvalidArgument("control", f"no variant '{control}' in the variant column.{did_you_mean(key, levels)}".rstrip("."),
                              "Pass one of the variant values as control")
    return key


def _split_shares(split, levels: np.ndarray, order: list[int]) -> np.ndarray:
    k = len(levels)
    if split is None:
        return np.full(k, 1.0 / k)
    if isinstance(split, dict):
        keys = {str(a): b for a, b in split.items()}
        unknown = [a for a in keys if a not in set(levels.tolist())]
        missing = [str(v) for v in levels if str(v) not in keys]
        if unknown or missing:
            raise InvalidArgument("split", f"the split names {sorted(keys)} but the variants are "
                                           f"{[str(v) for v in levels]}",
                                  "Give one share per variant, e.g. split := {'A': 0.5, 'B': 0.5}")
        w = np.array([float(keys[str(v)]) for v in levels])
    elif isinstance(split, (list, tuple)):
        if len(split) != k:
            raise InvalidArgument("split", f"{len(split)} shares for {k} variants",
                                  "Give one share per variant: control first, then the others in sorted order")
        w = np.empty(k)
        w[order] = np.array([float(s) for s in split])
    else:
        raise InvalidArgument("split", f"expected shares per variant, got {split!r}",
                              "Pass e.g. split := {'A': 0.5, 'B': 0.5}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise InvalidArgument("split", "every share must be a positive number", "e.g. split := {'A': 0.9, 'B': 0.1}")
    return w / w.sum()


def _ratio_ci(diff: float, mc: float, vt_mean: float, vc_mean: float, mt: float, z: float):
    """Relative lift (mt - mc) / mc = mt / mc - 1 and its delta-method interval."""
    if mc == 0:
        return None, None, None
    r = mt / mc
    se = np.sqrt(vt_mean / mc**2 + (mt**2) * vc_mean / mc**4)
    return float(r - 1), float(r - 1 - z * se), float(r - 1 + z * se)


def _z_test(yt: np.ndarray, yc: np.ndarray, level: float):
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    ct, nt, cc, nc = float(yt.sum()), len(yt), float(yc.sum()), len(yc)
    pt, pc = ct / nt, cc / nc
    if (ct + cc) in (0.0, float(nt + nc)):  # all 0 or all 1: no variance; no evidence of a difference
        p = 1.0
    else:
        p = float(proportions_ztest([ct, cc], [nt, nc])[1])
    lo, hi = confint_proportions_2indep(ct, nt, cc, nc, compare="diff", method="wald", alpha=1 - level)
    z = stats.norm.ppf(0.5 + level / 2)
    rel = _ratio_ci(pt - pc, pc, pt * (1 - pt) / nt, pc * (1 - pc) / nc, pt, z)
    return float(pt - pc), float(lo), float(hi), p, *rel


def _welch(yt: np.ndarray, yc: np.ndarray, level: float):
    res = stats.ttest_ind(yt, yc, equal_var=False)
    vt, vc = np.var(yt, ddof=1) / len(yt), np.var(yc, ddof=1) / len(yc)
    mt, mc = float(np.mean(yt)), float(np.mean(yc))
    if vt + vc == 0:  # both constant: the difference is exact
        d = mt - mc
        return d, d, d, (1.0 if d == 0 else 0.0), *_ratio_ci(d, mc, 0.0, 0.0, mt, 0.0)
    ci = res.confidence_interval(confidence_level=level)
    df = float(res.df)
    t = stats.t.ppf(0.5 + level / 2, df)
    rel = _ratio_ci(mt - mc, mc, vt, vc, mt, t)
    return mt - mc, float(ci.low), float(ci.high), float(res.pvalue), *rel


# -- sample size ------------------------------------------------------------------------------------------------
def sample_size(baseline, mde, alpha=0.05, power=0.8) -> np.ndarray:
    """Users per arm for a two-sided two-proportion test detecting ``baseline -> baseline + mde`` (absolute).

    Column-wise over arrays (NaN in, NaN out). Uses Cohen's effect size h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1))
    and the normal power of the two-sided test, both tails counted, which is exactly what
    ``NormalIndPower().solve_power(proportion_effectsize(p2, p1), alpha=alpha, power=power, ratio=1)`` solves;
    the closed form is refined by Newton steps instead of a scalar root finder. Returns the unrounded size.
    """
    b, d, a, pw = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (baseline, mde, alpha, power)))
    out = np.full(b.shape, np.nan)
    ok = ~(np.isnan(b) | np.isnan(d) | np.isnan(a) | np.isnan(pw))
    _check_rate("power", pw, ok, "Pass e.g. power := 0.8")
    h = _effect_size(b, d, a, ok)
    za = stats.norm.isf(np.where(ok, a, 0.05) / 2)
    zb = stats.norm.ppf(np.where(ok, pw, 0.8))
    # power(n) = Phi(h sqrt(n/2) - za) + Phi(-h sqrt(n/2) - za); solve for s = h sqrt(n/2)
    s = za + zb
    target = np.where(ok, pw, 0.8)
    for _ in range(50):
        f = stats.norm.cdf(s - za) + stats.norm.cdf(-s - za) - target
        fp = stats.norm.pdf(s - za) - stats.norm.pdf(-s - za)
        step = f / fp
        s = s - step
        if np.all(np.abs(step) < 1e-14 * np.maximum(1, np.abs(s))):
            break
    n = 2 * (s / h) ** 2
    out[ok] = n[ok]
    return out


def _check_rate(name: str, v: np.ndarray, ok: np.ndarray, fix: str) -> None:
    bad = ok & ~((v > 0) & (v < 1))
    if bad.any():
        raise InvalidArgument(name, f"must lie strictly between 0 and 1, got {v[bad][0]!r}", fix)


def _effect_size(b: np.ndarray, d: np.ndarray, a: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Cohen's h of ``b -> b + d`` where ``ok`` (1.0 elsewhere), after checking alpha, baseline and effect."""
    _check_rate("alpha", a, ok, "Pass e.g. alpha := 0.05")
    _check_rate("baseline", b, ok, "Pass the control's conversion rate, e.g. 0.05 for 5%")
    p2 = b + d
    bad = ok & ~((p2 > 0) & (p2 < 1))
    if bad.any():
        raise InvalidArgument("min_detectable_effect", f"baseline + effect = {p2[bad][0]!r} is not a rate between 0 and 1",
                              "The effect is absolute: 0.01 means from 5% to 6%")
    bad = ok & (d == 0)
    if bad.any():
        raise InvalidArgument("min_detectable_effect", "is 0; no sample size detects no change",
                              "Pass the smallest lift worth detecting, e.g. 0.01 for one percentage point")
    h = np.abs(2 * np.arcsin(np.sqrt(np.where(ok, p2, 0.5))) - 2 * np.arcsin(np.sqrt(np.where(ok, b, 0.5))))
    return np.where(ok, h, 1.0)


def power(baseline, mde, n_per_arm, alpha=0.05) -> np.ndarray:
    """Power of the two-sided two-proportion test with ``n_per_arm`` users per arm to detect ``baseline ->
    baseline + mde``: the inverse of ``sample_size`` (the same normal approximation and effect size)."""
    b, d, n, a = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (baseline, mde, n_per_arm, alpha)))
    ok = ~(np.isnan(b) | np.isnan(d) | np.isnan(n) | np.isnan(a))
    bad = ok & ~(n >= 1)
    if bad.any():
        raise InvalidArgument("n_per_arm", f"must be at least 1, got {n[bad][0]!r}", "Pass the users in each arm, e.g. 5000")
    s = _effect_size(b, d, a, ok) * np.sqrt(np.where(ok, n, 1) / 2)
    za = stats.norm.isf(np.where(ok, a, 0.05) / 2)
    return np.where(ok, stats.norm.cdf(s - za) + stats.norm.cdf(-s - za), np.nan)


# -- simulation (tests and the demo) ----------------------------------------------------------------------------
def simulate_experiment(n: int = 20000, lift: float = 0.01, baseline: float = 0.05, seed: int = 0,
                        variants=("A", "B")) -> dict[str, np.ndarray]:
    """A randomised experiment with a known absolute lift on conversion and revenue, plus a pre-period revenue
    covariate correlated with revenue. Variant ``i`` gets lift ``i * lift`` over the first (the control)."""
    rng = np.random.default_rng(seed)
    k = len(variants)
    g = rng.integers(0, k, n)
    p = baseline + g * lift
    converted = (rng.random(n) < p).astype(float)
    pre = rng.gamma(2.0, 25.0, n)
    revenue = 0.8 * pre + rng.normal(0, 10, n) + g * lift * 100
    return dict(variant=np.array(variants, dtype=object)[g], converted=converted, revenue=revenue,
                pre_revenue=pre)
