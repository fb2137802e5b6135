"""Recommendations on Spark: implicit-feedback ALS from Spark MLlib (the existing distributed implementation),
DuckDB's co-occurrence similar_items as a self-join, and evaluate_recommender on DuckDB's holdout (DataFrame
functions); in Spark SQL, DuckDB's own recommend_items and similar_items over all the rows in one task.

DuckDB's ``recommend_items(..., method := 'als')`` runs the ``implicit`` library on one machine; on a cluster
the factorisation itself must be distributed, which MLlib's ALS does. This adapter keeps DuckDB's interface:
keys in as any type and back in that type, one row per (user, rank) with the item and its score, items the user
already has left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidArgument
from .frames import partition_udtf, spark_ddl


def _column(df, name, argument: str) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(argument, f"expected a column name, got {name!r}",
                              f"Name the column, e.g. {argument}='{argument}_id'")
    lower = {c.lower(): c for c in df.columns}
    if name.lower() not in lower:
        raise InvalidArgument(argument, f"the DataFrame has no column '{name}'", f"Use one of: {', '.join(df.columns)}")
    return lower[name.lower()]


def _count(value, argument: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(argument, f"must be a whole number from {low} to {high}, got {value!r}",
                              f"Pass e.g. {argument}={min(max(low, 10), high)}")
    return value


def _events(df, user: str, item: str, weight: str | None):
    """One row per (user, item) as text with its summed weight, rows of weight <= 0 or NULL dropped first (as
    DuckDB's interaction matrix does)."""
    from pyspark.sql import functions as F

    u, i = _column(df, user, "user"), _column(df, item, "item")
    w = F.col(_column(df, weight, "weight")).cast("double") if weight is not None else F.lit(1.0)
    return (df.select(F.col(u).cast("string").alias("user"), F.col(i).cast("string").alias("item"), w.alias("w"))
            .dropna(subset=["user", "item"]).where(F.col("w") > 0).groupBy("user", "item").agg(F.sum("w").alias("w")))


def _typed_keys(result, df, keys: dict[str, str]):
    """``result`` with each text key column (``{result column: df column}``) back in ``df``'s column type: the
    methods work on the keys as text (as DuckDB's do), and each text is joined to its distinct source value."""
    from pyspark.sql import functions as F

    columns = list(result.columns)
    for out, source in keys.items():
        names = (df.select(F.col(source).cast("string").alias(out), F.col(source).alias("__typed"))
                 .dropna(subset=[out]).dropDuplicates([out]))
        result = result.join(F.broadcast(names), out).drop(out).withColumnRenamed("__typed", out)
    return result.select(*columns)


def similar_items(df, k: int = 10, *, user: str, item: str, weight: str | None = None):
    """Per item, the ``k`` most similar other items (item, rank, similar_item, score): the cosine of the items'
    log(1 + weight) user vectors, DuckDB's similar_items without a model, as a self-join on users in Spark (its
    cost grows with the square of each user's number of items)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    k = _count(k, "k", 1, 1000)
    c = _events(df, user, item, weight).select("user", "item", F.log1p("w").alias("c"))
    norms = c.groupBy("item").agg(F.sqrt(F.sum(F.col("c") * F.col("c"))).alias("norm"))
    other = c.select("user", F.col("item").alias("similar_item"), F.col("c").alias("c2"))
    dots = (c.join(other, "user").where(F.col("item") != F.col("similar_item"))
            .groupBy("item", "similar_item").agg(F.sum(F.col("c") * F.col("c2")).alias("dot")))
    scored = (dots.join(norms, "item")
              .join(norms.select(F.col("item").alias("similar_item"), F.col("norm").alias("norm2")), "similar_item")
              .select("item", "similar_item", (F.col("dot") / (F.col("norm") * F.col("norm2"))).alias("score"))
              .where(F.col("score") > 0))
    ranked = scored.withColumn("rank", F.row_number().over(
        Window.partitionBy("item").orderBy(F.desc("score"), "similar_item")))
    top = ranked.where(F.col("rank") <= k).select("item", F.col("rank").cast("int"), "similar_item", "score")
    source = _column(df, item, "item")
    return _typed_keys(top, df, {"item": source, "similar_item": source})


@dataclass(frozen=True)
class AlsSettings:
    """MLlib ALS's settings, checked."""
    factors: int = 32
    iterations: int = 10
    regularization: float = 0.05
    alpha: float = 10.0
    seed: int = 0

    def __post_init__(self):
        _count(self.factors, "factors", 1, 1000)
        _count(self.iterations, "iterations", 1, 1000)
        for name in ("regularization", "alpha"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise InvalidArgument(name, f"must be a positive number, got {v!r}", f"Pass e.g. {name}=0.05")


def _als_top_k(events, k: int, settings: AlsSettings):
    """(user, rank, item, score): per user of ``events`` (user, item, w), the top ``k`` items it does not have."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    users = StringIndexer(inputCol="user", outputCol="u").fit(events)
    items = StringIndexer(inputCol="item", outputCol="i").fit(events)
    data = items.transform(users.transform(events)).select(F.col("u").cast("int"), F.col("i").cast("int"), "w",
                                                           "user", "item").cache()
    als = ALS(userCol="u", itemCol="i", ratingCol="w", implicitPrefs=True, rank=settings.factors,
              maxIter=settings.iterations, regParam=float(settings.regularization), alpha=float(settings.alpha),
              seed=settings.seed, coldStartStrategy="drop")
    model = als.fit(data)
    most_seen = data.groupBy("u").count().agg(F.max("count")).first()[0] or 0
    # enough candidates that k remain after removing what each user has; then the user's own items are dropped
    recs = (model.recommendForAllUsers(min(k + most_seen, len(items.labelsArray[0])))
            .select("u", F.posexplode("recommendations").alias("pos", "rec"))
            .select("u", F.col("rec.i").alias("i"), F.col("rec.rating").cast("double").alias("score"))
            .join(data.select("u", "i"), ["u", "i"], "left_anti"))
    ranked = recs.withColumn("rank", F.row_number().over(Window.partitionBy("u").orderBy(F.desc("score"), "i")))
    user_names = data.select("u", "user").distinct()
    item_names = data.select("i", "item").distinct()
    return (ranked.where(F.col("rank") <= k).join(user_names, "u").join(item_names, "i")
            .select("user", F.col("rank").cast("int"), "item", "score"))


def recommend_items(df, k: int = 10, *, user: str, item: str, weight: str | None = None, factors: int = 32,
                    iterations: int = 10, regularization: float = 0.05, alpha: float = 10.0, seed: int = 0):
    """Top ``k`` unseen items per user from interactions (``weight``: a strength per row, default 1 each)."""
    settings = AlsSettings(factors, iterations, regularization, alpha, seed)
    top = _als_top_k(_events(df, user, item, weight), _count(k, "k", 1, 1000), settings)
    return _typed_keys(top, df, {"user": _column(df, user, "user"), "item": _column(df, item, "item")})


def evaluate_recommender(df, k: int = 10, *, user: str, item: str, time: str, weight: str | None = None,
                         test_fraction: float = 0.2, factors: int = 32, iterations: int = 10,
                         regularization: float = 0.05, alpha: float = 10.0, seed: int = 0):
    """MLlib's ALS against popularity on DuckDB's holdout: per user with two or more items, the round(test_fraction
    * n) items met last (at least one, never all) are held out; each method ranks the items a user has not met in
    training and is scored by ``tasks.recommend.ranking_metrics``' definitions (means over the users with held-out
    items; coverage over the items seen in training). One row per method with the leading columns of DuckDB's."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    k = _count(k, "k", 1, 1000)
    settings = AlsSettings(factors, iterations, regularization, alpha, seed)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise InvalidArgument("test_fraction", f"must be between 0 and 1, got {test_fraction!r}", "Pass e.g. 0.2")
    t = _column(df, time, "time")
    firsts = (df.select(F.col(_column(df, user, "user")).cast("string").alias("user"),
                        F.col(_column(df, item, "item")).cast("string").alias("item"), F.col(t).alias("t"))
              .dropna(subset=["user", "item"]).groupBy("user", "item").agg(F.min("t").alias("t")))
    per_user = Window.partitionBy("user")
    n = F.count(F.lit(1)).over(per_user)
    n_test = F.when(n >= 2, F.least(F.greatest(F.lit(1), F.floor(n * test_fraction + 0.5)), n - 1)).otherwise(0)
    split = firsts.select("user", "item", (F.row_number().over(per_user.orderBy(F.col("t").asc_nulls_first(), "item"))
                                           > n - n_test).alias("test")).cache()
    train = _events(df, user, item, weight).join(split.where(~F.col("test")).select("user", "item"), ["user", "item"])
    relevant = split.where("test").select("user", "item")
    if relevant.isEmpty():
        raise InvalidArgument("relation", "no user has two or more distinct items, so nothing can be held out",
                              "Evaluate on a relation where users interact with several items")
    catalogue = max(train.select("item").distinct().count(), 1)
    most_seen = train.groupBy("user").count().agg(F.max("count")).first()[0] or 0
    # ties in popularity go to the item DuckDB encodes first: first met in the pairs sorted by (user, item)
    encoded_first = firsts.groupBy("item").agg(F.min("user").alias("first_user"))
    popular = (train.groupBy("item").agg(F.countDistinct("user").alias("score")).join(encoded_first, "item")
               .orderBy(F.desc("score"), "first_user", "item").limit(k + most_seen))
    eval_users = relevant.select("user").distinct()
    by_popularity = (eval_users.crossJoin(popular).join(train.select("user", "item"), ["user", "item"], "left_anti")
                     .withColumn("rank", F.row_number().over(per_user.orderBy(F.desc("score"), "first_user", "item")))
                     .where(F.col("rank") <= k))
    rows = {"popular": _ranking_metrics(by_popularity, relevant, eval_users, k, catalogue),
            "als": _ranking_metrics(_als_top_k(train, k, settings), relevant, eval_users, k, catalogue)}
    base = rows["popular"]["ndcg_at_k"]
    best = max(rows, key=lambda m: rows[m]["ndcg_at_k"])
    metrics = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")
    return df.sparkSession.createDataFrame(
        [(m, *(float(r[c]) for c in metrics), r["ndcg_at_k"] / base if base > 0 else None, m == best, r["users"])
         for m, r in rows.items()],
        "method string, precision_at_k double, recall_at_k double, ndcg_at_k double, map_at_k double, "
        "coverage double, ndcg_vs_popular double, best boolean, users bigint")  # EVAL_ROW's leading columns


def _ranking_metrics(ranked, relevant, eval_users, k: int, catalogue: int) -> dict:
    """``tasks.recommend.ranking_metrics`` in Spark: binary gains, log2(rank + 1) discounts, recall over the
    held-out items, MAP@k over min(k, held-out items); users the method recommends nothing to count as zeros."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ranked = ranked.where(F.col("rank") <= k).select("user", "item", "rank")
    hits = (ranked.join(relevant.withColumn("hit", F.lit(1)), ["user", "item"], "left")
            .withColumn("hit", F.coalesce("hit", F.lit(0)))
            .withColumn("hits_so_far", F.sum("hit").over(Window.partitionBy("user").orderBy("rank"))))
    per_user = hits.groupBy("user").agg(
        F.sum("hit").alias("n_hit"),
        F.sum(F.col("hit") / F.log2(F.col("rank") + 1)).alias("dcg"),
        F.sum(F.col("hit") * F.col("hits_so_far") / F.col("rank")).alias("ap_sum"))
    ideal = [float(sum(1 / np.log2(j + 1) for j in range(1, m + 1))) for m in range(1, k + 1)]
    n_rel = relevant.groupBy("user").agg(F.count(F.lit(1)).alias("n_rel"))
    cut = F.least(F.col("n_rel"), F.lit(k))
    scored = (eval_users.join(n_rel, "user").join(per_user, "user", "left").fillna(0, ["n_hit", "dcg", "ap_sum"])
              .select((F.col("n_hit") / k).alias("precision_at_k"), (F.col("n_hit") / F.col("n_rel")).alias("recall_at_k"),
                      (F.col("dcg") / F.element_at(F.array(*map(F.lit, ideal)), cut.cast("int"))).alias("ndcg_at_k"),
                      (F.col("ap_sum") / cut).alias("map_at_k")))
    means = scored.agg(*(F.avg(c).alias(c) for c in scored.columns), F.count(F.lit(1)).alias("users")).first()
    coverage = ranked.select("item").distinct().count() / catalogue
    return {**means.asDict(), "coverage": coverage}


# --------------------------------------------------------------------------------------------------------
# SQL table functions: DuckDB's own recommenders over every row, in one task
# --------------------------------------------------------------------------------------------------------
def _in_duckdb(function: str, table: pa.Table, k, method) -> pa.Table:
    """DuckDB's ``function(events, k, method := ...)`` on ``table`` (its roles inferred by DuckDB's rules), in a
    scratch database on the worker; keys as text (a Spark table function has one row type)."""
    import warehouse_ml as wml
    from ..binding.keys import literal

    con = wml.connect()
    try:
        con.register("events_arrow", table)
        con.execute("CREATE TABLE events AS FROM events_arrow")
        method_arg = "" if method is None else f", method := {literal(method)}"
        out = con.execute(f"FROM {function}('events', {literal(k)}{method_arg})").to_arrow_table()
    finally:
        con.close()
    keys = [c for c in ("user", "item", "similar_item") if c in out.column_names]
    for c in keys:
        out = out.set_column(out.schema.get_field_index(c), c, pc.cast(out.column(c), pa.string()))
    return out


def recommender_udtfs() -> dict:
    """recommend_items and similar_items for Spark SQL: ``recommend_items(TABLE(events) WITH SINGLE PARTITION, 10,
    'als')``. Every row goes to one call (a one-machine recommender, as in DuckDB: the same rows give DuckDB's
    results); for a factorisation across the cluster use the DataFrame function ``recommend_items`` (MLlib)."""
    from ..functions.recommend import REC_ROW, SIM_ROW

    def arguments(given: dict) -> tuple:
        return _count(given.get("k") if given.get("k") is not None else 10, "k", 1, 1000), given.get("method")

    return {name: partition_udtf(name, spark_ddl(row), ("k", "method"), arguments,
                                 lambda table, args, name=name: _in_duckdb(name, table, *args))
            for name, row in (("recommend_items", REC_ROW), ("similar_items", SIM_ROW))}
