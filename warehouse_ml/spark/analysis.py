"""ab_test, price_elasticity and optimal_price on Spark: the DuckDB functions' own column rules and kernels per partition.

- ``price_elasticity(df)`` fits each item's demand curve independently, so rows are hash-partitioned by item and
  each task runs ``functions.pricing.elasticity_table`` (the kernel of ``tasks.pricing``) over its items;
  ``optimal_price(df, cost=...)`` likewise runs ``functions.pricing.optimal_table``.
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


def _pricing_rows(table: pa.Table, item: str | None, price: str, units: str, date: str | None,
                  cost: str | None = None) -> pa.Table:
    """The columns DuckDB's pricing functions read (``functions.pricing._read``): item as text ('all' without
    one), price, units and cost as DOUBLE, t as epoch microseconds of the date (``epoch_us(CAST(date AS
    TIMESTAMP))``)."""
    n = table.num_rows
    cols = {"item": pc.cast(table.column(item), pa.string()) if item else pa.repeat(pa.scalar("all"), n),
            "price": pc.cast(table.column(price), pa.float64()), "units": pc.cast(table.column(units), pa.float64())}
    if cost:
        cols["cost"] = pc.cast(table.column(cost), pa.float64())
    if date:
        cols["t"] = pc.cast(pc.cast(table.column(date), pa.timestamp("us")), pa.int64())
    return pa.table(cols)


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
    rows = df.select(*dict.fromkeys(c for c in (item, price, units, date) if c))
    return map_partitions(rows, item, spark_ddl(P.ELASTICITY_ROW), lambda table: P.elasticity_table(
        _pricing_rows(table, item, price, units, date), opts, bool(date)))


def optimal_price(df, *, cost=None, item: str | None = None, price: str | None = None, units: str | None = None,
                  date: str | None = None, controls: str = "auto", model: str = "poisson",
                  min_price: float | None = None, max_price: float | None = None, within_observed: bool = True,
                  alpha: float = 0.05, min_rows: int = 5, min_price_variation: float = 0.02):
    """One row per item: the profit-maximising price from its demand curve and unit cost (``cost``: a column
    name or one number), DuckDB's optimal_price columns; each item's rows are fitted in one task."""
    opts = spec("optimal_price").parse_options(dict(
        cost=cost, item=item, price=price, units=units, date=date, controls=controls, model=model,
        min_price=min_price, max_price=max_price, within_observed=within_observed, alpha=alpha, min_rows=min_rows,
        min_price_variation=min_price_variation))
    rel = frame_relation(df)
    item, price, units = P._resolve(rel, opts)
    cost_column = P._numeric(rel, rel.column(opts["cost"], "cost"), "cost") if isinstance(opts["cost"], str) else None
    cost_const = opts["cost"] if cost_column is None else None
    date = P._date(rel, opts)
    rows = df.select(*dict.fromkeys(c for c in (item, price, units, cost_column, date) if c))
    return map_partitions(rows, item, spark_ddl(P.OPTIMAL_ROW), lambda table: P.optimal_table(
        _pricing_rows(table, item, price, units, date, cost_column), opts, date, cost_const))
