"""``method := 'xreg'``: the drivers' effects as multipliers from a pooled log-linear regression, the rest
forecast by ``auto`` (like BigQuery's ARIMA_PLUS_XREG: a regression on the drivers with a time-series model of
what they leave).

Demand is multiplicative: a promotion lifts a product by a factor, a price cut by ``price^elasticity``, a holiday
cuts a day by a share, whatever the level. So per series a Poisson regression (log link: the quasi-likelihood
of counts and of any non-negative demand) of ``y[t]`` on

* the **effects**: each driver (centred on its median over the series' history, so 0 is its usual value; a
  strictly positive driver with more than two values, such as a price, on the log scale, so its coefficient is
  an elasticity) and, with ``holidays``, flags for a holiday, the day before and the day after;
* **nuisance** terms that absorb what the effects must not: a level per block of ``BLOCK`` periods (trend,
  yearly cycle, level shifts) and the phase of the season (the weekday).

The effects are shrunk towards the panel (empirical Bayes): a first fit gives every series' coefficients and
their sampling variances (Poisson, times each series' own dispersion); the panel's mean and between-series
variance of each coefficient become a normal prior, and a second fit is penalised towards it. A series whose
driver never moved in its history gets the panel's effect; a noisy series, mostly the panel's; a long clear one,
its own. Only the effects make the multiplier ``exp(effects . coef)``; the series divided by it (its demand at the
usual price, without promotion or holiday) is forecast by ``auto`` and multiplied by the horizon's multipliers.
Series with negative values, no positive one or at most ``2 * BLOCK`` periods keep a multiplier of 1. The
regressions see each column divided by its spread over the panel, so the penalties mean the same in any unit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gbm import HOLIDAY_SHIFTS, Drivers, one_thread
from .panel import ForecastInputError, Provenance, _gather, period_dates, validate_horizon, validate_level
from .registry import Method, fit_predict, register

BLOCK = 28  # periods per level block of the nuisance terms
LOG_LIMIT = np.log(20.0)  # a multiplier stays within 1/20 .. 20
CHUNK = 256  # series per batch of the normal equations (memory: CHUNK x T x columns floats)


def effect_columns(drivers: Drivers, lens: np.ndarray, start, anchor, freq: str) -> tuple[np.ndarray, list[str]]:
    """``(N, T + h, P)`` effect columns over each series' history followed by its horizon, centred so 0 is the
    usual value, and the driver (or 'holiday') each column belongs to."""
    hist_len = drivers.history.shape[1]
    D = drivers.extended(lens)  # (N, T + h, F), NaN outside each series
    N, TH, F = D.shape
    inside = np.arange(hist_len)[None, :] < lens[:, None]
    cols, owners = [], []
    names = drivers.names or tuple(f"driver{k}" for k in range(F))
    for k in range(F):
        x = D[:, :, k]
        past = np.where(inside, x[:, :hist_len], np.nan)
        positive = bool(np.nanmin(x) > 0) if np.isfinite(x).any() else False
        continuous = len(np.unique(past[np.isfinite(past)])[:3]) > 2
        if positive and continuous:  # a price: elasticity on the log scale
            x, past = np.log(x), np.log(past)
        with np.errstate(all="ignore"):
            usual = np.nan_to_num(np.nanmedian(past, axis=1))
        cols.append(np.nan_to_num(x - usual[:, None]))
        owners.append(names[k])
    if len(drivers.holidays):
        dates = period_dates(start[:, None] + np.arange(TH)[None, :], freq, anchor[:, None])
        for shift in HOLIDAY_SHIFTS:
            cols.append(np.isin(dates + shift, drivers.holidays).astype(float))
            owners.append("holiday")
    return (np.stack(cols, axis=2) if cols else np.zeros((N, TH, 0))), owners


def _nuisance(T: int, m: int, start: np.ndarray) -> np.ndarray:
    """``(N, T, Q)``: one level per block of ``BLOCK`` periods and the phase of the season (one phase left out)."""
    blocks = np.eye(max(-(-T // BLOCK), 1))[np.arange(T) // BLOCK]  # (T, B)
    N = len(start)
    out = [np.broadcast_to(blocks, (N,) + blocks.shape)]
    if m > 1:
        phase = (start[:, None] + np.arange(T)[None, :]) % m
        out.append(np.eye(m)[phase][:, :, 1:])
    return np.concatenate(out, axis=2)


def _poisson(y, M, start, m, E, prior_mean, prior_prec, iters: int = 12):
    """Per series penalised Poisson regression (quasi-likelihood: any non-negative ``y``) of ``y`` divided by its
    mean (the coefficients do not change; the penalties then mean the same at every scale) on the nuisance terms
    and the effects ``E``, the effects' penalty ``prior_prec (N, P) * (coef - prior_mean)^2`` (and a weak ridge on
    the nuisance). Returns the effects' coefficients and their sampling variances ``(N, P)`` (times each series'
    dispersion), and the dispersions ``(N,)``."""
    Z = _nuisance(y.shape[1], m, start)
    X = np.concatenate([Z, E], axis=2) * M[:, :, None]
    N, T, C = X.shape
    Q = Z.shape[2]
    y = y / np.maximum(np.sum(y * M, axis=1) / np.maximum(M.sum(1), 1), 1e-12)[:, None]
    pen = np.concatenate([np.full((N, Q), 1e-4), prior_prec], axis=1)[:, :, None] * np.eye(C)[None]
    target = np.concatenate([np.zeros((N, Q)), prior_mean], axis=1)
    Xt = X.transpose(0, 2, 1)
    coef = np.zeros((N, C))
    for _ in range(iters):
        eta = np.clip(np.einsum("ntc,nc->nt", X, coef), -20, 20)
        mu = np.exp(eta)
        w = mu * M
        z = eta + (y - mu) / mu
        A = np.matmul(Xt * w[:, None, :], X) + pen
        b = np.einsum("nct,nt->nc", Xt, w * z) + pen.diagonal(axis1=1, axis2=2) * target
        coef = np.linalg.solve(A, b[..., None])[..., 0]
    mu = np.exp(np.clip(np.einsum("ntc,nc->nt", X, coef), -20, 20))
    dispersion = np.sum((y - mu) ** 2 / mu * M, axis=1) / np.maximum(M.sum(1) - C, 1)
    var = np.diagonal(np.linalg.inv(A), axis1=1, axis2=2)[:, Q:] * dispersion[:, None]
    return coef[:, Q:], var, np.maximum(dispersion, 1e-12)


@dataclass
class Effects:
    """The fitted driver multipliers of a panel: ``log_mult (N, T + h)`` over history and horizon, the
    coefficients ``(N, P)`` and the driver each column belongs to."""

    log_mult: np.ndarray
    coef: np.ndarray
    columns: np.ndarray  # (N, T + h, P)
    owners: list[str]

    def part(self, owner: str) -> np.ndarray:
        """``(N, T + h)`` log multiplier of one driver (or 'holiday') alone."""
        keep = [k for k, o in enumerate(self.owners) if o == owner]
        return np.einsum("ntp,np->nt", self.columns[:, :, keep], self.coef[:, keep])


@one_thread
def fit_effects(Y: np.ndarray, upto: np.ndarray, drivers: Drivers, lens: np.ndarray, m: int, start, anchor,
                freq: str) -> Effects:
    """The pooled, shrunk driver effects of a panel fitted on each series' first ``upto`` periods (the history
    before a rolling origin, or all of it); multipliers for every column of history and horizon."""
    E, owners = effect_columns(drivers, lens, start, anchor, freq)
    N, TH, P = E.shape
    T = Y.shape[1]
    M = (np.arange(T)[None, :] < upto[:, None]).astype(float)
    y = np.where(M > 0, np.nan_to_num(Y), 0.0)
    usable = np.all((y >= 0) | (M == 0), axis=1) & (np.sum(y * M, axis=1) > 0) & (upto > 2 * BLOCK)
    coef = np.zeros((N, P))
    if P and usable.any():
        ix = np.nonzero(usable)[0]
        start = np.asarray(start)[ix]
        past = np.where(M[ix, :, None] > 0, E[ix, :T], np.nan)
        moved = np.nanmax(past, axis=1) > np.nanmin(past, axis=1)  # (n, P): the column varied in the history
        spread_of = np.nanstd(past.reshape(-1, P), axis=0)  # the fits see unit-spread columns: scale-free penalties
        unit = np.where(np.isfinite(spread_of) & (spread_of > 0), spread_of, 1.0)
        Es = E[ix, :T] / unit
        first = _chunked(y[ix], M[ix], start, m, Es, np.zeros((len(ix), P)), np.full((len(ix), P), 1e-2))
        b, v = first[0], first[1]
        prior_mean = np.array([np.median(b[moved[:, k], k]) if moved[:, k].any() else 0.0 for k in range(P)])
        spread = np.array([max(np.var(b[moved[:, k], k]) - np.mean(v[moved[:, k], k]), 1e-6)
                           if moved[:, k].sum() > 1 else 1.0 for k in range(P)])
        second = _chunked(y[ix], M[ix], start, m, Es, np.broadcast_to(prior_mean, (len(ix), P)),
                          np.broadcast_to(1.0 / spread, (len(ix), P)) * first[2][:, None])
        coef[ix] = second[0] / unit
    log_mult = np.clip(np.einsum("ntp,np->nt", E, coef), -LOG_LIMIT, LOG_LIMIT)
    return Effects(log_mult, coef, E, owners)


def _chunked(y, M, start, m, E, prior_mean, prior_prec):
    """:func:`_poisson` on ``CHUNK`` series at a time (its design is ``CHUNK x T x columns`` floats)."""
    parts = [_poisson(y[i:i + CHUNK], M[i:i + CHUNK], start[i:i + CHUNK], m, E[i:i + CHUNK],
                      prior_mean[i:i + CHUNK], prior_prec[i:i + CHUNK]) for i in range(0, len(y), CHUNK)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


class SharedEffects:
    """The effects of one panel fitted once per cut, for every xreg candidate of ``auto``."""

    def __init__(self, drivers: Drivers, lens: np.ndarray, m: int, start, anchor, freq: str):
        self.args = (drivers, lens, m, start, anchor, freq)
        self.cut, self.effects = None, None

    def at(self, X, cut: np.ndarray) -> Effects:
        if self.cut is None or not np.array_equal(self.cut, cut):
            self.cut, self.effects = cut.copy(), fit_effects(X, cut, *self.args)
        return self.effects


class XregOrigins:
    """A univariate method on the driver-adjusted series as one of ``auto``'s candidates: the effects are fitted
    on the data before the cut of its first fit (the earliest rolling origin: its forecasts of the origins are
    out of sample), the series divided by their multipliers, and each origin's forecast multiplied by the
    multipliers of its window."""

    def __init__(self, inner, shared: SharedEffects):
        self.inner, self.shared = inner, shared

    def fit(self, X, cut):
        self.effects = self.shared.at(X, np.asarray(cut))
        self.inner.fit(self._adjusted(X), cut)
        self.cut = np.asarray(cut)
        return self

    def refilter(self, X, cut):
        if hasattr(self.inner, "refilter"):
            self.inner.refilter(self._adjusted(X), cut)
        else:
            self.inner.fit(self._adjusted(X), cut)
        self.cut = np.asarray(cut)

    def _adjusted(self, X):
        return X / np.exp(self.effects.log_mult[:, :X.shape[1]])

    def predict(self, h):
        return multiplied(self.inner.predict(h), self.effects.log_mult, self.cut)


def multiplied(fc, log_mult: np.ndarray, cut: np.ndarray):
    """A forecast of the driver-adjusted series back in demand: mean and spread times each step's multiplier."""
    mult = np.exp(_gather(log_mult, cut[:, None] + np.arange(fc.mean.shape[1])[None, :]))
    fc.mean = fc.mean * mult
    fc.scale = mult if fc.scale is None else fc.scale * mult
    return fc


@register
class Xreg(Method):
    """The driver multipliers (see the module docstring) times ``auto``'s forecast of the adjusted series."""

    name = "xreg"
    needs = ("yearly", "start", "anchor")
    takes_drivers = True

    def __init__(self, season_length: int = 7, freq: str = "daily", level: float = 0.95, drivers=None):
        super().__init__(season_length)
        self.check_config(drivers)
        self.freq, self.level, self.drivers = freq, validate_level(level), drivers

    @classmethod
    def check_config(cls, config) -> None:
        if not isinstance(config, Drivers) or (config.history.shape[2] == 0 and not len(config.holidays)):
            raise ForecastInputError("features", "method := 'xreg' is a regression on drivers, and none were given",
                                     "Pass features := [...] (with future := ...), holidays := 'US' or events := "
                                     "... (forecast_demand and explain_forecast take them), or use another method")

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        return cls(m, freq, level, config)

    def fit(self, y, lens=None, yearly=None, start=None, anchor=None):
        self.lens, self.yearly, self.start, self.anchor = np.asarray(lens), yearly, start, anchor
        self.Y = np.asarray(y, float)
        self.effects = fit_effects(self.Y, self.lens, self.drivers, self.lens, self.m, start, anchor, self.freq)
        return self

    def adjusted(self) -> np.ndarray:
        """The history divided by its multipliers: demand at the usual price, without promotion or holiday."""
        return self.Y / np.exp(self.effects.log_mult[:, :self.Y.shape[1]])

    def predict(self, h):
        h = validate_horizon(h)
        base = fit_predict("auto", self.adjusted(), self.lens, self.m, h, self.yearly, freq=self.freq,
                           level=self.level, start=self.start, anchor=self.anchor)
        base.method = [Provenance(tuple("xreg_" + u for u in p.used), p.seasonal) if p.then is None and p.used else p
                       for p in base.method]
        return multiplied(base, self.effects.log_mult, self.lens)
