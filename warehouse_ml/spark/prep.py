"""user_features on Spark: the aggregation of ``sql/prep.sql``'s user_features macro in Spark's DataFrame API.

DuckDB's user_features is pure SQL (one GROUP BY over the orders), so Spark runs the same aggregation as
Spark SQL, with the same argument checks (``functions.prep.check_user_features``), the same cut-off rule for
``as_of`` and the same calendar-day and second-boundary differences (DuckDB's ``date_diff``). Times are read as
TIMESTAMP_NTZ (wall-clock, as DuckDB's TIMESTAMP): set ``spark.sql.session.timeZone`` to the zone a TIMESTAMP
column should be read in.
"""
from __future__ import annotations

import datetime as dt

from ..binding.catalog import is_numeric_type
from ..functions.prep import check_user_features
from .frames import frame_relation


def _kind(value) -> str:
    """The DuckDB type name ``typeof(as_of)`` / ``typeof(label_window)`` would give for a Python value."""
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    return {dt.date: "DATE", str: "VARCHAR", int: "INTEGER", float: "DOUBLE", bool: "BOOLEAN"}.get(type(value),
                                                                                                 type(value).__name__)


def _cut_text(as_of) -> str:
    """The cut-off as text for TIMESTAMP_NTZ: a date (or a text of 10 characters or fewer) means its last
    microsecond, as in the macro."""
    if isinstance(as_of, dt.datetime):
        return as_of.isoformat(" ")
    if isinstance(as_of, dt.date) or len(str(as_of).strip()) <= 10:
        day = as_of if isinstance(as_of, dt.date) else dt.datetime.fromisoformat(str(as_of).strip()).date()
        return f"{day.isoformat()} 23:59:59.999999"
    return dt.datetime.fromisoformat(str(as_of).strip()).isoformat(" ")


def user_features(df, *, as_of=None, user_col: str = "user_id", time_col: str = "order_ts", amount_col: str = "amount",
                  label_window: int | None = None, discount_col: str | None = None):
    """One row per user with an order at or before ``as_of``: DuckDB's user_features columns, in its order."""
    from pyspark.sql import functions as F

    rel = frame_relation(df, "orders")
    spec = {"user_col": user_col, "time_col": time_col, "amount_col": amount_col, "discount_col": discount_col,
            "as_of": as_of if not isinstance(as_of, dt.date) else as_of.isoformat(), "as_of_type": _kind(as_of),
            "label_window": label_window, "label_window_type": _kind(label_window)}

    def last_time(column: str):
        return df.select(F.max(F.col(column).cast("timestamp_ntz"))).first()[0]

    roles = check_user_features(rel, spec, last_time)
    user = roles["user_col"]
    lower = {c.lower(): c for c in rel.columns}
    found = next((lower[c.lower()] for c in (discount_col, "discount") if c is not None and c.lower() in lower), None)
    discount = found if found is not None and is_numeric_type(rel.columns[found]) else None  # as wml_prep_column
    src = df.select(F.col(user), F.col(roles["time_col"]).cast("timestamp_ntz").alias("t"),
                    F.col(roles["amount_col"]).cast("double").alias("a"),
                    (F.col(discount).cast("double") if discount else F.lit(None).cast("double")).alias("d"))
    cut = (src.agg(F.max("t").alias("cut")) if as_of is None
           else src.sparkSession.range(1).select(F.lit(_cut_text(as_of)).cast("timestamp_ntz").alias("cut")))
    t, cutoff = F.col("t"), F.col("cut")
    hist = t <= cutoff
    future = (t > cutoff) & (t <= cutoff + F.make_interval(days=F.lit(int(label_window or 0))))
    tagged = src.crossJoin(cut).where(t.isNotNull() & F.col(user).isNotNull()).where(hist | future)
    h_time, n = F.when(hist, t), F.count(F.when(hist, 1))
    first, last = F.min(h_time), F.max(h_time)
    seconds = F.timestamp_diff("SECOND", F.date_trunc("second", first), F.date_trunc("second", last))
    features = [
        F.datediff(F.max(cutoff), last).cast("bigint").alias("recency_days"),
        n.alias("frequency"),
        F.coalesce(F.sum(F.when(hist, F.col("a"))), F.lit(0.0)).alias("monetary"),
        F.avg(F.when(hist, F.col("a"))).alias("avg_order_value"),
        F.datediff(F.max(cutoff), first).cast("bigint").alias("tenure_days"),
        F.count(F.when(hist & (t > cutoff - F.expr("INTERVAL 30 DAYS")), 1)).alias("orders_30d"),
        F.count(F.when(hist & (t > cutoff - F.expr("INTERVAL 90 DAYS")), 1)).alias("orders_90d"),
    ]
    if discount:
        features.append(F.avg(F.when(hist, F.col("d"))).alias("avg_discount"))
    features.append(F.when(n > 1, seconds / 86400.0 / (n - 1)).alias("days_between_orders"))
    if label_window is not None:
        features.append(F.when(F.count(F.when(future, 1)) > 0, 0).otherwise(1).alias("churned"))
    return tagged.groupBy(user).agg(*features).where(F.col("frequency") > 0).orderBy(user)
