"""The global neural forecaster (method := 'nn'): the kernel learns shared structure, repeats with fixed seeds, and
forecast_demand / backtest_demand / reorder_plan run it through SQL on a DuckDB file. TensorFlow must be installed
(CI installs it); the missing-TensorFlow test runs a separate interpreter where the import fails."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import forecast as K
from warehouse_ml.tasks.forecast import nn as NN

from .conftest import errors_without_tensorflow

pytest.importorskip("tensorflow")

H = 14
SMALL = NN.NNConfig(epochs=8, max_windows=8000)


def _panel(n=40, T=260, seed=0):
    """Series with a level spread over two orders of magnitude, a weekly profile shared by groups of series,
    a trend and Poisson noise: what one network can learn across series."""
    rng = np.random.default_rng(seed)
    t = np.arange(T + H)
    level = np.exp(rng.uniform(np.log(2), np.log(200), n))
    profiles = np.array([[1, 1, 1, 1, 1.3, 1.8, 0.6], [0.7, 1, 1, 1, 1, 1.2, 1.5], [1.5, 1.3, 1, 0.8, 0.8, 0.8, 0.8]])
    week = profiles[rng.integers(0, 3, n)][:, (t % 7)]
    trend = 1 + rng.normal(0, 0.3, n)[:, None] * t[None, :] / T
    mu = level[:, None] * week * np.maximum(trend, 0.2)
    y = rng.poisson(mu).astype(float)
    return y[:, :T], y[:, T:], np.full(n, T)


def _mase(fc, actual, hist, lens, m=7):
    scale = K.mase_scale(hist, lens, m)
    return float(np.mean(np.mean(np.abs(fc - actual), axis=1) / scale))


def test_nn_learns_shared_weekly_structure_and_beats_naive():
    hist, future, lens = _panel()
    res = NN.fit_predict(hist, lens, np.zeros(len(lens), np.int64), "daily", 7, H, 0.9, SMALL)
    assert res.median.shape == (40, H) and res.n_windows > 1000
    naive = np.repeat(hist[:, -1:], H, axis=1)  # the trivial baseline: last value carried forward
    nn_mase, naive_mase = _mase(res.median, future, hist, lens), _mase(naive, future, hist, lens)
    snaive = np.tile(hist[:, -7:], 2)
    assert nn_mase < 0.8 * naive_mase, (nn_mase, naive_mase)
    assert nn_mase < _mase(snaive, future, hist, lens), nn_mase
    assert np.all(res.lower <= res.median + 1e-9) and np.all(res.median <= res.upper + 1e-9)  # no crossing
    cover = np.mean((future >= res.lower) & (future <= res.upper))
    assert 0.7 < cover <= 1.0, cover  # a 90% band, learned by the pinball loss


def test_nn_repeats_exactly_with_fixed_seed_on_cpu():
    hist, _, lens = _panel(n=12, T=150, seed=3)
    cfg = NN.NNConfig(epochs=2, max_windows=1500)
    a = NN.fit_predict(hist, lens, np.zeros(12, np.int64), "daily", 7, H, 0.95, cfg)
    b = NN.fit_predict(hist, lens, np.zeros(12, np.int64), "daily", 7, H, 0.95, cfg)
    np.testing.assert_array_equal(a.median, b.median)
    np.testing.assert_array_equal(a.upper, b.upper)
    c = NN.fit_predict(hist, lens, np.zeros(12, np.int64), "daily", 7, H, 0.95, NN.NNConfig(epochs=2, max_windows=1500,
                                                                                              seed=1))
    assert not np.array_equal(a.median, c.median)


def test_windows_are_cut_without_looking_past_the_origin():
    y = np.arange(1, 401, dtype=float)[None, :].repeat(2, axis=0)
    y[1] *= 10
    Yp = np.zeros((2, 420))
    Yp[:, :400] = y
    csum = np.concatenate([np.zeros((2, 1)), np.cumsum(Yp, axis=1)], axis=1)
    X, scale = NN._windows(Yp, csum, np.array([0, 1]), np.array([380, 380]), np.zeros(2, np.int64), 8, 5, 364,
                           "daily", 7)
    np.testing.assert_allclose(X["lags"][0] * scale[0], np.arange(373, 381))  # values y[372..379] = 373..380
    np.testing.assert_allclose(X["lags"][0], X["lags"][1])  # scaled per window: a 10x series looks the same
    assert X["context"][0, -1] == 1.0  # last year's season is available 380 periods in
    np.testing.assert_allclose(X["last_year"][0] * np.mean(np.arange(9, 17)), np.arange(17, 22))
    series, origin = NN._sample_origins(np.array([30, 100]), 8, 5, 50, np.random.default_rng(0))
    assert len(series) == 50 and origin.max() <= 100 - 5 and origin.min() >= 8
    assert {(0, 25), (1, 95)} <= set(zip(series.tolist(), origin.tolist()))  # latest windows always kept


def test_a_horizon_longer_than_a_year_reads_last_years_values_only_from_before_the_origin():
    # monthly, h = 24: steps 12-23 take the same month two years back, never the window's own targets (which a
    # training window holds and the forecast does not: reading them taught the network to copy its answer)
    T, origin, h, L = 120, 100, 24, 12
    Yp = np.ones((1, T + h + 1))
    Yp[0, origin:] = 1e6  # anything read at or after the origin shows
    csum = np.concatenate([np.zeros((1, 1)), np.cumsum(Yp, axis=1)], axis=1)
    X, _ = NN._windows(Yp, csum, np.array([0]), np.array([origin]), np.zeros(1, np.int64), L, h, 12, "monthly", 12)
    np.testing.assert_allclose(X["last_year"][0], np.ones(h))
    assert X["context"][0, -1] == 1.0  # last year is available


@pytest.fixture(scope="module")
def sales(tmp_path_factory):
    """A DuckDB file: 30 items x 300 days of weekly-patterned demand, one new item with 20 days, one with a single
    day; one item has two rows on a day (summed)."""
    path = str(tmp_path_factory.mktemp("nn") / "t.duckdb")
    hist, future, lens = _panel(n=30, T=300, seed=1)
    start = dt.date(2024, 1, 1)
    rows = [(f"sku{i:02d}", start + dt.timedelta(days=d), float(hist[i, d])) for i in range(30) for d in range(300)]
    rows += [("new", start + dt.timedelta(days=280 + d), 5.0 + d % 7) for d in range(20)]
    rows += [("single", start + dt.timedelta(days=299), 3.0), ("sku00", start + dt.timedelta(days=299), 1.0)]
    con = wml.connect(path)
    con.register("df", pd.DataFrame(rows, columns=["sku", "day", "units"]))
    con.execute("CREATE TABLE sales AS SELECT sku, CAST(day AS DATE) AS day, units FROM df")
    con.unregister("df")
    yield con, path
    con.close()


def test_forecast_demand_nn_through_sql(sales):
    con, _ = sales
    df = con.execute("FROM forecast_demand('sales', 7, method := 'nn', level := 0.8) ORDER BY item, date").df()
    assert list(df.columns) == ["item", "date", "forecast", "lower", "upper", "method"]
    assert len(df) == 32 * 7 and df.groupby("item").size().eq(7).all()
    by_item = df.groupby("item")["method"].first()
    assert by_item["sku05"] == "nn"
    assert by_item["new"].startswith("nn->ets (short: 20 periods)")
    assert by_item["single"].startswith("nn->naive (short")
    assert "duplicate rows summed" in by_item["sku00"]
    assert (df["forecast"] >= 0).all()
    banded = df[df["item"] != "single"]  # one point has no spread to build a band from (NULL bounds)
    assert (banded["lower"] >= 0).all()
    assert (banded["lower"] <= banded["forecast"] + 1e-9).all() and (banded["forecast"] <= banded["upper"] + 1e-9).all()
    assert str(df["date"].min())[:10] == "2024-10-27"  # the day after the last one
    # reorder_plan accepts the network's forecast as well
    plan = con.execute("FROM reorder_plan('sales', lead_time := 5, method := 'nn') WHERE item = 'sku05'").fetchone()
    assert plan[1] > 0 and plan[2] > 0 and plan[-1] == "nn"


def test_nn_on_one_series_falls_back_to_auto_and_says_why(sales):
    con, _ = sales
    con.execute("CREATE OR REPLACE TABLE lone AS SELECT day, units FROM sales WHERE sku = 'sku03'")
    nn = con.execute("SELECT forecast, method FROM forecast_demand('lone', 7, method := 'nn') ORDER BY date").fetchall()
    auto = con.execute("SELECT forecast, method FROM forecast_demand('lone', 7) ORDER BY date").fetchall()
    assert [f for f, _ in nn] == [f for f, _ in auto]  # a global network needs a panel: auto's forecast instead
    assert nn[0][1] == f"nn->{auto[0][1]} (one model over all series needs at least 10 series, got 1)"


def test_backtest_demand_compares_nn_with_the_classical_methods(sales):
    con, _ = sales
    rows = con.execute("SELECT method, avg(mase), count(*) FROM backtest_demand('sales', 7, folds := 2, method := 'nn') "
                       "WHERE item LIKE 'sku%' GROUP BY 1").fetchall()
    mase = {m: v for m, v, _ in rows}
    assert set(mase) == {"nn", "seasonal_naive", "seasonal_drift", "seasonal_median", "ets", "theta", "croston", "auto"}
    assert mase["nn"] < 1.0 and mase["nn"] < 1.25 * mase["ets"], mase  # learns; in ETS's league on ETS's home ground
    # without method := 'nn' no network is trained
    assert "nn" not in {r[0] for r in con.execute("FROM backtest_demand('sales', 7, folds := 1)").fetchall()}


def test_missing_tensorflow_is_a_clear_error_and_classical_methods_still_work(tmp_path):
    lines, errors = errors_without_tensorflow(f"""
        con = wml.connect({str(tmp_path / 't.duckdb')!r})
        con.execute("CREATE TABLE s AS SELECT 'a' AS item, DATE '2024-01-01' + INTERVAL (i) DAY AS day, "
                    "CAST(10 + i % 7 AS DOUBLE) AS units FROM range(120) t(i)")
        print("ets rows:", con.execute("SELECT count(*) FROM forecast_demand('s', 7, method := 'ets')").fetchone()[0])
    """, ["FROM forecast_demand('s', 7, method := 'nn')", "FROM backtest_demand('s', 7, method := 'nn')"], tmp_path)
    assert "ets rows: 7" in lines
    assert len(errors) == 2, lines
    for e in errors:
        assert "MissingDependency" in e and "method := 'nn' needs TensorFlow" in e and "pip install tensorflow-cpu" in e
