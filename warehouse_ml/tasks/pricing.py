"""Price elasticity and profit-maximising prices: pure kernels over NumPy arrays (no database).

Demand model, per item: ``log(units) = a + b log(price) + e`` fitted by ordinary least squares, so ``b`` is
the own-price elasticity. Every item is fitted at once from grouped sums (no per-item loop); the estimates,
standard errors, t intervals and R^2 are the ones ``statsmodels.OLS(log units, [1, log price])`` gives on the
item's rows (the tests check this to floating-point precision).

Rows with a NULL, zero or negative price or units cannot enter a log-log fit: they are excluded and counted
per item (``n_excluded``). An item whose prices barely moved (fewer than two distinct prices, a standard
deviation of log price below ``min_price_variation`` (0.02, about 2%), or fewer than ``min_rows`` usable rows)
gets a NULL elasticity and a ``note`` saying why, instead of an estimate that is noise.

Expected units at price p are ``exp(a) p^b`` times Duan's smearing factor ``mean(exp(residual))`` (the
log-scale fit otherwise underestimates mean units). Profit ``(p - cost) * units(p)`` is unimodal in p when
``b < -1`` with its peak at ``p* = cost * b / (1 + b)``; when ``b >= -1`` it rises with price. The optimal
price is therefore ``p*`` clipped to the allowed range (the observed range of the item's prices unless
``min_price`` / ``max_price`` say otherwise), or the top of that range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InvalidArgument


@dataclass
class ElasticityFit:
    """Per item arrays, indexed by item code."""

    elasticity: np.ndarray
    intercept: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    r2: np.ndarray
    n: np.ndarray
    n_excluded: np.ndarray
    smear: np.ndarray
    price_min: np.ndarray
    price_max: np.ndarray
    notes: list[str | None]


def _bincount(g, w, k):
    return np.bincount(g, weights=w, minlength=k)


def fit_elasticity(codes: np.ndarray, n_items: int, price: np.ndarray, units: np.ndarray, alpha: float = 0.05,
                   min_rows: int = 5, min_price_variation: float = 0.02) -> ElasticityFit:
    """``codes``: item code 0..n_items-1 per row; ``price``/``units``: floats, NaN for NULL."""
    if not 0 < alpha < 1:
        raise InvalidArgument("alpha", f"must lie strictly between 0 and 1, got {alpha!r}", "Pass e.g. alpha := 0.05")
    if min_rows < 3:
        raise InvalidArgument("min_rows", f"must be at least 3, got {min_rows}", "Pass e.g. min_rows := 5")
    codes = np.asarray(codes, dtype=np.int64)
    price = np.asarray(price, dtype=float)
    units = np.asarray(units, dtype=float)
    k = n_items
    ok = np.isfinite(price) & np.isfinite(units) & (price > 0) & (units > 0)
    n_excl = np.bincount(codes[~ok], minlength=k)
    g, x, y = codes[ok], np.log(price[ok]), np.log(units[ok])
    n = np.bincount(g, minlength=k).astype(float)
    nn = np.maximum(n, 1)
    xbar, ybar = _bincount(g, x, k) / nn, _bincount(g, y, k) / nn
    dx, dy = x - xbar[g], y - ybar[g]
    sxx, sxy, syy = _bincount(g, dx * dx, k), _bincount(g, dx * dy, k), _bincount(g, dy * dy, k)
    pmin = np.full(k, np.nan)
    pmax = np.full(k, np.nan)
    if len(g):
        np.fmin.at(pmin, g, price[ok])
        np.fmax.at(pmax, g, price[ok])
    n_prices = np.where(pmax > pmin, 2, np.where(n > 0, 1, 0))  # one price, or more than one
    sd_x = np.sqrt(sxx / np.maximum(n - 1, 1))
    fit = (n >= min_rows) & (n_prices >= 2) & (sd_x >= min_price_variation) & (sxx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(fit, sxy / sxx, np.nan)
        a = np.where(fit, ybar - b * xbar, np.nan)
        resid = y - a[g] - b[g] * x
        ssr = _bincount(g, np.where(fit[g], resid * resid, 0.0), k)
        df = n - 2
        se = np.where(fit, np.sqrt(ssr / np.maximum(df, 1) / sxx), np.nan)
        tq = stats.t.ppf(1 - alpha / 2, np.maximum(df, 1))
        r2 = np.where(fit & (syy > 0), 1 - ssr / syy, np.nan)
        smear = np.where(fit, _bincount(g, np.where(fit[g], np.exp(resid), 0.0), k) / nn, np.nan)
    notes: list[str | None] = []
    for i in range(k):  # one short message per item, not per row
        parts = []
        if n[i] < min_rows:
            parts.append(f"only {int(n[i])} usable rows (needs {min_rows})")
        elif n_prices[i] < 2:
            parts.append(f"a single price ({pmin[i]:.4g}) was observed, so elasticity cannot be estimated")
        elif sd_x[i] < min_price_variation:
            parts.append(f"price varied too little (sd of log price {sd_x[i]:.3g} < {min_price_variation:g}) "
                         "for a reliable estimate")
        elif b[i] > 0:
            parts.append("positive elasticity: units rose with price; likely confounded (promotions, seasonality)")
        if n_excl[i]:
            parts.append(f"{int(n_excl[i])} rows with NULL, zero or negative price or units excluded")
        notes.append("; ".join(parts) or None)
    return ElasticityFit(b, a, se, b - tq * se, b + tq * se, r2, n.astype(np.int64), n_excl.astype(np.int64), smear,
                         pmin, pmax, notes)


def expected_units(fit: ElasticityFit, price: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return fit.smear * np.exp(fit.intercept) * np.power(price, fit.elasticity)


def optimal_prices(fit: ElasticityFit, cost: np.ndarray, current_price: np.ndarray,
                   min_price: float | None = None, max_price: float | None = None,
                   within_observed: bool = True) -> dict[str, np.ndarray | list]:
    """Profit-maximising price per item under the fitted curve; NaN where the item has no usable fit."""
    b = fit.elasticity
    cost = np.asarray(cost, dtype=float)
    lo = fit.price_min.copy() if within_observed else np.zeros_like(b)
    hi = fit.price_max.copy() if within_observed else np.full_like(b, np.inf)
    if min_price is not None:
        lo = np.full_like(b, float(min_price))
    if max_price is not None:
        hi = np.full_like(b, float(max_price))
    if min_price is not None and max_price is not None and float(min_price) > float(max_price):
        raise InvalidArgument("min_price", f"{min_price} is above max_price {max_price}", "Swap them")
    c = np.where(np.isfinite(cost), cost, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = np.where(b < -1, c * b / (1 + b), np.inf)
    opt = np.clip(interior, lo, hi)
    opt = np.where(np.isfinite(b) & np.isfinite(opt), opt, np.nan)
    notes = []
    for i in range(len(b)):
        parts = []
        if not np.isfinite(b[i]):
            parts.append(fit.notes[i] or "no elasticity estimate")
        else:
            if not np.isfinite(cost[i]):
                parts.append("no cost: the price maximises revenue")
            if b[i] >= -1 and np.isfinite(hi[i]):
                parts.append(f"inelastic demand (elasticity {b[i]:.2f} >= -1): profit rises with price up to the "
                             "top of the allowed range")
            elif b[i] >= -1:
                parts.append(f"inelastic demand (elasticity {b[i]:.2f} >= -1): no profit-maximising price without "
                             "a max_price")
            elif interior[i] > hi[i]:
                parts.append(f"unconstrained optimum {interior[i]:.4g} is above the allowed range; capped")
            elif interior[i] < lo[i]:
                parts.append(f"unconstrained optimum {interior[i]:.4g} is below the allowed range; floored")
            if within_observed and min_price is None and max_price is None:
                parts.append(f"searched the observed range {lo[i]:.4g}..{hi[i]:.4g}")
        notes.append("; ".join(parts) or None)
    q_opt = expected_units(fit, opt)
    q_cur = expected_units(fit, np.asarray(current_price, dtype=float))
    return dict(optimal_price=opt, expected_units=q_opt, expected_profit=(opt - c) * q_opt,
                current_units=q_cur, current_profit=(np.asarray(current_price, dtype=float) - c) * q_cur,
                cost=cost, notes=notes)


def group_median(codes: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Median of ``values`` per code (NaN-free input), vectorised with one sort."""
    out = np.full(k, np.nan)
    if not len(codes):
        return out
    order = np.lexsort((values, codes))
    g, v = codes[order], values[order]
    counts = np.bincount(g, minlength=k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    out[has] = (v[lo[has]] + v[hi[has]]) / 2
    return out


def group_latest_mean(codes: np.ndarray, values: np.ndarray, when: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``values`` over each code's rows at its latest ``when`` (int64 timestamps)."""
    latest = np.full(k, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, codes, when)
    at = when == latest[codes]
    s = np.bincount(codes[at], weights=values[at], minlength=k)
    c = np.bincount(codes[at], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def simulate_prices(n_items: int = 20, n_days: int = 120, seed: int = 0, elasticity=None,
                    base_units: float = 50.0, noise: float = 0.2) -> dict[str, np.ndarray]:
    """A daily price history with known elasticities (default drawn in [-3, -0.5]) for tests and the demo."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(-3.0, -0.5, n_items) if elasticity is None else np.broadcast_to(np.asarray(elasticity, float), (n_items,))
    base_price = rng.uniform(5, 50, n_items)
    item = np.repeat(np.arange(n_items), n_days)
    day = np.tile(np.arange(n_days), n_items)
    price = base_price[item] * np.exp(rng.normal(0, 0.15, n_items * n_days))
    units = base_units * (price / base_price[item]) ** e[item] * np.exp(rng.normal(0, noise, n_items * n_days))
    return dict(item=np.array([f"sku_{i:03d}" for i in range(n_items)], dtype=object)[item], day=day,
                price=np.round(price, 2), units=units, unit_cost=0.4 * base_price[item], true_elasticity=e)
