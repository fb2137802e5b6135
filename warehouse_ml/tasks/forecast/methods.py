"""The simple methods: naive, seasonal naive (with drift), seasonal median, seasonal level (a candidate of
``auto``), Theta, Croston/TSB and (per-series, statsmodels) ARIMA."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .ets import _ets_init, _ets_states, _search_ets
from .panel import ForecastInputError, PanelForecast, Provenance, _check_panel, _gather, seasonality_strength
from .registry import Method, register
from .seasonality import _seasonal_indices

@register
class Naive(Method):
    """Last value repeated; random-walk intervals."""

    name = "naive"

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        self.lens = lens
        self.last = _gather(Y0, (lens - 1)[:, None])[:, 0]
        d = np.diff(Y0, axis=1) * M[:, 1:]
        n = np.maximum(lens - 1, 1)
        self.sigma = np.where(lens >= 2, np.sqrt(np.sum(d * d, axis=1) / n), np.nan)
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        return PanelForecast(np.repeat(self.last[:, None], h, axis=1), self.sigma.copy(), np.ones((N, h)),
                             None, [Provenance((self.name,))] * N)


def _seasonal_psi(N: int, h: int, m: int) -> np.ndarray:
    """Error weights of a forecast that repeats the last season: one more innovation each season ahead."""
    psi = np.zeros((N, h))
    psi[:, ::m] = 1.0
    return psi


@register
class SeasonalNaive(Method):
    """The value one season ago; intervals from in-sample seasonal differences."""

    name = "seasonal_naive"
    in_auto = True

    def __init__(self, season_length: int = 7):
        super().__init__(season_length)

    @classmethod
    def min_length(cls, freq, m, h, lens, config=None):
        return m

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        m = self.m
        self.lens = lens
        self.last = _gather(Y0, lens[:, None] - m + np.arange(m)[None, :])  # (N, m)
        if Y0.shape[1] > m:
            d = (Y0[:, m:] - Y0[:, :-m]) * M[:, m:]
            self.sigma = np.where(lens > m, np.sqrt(np.sum(d * d, axis=1) / np.maximum(lens - m, 1)), np.nan)
        else:
            self.sigma = np.full(len(lens), np.nan)
        return self

    def predict(self, h):
        self._check_h(h)
        N, m = len(self.lens), self.m
        k = np.arange(h)
        return PanelForecast(self.last[:, k % m], self.sigma.copy(), _seasonal_psi(N, h, m), None,
                             [Provenance((self.name,))] * N)


@register
class SeasonalDrift(SeasonalNaive):
    """Seasonal naive plus a straight trend: the last season repeated, raised each season by the change of the
    seasonal mean over the last season (this year's mean minus last year's, for monthly data). The textbook
    seasonal naive with drift, for series that grow steadily; intervals from the in-sample seasonal differences
    around their mean."""

    name = "seasonal_drift"

    def fit(self, y, lens=None):
        super().fit(y, lens)
        Y0, M, lens = _check_panel(y, lens)
        m = self.m
        before = _gather(Y0, lens[:, None] - 2 * m + np.arange(m)[None, :])  # the season before the last
        self.step = np.where(lens >= 2 * m, self.last.mean(axis=1) - before.mean(axis=1), 0.0)
        d = (Y0[:, m:] - Y0[:, :-m]) * M[:, m:]
        n = np.maximum(lens - m, 1)
        centred = (d - (d.sum(axis=1) / n)[:, None]) * M[:, m:]
        self.sigma = np.where(lens > m + 1, np.sqrt(np.sum(centred ** 2, axis=1) / np.maximum(n - 1, 1)), np.nan)
        return self

    def predict(self, h):
        self._check_h(h)
        N, m = len(self.lens), self.m
        k = np.arange(h)
        mean = self.last[:, k % m] + self.step[:, None] * (k // m + 1)[None, :]
        return PanelForecast(mean, self.sigma.copy(), _seasonal_psi(N, h, m), None, [Provenance((self.name,))] * N)


def _seasons_back(Y0: np.ndarray, cols: np.ndarray, m: int, seasons: int) -> np.ndarray:
    """(N, seasons, k): the values 1..``seasons`` seasons before each of the ``(N, k)`` columns ``cols``; NaN
    before the series' start."""
    back = cols[:, None, :] - m * np.arange(1, seasons + 1)[None, :, None]
    vals = _gather(Y0, back.reshape(len(cols), -1)).reshape(back.shape)
    return np.where(back >= 0, vals, np.nan)


@register
class SeasonalMedian(Method):
    """The median of the same phase over the last ``seasons`` (4) seasons: for daily data, the median Monday of
    the last four weeks. A seasonal naive forecast that one holiday, promotion or stock-out does not copy into
    the next week; intervals from the same rule's in-sample errors over the last ``seasons`` * 4 seasons."""

    name = "seasonal_median"
    in_auto = True
    seasons = 4

    @classmethod
    def min_length(cls, freq, m, h, lens, config=None):
        return m

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        m, K = self.m, self.seasons
        self.lens = lens
        window = max(min(4 * K * m, Y0.shape[1] - m), 1)
        ends = lens[:, None] - window + np.arange(window)[None, :]  # (N, window): the periods it predicts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: too short, NaN on purpose
            self.profile = np.nanmedian(_seasons_back(Y0, lens[:, None] + np.arange(m)[None, :], m, K), axis=1)
            past = np.nanmedian(_seasons_back(Y0, ends, m, K), axis=1)
        ok = ends >= m
        err = np.where(ok, _gather(Y0, ends) - np.nan_to_num(past), 0.0)
        n = ok.sum(axis=1)
        self.sigma = np.where(n > 0, np.sqrt(np.sum(err * err, axis=1) / np.maximum(n, 1)), np.nan)
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        mean = self.profile[:, np.arange(h) % self.m]
        return PanelForecast(mean, self.sigma.copy(), np.eye(1, h).repeat(N, axis=0), None,
                             [Provenance((self.name,))] * N)


class SeasonalLevel(Method):
    """The level of the last season (the mean of its seasonally adjusted values) times each phase's seasonal
    index: seasonal naive's recency (nothing older than a season sets the level) without copying the last
    season's noise into every period, since the shape of the season comes from the whole history (classical
    multiplicative indices, kept where the lag-``m`` autocorrelation is significant, as Theta's). A candidate
    of ``auto`` (not a method of its own); intervals from the same rule's in-sample errors."""

    name = "seasonal_level"

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        m, T = self.m, Y0.shape[1]
        self.lens = lens
        idx = _seasonal_indices(Y0, M, lens, m)
        self.idx = np.where(seasonality_strength(Y0 + np.where(M > 0, 0, np.nan), lens, m)[:, None], idx, 1.0)
        X = Y0 / self.idx[:, np.arange(T) % m] * M
        run = np.cumsum(np.pad(X, ((0, 0), (1, 0))), axis=1)
        level = (run[:, m:] - run[:, :-m]) / m  # level[:, t]: the mean of columns t..t+m-1
        self.level = _gather(level, (lens - m)[:, None])[:, 0]
        fitted = level[:, :T - m] * self.idx[:, np.arange(m, T) % m]  # column t predicted from the season before
        ok = M[:, m:] > 0
        err = np.where(ok, Y0[:, m:] - fitted, 0.0)
        n = ok.sum(axis=1)
        self.sigma = np.where(n > 0, np.sqrt(np.sum(err * err, axis=1) / np.maximum(n, 1)), np.nan)
        return self

    def predict(self, h):
        self._check_h(h)
        N, m = len(self.lens), self.m
        phase = (self.lens[:, None] + np.arange(h)[None, :]) % m
        mean = self.level[:, None] * np.take_along_axis(self.idx, phase, axis=1)
        return PanelForecast(mean, self.sigma.copy(), _seasonal_psi(N, h, m), None, [Provenance((self.name,))] * N)


@register
class Theta(Method):
    """Standard Theta (Assimakopoulos & Nikolopoulos; Hyndman & Billah's SES-with-drift form).

    Seasonally adjusts with classical multiplicative indices when the lag-m autocorrelation is significant,
    fits SES on the adjusted series and adds half the linear-trend slope as drift.
    """

    name = "theta"
    yearly_aware = True
    in_auto = True

    def __init__(self, season_length: int = 7, rounds: int = 5):
        super().__init__(season_length)
        self.rounds = rounds

    def fit(self, y, lens=None):
        self._u = None
        return self.refilter(y, lens)

    def refilter(self, y, lens=None):
        """The same smoothing parameter and seasonality test with indices, slope and level brought up to new data
        or lengths (the first fit searches and tests)."""
        Y0, M, lens = _check_panel(y, lens)
        N, T = Y0.shape
        self.lens = lens
        if self._u is None:
            self._seasonal = seasonality_strength(Y0 + np.where(M > 0, 0, np.nan), lens, self.m) if self.m > 1 \
                else np.zeros(N, bool)
        idx = _seasonal_indices(Y0, M, lens, self.m) if self.m > 1 else np.ones((N, 1))
        idx = np.where(self._seasonal[:, None], idx, 1.0)
        self.idx = idx
        mm = idx.shape[1]
        phase = np.arange(T) % mm
        X = Y0 / idx[:, phase] * M
        if self._u is None:
            self._u = _search_ets(X, M, lens, 1, [(False, False)], self.rounds)[0]
        f = _ets_states(X, M, lens, 1, self._u, [_ets_init(X, lens, 1, False, False)], [(False, False, False)])[0]
        self.alpha, self.level = f["alpha"], f["l"]
        t = np.arange(T)[None, :].astype(float)
        n = np.maximum(M.sum(1), 1)
        tm = (t * M).sum(1) / n
        xm = (X * M).sum(1) / n
        cov = ((t - tm[:, None]) * (X - xm[:, None]) * M).sum(1)
        var = (((t - tm[:, None]) ** 2) * M).sum(1)
        self.slope = np.where(var > 0, cov / np.maximum(var, 1e-12), 0.0)
        self.sigma = np.sqrt(f["sse"] / np.maximum(lens - 2, 1))
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        steps = np.arange(1, h + 1)[None, :]
        a = self.alpha[:, None]
        n = self.lens[:, None]
        drift = self.slope[:, None] / 2 * ((steps - 1) + 1 / a - ((1 - a) ** n) / a)
        mm = self.idx.shape[1]
        phase = (self.lens[:, None] + steps - 1) % mm
        si = np.take_along_axis(self.idx, phase, axis=1)
        mean = (self.level[:, None] + drift) * si
        psi = np.repeat(a, h, axis=1)
        psi[:, 0] = 1.0
        return PanelForecast(mean, self.sigma.copy(), psi, si, [Provenance((self.name,))] * N)


@register
class Croston(Method):
    """TSB (Teunter-Syntetos-Babai) Croston variant: smoothed demand probability x smoothed size."""

    name = "croston"
    in_auto = True

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        return cls()

    def __init__(self, alpha_size: float = 0.1, alpha_prob: float = 0.05):
        for arg, v in (("alpha_size", alpha_size), ("alpha_prob", alpha_prob)):
            if not 0 < v <= 1:
                raise ForecastInputError(arg, f"must be in (0, 1], got {v!r}", "Pass e.g. 0.1")
        self.a, self.b = alpha_size, alpha_prob

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        N, T = Y0.shape
        self.lens = lens
        nz = (Y0 > 0) & (M > 0)
        cnt = nz.sum(1)
        k = np.minimum(lens, 28)
        first = np.arange(T)[None, :] < k[:, None]
        p = np.where(k > 0, (nz & first).sum(1) / np.maximum(k, 1), 0.0)
        z = np.where(cnt > 0, (Y0 * nz).sum(1) / np.maximum(cnt, 1), 0.0)
        sse = np.zeros(N)
        for t in range(int(lens.max()) if N else 0):
            yt, mt, nzt = Y0[:, t], M[:, t], nz[:, t]
            e = (yt - p * z) * mt
            sse += e * e
            p = p + self.b * (nzt - p) * mt
            z = np.where(nzt, z + self.a * (yt - z), z)
        self.p, self.z = p, z
        self.sigma = np.sqrt(sse / np.maximum(lens - 1, 1))
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        mean = np.repeat((self.p * self.z)[:, None], h, axis=1)
        psi = np.full((N, h), self.b)
        psi[:, 0] = 1.0
        return PanelForecast(mean, self.sigma.copy(), psi, None, [Provenance((self.name,))] * N)


@register
class ARIMA(Method):
    """Seasonal ARIMA per series with statsmodels: (1,0,1)(0,1,1)m with or without drift (the lower AICc) where
    two seasons fit, else (1,1,1).

    This is a loop of per-series maximum-likelihood fits (two per seasonal series, about 0.2-1 s each on one
    core, BLAS held to one thread): use it for tens or hundreds of series, not thousands. A series whose fit
    fails falls back to ETS (said in ``method``) by the caller. ``refilter`` keeps the parameters and filters
    the states over new data (``auto``'s rolling origins).
    """

    name = "arima"
    yearly_aware = True

    def __init__(self, season_length: int = 7):
        super().__init__(season_length)

    def fit(self, y, lens=None):
        from statsmodels.tsa.arima.model import ARIMA as _SMARIMA

        Y0, M, lens = _check_panel(y, lens)
        N = len(lens)
        self.lens = lens
        self.results: list = [None] * N
        self.errors: list = [None] * N
        with _one_blas_thread(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(N):  # per-series maximum likelihood: unavoidable for ARIMA
                yi = Y0[i, : lens[i]]
                seasonal = self.m > 1 and lens[i] >= 2 * self.m + 3
                try:
                    if seasonal:  # with and without drift (a trend in levels), the lower AICc kept
                        fits = [_SMARIMA(yi, order=(1, 0, 1), seasonal_order=(0, 1, 1, self.m), trend=t).fit()
                                for t in ("n", "t")]
                    else:
                        fits = [_SMARIMA(yi, order=(1, 1, 1)).fit()]
                    fits = [r for r in fits if np.isfinite(r.llf)]
                    self.results[i] = min(fits, key=lambda r: r.aicc) if fits else None
                except Exception as e:  # noqa: BLE001 - one bad series must not fail the rest
                    self.errors[i] = type(e).__name__
        return self

    def refilter(self, y, lens=None):
        """The fitted parameters kept, the states filtered over new data or lengths (statsmodels ``apply``, one
        Kalman pass per series): ``auto``'s rolling origins at the cost of one likelihood search per series."""
        Y0, M, lens = _check_panel(y, lens)
        self.lens = lens
        with _one_blas_thread(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, r in enumerate(self.results):
                try:
                    self.results[i] = None if r is None else r.apply(Y0[i, : lens[i]])
                except Exception as e:  # noqa: BLE001 - one bad series must not fail the rest
                    self.results[i], self.errors[i] = None, type(e).__name__
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        mean = np.full((N, h), np.nan)
        sigma = np.full(N, np.nan)
        psi = np.zeros((N, h))
        psi[:, 0] = 1.0
        for i, r in enumerate(self.results):
            if r is None:
                continue
            fc = r.get_forecast(h)
            mean[i] = fc.predicted_mean
            var = np.asarray(fc.var_pred_mean, dtype=float)
            s2 = max(float(var[0]), 1e-12)
            sigma[i] = math.sqrt(s2)
            psi[i, 1:] = np.sqrt(np.maximum(np.diff(var) / s2, 0.0))
        return PanelForecast(mean, sigma, psi, None, [Provenance((self.name,))] * N)




def _one_blas_thread():
    """BLAS held to one thread around per-series statsmodels loops (tiny matrices: threads only contend)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1)
    except Exception:  # noqa: BLE001 - optional: only avoids BLAS oversubscription
        return contextlib.nullcontext()
