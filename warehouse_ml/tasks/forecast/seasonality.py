"""Seasonal helpers shared by the methods: classical seasonal indices and the yearly (Fourier) adjustment of
daily and weekly series."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

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

    def future(self, lens, h):
        steps = lens[:, None] + np.arange(h)[None, :]
        days = self.day0[:, None] + steps * self.step
        return np.einsum("nhp,np->nh", _fourier(days.astype(float), self.K), self.coef)




class _SubYearly:
    """A YearlyAdjust restricted to some series."""

    def __init__(self, y: YearlyAdjust, idx):
        self.pattern = y.pattern[idx]
        self.coef, self.day0, self.step, self.K = y.coef[idx], y.day0[idx], y.step, y.K
        self.active = y.active[idx]

    future = YearlyAdjust.future



