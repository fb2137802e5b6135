"""``method := 'auto'``: per series, the mean of the candidates that forecast it best on rolling origins.

Why this shape (the lessons of the M4/M5 competitions): a combination of strong simple methods beats any one of
them, and choosing by a scale-free error on several origins is far less noisy than one holdout.

* **Candidates**, all vectorised over the panel: seasonal naive, naive, ETS (damped/none trend, additive/none
  season by AICc), Theta; on strictly positive series also ETS on the log scale (multiplicative
  seasonality and growth: a swing that grows with the level); on daily data the seasonal median (robust to a
  holiday in the last week), on monthly, quarterly and weekly data seasonal naive with drift (steady growth)
  and the seasonal level (the last season's mean times seasonal indices of the whole history: seasonal
  naive's recency without copying one season's noise into the next, which the seasonal median does for daily
  data); on monthly and quarterly panels small enough to afford statsmodels fits per series
  (``ARIMA_PERIODS`` periods in all: tens or a few hundred series, never the thousands of a demand panel)
  seasonal ARIMA (1,0,1)(0,1,1)m with or without drift by AICc (``ARIMA``: its parameters fitted once, its
  states refiltered at the later origins like ETS's); on intermittent series Croston/TSB instead of Theta,
  ARIMA and the naive forecasts. Where a weekly (or monthly, quarterly) season is not significant, ETS's AICc
  and Theta's autocorrelation test drop it, so seasonality is detected rather than assumed; the yearly pattern
  of daily and weekly data is a Fourier term kept only where an F test finds it (``YearlyAdjust``). The global
  gradient-boosted model (``gbm``, ``GBMOrigins``) is a candidate too when drivers are given (prices,
  promotions, holidays, events), or when the panel is large enough to learn from (``GBM_SERIES`` series
  holding ``GBM_ROWS`` periods before the earliest origin); it is trained once, on the data before the earliest
  origin.
* **Rolling origins**: ``origins`` (4) cut points spaced by half the horizon, the last one ``h`` before the end.
  Smoothing parameters are searched once, on the data before the earliest origin; at the later origins and
  for the final forecast the states are brought up to date with the same parameters (``refilter``), so the
  evaluation is out of sample and costs about one fit per candidate, not one per origin.
* **Score**: per origin, the median absolute error over its window divided by the in-sample seasonal-naive
  error (a median MASE: one holiday or stock-out inside a window does not decide the method), so series of any
  scale weigh alike when the panel's figures are pooled.
* **Combination**: a forecast is the mean of two candidates (or one alone). Which two is a choice among
  strategies scored on the pooled rolling-origin MASE (see ``_select``): one candidate or pair for the whole
  panel, or each series' own best two; the winner must beat seasonal naive by more than the noise of that gain,
  else the best strategy that keeps seasonal naive as a member is used. The label names the members.
* **Intervals**: the combination's spread is the mean of its members'; it is then calibrated on the panel's own
  rolling-origin errors (the factor that makes ``level`` of the scaled errors fall inside, over all origins or
  over the latest one where that is larger: see ``_calibration``), clipped to a sane range. The yearly Fourier
  pattern, fitted once on the whole history, is shared by the origins.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from .ets import ETS
from .gbm import Drivers, GBMOrigins
from .methods import ARIMA, Croston, Naive, SeasonalDrift, SeasonalLevel, SeasonalMedian, SeasonalNaive, Theta
from .panel import PanelForecast, Provenance, _check_panel, _gather, is_intermittent, mase_scale
from .registry import Method, register
from .seasonality import _SubYearly
from .xreg import SharedEffects, XregOrigins

LOG_PREFIX = "log_"
GBM_SERIES = 30  # without drivers, the global model is a candidate on panels of at least this many series...
GBM_ROWS = 20_000  # ...holding at least this many periods before the earliest origin
# seasonal ARIMA (two statsmodels fits per series, ~0.1-1 s each) is a candidate on monthly and quarterly panels
# of at most this many periods (each series' fit window), where it pays (measured: README); not on daily data
# (no gain measured, Gaussian fits misread closing days) nor weekly (a 52-period season makes each fit ~50x dearer)
ARIMA_PERIODS = 50_000


def _fourier_curve(yearly, T: int) -> np.ndarray:
    """The yearly pattern of each series over columns 0..T-1 (unmasked)."""
    from .seasonality import _fourier

    days = yearly.day0[:, None] + np.arange(T)[None, :] * yearly.step
    return np.einsum("ntp,np->nt", _fourier(days.astype(float), yearly.K), yearly.coef)


class _Candidate:
    """One candidate of ``auto`` on a sub-panel: fitted once at the earliest cut, then refiltered; only on the
    series it applies to (``rows``; None: all), NaN for the others."""

    def __init__(self, name: str, model: Method, Y: np.ndarray, curve: np.ndarray | None, log: bool,
                 rows: np.ndarray):
        self.rows = None if rows.all() else np.nonzero(rows)[0]
        self.N = len(Y)
        if self.rows is not None:
            Y, curve = Y[self.rows], None if curve is None else curve[self.rows]
        self.name, self.model, self.Y, self.curve, self.log = name, model, Y, curve, log
        self.fitted = False

    def forecast(self, cut: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, PanelForecast]:
        """(mean, sd, raw forecast of the rows fitted) of ``h`` steps after each series' ``cut``, in the data's
        units."""
        mean, sd, fc = self._forecast(cut if self.rows is None else cut[self.rows], h)
        if self.rows is None:
            return mean, sd, fc
        full_mean, full_sd = np.full((self.N, h), np.nan), np.full((self.N, h), np.nan)
        full_mean[self.rows], full_sd[self.rows] = mean, sd
        return full_mean, full_sd, fc

    def _forecast(self, cut, h):
        T = self.Y.shape[1]
        X = self.Y if self.curve is None else self.Y - self.curve[:, :T]
        X = np.log(np.maximum(X, 1e-9)) if self.log else X
        X = np.where(np.arange(T)[None, :] < cut[:, None], X, np.nan)
        refilter = getattr(self.model, "refilter", None)
        if self.fitted and refilter is not None:
            refilter(X, cut)
        else:
            self.model.fit(X, cut)
            self.fitted = True
        fc = self.model.predict(h)
        mean, sd = fc.mean, np.nan_to_num(fc.sd(), nan=0.0)
        if self.log:  # median and quantile-matched spread on the original scale
            z = NormalDist().inv_cdf(0.8413447460685429)  # one standard deviation
            mean, sd = np.exp(mean), (np.exp(mean + z * sd) - np.exp(mean - z * sd)) / 2
        if self.curve is not None:
            mean = mean + _gather(self.curve, cut[:, None] + np.arange(h)[None, :])
        return mean, sd, fc


@register
class AutoForecaster(Method):
    """Rolling-origin selection and combination of simple methods (see the module docstring)."""

    name = "auto"
    needs = ("yearly", "start", "anchor")
    takes_drivers = True

    def __init__(self, season_length: int = 7, origins: int = 4, level: float = 0.95, freq: str = "daily",
                 drivers=None):
        super().__init__(season_length)
        self.origins, self.level, self.freq, self.drivers = int(origins), float(level), freq, drivers
        # smoothing parameters describe recent dynamics: search them on the last 52 seasons (a year of daily
        # data; at least 364 periods); older history costs time and adds no accuracy (measured)
        self.fit_window = max(52 * self.m, 364)

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        # config is gbm's Drivers, or another method's settings when auto is that method's fallback (nn's NNConfig)
        return cls(m, level=level, freq=freq, drivers=config if isinstance(config, Drivers) else None)

    def fit(self, y, lens=None, yearly=None, start=None, anchor=None):
        Y0, M, lens = _check_panel(y, lens)
        self.Y0, self.lens, self.yearly = Y0, lens, yearly
        N = len(lens)
        self.start = np.zeros(N, np.int64) if start is None else np.asarray(start)
        self.anchor = np.zeros(N, np.int64) if anchor is None else np.asarray(anchor)
        return self

    def _gbm_candidate(self, ix: np.ndarray, lens: np.ndarray, h: int) -> GBMOrigins | None:
        """The global model joins the candidates when drivers are given, or when the panel has enough rows to
        learn from (``GBM_ROWS``) without costing more than the other candidates together."""
        drivers = None if self.drivers is None else self.drivers.take(ix)
        rows = int(np.maximum(lens - h - (self.origins - 1) * max(1, (h + 1) // 2), 0).sum())
        if drivers is None and (rows < GBM_ROWS or len(lens) < GBM_SERIES):
            return None
        return GBMOrigins(self.m, self.freq, self.start[ix], self.anchor[ix], drivers, lens)

    def _candidates(self, Y: np.ndarray, lens: np.ndarray, yearly, h: int, backtest: bool,
                    gbm: GBMOrigins | None = None) -> list[_Candidate]:
        m, N = self.m, len(lens)
        M = np.arange(Y.shape[1])[None, :] < lens[:, None]
        inter = is_intermittent(Y + 0.0, lens)
        every = np.ones(N, bool)
        curve = None if yearly is None else _fourier_curve(yearly, Y.shape[1] + h)
        ets = dict(fit_window=self.fit_window)
        # (name, model, yearly curve, log scale, series it applies to): Theta and the naive forecasts (which repeat
        # a spike or a zero) misfit sparse demand, Croston smooth demand; the log scale needs positive values
        # (and ETS: Theta's multiplicative indices have no meaning there)
        specs = [("ets", ETS(m, **ets), curve, False, every), ("theta", Theta(m), curve, False, ~inter),
                 ("croston", Croston(), None, False, inter)]
        if backtest:
            specs += [("seasonal_naive", SeasonalNaive(m) if m > 1 else Naive(), None, False, ~inter),
                      ("naive", Naive(), None, False, ~inter),
                      ("seasonal_median", SeasonalMedian(m), None, False, ~inter & (self.freq == "daily")),
                      ("seasonal_drift", SeasonalDrift(m), None, False, ~inter & (self.freq != "daily") & (m > 1)),
                      ("seasonal_level", SeasonalLevel(m), None, False, ~inter & (self.freq != "daily") & (m > 1)),
                      (LOG_PREFIX + "ets", ETS(m, **ets), None, True, np.all((Y > 0) | ~M, axis=1))]
            periods = int(np.minimum(lens, self.fit_window).sum())
            if self.freq in ("monthly", "quarterly") and periods <= ARIMA_PERIODS:
                specs.append(("arima", ARIMA(m), curve, False, ~inter))
            if gbm is not None:
                specs.append(("gbm", gbm, None, False, every))
            if gbm is not None and gbm.drivers is not None:  # the drivers' multipliers times ETS or Theta of the rest
                effects = SharedEffects(gbm.drivers, lens, m, gbm.start, gbm.anchor, self.freq)
                specs += [("xreg_" + inner.name, XregOrigins(inner, effects), None, False, every)
                          for inner in (ETS(m, **ets), Theta(m))]
        out = [_Candidate(name, model, Y, cv, log, rows) for name, model, cv, log, rows in specs if rows.any()]
        self._allowed = np.stack([spec[4] for spec in specs if spec[4].any()], axis=1)
        return out

    def predict(self, h):
        self._check_h(h)
        lens, m = self.lens, self.m
        N = len(lens)
        cuts0 = lens - h - (self.origins - 1) * max(1, (h + 1) // 2)
        can = cuts0 >= max(2 * m, 10)  # enough history before the earliest origin for a fair comparison
        mean, sd = np.zeros((N, h)), np.zeros((N, h))
        sigma, psi, scale = np.ones(N), np.zeros((N, h)), np.ones((N, h))
        label = np.empty(N, dtype=object)
        for group in (can, ~can):
            if not group.any():
                continue
            ix = np.nonzero(group)[0]
            yearly = None if self.yearly is None else _SubYearly(self.yearly, ix)
            backtest = bool(can[ix[0]])
            gbm = self._gbm_candidate(ix, lens[ix], h) if backtest else None
            mu, s, lab, base = self._forecast_group(self.Y0[ix], lens[ix], yearly, h, backtest, gbm)
            mean[ix], sd[ix], label[ix] = mu, s, lab
            base_sd = np.nan_to_num(base.sd(), nan=0.0)
            good = np.all(base_sd > 0, axis=1)
            psi[ix] = np.where(good[:, None], base.psi, np.eye(1, h))
            sigma[ix] = np.where(good, base.sigma, 1.0)
            scale[ix] = np.where(good[:, None], s / np.where(base_sd > 0, base_sd, 1.0), s)
        self.choice = label
        return PanelForecast(mean, sigma, psi, scale, list(label))

    def _forecast_group(self, Y0, lens, yearly, h, backtest: bool, gbm: GBMOrigins | None = None):
        """(mean, sd, labels, ETS forecast) of a sub-panel; with ``backtest`` the members are chosen on rolling
        origins, without it (series too short) ETS and Theta (Croston for intermittent series) are averaged."""
        N, m, O = len(lens), self.m, self.origins
        spacing = max(1, (h + 1) // 2)
        cuts = [lens - h - k * spacing for k in range(O - 1, -1, -1)]  # earliest first
        cands = self._candidates(Y0, lens, yearly, h, backtest, gbm)
        names = [c.name for c in cands]
        C = len(cands)
        allowed = self._allowed
        err = np.zeros((O, N, C, h))
        sds = np.zeros((O, N, C, h))
        scales = np.ones((O, N))
        if backtest:
            for o, cut in enumerate(cuts):
                actual = _gather(Y0, cut[:, None] + np.arange(h)[None, :])
                scale = mase_scale(Y0, cut, m)
                scales[o] = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
                for c, cand in enumerate(cands):
                    mean, sd, _ = cand.forecast(cut, h)
                    err[o, :, c], sds[o, :, c] = np.maximum(mean, 0) - actual, sd
            allowed = allowed & np.all(np.isfinite(err), axis=(0, 3))  # a fit that failed on a series: out there
            members = self._select(err, scales, allowed, names)
        else:  # ETS and Theta (Croston for intermittent series): a fixed, robust pair
            second = np.full(N, names.index("ets"))
            for name in ("croston", "theta"):
                if name in names:
                    second = np.where(allowed[:, names.index(name)], names.index(name), second)
            members = np.stack([np.full(N, names.index("ets")), second], 1)
        # final forecasts: refiltered up to each series' end (refit where the cut left out much of the series)
        finals = []
        for cand in cands:
            if cand.fitted and not np.all(cuts[0] >= 0.75 * lens):
                cand.fitted = False
            finals.append(cand.forecast(lens, h))
        ets = names.index("ets")
        failed = ~np.isfinite(np.stack([f[0] for f in finals], axis=1)).all(axis=2)  # (N, C): use ETS there
        members = np.where(failed[np.arange(N)[:, None], members], ets, members)
        w = np.full((N, 2), 0.5)
        rows = np.arange(N)[:, None]
        mean = np.einsum("nk,nkh->nh", w, np.stack([f[0] for f in finals], axis=1)[rows, members])
        sd = np.einsum("nk,nkh->nh", w, np.stack([f[1] for f in finals], axis=1)[rows, members])
        if backtest:  # interval calibration on the rolling-origin errors of the chosen combinations
            e = np.einsum("nk,onkh->onh", w, err[:, rows, members])
            s = np.einsum("nk,onkh->onh", w, sds[:, rows, members])
            sd = sd * _calibration(e, s, self.level)
        label = np.array([Provenance((names[a],) if a == b else (names[a], names[b])) for a, b in members],
                         dtype=object)
        if not backtest:
            label = np.array([p.replacing("auto", "short for backtest") for p in label], dtype=object)
        return mean, sd, label, finals[ets][2]

    def _select(self, err: np.ndarray, scales: np.ndarray, allowed: np.ndarray, names: list[str]) -> np.ndarray:
        """Members ``(N, 2)`` of each series' forecast (equal weights; a repeated index is a single method).

        Strategies: every single candidate and every pair for the whole panel (a candidate that does not apply
        to a series is replaced by ETS there), and per-series choice of the two best on the origins. Each is
        scored by its (median) MASE pooled over series and origins; the per-series choice is scored leaving each
        origin out of its own choice, so its score is out of sample like the others'. The lowest pooled score
        wins: pooling hundreds of errors keeps the choice of strategy stable where one series' few errors are
        noise. The winner must also beat seasonal naive by more than the noise of that gain (one standard error
        over series, see ``_clear_gain``); where it does not, the best strategy that keeps seasonal naive as a
        member is used instead.
        """
        O, N, C, _ = err.shape
        mae = np.median(np.abs(err), axis=3) / scales[:, :, None]  # (O, N, C)
        mae = np.where(allowed[None] & np.isfinite(mae), mae, np.inf)
        ets = names.index("ets")
        rows = np.arange(N)

        def cells(mem):  # mem (O, N, 2) or (N, 2) -> (O, N) median MASE of each origin's window
            mem = np.broadcast_to(mem, (O, N, 2))
            o = np.arange(O)[:, None]
            e = (err[o, rows[None, :], mem[..., 0]] + err[o, rows[None, :], mem[..., 1]]) / 2
            return np.median(np.abs(e), axis=2) / scales

        total = mae.sum(axis=0)
        best = np.argsort(total, axis=1, kind="stable")[:, :2]
        with np.errstate(invalid="ignore"):  # inf - inf where a candidate does not apply: stays last
            loo = np.stack([np.argsort(np.nan_to_num(total - mae[o], nan=np.inf), axis=1, kind="stable")[:, :2]
                            for o in range(O)])
        strategies = [(cells(loo), best, ())]
        for a in range(C):
            for b in range(a, C):
                mem = np.stack([np.where(allowed[:, a], a, ets), np.where(allowed[:, b], b, ets)], axis=1)
                strategies.append((cells(mem), mem, (names[a], names[b])))
        scores = [float(np.mean(sc)) for sc, _, _ in strategies]
        self.strategy_scores = scores
        win = int(np.argmin(scores))
        baseline = [k for k, (_, _, pair) in enumerate(strategies) if pair == ("seasonal_naive",) * 2]
        if baseline and not _clear_gain(strategies[baseline[0]][0] - strategies[win][0]):
            keeps = [k for k, (_, _, pair) in enumerate(strategies) if "seasonal_naive" in pair]
            win = min(keeps, key=scores.__getitem__)
        return strategies[win][1]


def _calibration(err: np.ndarray, sd: np.ndarray, level: float) -> float:
    """The factor on the spread that puts ``level`` of the (origins, series, steps) errors inside the interval:
    the larger of the factor over all origins and over the latest one alone (errors that grew near the end of
    the series, as dynamics change, are the ones the forecast will meet next), clipped to [0.75, 4]. 1 with too
    few errors to tell."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    ok = (sd > 0) & np.isfinite(err)
    ratio = np.abs(np.where(ok, err, 0.0)) / np.where(ok, sd, 1.0)
    if ok.sum() < 20:
        return 1.0
    factor = np.quantile(ratio[ok], level) / z
    if ok[-1].sum() >= 20:
        factor = max(factor, np.quantile(ratio[-1][ok[-1]], level) / z)
    return float(np.clip(factor, 0.75, 4.0))


def _clear_gain(diff: np.ndarray) -> bool:
    """Whether the (O, N) score differences (baseline minus winner) show a gain larger than its noise: their mean
    above one standard error, taken over series (averaged over origins, whose windows overlap), or over origins
    on a panel of fewer than three series."""
    units = diff.mean(axis=0) if diff.shape[1] >= 3 else diff.mean(axis=1)
    units = units[np.isfinite(units)]
    if len(units) < 2:
        return True
    return bool(units.mean() > units.std(ddof=1) / np.sqrt(len(units)))
