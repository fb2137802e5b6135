"""Forecasts taken apart: level, trend, season, yearly pattern, holidays and drivers, which add up to the forecast.

The decomposable model is additive ETS (damped or no trend, additive or no season, chosen per series by AICc)
on data with the yearly Fourier pattern removed (daily and weekly series covering two years, where an F test
finds the pattern), the model ``forecast_demand(..., method := 'ets')`` uses. Per step ``k`` after the end:
``level`` is the smoothed level, ``trend`` the damped trend ``(phi + ... + phi^k) * b``, ``season`` the
seasonal state of that phase (weekly for daily data), ``yearly`` the Fourier pattern; their sum is the forecast
(not clipped at zero, so the parts add up exactly). Series shorter than three periods get the last value as
level and zero parts.

With drivers (``explain_global``), the model is the global gradient-boosted one (``method := 'gbm'``), which has no
level or season states: ``level`` is its forecast with every driver at its baseline and no holiday, ``holiday``
and each driver (``drivers``) what they add to it, ``residual`` their interactions (see ``GBM.explain``).
With ``method := 'xreg'`` (``explain_xreg``), ``level`` is ``auto``'s forecast of the driver-adjusted series and
each driver (and ``holiday``) what its multiplier adds, in the same sense as gbm's: the forecast minus the forecast
with that driver at its usual value.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ets import ETS
from .gbm import GBM
from .panel import FREQS, Panel, _gather, validate_horizon
from .pipeline import forecast_panel
from .seasonality import YearlyAdjust
from .xreg import fit_effects

PARTS = ("level", "trend", "season", "yearly", "holiday", "residual")


@dataclass
class Explanation:
    parts: dict[str, np.ndarray]  # name in PARTS -> (N, h)
    method: list[str]
    drivers: dict[str, np.ndarray] = field(default_factory=dict)  # driver name -> (N, h)

    @property
    def forecast(self) -> np.ndarray:
        return sum(self.parts.values()) + sum(self.drivers.values())


def explain_global(panel: Panel, horizon: int, drivers) -> Explanation:
    """The gbm forecast of every series with its drivers' and holidays' contributions."""
    h = validate_horizon(horizon)
    N, T = panel.y.shape
    inside = np.arange(T)[None, :] < panel.lens[:, None]
    model = GBM(panel.season, panel.freq, drivers=drivers).fit(np.where(inside, np.nan_to_num(panel.y), np.nan),
                                                                panel.lens, panel.start, panel.anchor)
    model.predict(h)
    base, contributions, residual = model.explain()
    parts = {p: np.zeros((N, h)) for p in PARTS}
    parts["level"], parts["residual"] = base, residual
    if "holiday" in contributions:
        parts["holiday"] = contributions.pop("holiday")
    return Explanation(parts, ["gbm"] * N, contributions)


def explain_xreg(panel: Panel, horizon: int, drivers) -> Explanation:
    """``forecast_demand(method := 'xreg')``'s forecast (unclipped) of every series with its drivers' and holidays'
    contributions: ``full * (1 - exp(-part))`` for each driver's log multiplier ``part``; ``residual`` is what the
    products leave (their interactions, and the clipping of a multiplier), so the parts sum to the forecast."""
    h = validate_horizon(horizon)
    N = len(panel.lens)
    res = forecast_panel(panel, h, "xreg", clip=False, nn_config=drivers)
    full = np.zeros((N, h))
    full[res.series.reshape(-1, h)[:, 0]] = res.forecast.reshape(-1, h)
    effects = fit_effects(panel.y, panel.lens, drivers, panel.lens, panel.season, panel.start, panel.anchor,
                          panel.freq)
    used = np.array([any(u.startswith("xreg_") for u in p.methods) for p in res.method])[:, None]
    ahead = panel.lens[:, None] + np.arange(h)[None, :]
    parts = {p: np.zeros((N, h)) for p in PARTS}
    parts["level"] = np.where(used, full / np.exp(_gather(effects.log_mult, ahead)), full)
    contributions = {}
    for owner in dict.fromkeys(effects.owners):
        part = np.where(used, full * (1 - np.exp(-_gather(effects.part(owner), ahead))), 0.0)
        if owner == "holiday":
            parts["holiday"] = part
        else:
            contributions[owner] = part
    parts["residual"] = full - sum(parts.values()) - sum(contributions.values(), np.zeros((N, h)))
    return Explanation(parts, list(res.method), contributions)


def explain_panel(panel: Panel, horizon: int) -> Explanation:
    h = validate_horizon(horizon)
    lens, m = panel.lens, panel.season
    N = len(lens)
    Y0 = np.nan_to_num(panel.y, nan=0.0)
    M = (np.arange(Y0.shape[1])[None, :] < lens[:, None]).astype(float)
    parts = {p: np.zeros((N, h)) for p in PARTS}
    method = ["naive (short)"] * N
    fit = lens >= 3
    if fit.any():
        ix = np.nonzero(fit)[0]
        Y, L = Y0[ix], lens[ix]
        step_days, monthly, _ = FREQS[panel.freq]
        if not monthly and int(L.max()) * step_days >= 700:
            yearly = YearlyAdjust().fit(Y, M[ix], L, panel.anchor[ix], step_days)
            Y = Y - yearly.pattern
            parts["yearly"][ix] = yearly.future(L, h)
        model = ETS(m).fit(np.where(M[ix] > 0, Y, np.nan), L)
        steps = np.arange(1, h + 1)
        for f_i, f in enumerate(model.fits):
            sel = np.nonzero(model.chosen == f_i)[0]
            if not len(sel):
                continue
            rows = ix[sel]
            parts["level"][rows] = f["l"][sel, None]
            if f["trend"]:
                parts["trend"][rows] = np.cumsum(f["phi"][sel, None] ** steps[None, :], axis=1) * f["b"][sel, None]
            phase = (L[sel, None] + steps[None, :] - 1) % f["m"]
            parts["season"][rows] = np.take_along_axis(f["S"][sel], phase, axis=1)
            label = "ets(A,%s,%s)" % ("Ad" if f["trend"] else "N", "A" if f["seasonal"] else "N")
            for r in rows:
                method[r] = label
    short = ~fit & (panel.n_obs > 0)
    if short.any():
        ix = np.nonzero(short)[0]
        parts["level"][ix] = _gather(Y0[ix], (lens[ix] - 1)[:, None])
    return Explanation(parts, method)
