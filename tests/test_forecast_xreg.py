"""method := 'xreg' on DuckDB files: a planted multiplicative promotion and price elasticity recovered (the panel's
effect where a product never had a promotion), explanations that sum to the forecast, and errors that name the
argument."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import forecast as K
from warehouse_ml.tasks.forecast.xreg import fit_effects

START = dt.date(2023, 1, 2)
DAYS, H, ITEMS = 420, 14, 24
LIFT, ELASTICITY = 2.0, -1.2
NEVER = 123  # the one product without a promotion in its history
PROMO_DAYS = (3, 4, 10)  # horizon days on promotion, for every product
DEAR_DAY = 7  # the horizon day with the price 30% above its usual 5.0


def _day(k: int) -> dt.date:
    return START + dt.timedelta(days=k)


def _simulate(seed: int = 5):
    """(units, promo, price), each ``(ITEMS, DAYS + H)``: demand = level x weekday x LIFT on promotion x
    price^ELASTICITY x Poisson noise."""
    rng = np.random.default_rng(seed)
    T = DAYS + H
    promo = (rng.random((ITEMS, T)) < 0.08).astype(float)
    promo[NEVER - 100, :DAYS] = 0
    promo[:, DAYS:] = 0
    promo[:, [DAYS + d for d in PROMO_DAYS]] = 1
    price = np.exp(rng.normal(0, 0.1, (ITEMS, T // 14 + 1))).repeat(14, axis=1)[:, :T] * 5.0
    price[:, DAYS:] = 5.0
    price[:, DAYS + DEAR_DAY] = 6.5
    level = rng.uniform(10, 40, (ITEMS, 1)) * np.exp(rng.normal(0, 0.15, (ITEMS, 7)))[:, np.arange(T) % 7]
    mu = level * np.where(promo > 0, LIFT, 1.0) * (price / 5.0) ** ELASTICITY
    return rng.poisson(mu).astype(float), promo, price


@pytest.fixture
def shop(tmp_path):
    units, promo, price = _simulate()
    c = wml.connect(str(tmp_path / "promo.duckdb"))
    item = np.repeat(np.arange(100, 100 + ITEMS), DAYS + H)
    day = np.tile(np.array([_day(k) for k in range(DAYS + H)], dtype="datetime64[D]"), ITEMS)
    past = np.tile(np.arange(DAYS + H) < DAYS, ITEMS)
    c.register("src", pa.table({"product_id": pa.array(item, pa.int64()), "day": pa.array(day, pa.date32()),
                                "units": units.ravel(), "promo": promo.ravel().astype(np.int32),
                                "price": price.ravel(), "past": past}))
    c.execute("CREATE TABLE sales AS SELECT product_id, day, units, promo, price FROM src WHERE past")
    c.execute("CREATE TABLE plan AS SELECT product_id, day, promo, price FROM src WHERE NOT past")
    c.unregister("src")
    yield c
    c.close()


def test_a_planted_promotion_and_price_elasticity_are_recovered():
    units, promo, price = _simulate()
    lens = np.full(ITEMS, DAYS)
    drv = np.stack([promo, price], axis=2)
    start = np.full(ITEMS, np.datetime64(START, "D").astype(np.int64))
    effects = fit_effects(units[:, :DAYS], lens, K.Drivers(drv[:, :DAYS], drv[:, DAYS:], np.zeros(0, np.int64),
                                                           ("promo", "price")), lens, 7, start, start, "daily")
    lift, elasticity = effects.coef[:, 0], effects.coef[:, 1]
    assert np.median(lift) == pytest.approx(np.log(LIFT), abs=0.05)
    assert np.all(np.abs(lift - np.log(LIFT)) < 0.2)
    assert np.median(elasticity) == pytest.approx(ELASTICITY, abs=0.15)
    # the product that never had a promotion gets the panel's effect, not none
    assert lift[NEVER - 100] == pytest.approx(np.median(lift), abs=0.05)
    ahead = effects.log_mult[:, DAYS:]  # the horizon: one price, promotions on PROMO_DAYS
    assert ahead[:, PROMO_DAYS[0]] - ahead[:, 0] == pytest.approx(lift, abs=1e-9)


def test_xreg_forecasts_the_promotion_days_and_explains_them(shop):
    rows = shop.execute("FROM forecast_demand('sales', 14, value := 'units', method := 'xreg', "
                        "features := ['promo', 'price'], future := 'plan', holidays := 'US') "
                        "ORDER BY item, date").fetchall()
    assert len(rows) == ITEMS * H and all(r[5].startswith("xreg_") for r in rows)
    assert all(r[3] <= r[2] <= r[4] for r in rows)
    fc = {(r[0], r[1]): r[2] for r in rows}
    for i in range(ITEMS):
        on = np.mean([fc[(100 + i, _day(DAYS + d))] for d in PROMO_DAYS])
        off = np.mean([fc[(100 + i, _day(DAYS + d))] for d in range(H) if d not in PROMO_DAYS + (DEAR_DAY,)])
        assert 1.6 < on / off < 2.5  # weekdays differ between the two sets: the lift within 2 +- the weekly swing
    rel = shop.sql("FROM explain_forecast('sales', 14, value := 'units', method := 'xreg', "
                   "features := ['promo', 'price'], future := 'plan', holidays := 'US') ORDER BY item, date")
    assert rel.types[0] == "BIGINT"
    parts = rel.fetchall()
    assert [r[2] for r in parts] == pytest.approx([fc[(r[0], r[1])] for r in parts])
    for item, day, forecast, level, trend, season, yearly, holiday, drivers, residual, method in parts:
        assert set(drivers) == {"promo", "price"} and method.startswith("xreg_")
        assert holiday == 0  # no US holiday in the horizon (2024-02-26 .. 2024-03-10), a day before or after
        assert forecast == pytest.approx(level + trend + season + yearly + holiday + sum(drivers.values()) + residual)
        step = (day - START).days - DAYS
        if step == DEAR_DAY:  # 1.3^-1.2 = 0.73: the dearer day loses about a third of its demand without it
            assert -0.5 * forecast < drivers["price"] < -0.2 * forecast
        else:
            assert abs(drivers["price"]) < 0.1 * forecast  # the plan holds the usual price (within its noise)
        on_promotion = step in PROMO_DAYS
        assert drivers["promo"] == pytest.approx(forecast * 0.5, rel=0.2) if on_promotion else drivers["promo"] == 0


def test_auto_with_drivers_weighs_the_regression(shop):
    rows = shop.execute("FROM forecast_demand('sales', 14, value := 'units', features := ['promo', 'price'], "
                        "future := 'plan')").fetchall()
    assert any("xreg_" in r[5] for r in rows)  # the planted effects decide for a driver-aware candidate


@pytest.mark.parametrize("call, pattern", [
    ("forecast_demand('sales', 14, value := 'units', method := 'xreg')",
     r"argument 'features': method := 'xreg' is a regression on drivers, and none were given.*holidays := 'US'"),
    ("explain_forecast('sales', 14, value := 'units', method := 'xreg')",
     r"argument 'features': method := 'xreg' is a regression on drivers, and none were given"),
    ("forecast_demand('sales', 14, value := 'units', method := 'theta', features := ['promo'], future := 'plan')",
     r"argument 'method': features, future, holidays and events are inputs of method := 'gbm' and 'xreg'"),
    ("backtest_demand('sales', 14, value := 'units', method := 'xreg')",
     r"argument 'features': method := 'xreg' is a regression on drivers.*forecast_demand and explain_forecast take"),
    ("forecast_demand('sales', 14, value := 'units', method := 'xreg', features := ['promo'])",
     r"argument 'future': features need their values over the horizon"),
])
def test_xreg_errors_name_the_argument_and_the_fix(shop, call, pattern):
    with pytest.raises(Exception, match=pattern):
        shop.execute(f"FROM {call}").fetchall()
