"""key_drivers: planted drivers found first, known answers (sums, Wald tests, Holm), the noise rate, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats import proportion

import warehouse_ml as wml
from warehouse_ml.demo.run import CONVERSION_DRIVERS, RECENT_SESSIONS
from warehouse_ml.demo.shop import generate_shop
from warehouse_ml.integrations.report import build_report
from warehouse_ml.tasks import drivers as kd

DIMS = ["channel", "category", "region", "device"]
DRIVER = (("channel", "paid_search"), ("device", "mobile"))
DIMS_SQL = "dimensions := ['channel', 'category', 'region', 'device']"
PERIODS = "period := 'period', test := 'test', control := 'control'"


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = wml.connect(str(tmp_path_factory.mktemp("drivers") / "drivers.duckdb"))
    sales = pd.DataFrame(kd.simulate_sales(40_000, seed=1, drivers={DRIVER: 0.5}))
    visits = pd.DataFrame(kd.simulate_sales(40_000, seed=2, drivers={DRIVER: 0.4}, ratio=True))
    con.execute("CREATE TABLE sales AS SELECT row_number() OVER () AS order_id, * FROM sales")
    con.execute("CREATE TABLE visits AS SELECT * FROM visits")
    yield con
    con.close()


def _drivers(con, sql):
    return con.sql(sql).df()


def test_planted_driver_is_found_first_and_explains_its_parents(con):
    df = _drivers(con, f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}) ORDER BY rank")
    top = df.iloc[0]
    assert top["segment"] == "channel=paid_search AND device=mobile"
    assert top["significant"] and pd.isna(top["explained_by"]) and top["depth"] == 2
    assert dict(top["dimensions"]) == {"channel": "paid_search", "device": "mobile"}
    assert top["relative_change"] == pytest.approx(-0.5, abs=0.05)  # the planted factor is 0.5
    assert top["description"].startswith("channel=paid_search and device=mobile explains ")
    assert "of the drop in revenue" in top["description"]
    by_segment = df.set_index("segment")
    for parent in ("channel=paid_search", "device=mobile"):  # the parents' change is the child's
        assert by_segment.loc[parent, "explained_by"] == top["segment"]
    # no segment disjoint from the planted one is significant: every significant segment holds some of its rows
    planted = dict(DRIVER)
    for dims in df[df.significant].dimensions:
        assert all(planted.get(k, v) == v for k, v in dict(dims).items()), dims
    assert (~df.significant).sum() > 100


def test_summable_values_and_tests_equal_direct_computation(con):
    df = _drivers(con, f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, max_depth := 2)")
    raw = con.sql("FROM sales").df()
    assert df.depth.max() == 2 and (df.share_of_rows >= 0.01).all()
    assert df["rank"].tolist() == list(range(1, len(df) + 1))
    total = raw[raw.period == "test"].revenue.sum() - raw[raw.period == "control"].revenue.sum()
    for dim in DIMS:  # the values of one dimension partition the rows: their contributions add up
        assert df[df.segment.str.match(f"^{dim}=[^ ]+$")].contribution.sum() == pytest.approx(total, rel=1e-9)
    row = df.set_index("segment").loc["category=home AND region=east"]
    seg = raw[(raw.category == "home") & (raw.region == "east")]
    c, t = seg[seg.period == "control"].revenue, seg[seg.period == "test"].revenue
    assert (row.control_value, row.test_value) == (pytest.approx(c.sum()), pytest.approx(t.sum()))
    assert (row.n_control, row.n_test) == (len(c), len(t))
    assert row.share_of_change == pytest.approx((t.sum() - c.sum()) / total)
    z = (t.sum() - c.sum()) / np.sqrt((c ** 2).sum() + (t ** 2).sum())
    assert row.p_value_raw == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert df.p_value.to_numpy() == pytest.approx(multipletests(df.p_value_raw, method="holm")[1], rel=1e-9)


def test_ratio_metric_splits_into_rate_and_mix_and_matches_the_wald_test(con):
    df = _drivers(con, f"FROM key_drivers('visits', metric := 'purchased', denominator := '*', {DIMS_SQL}, {PERIODS})"
                       " ORDER BY rank")
    assert df.iloc[0]["segment"] == "channel=paid_search AND device=mobile"
    assert "rate effect" in df.iloc[0]["description"] and "purchased per row" in df.iloc[0]["description"]
    raw = con.sql("FROM visits").df()
    r = raw.groupby("period").purchased.mean()
    for dim in DIMS:
        assert df[df.segment.str.match(f"^{dim}=[^ ]+$")].contribution.sum() == pytest.approx(r["test"] - r["control"], rel=1e-9)
    assert (df.rate_effect + df.mix_effect).to_numpy() == pytest.approx(df.contribution.to_numpy(), rel=1e-12)
    row = df.set_index("segment").loc["channel=email AND device=desktop"]
    seg = raw[(raw.channel == "email") & (raw.device == "desktop")]
    c, t = seg[seg.period == "control"].purchased, seg[seg.period == "test"].purchased
    assert (row.control_value, row.test_value) == (pytest.approx(c.mean()), pytest.approx(t.mean()))
    ref = proportion.test_proportions_2indep(t.sum(), len(t), c.sum(), len(c), method="wald", compare="diff")
    assert row.p_value_raw == pytest.approx(ref.pvalue, rel=1e-9)


def test_a_denominator_column_gives_the_same_rates_as_rows(con):
    con.execute("""CREATE OR REPLACE TABLE visits_daily AS SELECT channel, category, region, device, period,
                   sum(purchased) AS purchases, count(*) AS sessions FROM visits GROUP BY ALL""")
    rows = _drivers(con, f"FROM key_drivers('visits', metric := 'purchased', denominator := '*', {DIMS_SQL}, {PERIODS})")
    agg = _drivers(con, f"FROM key_drivers('visits_daily', metric := 'purchases', denominator := 'sessions', {DIMS_SQL}, "
                        f"{PERIODS}, min_support := 0.0001)").set_index("segment")
    common = rows.set_index("segment").loc[:, ["control_value", "test_value", "contribution", "mix_effect"]]
    assert common.to_numpy() == pytest.approx(agg.loc[common.index, common.columns].to_numpy(), rel=1e-9)
    assert "purchases per sessions" in agg.description.iloc[0]


def _cells(data: dict, metric: str) -> kd.CellTable:
    """The aggregation the SQL entry does in DuckDB, here in NumPy for many small simulated samples."""
    codes = [np.unique(data[d].astype(str), return_inverse=True) for d in DIMS]
    key = np.stack([inv for _, inv in codes] + [data["period"] == "test"], axis=1)
    cells, inverse = np.unique(key, axis=0, return_inverse=True)
    y = data[metric].astype(float)
    sums = {"n": np.bincount(inverse), "y": np.bincount(inverse, y), "yy": np.bincount(inverse, y * y)}
    return kd.CellTable([cells[:, j] for j in range(len(DIMS))], [list(lab) for lab, _ in codes],
                        cells[:, -1].astype(bool), sums)


def test_two_planted_drivers_of_different_depths_rank_first_over_seeds():
    planted = {(("category", "beauty"),): 1.5, (("channel", "email"), ("region", "west")): 0.4}
    for seed in range(4):
        rows = kd.key_drivers(_cells(kd.simulate_sales(40_000, seed=seed, drivers=planted), "revenue"), DIMS,
                              "revenue").rows.to_pandas()
        assert set(rows.segment[:2]) == {"category=beauty", "channel=email AND region=west"}, seed
        assert rows.significant[:2].all() and rows.explained_by[:2].isna().all()
        slices = rows[rows.segment.str.startswith("category=beauty AND ") & rows.significant]
        assert len(slices) and (slices.explained_by == "category=beauty").all()  # slices of a wider change


@pytest.mark.slow
def test_pure_noise_yields_significant_segments_at_most_at_the_stated_rate():
    seeds, alpha = 150, 0.1
    any_holm, any_bh, raw_p = 0, 0, []
    for seed in range(seeds):
        cells = _cells(kd.simulate_sales(3000, seed=100 + seed), "revenue")
        holm = kd.key_drivers(cells, DIMS, "revenue", max_depth=2, alpha=alpha, min_support=0.02).rows
        bh = kd.key_drivers(cells, DIMS, "revenue", max_depth=2, alpha=alpha, min_support=0.02, correction="bh").rows
        any_holm += bool(np.any(holm.column("significant").to_numpy(zero_copy_only=False)))
        any_bh += bool(np.any(bh.column("significant").to_numpy(zero_copy_only=False)))
        raw_p.append(holm.column("p_value_raw").to_numpy())
    margin = 2.5 * np.sqrt(alpha * (1 - alpha) / seeds)
    assert any_holm / seeds <= alpha + margin  # family-wise error over every segment tried
    assert any_bh / seeds <= alpha + margin  # under pure noise the false discovery rate is the same rate
    raw_p = np.concatenate(raw_p)
    assert len(raw_p) > 50 * seeds
    assert 0.04 <= np.mean(raw_p < 0.05) <= 0.06  # the per-segment test itself is calibrated


def test_nulls_periods_and_quoted_names(con):
    con.execute("""CREATE OR REPLACE TABLE "odd sales" AS SELECT
                   CASE WHEN region = 'west' THEN NULL ELSE channel END AS "Sales Channel", device AS "dev""ice",
                   period = 'test' AS is_new, CASE WHEN row_number() OVER () % 50 = 0 THEN NULL ELSE revenue END AS rev
                   FROM sales UNION ALL SELECT 'x', 'y', NULL, 1.0""")
    df = _drivers(con, """FROM key_drivers('"odd sales"', metric := 'rev', dimensions := ['sales channel', 'dev"ice'],
                          period := 'is_new')""")
    assert '"Sales Channel" IS NULL' not in df.segment.tolist()
    assert "Sales Channel IS NULL" in df.segment.tolist()
    assert any(s.startswith('dev"ice=') for s in df.segment)
    notes = df.notes.iloc[0]
    assert "1 rows outside both periods ignored" in notes and "800 rows with a missing (NULL, NaN or infinite) metric or denominator excluded" in notes
    null_row = df.set_index("segment").loc["Sales Channel IS NULL"]
    assert dict(null_row.dimensions) == {"Sales Channel": None}


@pytest.mark.parametrize("sql, argument, words", [
    ("FROM key_drivers('sales; DROP TABLE sales', metric := 'revenue', dimensions := ['channel'], period := 'period')",
     "UnknownRelation", "no table or view named"),
    (f"FROM key_drivers('sales', metric := 'revenu', {DIMS_SQL}, {PERIODS})", "argument 'metric'", "Did you mean 'revenue'"),
    (f"FROM key_drivers('sales', metric := 'channel', {DIMS_SQL}, {PERIODS})", "argument 'metric'", "not a number"),
    (f"FROM key_drivers('sales', {DIMS_SQL}, {PERIODS})", "argument 'metric'", "is required"),
    (f"FROM key_drivers('sales', metric := 'revenue', dimensions := ['chanel'], {PERIODS})", "argument 'dimensions'",
     "Did you mean 'channel'"),
    (f"FROM key_drivers('sales', metric := 'revenue', dimensions := ['channel', 'period'], {PERIODS})",
     "argument 'dimensions'", "also the period column"),
    (f"FROM key_drivers('sales', metric := 'revenue', dimensions := ['channel', 'channel'], {PERIODS})",
     "argument 'dimensions'", "listed twice"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, period := 'period', test := 'tset', control := 'control')",
     "argument 'test'", "Did you mean 'test'"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, period := 'period', test := 'test')",
     "argument 'control'", "is required"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, period := 'period', test := 'test', control := 'test')",
     "argument 'control'", "same value as test"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, max_depth := 0)", "argument 'max_depth'",
     "from 1 to 6"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, min_support := 1.5)",
     "argument 'min_support'", "strictly between 0 and 1"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, correction := 'magic')",
     "argument 'correction'", "Use 'holm'"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, alpha := 2)", "argument 'alpha'",
     "strictly between 0 and 1"),
    (f"FROM key_drivers('sales', metric := 'revenue', dimensions := ['channel', 'order_id'], {PERIODS})",
     "argument 'dimensions'", "raise max_values"),
    (f"FROM key_drivers('sales', metric := 'revenue', {DIMS_SQL}, {PERIODS}, min_support := 0.0001, max_segments := 100)",
     "argument 'max_segments'", "Raise min_support, lower max_depth"),
])
def test_bad_arguments_name_the_argument_and_the_fix(con, sql, argument, words):
    with pytest.raises(Exception) as e:
        con.sql(sql).fetchall()
    assert argument in str(e.value) and words in str(e.value)
    assert con.execute("SELECT count(*) FROM sales").fetchall() == [(40_000,)]


def test_demo_shop_planted_driver_is_found(tmp_path):
    con = wml.connect(str(tmp_path / "shop.duckdb"))
    truth = generate_shop(con, users=5000, seed=0)
    assert truth["params"]["driver_conv_effect_paid_search_mobile"] < 0
    wml.sql(con, RECENT_SESSIONS)
    wml.sql(con, CONVERSION_DRIVERS)
    top = con.execute("SELECT segment, significant, test_value < control_value FROM conversion_drivers "
                      "ORDER BY rank LIMIT 1").fetchone()
    assert top == ("traffic_source=paid_search AND device=mobile", True, True)
    page = build_report(con, "shop")
    section = page.split("<h2>Key drivers: conversion_drivers</h2>")[1].split("</section>")[0]
    assert "data:image/png;base64," in section and "traffic_source=paid_search AND device=mobile" in section
    con.close()


def test_too_many_combinations_are_refused_before_reading_the_data(con):
    cols = ", ".join(f"i % 2 AS c{j}" for j in range(32))
    con.execute(f"CREATE OR REPLACE TABLE wide AS SELECT {cols}, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS period, "
                "1.0 AS revenue FROM range(10) t(i)")
    dims = ", ".join(f"'c{j}'" for j in range(32))
    with pytest.raises(Exception, match=r"argument 'dimensions': 32 dimensions up to max_depth := 3 make 5,488 "
                                        r"combinations.*Pass fewer dimensions or lower max_depth"):
        con.sql(f"FROM key_drivers('wide', metric := 'revenue', dimensions := [{dims}], period := 'period', "
                "test := 'a', control := 'b')").fetchall()
    ok = con.sql(f"FROM key_drivers('wide', metric := 'revenue', dimensions := [{dims}], period := 'period', "
                 "test := 'a', control := 'b', max_depth := 2)").fetchall()
    assert len(ok) > 0
