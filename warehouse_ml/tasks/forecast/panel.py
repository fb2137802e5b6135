"""Panel handling: the left-aligned matrix every method works on, the forecast container, rows <-> panel.

Series are handed over as a *panel*: a float matrix ``y`` of shape ``(n_series, T)``, left-aligned (every series
starts at column 0), ``NaN`` after each series' own length ``lens[i]``. Gaps inside a series are filled with
zeros (for demand, a day without sales sold nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

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
@dataclass(frozen=True)
class Provenance:
    """How one series' forecast was made; ``str()`` gives its ``method`` label, only where rows are returned.

    A record either names the registered methods whose forecasts were averaged (``used``; ``seasonal=False`` when
    a seasonal method was fitted without its season, ``used=()`` when there was nothing to fit), or says that
    ``asked`` (a method name, or the record of a forecast that came out non-finite) was replaced by ``then``
    because of ``why``. ``yearly``: the yearly pattern was removed before fitting and added back after.
    """

    used: tuple[str, ...] = ()
    seasonal: bool = True
    asked: "str | Provenance" = ""
    then: "Provenance | None" = None
    why: str = ""
    yearly: bool = False

    @property
    def methods(self) -> tuple[str, ...]:
        """The registered methods whose forecasts were returned."""
        return self.used if self.then is None else self.then.methods

    def replacing(self, asked: "str | Provenance", why: str) -> "Provenance":
        """This record as what replaced ``asked`` because of ``why``."""
        return Provenance(asked=asked, then=self, why=why)

    def __str__(self) -> str:
        if self.then is not None:
            text = f"{self.asked}->{self.then} ({self.why})"
        elif not self.used:
            text = f"none ({self.why})"
        else:
            text = "+".join(self.used) if self.seasonal else f"non-seasonal {self.used[0]}"
        return text + ("+yearly" if self.yearly else "")


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
    method: list[Provenance] = field(default_factory=list)
    bands: tuple[np.ndarray, np.ndarray] | None = None  # a method's own (quantile) interval, replacing the normal one

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
    out = PanelForecast(np.full((n, h), np.nan), np.full(n, np.nan), np.zeros((n, h)), np.ones((n, h)), [None] * n)
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


def period_index(day: np.ndarray, freq: str) -> np.ndarray:
    """Integer period number of each date for the frequency (days, weeks, months, quarters or years)."""
    step, monthly, _ = FREQS[freq]
    if not monthly:
        return np.floor_divide(day, step) if step > 1 else day.astype(np.int64)
    months = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return np.floor_divide(months, step)


def period_dates(period: np.ndarray, freq: str, anchor: np.ndarray) -> np.ndarray:
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
    """Flat output rows (series index, epoch day, forecast, lower, upper) plus how each series was forecast."""

    series: np.ndarray
    day: np.ndarray
    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: list[Provenance]
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
    per = period_index(day, freq)
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

