"""Exponential smoothing (ETS) for every series at once: one recursion over time for (series x candidates).

Smoothing parameters are searched for all series together: a small grid, then a few rounds of per-series pattern
search, all candidates sharing one pass over time on arrays of shape ``(n_series, n_candidates)``.
"""
from __future__ import annotations

import numpy as np

from .panel import PanelForecast, Provenance, _check_panel, _gather
from .registry import Method, register

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


def _search_ets(Y0, M, lens, m, families, rounds=5):
    """Least-squares smoothing parameters of several ETS families (trend, seasonal[, multiplicative]) for every
    series at once: ``(u, inits, families)`` for :func:`_ets_states`.

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
        return _evaluate(Y0, M, lens, m, families, inits, U, fam)[0]

    # starting grid
    blocks, fam = [], []
    for f, act in enumerate(active):
        axes = [_GRID[d] if d in act else np.zeros(1) for d in range(4)]
        g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 4)
        blocks.append(g)
        fam += [f] * len(g)
    fam = np.asarray(fam)
    U = np.broadcast_to(np.concatenate(blocks)[None], (N, len(fam), 4))
    sse = evaluate(U, fam)
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
        s = evaluate(cand, fam_r)
        for f in range(F):
            cols = np.nonzero(fam_r == f)[0]
            k = cols[np.argmin(s[:, cols], axis=1)]
            sk = s[np.arange(N), k]
            better = sk < best[:, f]
            u[:, f] = np.where(better[:, None], cand[np.arange(N), k], u[:, f])
            best[:, f] = np.where(better, sk, best[:, f])
            step[:, f] = np.where(better[:, None], step[:, f], step[:, f] * 0.5)
    return u, inits, families


def _evaluate(Y0, M, lens, m, families, inits, U, fam):
    """The recursion for candidate parameters ``U`` (N, K, 4) of families ``fam`` (K,)."""
    tr = np.array([families[f][0] for f in fam], dtype=float)
    se = np.array([families[f][1] for f in fam], dtype=float)
    mu = np.array([families[f][2] for f in fam], dtype=float)
    a, b, g, p = _params(U, tr, se)
    l0 = np.stack([inits[f][0] for f in fam], axis=1)
    b0 = np.stack([inits[f][1] for f in fam], axis=1)
    s0 = np.stack([inits[f][2].T for f in fam], axis=2)  # (m, N, K)
    return _ets_run(Y0, M, lens, m, a, b, g, p, l0, b0, s0, mu if mu.any() else None)


def _ets_states(Y0, M, lens, m, u, inits, families):
    """Per family: parameters, in-sample sse and the states after each series' last observation."""
    F = len(families)
    sse, l, bb, S = _evaluate(Y0, M, lens, m, families, inits, u, np.arange(F))
    tr = np.array([f[0] for f in families], dtype=float)
    se = np.array([f[1] for f in families], dtype=float)
    a, b, g, p = _params(u, tr, se)
    return [dict(alpha=a[:, f], beta=b[:, f], gamma=g[:, f], phi=p[:, f], sse=sse[:, f], l=l[:, f], b=bb[:, f],
                 S=S[:, :, f].T.copy(), m=m, trend=families[f][0], seasonal=families[f][1], mult=families[f][2])
            for f in range(F)]


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




def _recent(Y0: np.ndarray, lens: np.ndarray, window: int | None):
    """The last ``window`` periods of each series, left-aligned (the whole series where it is shorter), with its
    mask and lengths: where the smoothing parameters are searched. Only the parameters come from the window (the
    states are then run over the whole series), so the window's seasonal phase does not matter."""
    if window is None or Y0.shape[1] <= window:
        M = (np.arange(Y0.shape[1])[None, :] < lens[:, None]).astype(float)
        return Y0, M, lens
    start = np.maximum(lens - window, 0)
    Yw = _gather(Y0, start[:, None] + np.arange(window)[None, :])
    lw = lens - start
    return Yw, (np.arange(window)[None, :] < lw[:, None]).astype(float), lw


@register
class ETS(Method):
    """Additive-error exponential smoothing for every series at once.

    ``trend``/``seasonal``: True, False or 'auto' (chosen per series by AICc among the families fitted).
    The trend, when present, is damped with phi in [0.8, 0.98] (damped trends forecast demand better than
    straight lines). Parameters minimise the one-step squared error (the Gaussian likelihood's core).
    """

    name = "ets"
    yearly_aware = True
    in_auto = True

    def __init__(self, season_length: int = 7, trend="auto", seasonal="auto", rounds: int = 5,
                 multiplicative: bool = False, fit_window: int | None = None):
        super().__init__(season_length)
        self.fit_window = fit_window
        self.trend, self.seasonal, self.rounds = trend, seasonal, rounds
        self.multiplicative = multiplicative

    def fit(self, y, lens=None):
        Y0, M, lens = _check_panel(y, lens)
        trends = [False, True] if self.trend == "auto" else [bool(self.trend)]
        can_season = self.m > 1 and Y0.shape[1] >= 2 * self.m
        seasons = ([False, True] if self.seasonal == "auto" else [bool(self.seasonal)]) if can_season else [False]
        families = [(tr, se, False) for tr in trends for se in seasons]
        if self.multiplicative and can_season and True in seasons:
            families += [(tr, True, True) for tr in trends]
        self._m_fit = self.m if can_season else 1
        Yw, Mw, lw = _recent(Y0, lens, self.fit_window)
        self._search = _search_ets(Yw, Mw, lw, self._m_fit, families, self.rounds)
        return self._choose(Y0, M, lens)

    def refilter(self, y, lens=None):
        """The same smoothing parameters with states brought up to new data or lengths: rolling-origin
        evaluation without a new parameter search."""
        Y0, M, lens = _check_panel(y, lens)
        return self._choose(Y0, M, lens)

    def _choose(self, Y0, M, lens):
        """States of every family, then per series the family with the lowest AICc."""
        N = len(lens)
        self.lens = lens
        fits = _ets_states(Y0, M, lens, self._m_fit, *self._search)
        # a multiplicative season needs a clearly positive level: at least 90% of periods with demand
        positive = (np.sum((Y0 > 0) * M, axis=1) >= 0.9 * lens) & (lens >= 2 * self.m)
        best_score = np.full(N, np.inf)
        chosen = np.zeros(N, dtype=int)
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
        for i, f in enumerate(self.fits):
            sel = self.chosen == i
            if not sel.any():
                continue
            mu, ps = _ets_forecast(f, self.lens, h)
            mean[sel], psi[sel] = mu[sel], ps[sel]
        return PanelForecast(mean, self.sigma.copy(), psi, None, [Provenance(("ets",))] * N)


