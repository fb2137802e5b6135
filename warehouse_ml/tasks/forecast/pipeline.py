"""From a panel to forecast rows, backtests and reorder quantities: what the SQL functions call.

:func:`forecast_panel` applies each method's declared attributes (``min_length``/``fallback``, ``min_series``,
``yearly_aware``) from the registry: short or empty series fall back and say so in ``method``, and a method that
fails for a group of series falls back to the naive forecast for that group instead of failing the others.
"""
from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist

import numpy as np

from ...progress import steps
from .panel import (FREQS, ForecastInputError, Panel, PanelForecast, PanelResult, Provenance, _combine, _gather,
                    mase_scale, period_dates, validate_horizon, validate_level)
from .registry import fit_predict, is_yearly_aware, method_class, method_names
from .seasonality import YearlyAdjust, _SubYearly


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def forecast_panel(panel: Panel, horizon: int, method: str = "auto", level: float = 0.95,
                   clip: bool = True, nn_config=None) -> PanelResult:
    """Forecast every series of a panel with ``method`` (a name in the registry). ``nn_config``: the method's
    own settings (``nn``: an NNConfig; ``gbm``: its ``Drivers``, cut to each group of series)."""
    validate_horizon(horizon)
    validate_level(level)
    if method not in method_names():
        raise ForecastInputError("method", f"unknown method {method!r}", f"Use one of {', '.join(method_names())}")
    cls = method_class(method)
    cls.check_available()  # a missing dependency is an error, not a silent fallback (even where one follows)
    cls.check_config(nn_config)
    y, lens, m = panel.y, panel.lens, panel.season
    N = len(lens)
    h = int(horizon)
    Y0 = np.nan_to_num(y, nan=0.0)
    empty = panel.n_obs == 0
    parts = []
    one = (~empty) & (lens < 3)
    rest = (~empty) & (~one)
    yearly = None
    step_days, monthly, _ = FREQS[panel.freq]
    if not monthly and rest.any() and int(lens.max()) * step_days >= 700:
        yearly = YearlyAdjust().fit(Y0, (np.arange(Y0.shape[1])[None, :] < lens[:, None]).astype(float), lens,
                                    panel.anchor, step_days)
        if not yearly.active.any():
            yearly = None
    create = dict(freq=panel.freq, level=level, config=nn_config)

    if one.any():
        ix = np.nonzero(one)[0]
        fc = fit_predict("naive", Y0[ix], lens[ix], m, h)
        fc.method = [p.replacing(method, f"short: {_plural(n, 'point')}") for p, n in zip(fc.method, lens[ix])]
        parts.append((ix, fc))
    if rest.any():
        ix = np.nonzero(rest)[0]
        why_instead = {}  # group method -> why it replaced, for every series, the method asked for
        if len(ix) < cls.min_series:
            why_instead[cls.fallback_panel] = (f"one model over all series needs at least {cls.min_series} series, "
                                               f"got {len(ix)}")
            groups = [(ix, cls.fallback_panel)]
        else:
            long = lens[ix] >= cls.min_length(panel.freq, m, h, lens[ix], nn_config)
            groups = [(ix[long], method), (ix[~long], cls.fallback)]
        for gix, meth in groups:
            if len(gix) == 0:
                continue
            try:
                gcls = method_class(meth)
                extra = {k: getattr(panel, k)[gix] for k in gcls.needs if k != "yearly"}
                sub = dict(create, config=nn_config.take(gix) if hasattr(nn_config, "take") else nn_config)
                fc = fit_predict(meth, Y0[gix], lens[gix], m, h, None if yearly is None else _SubYearly(yearly, gix),
                                 **sub, **extra)
                if meth in ("ets", "theta") and m > 1:
                    fc.method = [Provenance((meth,)) if lens[i] >= 2 * m
                                 else Provenance((meth,), seasonal=False).replacing(meth, "short") for i in gix]
                if meth in why_instead:
                    fc.method = [p.replacing(method, why_instead[meth]) for p in fc.method]
                elif meth != method:
                    fc.method = [p.replacing(method, f"short: {_plural(n, 'period')}")
                                 for p, n in zip(fc.method, lens[gix])]
            except Exception as e:  # noqa: BLE001 - never fail every series for one method's failure
                fc = fit_predict("naive", Y0[gix], lens[gix], m, h)
                fc.method = [p.replacing(meth, f"failed: {type(e).__name__}") for p in fc.method]
            if yearly is not None:
                fc.method = [replace(p, yearly=True) if a and is_yearly_aware(p) else p
                             for p, a in zip(fc.method, yearly.active[gix])]
            parts.append((gix, fc))
    fc = _combine(parts, N, h)
    # A forecast that came out non-finite (a degenerate series) falls back to naive for that series.
    bad = (~empty) & ~np.all(np.isfinite(fc.mean), axis=1)
    if bad.any():
        ix = np.nonzero(bad)[0]
        nf = fit_predict("naive", Y0[ix], lens[ix], m, h)
        for k, i in enumerate(ix):
            fc.mean[i], fc.sigma[i], fc.psi[i] = nf.mean[k], nf.sigma[k], nf.psi[k]
            fc.scale[i] = 1.0
            fc.method[i] = nf.method[k].replacing(fc.method[i] or method, "failed")
    for i in np.nonzero(empty)[0]:
        fc.method[i] = Provenance(why="no non-NULL values")
    lower, upper = fc.interval(level)
    for gix, part in parts:
        if part.bands is not None:
            ok = ~bad[gix]
            lower[gix[ok]], upper[gix[ok]] = part.bands[0][ok], part.bands[1][ok]
    mean = fc.mean
    if clip:
        mean, lower, upper = np.maximum(mean, 0), np.maximum(lower, 0), np.maximum(upper, 0)
    steps = np.arange(1, h + 1)
    per = panel.start[:, None] + lens[:, None] - 1 + steps[None, :]
    days = period_dates(per, panel.freq, panel.anchor[:, None])
    keep = ~empty
    sidx = np.repeat(np.arange(N)[keep], h)
    return PanelResult(sidx, days[keep].ravel(), mean[keep].ravel(), lower[keep].ravel(), upper[keep].ravel(),
                       fc.method, panel.freq, m, panel, fc)


def backtest_panel(panel: Panel, horizon: int, folds: int = 3, methods=("seasonal_naive", "ets", "theta",
                   "croston", "auto"), level: float = 0.95) -> dict:
    """Rolling-origin evaluation: ``folds`` origins spaced by ``horizon`` at the end of every series.

    Returns per (series, method): mase, smape, rmse, coverage (share of actuals inside the ``level`` interval)
    averaged over the folds a series is long enough for (NaN where none), and n_folds.
    """
    validate_horizon(horizon)
    validate_level(level)
    if not isinstance(folds, (int, np.integer)) or isinstance(folds, bool) or not 1 <= folds <= 100:
        raise ForecastInputError("folds", f"must be a whole number from 1 to 100, got {folds!r}", "Pass e.g. 3")
    h = int(horizon)
    N = len(panel.lens)
    m = panel.season
    Y0 = np.nan_to_num(panel.y, nan=0.0)
    out = {}
    for meth in steps(methods, f"backtest of {N} series", unit="method"):
        acc = {k: np.zeros(N) for k in ("mase", "smape", "rmse", "coverage")}
        nf = np.zeros(N)
        for f in range(folds, 0, -1):
            cut = panel.lens - f * h
            ok = (cut >= 3) & (panel.n_obs > 0)
            if not ok.any():
                continue
            ix = np.nonzero(ok)[0]
            Ysub = Y0[ix].copy()
            Ysub[np.arange(Ysub.shape[1])[None, :] >= cut[ix][:, None]] = np.nan
            sub = Panel(Ysub, cut[ix], panel.start[ix], panel.anchor[ix], np.maximum(panel.n_obs[ix], 1), panel.freq, m)
            res = forecast_panel(sub, h, meth, level)
            fc_mean = res.forecast.reshape(len(ix), h)
            lo = res.lower.reshape(len(ix), h)
            hi = res.upper.reshape(len(ix), h)
            actual = _gather(Y0[ix], cut[ix][:, None] + np.arange(h)[None, :])
            scale = mase_scale(Y0[ix], cut[ix], m)
            err = fc_mean - actual
            mae = np.mean(np.abs(err), axis=1)
            den = np.abs(fc_mean) + np.abs(actual)
            sm = np.mean(np.where(den > 0, 2 * np.abs(err) / np.where(den > 0, den, 1), 0.0), axis=1)
            acc["mase"][ix] += np.where(scale > 0, mae / np.where(scale > 0, scale, 1), np.nan)
            acc["smape"][ix] += sm
            acc["rmse"][ix] += np.sqrt(np.mean(err ** 2, axis=1))
            acc["coverage"][ix] += np.mean((actual >= lo) & (actual <= hi), axis=1)
            nf[ix] += 1
        res = {k: np.where(nf > 0, v / np.maximum(nf, 1), np.nan) for k, v in acc.items()}
        res["n_folds"] = nf
        out[meth] = res
    return out


def reorder_quantities(fc: PanelForecast, lead_time: int, service_level: float, on_hand: np.ndarray,
                       review_period: int = 0) -> dict:
    """Safety stock and reorder point from the forecast distribution of demand over the lead time.

    lead_time_demand = sum of the first ``lead_time`` forecasts; safety_stock = z(service_level) * sd of that sum
    (from the model's error structure, so autocorrelated errors widen it); reorder_point = demand + safety;
    order_qty = what brings stock back up to the order-up-to level (demand over lead time + review period,
    plus its safety stock) when on_hand is at or below the reorder point, else 0.
    """
    z = NormalDist().inv_cdf(service_level)
    L = int(lead_time)
    mean = np.maximum(fc.mean, 0)
    ltd = mean[:, :L].sum(1)
    sd = fc.sum_sd(L)
    ss = np.maximum(z * np.nan_to_num(sd, nan=0.0), 0)
    rop = ltd + ss
    if review_period:
        R = L + int(review_period)
        up_to = mean[:, :R].sum(1) + np.maximum(z * np.nan_to_num(fc.sum_sd(R), nan=0.0), 0)
    else:
        up_to = rop
    order = np.where(on_hand <= rop, np.maximum(up_to - on_hand, 0), 0.0)
    return dict(lead_time_demand=ltd, safety_stock=ss, reorder_point=rop, order_qty=np.ceil(order - 1e-9))
