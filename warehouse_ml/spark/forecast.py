"""forecast_demand on Spark: the kernels of ``tasks.forecast`` over the rows of one partition of items.

Both spellings feed ``forecast_arrow``, which does what ``functions.forecast.load_series`` + ``forecast_table``
do in DuckDB (one row per item and date, duplicates summed and said so, the same panel and the same kernel),
so the same method on the same data gives the same forecasts:

- SQL, a PyArrow-native UDTF: ``SELECT * FROM forecast_demand(TABLE(sales) PARTITION BY (item), 28, 'ets')``;
  Spark hands it every row of one item and it forecasts that series.
- DataFrame API, ``forecast_demand(df, 28, method='ets')``: rows are hash-partitioned by item and each task
  forecasts all the series of its partition in one vectorised kernel call (fewer, larger calls: faster).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation
from ..errors import InvalidArgument
from ..binding.spec import spec
from ..functions.forecast import Roles, SeriesData, _horizon, _kernel_error, _labels, infer_roles
from ..tasks import forecast as K

# functions.forecast.FORECAST_ROW in Spark's DDL: the same names and types as DuckDB returns.
FORECAST_DDL = "item string, date date, forecast double, lower double, upper double, method string"


_SQL_TYPES = ((pa.types.is_date, "DATE"), (pa.types.is_timestamp, "TIMESTAMP"), (pa.types.is_integer, "BIGINT"),
              (pa.types.is_floating, "DOUBLE"), (pa.types.is_decimal, "DECIMAL(38,10)"),
              (pa.types.is_boolean, "BOOLEAN"))


def _sql_type(t: pa.DataType) -> str:
    """The DuckDB type name of an Arrow column, for the role rules shared with ``functions.forecast``."""
    return next((name for test, name in _SQL_TYPES if test(t)), "VARCHAR")


def roles_of(schema: pa.Schema, item: str | None, date: str | None, value: str | None, name: str = "table") -> Roles:
    """Column roles of a Spark relation by the same rules (and errors) as DuckDB's forecast_demand."""
    rel = Relation(name, "", "", name, {f.name: _sql_type(f.type) for f in schema})
    return infer_roles(rel, item, date, value)


def forecast_arrow(table: pa.Table, roles: Roles, horizon: int, method: str, level: float) -> pa.Table:
    """Forecast every item in ``table``: aggregate per (item, date), build the panel, run the kernel."""
    n = table.num_rows
    item = pc.cast(table.column(roles.item), pa.string()) if roles.item else pa.nulls(n, pa.string())
    day = pc.cast(pc.cast(table.column(roles.date), pa.date32()), pa.int32())
    v = pc.cast(table.column(roles.value), pa.float64())
    # the numeric policy, as in DuckDB: NaN and +-inf are missing values, counted per series for the note
    bad = pc.fill_null(pc.or_(pc.is_nan(v), pc.is_inf(v)), False)
    rows = pa.table({"item": item, "d": day, "v": pc.if_else(bad, pa.scalar(None, pa.float64()), v),
                     "bad": pc.cast(bad, pa.int64())})
    rows = rows.filter(pc.is_valid(rows.column("d")))
    agg = rows.group_by(["item", "d"], use_threads=False).aggregate([("v", "sum"), ([], "count_all"), ("bad", "sum")])
    agg = agg.sort_by([("item", "ascending"), ("d", "ascending")])  # Arrow puts NULL items last, as DuckDB does
    # sum over only-NULL values: Arrow gives NULL, DuckDB too; both become NaN (a gap) in the panel
    enc = agg.column("item").combine_chunks().dictionary_encode()
    names = enc.dictionary
    codes = enc.indices.fill_null(len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    n_series = len(names) + int(enc.null_count > 0)
    if enc.null_count:
        names = pa.concat_arrays([names, pa.array([None], pa.string())])
    days = agg.column("d").to_numpy().astype(np.int64)
    values = agg.column("v_sum").cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    counts = agg.column("count_all").to_numpy()
    dup = np.bincount(codes[counts > 1], minlength=n_series) if n_series else np.zeros(0, int)
    nonfinite = np.bincount(codes, weights=agg.column("bad_sum").to_numpy(), minlength=n_series).astype(np.int64)
    data = SeriesData(names, K.build_panel(codes, days, values, n_series), dup, nonfinite)
    try:
        res = K.forecast_panel(data.panel, horizon, method, level)
    except K.ForecastInputError as e:
        raise _kernel_error(e) from None
    labels = np.asarray(_labels(data, res.method), dtype=object)
    return pa.table({
        "item": data.names.take(pa.array(res.series, pa.int64())) if len(data.names) else pa.array([], pa.string()),
        "date": pa.array(res.day.astype("datetime64[D]"), pa.date32()),
        "forecast": pa.array(res.forecast, pa.float64(), from_pandas=True),
        "lower": pa.array(res.lower, pa.float64(), from_pandas=True),
        "upper": pa.array(res.upper, pa.float64(), from_pandas=True),
        "method": pa.array(labels[res.series] if len(res.series) else [], pa.string()),
    })


GLOBAL_METHODS = ("gbm", "nn")  # one model learnt across all series: a partition would see only some of them


def _validated(horizon, method, level) -> tuple[int, str, float]:
    """The arguments checked by forecast_demand's spec, as DuckDB checks them."""
    opts = spec("forecast_demand").parse_options({"method": method, "level": level})
    m = opts["method"]
    if m in GLOBAL_METHODS:
        raise InvalidArgument("method", f"'{m}' learns one model across all series, which a per-partition forecast on "
                              "Spark cannot do yet", "Use a per-series method (auto, ets, theta, seasonal_naive, "
                              "croston, arima, naive), or run this one in DuckDB")
    return _horizon(horizon), m, opts["level"]


def forecast_demand(df, horizon, *, item: str | None = None, date: str | None = None, value: str | None = None,
                    method: str = "auto", level: float = 0.95):
    """A Spark DataFrame of forecasts, one row per item and future date (the columns of DuckDB's forecast_demand)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    h, m, lv = _validated(horizon, method, level)
    roles = roles_of(to_arrow_schema(df.schema), item, date, value, "DataFrame")
    cols = [c for c in (roles.item, roles.date, roles.value) if c]
    rows = df.select(*cols)
    rows = rows.repartition(F.col(roles.item)) if roles.item else rows.coalesce(1)

    def per_partition(batches):
        batches = list(batches)
        if not batches or not sum(b.num_rows for b in batches):
            return
        for batch in forecast_arrow(pa.Table.from_batches(batches), roles, h, m, lv).to_batches():
            yield batch

    return rows.mapInArrow(per_partition, FORECAST_DDL)


def forecast_udtf():
    """The SQL table function: ``forecast_demand(TABLE(t) PARTITION BY (item), horizon[, method[, level]])``."""
    from pyspark.sql.functions import arrow_udtf

    @arrow_udtf(returnType=FORECAST_DDL)
    class ForecastDemand:
        """Collects one partition's rows, then forecasts them when Spark ends the partition."""

        def __init__(self):
            self.batches, self.args = [], None

        def eval(self, rows: pa.RecordBatch, horizon: pa.Array, method: pa.Array | None = None,
                 level: pa.Array | None = None):
            if self.args is None:
                self.args = _validated(_first(horizon, "horizon"), _first(method, "method", "auto"),
                                       _first(level, "level", 0.95))
            self.batches.append(rows)
            return iter(())

        def terminate(self):
            if not self.batches:
                return
            table = pa.Table.from_batches(self.batches)
            roles = roles_of(table.schema, None, None, None, "TABLE argument")
            if roles.item is None:
                raise InvalidArgument("TABLE", "the table has no item key column besides the date and the demand",
                                      "Pass the rows with their item: forecast_demand(TABLE(sales) PARTITION BY "
                                      "(item), 28)")
            yield forecast_arrow(table, roles, *self.args)

    return ForecastDemand


def _first(values: pa.Array | None, argument: str, default=None):
    """A constant argument of the UDTF (Spark passes it as a column)."""
    if values is None or len(values) == 0:
        return default
    v = values[0].as_py()
    if v is None and default is None:
        raise InvalidArgument(argument, "is NULL", f"Pass a value for {argument}")
    return default if v is None else v
