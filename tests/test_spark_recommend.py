"""warehouse-ml's recommenders on Spark: MLlib's ALS, co-occurrence similarity, evaluation on DuckDB's holdout, and
DuckDB's own recommenders in Spark SQL, each against DuckDB on the same rows (the shared local session)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'warehouse-ml[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java 17 and none is installed", allow_module_level=True)

import warehouse_ml.spark as wml_spark  # noqa: E402
from tests.spark_support import assert_same_rows, spark  # noqa: E402,F401  (spark: the shared session fixture)

pytestmark = pytest.mark.slow


def test_similar_items_match_duckdb_cooccurrence_cosine(spark):
    """Purchases with repeats, a quantity weight (zero and negative rows dropped) and a NULL user."""
    rng = np.random.default_rng(9)
    n = 600
    events = pd.DataFrame({"customer": [f"u{v}" for v in rng.integers(0, 80, n)],
                           "product": [f"p{min(v, 29)}" for v in rng.geometric(0.12, n)],
                           "qty": rng.integers(-1, 4, n).astype(float)})
    events.loc[0, "customer"] = None
    con = wml.connect()
    con.register("events_df", events)
    con.execute("CREATE TABLE events AS FROM events_df")
    want = con.execute("FROM similar_items('events', 5, \"user\" := 'customer', item := 'product', weight := 'qty')").df()
    con.close()
    got = wml_spark.similar_items(spark.createDataFrame(events), 5, user="customer", item="product",
                                  weight="qty").toPandas()
    assert list(got.columns) == list(want.columns) == ["item", "rank", "similar_item", "score"]
    got, want = (x.sort_values(["item", "rank"]).reset_index(drop=True) for x in (got, want))
    assert got[["item", "rank"]].values.tolist() == want[["item", "rank"]].values.tolist()
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)  # DuckDB's kernel works in float32
    # the same neighbours wherever scores are not tied
    pair_score = dict(zip(zip(want["item"], want["similar_item"]), want["score"]))
    same = [pair_score.get((i, j)) is not None and abs(pair_score[(i, j)] - s) < 1e-5
            for i, j, s in zip(got["item"], got["similar_item"], got["score"])]
    assert np.mean(same) > 0.9 and want["item"].nunique() >= 25


def test_recommenders_return_user_and_item_keys_in_their_source_type(spark):
    """BIGINT users and DATE-typed items (any key type works): similar_items equals DuckDB's with the same types, and
    MLlib's recommendations come back with the users' and items' own types."""
    from pyspark.sql.types import DateType, LongType

    events, _ = taste_groups()
    events["customer"] = events["customer"].str[1:].astype("int64")
    events["product"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(events["product"].str[1:].astype(int), unit="D")
                         ).dt.date
    con = wml.connect()
    con.register("events_df", events[["customer", "product"]])
    con.execute("CREATE TABLE events AS SELECT customer, CAST(product AS DATE) AS product FROM events_df")
    want = con.execute("FROM similar_items('events', 3, \"user\" := 'customer', item := 'product')")
    assert [d[1] for d in want.description] == ["DATE", "INTEGER", "DATE", "DOUBLE"]
    want = want.df()
    df = spark.createDataFrame(con.sql("FROM events").to_arrow_table())
    con.close()
    similar = wml_spark.similar_items(df, 3, user="customer", item="product")
    assert [f.dataType for f in similar.schema.fields][::2] == [DateType(), DateType()]
    got = similar.toPandas().sort_values(["item", "rank"]).reset_index(drop=True)
    want = want.sort_values(["item", "rank"]).reset_index(drop=True)
    assert [pd.Timestamp(v) for v in got["item"]] == [pd.Timestamp(v) for v in want["item"]]
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
    recs = wml_spark.recommend_items(df, 3, user="customer", item="product", factors=4, iterations=3)
    assert recs.schema["user"].dataType == LongType() and recs.schema["item"].dataType == DateType()
    got = recs.toPandas()
    assert set(got["user"]) == set(events["customer"]) and set(got["item"]) <= set(events["product"])


def taste_groups(n_users: int = 90, seed: int = 5) -> tuple[pd.DataFrame, dict]:
    """Three taste groups of users, ten items each; each user likes six of the group's items (one held out)."""
    rng = np.random.default_rng(seed)
    rows, held_out = [], {}
    for user in range(n_users):
        liked = rng.choice(10, 6, replace=False) + 10 * (user % 3)
        held_out[f"u{user}"] = f"i{liked[0]}"
        rows += [(f"u{user}", f"i{i}", day) for day, i in enumerate(liked[::-1])]  # the held-out item comes last
    events = pd.DataFrame(rows, columns=["customer", "product", "day"])
    events["ts"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(events["day"] * 24 + rng.integers(0, 24, len(events)),
                                                               unit="h")
    return events, held_out


def test_recommenders_in_spark_sql_are_duckdb_s_on_the_same_rows(spark):
    """recommend_items and similar_items in Spark SQL run DuckDB's recommenders over every row in one task: the
    same rows (integer keys, a NULL user, a NaN and an infinite weight) give DuckDB's rows, keys as text."""
    events, _ = taste_groups()
    events = events.assign(customer=events["customer"].str[1:].astype("int64"),
                           weight=np.where(np.arange(len(events)) % 7 == 0, 2.0, 1.0))
    events.loc[0, "customer"] = None
    events.loc[[1, 2], "weight"] = [np.nan, np.inf]
    con = wml.connect()
    con.register("events_df", events.astype({"customer": "Int64"}).drop(columns=["day", "ts"]))
    con.execute("CREATE TABLE events AS FROM events_df")
    df = spark.createDataFrame(con.sql("FROM events").to_arrow_table())
    df.createOrReplaceTempView("events")
    for duck_sql, spark_sql, keys in [
            ("recommend_items('events', 4, method := 'item_knn')",
             "recommend_items(TABLE(events) WITH SINGLE PARTITION, 4, 'item_knn')", ["user", "rank"]),
            ("recommend_items('events', 3, method := 'ease')",
             "recommend_items(TABLE(events) WITH SINGLE PARTITION, 3, 'ease')", ["user", "rank"]),
            ("similar_items('events', 3)", "similar_items(TABLE(events) WITH SINGLE PARTITION, 3)", ["item", "rank"])]:
        want = con.execute(f"FROM {duck_sql}").df()
        for c in ("user", "item", "similar_item"):
            if c in want:
                want[c] = [None if pd.isna(v) else str(v) for v in want[c]]
        got = spark.sql(f"SELECT * FROM {spark_sql}").toPandas()
        assert len(want) > 80
        assert_same_rows(got, want, keys)
    with pytest.raises(Exception, match="unknown method 'alss'"):
        spark.sql("SELECT * FROM recommend_items(TABLE(events) WITH SINGLE PARTITION, 3, 'alss')").collect()
    con.close()


def test_evaluate_recommender_holds_out_as_duckdb_and_als_beats_popularity(spark):
    """The same per-user time holdout and metric definitions as DuckDB's evaluate_recommender: its popularity row
    (the method both engines share) equals DuckDB's; MLlib's ALS beats it on taste groups."""
    events, _ = taste_groups()
    con = wml.connect()
    con.register("events_df", events.drop(columns="day"))
    con.execute("CREATE TABLE events AS FROM events_df")
    want = con.execute("""FROM evaluate_recommender('events', 5, "user" := 'customer', item := 'product',
                          "time" := 'ts', methods := ['popular'])""").df().set_index("method")
    con.close()
    got = wml_spark.evaluate_recommender(spark.createDataFrame(events.drop(columns="day")), 5, user="customer",
                                         item="product", time="ts", factors=8, iterations=10).toPandas()
    got = got.set_index("method")
    assert list(got.index) == ["popular", "als"]
    assert list(got.columns) == list(want.columns)[:len(got.columns)]
    for metric in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage", "users"):
        assert got.loc["popular", metric] == pytest.approx(want.loc["popular", metric], abs=1e-9), metric
    assert got.loc["als", "ndcg_at_k"] > 2 * got.loc["popular", "ndcg_at_k"] and got.loc["als", "best"]
    assert got.loc["als", "ndcg_vs_popular"] == pytest.approx(got.loc["als", "ndcg_at_k"] / got.loc["popular", "ndcg_at_k"])


def test_mllib_als_recommends_unseen_items_better_than_popularity(spark):
    """Three taste groups of users, ten items each; one interaction per user held out. ALS must find the
    held-out item far more often than the most popular unseen items do, and never recommend a seen item."""
    events, held_out = taste_groups()
    events = events.loc[events["product"] != events["customer"].map(held_out), ["customer", "product"]]
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
