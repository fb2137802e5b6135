"""ab_test and price_elasticity on Spark: the DuckDB functions' own column rules and kernels per partition.

- ``price_elasticity(df)`` fits each item's demand curve independently, so rows are hash-partitioned by item and
  each task runs ``functions.pricing.elasticity_table`` (the kernel of ``tasks.pricing``) over its items.
- ``ab_test(df, metric=..., experiment='exp_id')`` analyses many experiments at once: rows are partitioned by the
  experiment key and each experiment's rows go through ``functions.abtest.ab_rows`` (the kernel of
  ``tasks.abtest`` takes every row of an experiment, e.g. for its rank test, so one experiment must fit one
  worker's memory). Without ``experiment`` the whole DataFrame is one experiment, analysed in one task.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..functions import abtest as A
from ..functions import pricing as P
from ..binding.spec import spec
from .frames import arrow_schema, frame_relation, map_partitions, spark_ddl


def ab_test(df, *, metric: str, variant: str | None = None, control=None, covariate: str | None = None,
            alpha: float = 0.05, split=None, test: str = "auto", experiment: str | None = None):
    """One row per variant of each experiment (DuckDB's ab_test columns, after the ``experiment`` key if given)."""
    opts = spec("ab_test").parse_options(dict(variant=variant, metric=metric, control=control, covariate=covariate,
                                              alpha=alpha, split=split, test=test))  # checked as DuckDB checks them
    alpha = opts["alpha"]
    rel = frame_relation(df)
    variant, metric, covariate = A.ab_columns(rel, opts, "df")
    key = rel.column(experiment, "experiment") if experiment is not None else None
    schema = arrow_schema(A.AB_ROW)

    def analyse(table: pa.Table) -> pa.Table:
        cols = {"v": pc.cast(table.column(variant), pa.string()), "m": pc.cast(table.column(metric), pa.float64())}
        if covariate:
            cols["c"] = pc.cast(table.column(covariate), pa.float64())
        return pa.Table.from_pylist(A.ab_rows(pa.table(cols), opts, alpha), schema=schema)

    rows = df.select(*dict.fromkeys(c for c in (key, variant, metric, covariate) if c))
    return map_partitions(rows, key, spark_ddl(A.AB_ROW), analyse, per_key=True)


def price_elasticity(df, *, item: str | None = None, price: str | None = None, units: str | None = None,
                     date: str | None = None, controls: str = "auto", model: str = "poisson", alpha: float = 0.05,
                     min_rows: int = 5, min_price_variation: float = 0.02):
    """One row per item: its price elasticity with interval and fit (DuckDB's price_elasticity columns)."""
    opts = spec("price_elasticity").parse_options(dict(
        item=item, price=price, units=units, date=date, controls=controls, model=model, alpha=alpha,
        min_rows=min_rows, min_price_variation=min_price_variation))
    rel = frame_relation(df)
    item, price, units = P._resolve(rel, opts)
    date = P._date(rel, opts)

    def fit(table: pa.Table) -> pa.Table:
        n = table.num_rows
        cols = {"item": pc.cast(table.column(item), pa.string()) if item else pa.repeat(pa.scalar("all"), n),
                "price": pc.cast(table.column(price), pa.float64()),
                "units": pc.cast(table.column(units), pa.float64())}
        if date:  # epoch microseconds of the date or timestamp, as DuckDB's epoch_us(CAST(date AS TIMESTAMP))
            cols["t"] = pc.cast(pc.cast(table.column(date), pa.timestamp("us")), pa.int64())
        return P.elasticity_table(pa.table(cols), opts, bool(date))

    rows = df.select(*dict.fromkeys(c for c in (item, price, units, date) if c))
    return map_partitions(rows, item, spark_ddl(P.ELASTICITY_ROW), fit)
