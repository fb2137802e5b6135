"""Forecasting speed and accuracy: warehouse-ml's forecast_demand against statsforecast's AutoETS.

    python benchmarks/forecast_speed.py                 # 1,000 daily series of two years, horizon 28
    python benchmarks/forecast_speed.py --series 10000  # the large run
    python benchmarks/forecast_speed.py --sf-series 200 # AutoETS on a subset (about 0.1 s per series)

Data: synthetic daily unit sales (seeded): per product a base level (log-normal), a linear trend with a
possible change point, a weekly profile, a yearly cycle, random promotions (+50-150% for a few days), and
Poisson or negative-binomial noise; a quarter of the products are slow movers (intermittent). Each series has
730 days of history; the following 28 days are held out. MASE: mean absolute error over the 28 held-out days
divided by the in-sample mean absolute seasonal (lag-7) difference, averaged over series.

warehouse-ml runs through SQL (``FROM forecast_demand('sales', 28, method := ...)`` on a DuckDB file), so its
time includes aggregation, the Arrow hand-off and the output. statsforecast (benchmark-only, never imported by
the package; it pins pandas < 3, so it lives in its own virtualenv ``.sfvenv``, see forecast_accuracy.py) runs
``StatsForecast([AutoETS(season_length=7)], n_jobs=2)`` (the reference of the ratios: both cores, as ours) and
with ``n_jobs=1``, after one warm-up fit (numba compiles on first use); its series/s is measured on
``--sf-series`` series (default: all) in the same run on the same machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

HISTORY, HORIZON = 730, 28


def make_sales(n_series: int, seed: int = 0, history: int = HISTORY, horizon: int = HORIZON):
    """(values (n, history + horizon), start date) of synthetic daily demand."""
    rng = np.random.default_rng(seed)
    T = history + horizon
    t = np.arange(T)
    start = np.datetime64("2023-01-02")
    doy = ((start + t).astype("datetime64[D]") - (start + t).astype("datetime64[Y]")).astype(int)
    out = np.zeros((n_series, T))
    for i in range(n_series):
        slow = rng.random() < 0.25
        base = np.exp(rng.normal(-0.7, 0.6)) if slow else np.exp(rng.normal(2.5, 1.0))
        slope = rng.normal(0, 0.35) / T
        trend = 1 + slope * t
        if rng.random() < 0.3:  # a change point in the trend
            cp = rng.integers(T // 3, T)
            trend = trend + rng.normal(0, 0.3) * np.clip(t - cp, 0, None) / T
        trend = np.clip(trend, 0.2, None)
        week = np.exp(rng.normal(0, 0.25, 7))
        week /= week.mean()
        amp = rng.uniform(0, 0.35)
        year = 1 + amp * np.sin(2 * np.pi * (doy - rng.integers(0, 365)) / 365.25)
        promo = np.ones(T)
        for s in rng.integers(0, T, size=rng.poisson(6)):
            promo[s:s + rng.integers(2, 8)] *= 1 + rng.uniform(0.5, 1.5)
        mu = base * trend * week[(t + i) % 7] * year * promo
        if slow or rng.random() < 0.5:
            y = rng.poisson(mu)
        else:
            k = rng.uniform(3, 20)  # negative binomial: overdispersed
            y = rng.poisson(rng.gamma(k, mu / k))
        out[i] = y
    return out, start


def mase(fc: np.ndarray, actual: np.ndarray, history: np.ndarray, m: int = 7) -> float:
    scale = np.mean(np.abs(history[:, m:] - history[:, :-m]), axis=1)
    ok = scale > 0
    return float(np.mean(np.mean(np.abs(fc - actual), axis=1)[ok] / scale[ok]))


def write_db(path: str, values: np.ndarray, start) -> None:
    import duckdb
    import pyarrow as pa

    n, T = values.shape
    days = (start + np.arange(T)).astype("datetime64[D]")
    tbl = pa.table({
        "sku": pa.array(np.repeat([f"sku{i:05d}" for i in range(n)], T)),
        "day": pa.array(np.tile(days, n)),
        "units": pa.array(values.ravel()),
    })
    con = duckdb.connect(path)
    con.register("src", tbl)
    con.execute("CREATE OR REPLACE TABLE sales AS SELECT * FROM src")
    con.close()


def run_wml(path: str, method: str, n: int):
    import warehouse_ml as wml

    con = wml.connect(path)
    t0 = time.perf_counter()
    tbl = con.sql(f"SELECT item, date, forecast, method FROM forecast_demand('sales', {HORIZON}, method := '{method}') "
                  "ORDER BY item, date").to_arrow_table()
    dt = time.perf_counter() - t0
    con.close()
    fc = np.asarray(tbl.column("forecast").to_numpy(), dtype=float).reshape(n, HORIZON)
    methods = tbl.column("method").to_pylist()[::HORIZON]
    return fc, dt, methods


def run_statsforecast(train: np.ndarray, n_jobs: int):
    """statsforecast AutoETS(season_length=7) on every series with ``n_jobs`` processes (in ``.sfvenv``)."""
    from forecast_accuracy import call_statsforecast

    res = call_statsforecast(train, np.full(len(train), train.shape[1]), 7, HORIZON, ("AutoETS",), n_jobs)
    return None if res is None else (np.maximum(res["AutoETS.mean"], 0), float(res["seconds"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--sf-series", type=int, default=None, help="series for statsforecast AutoETS (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="ets,auto")
    args = ap.parse_args(argv)
    values, start = make_sales(args.series, args.seed)
    train, test = values[:, :HISTORY], values[:, HISTORY:]
    rows = []
    k = min(args.sf_series or args.series, args.series)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.duckdb")
        write_db(path, train, start)
        for method in args.methods.split(","):
            fc, dt, labels = run_wml(path, method, args.series)
            rows.append((f"forecast_demand(method := '{method}')", args.series, dt, mase(fc, test, train),
                         mase(fc[:k], test[:k], train[:k])))
            if method == "auto":
                picked = {}
                for lab in labels:
                    picked[lab] = picked.get(lab, 0) + 1
                top = sorted(picked.items(), key=lambda kv: -kv[1])[:8]
                print("auto picked:", ", ".join(f"{a} {b}" for a, b in top))
    sn = np.tile(train[:, -7:], (1, HORIZON // 7 + 1))[:, :HORIZON]
    rows.append(("seasonal naive (reference, no timing)", args.series, float("nan"), mase(sn, test, train),
                 mase(sn[:k], test[:k], train[:k])))
    for n_jobs in (2, 1):
        res = run_statsforecast(train[:k], n_jobs)
        if res is not None:
            rows.append((f"statsforecast AutoETS(7), n_jobs={n_jobs}", k, res[1], float("nan"),
                         mase(res[0], test[:k], train[:k])))
    sf_rate = next((r[1] / r[2] for r in rows if r[0].startswith("statsforecast")), None)  # n_jobs=2
    print(f"\n{args.series} daily series x {HISTORY} days, horizon {HORIZON}; AutoETS timed on {k} series "
          f"(ratios against AutoETS with n_jobs=2); "
          f"MASE(all) over all series, MASE(AutoETS set) over the {k} AutoETS ran on")
    print(f"| {'run':40s} | {'series':>6s} | {'seconds':>8s} | {'series/s':>9s} | {'vs AutoETS':>10s} | "
          f"{'MASE(all)':>9s} | {'MASE(AutoETS set)':>17s} |")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 10}|{'-' * 11}|{'-' * 12}|{'-' * 11}|{'-' * 19}|")
    for name, n, dt, ms_all, ms_k in rows:
        rate = n / dt if dt == dt else float("nan")
        ratio = rate / sf_rate if sf_rate and rate == rate else float("nan")
        def fmt(x, f):
            return format(x, f) if x == x else "-"
        print(f"| {name:40s} | {n:6d} | {fmt(dt, '8.2f'):>8s} | {fmt(rate, '9.1f'):>9s} | "
              f"{fmt(ratio, '9.1f') + ('x' if ratio == ratio else ''):>10s} | {fmt(ms_all, '9.3f'):>9s} | "
              f"{fmt(ms_k, '17.3f'):>17s} |")


if __name__ == "__main__":
    main()
