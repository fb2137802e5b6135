"""price_elasticity / optimal_price: known answers against statsmodels OLS, recovery of known elasticities,
items with too little price variation, excluded rows, and the profit optimum against a brute-force search."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import warehouse_ml as wml
from warehouse_ml.tasks import pricing as pr

N_ITEMS, N_DAYS = 50, 60


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = wml.connect(str(tmp_path_factory.mktemp("pr") / "prices.duckdb"))
    s = pr.simulate_prices(N_ITEMS, N_DAYS, seed=5)
    truth = pd.DataFrame({"sku": [f"sku_{i:03d}" for i in range(N_ITEMS)], "true_elasticity": s.pop("true_elasticity")})
    sales = pd.DataFrame(s).rename(columns={"item": "sku"})
    con.execute("""CREATE TABLE sales AS SELECT sku, DATE '2024-01-01' + CAST(day AS INTEGER) AS sale_date,
                   price, units, unit_cost FROM sales""")
    con.execute("CREATE TABLE truth AS SELECT * FROM truth")
    # awkward items: a constant price, a price that barely moves, and rows that cannot enter a log-log fit
    con.execute("""INSERT INTO sales SELECT 'flat', DATE '2024-01-01' + CAST(i AS INTEGER), 9.99, 10 + i % 3, 4.0 FROM range(30) t(i)""")
    con.execute("""INSERT INTO sales SELECT 'sticky', DATE '2024-01-01' + CAST(i AS INTEGER), 10 + (i % 2) * 0.01, 10 + i % 3, 4.0
                   FROM range(30) t(i)""")
    con.execute("""INSERT INTO sales VALUES ('sku_000', DATE '2023-12-01', 0, 5, 1), ('sku_000', DATE '2023-12-02', 10, 0, 1),
                   ('sku_000', DATE '2023-12-03', -3, 5, 1), ('sku_000', DATE '2023-12-04', NULL, 5, 1)""")
    yield con
    con.close()


def test_matches_statsmodels_ols(con):
    got = con.sql("FROM price_elasticity('sales', item := 'sku', price := 'price', units := 'units')").df().set_index("item")
    df = con.sql("SELECT * FROM sales WHERE price > 0 AND units > 0").df()
    for sku in ("sku_000", "sku_017", "sku_049"):
        part = df[df.sku == sku]
        fit = sm.OLS(np.log(part.units.to_numpy()), sm.add_constant(np.log(part.price.to_numpy()))).fit()
        row = got.loc[sku]
        assert row.elasticity == pytest.approx(fit.params[1], rel=1e-10)
        assert row.ci_low == pytest.approx(fit.conf_int()[1][0], rel=1e-10)
        assert row.ci_high == pytest.approx(fit.conf_int()[1][1], rel=1e-10)
        assert row.r2 == pytest.approx(fit.rsquared, rel=1e-10)
        assert row.n == len(part)
    assert got.loc["sku_000"].n_excluded == 4
    assert "4 rows with NULL, zero or negative price or units excluded" in got.loc["sku_000"].note


def test_too_little_price_variation_says_so(con):
    got = con.sql("FROM price_elasticity('sales')").df().set_index("item")  # sku/price/units inferred
    for sku, words in (("flat", "single price"), ("sticky", "varied too little")):
        assert pd.isna(got.loc[sku].elasticity) and pd.isna(got.loc[sku].ci_low)
        assert words in got.loc[sku].note
    opt = con.sql("FROM optimal_price('sales', cost := 'unit_cost')").df().set_index("item")
    assert pd.isna(opt.loc["flat"].optimal_price) and "single price" in opt.loc["flat"].note


def test_recovers_known_elasticities(con):
    cover = con.execute("""SELECT avg(CASE WHEN t.true_elasticity BETWEEN e.ci_low AND e.ci_high THEN 1 ELSE 0 END)
                           FROM price_elasticity('sales', item := 'sku') e JOIN truth t ON t.sku = e.item""").fetchall()[0][0]
    assert cover >= 0.9
    # and over 50 independent seeds of a single item, through the kernel
    hits = 0
    for seed in range(50):
        s = pr.simulate_prices(1, 80, seed=1000 + seed, elasticity=-1.8)
        fit = pr.fit_elasticity(np.zeros(80, np.int64), 1, s["price"], s["units"])
        hits += fit.ci_low[0] <= -1.8 <= fit.ci_high[0]
    assert hits >= 45


def test_optimal_price_maximises_profit_in_the_observed_range(con):
    opt = con.sql("FROM optimal_price('sales', cost := 'unit_cost')").df().set_index("item")
    df = con.sql("SELECT * FROM sales WHERE price > 0 AND units > 0").df()
    for sku in ("sku_001", "sku_002", "sku_003", "sku_004", "sku_005"):
        part = df[df.sku == sku]
        x, y = np.log(part.price.to_numpy()), np.log(part.units.to_numpy())
        fit = sm.OLS(y, sm.add_constant(x)).fit()
        a, b = fit.params
        smear = np.mean(np.exp(fit.resid))
        cost = part.unit_cost.mean()
        grid = np.linspace(part.price.min(), part.price.max(), 20001)
        units = smear * np.exp(a) * grid ** b
        profit = (grid - cost) * units
        row = opt.loc[sku]
        assert part.price.min() - 1e-9 <= row.optimal_price <= part.price.max() + 1e-9
        assert row.expected_profit >= profit.max() - 1e-6 * abs(profit.max())
        assert row.expected_profit == pytest.approx((row.optimal_price - cost) * smear * np.exp(a) * row.optimal_price ** b)
        latest = part[part.sale_date == part.sale_date.max()].price.mean()
        assert row.current_price == pytest.approx(latest)
        assert row.current_profit <= row.expected_profit + 1e-9
        assert row.unit_cost == pytest.approx(cost)
        assert "latest 'sale_date'" in row.note


def test_unconstrained_optimum_and_explicit_bounds(con):
    free = con.sql("FROM optimal_price('sales', cost := 'unit_cost', within_observed := false)").df().set_index("item")
    el = free.elasticity
    elastic = free[el < -1.05]
    expected = elastic.unit_cost * elastic.elasticity / (1 + elastic.elasticity)
    np.testing.assert_allclose(elastic.optimal_price, expected, rtol=1e-10)
    inelastic = free[(el > -1) & el.notna()]
    assert inelastic.optimal_price.isna().all() and inelastic.note.str.contains("max_price").all()
    capped = con.sql("FROM optimal_price('sales', cost := 2.0, min_price := 10, max_price := 20)").df()
    ok = capped.optimal_price.notna()
    assert ok.any() and capped.optimal_price[ok].between(10, 20).all()


def test_single_item_relation_and_bad_input(tmp_path):
    con = wml.connect(str(tmp_path / "one.duckdb"))
    s = pr.simulate_prices(1, 40, seed=3, elasticity=-2.0)
    one = pd.DataFrame({"price": s["price"], "qty": s["units"]})
    con.execute("CREATE TABLE one AS SELECT * FROM one")
    row = con.sql("FROM price_elasticity('one')").df().iloc[0]  # no item column: the whole relation is one item
    assert row["item"] == "all" and row["ci_low"] <= -2.0 <= row["ci_high"]
    con.execute("CREATE TABLE words AS SELECT 'a' AS sku, 'cheap' AS price, 3 AS units")
    with pytest.raises(Exception, match="argument 'price'.*not a number"):
        con.sql("FROM price_elasticity('words', item := 'sku', price := 'price', units := 'units')").fetchall()
    with pytest.raises(Exception, match="argument 'alpha'"):
        con.sql("FROM price_elasticity('one', alpha := 2)").fetchall()
    with pytest.raises(Exception, match="has no column 'cst'"):
        con.sql("FROM optimal_price('one', cost := 'cst')").fetchall()
    con.execute("CREATE TABLE two AS SELECT price, qty, price * 2 AS list_price FROM one")
    with pytest.raises(Exception, match="AmbiguousColumn.*price"):
        con.sql("FROM price_elasticity('two')").fetchall()
