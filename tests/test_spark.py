"""warehouse-ml on Spark: models trained in DuckDB score in local-mode Spark, and forecasts come out the same.

One SparkSession (local[2], loopback, no UI) serves the whole module. The reference is always DuckDB's own
result for the same model and rows, computed in the same test.
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import warehouse_ml as wml
from tests.conftest import churn_frame

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'warehouse-ml[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java 17 and none is installed", allow_module_level=True)

import warehouse_ml.spark as wml_spark  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run in this environment
    session = (SparkSession.builder.master("local[2]").appName("warehouse-ml-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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


def assert_same_numbers(got, want, tol=1e-9):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) <= tol


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
    """Eight items, 120 days with a weekly pattern, a missing day, a NULL value, an infinite value and a
    duplicated row."""
    rng = np.random.default_rng(7)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    frames = []
    for i in range(8):
        level = 5 + 3 * i
        units = level * (1 + 0.4 * np.sin(2 * np.pi * np.arange(120) / 7)) + rng.normal(0, 1, 120)
        frames.append(pd.DataFrame({"item": f"SKU-{i:02d}", "day": days.date, "units": np.maximum(units, 0)}))
    df = pd.concat(frames, ignore_index=True)
    df = df.drop(index=10)  # a gap
    df.loc[20, "units"] = np.nan
    df.loc[140, "units"] = np.inf  # the numeric policy: a missing day, noted, on both engines
    return pd.concat([df, df.iloc[[30]]], ignore_index=True)  # a duplicate (item, day): summed


@pytest.mark.parametrize("method", ["ets", "seasonal_naive"])
def test_forecasts_match_duckdb(spark, method):
    sales = daily_sales()
    con = wml.connect()
    con.register("sales_df", sales)
    con.execute("CREATE TABLE sales AS SELECT item, CAST(day AS DATE) AS day, units FROM sales_df")
    want = con.execute(f"FROM forecast_demand('sales', 14, method := '{method}') ORDER BY item, date").df()
    table = con.sql("FROM sales").to_arrow_table()
    con.close()
    wml_spark.install(spark)
    df = spark.createDataFrame(table)
    df.createOrReplaceTempView("sales")
    by_sql = spark.sql(f"SELECT * FROM forecast_demand(TABLE(sales) PARTITION BY (item), 14, '{method}') "
                       "ORDER BY item, date").toPandas()
    by_api = wml_spark.forecast_demand(df, 14, method=method).orderBy("item", "date").toPandas()
    assert len(want) == 8 * 14
    for got in (by_sql, by_api):
        assert list(got.columns) == list(want.columns)
        assert got["item"].tolist() == want["item"].tolist()
        assert [pd.Timestamp(d) for d in got["date"]] == [pd.Timestamp(d) for d in want["date"]]
        assert got["method"].tolist() == want["method"].tolist()
        for c in ("forecast", "lower", "upper"):
            assert_same_numbers(got[c], want[c])
    assert any("duplicate" in m for m in want["method"])
    assert any("infinite value treated as missing" in m for m in want["method"])


def test_forecast_arguments_are_validated(spark):
    df = spark.createDataFrame(pa.table({"item": ["a"], "day": pa.array([0], pa.date32()), "units": [1.0]}))
    with pytest.raises(wml.errors.InvalidArgument, match="method"):
        wml_spark.forecast_demand(df, 7, method="prophet")
    with pytest.raises(wml.errors.InvalidArgument, match="'nn' learns one model across all series"):
        wml_spark.forecast_demand(df, 7, method="nn")
    with pytest.raises(wml.errors.InvalidArgument, match="horizon"):
        wml_spark.forecast_demand(df, 0)
    with pytest.raises(wml.errors.InvalidArgument, match="value"):
        wml_spark.forecast_demand(df, 7, value="item")


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


def test_mllib_als_recommends_unseen_items_better_than_popularity(spark):
    """Three taste groups of users, ten items each; one interaction per user held out. ALS must find the
    held-out item far more often than the most popular unseen items do, and never recommend a seen item."""
    rng = np.random.default_rng(5)
    rows, held_out = [], {}
    for user in range(90):
        group = user % 3
        liked = rng.choice(10, 6, replace=False) + 10 * group
        held_out[f"u{user}"] = f"i{liked[0]}"
        rows += [(f"u{user}", int(i)) for i in liked[1:]]
    events = pd.DataFrame(rows, columns=["customer", "product"])
    events["product"] = "i" + events["product"].astype(str)
    df = spark.createDataFrame(events)
    recs = wml_spark.recommend_items(df, 5, user="customer", item="product", factors=8, iterations=10).toPandas()
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert all(sorted(ranks) == [1, 2, 3, 4, 5] for _, ranks in recs.groupby("user")["rank"])
    assert recs.groupby("user").size().size == 90
    assert recs.sort_values(["user", "rank"]).groupby("user")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    seen = set(zip(events["customer"], events["product"]))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"]))
    als_hits = np.mean([held_out[u] in set(g["item"]) for u, g in recs.groupby("user")])
    popular = events["product"].value_counts().index.tolist()
    by_user = events.groupby("customer")["product"].apply(set)
    pop_hits = np.mean([held_out[u] in [i for i in popular if i not in by_user[u]][:5] for u in held_out])
    assert als_hits >= 0.8 and als_hits > pop_hits + 0.3, (als_hits, pop_hits)
    with pytest.raises(wml.errors.InvalidArgument, match="no column 'client'"):
        wml_spark.recommend_items(df, 5, user="client", item="product")
