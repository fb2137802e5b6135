"""``method := 'auto'``: per series, the candidate with the lowest error on a rolling-origin holdout."""
from __future__ import annotations

import numpy as np

from .panel import PanelForecast, _check_panel, _combine, _gather, is_intermittent
from .registry import Method, fit_predict as _fit_predict, register
from .seasonality import YearlyAdjust, _SubYearly

@register
class AutoForecaster(Method):
    """Per series, a method chosen on a rolling-origin holdout (``origins`` origins spaced by the horizon at
    the end of each series; every candidate is refitted on the data before each origin).

    Candidates: seasonal naive, ETS, Theta, the mean of ETS and Theta (a combination is usually more accurate
    than either) and, for intermittent series, Croston/TSB. The default is ETS+Theta for smooth series and ETS
    for intermittent ones; another candidate replaces it only when its holdout mean absolute error is below
    ``switch_margin`` times the default's (a short holdout's argmin is mostly noise). Series too short for the
    holdout get ETS without selection, said in ``method``.
    """

    name = "auto"
    needs = ("yearly",)
    CANDIDATES = ("seasonal_naive", "ets", "theta", "ets+theta", "croston")

    def __init__(self, season_length: int = 7, origins: int = 2, candidates=None, switch_margin: float = 0.75):
        super().__init__(season_length)
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


