"""Anomalies in history: each value against a robust decomposition of its own series.

Per series (all at once): the expected value is a trend plus a seasonal profile estimated with medians only
(moving medians over two seasons, medians per phase of the season; see ``_expected``), so a spike
does not lift its neighbours' expectation; ``expected = trend + profile``. The spread is
robust, 1.4826 times the median absolute remainder (the mean absolute remainder times 1.2533 where that median is
zero, as in sparse demand), so the anomalies themselves do not widen the band they are judged by. A value is an
anomaly when it falls outside ``expected ± z(level) * spread``; ``score`` is its remainder in spreads.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .panel import Panel, validate_level


@dataclass
class Anomalies:
    """Per (series, period) of each series' span: value, expected, bounds, flag and score, each (N, T)."""

    value: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    is_anomaly: np.ndarray
    score: np.ndarray
    mask: np.ndarray  # periods inside each series' span


def _rolling_median(X: np.ndarray, M: np.ndarray, lens: np.ndarray, w: int) -> np.ndarray:
    """Centred moving median over ``w`` (odd) periods; at the ends the nearest full window's."""
    N, T = X.shape
    half = w // 2
    padded = np.pad(np.where(M, X, np.nan), ((0, 0), (half, half)), constant_values=np.nan)
    out = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, w, axis=1), axis=2)
    lo = np.minimum(half, np.maximum(lens - 1, 0))
    hi = np.maximum(lens - 1 - half, lo)
    return np.nan_to_num(np.take_along_axis(out, np.clip(np.arange(T)[None, :], lo[:, None], hi[:, None]), axis=1))


def _profile(D: np.ndarray, m: int) -> np.ndarray:
    """Median of ``D`` (NaN outside the series) per phase of the season, repeated over the columns."""
    N, T = D.shape
    R = np.pad(D, ((0, 0), (0, (-T) % m)), constant_values=np.nan).reshape(N, -1, m)
    return np.nan_to_num(np.nanmedian(R, axis=1), nan=0.0)[:, np.arange(T) % m]


def _expected(Y: np.ndarray, M: np.ndarray, lens: np.ndarray, m: int) -> np.ndarray:
    """Trend plus seasonal profile, all medians: a moving median gives a first trend and profile; the moving
    median of the deseasonalised series is the trend (no seasonal shape left to bias it), its profile the season."""
    w = max(2 * m, 3) | 1  # two seasons: a shorter median follows the noise and understates the spread
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows and phases of short series
        first = _profile(np.where(M, Y - _rolling_median(Y, M, lens, w), np.nan), m)
        trend = _rolling_median(Y - first, M, lens, w)
        return trend + _profile(np.where(M, Y - trend, np.nan), m)


def _spread(r: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = 1.4826 * np.nanmedian(np.abs(r), axis=1)
        spread = np.where(spread > 0, spread, 1.2533 * np.nanmean(np.abs(r), axis=1))
    return np.nan_to_num(spread, nan=0.0)


def detect_anomalies(panel: Panel, level: float = 0.95) -> Anomalies:
    validate_level(level)
    Y = np.nan_to_num(panel.y, nan=0.0)
    N, T = Y.shape
    lens, m = panel.lens, max(int(panel.season), 1)
    M = np.arange(T)[None, :] < lens[:, None]
    Y = np.where(M, Y, 0.0)
    expected = _expected(Y, M, lens, m)
    r = np.where(M, Y - expected, np.nan)
    spread = _spread(r)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    lower, upper = expected - z * spread[:, None], expected + z * spread[:, None]
    score = np.where(spread[:, None] > 0, np.abs(np.nan_to_num(r)) / np.where(spread > 0, spread, 1)[:, None], 0.0)
    flag = M & ((Y < lower) | (Y > upper)) & (spread[:, None] > 0)
    return Anomalies(Y, expected, lower, upper, flag, score, M)
