"""Forecasts with drivers on DuckDB files: a user's event calendar, auto with the driver-aware methods,
explanations of the global model per driver, and new rows checked against a saved forecast."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import warehouse_ml as wml

START = dt.date(2024, 1, 1)
DAYS, H, ITEMS = 210, 7, 12
SALE_ITEMS = 6  # sku0..sku5 have their own sale days; every item is closed on 'closed' days
SALE_LIFT = 3.0


def _day(k: int) -> dt.date:
    return START + dt.timedelta(days=k)


@pytest.fixture
def shop(tmp_path):
    """Daily sales of 12 items whose demand triples on their sale days and drops to zero on closing days, the
    event calendar (history and horizon) and a price plan."""
    rng = np.random.default_rng(3)
    sale = {i: set(rng.choice(DAYS, 20, replace=False).tolist()) | {DAYS + 3} for i in range(SALE_ITEMS)}
    closed = set(range(11, DAYS, 30)) | {DAYS + 5}
    rows = []
    for i in range(ITEMS):
        base, week = rng.uniform(10, 30), rng.normal(0, 0.15, 7)
        for d in range(DAYS):
            mu = base * (1 + week[d % 7]) * (SALE_LIFT if d in sale.get(i, ()) else 1.0) * (d not in closed)
            rows.append((100 + i, _day(d), float(rng.poisson(mu))))
    c = wml.connect(str(tmp_path / "shop.duckdb"))
    pid, day, units = zip(*rows)
    c.register("src", pa.table({"product_id": pa.array(pid, pa.int64()), "day": pa.array(day, pa.date32()),
                                "units": pa.array(units, pa.float64())}))
    c.execute("CREATE TABLE sales AS SELECT * FROM src")
    c.unregister("src")
    cal = [(100 + i, _day(d), "sale") for i, days in sale.items() for d in sorted(days)]
    cal += [(None, _day(d), "closed") for d in sorted(closed)]
    c.execute("CREATE TABLE calendar (product_id BIGINT, day DATE, event VARCHAR)")
    c.executemany("INSERT INTO calendar VALUES (?, ?, ?)", cal)
    yield c
    c.close()


def _by_item_date(rows):
    return {(r[0], r[1]): r for r in rows}


def test_events_drive_the_global_model_per_item_and_for_all(shop):
    rows = shop.execute("FROM forecast_demand('sales', 7, method := 'gbm', events := 'calendar') "
                        "ORDER BY item, date").fetchall()
    assert len(rows) == ITEMS * H and {r[5] for r in rows} == {"gbm"}
    fc = _by_item_date(rows)
    sale_day, closed_day = _day(DAYS + 3), _day(DAYS + 5)
    plain = [d for d in range(DAYS, DAYS + H) if d not in (DAYS + 3, DAYS + 5)]
    for i in range(ITEMS):
        usual = np.mean([fc[(100 + i, _day(d))][2] for d in plain])
        assert fc[(100 + i, closed_day)][2] < 0.3 * usual  # an event of every item (NULL product_id)
        lift = fc[(100 + i, sale_day)][2] / usual
        assert lift > 1.8 if i < SALE_ITEMS else lift < 1.4  # an event of its own items only


def test_auto_considers_the_driver_aware_methods_when_drivers_are_given(shop):
    rows = shop.execute("FROM forecast_demand('sales', 7, events := 'calendar') ORDER BY item, date").fetchall()
    labels = {r[0]: r[5] for r in rows}
    # the sale days decide for a candidate that learns from the drivers: the global model or the regression
    assert all("gbm" in labels[100 + i] or "xreg_" in labels[100 + i] for i in range(SALE_ITEMS))
    assert all(r[3] <= r[2] <= r[4] for r in rows)
    without = shop.execute("FROM forecast_demand('sales', 7) ORDER BY item, date").fetchall()
    assert not any("gbm" in r[5] or "xreg" in r[5] for r in without)  # 12 series: too small for gbm alone


@pytest.mark.parametrize("setup, pattern", [
    ("CREATE TABLE bad AS SELECT product_id, CAST(day AS VARCHAR) AS day, event FROM calendar",
     r"argument 'events': relation 'bad' has no DATE or TIMESTAMP column \(columns: product_id BIGINT, day VARCHAR, "
     r"event VARCHAR\).*CAST"),
    ("CREATE TABLE bad AS SELECT product_id, day FROM calendar",
     r"argument 'events': relation 'bad' has no text column naming the event.*VARCHAR"),
    ("CREATE TABLE bad AS SELECT *, 'x' AS note FROM calendar",
     r"argument 'events': relation 'bad' has 2 text columns \(event, note\)"),
])
def test_event_calendar_errors_name_the_argument_and_the_fix(shop, setup, pattern):
    shop.execute(setup)
    with pytest.raises(Exception, match=pattern):
        shop.execute("FROM forecast_demand('sales', 7, method := 'gbm', events := 'bad')").fetchall()
    with pytest.raises(Exception, match=r"no table or view named 'no_such_calendar'. Did you mean 'calendar'"):
        shop.execute("FROM forecast_demand('sales', 7, events := 'no_such_calendar')").fetchall()
    with pytest.raises(Exception, match=r"argument 'method': features, future, holidays and events are inputs"):
        shop.execute("FROM forecast_demand('sales', 7, method := 'ets', events := 'calendar')").fetchall()


def test_new_rows_are_checked_against_a_saved_forecast(shop):
    cut = _day(DAYS - H)
    shop.execute(f"CREATE TABLE history AS FROM sales WHERE day < DATE '{cut}' AND product_id >= {100 + SALE_ITEMS}")
    shop.execute("FROM save_forecast('history', 7, name := 'weekly_plan', level := 0.95)").fetchall()
    shop.execute(f"CREATE TABLE arrived AS SELECT product_id, day, units + CASE WHEN product_id = 107 AND "
                 f"day = DATE '{cut}' + 2 THEN 500 ELSE 0 END AS units FROM sales WHERE day >= DATE '{cut}' "
                 f"AND product_id >= {100 + SALE_ITEMS}")
    shop.execute(f"UPDATE arrived SET units = 0 WHERE day = DATE '{_day(DAYS - 1)}'")  # not a closing day
    rel = shop.sql("FROM detect_anomalies('arrived', model := 'weekly_plan', level := 0.99) ORDER BY item, date")
    assert rel.columns == ["item", "date", "value", "expected", "lower", "upper", "is_anomaly", "score"]
    assert rel.types[:2] == ["BIGINT", "DATE"]
    rows = rel.fetchall()
    assert len(rows) == (ITEMS - SALE_ITEMS) * H  # every arrived row on a forecast date
    saved = {(r[0], r[1]): r for r in shop.execute(
        "SELECT CAST(item AS BIGINT), date, forecast, lower, upper FROM wml.forecasts").fetchall()}
    flagged = {(r[0], r[1]) for r in rows if r[6]}
    assert (107, _day(DAYS - H + 2)) in flagged  # the spike
    assert {(100 + i, _day(DAYS - 1)) for i in range(SALE_ITEMS, ITEMS)} <= flagged  # the unexpected empty day
    assert len(flagged) <= len(rows) // 4
    for item, day, value, expected, lower, upper, is_anomaly, score in rows:
        assert expected == pytest.approx(saved[(item, day)][2])
        assert lower <= saved[(item, day)][3] + 1e-9 and upper >= saved[(item, day)][4] - 1e-9  # 99% wider than 95%
        assert is_anomaly == (not lower <= value <= upper) and (score > 2.5758 - 1e-6) == is_anomaly
    with pytest.raises(Exception, match=r"argument 'model': no forecast is saved under 'weekly_plann'. "
                                        r"Did you mean 'weekly_plan'"):
        shop.execute("FROM detect_anomalies('arrived', model := 'weekly_plann')").fetchall()
    with pytest.raises(Exception, match=r"argument 'relation': no row of 'history' falls on an \(item, date\)"):
        shop.execute("FROM detect_anomalies('history', model := 'weekly_plan')").fetchall()


def test_explain_forecast_gives_each_driver_its_part_of_the_global_forecast(shop):
    shop.execute(f"CREATE TABLE plan AS SELECT product_id, DATE '{_day(DAYS)}' + k::INTEGER AS day, "
                 "CAST(k = 1 AS INTEGER) AS promo FROM (SELECT DISTINCT product_id FROM sales), range(7) t(k)")
    shop.execute("CREATE TABLE sales_promo AS SELECT *, 0 AS promo FROM sales")
    rel = shop.sql("FROM explain_forecast('sales_promo', 7, value := 'units', features := ['promo'], "
                   "future := 'plan', events := 'calendar', holidays := 'US') ORDER BY item, date")
    assert rel.types[0] == "BIGINT" and rel.columns[8] == "drivers"
    rows = rel.fetchall()
    assert len(rows) == ITEMS * H and {r[10] for r in rows} == {"gbm"}
    for item, day, forecast, level, trend, season, yearly, holiday, drivers, residual, _ in rows:
        assert set(drivers) == {"promo", "sale", "closed"}
        assert forecast == pytest.approx(level + trend + season + yearly + holiday + sum(drivers.values()) + residual)
        assert drivers["promo"] == pytest.approx(0)  # never varied in the history: the model cannot use it
    parts = {(r[0], r[1]): r[8] for r in rows}
    usual = np.mean([r[3] for r in rows])
    for i in range(ITEMS):
        assert parts[(100 + i, _day(DAYS + 5))]["closed"] < -0.5 * usual  # the closing day takes demand away
        sale = parts[(100 + i, _day(DAYS + 3))]["sale"]
        assert sale > 0.5 * usual if i < SALE_ITEMS else abs(sale) < 0.2 * usual
    gbm = {(r[0], r[1]): r[2] for r in shop.execute(
        "FROM forecast_demand('sales_promo', 7, value := 'units', method := 'gbm', features := ['promo'], "
        "future := 'plan', events := 'calendar', holidays := 'US')").fetchall()}
    assert [max(r[2], 0) for r in rows] == pytest.approx([gbm[(r[0], r[1])] for r in rows])
    with pytest.raises(Exception, match=r"argument 'method': features, holidays and events are inputs of the gbm"):
        shop.execute("FROM explain_forecast('sales', 7, method := 'ets', events := 'calendar')").fetchall()


def test_plot_forecast_draws_the_drivers_under_the_forecast(shop, tmp_path):
    from warehouse_ml.functions.forecast_plot import plot_forecast

    shop.execute("CREATE TABLE priced AS SELECT *, 2.0 + (dayofweek(day) = 5)::INTEGER AS price FROM sales")
    shop.execute(f"CREATE TABLE price_plan AS SELECT DISTINCT product_id, DATE '{_day(DAYS)}' + k::INTEGER AS day, "
                 "2.0 AS price FROM sales, range(7) t(k)")
    out = plot_forecast(shop, "priced", 103, 7, str(tmp_path / "drivers.png"), value="units", method="gbm",
                        features=["price"], future="price_plan", history=60)
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (1100, 660)  # the two-panel figure: forecast above, drivers below
