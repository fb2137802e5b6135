"""The global neural forecaster behind ``forecast_demand(..., method := 'nn')``: one network over all series.

Pure NumPy in and out (the panel of ``tasks.forecast.panel``: a left-aligned float matrix, zeros in gaps, one length per
series); TensorFlow is imported only when a network is trained (``import_tf`` of ``tasks.tf_runtime``: a clear
``MissingDependency`` naming the install command when it is missing).

The model (in the spirit of DeepAR / MQ-CNN "direct multi-horizon quantile" forecasters, kept small):

* **Windows over all series.** Every origin ``o`` of every series with ``lookback`` periods before it and
  ``horizon`` after it is a training example (a seeded random sample of at most ``max_windows`` of them, the most
  recent origins always in). Windows are cut with one fancy-indexing gather on the panel: no per-row Python.
* **Inputs** (all scaled per window, so one network serves series selling 0.1 and 100 units a day):
  the last ``lookback`` values divided by the window's mean level; ``log1p`` of that level; the same season's
  values one year earlier (relative to last year's level, with an availability flag), so yearly patterns and
  year-end peaks carry over; calendar features of the origin (position in the season, one-hot or harmonics, and
  two yearly harmonics); and a learned **series embedding**.
* **Outputs**: for each of the ``horizon`` steps, three quantiles — ``(1 - level) / 2``, the median and
  ``(1 + level) / 2`` — trained jointly with the pinball (quantile) loss. The median is the point forecast
  (the best forecast under absolute error, which MASE measures); the outer quantiles are the band. Quantiles
  cannot cross: the network emits the median and two softplus distances from it.
* Seeds are fixed (NumPy sampling, Keras initialisation, op determinism on the CPU), so a CPU run repeats
  exactly; on a GPU the hidden layers use mixed precision.

The default size (two layers of 128, 6 epochs over at most 40,000 windows, batches of 512) trains 300 daily
series x 2 years in about 10 s on two busy CPU cores, after TensorFlow's import (5-10 s, once per process).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .panel import PanelForecast, Provenance
from .registry import Method, register

# Lookback (periods of history the network sees) and the lag of "the same period last year", per frequency.
LOOKBACK = {"daily": 56, "weekly": 26, "monthly": 24, "quarterly": 8, "yearly": 6}
YEAR_LAG = {"daily": 364, "weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 0}  # 364: same weekday
PERIODS_PER_YEAR = {"daily": 365.25, "weekly": 365.25 / 7, "monthly": 12.0, "quarterly": 4.0, "yearly": 1.0}
MIN_LOOKBACK = 4
FEATURE = "method := 'nn'"


@dataclass
class NNConfig:
    """Training settings; the defaults keep forecast_demand interactive on a laptop."""

    hidden_units: tuple = (128, 128)
    embedding_dim: int = 8
    epochs: int = 6
    batch_size: int = 512
    learning_rate: float = 2e-3
    max_windows: int = 40_000
    lookback: int | None = None  # None: LOOKBACK[freq], shortened to what the data allows
    seed: int = 0
    verbose: int = 0


@dataclass
class NNResult:
    """Per series of the group: median forecast and band, in the series' units, plus what training did."""

    median: np.ndarray  # (N, h)
    lower: np.ndarray
    upper: np.ndarray
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "CPU"
    n_windows: int = 0


def require_tensorflow():
    """``(tf, keras)``, or MissingDependency naming the install command (checked before any work starts)."""
    from ..tf_runtime import import_tf

    return import_tf(FEATURE)


def lookback_for(freq: str, lens: np.ndarray, horizon: int, config: NNConfig | None = None) -> int:
    """Periods of history the network reads: the frequency's default, shortened so that the longest series still
    yields training windows (lookback + horizon periods)."""
    config = config or NNConfig()
    L = int(config.lookback or LOOKBACK.get(freq, 28))
    longest = int(np.max(lens)) if len(lens) else 0
    return max(MIN_LOOKBACK, min(L, longest - int(horizon)))


# -- features ------------------------------------------------------------------------------------------------
def _calendar(period: np.ndarray, freq: str, m: int) -> np.ndarray:
    """Calendar features of absolute period numbers (shared by all series): position in the season (one-hot up to
    12 positions, else two harmonics) and two yearly harmonics."""
    period = np.asarray(period, dtype=np.int64)
    cols = []
    if 1 < m <= 12:
        cols.append(np.eye(m, dtype=np.float32)[np.mod(period, m)])
    elif m > 12:
        a = 2 * np.pi * np.mod(period, m) / m
        cols.append(np.stack([np.sin(a), np.cos(a), np.sin(2 * a), np.cos(2 * a)], axis=-1).astype(np.float32))
    ppy = PERIODS_PER_YEAR.get(freq, 1.0)
    if ppy > 1:
        a = 2 * np.pi * np.mod(period, ppy) / ppy
        cols.append(np.stack([np.sin(a), np.cos(a), np.sin(2 * a), np.cos(2 * a)], axis=-1).astype(np.float32))
    if not cols:
        return np.zeros(period.shape + (0,), np.float32)
    return np.concatenate(cols, axis=-1)


def _windows(Y0: np.ndarray, csum: np.ndarray, series: np.ndarray, origin: np.ndarray, start: np.ndarray,
             L: int, h: int, year_lag: int, freq: str, m: int) -> dict[str, np.ndarray]:
    """Model inputs for windows ending just before ``origin`` (index into each series' own time), all at once."""
    T = Y0.shape[1]
    s = series[:, None]
    lag_cols = origin[:, None] + np.arange(-L, 0)[None, :]
    lags = Y0[s, lag_cols]
    level = lags.mean(axis=1)
    # a window of zeros (intermittent demand) is scaled by the series' mean level up to the origin instead
    past_mean = csum[series, origin] / np.maximum(origin, 1)
    scale = np.where(level > 0, level, np.where(past_mean > 0, past_mean, 1.0))
    inv = 1.0 / scale
    out = {"lags": (lags * inv[:, None]).astype(np.float32)}
    ctx = [np.log1p(scale)[:, None].astype(np.float32), _calendar(start[series] + origin, freq, m)]
    ly = np.zeros((len(series), h), np.float32)
    if year_lag and year_lag >= 1:
        # the same period of an earlier year, relative to that year's level: one year back for steps within a
        # year of the origin, as many whole years as it takes to land before the origin for later steps (a
        # horizon longer than a year must not read its own target, which training windows would see and the
        # forecast would not)
        step = np.arange(h)
        back = year_lag * (step // year_lag + 1)
        for b in np.unique(back):
            steps = step[back == b]
            ok = (origin - b - L) >= 0  # that year's target period and the window before it are in the data
            c_t = np.clip(origin[:, None] - b + steps[None, :], 0, T - 1)
            c_l = np.clip(origin[:, None] - b + np.arange(-L, 0)[None, :], 0, T - 1)
            ly_level = Y0[s, c_l].mean(axis=1)
            good = ok & (ly_level > 0)
            ratio = Y0[s, c_t] / np.where(good, ly_level, 1.0)[:, None]
            ly[:, steps] = np.where(good[:, None], np.minimum(ratio, 10.0), 0.0)
            if b == year_lag:
                ctx.append(good[:, None].astype(np.float32))
    out["context"] = np.concatenate(ctx, axis=1).astype(np.float32)
    out["last_year"] = ly
    out["series"] = series.astype(np.int32)[:, None]
    return out, scale


def _sample_origins(lens: np.ndarray, L: int, h: int, max_windows: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(series, origin) of training windows: every origin with L periods before and h after, sampled down to
    ``max_windows`` (each series' latest origin always kept)."""
    counts = np.maximum(lens - L - h + 1, 0)
    total = int(counts.sum())
    series = np.repeat(np.arange(len(lens)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    origin = L + np.arange(total) - first[series]
    if total > max_windows:
        latest = (first + counts - 1)[counts > 0]
        rest = np.setdiff1d(np.arange(total), latest)
        extra = rng.choice(rest, max(0, max_windows - len(latest)), replace=False)
        keep = np.sort(np.concatenate([latest, extra]))
        series, origin = series[keep], origin[keep]
    return series, origin


# -- the network ---------------------------------------------------------------------------------------------
def _build(keras, n_series: int, L: int, n_ctx: int, h: int, config: NNConfig, mixed: bool):
    layers = keras.layers
    dtype = "mixed_float16" if mixed else "float32"
    lags = keras.Input((L,), name="lags", dtype="float32")
    ctx = keras.Input((n_ctx,), name="context", dtype="float32")
    ly = keras.Input((h,), name="last_year", dtype="float32")
    sid = keras.Input((1,), name="series", dtype="int32")
    emb = layers.Flatten(name="flatten")(layers.Embedding(n_series, config.embedding_dim, name="series_embedding",
                                                          dtype=dtype)(sid))
    x = layers.Concatenate(name="concat", dtype=dtype)([lags, ctx, ly, emb])
    for i, units in enumerate(config.hidden_units):
        x = layers.Dense(int(units), activation="relu", name=f"hidden_{i}", dtype=dtype)(x)
    raw = layers.Dense(3 * h, name="output", dtype="float32")(x)
    raw = layers.Reshape((h, 3), name="quantiles", dtype="float32")(raw)
    return keras.Model([lags, ctx, ly, sid], raw, name="wml_forecast_nn")


def _quantiles(keras, raw):
    """raw (..., 3) -> (lower, median, upper) that cannot cross."""
    ops = keras.ops
    med = raw[..., 1]
    return med - ops.softplus(raw[..., 0]), med, med + ops.softplus(raw[..., 2])


def _pinball(keras, taus):
    ops = keras.ops

    def loss(y_true, raw):
        y = ops.cast(y_true, "float32")
        total = 0.0
        for tau, q in zip(taus, _quantiles(keras, raw)):
            d = y - q
            total = total + ops.mean(ops.maximum(tau * d, (tau - 1.0) * d))
        return total

    return loss


def _quantiles_np(raw: np.ndarray):
    sp = np.logaddexp(0.0, raw[..., [0, 2]])
    med = raw[..., 1]
    return med - sp[..., 0], med, med + sp[..., 1]


# -- fit and forecast ----------------------------------------------------------------------------------------
def fit_predict(Y0: np.ndarray, lens: np.ndarray, start: np.ndarray, freq: str, m: int, horizon: int,
                level: float = 0.95, config: NNConfig | None = None) -> NNResult:
    """Train one network on windows of every series of the panel and forecast ``horizon`` periods after each
    series' end. Every series needs at least ``lookback_for(...)`` periods (shorter ones are the caller's to fall
    back). Returns quantiles in the series' own units (not clipped)."""
    config = config or NNConfig()
    tf, keras = require_tensorflow()
    from ..tf_runtime import make_dataset  # the tf.data path of the tabular MLP (index batches gathered from tensors)

    Y0 = np.ascontiguousarray(np.nan_to_num(np.asarray(Y0, dtype=np.float64), nan=0.0))
    lens = np.asarray(lens, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    N, h = len(lens), int(horizon)
    L = lookback_for(freq, lens, h, config)
    if N and int(lens.min()) < L:
        raise ValueError(f"forecast_nn: every series needs {L} periods of history, the shortest has {int(lens.min())}")
    year_lag = YEAR_LAG.get(freq, 0)
    # each series is also masked beyond its length (the panel holds zeros there already)
    T = Y0.shape[1]
    Yp = np.zeros((N, T + h + 1))
    Yp[:, :T] = Y0 * (np.arange(T)[None, :] < lens[:, None])
    csum = np.concatenate([np.zeros((N, 1)), np.cumsum(Yp, axis=1)], axis=1)
    rng = np.random.default_rng(config.seed)
    series, origin = _sample_origins(lens, L, h, config.max_windows, rng)
    notes = []
    taus = ((1 - level) / 2, 0.5, (1 + level) / 2)
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    t0 = time.perf_counter()
    if len(series) < 2:
        raise ValueError(f"forecast_nn: no series has {L + h} periods (lookback {L} + horizon {h}) to learn from")
    X, scale = _windows(Yp, csum, series, origin, start, L, h, year_lag, freq, m)
    target_cols = origin[:, None] + np.arange(h)[None, :]
    y = (Yp[series[:, None], target_cols] / scale[:, None]).astype(np.float32)
    keras.utils.set_random_seed(int(config.seed))
    if not on_gpu:
        tf.config.experimental.enable_op_determinism()
    device = "/GPU:0" if on_gpu else "/CPU:0"
    with tf.device(device):
        model = _build(keras, N, L, X["context"].shape[1], h, config, mixed=on_gpu)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=_pinball(keras, taus),
                      jit_compile=False)
        batch = int(min(config.batch_size, max(16, len(y))))
        ds = make_dataset(tf, X, y, None, batch, True, int(config.seed))
        model.fit(ds, epochs=int(config.epochs), shuffle=False, verbose=int(config.verbose))
        # forecast: the window ending at each series' last observation
        Xf, fscale = _windows(Yp, csum, np.arange(N), lens.copy(), start, L, h, year_lag, freq, m)
        raw = np.concatenate([np.asarray(model({k: v[i:i + 8192] for k, v in Xf.items()}, training=False))
                              for i in range(0, N, 8192)]).astype(np.float64)
    seconds = time.perf_counter() - t0
    lo, med, hi = _quantiles_np(raw)
    s = fscale[:, None]
    notes.append(f"nn trained {config.epochs} epochs on {len(y):,} windows of {N} series (lookback {L}) on "
                 f"{device.strip('/')} in {seconds:.1f} s")
    return NNResult(med * s, lo * s, hi * s, notes, seconds, device.strip("/"), len(y))


@register
class NN(Method):
    """``method := 'nn'``: one network over all series of the panel (median forecast, quantile band).

    A global model needs a panel to learn from: fewer than ``min_series`` series get ``auto`` instead, and
    series shorter than the lookback get ETS, each said in ``method``."""

    name = "nn"
    fallback = "ets"
    needs = ("start",)
    min_series = 10

    def __init__(self, season_length: int = 7, freq: str = "daily", level: float = 0.95,
                 config: NNConfig | None = None):
        super().__init__(season_length)
        self.freq, self.level, self.config = freq, level, config

    @classmethod
    def check_available(cls):
        require_tensorflow()

    @classmethod
    def min_length(cls, freq, m, h, lens, config=None):
        return lookback_for(freq, lens, h, config)

    @classmethod
    def create(cls, m, freq="daily", level=0.95, config=None):
        return cls(m, freq, level, config)

    def fit(self, y, lens=None, start=None):
        self.Y0 = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0)
        self.lens = np.asarray(lens, dtype=np.int64)
        self.start = np.zeros(len(self.lens), np.int64) if start is None else start
        return self

    def predict(self, h):
        """The median as the point forecast, the quantile band as the interval. For lead-time sums (reorder_plan)
        the band is also expressed as a per-step standard deviation, ``(upper - lower) / (2 z)``, with errors
        taken as independent across steps."""
        from statistics import NormalDist

        self._check_h(h)
        res = fit_predict(self.Y0, self.lens, self.start, self.freq, self.m, h, self.level, self.config)
        N = res.median.shape[0]
        z = NormalDist().inv_cdf(0.5 + self.level / 2.0)
        psi = np.zeros((N, h))
        psi[:, 0] = 1.0
        sd = np.maximum(res.upper - res.lower, 0.0) / (2 * z)
        return PanelForecast(res.median, np.ones(N), psi, sd, [Provenance(("nn",))] * N, bands=(res.lower, res.upper))
