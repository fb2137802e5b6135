"""Demand forecasting: kernels without SQL, then forecast_demand / backtest_demand / reorder_plan on DuckDB files."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import forecast as K

H = 7


# --------------------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------------------
def _seasonal_panel(n=20, T=140, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(T + H)
    week = rng.normal(0, 3, (n, 7))
    level = rng.uniform(20, 60, n)
    truth = level[:, None] + week[np.arange(n)[:, None], t[None, :] % 7] + 0.02 * t[None, :]
    y = truth + rng.normal(0, noise, truth.shape)
    return y[:, :T], truth[:, T:], np.full(n, T)


def test_ets_learns_level_trend_and_weekly_pattern():
    y, future, lens = _seasonal_panel()
    fc = K.ETS(7).fit(y, lens).predict(H)
    assert fc.mean.shape == (20, H)
    assert np.mean(np.abs(fc.mean - future)) < 1.0  # noise sd is 1: within it on average
    sd = fc.sd()
    assert np.all(sd > 0) and np.all(np.diff(sd, axis=1) >= -1e-9)  # uncertainty grows with the horizon


@pytest.mark.parametrize("model", [K.SeasonalNaive(7), K.SeasonalMedian(7), K.SeasonalDrift(7), K.ETS(7), K.Theta(7),
                                   K.Croston(), K.Naive()])
def test_every_model_forecasts_every_series(model):
    y, future, lens = _seasonal_panel(n=5, T=60)
    fc = model.fit(y, lens).predict(10)
    assert fc.mean.shape == (5, 10) and np.all(np.isfinite(fc.mean))
    lo, hi = fc.interval(0.9)
    assert np.all(lo <= fc.mean + 1e-9) and np.all(fc.mean <= hi + 1e-9)


def test_seasonal_naive_repeats_last_season():
    y = np.tile(np.arange(7.0), 5)[None, :]
    fc = K.SeasonalNaive(7).fit(y, np.array([35])).predict(9)
    assert fc.mean[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_seasonal_median_does_not_copy_last_weeks_holiday():
    y = np.tile(np.arange(7.0), 6)
    y[-3] = 100.0  # a holiday in the last week: seasonal naive would repeat it next week
    fc = K.SeasonalMedian(7).fit(y[None, :], np.array([42])).predict(9)
    assert fc.mean[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    short = K.SeasonalMedian(7).fit(y[None, :14], np.array([14])).predict(7)  # two weeks: the median of those two
    assert short.mean[0].tolist() == [0, 1, 2, 3, 4, 5, 6] and np.isfinite(short.sigma).all()


def test_seasonal_drift_repeats_last_season_raised_by_the_yearly_change():
    month = np.array([5.0, 3, 4, 6, 8, 9, 12, 11, 8, 6, 5, 7])
    y = np.concatenate([month + 10 * year for year in range(3)])  # every month 10 higher than a year before
    fc = K.SeasonalDrift(12).fit(y[None, :], np.array([36])).predict(14)
    assert np.allclose(fc.mean[0], np.concatenate([month + 30, month[:2] + 40]))
    assert fc.sigma[0] == pytest.approx(0.0)  # the yearly differences are all 10: no error around their mean


def test_seasonal_level_spreads_an_odd_quarter_over_the_season_instead_of_copying_it():
    shape = np.array([0.8, 1.2, 0.9, 1.1])
    y = 100 * np.tile(shape, 8)
    y[-3] *= 1.6  # one odd quarter in the last year (72 over): seasonal naive repeats it a year later
    fc = K.SeasonalLevel(4).fit(y[None, :], np.array([32])).predict(8)
    truth = 100 * np.tile(shape, 2)
    snaive = K.SeasonalNaive(4).fit(y[None, :], np.array([32])).predict(8)
    assert np.abs(snaive.mean[0] - truth).max() == pytest.approx(72)
    assert np.abs(fc.mean[0] - truth).max() < 72 / 2 and np.all(fc.mean[0] > truth)  # the level rises a little
    assert np.allclose(fc.mean[0, :4], fc.mean[0, 4:]) and np.isfinite(fc.sigma).all()


def test_seasonal_level_follows_the_last_seasons_level_with_the_long_run_shape():
    shape = np.array([0.8, 1.2, 0.9, 1.1])
    y = np.concatenate([100 * np.tile(shape, 6), 130 * np.tile(shape, 2)])  # the level rose two years ago
    fc = K.SeasonalLevel(4).fit(y[None, :], np.array([32])).predict(8)
    assert np.allclose(fc.mean[0], 130 * np.tile(shape, 2), rtol=0.02)
    flat = K.SeasonalLevel(4).fit(np.arange(32.0)[None, :], np.array([32])).predict(4)  # no season: last 4's mean
    assert np.allclose(flat.mean[0], 29.5)


def test_auto_follows_steady_growth_in_monthly_series():
    n, T, h = 40, 120, 24
    rng = np.random.default_rng(5)
    t = np.arange(T + h)
    season = rng.normal(0, 10, (n, 12))[:, t % 12]
    y = 100 + rng.uniform(0.5, 2.0, (n, 1)) * t + season + rng.normal(0, 1, (n, T + h))
    lens = np.full(n, T)
    panel = K.Panel(y[:, :T], lens, np.zeros(n, int), np.zeros(n, int), lens, "monthly", 12)
    scale = K.mase_scale(y, lens, 12)
    mase = {}
    for method in ("auto", "seasonal_naive"):
        res = K.forecast_panel(panel, h, method)
        mase[method] = float(np.mean(np.mean(np.abs(res.forecast.reshape(n, h) - y[:, T:]), axis=1) / scale))
        if method == "auto":
            # a member that extrapolates the growth: seasonal naive with drift, or seasonal ARIMA with drift (a
            # candidate on a panel this small)
            growth = {"seasonal_drift", "arima"}
            assert sum(bool(growth & set(made.methods)) for made in res.method) >= n / 2, res.method
    assert mase["auto"] < 0.5 * mase["seasonal_naive"], mase


def test_auto_weighs_seasonal_arima_only_on_panels_small_enough_to_afford_it():
    from warehouse_ml.tasks.forecast.auto import ARIMA_PERIODS

    rng = np.random.default_rng(6)
    h = 12
    for n, expected in ((4, True), (ARIMA_PERIODS // 100 + 1, False)):
        y = 50 + rng.normal(0, 10, (n, 12))[:, np.arange(100) % 12] + rng.normal(0, 1, (n, 100))
        lens = np.full(n, 100)
        names = [c.name for c in K.AutoForecaster(12, freq="monthly")._candidates(y, lens, None, h, True)]
        assert ("arima" in names) == expected, (n, names)


def test_croston_forecasts_the_demand_rate_of_intermittent_series():
    rng = np.random.default_rng(1)
    y = (rng.random((30, 400)) < 0.1) * rng.poisson(5, (30, 400)).clip(1)
    lens = np.full(30, 400)
    assert K.is_intermittent(y.astype(float), lens).all()
    fc = K.Croston().fit(y, lens).predict(5)
    rate = y.mean(1)
    assert np.all(fc.mean[:, 0] == fc.mean[:, 4])
    assert abs(np.mean(fc.mean[:, 0]) - np.mean(rate)) < 0.25 * np.mean(rate)


def test_intervals_cover_about_the_nominal_share():
    rng = np.random.default_rng(2)
    n, T = 300, 150
    y = 50 + rng.normal(0, 2, (n, T + H))
    fc = K.ETS(7).fit(y[:, :T], np.full(n, T)).predict(H)
    lo, hi = fc.interval(0.9)
    cover = np.mean((y[:, T:] >= lo) & (y[:, T:] <= hi))
    assert 0.8 < cover <= 0.99


def test_auto_chooses_per_series_and_says_which():
    y, future, lens = _seasonal_panel(n=10, T=120)
    panel = K.Panel(y, lens, np.zeros(10, int), np.zeros(10, int), lens, "daily", 7)
    res = K.forecast_panel(panel, H, "auto")
    members = {m for made in res.method for m in made.methods}
    daily = {"ets", "theta", "log_ets", "seasonal_naive", "seasonal_median", "naive", "croston"}
    assert members <= daily, res.method
    # (seasonal_drift and seasonal_level are candidates of monthly, quarterly and weekly data, not of daily)
    assert np.mean(np.abs(res.forecast.reshape(10, H) - future)) < 1.5


def test_auto_takes_the_seasonal_median_where_a_holiday_fools_seasonal_naive():
    n, T, h = 30, 200, 14
    rng = np.random.default_rng(4)
    t = np.arange(T + h)
    y = rng.poisson(rng.uniform(50, 150, n)[:, None] * rng.uniform(0.6, 1.4, (n, 7))[:, t % 7]).astype(float)
    closed = np.zeros(T + h, bool)
    closed[rng.choice(T - 10, 12, replace=False)] = True
    closed[T - 3] = True  # one in the last week, which seasonal naive copies into the next
    y[:, closed] *= 0.1  # holidays: every store nearly shut on the same days
    lens = np.full(n, T)
    panel = K.Panel(y[:, :T], lens, np.zeros(n, int), np.zeros(n, int), lens, "daily", 7)
    scale = K.mase_scale(y, lens, 7)
    mase = {}
    for method in ("auto", "seasonal_naive", "ets"):
        res = K.forecast_panel(panel, h, method)
        mase[method] = float(np.mean(np.mean(np.abs(res.forecast.reshape(n, h) - y[:, T:]), axis=1) / scale))
        if method == "auto":
            assert sum("seasonal_median" in made.methods for made in res.method) >= n / 2, res.method
    assert mase["auto"] < 0.6 * mase["seasonal_naive"] and mase["auto"] < mase["ets"], mase


def _planted_origin_errors(gain, spread, seed, O=4, N=30, h=7):
    """Rolling-origin errors of ets, theta, seasonal naive and naive: seasonal naive's errors times a factor per
    origin and series for ets (1 - gain on average, ``spread`` around it), times 1.2 and 3 for the others."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (O, N, h))
    factor = np.clip(1 - gain + spread * rng.normal(0, 1, (O, N)), 0.05, None)
    err = np.stack([base * factor[:, :, None], base * 1.2, base, base * 3], axis=2)
    return err, np.ones((O, N)), np.ones((N, 4), bool), ["ets", "theta", "seasonal_naive", "naive"]


def test_auto_leaves_seasonal_naive_only_for_a_gain_larger_than_its_noise():
    auto = K.AutoForecaster(7)
    clear = auto._select(*_planted_origin_errors(gain=0.3, spread=0.05, seed=1))
    assert (clear == 0).all()  # ets alone: 30% better on every origin and series
    noisy = auto._select(*_planted_origin_errors(gain=0.1, spread=0.6, seed=1))
    ets_alone = 1  # strategies: per-series choice, then the pairs (0, 0), (0, 1), ...
    assert int(np.argmin(auto.strategy_scores)) == ets_alone  # ets scores best, by less than the noise of its gain
    assert (noisy == 2).any(axis=1).all(), noisy  # so seasonal naive stays a member of every series' forecast


def test_auto_calibrates_its_intervals_on_the_origins_and_widens_them_when_the_latest_errors_grew():
    from warehouse_ml.tasks.forecast.auto import _calibration

    rng = np.random.default_rng(0)
    sd = np.ones((4, 50, 7))
    steady = rng.normal(0, 2, sd.shape)  # every origin's errors twice the models' spread
    assert _calibration(steady, sd, 0.95) == pytest.approx(2.0, rel=0.1)
    grown = steady.copy()
    grown[-1] *= 1.5  # the latest origin's errors half as large again: the forecast meets those next
    assert _calibration(grown, sd, 0.95) == pytest.approx(3.0, rel=0.1)
    assert _calibration(steady[:, :1, :2], sd[:, :1, :2], 0.95) == 1.0  # 8 errors: too few to tell


def test_provenance_record_turns_into_the_method_label():
    """The record kept per series, and the one place it becomes the ``method`` text users read."""
    P = K.Provenance
    assert str(P(("ets",))) == "ets"
    assert str(P(("ets", "theta"), yearly=True)) == "ets+theta+yearly"
    short = P(("naive",)).replacing("theta", "short: 3 periods")
    assert str(short) == "theta->naive (short: 3 periods)" and short.methods == ("naive",)
    chain = P(("ets", "theta")).replacing("auto", "short for backtest").replacing("nn", "one model over all series "
                                                                                "needs at least 8 series, got 2")
    assert str(chain) == ("nn->auto->ets+theta (short for backtest) (one model over all series needs at least 8 "
                          "series, got 2)") and chain.methods == ("ets", "theta")
    assert str(P(("ets",), seasonal=False).replacing("ets", "short")) == "ets->non-seasonal ets (short)"
    failed = P(("naive",)).replacing("gbm", "failed: ValueError")
    assert str(failed) == "gbm->naive (failed: ValueError)"
    assert str(P(("naive",)).replacing(P(("ets",), yearly=True), "failed")) == "ets+yearly->naive (failed)"
    assert str(P(why="no non-NULL values")) == "none (no non-NULL values)"


def test_short_and_empty_series_fall_back_and_say_so():
    rows = []
    for code, n in enumerate([1, 2, 5, 10, 40]):
        rows += [(code, 19000 + d, 5.0 + d % 3) for d in range(n)]
    rows.append((5, 19000, np.nan))  # all values NULL
    s, d, v = map(np.array, zip(*rows))
    panel = K.build_panel(s, d, v, 6)
    res = K.forecast_panel(panel, H, "ets")
    labels = [str(made) for made in res.method]
    assert labels[0] == "ets->naive (short: 1 point)"
    assert labels[1] == "ets->naive (short: 2 points)"
    assert labels[2] == labels[3] == "ets->non-seasonal ets (short)"
    assert labels[4] == "ets"
    assert labels[5] == "none (no non-NULL values)"
    assert [made.methods for made in res.method] == [("naive",), ("naive",), ("ets",), ("ets",), ("ets",), ()]
    assert 5 not in set(res.series)  # the all-NULL series gets no rows
    one = res.series == 0
    assert np.all(res.forecast[one] == 5.0) and np.all(np.isnan(res.lower[one]))


def test_frequency_is_inferred_and_gaps_filled_with_zero():
    day = np.array([0, 7, 14, 28, 35])  # one missing week
    panel = K.build_panel(np.zeros(5, int), day, np.ones(5), 1)
    assert panel.freq == "weekly" and panel.lens[0] == 6 and panel.y[0, 3] == 0
    months = np.array(["2024-01-01", "2024-02-01", "2024-03-01", "2024-05-01"], "datetime64[D]").astype(np.int64)
    panel = K.build_panel(np.zeros(4, int), months, np.ones(4), 1)
    assert panel.freq == "monthly" and panel.season == 12 and panel.lens[0] == 5
    res = K.forecast_panel(panel, 2, "naive")
    assert [str(np.datetime64(int(x), "D")) for x in res.day] == ["2024-06-01", "2024-07-01"]


def test_forecasts_of_demand_are_never_negative():
    y = np.linspace(20, 1, 60)[None, :]  # falling fast
    panel = K.Panel(y, np.array([60]), np.zeros(1, int), np.zeros(1, int), np.array([60]), "daily", 7)
    res = K.forecast_panel(panel, 30, "ets")
    assert res.forecast.min() >= 0 and res.lower.min() >= 0


def test_lead_time_sd_sums_the_error_structure():
    fc = K.PanelForecast(np.ones((1, 5)), np.array([2.0]), np.r_[1.0, np.zeros(4)][None, :])
    assert fc.sum_sd(4)[0] == pytest.approx(2.0 * 2)  # independent errors: sigma * sqrt(L)
    rw = K.PanelForecast(np.ones((1, 3)), np.array([1.0]), np.ones((1, 3)))  # random walk
    assert rw.sum_sd(3)[0] == pytest.approx(np.sqrt(1 + 4 + 9))
    q = K.reorder_quantities(fc, 4, 0.95, np.array([1.0]))
    assert q["reorder_point"][0] == pytest.approx(4 + 1.6448536 * 4, rel=1e-5)
    assert q["order_qty"][0] == np.ceil(q["reorder_point"][0] - 1)


@pytest.mark.parametrize("h", [0, -1, 10_001, None, 2.5])
def test_kernel_rejects_bad_horizons(h):
    with pytest.raises(K.ForecastInputError) as e:
        K.validate_horizon(h)
    assert e.value.argument == "horizon"


# --------------------------------------------------------------------------------------------------------
# SQL on real DuckDB files
# --------------------------------------------------------------------------------------------------------
START = dt.date(2024, 1, 1)
DAYS = 120


@pytest.fixture
def con(tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    for i in range(5):
        base = rng.uniform(10, 40)
        week = rng.normal(0, 0.2, 7)
        for d in range(DAYS):
            rows.append((f"sku{i}", START + dt.timedelta(days=d), float(rng.poisson(base * (1 + week[d % 7])))))
    for d in range(DAYS):  # intermittent long-tail item
        if rng.random() < 0.15:
            rows.append(("slow", START + dt.timedelta(days=d), float(rng.integers(1, 4))))
    rows += [("new", START + dt.timedelta(days=DAYS - 3 + d), 4.0) for d in range(3)]  # 3 days of history
    rows.append(("single", START + dt.timedelta(days=DAYS - 1), 2.0))
    rows += [("blank", START + dt.timedelta(days=d), None) for d in range(5)]
    import pyarrow as pa

    c = wml.connect(str(tmp_path / "shop.duckdb"))
    sku, day, units = zip(*rows)
    src = pa.table({"sku": pa.array(sku, pa.string()), "day": pa.array(day, pa.date32()),
                    "units": pa.array(units, pa.float64())})
    c.register("src", src)
    c.execute("CREATE TABLE sales AS SELECT * FROM src")
    c.unregister("src")
    c.execute("CREATE TABLE inventory (sku VARCHAR, qty INTEGER)")
    c.execute("INSERT INTO inventory VALUES ('sku0', 1000), ('sku1', 0), ('slow', 2)")
    yield c
    c.close()


def _snapshot(c):
    tables = c.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'wml' "
                       "ORDER BY ALL").fetchall()
    return tables, c.execute("SELECT count(*), sum(hash(sku, day, units)) FROM sales").fetchone()


def test_forecast_demand_every_item_with_bands(con):
    before = _snapshot(con)
    rows = con.execute("FROM forecast_demand('sales', 7) ORDER BY item, date").fetchall()
    cols = [d[0] for d in con.description]
    assert cols == ["item", "date", "forecast", "lower", "upper", "method"]
    items = {r[0] for r in rows}
    assert items == {"sku0", "sku1", "sku2", "sku3", "sku4", "slow", "new", "single"}  # 'blank' is all NULL
    assert len(rows) == 8 * 7
    sku0 = [r for r in rows if r[0] == "sku0"]
    assert [r[1] for r in sku0] == [START + dt.timedelta(days=DAYS + k) for k in range(7)]
    for _, _, f, lo, hi, _ in rows:
        assert f >= 0
        if lo is not None:
            assert 0 <= lo <= f + 1e-9 <= hi + 2e-9
    methods = {r[0]: r[5] for r in rows}
    assert methods["single"] == "auto->naive (short: 1 point)"
    assert methods["new"] == "auto->ets+theta (short for backtest)"
    assert set(methods["slow"].split("+")) <= {"ets", "croston"}  # no naive forecasts of sparse demand
    assert _snapshot(con) == before  # nothing in the database changed


def test_named_columns_method_and_level(con):
    q = ("SELECT avg(upper - lower) FROM forecast_demand('sales', 28, item := 'sku', date := 'day', "
         "value := 'units', method := 'ets', level := {}) WHERE item LIKE 'sku%'")
    narrow, wide = con.execute(q.format(0.8)).fetchone()[0], con.execute(q.format(0.95)).fetchone()[0]
    assert 0 < narrow < wide
    methods = {r[0] for r in con.execute("SELECT DISTINCT method FROM forecast_demand('sales', 28, method := 'ets') "
                                         "WHERE item LIKE 'sku%'").fetchall()}
    assert methods == {"ets"}


@pytest.mark.parametrize("method", ["seasonal_naive", "ets", "theta", "croston", "naive",
                                    pytest.param("arima", marks=pytest.mark.slow)])
def test_each_method_runs_from_sql(con, method):
    rows = con.execute(f"SELECT item, forecast, method FROM forecast_demand('sales', 5, method := '{method}') "
                       "WHERE item IN ('sku0', 'slow')").fetchall()
    assert len(rows) == 10
    assert all(r[1] is not None and r[1] >= 0 for r in rows)
    assert all(r[2].split(" ")[0].split("->")[0] == method for r in rows)


def test_duplicate_dates_are_summed_and_said(con):
    con.execute(f"INSERT INTO sales VALUES ('sku0', DATE '2024-01-05', 1000)")
    rows = con.execute("SELECT DISTINCT method FROM forecast_demand('sales', 3) WHERE item = 'sku0'").fetchall()
    assert len(rows) == 1 and "1 date with duplicate rows summed" in rows[0][0]


def test_roles_are_inferred_or_the_error_names_candidates(con):
    con.execute("CREATE TABLE priced AS SELECT *, 9.99 AS price FROM sales")
    with pytest.raises(Exception, match=r"AmbiguousColumn.*'units', 'price'.*value := 'column'"):
        con.execute("FROM forecast_demand('priced', 7)").fetchall()
    n = con.execute("SELECT count(*) FROM forecast_demand('priced', 7, value := 'units')").fetchone()[0]
    assert n == 8 * 7
    con.execute("CREATE TABLE two_dates AS SELECT *, day AS shipped FROM sales")
    with pytest.raises(Exception, match=r"AmbiguousColumn.*'day', 'shipped'"):
        con.execute("FROM forecast_demand('two_dates', 7)").fetchall()
    with pytest.raises(Exception, match=r"UnknownColumn.*Did you mean 'units'"):
        con.execute("FROM forecast_demand('sales', 7, value := 'unit')").fetchall()


def test_one_series_without_a_key_and_timestamps(con):
    con.execute("CREATE TABLE total AS SELECT CAST(day AS TIMESTAMP) AS ts, sum(units) AS units FROM sales GROUP BY 1")
    rows = con.execute("FROM forecast_demand('total', 3)").fetchall()
    assert len(rows) == 3 and rows[0][0] is None
    assert rows[0][1] == dt.datetime.combine(START + dt.timedelta(days=DAYS), dt.time())  # TIMESTAMP stays one


@pytest.mark.parametrize("call", ["forecast_demand('typed', 3)", "backtest_demand('typed', 3, folds := 1)",
                                  "reorder_plan('typed')"])
def test_keys_and_dates_keep_their_source_types(con, call):
    con.execute("CREATE TABLE typed AS SELECT CAST(substr(sku, 4) AS BIGINT) * 5 + 2 AS product_id, "
                "CAST(day AS TIMESTAMP) AS ts, units FROM sales WHERE sku LIKE 'sku%'")  # keys 2, 7, 12, 17, 22
    rel = con.sql(f"FROM {call} ORDER BY item")
    assert rel.types[0] == "BIGINT"
    if call.startswith("forecast"):
        assert rel.types[1] == "TIMESTAMP"
    assert rel.fetchall()[0][0] == 2  # sorted as numbers (as text, '12' would come first)
    joined = con.execute(f"SELECT count(*) FROM {call} f JOIN typed t ON f.item = t.product_id").fetchone()[0]
    assert joined > 0


def test_weekly_data_gives_weekly_dates(con):
    con.execute("CREATE TABLE weekly AS SELECT sku, date_trunc('week', day)::DATE AS wk, sum(units) AS units "
                "FROM sales WHERE sku LIKE 'sku%' GROUP BY ALL")
    rows = con.execute("SELECT date FROM forecast_demand('weekly', 3) WHERE item = 'sku0' ORDER BY date").fetchall()
    assert (rows[1][0] - rows[0][0]).days == 7 and (rows[2][0] - rows[1][0]).days == 7


@pytest.mark.parametrize("call, pattern", [
    ("forecast_demand('sales', 0)", r"argument 'horizon': must be at least 1"),
    ("forecast_demand('sales', -3)", r"argument 'horizon'"),
    ("forecast_demand('sales', 10001)", r"argument 'horizon': 10001 is beyond the limit"),
    ("forecast_demand('sales', NULL)", r"argument 'horizon': is NULL"),
    ("forecast_demand('sales', 7, date := 'sku')", r"argument 'date': column 'sku' .* not DATE or TIMESTAMP"),
    ("forecast_demand('sales', 7, method := 'magic')", r"argument 'method': unknown method 'magic'"),
    ("forecast_demand('sales', 7, level := 1.5)", r"argument 'level'"),
    ("forecast_demand('sales; DROP TABLE sales', 7)", r"UnknownRelation"),
    ("forecast_demand('nope', 7)", r"UnknownRelation: no table or view named 'nope'"),
    ("backtest_demand('sales', 7, folds := 0)", r"argument 'folds'"),
    ("reorder_plan('sales', lead_time := 0)", r"argument 'lead_time'"),
    ("reorder_plan('sales', service_level := 1)", r"argument 'service_level'"),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(con, call, pattern):
    before = _snapshot(con)
    with pytest.raises(Exception, match=pattern):
        con.execute(f"FROM {call}").fetchall()
    assert _snapshot(con) == before


def test_backtest_demand_scores_each_method_per_item(con):
    rows = con.execute("FROM backtest_demand('sales', 7, folds := 2) WHERE item IN ('sku0', 'slow')").fetchall()
    cols = [d[0] for d in con.description]
    assert cols[:6] == ["item", "method", "mase", "smape", "rmse", "coverage"]
    by = {(r[0], r[1]): r for r in rows}
    assert {m for _, m in by} == {"seasonal_naive", "seasonal_drift", "seasonal_median", "ets", "theta", "croston", "auto"}
    for (_, _), r in by.items():
        assert r[2] > 0 and 0 <= r[3] <= 2 and r[4] > 0 and 0 <= r[5] <= 1 and r[6] == 2
    assert by[("sku0", "ets")][2] < 1.5
    one = con.execute("SELECT DISTINCT method FROM backtest_demand('sales', 7, method := 'theta')").fetchall()
    assert one == [("theta",)]


def test_reorder_plan_uses_on_hand_stock(con):
    rows = con.execute("FROM reorder_plan('sales', lead_time := 7, service_level := 0.95, on_hand := 'inventory') "
                       "ORDER BY item").fetchall()
    cols = [d[0] for d in con.description]
    assert cols[:6] == ["item", "lead_time_demand", "safety_stock", "reorder_point", "on_hand", "order_qty"]
    by = {r[0]: r for r in rows}
    for r in rows:
        assert r[1] >= 0 and r[2] >= 0 and r[3] == pytest.approx(r[1] + r[2])
    assert by["sku0"][4] == 1000 and by["sku0"][5] == 0  # plenty on hand: no order
    assert by["sku1"][4] == 0 and by["sku1"][5] >= by["sku1"][3]  # nothing on hand: order the reorder point
    assert by["sku2"][4] == 0  # missing from inventory: none on hand
    hi = con.execute("SELECT safety_stock FROM reorder_plan('sales', service_level := 0.99) WHERE item = 'sku1'").fetchone()
    lo = con.execute("SELECT safety_stock FROM reorder_plan('sales', service_level := 0.8) WHERE item = 'sku1'").fetchone()
    assert hi[0] > lo[0]


def test_plot_forecast_writes_a_png(con, tmp_path):
    from warehouse_ml.functions.forecast_plot import plot_forecast

    out = plot_forecast(con, "sales", "sku0", 14, str(tmp_path / "f.png"))
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_detect_anomalies_finds_a_spike_and_keeps_types(con):
    con.execute("CREATE TABLE spiky AS SELECT CAST(substr(sku, 4) AS BIGINT) AS product_id, day, "
                "units + CASE WHEN sku = 'sku2' AND day = DATE '2024-03-01' THEN 200 ELSE 0 END AS units "
                "FROM sales WHERE sku LIKE 'sku%'")
    rel = con.sql("FROM detect_anomalies('spiky', level := 0.999)")
    assert rel.columns == ["item", "date", "value", "expected", "lower", "upper", "is_anomaly", "score"]
    assert rel.types[:2] == ["BIGINT", "DATE"]
    rows = rel.fetchall()
    assert len(rows) == 5 * DAYS  # every period of every series
    top = max(rows, key=lambda r: r[-1])
    assert top[:2] == (2, dt.date(2024, 3, 1)) and top[6] and top[2] > top[5]
    flagged = [r for r in rows if r[6]]
    assert len(flagged) <= 0.02 * len(rows)  # Poisson noise alone is rarely beyond the 99.9% band
    assert all(lo <= e <= hi for _, _, _, e, lo, hi, _, _ in rows)


def test_explain_forecast_parts_sum_to_the_ets_forecast(con):
    rel = con.sql("FROM explain_forecast('sales', 7) ORDER BY item, date")
    assert rel.columns == ["item", "date", "forecast", "level", "trend", "season", "yearly", "holiday", "drivers",
                           "residual", "method"]
    rows = rel.fetchall()
    assert len(rows) == 8 * 7
    for r in rows:
        assert r[2] == pytest.approx(r[3] + r[4] + r[5] + r[6], abs=1e-9)
        assert r[7] == 0 and r[8] == {} and r[9] == 0
    ets = dict(((r[0], r[1]), r[2]) for r in con.execute("FROM forecast_demand('sales', 7, method := 'ets')").fetchall())
    sku = [r for r in rows if r[0] == "sku1"]
    assert [max(r[2], 0) for r in sku] == pytest.approx([ets[(r[0], r[1])] for r in sku])
    assert any(abs(r[5]) > 0.5 for r in sku)  # the weekly pattern is a part of its own


@pytest.fixture
def drivers(con):
    con.execute("CREATE TABLE drv AS SELECT sku, day, units, CAST(dayofweek(day) = 5 AS INTEGER) AS promo FROM sales "
                "WHERE sku LIKE 'sku%'")
    con.execute(f"CREATE TABLE plan AS SELECT sku, DATE '{START + dt.timedelta(days=DAYS)}' + k::INTEGER AS day, "
                "CAST(k = 2 AS INTEGER) AS promo FROM (SELECT DISTINCT sku FROM drv), range(7) t(k)")
    return con


def test_gbm_learns_from_features_future_and_holidays(drivers):
    rows = drivers.execute("FROM forecast_demand('drv', 7, value := 'units', method := 'gbm', features := ['promo'], "
                           "future := 'plan', "
                           "holidays := 'US') WHERE item LIKE 'sku%' ORDER BY item, date").fetchall()
    assert len(rows) == 5 * 7 and {r[5] for r in rows} == {"gbm"}
    assert all(r[3] <= r[2] <= r[4] for r in rows)


@pytest.mark.parametrize("setup, call, pattern", [
    ("ALTER TABLE plan DROP COLUMN promo", "features := ['promo'], future := 'plan'",
     r"argument 'future': relation 'plan' has no column 'promo'"),
    ("DELETE FROM plan WHERE sku = 'sku3' AND day = (SELECT max(day) FROM plan)",
     "features := ['promo'], future := 'plan'", r"argument 'future': 'plan' does not cover the horizon: .*'sku3'"),
    ("UPDATE drv SET promo = NULL WHERE sku = 'sku1' AND day = DATE '2024-02-01'",
     "features := ['promo'], future := 'plan'", r"argument 'features': column 'promo' of 'drv' has 1 NULL"),
    ("SELECT 1", "holidays := 'XX'", r"argument 'holidays': unknown country code 'XX'"),
    ("SELECT 1", "features := ['promo']", r"argument 'future': features need their values over the horizon"),
])
def test_gbm_driver_errors_name_the_argument_and_the_fix(drivers, setup, call, pattern):
    drivers.execute(setup)
    with pytest.raises(Exception, match=pattern):
        drivers.execute(f"FROM forecast_demand('drv', 7, value := 'units', method := 'gbm', {call})").fetchall()
    with pytest.raises(Exception, match=r"argument 'method': features, future, holidays and events are inputs of"):
        drivers.execute("FROM forecast_demand('drv', 7, value := 'units', method := 'theta', holidays := 'US')").fetchall()
