"""recommend_items on Spark: implicit-feedback ALS from Spark MLlib, the existing distributed implementation.

DuckDB's ``recommend_items(..., method := 'als')`` runs the ``implicit`` library on one machine; on a cluster
the factorisation itself must be distributed, which MLlib's ALS does. This adapter keeps DuckDB's interface:
keys in as any type and back as text, one row per (user, rank) with the item and its score, items the user
already has left out.
"""
from __future__ import annotations

from ..errors import InvalidArgument



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
    return ranked.where(F.col("rank") <= k).select("item", F.col("rank").cast("int"), "similar_item", "score")


def recommend_items(df, k: int = 10, *, user: str, item: str, weight: str | None = None, factors: int = 32,
                    iterations: int = 10, regularization: float = 0.05, alpha: float = 10.0, seed: int = 0):
    """Top ``k`` unseen items per user from interactions (``weight``: a strength per row, default 1 each)."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    k = _count(k, "k", 1, 1000)
    factors = _count(factors, "factors", 1, 1000)
    iterations = _count(iterations, "iterations", 1, 1000)
    for name, v in (("regularization", regularization), ("alpha", alpha)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise InvalidArgument(name, f"must be a positive number, got {v!r}", f"Pass e.g. {name}=0.05")
    events = _events(df, user, item, weight)
    users = StringIndexer(inputCol="user", outputCol="u").fit(events)
    items = StringIndexer(inputCol="item", outputCol="i").fit(events)
    data = items.transform(users.transform(events)).select(F.col("u").cast("int"), F.col("i").cast("int"), "w",
                                                           "user", "item").cache()
    als = ALS(userCol="u", itemCol="i", ratingCol="w", implicitPrefs=True, rank=factors, maxIter=iterations,
              regParam=float(regularization), alpha=float(alpha), seed=seed, coldStartStrategy="drop")
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
