"""Price elasticity and profit-maximising prices: pure kernels over NumPy arrays (no database).

Demand model, per item (``model='poisson'``, the default): a Poisson GLM with a log link,

    log E[units_t] = a + b log(price_t) + controls_t' c

fitted by iteratively reweighted least squares for every item at once (items are padded into a batch and
solved together; no per-item Python loop). ``b`` is the own-price elasticity. Days with zero units are ordinary
observations of a Poisson count, so intermittent items are not biased by dropping them. Standard errors are
heteroscedasticity-robust (the HC0 sandwich of the GLM score, times ``n / (n - p)``), so they stay valid when
units are over-dispersed (a quasi-Poisson situation) or the mean model is not exactly right; intervals use the
t quantile with ``n - p`` degrees of freedom (a small-sample allowance; the normal one for long histories). The estimates equal ``statsmodels.GLM(units, X, family=Poisson()).fit(cov_type="HC0")`` on the
same design, with the HC0 standard error scaled by ``sqrt(n / (n - p))`` (the tests check this).

Controls (``controls='auto'`` and a date per row): time structure that moves units and may move with prices.
Columns are added per item, in this order, while the item has at least ``EVENTS_PER_COEF`` (10) units sold per
coefficient (the events-per-variable rule; an intermittent item gets fewer controls rather than a fit that is
mostly noise):

* ``trend``: a linear trend in time over the item's history (when it spans at least 4 weeks);
* ``weekday``: day-of-week dummies (baseline: the item's most frequent weekday; a weekday enters with at
  least 3 rows and some units sold);
* ``trend knots``: a piecewise-linear trend with a knot every ``KNOT_DAYS`` (91) days, for slower turns;
* ``yearly``: ``YEARLY_HARMONICS`` (6) pairs of yearly Fourier terms, when the history spans at least a year.

``controls='none'``, or no date column, fits ``log E[units] = a + b log(price)`` only. ``model='loglog'`` fits
ordinary least squares of log(units) on the same design instead (rows with zero units cannot enter and are
excluded; classical standard errors and t intervals, equal to ``statsmodels.OLS``); with ``controls='none'``
that is the classic log-log regression.

Rows with a NULL, zero or negative price, or NULL or negative units (zero units for ``loglog``) are excluded
and counted per item (``n_excluded``). An item whose prices barely moved (fewer than two distinct prices, a
standard deviation of log price below ``min_price_variation`` (0.02, about 2%), or fewer than ``min_rows``
usable rows), with no units sold, or whose fit did not converge, gets a NULL elasticity and a ``note`` saying
why, instead of an estimate that is noise.

Expected units at price p are ``factor * exp(a) * p^b``, where ``factor`` is the average of ``exp(controls' c)``
over the item's last ``RECENT_DAYS`` (28) days of history (the model's prediction at recent conditions; 1
without controls); for ``loglog`` it also carries Duan's smearing factor ``mean(exp(residual))``. The controls
multiply units, so profit ``(p - cost) * units(p)`` peaks at ``p* = cost * b / (1 + b)`` when ``b < -1`` and
rises with price when ``b >= -1``. The optimal price is ``p*`` clipped to the allowed range (the observed range
of the item's prices unless ``min_price`` / ``max_price`` say otherwise), or the top of that range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InvalidArgument

EVENTS_PER_COEF = 10
KNOT_DAYS = 91
YEARLY_HARMONICS = 6
RECENT_DAYS = 28
MIN_TREND_DAYS = 28
MIN_WEEKDAY_ROWS = 3
_BATCH_CELLS = 4_000_000  # items x rows x columns per IRLS batch (about 32 MB of float64)


@dataclass
class ElasticityFit:
    """Per item arrays, indexed by item code. ``factor`` scales ``exp(intercept) * price ** elasticity`` to the
    expected units at recent conditions."""

    elasticity: np.ndarray
    intercept: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    r2: np.ndarray
    n: np.ndarray
    n_excluded: np.ndarray
    factor: np.ndarray
    price_min: np.ndarray
    price_max: np.ndarray
    notes: list[str | None]
    methods: list[str]


def _bincount(g, w, k):
    return np.bincount(g, weights=w, minlength=k)


def control_columns(codes: np.ndarray, k: int, day: np.ndarray, units: np.ndarray, poisson: bool = True,
                    events_per_coef: float = EVENTS_PER_COEF):
    """The control design for usable rows: ``(Z, mask, groups)``. ``Z`` is rows x columns (zero where an item
    does not use a column), ``mask`` is items x columns (1 where the item uses it), ``groups`` is per item the
    list of control groups fitted and the list omitted for want of data. ``day``: whole days (e.g. since
    1970-01-01) per row; ``units`` per row (the budget of ``events_per_coef`` per coefficient counts units sold
    for a Poisson fit, rows for log-log)."""
    g = np.asarray(codes, dtype=np.int64)
    day = np.asarray(day, dtype=float)
    n_rows = len(g)
    d0 = np.full(k, np.inf)
    d1 = np.full(k, -np.inf)
    if n_rows:
        np.minimum.at(d0, g, day)
        np.maximum.at(d1, g, day)
    span = np.where(np.isfinite(d0), d1 - d0, 0.0)
    budget = (_bincount(g, units, k) if poisson else np.bincount(g, minlength=k).astype(float)) / events_per_coef
    cols, owner = [], []  # owner: the group each column belongs to
    item_mask = []
    # linear trend
    has_trend = span >= MIN_TREND_DAYS
    t = np.where(has_trend[g], (day - d0[g]) / np.maximum(span[g], 1.0), 0.0)
    cols.append(t), owner.append("trend"), item_mask.append(has_trend)
    # weekday dummies (1970-01-01 was a Thursday: Monday = 0)
    wd = ((day + 3) % 7).astype(np.int64)
    cnt = np.zeros((k, 7))
    sold = np.zeros((k, 7))
    np.add.at(cnt, (g, wd), 1.0)
    np.add.at(sold, (g, wd), units)
    base = np.argmax(cnt, axis=1)
    for j in range(7):
        use = (cnt[:, j] >= MIN_WEEKDAY_ROWS) & (base != j) & ((sold[:, j] > 0) if poisson else True)
        cols.append((wd == j).astype(float)), owner.append("weekday"), item_mask.append(use)
    # trend knots
    n_knots = int(np.max(np.floor((span - KNOT_DAYS / 2) / KNOT_DAYS), initial=0)) if n_rows else 0
    for j in range(1, max(n_knots, 0) + 1):
        use = has_trend & (d0 + j * KNOT_DAYS <= d1 - KNOT_DAYS / 2)
        knot = d0[g] + j * KNOT_DAYS
        cols.append(np.where(use[g], np.maximum(0.0, day - knot) / np.maximum(span[g], 1.0), 0.0))
        owner.append("trend knots"), item_mask.append(use)
    # yearly Fourier terms
    yearly = span >= 365
    for h in range(1, YEARLY_HARMONICS + 1):
        a = 2 * np.pi * h * day / 365.25
        cols += [np.sin(a), np.cos(a)]
        owner += ["yearly", "yearly"]
        item_mask += [yearly, yearly]
    mask = np.column_stack(item_mask).astype(float) if cols else np.zeros((k, 0))
    # the events-per-variable budget, group by group in order
    used = np.full(k, 2.0)  # intercept and log price
    groups = [([], []) for _ in range(k)]
    for name in ("trend", "weekday", "trend knots", "yearly"):
        idx = [i for i, o in enumerate(owner) if o == name]
        need = mask[:, idx].sum(axis=1)
        fits = (need > 0) & (used + need <= budget)
        mask[:, idx] *= fits[:, None]
        used += np.where(fits, need, 0.0)
        for i in np.flatnonzero(need > 0):
            groups[i][0 if fits[i] else 1].append(name)
    Z = np.column_stack(cols) * mask[g] if n_rows else np.zeros((0, len(cols)))
    return Z, mask, groups


def _batched_glm(g, X, y, mask, k, poisson: bool, max_iter: int = 100, tol: float = 1e-10):
    """Per-item fits of ``y ~ X`` (Poisson IRLS, or OLS) for all items at once. ``mask`` (items x columns)
    switches columns off per item (their rows are zero; the normal equations get a 1 on that diagonal).
    Returns beta (k x p), cov (k x p x p), the linear predictor per row, converged (k), deviance (k)."""
    p = X.shape[1]
    beta = np.full((k, p), np.nan)
    cov = np.full((k, p, p), np.nan)
    eta_rows = np.full(len(g), np.nan)
    converged = np.zeros(k, dtype=bool)
    dev = np.full(k, np.nan)
    if not len(g):
        return beta, cov, eta_rows, converged, dev
    order = np.argsort(g, kind="stable")
    gs = g[order]
    counts = np.bincount(gs, minlength=k)
    items = np.flatnonzero(counts > 0)
    i0 = 0
    while i0 < len(items):  # batches of items whose padded arrays stay within _BATCH_CELLS
        i1 = i0 + 1
        t_max = counts[items[i0]]
        while i1 < len(items) and (i1 - i0 + 1) * max(t_max, counts[items[i1]]) * p <= _BATCH_CELLS:
            t_max = max(t_max, counts[items[i1]])
            i1 += 1
        batch = items[i0:i1]
        kb = len(batch)
        local = np.full(k, -1)
        local[batch] = np.arange(kb)
        rows = order[np.isin(gs, batch)] if kb < len(items) else order
        gl = local[g[rows]]
        pos = np.arange(len(rows)) - np.repeat(np.concatenate([[0], np.cumsum(counts[batch])[:-1]]), counts[batch])
        # rows are in item order because ``order`` is a stable sort by item
        Xb = np.zeros((kb, t_max, p))
        yb = np.zeros((kb, t_max))
        vb = np.zeros((kb, t_max))
        Xb[gl, pos] = X[rows]
        Xt = np.ascontiguousarray(np.swapaxes(Xb, 1, 2))
        yb[gl, pos] = y[rows]
        vb[gl, pos] = 1.0
        D = np.zeros((kb, p, p))
        D[:, np.arange(p), np.arange(p)] = 1.0 - mask[batch]
        nb = vb.sum(axis=1)
        if poisson:
            ybar = (yb * vb).sum(axis=1) / nb
            mu = np.where(vb > 0, (yb + ybar[:, None]) / 2, 1.0)
            eta = np.log(mu)
            dev_old = np.full(kb, np.inf)
            done = np.zeros(kb, dtype=bool)
            for _ in range(max_iter):
                w = mu * vb
                z = eta + (yb - mu) / mu
                A = np.matmul(Xt * w[:, None, :], Xb) + D
                bb = _solve(A, np.matmul(Xt, (w * z)[:, :, None])[..., 0])
                eta = np.minimum(np.matmul(Xb, bb[:, :, None])[..., 0], 700.0)
                mu = np.exp(eta)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dv = 2 * (vb * (np.where(yb > 0, yb * np.log(yb / mu), 0.0) - (yb - mu))).sum(axis=1)
                done = np.abs(dv - dev_old) <= tol * (np.abs(dv) + 1.0)
                dev_old = dv
                if done.all():
                    break
            w = mu * vb
            Ainv = _inv(np.matmul(Xt * w[:, None, :], Xb) + D)
            r = vb * (yb - mu)
            M = np.matmul(Xt * (r * r)[:, None, :], Xb)
            peff = mask[batch].sum(axis=1)
            cb = np.matmul(np.matmul(Ainv, M), Ainv) * (nb / np.maximum(nb - peff, 1))[:, None, None]
            converged[batch] = done & np.isfinite(dv) & (eta.max(axis=1) < 700.0)
            dev[batch] = dv
        else:
            A = np.matmul(Xt, Xb) + D
            bb = _solve(A, np.matmul(Xt, yb[:, :, None])[..., 0])
            eta = np.matmul(Xb, bb[:, :, None])[..., 0]
            ssr = (vb * (yb - eta) ** 2).sum(axis=1)
            peff = mask[batch].sum(axis=1)
            cb = _inv(A) * (ssr / np.maximum(nb - peff, 1))[:, None, None]
            converged[batch] = True
            dev[batch] = ssr
        beta[batch] = bb
        cov[batch] = cb
        eta_rows[rows] = eta[gl, pos]
        i0 = i1
    return beta, cov, eta_rows, converged, dev


def _solve(A, b):
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a singular item somewhere in the batch: minimum-norm solutions, as statsmodels' pinv
        return np.matmul(np.linalg.pinv(A), b[..., None])[..., 0]


def _inv(A):
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A)


def fit_elasticity(codes: np.ndarray, n_items: int, price: np.ndarray, units: np.ndarray, alpha: float = 0.05,
                   min_rows: int = 5, min_price_variation: float = 0.02, day: np.ndarray | None = None,
                   controls: str = "auto", model: str = "poisson") -> ElasticityFit:
    """``codes``: item code 0..n_items-1 per row; ``price``/``units``: floats, NaN for NULL; ``day``: whole days
    per row (NaN for NULL) or None when there is no date."""
    if not 0 < alpha < 1:
        raise InvalidArgument("alpha", f"must lie strictly between 0 and 1, got {alpha!r}", "Pass e.g. alpha := 0.05")
    if min_rows < 3:
        raise InvalidArgument("min_rows", f"must be at least 3, got {min_rows}", "Pass e.g. min_rows := 5")
    if controls not in ("auto", "none"):
        raise InvalidArgument("controls", f"must be 'auto' or 'none', got {controls!r}",
                              "Pass controls := 'auto' (trend, weekday, yearly terms from the date) or 'none'")
    if model not in ("poisson", "loglog"):
        raise InvalidArgument("model", f"must be 'poisson' or 'loglog', got {model!r}",
                              "Pass model := 'poisson' (GLM with log link, uses zero days) or 'loglog' (OLS of log units)")
    poisson = model == "poisson"
    codes = np.asarray(codes, dtype=np.int64)
    price = np.asarray(price, dtype=float)
    units = np.asarray(units, dtype=float)
    k = n_items
    ok = np.isfinite(price) & np.isfinite(units) & (price > 0) & ((units >= 0) if poisson else (units > 0))
    use_day = controls == "auto" and day is not None
    if use_day:
        day = np.floor(np.asarray(day, dtype=float))
        ok &= np.isfinite(day)  # without a date a row cannot be placed in time
    n_excl = np.bincount(codes[~ok], minlength=k)
    g, x = codes[ok], np.log(price[ok])
    yu = units[ok]
    n = np.bincount(g, minlength=k).astype(float)
    nn = np.maximum(n, 1)
    xbar = _bincount(g, x, k) / nn
    sxx = _bincount(g, (x - xbar[g]) ** 2, k)
    sold = _bincount(g, yu, k)
    pmin = np.full(k, np.nan)
    pmax = np.full(k, np.nan)
    if len(g):
        np.fmin.at(pmin, g, price[ok])
        np.fmax.at(pmax, g, price[ok])
    n_prices = np.where(pmax > pmin, 2, np.where(n > 0, 1, 0))
    sd_x = np.sqrt(sxx / np.maximum(n - 1, 1))
    min_sold = 2 * EVENTS_PER_COEF if poisson else 0  # events per coefficient for intercept and log price
    fit = (n >= min_rows) & (n_prices >= 2) & (sd_x >= min_price_variation) & (sxx > 0) & (sold > 0)
    fit &= sold >= min_sold
    if use_day:
        Z, cmask, groups = control_columns(g, k, day[ok], yu, poisson=poisson)
    else:
        Z, cmask, groups = np.zeros((len(g), 0)), np.zeros((k, 0)), [([], []) for _ in range(k)]
    X = np.column_stack([np.ones(len(g)), x, Z])
    mask = np.column_stack([np.ones((k, 2)), cmask])
    keep = fit[g]
    y = yu if poisson else np.log(yu)
    beta, cov, eta, conv, dev = _batched_glm(g[keep], X[keep], y[keep], mask, k, poisson)
    fit &= conv
    b = np.where(fit, beta[:, 1], np.nan)
    a = np.where(fit, beta[:, 0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se = np.where(fit, np.sqrt(cov[:, 1, 1]), np.nan)
        peff = mask.sum(axis=1)
        q = stats.t.ppf(1 - alpha / 2, np.maximum(n - peff, 1))
        gk = g[keep]
        ctrl = np.zeros(len(gk))
        if Z.shape[1]:
            ctrl = (Z[keep] * beta[gk, 2:]).sum(axis=1)
        ybar = sold / nn if poisson else _bincount(g, y, k) / nn
        if poisson:
            yk = y[keep]
            null = 2 * _bincount(gk, np.where(yk > 0, yk * np.log(yk / ybar[gk]), 0.0) - (yk - ybar[gk]), k)
            r2 = np.where(fit & (null > 0), 1 - dev / null, np.nan)
            smear = np.ones(k)
        else:
            syy = _bincount(g, (y - ybar[g]) ** 2, k)
            r2 = np.where(fit & (syy > 0), 1 - dev / syy, np.nan)
            smear = _bincount(gk, np.exp(y[keep] - eta), k) / nn
        # recent conditions: the item's last RECENT_DAYS days of history (all its rows without a date)
        if use_day:
            dk = day[ok][keep]
            last = np.full(k, -np.inf)
            if len(gk):
                np.maximum.at(last, gk, dk)
            recent = dk > last[gk] - RECENT_DAYS
        else:
            recent = np.ones(len(gk), dtype=bool)
        m = np.bincount(gk[recent], minlength=k)
        level = _bincount(gk[recent], np.exp(ctrl[recent]), k) / np.maximum(m, 1)
        factor = np.where(fit, smear * level, np.nan)
    zq = q
    bad_rows = ("a missing (NULL, NaN or infinite), zero or negative price or units" if not poisson else
                "a missing (NULL, NaN or infinite), zero or negative price or missing or negative units"
                ) + (", or a NULL date" if use_day else "")
    methods, notes = [], []
    for i in range(k):
        fitted, omitted = groups[i]
        methods.append(("poisson GLM (log link), robust SE" if poisson else "log-log OLS")
                       + ": log price" + "".join(" + " + s for s in fitted))
        parts = []
        if n[i] < min_rows:
            parts.append(f"only {int(n[i])} usable rows (needs {min_rows})")
        elif n_prices[i] < 2:
            parts.append(f"a single price ({pmin[i]:.4g}) was observed, so elasticity cannot be estimated")
        elif sd_x[i] < min_price_variation:
            parts.append(f"price varied too little (sd of log price {sd_x[i]:.3g} < {min_price_variation:g}) "
                         "for a reliable estimate")
        elif sold[i] <= 0:
            parts.append("no units sold, so elasticity cannot be estimated")
        elif sold[i] < min_sold:
            parts.append(f"only {sold[i]:.4g} units sold (needs {min_sold}: {EVENTS_PER_COEF} per coefficient) "
                         "for a reliable estimate")
        elif not conv[i]:
            parts.append("the demand model did not converge; no estimate")
        elif b[i] > 0:
            parts.append("positive elasticity: units rose with price; likely confounded (promotions not in the data, "
                         "or too few sales)")
        if fit[i] and omitted:
            parts.append(f"{'units sold' if poisson else 'rows'} ({int(sold[i] if poisson else n[i])}) allow "
                         f"{EVENTS_PER_COEF} per coefficient: fitted without {', '.join(omitted)} controls")
        if n_excl[i]:
            parts.append(f"{int(n_excl[i])} rows with {bad_rows} excluded")
        notes.append("; ".join(parts) or None)
    return ElasticityFit(b, a, se, b - zq * se, b + zq * se, r2, n.astype(np.int64), n_excl.astype(np.int64), factor,
                         pmin, pmax, notes, methods)


def expected_units(fit: ElasticityFit, price: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return fit.factor * np.exp(fit.intercept) * np.power(price, fit.elasticity)


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
