"""warehouse-ml on Spark: models trained in DuckDB score in local-mode Spark, and forecasts come out the same.

One SparkSession (local[2], loopback, no UI; tests/spark_support.py) serves every Spark test module. The
reference is always DuckDB's own result for the same model and rows, computed in the same test.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from tests.conftest import churn_frame

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'warehouse-ml[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java 17 and none is installed", allow_module_level=True)

import warehouse_ml.spark as wml_spark  # noqa: E402
from tests.spark_support import assert_same_numbers, assert_same_rows, spark  # noqa: E402,F401  (the shared session)

pytestmark = pytest.mark.slow
PROJECT_ON_SPARK = Path(__file__).resolve().parents[1] / "examples" / "dbt_shop_spark"


def scoring_rows(n: int = 600) -> pd.DataFrame:
    """Churn rows with NULLs in a numeric and a text feature, NaN values and an unseen category."""
    df = churn_frame(n, seed=3).drop(columns="churned")
    df.loc[::17, "recency_days"] = np.nan
    df["channel"] = df["channel"].astype(object)
    df.loc[::23, "channel"] = None
    df.loc[5, "channel"] = "tiktok"  # never seen in training
    return df


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A DuckDB file with a boosted-tree classifier and a linear regressor, plus rows to score and DuckDB's
    own predictions for them."""
    path = str(tmp_path_factory.mktemp("spark") / "shop.duckdb")
    con = wml.connect(path)
    con.register("churn_df", churn_frame(1200))
    con.execute("CREATE TABLE uf AS SELECT * FROM churn_df")
    con.register("rows_df", scoring_rows())
    con.execute("CREATE TABLE score_rows AS SELECT * FROM rows_df")
    con.execute("FROM ml_train('churn', 'uf', label := 'churned', algorithm := 'gbm')").fetchall()
    con.execute("CREATE VIEW spend AS SELECT * EXCLUDE (churned) FROM uf")
    con.execute("FROM ml_train('spend', 'spend', label := 'monetary', algorithm := 'linear')").fetchall()
    expected = con.execute("""SELECT user_id, ml_predict('churn', r) AS p, ml_predict_label('churn', r) AS label,
                                     ml_predict('spend', r) AS spend, ml_explain_row('churn', r, 2) AS why
                              FROM score_rows r ORDER BY user_id""").df()
    rows = con.sql("FROM score_rows ORDER BY user_id").to_arrow_table()
    con.close()
    return path, rows, expected


def test_models_trained_in_duckdb_score_the_same_in_spark(spark, trained):
    path, rows, expected = trained
    open_here = wml.connect(path)  # the user's own connection to the file stays open in this process
    names = wml_spark.install(spark, models=path)
    open_here.close()
    assert {"ml_predict", "ml_predict_label", "ml_explain_row", "predict_churn", "predict_spend"} <= set(names)
    spark.createDataFrame(rows).createOrReplaceTempView("users")
    got = spark.sql("""SELECT user_id, ml_predict('churn', struct(*)) AS p, predict_churn(struct(*)) AS p2,
                              ml_predict_label('churn', struct(*)) AS label, ml_predict('spend', struct(*)) AS spend,
                              ml_explain_row('churn', struct(*), 2) AS why
                       FROM users ORDER BY user_id""").toPandas()
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    assert_same_numbers(got["p"], expected["p"])
    assert_same_numbers(got["p2"], expected["p"])
    assert_same_numbers(got["spend"], expected["spend"])  # NULL features: NULL/NaN exactly where DuckDB has them
    # DuckDB returns the label in its own type; a Spark UDF has one return type, so Spark returns it as text
    assert got["label"].tolist() == [str(v) for v in expected["label"]]
    for g, w in zip(got["why"], expected["why"]):
        assert [x["feature"] for x in g] == [x["feature"] for x in w]
        assert_same_numbers([x["contribution"] for x in g], [x["contribution"] for x in w])
    assert 0 < np.nanmin(got["p"]) and np.nanmax(got["p"]) < 1 and got["p"].nunique() > 50


def test_exported_parquet_models_score_the_same(spark, trained, tmp_path):
    path, rows, expected = trained
    file = wml_spark.export_models(path, str(tmp_path / "models"), ["churn"])
    import pyarrow.parquet as pq

    exported = pq.read_table(file)
    assert exported.column("model").to_pylist() == ["churn"] and exported.column("format").to_pylist() == ["skops"]
    wml_spark.install(spark, models=str(tmp_path / "models"))
    spark.createDataFrame(rows).createOrReplaceTempView("users")
    got = spark.sql("SELECT ml_predict('churn', struct(*)) AS p FROM users ORDER BY user_id").toPandas()
    assert_same_numbers(got["p"], expected["p"])
    with pytest.raises(Exception, match="no model named 'spend'"):  # only churn was exported
        spark.sql("SELECT ml_predict('spend', struct(*)) FROM users").collect()


def test_install_refuses_bad_model_sources(spark, trained, tmp_path):
    path, _, _ = trained
    with pytest.raises(wml.errors.InvalidArgument, match="no such DuckDB file"):
        wml_spark.install(spark, models=str(tmp_path / "missing.duckdb"))
    with pytest.raises(wml.errors.ModelNotFound, match="no model named 'chrun'.*churn"):
        wml_spark.install(spark, models=path, only=["chrun"])


def daily_sales() -> pd.DataFrame:
    """Eight items and a NULL item, 120 days with a weekly pattern, a missing day, a NULL value, an infinite and a
    NaN value, an outlier and a duplicated row."""
    rng = np.random.default_rng(7)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    frames = []
    for i in range(9):
        level = 5 + 3 * i
        units = level * (1 + 0.4 * np.sin(2 * np.pi * np.arange(120) / 7)) + rng.normal(0, 1, 120)
        frames.append(pd.DataFrame({"item": f"SKU-{i:02d}" if i < 8 else None, "day": days.date,
                                    "units": np.maximum(units, 0)}))
    df = pd.concat(frames, ignore_index=True)
    df = df.drop(index=10)  # a gap
    df.loc[20, "units"] = None
    df.loc[140, "units"] = np.inf  # the numeric policy: a missing day, noted, on both engines
    df.loc[300, "units"] = np.nan
    df.loc[400, "units"] = 500.0  # an anomaly
    return pd.concat([df, df.iloc[[30]]], ignore_index=True)  # a duplicate (item, day): summed


def stock_frame() -> pd.DataFrame:
    """Stock on hand with two counts for one item (the latest counts) and one item missing (0 on hand)."""
    return pd.DataFrame({"sku": ["SKU-00", "SKU-00", "SKU-01", "SKU-02", "SKU-05"],
                         "counted": pd.to_datetime(["2024-04-01", "2024-04-20", "2024-04-20", "2024-04-20",
                                                    "2024-04-20"]).date,
                         "qty": [900.0, 3.0, 40.0, 1000.0, 0.0]})


@pytest.fixture(scope="module")
def sales(spark):
    """The same sales and stock rows in DuckDB (with its results for each case) and as Spark views."""
    con = wml.connect()
    con.register("sales_df", daily_sales())
    con.execute("CREATE TABLE sales AS SELECT item, CAST(day AS DATE) AS day, units FROM sales_df")
    con.register("stock_df", stock_frame())
    con.execute("CREATE TABLE stock AS SELECT sku AS item, CAST(counted AS DATE) AS counted, qty FROM stock_df")
    table, stock = con.sql("FROM sales").to_arrow_table(), con.sql("FROM stock").to_arrow_table()
    df, stock_df = spark.createDataFrame(table), spark.createDataFrame(stock)
    df.createOrReplaceTempView("sales")
    wml_spark.install(spark)
    yield con, df, stock_df
    con.close()


# DuckDB's call, Spark SQL's call, the DataFrame API's call and the key columns that order the rows
SERIES_CASES = {
    "forecast_ets": ("forecast_demand('sales', 14, method := 'ets')",
                     "forecast_demand(TABLE(sales) PARTITION BY (item), 14, 'ets')",
                     lambda df, _: wml_spark.forecast_demand(df, 14, method="ets"), ["item", "date"]),
    "forecast_seasonal_naive": ("forecast_demand('sales', 14, method := 'seasonal_naive', level := 0.8)",
                                "forecast_demand(TABLE(sales) PARTITION BY (item), 14, 'seasonal_naive', 0.8)",
                                lambda df, _: wml_spark.forecast_demand(df, 14, method="seasonal_naive", level=0.8),
                                ["item", "date"]),
    "backtest_theta": ("backtest_demand('sales', 7, folds := 2, method := 'theta', level := 0.8)",
                       "backtest_demand(TABLE(sales) PARTITION BY (item), 7, 2, 'theta', 0.8)",
                       lambda df, _: wml_spark.backtest_demand(df, 7, folds=2, method="theta", level=0.8),
                       ["item", "method"]),
    "explain_ets": ("explain_forecast('sales', 7)", "explain_forecast(TABLE(sales) PARTITION BY (item), 7)",
                    lambda df, _: wml_spark.explain_forecast(df, 7), ["item", "date"]),
    "anomalies": ("detect_anomalies('sales', level := 0.95)",
                  "detect_anomalies(TABLE(sales) PARTITION BY (item), 0.95)",
                  lambda df, _: wml_spark.detect_anomalies(df, level=0.95), ["item", "date"]),
    "reorder": ("reorder_plan('sales', lead_time := 5, service_level := 0.9, method := 'ets', review_period := 2)",
                "reorder_plan(TABLE(sales) PARTITION BY (item), 5, 0.9, 'ets', 2)",
                lambda df, _: wml_spark.reorder_plan(df, lead_time=5, service_level=0.9, method="ets",
                                                     review_period=2), ["item"]),
    "reorder_on_hand": ("reorder_plan('sales', lead_time := 5, on_hand := 'stock', method := 'ets')", None,
                        lambda df, stock: wml_spark.reorder_plan(df, lead_time=5, on_hand=stock, method="ets"),
                        ["item"]),
}


@pytest.mark.parametrize("case", SERIES_CASES)
def test_table_functions_match_duckdb_on_the_same_rows(spark, sales, case):
    con, df, stock = sales
    duck_sql, spark_sql, api, keys = SERIES_CASES[case]
    want = con.execute(f"FROM {duck_sql}").df()
    results = [api(df, stock).toPandas()]
    if spark_sql:
        results.append(spark.sql(f"SELECT * FROM {spark_sql}").toPandas())
    for got in results:
        assert_same_rows(got, want, keys)
    assert want["item"].isna().any()  # the NULL item is a series on both engines
    if "method" in want and case.startswith("forecast"):
        assert any("duplicate" in m for m in want["method"])
        assert any("infinite value treated as missing" in m for m in want["method"])
    if case == "anomalies":
        assert want["is_anomaly"].sum() >= 1 and want.loc[want["value"] == 500.0, "is_anomaly"].all()
    if case == "reorder_on_hand":
        assert want.set_index("item")["on_hand"].to_dict()["SKU-00"] == 3.0  # the latest count
        assert (want["order_qty"] > 0).any() and (want["order_qty"] == 0).any()


def test_item_keys_come_back_in_their_source_type(spark, sales):
    """Integer item keys (a NULL one included): the DataFrame functions return them as integers, as DuckDB does,
    with DuckDB's rows; the SQL table functions return text (an Arrow UDTF's row type is fixed at registration)."""
    from pyspark.sql.types import IntegerType, StringType

    con, _, _ = sales
    con.execute("CREATE OR REPLACE VIEW sales_by_id AS SELECT CAST(replace(item, 'SKU-', '') AS INTEGER) AS item, "
                "day, units FROM sales")
    df = spark.createDataFrame(con.sql("FROM sales_by_id").to_arrow_table())
    df.createOrReplaceTempView("sales_by_id")
    calls = {"forecast_demand('sales_by_id', 7, method := 'ets')": (wml_spark.forecast_demand(df, 7, method="ets"),
                                                                    ["item", "date"]),
             "backtest_demand('sales_by_id', 7, folds := 2, method := 'naive')":
                 (wml_spark.backtest_demand(df, 7, folds=2, method="naive"), ["item", "method"]),
             "detect_anomalies('sales_by_id')": (wml_spark.detect_anomalies(df), ["item", "date"]),
             "reorder_plan('sales_by_id', method := 'ets')": (wml_spark.reorder_plan(df, method="ets"), ["item"])}
    for duck_sql, (got, keys) in calls.items():
        assert got.schema["item"].dataType == IntegerType(), duck_sql
        want = con.execute(f"FROM {duck_sql}")
        assert want.description[0][:2] == ("item", "INTEGER")
        want = want.df()
        assert_same_rows(got.toPandas(), want, keys)
        assert want["item"].isna().any() and set(want["item"].dropna()) == set(range(8))
    on_sql = spark.sql("SELECT * FROM forecast_demand(TABLE(sales_by_id) PARTITION BY (item), 7, 'ets')")
    assert on_sql.schema["item"].dataType == StringType()
    assert {r[0] for r in on_sql.select("item").distinct().collect()} == {None, *map(str, range(8))}


def test_auto_on_spark_equals_duckdb_on_the_series_each_call_sees(spark, sales):
    """'auto' pools its choice and interval calibration over the series it is given: the SQL table function gets
    one item per call, so it equals DuckDB's 'auto' run on each item alone (not on all items together)."""
    con, _, _ = sales
    items = [r[0] for r in con.execute("SELECT DISTINCT item FROM sales").fetchall()]
    want = []
    for item in items:
        where = "item IS NULL" if item is None else f"item = '{item}'"  # the test's own keys: SKU-00 ... SKU-07
        con.execute(f"CREATE OR REPLACE VIEW one_item AS FROM sales WHERE {where}")
        want.append(con.execute("FROM forecast_demand('one_item', 14)").df())
    want = pd.concat(want, ignore_index=True)
    got = spark.sql("SELECT * FROM forecast_demand(TABLE(sales) PARTITION BY (item), 14)").toPandas()
    assert_same_rows(got, want, ["item", "date"])


@pytest.fixture(scope="module")
def experiments_and_prices():
    """Three experiments (integer keys, one NULL) with a NULL and a NaN metric; eight items' daily prices and units
    with a constant-price item and rows a log fit must exclude (zero, negative and NULL prices)."""
    from warehouse_ml.tasks import abtest as ab
    from warehouse_ml.tasks import pricing as pr

    frames = []
    for k, (exp, lift) in enumerate([(7, 0.0), (8, 0.03), (None, 0.01)]):
        one = pd.DataFrame(ab.simulate_experiment(1500, lift=lift, baseline=0.1, seed=20 + k))
        one.insert(0, "experiment_id", exp)
        frames.append(one)
    experiments = pd.concat(frames, ignore_index=True).astype({"experiment_id": "Int64"})
    experiments.loc[3, "revenue"] = None
    experiments.loc[4, "revenue"] = np.nan
    sim = pr.simulate_prices(8, 60, seed=5)
    sim.pop("true_elasticity")
    prices = pd.DataFrame(sim).rename(columns={"item": "sku"})
    prices["sale_date"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(prices.pop("day"), unit="D")).dt.date
    flat = pd.DataFrame({"sku": "flat", "price": 9.99, "units": 10.0 + np.arange(30) % 3, "unit_cost": 4.0,
                         "sale_date": pd.date_range("2024-01-01", periods=30).date})
    prices = pd.concat([prices, flat], ignore_index=True)
    prices.loc[[0, 1, 2], "price"] = [0.0, -3.0, np.nan]
    prices.loc[[3, 70], "unit_cost"] = [np.nan, np.inf]  # costs that are not numbers: left out of the item's mean
    return experiments, prices


def test_ab_test_price_elasticity_and_optimal_price_match_duckdb(spark, experiments_and_prices):
    experiments, prices = experiments_and_prices
    con = wml.connect()
    con.register("exp_df", experiments)
    con.execute("CREATE TABLE exp AS FROM exp_df")
    con.register("prices_df", prices)
    con.execute("CREATE TABLE prices AS SELECT sku, CAST(sale_date AS DATE) AS sale_date, price, units FROM prices_df")
    exp_df = spark.createDataFrame(con.sql("FROM exp").to_arrow_table())
    price_df = spark.createDataFrame(con.sql("FROM prices").to_arrow_table())

    for options, kwargs in [("metric := 'converted'", dict(metric="converted")),
                            ("metric := 'revenue', covariate := 'pre_revenue', test := 't'",
                             dict(metric="revenue", covariate="pre_revenue", test="t"))]:
        got = wml_spark.ab_test(exp_df, experiment="experiment_id", **kwargs).toPandas()
        assert list(got.columns)[:2] == ["experiment_id", "variant"]
        for key, per_exp in got.groupby("experiment_id", dropna=False):
            where = "experiment_id IS NULL" if pd.isna(key) else f"experiment_id = {int(key)}"
            con.execute(f"CREATE OR REPLACE VIEW one_exp AS FROM exp WHERE {where}")
            want = con.execute(f"FROM ab_test('one_exp', {options})").df()
            assert_same_rows(per_exp.drop(columns="experiment_id"), want, ["variant"])
        assert got["experiment_id"].isna().sum() == 2 and set(got["experiment_id"].dropna()) == {7, 8}
    whole = wml_spark.ab_test(exp_df.drop("experiment_id"), metric="converted").toPandas()
    assert_same_rows(whole, con.execute("FROM ab_test('exp', metric := 'converted')").df(), ["variant"])

    for options, kwargs in [("", {}), (", controls := 'none', model := 'loglog'", dict(controls="none", model="loglog"))]:
        want = con.execute(f"FROM price_elasticity('prices'{options})").df()
        got = wml_spark.price_elasticity(price_df, **kwargs).toPandas()
        assert_same_rows(got, want, ["item"])
        assert want["elasticity"].notna().sum() == 8 and want.set_index("item")["elasticity"].isna()["flat"]

    con.execute("CREATE TABLE priced AS SELECT sku, CAST(sale_date AS DATE) AS sale_date, price, units, unit_cost "
                "FROM prices_df")
    priced_df = spark.createDataFrame(con.sql("FROM priced").to_arrow_table())
    for options, kwargs in [("cost := 'unit_cost'", dict(cost="unit_cost")),
                            ("cost := 2.5, max_price := 40, within_observed := false, model := 'loglog'",
                             dict(cost=2.5, max_price=40.0, within_observed=False, model="loglog"))]:
        want = con.execute(f"FROM optimal_price('priced', {options})").df()
        got = wml_spark.optimal_price(priced_df, **kwargs).toPandas()
        assert_same_rows(got, want, ["item"])
        assert want["optimal_price"].notna().sum() >= 7 and want["note"].str.contains("latest 'sale_date'").all()
    with pytest.raises(wml.errors.UnknownColumn, match="no column 'cost_per_unit'"):
        wml_spark.optimal_price(priced_df, cost="cost_per_unit")
    con.close()


def test_user_features_match_duckdb(spark):
    """Orders with repeat buyers, a NULL user, a NULL time, a NaN amount and orders after as_of (the label)."""
    rng = np.random.default_rng(4)
    n = 400
    orders = pd.DataFrame({"user_id": pd.array(rng.integers(1, 60, n), dtype="Int64"),
                           "order_ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120 * 86400, n),
                                                                                    unit="s"),
                           "amount": rng.gamma(2, 20, n).round(2), "discount": rng.uniform(0, 0.3, n)})
    orders.loc[0, "user_id"] = None
    orders.loc[1, "order_ts"] = pd.NaT
    orders.loc[2, "amount"] = np.nan
    con = wml.connect()
    con.register("orders_df", orders)
    con.execute("CREATE TABLE orders AS SELECT * REPLACE (coalesce(amount, 'NaN'::DOUBLE) AS amount) FROM orders_df")
    df = spark.createDataFrame(con.sql("FROM orders").to_arrow_table())
    wants = []
    for options, kwargs in [("", {}), (", as_of := DATE '2024-03-01', label_window := 30",
                                       dict(as_of=datetime.date(2024, 3, 1), label_window=30))]:
        wants.append(con.execute(f"FROM user_features('orders'{options})").df())
        assert_same_rows(wml_spark.user_features(df, **kwargs).toPandas(), wants[-1], ["user_id"])
        assert wants[-1]["days_between_orders"].notna().any() and "avg_discount" in wants[-1]
    assert np.isnan(wants[0]["avg_order_value"]).sum() == 1  # the NaN amount, on both engines
    assert "churned" not in wants[0] and wants[1]["churned"].nunique() == 2
    with pytest.raises(wml.errors.InvalidArgument, match="label_window.*needs an as_of"):
        wml_spark.user_features(df, label_window=30)
    with pytest.raises(wml.errors.UnknownColumn, match="amount_col.*Did you mean .amount."):
        wml_spark.user_features(df, amount_col="amout")
    con.close()


def test_table_function_arguments_are_validated(spark, sales):
    _, df, stock = sales
    with pytest.raises(wml.errors.InvalidArgument, match="method"):
        wml_spark.forecast_demand(df, 7, method="prophet")
    with pytest.raises(wml.errors.InvalidArgument, match="'nn' learns one model across all series"):
        wml_spark.forecast_demand(df, 7, method="NN")
    with pytest.raises(wml.errors.InvalidArgument, match="horizon"):
        wml_spark.forecast_demand(df, 0)
    with pytest.raises(wml.errors.InvalidArgument, match="value"):
        wml_spark.forecast_demand(df, 7, value="item")
    with pytest.raises(wml.errors.InvalidArgument, match="folds"):
        wml_spark.backtest_demand(df, 7, folds=0)
    with pytest.raises(wml.errors.InvalidArgument, match="level"):
        wml_spark.detect_anomalies(df, level=1.5)
    with pytest.raises(wml.errors.InvalidArgument, match="lead_time"):
        wml_spark.reorder_plan(df, lead_time=0)
    with pytest.raises(wml.errors.InvalidArgument, match="on_hand_qty"):
        wml_spark.reorder_plan(df, on_hand=stock, on_hand_qty="counted")
    with pytest.raises(Exception, match="takes at most 1 arguments after the table"):
        spark.sql("SELECT * FROM detect_anomalies(TABLE(sales) PARTITION BY (item), 0.9, 3)").collect()


def test_export_then_import_moves_a_model_between_duckdb_files(trained, tmp_path):
    path, rows, expected = trained
    wml_spark.export_models(path, str(tmp_path / "models"))
    con = wml.connect(str(tmp_path / "other.duckdb"))
    assert sorted(wml_spark.import_models(con, str(tmp_path / "models"), ["churn"])) == [("churn", 1)]
    con.register("rows_arrow", rows)
    got = con.execute("SELECT ml_predict('churn', r) AS p FROM rows_arrow r ORDER BY user_id").df()
    assert_same_numbers(got["p"], expected["p"])
    assert con.execute("SELECT count(*) FROM ml_models() WHERE model = 'spend'").fetchone()[0] == 0
    con.close()


def test_ml_export_and_ml_import_in_sql_carry_a_model_to_spark_and_back(spark, trained, tmp_path):
    """DuckDB SQL exports, Spark scores from the export, another DuckDB imports it: the same predictions to 1e-9."""
    path, rows, expected = trained
    folder = str(tmp_path / "exported")
    con = wml.connect(path)
    assert con.execute(f"FROM ml_export('churn', '{folder}')").fetchall() == [("churn", 1, f"{folder}/models.parquet")]
    con.execute(f"FROM ml_export('spend', '{folder}')").fetchall()  # a second model joins the same file
    con.close()
    wml_spark.install(spark, models=folder)
    spark.createDataFrame(rows).createOrReplaceTempView("users")
    on_spark = spark.sql("SELECT ml_predict('churn', struct(*)) AS p, ml_predict('spend', struct(*)) AS spend "
                         "FROM users ORDER BY user_id").toPandas()
    assert_same_numbers(on_spark["p"], expected["p"])
    assert_same_numbers(on_spark["spend"], expected["spend"])

    other = wml.connect(str(tmp_path / "other.duckdb"))
    imported = other.execute(f"SELECT model, version, is_active FROM ml_import('{folder}', model := 'churn')").fetchall()
    assert imported == [("churn", 1, True)]
    other.register("rows_arrow", rows)
    back = other.execute("SELECT ml_predict('churn', r) AS p FROM rows_arrow r ORDER BY user_id").df()
    assert_same_numbers(back["p"], on_spark["p"])
    assert other.execute("SELECT count(*) FROM ml_models() WHERE model = 'spend'").fetchone()[0] == 0
    assert sorted(other.execute(f"SELECT model, version FROM ml_import('{folder}')").fetchall()) == \
        [("churn", 2), ("spend", 1)]
    with pytest.raises(duckdb.Error, match="path.*no exported models"):
        other.execute(f"FROM ml_import('{tmp_path}/nothing')").fetchall()
    with pytest.raises(duckdb.Error, match="no model named 'chrun'"):
        other.execute(f"FROM ml_export('chrun', '{folder}')").fetchall()
    other.close()


def test_ml_train_on_spark_samples_by_label_and_duckdb_scores_the_same(spark, trained, tmp_path):
    """Training from a Spark DataFrame: a sample stratified by the label (its size in the result, the notes and
    the stored metadata) is trained on by DuckDB's kernel and written as an export; DuckDB imports it and scores
    the same rows as Spark to 1e-9."""
    _, rows, _ = trained
    from sklearn.metrics import roc_auc_score

    frame = churn_frame(4000, seed=11)  # monetary: 5% NaN, and an infinite value below
    frame.loc[0, "monetary"] = np.inf
    df = spark.createDataFrame(frame)
    folder = str(tmp_path / "models")
    result = wml_spark.ml_train(df, "churn_spark", label="churned", into=folder, sample_rows=2000, algorithm="gbm")
    sample = result["sample"]
    assert sample["source_rows"] == 4000 and sample["stratified_by"] == "churned" and sample["fraction"] == 0.5
    assert result["n_train"] + result["n_test"] == sample["sample_rows"] and abs(sample["sample_rows"] - 2000) < 130
    assert set(sample["strata"]) == {"0", "1"} and sum(s["rows"] for s in sample["strata"].values()) == 4000
    for stratum in sample["strata"].values():  # each class keeps its share of the rows
        assert abs(stratum["sampled"] / stratum["rows"] - 0.5) < 0.06
    note = f"sample of {sample['sample_rows']:,} of 4,000 labelled rows of the Spark DataFrame (stratified by churned"
    assert any(note in n for n in result["notes"])

    con = wml.connect(str(tmp_path / "other.duckdb"))
    con.execute(f"FROM ml_import('{folder}')").fetchall()
    stored = json.loads(con.execute("SELECT meta FROM wml.model_versions WHERE model = 'churn_spark'").fetchall()[0][0])
    assert stored["sample"] == sample
    con.register("rows_df", rows)
    want = con.execute("SELECT user_id, ml_predict('churn_spark', r) AS p FROM rows_df r ORDER BY user_id").df()
    con.close()
    wml_spark.install(spark, models=folder)
    spark.createDataFrame(rows).createOrReplaceTempView("users")
    got = spark.sql("SELECT user_id, ml_predict('churn_spark', struct(*)) AS p FROM users ORDER BY user_id").toPandas()
    assert_same_numbers(got["p"], want["p"])
    fresh = churn_frame(2000, seed=12)
    spark.createDataFrame(fresh).createOrReplaceTempView("fresh")
    p = spark.sql("SELECT ml_predict('churn_spark', struct(*)) AS p FROM fresh ORDER BY user_id").toPandas()["p"]
    assert roc_auc_score(fresh.sort_values("user_id")["churned"], p) > 0.7  # it learnt from the sample

    spend = wml_spark.ml_train(df.drop("churned"), "spend_spark", label="monetary", into=folder, sample_rows=1000,
                               algorithm="linear")["sample"]  # a numeric label: sampled uniformly
    assert spend["stratified_by"] is None and "strata" not in spend
    assert spend["source_rows"] == np.isfinite(frame["monetary"]).sum() < 4000 and spend["sample_rows"] < 1300
    assert wml_spark.ModelBundle.open(folder).records.keys() == {"churn_spark", "spend_spark"}
    with pytest.raises(wml.errors.InvalidArgument, match="sample_rows"):
        wml_spark.ml_train(df, "x", label="churned", into=folder, sample_rows=10)
    with pytest.raises(wml.errors.UnknownColumn, match="no column 'churnd'.*Did you mean 'churned'"):
        wml_spark.ml_train(df, "x", label="churnd", into=folder)
    with pytest.raises(wml.errors.InvalidArgument, match="test_size"):
        wml_spark.ml_train(df, "x", label="churned", into=folder, test_size=2)


def test_ml_import_refuses_a_pickled_artifact_and_stores_nothing(trained, tmp_path):
    import pickle

    import pyarrow.parquet as pq

    from warehouse_ml.exchange import ModelBundle

    path, _, _ = trained
    record = ModelBundle.open(path, ["churn"]).records["churn"]
    forged = ModelBundle([record.__class__(**{**record.__dict__, "model": "evil", "format": "pickle",
                                             "artifact": pickle.dumps({"any": "object"})})])
    (tmp_path / "forged").mkdir()
    pq.write_table(forged.to_arrow(), str(tmp_path / "forged" / "models.parquet"))
    con = wml.connect(str(tmp_path / "victim.duckdb"))
    with pytest.raises(duckdb.Error, match="unknown artifact format 'pickle'"):
        con.execute(f"FROM ml_import('{tmp_path}/forged')").fetchall()
    assert con.execute("SELECT count(*) FROM ml_models()").fetchone()[0] == 0
    con.close()


def test_dbt_project_runs_on_spark_with_duckdb_results(spark, tmp_path):
    """examples/dbt_shop_spark through dbt-spark's in-process session on this session: the model trained in DuckDB
    scores every user and the forecasts and anomalies equal DuckDB's on the same rows."""
    pytest.importorskip("dbt.adapters.spark", reason="needs dbt-spark (pip install 'warehouse-ml[spark-dbt]')")
    import importlib.util

    from warehouse_ml.demo.shop import generate_shop

    project = tmp_path / "dbt_shop_spark"
    shutil.copytree(PROJECT_ON_SPARK, project, ignore=shutil.ignore_patterns("target", "logs", "spark-warehouse"))
    db = str(tmp_path / "shop.duckdb")
    con = wml.connect(db)
    generate_shop(con, users=300, seed=1)
    con.execute("""CREATE TABLE user_features AS SELECT f.*, u.channel FROM user_features('orders',
                   as_of := DATE '2024-06-30', label_window := 90) f JOIN users u USING (user_id)""")
    con.execute("FROM train_churn('user_features', algorithm := 'logistic')").fetchall()
    con.execute("""CREATE TABLE top_sku_sales AS SELECT sku, day, units FROM daily_sales WHERE sku IN (
                   SELECT sku FROM daily_sales GROUP BY sku ORDER BY sum(units) DESC, sku LIMIT 3)""")
    scores = con.execute("SELECT user_id, predict_churn(f) AS p_churn FROM user_features f").df()
    forecast = con.execute("FROM forecast_demand('top_sku_sales', 14, method := 'ets')").df()
    anomalies = con.execute("FROM detect_anomalies('top_sku_sales', level := 0.99) WHERE is_anomaly").df()
    con.close()

    spec = importlib.util.spec_from_file_location("run_on_spark", project / "run_on_spark.py")
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    result = launcher.run(spark, db, ["run"], project=project)
    assert result.success, result.exception
    assert_same_rows(spark.table("wml_shop.churn_scores").toPandas(), scores, ["user_id"])
    assert len(scores) > 100
    assert_same_rows(spark.table("wml_shop.demand_forecast").toPandas(), forecast, ["item", "date"])
    assert forecast["item"].nunique() == 3
    assert_same_rows(spark.table("wml_shop.sku_anomalies").toPandas(), anomalies, ["item", "date"])
