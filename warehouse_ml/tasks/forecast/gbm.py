"""``method := 'gbm'``: one gradient-boosted model over all series, with drivers (prices, promotions, events)
and holidays.

A "lag-h" direct model: the target ``y[t]`` (divided by its series' mean, so one model serves every scale) is
learned from what is known ``h`` periods before it: the values ``h .. h+6`` periods back, the same phase of the
season one and two seasons before the horizon, the means of the 7 and 28 periods ending ``h`` back, the
calendar of ``t`` (phase of the season, month, day of the year), a holiday flag for ``t`` and its neighbours,
the drivers' values at ``t`` (known in advance: planned prices, the promotion calendar, the user's events) and
the series' scale. The same features exist for every step of the horizon, so one model forecasts all of them,
and every feature of a target in ``[cut, cut + h)`` comes from before ``cut``: a model trained on the data
before one cut forecasts from any later cut without leaking (what ``auto``'s rolling origins use, see
:class:`GBMOrigins`).

scikit-learn's ``HistGradientBoostingRegressor`` (absolute error: the median, which MASE rewards) is fitted
twice: without the last ``h`` periods, whose errors calibrate a split-conformal band (the ``level`` quantile
of the scaled absolute errors), then on everything for the forecast.

:meth:`GBM.explain` takes the forecast apart: the contribution of a driver (or of the holidays) is the forecast
minus the forecast with that driver at its baseline (the series' median over its history: no promotion, the
usual price; no holiday); ``base`` is the forecast with every driver at its baseline, and ``residual`` (the
interactions) makes the parts sum exactly to the forecast.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from .panel import PanelForecast, Provenance, period_dates, validate_horizon, validate_level
from .registry import Method, register

MAX_ROWS = 300_000
LAGS = 7
HOLIDAY_SHIFTS = (-1, 0, 1)  # the day before, the day, the day after



@dataclass
class Drivers:
    """Known inputs of a panel: per series and period of history ``(N, T, F)`` and of the horizon ``(N, h, F)``
    (``F`` may be 0), the epoch days that are holidays, and the name of each of the ``F`` columns."""

    history: np.ndarray
    future: np.ndarray
    holidays: np.ndarray  # sorted epoch days
    names: tuple[str, ...] = field(default=())

    def take(self, ix: np.ndarray) -> "Drivers":
        return Drivers(self.history[ix], self.future[ix], self.holidays, self.names)

    def extended(self, lens: np.ndarray) -> np.ndarray:
        """``(N, T + h, F)``: each series' history followed by its future right after its own end."""
        N, T, F = self.history.shape
        h = self.future.shape[1]
        out = np.concatenate([self.history, np.full((N, h, F), np.nan)], axis=1)
        cols = lens[:, None] + np.arange(h)[None, :]
        out[np.arange(N)[:, None], cols] = self.future
        return out

    @staticmethod
    def none(N: int, T: int, h: int) -> "Drivers":
        return Drivers(np.zeros((N, T, 0)), np.zeros((N, h, 0)), np.zeros(0, np.int64))


def _direct_psi(N: int, h: int) -> np.ndarray:
    """A direct model's error structure: each step's error on its own, the same spread at every step."""
    psi = np.zeros((N, h))
    psi[:, 0] = 1.0
    return psi


def one_thread(method):
    """Run ``method`` with OpenMP and BLAS on one thread: scikit-learn's boosting (and OpenBLAS on many small
    matrices) spins its threads while waiting, which on a busy (shared) machine turns a one-second fit into a
    minute (measured: 0.9 s vs 79 s on 2 loaded cores; xreg's regressions 5 s vs 115 s)."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return method(*args, **kwargs)

    return run


def _hgb():
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(loss="absolute_error", max_iter=200, learning_rate=0.1, random_state=0)


class _Design:
    """The feature rows of a panel: ``rows(series, t)`` for targets at columns ``t`` of the given series.

    ``Y`` (N, T) holds the data (NaN where unknown); the scale of each series is its mean over its first
    ``upto`` periods, so a model evaluated after ``upto`` learns nothing from the data it is judged on."""

    def __init__(self, Y, upto, h, m, freq, start, anchor, D, holidays):
        N, T = Y.shape
        inside = np.arange(T)[None, :] < upto[:, None]
        mean = np.nanmean(np.where(inside, Y, np.nan), axis=1) if T else np.zeros(N)
        self.scale = np.where(np.isfinite(mean) & (mean > 0), mean, 1.0)
        self.Ys = np.concatenate([Y / self.scale[:, None], np.full((N, h), np.nan)], axis=1)
        self.csum = np.nancumsum(np.pad(self.Ys, ((0, 0), (1, 0))), axis=1)
        self.h, self.m, self.freq, self.start, self.anchor = h, m, freq, start, anchor
        self.D, self.holidays = D, holidays  # D: (N, T + h, F) drivers

    @property
    def n_drivers(self) -> int:
        return self.D.shape[2]

    def rows(self, series: np.ndarray, t: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
        """Columns: lags, seasonal lags, rolling means, calendar, holidays (if any), log scale, the drivers'
        values at ``t`` (or ``at``: other values, for explain)."""
        Ys, h, m = self.Ys, self.h, self.m

        def lag(k):
            c = t - k
            return np.where(c >= 0, Ys[series, np.clip(c, 0, None)], np.nan)

        season = m * int(np.ceil(h / m)) if m > 1 else h
        cols = [lag(h + j) for j in range(LAGS)] + [lag(season), lag(season + m)]
        for w in (7, 28):
            end = np.clip(t - h + 1, 0, None)
            begin = np.clip(end - w, 0, None)
            cols.append((self.csum[series, end] - self.csum[series, begin]) / np.maximum(end - begin, 1))
        period = self.start[series] + t
        dates = period_dates(period, self.freq, self.anchor[series])
        d64 = dates.astype("datetime64[D]")
        doy = (d64 - d64.astype("datetime64[Y]")).astype(int)
        month = d64.astype("datetime64[M]").astype(int) % 12
        cols += [period % max(m, 1), month, doy, (dates + 3) % 7]  # phase, month, day of the year, weekday
        if len(self.holidays):
            cols += [np.isin(dates + s, self.holidays).astype(float) for s in HOLIDAY_SHIFTS]
        cols.append(np.log1p(self.scale[series]))
        return np.column_stack(cols + [self.D[series, t] if at is None else at])

    def holiday_columns(self) -> slice:
        """Where the holiday flags sit in a row (empty without holidays)."""
        first = LAGS + 2 + 2 + 4
        return slice(first, first + (len(HOLIDAY_SHIFTS) if len(self.holidays) else 0))

    def training(self, lens: np.ndarray, before: np.ndarray, max_rows: int):
        """(series, t) of the targets inside each series and before its ``before`` column, the most recent
        ``max_rows`` of them (they describe today's demand best)."""
        T = self.Ys.shape[1] - self.h
        cols = np.arange(T)[None, :]
        ok = (cols < np.minimum(lens, before)[:, None]) & (cols >= self.h + LAGS - 1)
        series, t = np.nonzero(ok & np.isfinite(self.Ys[:, :T]))
        if len(series) > max_rows:
            keep = np.argsort(-(t - before[series]), kind="stable")[:max_rows]
            series, t = series[keep], t[keep]
        return series, t


@register
class GBM(Method):
    """One global gradient-boosted model (see the module docstring); ``drivers`` come from the SQL layer."""

    name = "gbm"
    needs = ("start", "anchor")
    takes_drivers = True
    min_series = 1

    def __init__(self, season_length: int = 7, freq: str = "daily", level: float = 0.95, drivers=None):
        super().__init__(season_length)
        self.freq, self.level, self.drivers = freq, validate_level(level), drivers

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        return cls(m, freq, level, config)

    def fit(self, y, lens=None, start=None, anchor=None):
        self.lens = np.asarray(lens, dtype=np.int64)
        T = np.asarray(y).shape[1]
        self.Y = np.where(np.arange(T)[None, :] < self.lens[:, None], np.nan_to_num(np.asarray(y, float)), np.nan)
        self.start, self.anchor = start, anchor
        return self

    def _design(self, h: int, upto: np.ndarray) -> _Design:
        N, T = self.Y.shape
        drv = self.drivers or Drivers.none(N, T, h)
        return _Design(self.Y, upto, h, self.m, self.freq, self.start, self.anchor, drv.extended(self.lens),
                       drv.holidays)

    @one_thread
    def predict(self, h):
        h = validate_horizon(h)
        N = len(self.lens)
        lens = self.lens
        design = self._design(h, lens)
        series, t = design.training(lens, lens, MAX_ROWS)
        X, target = design.rows(series, t), design.Ys[series, t]
        calib = t >= lens[series] - h
        fc_sd_q = 1.0
        if calib.sum() >= 20 and (~calib).sum() >= 50:
            cal = _hgb().fit(X[~calib], target[~calib])
            fc_sd_q = float(np.quantile(np.abs(cal.predict(X[calib]) - target[calib]), self.level))
        self.model = _hgb().fit(X, target)
        self.design = design
        fs, ft = np.repeat(np.arange(N), h), (lens[:, None] + np.arange(h)[None, :]).ravel()
        self.future_at = fs, ft
        pred = np.maximum(self.model.predict(design.rows(fs, ft)).reshape(N, h), 0) * design.scale[:, None]
        band = fc_sd_q * design.scale[:, None] * np.ones((1, h))
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        return PanelForecast(pred, np.ones(N), _direct_psi(N, h), band / z, [Provenance(("gbm",))] * N,
                             bands=(pred - band, pred + band))

    @one_thread
    def explain(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """After :meth:`predict`: (base, {driver or 'holiday': contribution}, residual), each ``(N, h)`` in the
        data's units and unclipped, with base + contributions + residual = the unclipped forecast."""
        design, (fs, ft) = self.design, self.future_at
        N, h, F = len(self.lens), design.h, design.n_drivers
        scale = np.repeat(design.scale, h)

        def f(at, holidays=True):
            X = design.rows(fs, ft, at)
            if not holidays:
                X[:, design.holiday_columns()] = 0.0
            return (self.model.predict(X) * scale).reshape(N, h)

        # baseline of each driver: its median over the series' own history (no promotion, the usual price)
        T = self.Y.shape[1]
        hist = np.where(np.arange(T)[None, :, None] < self.lens[:, None, None], design.D[:, :T], np.nan)
        with np.errstate(all="ignore"):
            baseline = np.nan_to_num(np.nanmedian(hist, axis=1))[fs] if F else np.zeros((len(fs), 0))
        at = design.D[fs, ft]
        names = (self.drivers.names if self.drivers is not None else ()) or tuple(f"driver{k}" for k in range(F))
        full = f(at)
        parts = {}
        for name in dict.fromkeys(names):
            cols = [k for k, n in enumerate(names) if n == name]
            alt = at.copy()
            alt[:, cols] = baseline[:, cols]
            parts[name] = full - f(alt)
        with_holidays = len(design.holidays) > 0
        if with_holidays:
            parts["holiday"] = full - f(at, holidays=False)
        base = f(baseline, holidays=not with_holidays)
        residual = full - base - sum(parts.values(), np.zeros((N, h)))
        return base, parts, residual


class GBMOrigins:
    """The gbm model as one of ``auto``'s candidates: trained on the data before the earliest cut, it forecasts
    from that cut and every later one with the same trees (each origin's features are rebuilt from the data
    before its own cut, so nothing after a cut is seen), and is retrained for the final forecast only when the
    earliest cut left out much of the series. Its spread is each series' in-sample mean absolute error (times
    1.2533, a normal sd), which ``auto`` then calibrates on the origins."""

    max_rows = 150_000  # one candidate among several: half the rows of method := 'gbm'...
    rows_per_series = 20  # ...and without drivers 20 periods per series, so its cost grows with the panel's

    def __init__(self, m: int, freq: str, start, anchor, drivers: Drivers | None, lens: np.ndarray):
        self.m, self.freq, self.start, self.anchor, self.drivers, self.lens = m, freq, start, anchor, drivers, lens
        if drivers is None:
            self.max_rows = min(self.max_rows, self.rows_per_series * len(lens))

    def fit(self, X, cut):
        self.X, self.cut, self.trained = X, np.asarray(cut), None
        return self

    def refilter(self, X, cut):
        self.X, self.cut = X, np.asarray(cut)

    def _design(self, h: int) -> _Design:
        N, T = self.X.shape
        drv = self.drivers or Drivers.none(N, T, h)
        return _Design(self.X, self.cut, h, self.m, self.freq, self.start, self.anchor, drv.extended(self.lens),
                       drv.holidays)

    @one_thread
    def predict(self, h):
        N, cut = len(self.cut), self.cut
        design = self._design(h)
        if self.trained is None:
            series, t = design.training(cut, cut, self.max_rows)
            X, target = design.rows(series, t), design.Ys[series, t]
            model = _hgb().fit(X, target)
            err = np.abs(model.predict(X) - target)
            mae = np.bincount(series, err, N) / np.maximum(np.bincount(series, minlength=N), 1)
            self.trained = (model, np.where(mae > 0, mae, np.median(err) if len(err) else 1.0))
        model, mae = self.trained
        fs, ft = np.repeat(np.arange(N), h), (cut[:, None] + np.arange(h)[None, :]).ravel()
        mean = model.predict(design.rows(fs, ft)).reshape(N, h) * design.scale[:, None]
        return PanelForecast(mean, 1.2533 * mae * design.scale, _direct_psi(N, h), None, [Provenance(("gbm",))] * N)


def holiday_days(country: str, first_day: int, last_day: int) -> np.ndarray:
    """Epoch days of ``country``'s public holidays between two epoch days (the ``holidays`` package)."""
    import holidays

    years = range(int(np.datetime64(int(first_day), "D").astype("datetime64[Y]").astype(int)) + 1970,
                  int(np.datetime64(int(last_day), "D").astype("datetime64[Y]").astype(int)) + 1971)
    cal = holidays.country_holidays(country, years=list(years))
    return np.sort(np.array([np.datetime64(d, "D").astype(np.int64) for d in cal], dtype=np.int64))
