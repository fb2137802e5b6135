"""The per-item table functions on Spark: forecast_demand, backtest_demand, explain_forecast, reorder_plan and
detect_anomalies.

Each runs the very functions DuckDB's table functions run (``functions.forecast``: the same argument checks, the
same ``SeriesData`` panel from one row per (item, date), the same kernels and output rows) on the rows of one
partition of items, so the same method on the same rows gives the same results. Two spellings:

- SQL, PyArrow-native UDTFs: ``SELECT * FROM forecast_demand(TABLE(sales) PARTITION BY (item), 28, 'ets')``;
  Spark hands each call every row of one item (the date and demand columns are inferred as in DuckDB).
- DataFrame API, ``forecast_demand(df, 28, method='ets')`` etc.: rows are hash-partitioned by item and each task
  runs one vectorised kernel call over all the series of its partition (fewer, larger calls: faster).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.spec import spec
from ..errors import InvalidArgument
from ..functions import forecast as F
from ..functions.forecast_series import Roles, SeriesData, infer_roles, series_from_groups
from ..tasks import forecast as K
from ..tasks.roles import is_date_type
from .frames import frame_relation, map_partitions, partition_udtf, relation_of, spark_ddl

STOCK = "__wml_on_hand"  # the column reorder_plan's DataFrame API joins onto the rows: the item's stock on hand


def roles_of(schema: pa.Schema, item: str | None, date: str | None, value: str | None, name: str = "table") -> Roles:
    """Column roles of a Spark relation by the same rules (and errors) as DuckDB's table functions."""
    return infer_roles(relation_of(schema, name), item, date, value)


def series_arrow(table: pa.Table, roles: Roles) -> SeriesData:
    """The series of ``table``: one row per (item, date) as DuckDB's ``load_series`` query makes them (finite
    values summed, rows and NaN/inf values counted), then the same panel."""
    n = table.num_rows
    item = pc.cast(table.column(roles.item), pa.string()) if roles.item else pa.nulls(n, pa.string())
    day = pc.cast(table.column(roles.date), pa.date32())
    v = pc.cast(table.column(roles.value), pa.float64())
    bad = pc.fill_null(pc.or_(pc.is_nan(v), pc.is_inf(v)), False)  # the numeric policy: NaN and +-inf are missing
    rows = pa.table({"item": item, "d": day, "v": pc.if_else(bad, pa.scalar(None, pa.float64()), v),
                     "bad": pc.cast(bad, pa.int64())})
    rows = rows.filter(pc.is_valid(rows.column("d")))
    agg = rows.group_by(["item", "d"], use_threads=False).aggregate([("v", "sum"), ([], "count_all"), ("bad", "sum")])
    agg = agg.sort_by([("item", "ascending"), ("d", "ascending")])  # Arrow puts NULL items last, as DuckDB does
    return series_from_groups(agg.rename_columns(["item", "d", "v", "n", "nonfinite"]))


GLOBAL_METHODS = ("gbm", "nn")  # one model learnt across all series: a partition would see only some of them


def _per_series(method: str | None) -> None:
    if method in GLOBAL_METHODS:
        raise InvalidArgument("method", f"'{method}' learns one model across all series, which a per-partition "
                              "function on Spark cannot do yet", "Use a per-series method (auto, ets, theta, "
                              "seasonal_naive, seasonal_drift, seasonal_median, croston, arima, naive), or run "
                              "this one in DuckDB")


@dataclass(frozen=True)
class SeriesFunction:
    """One table function: its positional arguments after the table (name, default), how it validates them
    into the arguments of ``rows`` (DuckDB's own checks), and ``rows(data, *args, stock)``."""
    name: str
    ddl: str
    params: tuple[tuple[str, object], ...]
    validate: Callable[[dict], tuple]
    rows: Callable[..., pa.Table]

    def arguments(self, values: dict) -> tuple:
        """Validated arguments from ``{param: value}`` (missing or NULL: the default)."""
        given = {k: (values.get(k) if values.get(k) is not None else default) for k, default in self.params}
        method = given.get("method")
        _per_series(method.strip().lower() if isinstance(method, str) else method)
        return self.validate(given)


def _options(name: str, given: dict, *keys: str) -> dict:
    """Options of DuckDB's function ``name`` checked by its spec, as DuckDB checks them (defaults where not given)."""
    return spec(name).parse_options({k: given[k] for k in keys})


def _forecast(given):
    opts = _options("forecast_demand", given, "method", "level")
    return F.check_horizon(given["horizon"]), opts["method"], opts["level"]


FUNCTIONS = {f.name: f for f in (
    SeriesFunction("forecast_demand", spark_ddl(F.FORECAST_ROW),
                   (("horizon", None), ("method", "auto"), ("level", 0.95)), _forecast, lambda data, h, m, lv, stock: F.forecast_rows(data, h, m, lv)[0]),
    SeriesFunction("backtest_demand", spark_ddl(F.BACKTEST_ROW),
                   (("horizon", None), ("folds", 3), ("method", None), ("level", 0.95)),
                   lambda given: F.backtest_options(given["horizon"],
                                                    _options("backtest_demand", given, "folds", "method", "level")),
                   lambda data, h, folds, methods, lv, stock: F.backtest_rows(data, h, folds, methods, lv)),
    SeriesFunction("explain_forecast", spark_ddl(F.EXPLAIN_ROW), (("horizon", None),),
                   lambda given: (F.check_horizon(given["horizon"]),),
                   lambda data, h, stock: F.explain_rows(data, h, K.explain_panel(data.panel, h))),
    SeriesFunction("detect_anomalies", spark_ddl(F.ANOMALY_ROW), (("level", 0.99),),
                   lambda given: (_options("detect_anomalies", given, "level")["level"],),
                   lambda data, lv, stock: F.anomaly_rows(data, lv)),
    SeriesFunction("reorder_plan", spark_ddl(F.REORDER_ROW),
                   (("lead_time", 7), ("service_level", 0.95), ("method", "auto"), ("review_period", 0)),
                   lambda given: F.reorder_options(_options("reorder_plan", given, "lead_time", "service_level",
                                                            "method", "review_period")),
                   F.reorder_rows),
)}


def run_series_function(fn: SeriesFunction, table: pa.Table, roles: Roles, args: tuple) -> pa.Table:
    """``fn`` over every item in ``table`` (rows of one partition); a ``STOCK`` column gives each item's stock."""
    if STOCK not in table.column_names:
        return fn.rows(series_arrow(table, roles), *args, None)
    per_item = pa.table({"item": pc.cast(table.column(roles.item), pa.string()), "qty": table.column(STOCK)})
    per_item = per_item.group_by("item", use_threads=False).aggregate([("qty", "max")])

    def stock(items: pa.Array) -> np.ndarray:
        pos = pc.index_in(items, value_set=per_item.column("item").combine_chunks())
        return pc.fill_null(pc.take(per_item.column("qty_max"), pos), 0.0).to_numpy(zero_copy_only=False)
    return fn.rows(series_arrow(table, roles), *args, stock)


# --------------------------------------------------------------------------------------------------------
# DataFrame API
# --------------------------------------------------------------------------------------------------------
def _partitioned(fn: SeriesFunction, df, args: tuple, item, date, value, stock=None):
    """Hash-partition ``df``'s rows by item and run ``fn`` over each partition with ``mapInArrow``."""
    roles = infer_roles(frame_relation(df), item, date, value)
    rows = df.select(*[c for c in (roles.item, roles.date, roles.value) if c])
    if stock is not None:
        rows = rows.join(stock, roles.item, "left")
    return map_partitions(rows, roles.item, fn.ddl, lambda table: run_series_function(fn, table, roles, args),
                          typed_keys={"item": roles.item})


def forecast_demand(df, horizon, *, item: str | None = None, date: str | None = None, value: str | None = None,
                    method: str = "auto", level: float = 0.95):
    """A Spark DataFrame of forecasts, one row per item and future date (the columns of DuckDB's forecast_demand)."""
    fn = FUNCTIONS["forecast_demand"]
    return _partitioned(fn, df, fn.arguments(dict(horizon=horizon, method=method, level=level)), item, date, value)


def backtest_demand(df, horizon, *, folds: int = 3, method: str | None = None, level: float = 0.95,
                    item: str | None = None, date: str | None = None, value: str | None = None):
    """Rolling-origin accuracy per item and method (the columns of DuckDB's backtest_demand)."""
    fn = FUNCTIONS["backtest_demand"]
    args = fn.arguments(dict(horizon=horizon, folds=folds, method=method, level=level))
    return _partitioned(fn, df, args, item, date, value)


def explain_forecast(df, horizon, *, item: str | None = None, date: str | None = None, value: str | None = None):
    """Each item's ETS forecast taken apart: level + trend + season + yearly + holiday + residual = forecast (the
    columns of DuckDB's explain_forecast; the gbm explanation needs every series at once and stays in DuckDB)."""
    fn = FUNCTIONS["explain_forecast"]
    return _partitioned(fn, df, fn.arguments(dict(horizon=horizon)), item, date, value)


def detect_anomalies(df, *, level: float = 0.99, item: str | None = None, date: str | None = None,
                     value: str | None = None):
    """Every period of every item against its expected value and band (the columns of DuckDB's detect_anomalies)."""
    fn = FUNCTIONS["detect_anomalies"]
    return _partitioned(fn, df, fn.arguments(dict(level=level)), item, date, value)


def reorder_plan(df, *, lead_time: int = 7, service_level: float = 0.95, on_hand=None, method: str = "auto",
                 review_period: int = 0, item: str | None = None, date: str | None = None, value: str | None = None,
                 on_hand_item: str | None = None, on_hand_qty: str | None = None):
    """Reorder points and order quantities per item (the columns of DuckDB's reorder_plan). ``on_hand``: a
    DataFrame of stock per item (its latest row per item when it has one date column, else the sum)."""
    fn = FUNCTIONS["reorder_plan"]
    args = fn.arguments(dict(lead_time=lead_time, service_level=service_level, method=method,
                             review_period=review_period))
    stock = None
    if on_hand is not None:
        roles = infer_roles(frame_relation(df), item, date, value)
        stock = _stock(on_hand, roles.item, on_hand_item, on_hand_qty)
    return _partitioned(fn, df, args, item, date, value, stock)


def _stock(on_hand, item: str | None, item_col: str | None, qty_col: str | None):
    """One row per item of ``on_hand``: ``item`` (named as in the sales rows) and ``STOCK``, found by DuckDB's
    reorder_plan rules: the item column is ``on_hand_item`` or the sales' item name, the quantity ``on_hand_qty``
    or the one numeric column that is not an id; with one date column, the latest row per item counts."""
    from pyspark.sql import functions as SF

    if item is None:
        raise InvalidArgument("on_hand", "the sales rows have no item column to match stock to",
                              "Pass item='...' naming the sales' item key")
    rel = frame_relation(on_hand, "on_hand")
    it = rel.column(item_col or item, "on_hand_item")
    qty = F.on_hand_quantity(rel, it, qty_col)
    dates = [c for c, t in rel.columns.items() if is_date_type(t)]
    q = SF.col(qty).cast("double")
    if len(dates) == 1:
        stock = on_hand.where(SF.col(dates[0]).isNotNull()).groupBy(it).agg(SF.max_by(q, SF.col(dates[0])).alias(STOCK))
    else:
        stock = on_hand.groupBy(it).agg(SF.sum(q).alias(STOCK))
    return stock.withColumnRenamed(it, item)


# --------------------------------------------------------------------------------------------------------
# SQL table functions
# --------------------------------------------------------------------------------------------------------
def series_udtf(fn: SeriesFunction):
    """``fn`` as a SQL table function: ``name(TABLE(t) PARTITION BY (item), arg, ...)`` (arguments positional)."""

    def run(table: pa.Table, args: tuple) -> pa.Table:
        roles = roles_of(table.schema, None, None, None, "TABLE argument")
        if roles.item is None:
            raise InvalidArgument("TABLE", "the table has no item key column besides the date and the demand",
                                  f"Pass the rows with their item: {fn.name}(TABLE(sales) PARTITION BY (item), ...)")
        return run_series_function(fn, table, roles, args)

    return partition_udtf(fn.name, fn.ddl, tuple(p for p, _ in fn.params), fn.arguments, run)
