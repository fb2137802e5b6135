"""ab_test / ab_sample_size: known answers against statsmodels and scipy, recovery of a known lift, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

import warehouse_ml as wml
from warehouse_ml.errors import InvalidArgument
from warehouse_ml.tasks import abtest as ab


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = wml.connect(str(tmp_path_factory.mktemp("ab") / "ab.duckdb"))
    exp = pd.DataFrame(ab.simulate_experiment(6000, lift=0.02, baseline=0.1, seed=11))
    exp3 = pd.DataFrame(ab.simulate_experiment(9000, lift=0.02, baseline=0.1, seed=12, variants=("A", "B", "C")))
    con.execute("CREATE TABLE experiment AS SELECT * FROM exp")
    con.execute("CREATE TABLE experiment3 AS SELECT * FROM exp3")
    yield con
    con.close()


def _rows(con, sql):
    return {r["variant"]: r for r in con.sql(sql).df().to_dict("records")}


def _groups(con, table, col, cov=None):
    df = con.sql(f"SELECT * FROM {table}").df()
    return df, {v: g for v, g in df.groupby("variant")}


def test_two_proportion_z_test_matches_statsmodels(con):
    rows = _rows(con, "FROM ab_test('experiment', variant := 'variant', metric := 'converted', control := 'A')")
    _, g = _groups(con, "experiment", "converted")
    ct, nt, cc, nc = g["B"].converted.sum(), len(g["B"]), g["A"].converted.sum(), len(g["A"])
    b = rows["B"]
    assert b["test"] == "two-proportion z-test" and rows["A"]["is_control"] and not b["is_control"]
    assert b["n"] == nt and rows["A"]["n"] == nc
    assert b["p_value"] == pytest.approx(proportions_ztest([ct, cc], [nt, nc])[1], rel=1e-12, abs=1e-300)
    lo, hi = confint_proportions_2indep(ct, nt, cc, nc, compare="diff", method="wald", alpha=0.05)
    assert (b["ci_low"], b["ci_high"]) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert b["lift"] == pytest.approx(ct / nt - cc / nc, rel=1e-12)
    assert b["relative_lift"] == pytest.approx((ct / nt) / (cc / nc) - 1, rel=1e-12)
    assert b["relative_ci_low"] < b["relative_lift"] < b["relative_ci_high"]
    assert b["significant"] == (b["p_value"] < 0.05)
    assert b["srm_p_value"] == pytest.approx(stats.chisquare([nc, nt]).pvalue, rel=1e-12)


def test_welch_t_test_matches_scipy(con):
    rows = _rows(con, "FROM ab_test('experiment', metric := 'revenue', alpha := 0.1)")  # variant and control inferred
    _, g = _groups(con, "experiment", "revenue")
    ref = stats.ttest_ind(g["B"].revenue, g["A"].revenue, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    b = rows["B"]
    assert b["test"] == "Welch t-test"
    assert b["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert (b["ci_low"], b["ci_high"]) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))
    assert b["mean"] == pytest.approx(g["B"].revenue.mean(), rel=1e-12)


def test_cuped_matches_direct_computation_and_narrows_the_interval(con):
    rows = _rows(con, "FROM ab_test('experiment', variant := 'variant', metric := 'revenue', covariate := 'pre_revenue')")
    plain = _rows(con, "FROM ab_test('experiment', variant := 'variant', metric := 'revenue')")
    df, _ = _groups(con, "experiment", "revenue")
    x, y = df.pre_revenue.to_numpy(), df.revenue.to_numpy()
    theta = np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1)
    adj = y - theta * (x - x.mean())
    t, c = adj[df.variant == "B"], adj[df.variant == "A"]
    ref = stats.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval()
    b = rows["B"]
    assert b["test"] == "Welch t-test (CUPED)"
    assert b["lift"] == pytest.approx(t.mean() - c.mean(), rel=1e-10)
    assert b["p_value"] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    assert (b["ci_low"], b["ci_high"]) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    assert b["ci_high"] - b["ci_low"] < 0.5 * (plain["B"]["ci_high"] - plain["B"]["ci_low"])
    assert "CUPED" in b["notes"]


def test_three_variants_holm_adjusted(con):
    rows = _rows(con, "FROM ab_test('experiment3', variant := 'variant', metric := 'revenue', control := 'A')")
    _, g = _groups(con, "experiment3", "revenue")
    refs = [stats.ttest_ind(g[v].revenue, g["A"].revenue, equal_var=False) for v in ("B", "C")]
    adj = multipletests([r.pvalue for r in refs], method="holm")[1]
    for v, r, p in zip(("B", "C"), refs, adj):
        assert rows[v]["p_value_raw"] == pytest.approx(r.pvalue, rel=1e-10, abs=1e-300)
        assert rows[v]["p_value"] == pytest.approx(p, rel=1e-10, abs=1e-300)
        ci = r.confidence_interval(confidence_level=1 - 0.05 / 2)  # Bonferroni-widened
        assert rows[v]["ci_low"] == pytest.approx(ci.low, rel=1e-10)
    assert "Holm" in rows["B"]["notes"]
    n = [len(g[v]) for v in ("A", "B", "C")]
    assert rows["A"]["srm_p_value"] == pytest.approx(stats.chisquare(n).pvalue, rel=1e-12)


def test_srm_against_an_intended_split(con):
    con.execute("CREATE OR REPLACE TABLE uneven AS SELECT * FROM experiment WHERE variant = 'A' OR random() < 2")
    rows = _rows(con, "FROM ab_test('uneven', variant := 'variant', metric := 'converted', split := {'A': 0.3, 'B': 0.7})")
    n = np.array([rows["A"]["n"], rows["B"]["n"]], float)
    assert rows["B"]["srm_p_value"] == pytest.approx(stats.chisquare(n, n.sum() * np.array([0.3, 0.7])).pvalue, rel=1e-12)
    assert rows["B"]["srm_p_value"] < 1e-6  # the real split is even
    assert "sample ratio mismatch" in rows["B"]["notes"]


def test_null_metrics_are_excluded_and_counted(con):
    con.execute("""CREATE OR REPLACE TABLE holes AS
                   SELECT variant, CASE WHEN row_number() OVER () % 10 = 0 THEN NULL ELSE converted END AS converted
                   FROM experiment""")
    con.execute("INSERT INTO holes VALUES (NULL, 1), (NULL, 0)")
    rows = _rows(con, "FROM ab_test('holes', variant := 'variant', metric := 'converted')")
    assert "2 rows with a NULL variant excluded" in rows["A"]["notes"]
    con.execute("DELETE FROM holes WHERE variant IS NULL")
    total = con.execute("SELECT count(*), count(converted) FROM holes").fetchall()[0]
    assert rows["A"]["n"] + rows["B"]["n"] == total[1]
    assert rows["A"]["n_excluded"] + rows["B"]["n_excluded"] == total[0] - total[1] > 0
    assert f"{total[0] - total[1]} rows with a NULL or NaN metric excluded" in rows["A"]["notes"]
    # SRM counts every assigned row, NULL metric or not
    per = dict(con.execute("SELECT variant, count(*) FROM holes GROUP BY 1").fetchall())
    assert rows["A"]["srm_p_value"] == pytest.approx(stats.chisquare([per["A"], per["B"]]).pvalue, rel=1e-12)


@pytest.mark.parametrize("sql, argument", [
    ("FROM ab_test('experiment', variant := 'variant', metric := 'converted', control := 'Z')", "control"),
    ("FROM ab_test('experiment', variant := 'variant', metric := 'variant')", "metric"),
    ("FROM ab_test('experiment', variant := 'variant', metric := 'converted', alpha := 1.5)", "alpha"),
    ("FROM ab_test('experiment', variant := 'variant', metric := 'converted', alpha := 0)", "alpha"),
    ("FROM ab_test('one_arm', variant := 'variant', metric := 'converted')", "variant"),
    ("SELECT ab_sample_size(0.05, 0.01, power := 1.2)", "power"),
    ("SELECT ab_sample_size(0.05, 0.01, alpha := -0.1)", "alpha"),
    ("SELECT ab_sample_size(0.05, 0.0)", "min_detectable_effect"),
    ("SELECT ab_sample_size(0.99, 0.05)", "min_detectable_effect"),
])
def test_bad_input_names_the_argument(con, sql, argument):
    con.execute("CREATE OR REPLACE TABLE one_arm AS SELECT * FROM experiment WHERE variant = 'A'")
    with pytest.raises(Exception) as err:
        con.sql(sql).fetchall()
    assert f"argument '{argument}'" in str(err.value)


def test_unknown_metric_column_suggests():
    exp = pd.DataFrame({"variant": ["A", "B"] * 5, "converted": [0, 1] * 5})
    con = wml.connect()
    con.execute("CREATE TABLE e AS SELECT * FROM exp")
    with pytest.raises(Exception, match="Did you mean 'converted'"):
        con.sql("FROM ab_test('e', variant := 'variant', metric := 'convrted')").fetchall()


def test_sample_size_matches_statsmodels(con):
    cases = [(0.05, 0.01, 0.05, 0.8), (0.3, -0.05, 0.01, 0.9), (0.5, 0.2, 0.2, 0.5), (0.01, 0.001, 0.05, 0.8)]
    b, d, a, p = (np.array(c) for c in zip(*cases))
    raw = ab.sample_size(b, d, a, p)
    for (bb, dd, aa, pp), n in zip(cases, raw):
        ref = NormalIndPower().solve_power(proportion_effectsize(bb + dd, bb), alpha=aa, power=pp, ratio=1)
        assert n == pytest.approx(ref, rel=1e-8)
    con.execute("CREATE OR REPLACE TABLE plans AS SELECT * FROM (VALUES (0.05, 0.01, 0.05, 0.8), (0.3, -0.05, 0.01, 0.9),"
                " (0.5, 0.2, 0.2, 0.5), (0.01, 0.001, 0.05, 0.8), (NULL, 0.01, 0.05, 0.8)) t(b, d, a, p)")
    got = [r[0] for r in con.execute("SELECT ab_sample_size(b, d, alpha := a, power := p) FROM plans").fetchall()]
    assert got == [int(np.ceil(n)) for n in raw] + [None]
    assert con.execute("SELECT ab_sample_size(0.05, 0.01)").fetchall()[0][0] == 8143


def test_recovers_known_lift_in_90_percent_of_seeds():
    seeds = range(50)
    hits_conv = hits_rev = 0
    for s in seeds:
        d = ab.simulate_experiment(4000, lift=0.02, baseline=0.1, seed=100 + s)
        conv = ab.ab_test(d["variant"], d["converted"], control="A").rows[1]
        hits_conv += conv["ci_low"] <= 0.02 <= conv["ci_high"]
        rev = ab.ab_test(d["variant"], d["revenue"], control="A", covariate=d["pre_revenue"]).rows[1]
        hits_rev += rev["ci_low"] <= 2.0 <= rev["ci_high"]  # revenue lift is lift * 100
    assert hits_conv >= 45 and hits_rev >= 45


def test_kernel_bad_input():
    with pytest.raises(InvalidArgument, match="argument 'variant'"):
        ab.ab_test(np.array(["A"] * 5, dtype=object), np.ones(5))
    with pytest.raises(InvalidArgument, match="argument 'split'"):
        ab.ab_test(np.array(["A", "B"] * 5, dtype=object), np.arange(10.0), split=[1.0])
