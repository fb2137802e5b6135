"""Demand forecasting kernels: many series at once, in vectorised NumPy.

Pure NumPy in and out (no database import), so the same code runs inside a DuckDB UDF or a Spark
``mapInArrow``. Series are handed over as a *panel*: a float matrix ``y`` of shape ``(n_series, T)``,
left-aligned (every series starts at column 0), ``NaN`` after each series' own length ``lens[i]``. Gaps inside
a series have already been filled with zeros (for demand, a day without sales sold nothing).

Every model fits all series of the panel in one pass over time: the recursion runs once per time step on
arrays of shape ``(n_series, n_candidates)``, so smoothing parameters are searched for all series at once
(a small grid, then a few rounds of per-series pattern search). Models follow the shape of statsforecast's:
``Model(params).fit(y, lens)`` then ``.predict(h)`` returning a :class:`PanelForecast`.

Models
  ``SeasonalNaive``  last season repeated.
  ``ETS``            additive-error exponential smoothing (Hyndman et al.): none/damped-additive trend,
                     none/additive season, chosen per series by AICc; parameters by least squares.
  ``Theta``          the standard Theta method (SES with drift on seasonally adjusted data).
  ``Croston``        the TSB variant of Croston's method for intermittent demand (handles obsolescence).
  ``ARIMA``          statsmodels SARIMAX per series (slow: a loop of per-series fits, only on request).
  ``AutoForecaster`` per series, the candidate with the lowest error on a rolling-origin holdout.

:func:`forecast_panel` is the entry point used by SQL: it infers the frequency, builds the panel, applies
fallbacks for short or empty series and returns flat arrays of rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from ..progress import steps

METHODS = ("auto", "ets", "arima", "theta", "seasonal_naive", "croston", "naive", "nn")  # nn: tasks.forecast_nn
MAX_HORIZON = 10_000

# Frequencies: name -> (step in days for day-based ones, or months for month-based ones, month-based?, season)
FREQS = {
    "daily": (1, False, 7),
    "weekly": (7, False, 52),
    "monthly": (1, True, 12),
    "quarterly": (3, True, 4),
    "yearly": (12, True, 1),
}


class ForecastInputError(ValueError):
    """Bad arguments to a kernel; ``argument`` names the SQL argument, message says problem and fix."""

    def __init__(self, argument: str, problem: str, fix: str):
        self.argument, self.problem, self.fix = argument, problem, fix
        super().__init__(f"argument '{argument}': {problem}. {fix}")


# --------------------------------------------------------------------------------------------------------
# Forecast container
# --------------------------------------------------------------------------------------------------------
@dataclass
class PanelForecast:
    """Point forecasts with the linear-innovations description of their errors.

    The error of step ``h`` (1-based) is ``scale[:, h-1] * sum_{j<h} psi[:, j] * eps_{T+h-j}`` with
    ``eps ~ N(0, sigma^2)``; that gives both per-step intervals and the distribution of a sum over a lead time.
    """

    mean: np.ndarray  # (N, H)
    sigma: np.ndarray  # (N,)
    psi: np.ndarray  # (N, H), psi[:, 0] == 1
    scale: np.ndarray | None = None  # (N, H) or None (ones)
    method: list[str] = field(default_factory=list)

    def sd(self) -> np.ndarray:
        s = self.sigma[:, None] * np.sqrt(np.cumsum(self.psi ** 2, axis=1))
        return s if self.scale is None else s * self.scale

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        sd = self.sd()
        return self.mean - z * sd, self.mean + z * sd

    def sum_sd(self, steps: int) -> np.ndarray:
        """Standard deviation of the sum of the first ``steps`` values (demand over a lead time)."""
        L = min(steps, self.mean.shape[1])
        N = self.mean.shape[0]
        scale = np.ones((N, L)) if self.scale is None else self.scale[:, :L]
        # coefficient of eps_{T+i} in the sum: sum_{h=i..L} scale_h * psi_{h-i}
        coef = np.zeros((N, L))
        for i in range(L):
            coef[:, i] = np.sum(scale[:, i:L] * self.psi[:, : L - i], axis=1)
        return self.sigma * np.sqrt(np.sum(coef ** 2, axis=1))

    def take(self, idx: np.ndarray) -> "PanelForecast":
        return PanelForecast(self.mean[idx], self.sigma[idx], self.psi[idx],
                             None if self.scale is None else self.scale[idx], [self.method[i] for i in idx])


def _combine(parts: list[tuple[np.ndarray, PanelForecast]], n: int, h: int) -> PanelForecast:
    """Assemble per-subset forecasts back into one panel (rows given by index arrays)."""
    out = PanelForecast(np.full((n, h), np.nan), np.full(n, np.nan), np.zeros((n, h)), np.ones((n, h)), [""] * n)
    out.psi[:, 0] = 1.0
    for idx, fc in parts:
        if len(idx) == 0:
            continue
        out.mean[idx] = fc.mean
        out.sigma[idx] = fc.sigma
        out.psi[idx] = fc.psi
        if fc.scale is not None:
            out.scale[idx] = fc.scale
        for k, i in enumerate(idx):
            out.method[i] = fc.method[k]
    return out


# --------------------------------------------------------------------------------------------------------
# Panel helpers
# --------------------------------------------------------------------------------------------------------
def _check_panel(y: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if lens is None:
        lens = np.sum(~np.isnan(y), axis=1)  # caller promised left alignment
    lens = np.asarray(lens, dtype=np.int64)
    T = y.shape[1]
    M = (np.arange(T)[None, :] < lens[:, None]).astype(np.float64)
    Y0 = np.where(M > 0, np.nan_to_num(y, nan=0.0), 0.0)
    return Y0, M, lens


def _gather(Y0: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Y0[i, cols[i, k]] with out-of-range columns giving 0."""
    T = Y0.shape[1]
    c = np.clip(cols, 0, max(T - 1, 0))
    out = np.take_along_axis(Y0, c, axis=1) if T else np.zeros(cols.shape)
    return np.where((cols >= 0) & (cols < T), out, 0.0)


def _masked_mean(Y0, M, axis=1):
    n = M.sum(axis=axis)
    return np.where(n > 0, (Y0 * M).sum(axis=axis) / np.maximum(n, 1), 0.0)


def seasonality_strength(y: np.ndarray, lens: np.ndarray, m: int) -> np.ndarray:
    """Per series, whether the autocorrelation at lag ``m`` is significant (90% one-sided, as Theta's test)."""
    Y0, M, lens = _check_panel(y, lens)
    N, T = Y0.shape
    if m < 2 or T <= m:
        return np.zeros(N, dtype=bool)
    mu = _masked_mean(Y0, M)
    X = (Y0 - mu[:, None]) * M
    den = np.sum(X * X, axis=1)
    r = np.zeros((N, m))
    for k in range(1, m + 1):
        r[:, k - 1] = np.sum(X[:, :-k] * X[:, k:], axis=1) / np.maximum(den, 1e-12)
    n = np.maximum(lens, 1)
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(r[:, : m - 1] ** 2, axis=1)) / n)
    return (np.abs(r[:, m - 1]) > limit) & (den > 0) & (lens >= 2 * m)


def is_intermittent(y: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Syntetos-Boylan: average demand interval above 1.32 periods."""
    Y0, M, lens = _check_panel(y, lens)
    nz = np.sum((Y0 > 0) * M, axis=1)
    return np.where(nz > 0, lens / np.maximum(nz, 1), np.inf) > 1.32


# --------------------------------------------------------------------------------------------------------
# Exponential smoothing core: one pass over time for (series x candidate parameter sets)
# --------------------------------------------------------------------------------------------------------
def _ets_run(Y0, M, lens, m, A, B, G, P, l0, b0, s0, Mu=None):
    """Additive-error ETS recursion for all series and K candidates each.

    A, B, G, P: (N, K) smoothing alpha, beta, gamma and damping phi; l0, b0: (N,) or (N, K); s0: (N, m) or
    (m, N, K), phase-aligned with column index (t % m). Returns sse (N, K), level and trend right after each
    series' last observation, and the seasonal buffer (m, N, K) (unchanged after a series ends).
    Mu: (K,) 1 for candidates with a multiplicative season (factors around 1), 0 for additive; None: all additive.
    """
    N, K = A.shape
    T = int(lens.max()) if len(lens) else 0
    l = np.repeat(l0[:, None], K, axis=1) if l0.ndim == 1 else l0.copy()
    b = np.repeat(b0[:, None], K, axis=1) if b0.ndim == 1 else b0.copy()
    if s0.ndim == 2:
        S = np.ascontiguousarray(np.repeat(s0.T[:, :, None], K, axis=2))
    else:
        S = np.ascontiguousarray(s0)
    sse = np.zeros((N, K))
    l_end, b_end = l.copy(), b.copy()
    ends = {}
    for i, e in enumerate(lens - 1):
        ends.setdefault(int(e), []).append(i)
    ends = {t: np.asarray(ix) for t, ix in ends.items()}
    yt = np.empty((N, 1))
    mt = np.empty((N, 1))
    mult = Mu is not None and bool(np.any(Mu))
    if mult:
        Mu = np.broadcast_to(np.asarray(Mu, dtype=float), (N, K))
        nMu = 1.0 - Mu
    for t in range(T):
        s = S[t % m]
        pb = P * b
        yt[:, 0] = Y0[:, t]
        mt[:, 0] = M[:, t]
        if mult:
            base = l + pb
            sf = np.maximum(1.0 + Mu * (s - 1.0), 0.05)
            yhat = base * sf + nMu * s
            e = yt - yhat
            e *= mt
            sse += e * e
            es = e / sf
            l = base + A * es
            b = pb + B * es
            s += G * e / (nMu + Mu * np.maximum(base, 0.05))
        else:
            yhat = l + pb
            yhat += s
            e = yt - yhat
            e *= mt
            sse += e * e
            l = yhat - s
            l += A * e
            b = pb + B * e
            s += G * e
        ix = ends.get(t)
        if ix is not None:
            l_end[ix] = l[ix]
            b_end[ix] = b[ix]
    return sse, l_end, b_end, S


def _ets_init(Y0, lens, m, trend: bool, seasonal: bool, mult: bool = False):
    """Heuristic initial states from the first one or two seasons (classical decomposition)."""
    N, T = Y0.shape
    if seasonal and mult and m > 1 and T >= 2 * m:
        c1 = Y0[:, :m].mean(axis=1)
        c2 = Y0[:, m:2 * m].mean(axis=1)
        b0 = (c2 - c1) / m if trend else np.zeros(N)
        ok = (c1 > 0) & (c2 > 0)
        s0 = (Y0[:, :m] / np.where(ok, c1, 1)[:, None] + Y0[:, m:2 * m] / np.where(ok, c2, 1)[:, None]) / 2.0
        s0 = np.clip(s0, 0.05, None)
        s0 /= s0.mean(axis=1, keepdims=True)
        s0 = np.where(ok[:, None], s0, 1.0)
        return c1 - b0 * (m + 1) / 2.0, b0, s0
    if seasonal and m > 1 and T >= 2 * m:
        c1 = Y0[:, :m].mean(axis=1)
        c2 = Y0[:, m:2 * m].mean(axis=1)
        b0 = (c2 - c1) / m if trend else np.zeros(N)
        s0 = ((Y0[:, :m] - c1[:, None]) + (Y0[:, m:2 * m] - c2[:, None])) / 2.0
        if trend:
            s0 -= b0[:, None] * (np.arange(m) - (m - 1) / 2.0)[None, :]
        s0 -= s0.mean(axis=1, keepdims=True)
        l0 = c1 - b0 * (m + 1) / 2.0
        return l0, b0, s0
    k = np.clip(np.minimum(lens // 2, 7), 1, None)
    cols = np.arange(T)[None, :]
    w1 = (cols < k[:, None]).astype(float)
    w2 = ((cols >= k[:, None]) & (cols < 2 * k[:, None])).astype(float)
    c1 = (Y0 * w1).sum(1) / np.maximum(w1.sum(1), 1)
    c2 = (Y0 * w2).sum(1) / np.maximum(w2.sum(1), 1)
    b0 = np.where(lens >= 4, (c2 - c1) / k, 0.0) if trend else np.zeros(N)
    l0 = c1 - b0 * (k + 1) / 2.0
    return l0, b0, np.zeros((N, max(m, 1)))


def _sig(u):
    return 1.0 / (1.0 + np.exp(-u))


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


_PHI_LO, _PHI_HI = 0.8, 0.98
# Unconstrained coordinates u = (alpha, beta share of alpha, phi, gamma share of 1 - alpha); starting grid:
_GRID = {0: _logit(np.array([0.02, 0.1, 0.3, 0.6, 0.9])), 1: _logit(np.array([0.05, 0.4])),
         2: np.array([-1.0, 1.5]), 3: _logit(np.array([0.02, 0.2]))}


def _params(U, tr, se):
    """u (..., K, 4) -> alpha, beta, gamma, phi (..., K) within the admissible box; tr/se (K,) family flags."""
    alpha = 0.0001 + 0.9998 * _sig(U[..., 0])
    beta = alpha * _sig(U[..., 1]) * tr
    phi = (_PHI_LO + (_PHI_HI - _PHI_LO) * _sig(U[..., 2])) * tr
    gamma = (1 - alpha) * _sig(U[..., 3]) * se
    return alpha, beta, gamma, phi


def _fit_ets_all(Y0, M, lens, m, families, rounds=5):
    """Least-squares smoothing parameters of several ETS families (trend, seasonal) for every series at once.

    All families and candidates share one recursion over time (non-seasonal ones carry a zero season,
    trendless ones a zero trend): a starting grid, then ``rounds`` rounds of per-series pattern search.
    """
    N = Y0.shape[0]
    families = [tuple(f) + (False,) * (3 - len(f)) for f in families]
    F = len(families)
    inits = []
    for tr, se, mu in families:
        l0, b0, s0 = _ets_init(Y0, lens, m if se else 1, tr, se, mu)
        if s0.shape[1] != m:
            s0 = np.zeros((N, m))
        inits.append((l0, b0, s0))
    active = [[0] + ([1, 2] if tr else []) + ([3] if se else []) for tr, se, _ in families]

    def evaluate(U, fam):
        tr = np.array([families[f][0] for f in fam], dtype=float)
        se = np.array([families[f][1] for f in fam], dtype=float)
        mu = np.array([families[f][2] for f in fam], dtype=float)
        a, b, g, p = _params(U, tr, se)
        l0 = np.stack([inits[f][0] for f in fam], axis=1)
        b0 = np.stack([inits[f][1] for f in fam], axis=1)
        s0 = np.stack([inits[f][2].T for f in fam], axis=2)  # (m, N, K)
        return _ets_run(Y0, M, lens, m, a, b, g, p, l0, b0, s0, mu if mu.any() else None)

    # starting grid
    blocks, fam = [], []
    for f, act in enumerate(active):
        axes = [_GRID[d] if d in act else np.zeros(1) for d in range(4)]
        g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 4)
        blocks.append(g)
        fam += [f] * len(g)
    fam = np.asarray(fam)
    U = np.broadcast_to(np.concatenate(blocks)[None], (N, len(fam), 4))
    sse = evaluate(U, fam)[0]
    u = np.zeros((N, F, 4))
    best = np.zeros((N, F))
    for f in range(F):
        cols = np.nonzero(fam == f)[0]
        k = cols[np.argmin(sse[:, cols], axis=1)]
        u[:, f] = U[np.arange(N), k]
        best[:, f] = sse[np.arange(N), k]
    step = np.full((N, F, 4), 0.6)
    # pattern search: +-step on each active coordinate of each family, halving the step when nothing improves
    fam_r = np.concatenate([[f] * (2 * len(act)) for f, act in enumerate(active)])
    for _ in range(rounds):
        cand = np.repeat(u, [2 * len(a) for a in active], axis=1)  # (N, K, 4)
        c = 0
        for f, act in enumerate(active):
            for d in act:
                cand[:, c, d] += step[:, f, d]
                cand[:, c + 1, d] -= step[:, f, d]
                c += 2
        s = evaluate(cand, fam_r)[0]
        for f in range(F):
            cols = np.nonzero(fam_r == f)[0]
            k = cols[np.argmin(s[:, cols], axis=1)]
            sk = s[np.arange(N), k]
            better = sk < best[:, f]
            u[:, f] = np.where(better[:, None], cand[np.arange(N), k], u[:, f])
            best[:, f] = np.where(better, sk, best[:, f])
            step[:, f] = np.where(better[:, None], step[:, f], step[:, f] * 0.5)
    fam_f = np.arange(F)
    sse, l, bb, S = evaluate(u, fam_f)
    tr = np.array([f[0] for f in families], dtype=float)
    se = np.array([f[1] for f in families], dtype=float)
    a, b, g, p = _params(u, tr, se)
    return [dict(alpha=a[:, f], beta=b[:, f], gamma=g[:, f], phi=p[:, f], sse=sse[:, f], l=l[:, f], b=bb[:, f],
                 S=S[:, :, f].T.copy(), m=m, trend=families[f][0], seasonal=families[f][1], mult=families[f][2])
            for f in range(F)]


def _fit_ets_family(Y0, M, lens, m, trend, seasonal, rounds=5):
    return _fit_ets_all(Y0, M, lens, m if seasonal else 1, [(trend, seasonal)], rounds)[0]


def _ets_forecast(fit: dict, lens, h):
    N = len(lens)
    steps = np.arange(1, h + 1)
    phi = fit["phi"][:, None]
    if fit["trend"]:
        # phi_h = phi + phi^2 + ... + phi^h
        phih = np.cumsum(phi ** steps[None, :], axis=1)
    else:
        phih = np.zeros((N, h))
    mm = fit["m"]
    phase = (lens[:, None] + steps[None, :] - 1) % mm
    seas = np.take_along_axis(fit["S"], phase, axis=1)
    if fit.get("mult"):
        mean = (fit["l"][:, None] + phih * fit["b"][:, None]) * seas
    else:
        mean = fit["l"][:, None] + phih * fit["b"][:, None] + seas
    psi = np.empty((N, h))
    psi[:, 0] = 1.0
    if h > 1:
        j = steps[:-1]
        c = fit["alpha"][:, None] + fit["beta"][:, None] * phih[:, :-1] if fit["trend"] else \
            np.repeat(fit["alpha"][:, None], h - 1, axis=1)
        if fit["seasonal"]:
            c = c + fit["gamma"][:, None] * (j[None, :] % mm == 0)
        psi[:, 1:] = c
    return mean, psi


def _aicc(sse, n, k):
    n = np.maximum(n, 1).astype(float)
    ll = n * np.log(np.maximum(sse / n, 1e-12))
    return ll + 2 * k + np.where(n - k - 1 > 0, 2 * k * (k + 1) / np.maximum(n - k - 1, 1), np.inf)


# --------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------
class _Model:
    name = "model"

    def fit(self, y, lens=None):
        raise NotImplementedError

    def predict(self, h: int) -> PanelForecast:
        raise NotImplementedError

    @staticmethod
    def _check_h(h):
        if not isinstance(h, (int, np.integer)) or h < 1:
            raise ForecastInputError("horizon", f"must be a positive whole number, got {h!r}", "Pass e.g. 7")


class Naive(_Model):
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
                             None, [self.name] * N)


class SeasonalNaive(_Model):
    """The value one season ago; intervals from in-sample seasonal differences."""

    name = "seasonal_naive"

    def __init__(self, season_length: int = 7):
        if not isinstance(season_length, (int, np.integer)) or season_length < 1:
            raise ForecastInputError("season_length", f"must be a positive integer, got {season_length!r}",
                                     "Pass e.g. 7 for daily data with a weekly pattern")
        self.m = int(season_length)

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
        mean = self.last[:, k % m]
        psi = np.zeros((N, h))
        psi[:, 0] = 1.0
        psi[:, m::m] = 1.0 if m < h else 0.0
        if m == 1:
            psi[:] = 1.0
        return PanelForecast(mean, self.sigma.copy(), psi, None, [self.name] * N)


class ETS(_Model):
    """Additive-error exponential smoothing for every series at once.

    ``trend``/``seasonal``: True, False or 'auto' (chosen per series by AICc among the families fitted).
    The trend, when present, is damped with phi in [0.8, 0.98] (damped trends forecast demand better than
    straight lines). Parameters minimise the one-step squared error (the Gaussian likelihood's core).
    """

    name = "ets"

    def __init__(self, season_length: int = 7, trend="auto", seasonal="auto", rounds: int = 5,
                 multiplicative: bool = False):
        self.m = int(season_length)
        self.trend, self.seasonal, self.rounds = trend, seasonal, rounds
        self.multiplicative = multiplicative

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        N = len(lens)
        self.lens = lens
        trends = [False, True] if self.trend == "auto" else [bool(self.trend)]
        can_season = self.m > 1 and Y0.shape[1] >= 2 * self.m
        seasons = ([False, True] if self.seasonal == "auto" else [bool(self.seasonal)]) if can_season else [False]
        best_score = np.full(N, np.inf)
        chosen = np.zeros(N, dtype=int)
        families = [(tr, se, False) for tr in trends for se in seasons]
        if self.multiplicative and can_season and True in seasons:
            families += [(tr, True, True) for tr in trends]
            # a multiplicative season needs a clearly positive level: at least 90% of periods with demand
            positive = (np.sum((Y0 > 0) * M, axis=1) >= 0.9 * lens) & (lens >= 2 * self.m)
        fits = _fit_ets_all(Y0, M, lens, self.m if can_season else 1, families, self.rounds)
        for i, f in enumerate(fits):
            tr, se = f["trend"], f["seasonal"]
            k = 1 + 2 * tr + se + 1 + tr + (self.m - 1 if se else 0)
            score = _aicc(f["sse"], lens, k)
            if se:
                score = np.where(lens >= 2 * self.m, score, np.inf)
            if tr:
                score = np.where(lens >= 6, score, np.inf)
            if f["mult"]:
                score = np.where(positive & np.isfinite(f["sse"]), score, np.inf)
            f["k"] = k
            take = score < best_score
            chosen = np.where(take, i, chosen)
            best_score = np.where(take, score, best_score)
        self.fits, self.chosen = fits, chosen
        sig = np.full(N, np.nan)
        for i, f in enumerate(fits):
            sel = chosen == i
            sig[sel] = np.sqrt(f["sse"][sel] / np.maximum(lens[sel] - f["k"], 1))
        self.sigma = sig
        return self

    def predict(self, h):
        self._check_h(h)
        N = len(self.lens)
        mean = np.zeros((N, h))
        psi = np.zeros((N, h))
        names = [""] * N
        for i, f in enumerate(self.fits):
            sel = self.chosen == i
            if not sel.any():
                continue
            mu, ps = _ets_forecast(f, self.lens, h)
            mean[sel], psi[sel] = mu[sel], ps[sel]
            label = "ets(A,%s,%s)" % ("Ad" if f["trend"] else "N", ("M" if f["mult"] else "A") if f["seasonal"] else "N")
            for j in np.nonzero(sel)[0]:
                names[j] = label
        self.labels = names
        return PanelForecast(mean, self.sigma.copy(), psi, None, ["ets"] * N)


def _seasonal_indices(Y0, M, lens, m):
    """Classical multiplicative seasonal indices (N, m) per phase t % m; 1 where they cannot be estimated."""
    N, T = Y0.shape
    if m < 2 or T < 2 * m:
        return np.ones((N, max(m, 1)))
    c = np.cumsum(np.pad(Y0 * M, ((0, 0), (1, 0))), axis=1)
    cm = np.cumsum(np.pad(M, ((0, 0), (1, 0))), axis=1)
    if m % 2:
        h = m // 2
        tot = c[:, m:] - c[:, :-m]
        cnt = cm[:, m:] - cm[:, :-m]
        cma = np.full((N, T), np.nan)
        cma[:, h:T - h] = np.where(cnt == m, tot / m, np.nan)
    else:
        h = m // 2
        tot1 = c[:, m:] - c[:, :-m]  # windows of m starting at s
        cnt1 = cm[:, m:] - cm[:, :-m]
        ma = np.where(cnt1 == m, tot1 / m, np.nan)  # (N, T-m+1)
        cma = np.full((N, T), np.nan)
        cma[:, h:T - h] = (ma[:, :-1] + ma[:, 1:]) / 2
    ratio = np.where(cma > 0, Y0 / np.where(cma > 0, cma, 1.0), np.nan)
    pad = (-T) % m
    R = np.pad(ratio, ((0, 0), (0, pad)), constant_values=np.nan).reshape(N, -1, m)
    ok = ~np.isnan(R)
    cnt = ok.sum(axis=1)
    idx = np.where(cnt > 0, np.where(ok, R, 0).sum(axis=1) / np.maximum(cnt, 1), 1.0)
    idx = np.where(idx > 0.01, idx, 0.01)
    idx /= idx.mean(axis=1, keepdims=True)
    good = np.all(cnt > 0, axis=1)
    return np.where(good[:, None], idx, 1.0)


class Theta(_Model):
    """Standard Theta (Assimakopoulos & Nikolopoulos; Hyndman & Billah's SES-with-drift form).

    Seasonally adjusts with classical multiplicative indices when the lag-m autocorrelation is significant,
    fits SES on the adjusted series and adds half the linear-trend slope as drift.
    """

    name = "theta"

    def __init__(self, season_length: int = 7, rounds: int = 5):
        self.m = int(season_length)
        self.rounds = rounds

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        N, T = Y0.shape
        self.lens = lens
        seas = seasonality_strength(Y0 + np.where(M > 0, 0, np.nan), lens, self.m) if self.m > 1 else np.zeros(N, bool)
        idx = _seasonal_indices(Y0, M, lens, self.m) if self.m > 1 else np.ones((N, 1))
        idx = np.where(seas[:, None], idx, 1.0)
        self.idx = idx
        mm = idx.shape[1]
        phase = np.arange(T) % mm
        X = Y0 / idx[:, phase] * M
        f = _fit_ets_family(X, M, lens, 1, False, False, self.rounds)
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
        return PanelForecast(mean, self.sigma.copy(), psi, si, [self.name] * N)


class Croston(_Model):
    """TSB (Teunter-Syntetos-Babai) Croston variant: smoothed demand probability x smoothed size."""

    name = "croston"

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
        return PanelForecast(mean, self.sigma.copy(), psi, None, [self.name] * N)


class ARIMA(_Model):
    """Seasonal ARIMA per series with statsmodels: (1,0,1)(0,1,1)m where two seasons fit, else (1,1,1).

    This is a loop of per-series maximum-likelihood fits (about 0.3-1 s each on one core, BLAS held to one
    thread): use it for tens or hundreds of series, not thousands. A series whose fit fails falls back to ETS
    (said in ``method``) by the caller.
    """

    name = "arima"

    def __init__(self, season_length: int = 7):
        self.m = int(season_length)

    def fit(self, y, lens=None):
        import contextlib
        import warnings

        from statsmodels.tsa.arima.model import ARIMA as _SMARIMA

        try:
            from threadpoolctl import threadpool_limits
            limit = threadpool_limits(1)
        except Exception:  # noqa: BLE001 - optional: only avoids BLAS oversubscription
            limit = contextlib.nullcontext()
        Y0, M, lens = _check_panel(y, lens)
        N = len(lens)
        self.lens = lens
        self.results: list = [None] * N
        self.errors: list = [None] * N
        with limit, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in steps(range(N), "ARIMA per series", unit="series"):  # per-series likelihood: unavoidable
                yi = Y0[i, : lens[i]]
                seasonal = self.m > 1 and lens[i] >= 2 * self.m + 3
                try:
                    if seasonal:
                        r = _SMARIMA(yi, order=(1, 0, 1), seasonal_order=(0, 1, 1, self.m)).fit()
                    else:
                        r = _SMARIMA(yi, order=(1, 1, 1)).fit()
                    self.results[i] = r if np.isfinite(r.llf) else None
                except Exception as e:  # noqa: BLE001 - one bad series must not fail the rest
                    self.errors[i] = type(e).__name__
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
        return PanelForecast(mean, sigma, psi, None, [self.name] * N)


# --------------------------------------------------------------------------------------------------------
# Yearly seasonality on daily/weekly data: Fourier terms fitted per series (batched least squares)
# --------------------------------------------------------------------------------------------------------
def _fourier(days: np.ndarray, K: int) -> np.ndarray:
    w = 2 * np.pi * days / 365.25
    cols = []
    for k in range(1, K + 1):
        cols += [np.sin(k * w), np.cos(k * w)]
    return np.stack(cols, axis=-1)


class YearlyAdjust:
    """Removes a per-series yearly Fourier pattern (K harmonics, with level and trend in the regression) where
    it is significant and the series covers two years; adds it back to the forecast."""

    def __init__(self, K: int = 3, alpha: float = 0.001):
        self.K, self.alpha = K, alpha

    def fit(self, Y0, M, lens, day0, step_days, chunk: int = 500):
        """Per series least squares, in chunks of series so memory stays at chunk x T x (2K + 2) floats."""
        N = Y0.shape[0]
        parts = [self._fit(Y0[i:i + chunk], M[i:i + chunk], lens[i:i + chunk], day0[i:i + chunk], step_days)
                 for i in range(0, max(N, 1), chunk)]
        self.active = np.concatenate([p[0] for p in parts])
        self.coef = np.concatenate([p[1] for p in parts])
        self.pattern = np.concatenate([p[2] for p in parts])
        self.day0, self.step = day0, step_days
        return self

    def _fit(self, Y0, M, lens, day0, step_days):
        N, T = Y0.shape
        t = np.arange(T)
        days = day0[:, None] + t[None, :] * step_days  # (N, T)
        F = _fourier(days.astype(float), self.K)  # (N, T, 2K)
        tt = (t / 365.25)[None, :, None] * np.ones((N, 1, 1))
        X = np.concatenate([np.ones((N, T, 1)), tt, F], axis=2) * M[:, :, None]
        XtX = np.einsum("ntp,ntq->npq", X, X)
        Xty = np.einsum("ntp,nt->np", X, Y0 * M)
        ridge = 1e-6 * np.eye(X.shape[2])[None]
        coef = np.linalg.solve(XtX + ridge, Xty[..., None])[..., 0]
        resid = Y0 * M - np.einsum("ntp,np->nt", X, coef)
        rss_full = np.sum(resid ** 2 * M, axis=1)
        X0 = X[:, :, :2]
        c0 = np.linalg.solve(XtX[:, :2, :2] + ridge[:, :2, :2], Xty[:, :2, None])[..., 0]
        rss0 = np.sum((Y0 * M - np.einsum("ntp,np->nt", X0, c0)) ** 2 * M, axis=1)
        q = 2 * self.K
        dof = np.maximum(lens - X.shape[2], 1)
        Fstat = ((rss0 - rss_full) / q) / np.maximum(rss_full / dof, 1e-12)
        # F(q, dof) upper tail via a normal approximation of the (q*F) chi-square (dof large when used)
        x = q * Fstat
        z = ((x / q) ** (1 / 3) - (1 - 2 / (9 * q))) / math.sqrt(2 / (9 * q))
        thresh = NormalDist().inv_cdf(1 - self.alpha)
        active = (lens * step_days >= 700) & (z > thresh) & np.isfinite(z)
        coef = np.where(active[:, None], coef[:, 2:], 0.0)
        return active, coef, np.einsum("ntp,np->nt", F, coef) * M

    def adjusted(self, Y0):
        return Y0 - self.pattern

    def future(self, lens, h):
        steps = lens[:, None] + np.arange(h)[None, :]
        days = self.day0[:, None] + steps * self.step
        return np.einsum("nhp,np->nh", _fourier(days.astype(float), self.K), self.coef)


# --------------------------------------------------------------------------------------------------------
# Auto selection
# --------------------------------------------------------------------------------------------------------
def _make(method: str, m: int):
    if method == "ets":
        return ETS(m)
    if method == "theta":
        return Theta(m)
    if method == "seasonal_naive":
        return SeasonalNaive(m)
    if method == "croston":
        return Croston()
    if method == "naive":
        return Naive()
    if method == "arima":
        return ARIMA(m)
    raise ForecastInputError("method", f"unknown method {method!r}", f"Use one of {', '.join(METHODS)}")


def _fit_predict(method: str, Y0, lens, m, h, yearly: YearlyAdjust | None = None) -> PanelForecast:
    """Fit one method on a panel (optionally on yearly-adjusted data) and forecast h steps."""
    if yearly is not None and method in ("ets", "theta", "arima"):
        X = Y0 - yearly.pattern
        mask = np.arange(Y0.shape[1])[None, :] < lens[:, None]
        X = np.where(mask, X, np.nan)
        fc = _make(method, m).fit(X, lens).predict(h)
        fc.mean = fc.mean + yearly.future(lens, h)
        return fc
    mask = np.arange(Y0.shape[1])[None, :] < lens[:, None]
    return _make(method, m).fit(np.where(mask, Y0, np.nan), lens).predict(h)


_YEARLY_AWARE = ("ets", "theta", "arima", "ets+theta")


class AutoForecaster(_Model):
    """Per series, a method chosen on a rolling-origin holdout (``origins`` origins spaced by the horizon at
    the end of each series; every candidate is refitted on the data before each origin).

    Candidates: seasonal naive, ETS, Theta, the mean of ETS and Theta (a combination is usually more accurate
    than either) and, for intermittent series, Croston/TSB. The default is ETS+Theta for smooth series and ETS
    for intermittent ones; another candidate replaces it only when its holdout mean absolute error is below
    ``switch_margin`` times the default's (a short holdout's argmin is mostly noise). Series too short for the
    holdout get ETS without selection, said in ``method``.
    """

    name = "auto"
    CANDIDATES = ("seasonal_naive", "ets", "theta", "ets+theta", "croston")

    def __init__(self, season_length: int = 7, origins: int = 2, candidates=None, switch_margin: float = 0.75):
        self.m = int(season_length)
        self.origins = origins
        self.switch_margin = switch_margin
        self.candidates = tuple(candidates or self.CANDIDATES)

    def _all(self, Y0, lens, h, inter, yearly, candidates=None):
        """Forecasts of every candidate for all series: name -> PanelForecast."""
        candidates = candidates or self.candidates
        out = {}
        base = {}
        for c in ("seasonal_naive", "ets", "theta"):
            if c in candidates or (c in ("ets", "theta") and "ets+theta" in candidates):
                base[c] = _fit_predict(c, Y0, lens, self.m, h, yearly)
        out.update({k: v for k, v in base.items() if k in candidates})
        if "ets+theta" in candidates:
            e, t = base["ets"], base["theta"]
            sd = np.sqrt((e.sd() ** 2 + t.sd() ** 2) / 2)
            comb = PanelForecast((e.mean + t.mean) / 2, e.sigma.copy(), e.psi.copy(), None, ["ets+theta"] * len(lens))
            base_sd = e.sigma[:, None] * np.sqrt(np.cumsum(e.psi ** 2, axis=1))
            comb.scale = np.where(base_sd > 0, sd / np.maximum(base_sd, 1e-300), 1.0)
            out["ets+theta"] = comb
        if "croston" in candidates and inter.any():
            out["croston"] = _fit_predict("croston", Y0, lens, self.m, h)
        return out

    def fit(self, y, lens=None, yearly: YearlyAdjust | None = None):
        Y0, M, lens = _check_panel(y, lens)
        self.Y0, self.lens, self.yearly = Y0, lens, yearly
        return self

    def predict(self, h):
        self._check_h(h)
        Y0, lens, yearly = self.Y0, self.lens, self.yearly
        N = len(lens)
        inter = is_intermittent(Y0 + 0.0, lens)
        bt_h = h
        need = lens - self.origins * bt_h
        can = need >= max(2 * self.m, 8)
        scores = {}
        if can.any():
            idx = np.nonzero(can)[0]
            Ys, ls = Y0[idx], lens[idx]
            ys = yearly if yearly is None else _SubYearly(yearly, idx)
            for o in range(self.origins, 0, -1):
                cut = ls - o * bt_h
                fcs = self._all(Ys, cut, bt_h, inter[idx], ys)
                actual = _gather(Ys, cut[:, None] + np.arange(bt_h)[None, :])
                for name, fc in fcs.items():
                    err = np.mean(np.abs(np.maximum(fc.mean, 0) - actual), axis=1)
                    if name == "croston":  # intermittent-demand method for intermittent series only
                        err = np.where(inter[idx], err, np.inf)
                    elif name in ("theta", "ets+theta"):  # Theta's drift and indices misfit sparse demand
                        err = np.where(inter[idx], np.inf, err)
                    scores[name] = scores.get(name, 0.0) + np.where(np.isnan(err), np.inf, err)
        names = list(scores)
        choice = np.full(N, "ets", dtype=object)
        if names:
            # The default (ETS+Theta for smooth demand, ETS for intermittent) stays unless another candidate's
            # holdout error is clearly lower: picking the argmin of a short holdout mostly picks noise.
            S = np.stack([scores[n] for n in names], axis=1)
            rows = np.arange(len(idx))
            dflt_name = np.where(inter[idx], "ets", "ets+theta" if "ets+theta" in names else "ets")
            pos = {n: i for i, n in enumerate(names)}
            dflt = np.array([pos.get(d, pos.get("ets", 0)) for d in dflt_name])
            pick = np.argmin(S, axis=1)
            switch = S[rows, pick] < self.switch_margin * S[rows, dflt]
            choice[idx] = np.asarray(names, dtype=object)[np.where(switch, pick, dflt)]
        parts = []
        for name in sorted(set(choice)):
            sel = np.nonzero(choice == name)[0]
            ys = yearly if yearly is None else _SubYearly(yearly, sel)
            fc = self._all(Y0[sel], lens[sel], h, inter[sel], ys, ("ets+theta",)) if name == "ets+theta" else \
                {name: _fit_predict(name, Y0[sel], lens[sel], self.m, h, ys if name != "croston" else None)}
            f = fc[name]
            short = ~can[sel]
            f.method = [("auto->ets (short for backtest)" if s else name) for s in short]
            parts.append((sel, f))
        self.choice = choice
        return _combine(parts, N, h)


class _SubYearly:
    """A YearlyAdjust restricted to some series."""

    def __init__(self, y: YearlyAdjust, idx):
        self.pattern = y.pattern[idx]
        self.coef, self.day0, self.step, self.K = y.coef[idx], y.day0[idx], y.step, y.K
        self.active = y.active[idx]

    future = YearlyAdjust.future


# --------------------------------------------------------------------------------------------------------
# From rows to a panel and back
# --------------------------------------------------------------------------------------------------------
def infer_frequency(series: np.ndarray, day: np.ndarray) -> str:
    """'daily', 'weekly', 'monthly', 'quarterly' or 'yearly' from the median gap between consecutive dates
    of the same series (rows sorted by series, then date)."""
    if len(day) < 2:
        return "daily"
    same = series[1:] == series[:-1]
    d = (day[1:] - day[:-1])[same]
    d = d[d > 0]
    if len(d) == 0:
        return "daily"
    med = float(np.median(d))
    if med < 4:
        return "daily"
    if med < 20:
        return "weekly"
    if med < 60:
        return "monthly"
    if med < 200:
        return "quarterly"
    return "yearly"


def _period_index(day: np.ndarray, freq: str) -> np.ndarray:
    """Integer period number of each date for the frequency (days, weeks, months, quarters or years)."""
    step, monthly, _ = FREQS[freq]
    if not monthly:
        return np.floor_divide(day, step) if step > 1 else day.astype(np.int64)
    months = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return np.floor_divide(months, step)


def _period_dates(period: np.ndarray, freq: str, anchor: np.ndarray) -> np.ndarray:
    """Epoch day of each period number; weekly periods keep the series' own weekday (anchor day)."""
    step, monthly, _ = FREQS[freq]
    if not monthly:
        if step == 1:
            return period.astype(np.int64)
        return period * step + (anchor % step)
    months = (period * step).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


@dataclass
class PanelResult:
    """Flat output rows (series index, epoch day, forecast, lower, upper) plus one method label per series."""

    series: np.ndarray
    day: np.ndarray
    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: list[str]
    freq: str
    season: int
    panel: "Panel | None" = None
    fc: PanelForecast | None = None


@dataclass
class Panel:
    y: np.ndarray  # (N, T) float, zeros in gaps, NaN after lens
    lens: np.ndarray
    start: np.ndarray  # first period number of each series
    anchor: np.ndarray  # first epoch day of each series
    n_obs: np.ndarray  # non-NULL observations per series
    freq: str
    season: int


def build_panel(series: np.ndarray, day: np.ndarray, value: np.ndarray, n_series: int, freq: str | None = None,
                season: int | None = None) -> Panel:
    """Rows (series code 0..n_series-1, epoch day, value with NaN for NULL), sorted by series then day, to a
    left-aligned panel with gaps and NULLs filled with zero."""
    series = np.asarray(series, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    freq = freq or infer_frequency(series, day)
    if freq not in FREQS:
        raise ForecastInputError("freq", f"unknown frequency {freq!r}", f"Use one of {', '.join(FREQS)}")
    m = FREQS[freq][2] if season is None else int(season)
    per = _period_index(day, freq)
    start = np.full(n_series, np.iinfo(np.int64).max)
    np.minimum.at(start, series, per)
    end = np.full(n_series, np.iinfo(np.int64).min)
    np.maximum.at(end, series, per)
    anchor = np.full(n_series, np.iinfo(np.int64).max)
    np.minimum.at(anchor, series, day)
    present = start <= end
    lens = np.where(present, end - start + 1, 0)
    T = int(lens.max()) if n_series else 0
    y = np.zeros((n_series, max(T, 1)))
    y[np.arange(max(T, 1))[None, :] >= lens[:, None]] = np.nan
    off = per - start[series]
    ok = ~np.isnan(value)
    np.add.at(y, (series[ok], off[ok]), value[ok])
    n_obs = np.bincount(series[ok], minlength=n_series)
    return Panel(y, lens, np.where(present, start, 0), np.where(present, anchor, 0), n_obs, freq, m)


def forecast_panel(panel: Panel, horizon: int, method: str = "auto", level: float = 0.95,
                   clip: bool = True, nn_config=None) -> PanelResult:
    """Forecast every series of a panel; short or empty series fall back (said in ``method``), and a series
    whose forecast fails falls back to the naive forecast instead of failing the others.
    ``method='nn'`` trains one network over all series (``tasks.forecast_nn``; ``nn_config`` its NNConfig)."""
    validate_horizon(horizon)
    validate_level(level)
    if method not in METHODS:
        raise ForecastInputError("method", f"unknown method {method!r}", f"Use one of {', '.join(METHODS)}")
    if method == "nn":
        from . import forecast_nn as NN

        NN.require_tensorflow()  # a missing TensorFlow is an error, not a silent fallback
    explicit_bands = []  # (series index, lower, upper) of methods with their own (quantile) bands
    y, lens, m = panel.y, panel.lens, panel.season
    N = len(lens)
    h = int(horizon)
    Y0 = np.nan_to_num(y, nan=0.0)
    empty = panel.n_obs == 0
    parts = []

    # Buckets by what each series' length allows.
    one = (~empty) & (lens < 3)
    seasonal_ok = lens >= 2 * m
    rest = (~empty) & (~one)
    yearly = None
    step_days, monthly, _ = FREQS[panel.freq]
    if not monthly and rest.any() and int(lens.max()) * step_days >= 700:
        yearly = YearlyAdjust().fit(Y0, (np.arange(Y0.shape[1])[None, :] < lens[:, None]).astype(float), lens,
                                    panel.anchor, step_days)
        if not yearly.active.any():
            yearly = None

    def sub_yearly(ix):
        if yearly is None:
            return None
        return _SubYearly(yearly, ix)

    if one.any():
        ix = np.nonzero(one)[0]
        fc = _fit_predict("naive", Y0[ix], lens[ix], m, h)
        fc.method = [f"{method}->naive (short: {n} point{'s' if n > 1 else ''})" for n in lens[ix]]
        parts.append((ix, fc))
    if rest.any():
        ix = np.nonzero(rest)[0]
        if method == "auto":
            groups = [(ix, "auto")]
        elif method == "seasonal_naive":
            groups = [(ix[seasonal_ok[ix] | (lens[ix] >= m)], "seasonal_naive"),
                      (ix[~(lens[ix] >= m)], "naive")]
        elif method == "nn":  # series shorter than the network's lookback fall back to ETS
            long = lens[ix] >= NN.lookback_for(panel.freq, lens[ix], h, nn_config)
            groups = [(ix[long], "nn"), (ix[~long], "ets")]
        else:
            groups = [(ix, method)]
        for gix, meth in groups:
            if len(gix) == 0:
                continue
            try:
                if meth == "auto":
                    fc = AutoForecaster(m).fit(np.where(np.isnan(y[gix]), np.nan, y[gix]), lens[gix],
                                               sub_yearly(gix)).predict(h)
                elif meth == "nn":
                    fc, lo, hi = NN.panel_forecast(Y0[gix], lens[gix], panel.start[gix], panel.freq, m, h, level,
                                                   nn_config)
                    explicit_bands.append((gix, lo, hi))
                else:
                    fc = _fit_predict(meth, Y0[gix], lens[gix], m, h, sub_yearly(gix))
                    if meth == "naive":
                        fc.method = [f"{method}->naive (short)"] * len(gix)
                    elif meth in ("ets", "theta") and m > 1:
                        fc.method = [meth if lens[i] >= 2 * m else f"{meth}->non-seasonal {meth} (short)" for i in gix]
                    if method == "nn":
                        fc.method = [f"nn->{lab} (short: {n} periods)" for lab, n in zip(fc.method, lens[gix])]
            except Exception as e:  # noqa: BLE001 - never fail every series for one method's failure
                fc = _fit_predict("naive", Y0[gix], lens[gix], m, h)
                fc.method = [f"{meth}->naive (failed: {type(e).__name__})"] * len(gix)
            if yearly is not None:
                act = yearly.active[gix]
                fc.method = [lab + "+yearly" if a and lab.split("->")[-1].split(" ")[0] in _YEARLY_AWARE else lab
                             for lab, a in zip(fc.method, act)]
            parts.append((gix, fc))
    fc = _combine(parts, N, h)
    # A forecast that came out non-finite (a degenerate series) falls back to naive for that series.
    bad = (~empty) & ~np.all(np.isfinite(fc.mean), axis=1)
    if bad.any():
        ix = np.nonzero(bad)[0]
        nf = _fit_predict("naive", Y0[ix], lens[ix], m, h)
        for k, i in enumerate(ix):
            fc.mean[i], fc.sigma[i], fc.psi[i] = nf.mean[k], nf.sigma[k], nf.psi[k]
            fc.scale[i] = 1.0
            fc.method[i] = f"{fc.method[i] or method}->naive (failed)"
    for i in np.nonzero(empty)[0]:
        fc.method[i] = "none (no non-NULL values)"
    lower, upper = fc.interval(level)
    for gix, lo, hi in explicit_bands:
        ok = ~bad[gix]
        lower[gix[ok]], upper[gix[ok]] = lo[ok], hi[ok]
    mean = fc.mean
    if clip:
        mean, lower, upper = np.maximum(mean, 0), np.maximum(lower, 0), np.maximum(upper, 0)
    # rows
    steps = np.arange(1, h + 1)
    per = panel.start[:, None] + lens[:, None] - 1 + steps[None, :]
    days = _period_dates(per, panel.freq, panel.anchor[:, None])
    keep = ~empty
    sidx = np.repeat(np.arange(N)[keep], h)
    return PanelResult(sidx, days[keep].ravel(), mean[keep].ravel(), lower[keep].ravel(), upper[keep].ravel(),
                       fc.method, panel.freq, m, panel, fc)


def validate_horizon(horizon) -> int:
    if horizon is None:
        raise ForecastInputError("horizon", "is NULL", "Pass the number of periods to forecast, e.g. 7")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise ForecastInputError("horizon", f"must be a whole number, got {horizon!r}", "Pass e.g. 7")
    if horizon <= 0:
        raise ForecastInputError("horizon", f"must be at least 1, got {horizon}", "Pass the number of periods "
                                 "to forecast, e.g. 7 for a week of daily data")
    if horizon > MAX_HORIZON:
        raise ForecastInputError("horizon", f"{horizon} is beyond the limit of {MAX_HORIZON:,} periods",
                                 "Forecast fewer periods, or aggregate to a coarser frequency (weeks, months)")
    return int(horizon)


def validate_level(level) -> float:
    if level is None or isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ForecastInputError("level", f"must be a probability strictly between 0 and 1, got {level!r}",
                                 "Pass e.g. 0.95 for 95% prediction intervals")
    return float(level)


# --------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------
def mase_scale(Y0: np.ndarray, lens: np.ndarray, m: int) -> np.ndarray:
    """In-sample mean absolute seasonal difference (naive-1 where a season does not fit)."""
    N, T = Y0.shape
    M = np.arange(T)[None, :] < lens[:, None]
    out = np.full(N, np.nan)
    for lag in (m, 1):
        if T <= lag:
            continue
        d = np.abs(Y0[:, lag:] - Y0[:, :-lag]) * M[:, lag:]
        n = np.maximum(lens - lag, 0)
        s = np.where(n > 0, d.sum(1) / np.maximum(n, 1), np.nan)
        out = np.where(np.isnan(out) & (s > 0), s, out)
    return out


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
