"""``method := 'gbm'``: one gradient-boosted model over all series, with drivers (prices, promotions) and holidays.

A "lag-h" direct model: the target ``y[t]`` (divided by its series' mean, so one model serves every scale) is
learned from what is known ``h`` periods before it: the values ``h .. h+6`` periods back, the same phase of the
season one and two seasons before the horizon, the means of the 7 and 28 periods ending ``h`` back, the
calendar of ``t`` (phase of the season, month, day of the year), a holiday flag for ``t`` and its neighbours,
the drivers' values at ``t`` (known in advance: planned prices, the promotion calendar) and the series' scale.
The same features exist for every step of the horizon, so one model forecasts all of them.

scikit-learn's ``HistGradientBoostingRegressor`` (absolute error: the median, which MASE rewards) is fitted
twice: without the last ``h`` periods, whose errors calibrate a split-conformal band (the ``level`` quantile
of the scaled absolute errors), then on everything for the forecast.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .panel import PanelForecast, period_dates, validate_horizon, validate_level
from .registry import Method, register

MAX_ROWS = 300_000


@dataclass
class Drivers:
    """Known inputs of a panel: per series and period of history ``(N, T, F)`` and of the horizon ``(N, h, F)``
    (``F`` may be 0), and the epoch days that are holidays."""

    history: np.ndarray
    future: np.ndarray
    holidays: np.ndarray  # sorted epoch days

    def take(self, ix: np.ndarray) -> "Drivers":
        return Drivers(self.history[ix], self.future[ix], self.holidays)


def _features(Y, scale, t, h, m, dates, drivers_at, holidays):
    """Feature matrix for targets at columns ``t`` (R,) of rows given by the leading index of ``Y`` (R, T)."""
    R = len(t)
    rows = np.arange(R)

    def lag(k):
        c = t - k
        return np.where(c >= 0, Y[rows, np.clip(c, 0, None)], np.nan)

    season = m * int(np.ceil(h / m)) if m > 1 else h
    cols = [lag(h + j) for j in range(7)] + [lag(season), lag(season + m)]
    csum = np.nancumsum(np.pad(Y, ((0, 0), (1, 0))), axis=1)
    for w in (7, 28):
        end = np.clip(t - h + 1, 0, None)
        start = np.clip(end - w, 0, None)
        cols.append((csum[rows, end] - csum[rows, start]) / np.maximum(end - start, 1))
    d64 = dates.astype("datetime64[D]")
    doy = (d64 - d64.astype("datetime64[Y]")).astype(int)
    month = d64.astype("datetime64[M]").astype(int) % 12
    cols += [t % max(m, 1), month, doy, (dates + 3) % 7]  # phase, month, day of the year, weekday
    if len(holidays):
        for shift in (-1, 0, 1):
            cols.append(np.isin(dates + shift, holidays).astype(float))
    cols.append(np.log1p(scale))
    X = np.column_stack(cols + ([drivers_at] if drivers_at.shape[1] else []))
    return X.reshape(R, -1)


@register
class GBM(Method):
    """One global gradient-boosted model (see the module docstring); ``drivers`` come from the SQL layer."""

    name = "gbm"
    needs = ("start", "anchor")
    min_series = 1

    def __init__(self, season_length: int = 7, freq: str = "daily", level: float = 0.95, drivers=None):
        super().__init__(season_length)
        self.freq, self.level, self.drivers = freq, validate_level(level), drivers

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        return cls(m, freq, level, config)

    def fit(self, y, lens=None, start=None, anchor=None):
        self.Y = np.asarray(y, dtype=float)
        self.lens = np.asarray(lens, dtype=np.int64)
        self.start, self.anchor = start, anchor
        return self

    def _dates(self, series, t):
        return period_dates(self.start[series] + t, self.freq, self.anchor[series])

    def _rows(self, series, t, h, drivers_at):
        return _features(self.Ys[series], self.scale[series], t, h, self.m, self._dates(series, t), drivers_at,
                         self.holidays)

    def predict(self, h):
        from sklearn.ensemble import HistGradientBoostingRegressor

        h = validate_horizon(h)
        N, T = self.Y.shape
        lens = self.lens
        M = np.arange(T)[None, :] < lens[:, None]
        Y0 = np.where(M, np.nan_to_num(self.Y, nan=0.0), np.nan)
        mean = np.nanmean(np.where(M, Y0, np.nan), axis=1)
        self.scale = np.where(np.isfinite(mean) & (mean > 0), mean, 1.0)
        self.Ys = Y0 / self.scale[:, None]
        drv = self.drivers or Drivers(np.zeros((N, T, 0)), np.zeros((N, h, 0)), np.zeros(0, np.int64))
        self.holidays = drv.holidays
        first = h + 6
        series, t = np.nonzero(M & (np.arange(T)[None, :] >= first))
        if len(series) > MAX_ROWS:  # the most recent rows are kept: they describe today's demand best
            keep = np.argsort(-(t - lens[series]), kind="stable")[:MAX_ROWS]
            series, t = series[keep], t[keep]
        X = self._rows(series, t, h, drv.history[series, t])
        target = self.Ys[series, t]
        calib = t >= lens[series] - h
        model = dict(loss="absolute_error", max_iter=200, learning_rate=0.1, random_state=0)
        fc_sd_q = 1.0
        if calib.sum() >= 20 and (~calib).sum() >= 50:
            cal = HistGradientBoostingRegressor(**model).fit(X[~calib], target[~calib])
            err = np.abs(cal.predict(X[calib]) - target[calib])
            fc_sd_q = float(np.quantile(err, self.level))
        final = HistGradientBoostingRegressor(**model).fit(X, target)
        fs = np.repeat(np.arange(N), h)
        ft = (lens[:, None] + np.arange(h)[None, :]).ravel()
        Yext = np.concatenate([self.Ys, np.full((N, h), np.nan)], axis=1)
        self.Ys = Yext
        Xf = self._rows(fs, ft, h, drv.future.reshape(N * h, -1))
        pred = np.maximum(final.predict(Xf).reshape(N, h), 0) * self.scale[:, None]
        band = fc_sd_q * self.scale[:, None] * np.ones((1, h))
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        psi = np.zeros((N, h))
        psi[:, 0] = 1.0
        return PanelForecast(pred, np.ones(N), psi, band / z, ["gbm"] * N, bands=(pred - band, pred + band))


def holiday_days(country: str, first_day: int, last_day: int) -> np.ndarray:
    """Epoch days of ``country``'s public holidays between two epoch days (the ``holidays`` package)."""
    import holidays

    years = range(int(np.datetime64(int(first_day), "D").astype("datetime64[Y]").astype(int)) + 1970,
                  int(np.datetime64(int(last_day), "D").astype("datetime64[Y]").astype(int)) + 1971)
    cal = holidays.country_holidays(country, years=list(years))
    return np.sort(np.array([np.datetime64(d, "D").astype(np.int64) for d in cal], dtype=np.int64))


