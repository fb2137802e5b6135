"""Drivers: does ``method := 'gbm'`` with prices, promotions and holidays beat the best driver-less forecast?

    python benchmarks/forecast_drivers.py [--series 300]

A simulation (no public panel with promotions ships inside a registry package that we found), whose truth is
stated here: 300 products x 2 years of daily demand; per product a log-normal base level, a weekly profile,
a yearly cycle; a promotion on ~8% of days (random runs of 2-7 days) multiplies demand by 1.6-2.6 (per
product); the price moves in steps around its list price and demand follows it with elasticity -1.5 to -0.5;
US public holidays cut demand by 40% (stores half-empty) and the day before a holiday adds 30%; Poisson noise.
The last 28 days are held out; their promotions, prices and holidays are known in advance (the ``future``
relation of ``forecast_demand``). MASE is scaled by the in-sample seasonal naive error.
Runs the kernels (what ``forecast_demand(..., method := 'gbm', features := [...], future := ..., holidays :=
'US')`` runs after its SQL) and reports each method's MASE and the error reduction of ``gbm`` with drivers
against the best driver-less method, in one run, with the truth's own error (the simulated mean) as the bound.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

H, HISTORY = 28, 730
NAMES = ("promo", "price")


def simulate(n: int, seed: int = 0):
    from warehouse_ml.tasks.forecast import holiday_days

    rng = np.random.default_rng(seed)
    T = HISTORY + H
    day0 = np.datetime64("2023-01-02").astype(np.int64)
    days = day0 + np.arange(T)
    hol = holiday_days("US", days[0], days[-1])
    is_hol, eve = np.isin(days, hol), np.isin(days + 1, hol)
    promo = np.zeros((n, T))
    for i in range(n):
        for s in rng.integers(0, T, size=rng.poisson(T * 0.08 / 4.5)):
            promo[i, s:s + rng.integers(2, 8)] = 1
    price = np.exp(rng.normal(0, 0.08, (n, T // 14 + 1))).repeat(14, axis=1)[:, :T]
    base = np.exp(rng.normal(2.0, 0.8, n))[:, None]
    week = np.exp(rng.normal(0, 0.2, (n, 7)))[:, (np.arange(T) % 7)]
    year = 1 + rng.uniform(0, 0.3, (n, 1)) * np.sin(2 * np.pi * (np.arange(T) / 365.25 + rng.random((n, 1))))
    lift = rng.uniform(1.6, 2.6, (n, 1))
    elast = rng.uniform(-1.5, -0.5, (n, 1))
    mu = base * week * year * np.where(promo > 0, lift, 1.0) * price ** elast * np.where(is_hol, 0.6, 1.0) \
        * np.where(eve, 1.3, 1.0)
    y = rng.poisson(mu).astype(float)
    return y, promo, price, hol, day0, mu


def main():
    from warehouse_ml.tasks import forecast as K

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=300)
    a = ap.parse_args()
    y, promo, price, hol, day0, mu = simulate(a.series)
    n = a.series
    train, test = y[:, :HISTORY], y[:, HISTORY:]
    lens = np.full(n, HISTORY)
    panel = K.Panel(train, lens, np.full(n, day0), np.full(n, day0), lens, "daily", 7)
    scale = K.mase_scale(train, lens, 7)
    drivers = np.stack([promo, price], axis=2)
    runs = [("seasonal_naive", None), ("ets", None), ("auto", None),
            ("gbm (no drivers)", K.Drivers(np.zeros((n, HISTORY, 0)), np.zeros((n, H, 0)), np.zeros(0, np.int64))),
            ("gbm (promo, price, US holidays)", K.Drivers(drivers[:, :HISTORY], drivers[:, HISTORY:], hol, NAMES)),
            ("xreg (promo, price, US holidays)", K.Drivers(drivers[:, :HISTORY], drivers[:, HISTORY:], hol, NAMES)),
            ("auto (promo, price, US holidays)", K.Drivers(drivers[:, :HISTORY], drivers[:, HISTORY:], hol, NAMES))]
    rows = []
    for name, drv in runs:
        t0 = time.perf_counter()
        res = K.forecast_panel(panel, H, name.split(" ")[0], 0.95, nn_config=drv)
        fc, lo, hi = (x.reshape(n, H) for x in (res.forecast, res.lower, res.upper))
        mase = float(np.mean(np.mean(np.abs(fc - test), axis=1) / scale))
        cover = float(np.mean((test >= lo) & (test <= hi)))
        rows.append((name, mase, cover, time.perf_counter() - t0))
    # the bound: the simulation's own mean over the horizon (what no method can beat on average)
    truth = float(np.mean(np.mean(np.abs(mu[:, HISTORY:] - test), axis=1) / scale))
    rows.append(("the truth (simulated mean, unreachable)", truth, float("nan"), 0.0))
    best = min(m for name, m, *_ in rows if "promo" not in name and "truth" not in name)  # gbm without drivers and auto count too
    print(f"{n} simulated daily series x {HISTORY} days, horizon {H}")
    print("| method | MASE | 95% coverage | seconds | error vs best driver-less |")
    print("|---|---|---|---|---|")
    for name, mase, cover, sec in rows:
        print(f"| {name} | {mase:.3f} | {cover:.3f} | {sec:.1f} | {mase / best - 1:+.0%} |")


if __name__ == "__main__":
    main()
