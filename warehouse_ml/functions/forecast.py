"""forecast_demand, backtest_demand, reorder_plan: demand forecasting from SQL (SQL_SURFACE.md section 4).

Each is a table UDF ``wml_<name>(relation, <number>, options JSON)`` declared by its spec, whose TEMP table macro
casts the item and date back to the source columns' types. The UDF resolves the relation and its column roles against the catalog, aggregates one row
per (item, date) in SQL on a second cursor (quoted catalog names only; duplicate rows are summed and said so
in ``method``), reads Arrow, runs the vectorised kernels of ``warehouse_ml.tasks.forecast`` on all series at
once and returns the rows. Nothing is written to the database.

``plot_forecast(con, relation, item, horizon, out_png, ...)`` draws history, forecast and bands to a PNG.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation, is_numeric_type
from ..binding.registry import scalar_udf
from ..binding.spec import (
    Arg, Identifier, Identifiers, Interval, Option, RelationArg, RelationName, StrOptions, Text, sql_function,
)
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import forecast as K
from ..tasks import roles
from ..tasks.roles import is_date_type

FORECAST_ROW = "STRUCT(item VARCHAR, date DATE, forecast DOUBLE, lower DOUBLE, upper DOUBLE, method VARCHAR)"
BACKTEST_ROW = ("STRUCT(item VARCHAR, method VARCHAR, mase DOUBLE, smape DOUBLE, rmse DOUBLE, coverage DOUBLE, "
                "folds INTEGER)")
ANOMALY_ROW = ("STRUCT(item VARCHAR, date DATE, value DOUBLE, expected DOUBLE, lower DOUBLE, upper DOUBLE, "
               "is_anomaly BOOLEAN, score DOUBLE)")
EXPLAIN_ROW = ("STRUCT(item VARCHAR, date DATE, forecast DOUBLE, level DOUBLE, trend DOUBLE, season DOUBLE, "
               "yearly DOUBLE, method VARCHAR)")
REORDER_ROW = ("STRUCT(item VARCHAR, lead_time_demand DOUBLE, safety_stock DOUBLE, reorder_point DOUBLE, "
               "on_hand DOUBLE, order_qty DOUBLE, method VARCHAR)")

BACKTEST_METHODS = ("seasonal_naive", "ets", "theta", "croston", "auto")


# --------------------------------------------------------------------------------------------------------
# Arguments and roles
# --------------------------------------------------------------------------------------------------------
def _kernel_error(e: K.ForecastInputError) -> InvalidArgument:
    return InvalidArgument(e.argument, e.problem, e.fix)


@dataclass
class Roles:
    item: str | None
    date: str
    value: str


def infer_roles(rel: Relation, item: str | None, date: str | None, value: str | None) -> Roles:
    """Column roles: the named ones, else the only column that fits (one date, one numeric measure, one key)."""
    cols = rel.columns
    if date is not None:
        d = rel.column(date, "date")
        if not is_date_type(cols[d]):
            raise InvalidArgument("date", f"column '{d}' of '{rel.name}' has type {cols[d]}, not DATE or TIMESTAMP",
                                  f"Name a DATE or TIMESTAMP column, or convert it in a view, e.g. CREATE VIEW "
                                  f"v AS SELECT *, CAST({d} AS DATE) AS day FROM {rel.table}")
    else:
        cands = [c for c, t in cols.items() if is_date_type(t)]
        if not cands:
            raise InvalidArgument("date", f"relation '{rel.name}' has no DATE or TIMESTAMP column",
                                  "Convert one in a view (CAST(col AS DATE)) and name it with date := 'col'")
        if len(cands) > 1:
            raise AmbiguousColumn(rel.name, "date", "date column", cands)
        d = cands[0]
    it = rel.column(item, "item") if item is not None else None
    if it is not None and it == d:
        raise InvalidArgument("item", f"'{it}' is already the date column", "Name a different column as the item key")
    if value is not None:
        v = rel.column(value, "value")
        if not is_numeric_type(cols[v]):
            raise InvalidArgument("value", f"column '{v}' of '{rel.name}' has type {cols[v]}, not a number",
                                  "Name a numeric column holding the demand (units sold)")
        if v in (d, it):
            raise InvalidArgument("value", f"'{v}' is already used as the {'date' if v == d else 'item'} column",
                                  "Name the column holding the demand (units sold)")
    else:
        cands = [c for c, t in cols.items() if c not in (d, it) and is_numeric_type(t) and not roles.SERIES_KEY.search(c)]
        if len(cands) != 1:
            raise AmbiguousColumn(rel.name, "value", "demand measure (a numeric column)", cands)
        v = cands[0]
    if it is None:
        rest = [c for c in cols if c not in (d, v)]
        cands = [c for c in rest if not is_numeric_type(cols[c]) and not is_date_type(cols[c])]
        if not cands:
            cands = [c for c in rest if is_numeric_type(cols[c]) and roles.SERIES_KEY.search(c)]
        if len(cands) > 1:
            raise AmbiguousColumn(rel.name, "item", "item key", cands)
        it = cands[0] if cands else None  # no key column: the whole relation is one series
    return Roles(it, d, v)


NO_ITEM = "__wml_no_item"  # the placeholder column the macros add for a relation that is one series


@scalar_udf("wml_forecast_source", args=["VARCHAR"], returns="VARCHAR")
def forecast_source(ctx, relation):
    """The relation's quoted catalog name, for ``query_table`` in the macros (resolved, never pasted)."""
    return pa.array([ctx.relation(name).sql for name in relation.to_pylist()], pa.string())


@scalar_udf("wml_forecast_column", args=["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"], returns="VARCHAR")
def forecast_column(ctx, relation, role, item, date, value):
    """The catalog name of the item or date column (as the table function infers it), so the macros cast the
    result back to the source column's type: a BIGINT key stays BIGINT, a TIMESTAMP date stays TIMESTAMP."""
    out = []
    for name, r, i, d, v in zip(*(a.to_pylist() for a in (relation, role, item, date, value))):
        roles = infer_roles(ctx.relation(name), i, d, v)
        out.append(roles.date if r == "date" else (roles.item or NO_ITEM))
    return pa.array(out, pa.string())


@dataclass
class SeriesData:
    names: pa.Array  # item per series code (VARCHAR, may hold one NULL)
    panel: K.Panel
    duplicates: np.ndarray  # per series: dates that had more than one row
    nonfinite: np.ndarray  # per series: NaN or infinite values, treated as missing


def load_series(ctx, relation: str, opts: dict, freq: str | None = None) -> SeriesData:
    """Resolve, aggregate per (item, date) in SQL, and build the panel."""
    rel = ctx.relation(relation)
    roles = infer_roles(rel, opts.get("item"), opts.get("date"), opts.get("value"))
    item_sql = f"CAST({rel.q(roles.item)} AS VARCHAR)" if roles.item else "CAST(NULL AS VARCHAR)"
    d = rel.q(roles.date)
    value = f"CAST({rel.q(roles.value)} AS DOUBLE)"
    # The numeric policy: NaN and +-inf are missing values, like NULL (a date with no finite value is a missing day)
    query = (f"SELECT {item_sql} AS item, CAST({d} AS DATE) AS d, sum(CASE WHEN isfinite({value}) THEN {value} END) AS v, "
             f"count(*) AS n, count(*) FILTER (WHERE NOT isfinite({value})) AS nonfinite "
             f"FROM {rel.sql} WHERE {d} IS NOT NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2")
    return series_from_groups(ctx.read_arrow(query), freq)


def series_from_groups(tbl: pa.Table, freq: str | None = None) -> SeriesData:
    """The panel from one row per (item, d) sorted by item (NULL last) and d, with v (the sum of finite values),
    n (rows) and nonfinite (NaN/inf values): what DuckDB's query above and Spark's Arrow aggregation both give."""
    enc = tbl.column("item").combine_chunks().dictionary_encode() if tbl.num_rows else \
        pa.array([], pa.string()).dictionary_encode()
    names = enc.dictionary
    codes = enc.indices.fill_null(len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    n_series = len(names) + int(enc.null_count > 0)
    if enc.null_count:
        names = pa.concat_arrays([names, pa.array([None], pa.string())])
    day = tbl.column("d").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    val = tbl.column("v").combine_chunks().cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    n = tbl.column("n").combine_chunks().to_numpy(zero_copy_only=False)
    dup = np.bincount(codes[n > 1], minlength=n_series) if n_series else np.zeros(0, int)
    bad = tbl.column("nonfinite").combine_chunks().to_numpy(zero_copy_only=False)
    nonfinite = np.bincount(codes, weights=bad, minlength=n_series).astype(np.int64)
    panel = K.build_panel(codes, day, val, n_series, freq)
    return SeriesData(names, panel, dup, nonfinite)


def _labels(data: SeriesData, labels: list[str]) -> list[str]:
    out = list(labels)
    for i in np.nonzero(data.duplicates > 0)[0]:
        k = int(data.duplicates[i])
        out[i] = f"{out[i]} [{k} date{'s' if k > 1 else ''} with duplicate rows summed]"
    for i in np.nonzero(data.nonfinite > 0)[0]:
        k = int(data.nonfinite[i])
        out[i] = f"{out[i]} [{k} NaN or infinite value{'s' if k > 1 else ''} treated as missing]"
    return out


def _horizon(h, argument="horizon") -> int:
    try:
        return K.validate_horizon(h)
    except K.ForecastInputError as e:
        raise InvalidArgument(argument, e.problem, e.fix.replace("periods to forecast", f"periods ({argument})")) from None


# -- the options, declared once for every forecasting function --------------------------------------------------
def _probability(name: str, default: float) -> Option:
    return Option(name, Interval(float, 0, 1, closed="neither"), default, fix=f"Pass e.g. {name} := {default}")


def _method_option(default: str | None, *extra: str) -> Option:
    return Option("method", StrOptions(K.METHODS + extra, "method"), default,
                  fix=f"Use one of {', '.join(K.METHODS + extra)}")


_ROLES = [Option("item", Identifier()), Option("date", Identifier()), Option("value", Identifier())]
_RELATION = RelationArg()
_HORIZON = Arg("horizon", "BIGINT")

# The table UDFs hand keys over as text and dates as DATE; each macro casts them back to the type of the source
# column (cast_to_type against a one-row probe of that column, picked by the catalog name wml_forecast_column
# resolves; a relation without an item column probes a NULL placeholder).
_TYPED_ITEM = """cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
        FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item"""
_TYPED_DATE = """cast_to_type(f.date, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'date', item, date, value))
        FROM query_table(wml_forecast_source(relation)) LIMIT 1)) AS date"""


def _typed(*columns: str, date: bool = True) -> str:
    """A macro body: the UDF's rows with item (and date) cast back to their source types, then ``columns``."""
    keys = [_TYPED_ITEM] + ([_TYPED_DATE] if date else [])
    return f"SELECT {', '.join(keys)}, {', '.join('f.' + c for c in columns)}\nFROM ({{call}}) f"


# --------------------------------------------------------------------------------------------------------
# forecast_demand
# --------------------------------------------------------------------------------------------------------
def _codes_and_offsets(data: SeriesData, tbl: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Series code (-1: an item the history lacks) and panel column of each (item, d) row of ``tbl``."""
    pos = pc.index_in(tbl.column("item").combine_chunks(), value_set=data.names).fill_null(-1)
    code = pos.to_numpy(zero_copy_only=False).astype(np.int64)
    day = tbl.column("d").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    per = K.period_index(day, data.panel.freq)
    return code, per - data.panel.start[np.clip(code, 0, None)]


def _driver_values(ctx, rel: Relation, roles: Roles, features: list[str], argument: str) -> pa.Table:
    """Per (item as text, date): the mean of each feature and its NULL count, read with quoted names."""
    item_sql = f"CAST({rel.q(roles.item)} AS VARCHAR)" if roles.item else "CAST(NULL AS VARCHAR)"
    d = rel.q(roles.date)
    cols = ", ".join(f"avg(CAST({rel.q(f)} AS DOUBLE)) AS f{k}, count(*) - count({rel.q(f)}) AS null{k}"
                     for k, f in enumerate(features))
    tbl = ctx.read_arrow(f"SELECT {item_sql} AS item, CAST({d} AS DATE) AS d, {cols} FROM {rel.sql} "
                         f"WHERE {d} IS NOT NULL GROUP BY 1, 2")
    for k, f in enumerate(features):
        nulls = int(pc.sum(tbl.column(f"null{k}")).as_py() or 0)
        if nulls:
            raise InvalidArgument(argument, f"column '{f}' of '{rel.name}' has {nulls} NULL value(s)",
                                  f"Fill them (e.g. coalesce({f}, 0) in a view) so every date has a value")
    return tbl


def _drivers(ctx, rel: Relation, data: SeriesData, opts: dict, h: int) -> K.Drivers | None:
    """Drivers of ``method := 'gbm'`` from ``features``, ``future`` and ``holidays``; None when none is given."""
    features, future, country = opts.get("features"), opts.get("future"), opts.get("holidays")
    if not features and future is None and country is None:
        return None
    features = features or []
    roles = infer_roles(rel, opts.get("item"), opts.get("date"), opts.get("value"))
    features = [rel.column(f, "features") for f in features]
    for f in features:
        if not is_numeric_type(rel.columns[f]) and rel.columns[f].upper() != "BOOLEAN":
            raise InvalidArgument("features", f"column '{f}' has type {rel.columns[f]}, not a number or boolean",
                                  "Name numeric driver columns (a price, a 0/1 promotion flag)")
    panel = data.panel
    N, T = panel.y.shape
    F = len(features)
    hist, fut = np.full((N, T, F), np.nan), np.full((N, h, F), np.nan)
    if F:
        if future is None:
            raise InvalidArgument("future", "features need their values over the horizon",
                                  "Pass future := 'plan', a relation with item, date and the same columns for the "
                                  "forecast dates (planned prices, the promotion calendar)")
        frel = ctx.relation(future, "future")
        for need in [c for c in (roles.item, roles.date) if c] + features:
            if need.lower() not in {c.lower() for c in frel.columns}:
                raise InvalidArgument("future", f"relation '{frel.name}' has no column '{need}'",
                                      f"Add '{need}' to it: the future needs the history's item, date and feature "
                                      "columns under the same names")
        tbl = _driver_values(ctx, rel, roles, features, "features")
        code, off = _codes_and_offsets(data, tbl)
        ok = (code >= 0) & (off >= 0) & (off < T)
        for k in range(F):
            hist[code[ok], off[ok], k] = tbl.column(f"f{k}").to_numpy(zero_copy_only=False)[ok]
        froles = Roles(frel.column(roles.item, "future") if roles.item else None, frel.column(roles.date, "future"),
                       roles.value)
        ftbl = _driver_values(ctx, frel, froles, [frel.column(f, "future") for f in features], "future")
        code, off = _codes_and_offsets(data, ftbl)
        off = off - panel.lens[np.clip(code, 0, None)]
        ok = (code >= 0) & (off >= 0) & (off < h)
        for k in range(F):
            fut[code[ok], off[ok], k] = ftbl.column(f"f{k}").to_numpy(zero_copy_only=False)[ok]
        missing = (panel.n_obs > 0)[:, None] & np.isnan(fut[:, :, 0])
        if missing.any():
            i, k = map(int, np.argwhere(missing)[0])
            day = K.period_dates(panel.start[i] + panel.lens[i] + k, panel.freq, panel.anchor[i])
            raise InvalidArgument("future", f"'{frel.name}' does not cover the horizon: no row for item "
                                  f"{data.names[i].as_py()!r} on {np.datetime64(int(day), 'D')} "
                                  f"({int(missing.sum())} (item, date) pairs missing)",
                                  f"Give every item a row for each of the {h} forecast dates")
    holidays = np.zeros(0, np.int64)
    if country is not None:
        last = K.period_dates(panel.start + panel.lens + h, panel.freq, panel.anchor)
        try:
            holidays = K.holiday_days(country, int(panel.anchor.min()), int(last.max()))
        except NotImplementedError:
            raise InvalidArgument("holidays", f"unknown country code {country!r}",
                                  "Pass an ISO 3166 code the holidays package knows, e.g. 'US', 'GB', 'DE'") from None
    return K.Drivers(hist, fut, holidays)


def forecast_table(ctx, relation: str, horizon, opts: dict) -> tuple[pa.Table, SeriesData, K.PanelResult]:
    """forecast_demand's rows (``opts``: its options, checked), with the series and the kernel's result."""
    h = _horizon(horizon)
    method, level = opts["method"], opts["level"]
    data = load_series(ctx, relation, opts)
    drivers = _drivers(ctx, ctx.relation(relation), data, opts, h)
    if drivers is not None and method != "gbm":
        raise InvalidArgument("method", f"features, future and holidays are inputs of method := 'gbm', not '{method}'",
                              "Add method := 'gbm' (one model over all series that learns from them)")
    tbl, res = forecast_rows(data, h, method, level, drivers)
    return tbl, data, res


def forecast_rows(data: SeriesData, h: int, method: str, level: float,
                  drivers: K.Drivers | None = None) -> tuple[pa.Table, K.PanelResult]:
    """forecast_demand's rows (FORECAST_ROW) for the series of ``data``, and the kernel's result."""
    try:
        res = K.forecast_panel(data.panel, h, method, level, nn_config=drivers)
    except K.ForecastInputError as e:
        raise _kernel_error(e) from None
    labels = np.asarray(_labels(data, res.method), dtype=object)
    return pa.table({
        "item": _names(data, res.series),
        "date": pa.array(res.day.astype("datetime64[D]"), pa.date32()),
        "forecast": pa.array(res.forecast, pa.float64(), from_pandas=True),
        "lower": pa.array(res.lower, pa.float64(), from_pandas=True),
        "upper": pa.array(res.upper, pa.float64(), from_pandas=True),
        "method": pa.array(labels[res.series] if len(res.series) else [], pa.string()),
    }), res


def _names(data: SeriesData, series: np.ndarray) -> pa.Array:
    """The item of each series code in ``series``."""
    return data.names.take(pa.array(series, pa.int64())) if len(data.names) else pa.array([], pa.string())


@sql_function(
    "forecast_demand", "Demand per item for the next horizon periods with a prediction interval; method := 'auto' "
    "picks per series by backtest.", args=[_RELATION, _HORIZON], returns=FORECAST_ROW,
    body=_typed("forecast", "lower", "upper", "method"), options=[
        *_ROLES, _method_option("auto"), _probability("level", 0.95),
        Option("features", Identifiers(), fix="Pass e.g. features := ['price', 'promo']",
               doc="columns method := 'gbm' learns from"),
        Option("future", RelationName(), doc="a relation with the features' planned values over the horizon"),
        Option("holidays", Text(nonempty=True), fix="Pass e.g. holidays := 'US'", doc="a country code")])
def forecast_demand(ctx, relation, horizon, **opts):
    return forecast_table(ctx, relation, horizon, opts)[0]


# --------------------------------------------------------------------------------------------------------
# backtest_demand
# --------------------------------------------------------------------------------------------------------
@sql_function(
    "backtest_demand", "Each method's accuracy (MASE, sMAPE, RMSE, interval coverage) on rolling-origin folds of "
    "the history, per item.", args=[_RELATION, _HORIZON], returns=BACKTEST_ROW,
    body=_typed("method", "mase", "smape", "rmse", "coverage", "folds", date=False), options=[
        Option("folds", Interval(int, 1, 100), 3), *_ROLES, _method_option(None, "all"), _probability("level", 0.95)])
def backtest_demand(ctx, relation, horizon, **opts):
    return backtest_rows(load_series(ctx, relation, opts), *backtest_options(horizon, opts))


def backtest_options(horizon, opts: dict) -> tuple[int, int, tuple[str, ...], float]:
    """(horizon, folds, methods, level) of backtest_demand from its options as its spec parses them."""
    h = _horizon(horizon)
    folds, level, m = opts["folds"], opts["level"], opts["method"]
    methods = BACKTEST_METHODS if m is None or m == "all" else (m,)
    if methods == ("nn",):  # the network (slower: one training per fold) is compared with the classical methods
        methods = BACKTEST_METHODS + ("nn",)
    return h, folds, methods, level


def backtest_rows(data: SeriesData, h: int, folds: int, methods: tuple[str, ...], level: float) -> pa.Table:
    """backtest_demand's rows (BACKTEST_ROW): one per series with history and method."""
    try:
        res = K.backtest_panel(data.panel, h, folds, methods, level)
    except K.ForecastInputError as e:
        raise _kernel_error(e) from None
    N = len(data.panel.lens)
    keep = np.nonzero(data.panel.n_obs > 0)[0]
    items, meth, cols = [], [], {k: [] for k in ("mase", "smape", "rmse", "coverage", "folds")}
    for name in methods:
        r = res[name]
        items.append(keep)
        meth.append(np.full(len(keep), name, dtype=object))
        for k in ("mase", "smape", "rmse", "coverage"):
            cols[k].append(r[k][keep])
        cols["folds"].append(r["n_folds"][keep].astype(np.int32))
    order = np.argsort(np.concatenate(items), kind="stable") if N else np.zeros(0, int)
    cat = {k: np.concatenate(v)[order] if v else np.zeros(0) for k, v in cols.items()}
    sidx = np.concatenate(items)[order] if items else np.zeros(0, int)
    return pa.table({
        "item": _names(data, sidx),
        "method": pa.array(np.concatenate(meth)[order] if meth else [], pa.string()),
        "mase": pa.array(cat["mase"], pa.float64(), from_pandas=True),
        "smape": pa.array(cat["smape"], pa.float64(), from_pandas=True),
        "rmse": pa.array(cat["rmse"], pa.float64(), from_pandas=True),
        "coverage": pa.array(cat["coverage"], pa.float64(), from_pandas=True),
        "folds": pa.array(cat["folds"], pa.int32()),
    })


# --------------------------------------------------------------------------------------------------------
# detect_anomalies
# --------------------------------------------------------------------------------------------------------
@sql_function(
    "detect_anomalies", "Every period of history against a robust trend + season decomposition of its series; "
    "values outside the level band are anomalies.", args=[_RELATION], returns=ANOMALY_ROW,
    body=_typed("value", "expected", "lower", "upper", "is_anomaly", "score"),
    options=[*_ROLES, _probability("level", 0.99)])
def detect_anomalies(ctx, relation, **opts):
    """Every period of every series (gaps as zero, like the forecasts) against its expected value and band."""
    return anomaly_rows(load_series(ctx, relation, opts), opts["level"])


def anomaly_rows(data: SeriesData, level: float) -> pa.Table:
    """detect_anomalies' rows (ANOMALY_ROW): every period of every series with history."""
    panel = data.panel
    try:
        res = K.detect_anomalies(panel, level)
    except K.ForecastInputError as e:
        raise _kernel_error(e) from None
    keep = res.mask & (panel.n_obs > 0)[:, None]
    series, t = np.nonzero(keep)
    days = K.period_dates(panel.start[series] + t, panel.freq, panel.anchor[series])
    return pa.table({
        "item": _names(data, series),
        "date": pa.array(days.astype("datetime64[D]"), pa.date32()),
        **{k: pa.array(getattr(res, k)[keep], pa.float64()) for k in ("value", "expected", "lower", "upper")},
        "is_anomaly": pa.array(res.is_anomaly[keep], pa.bool_()),
        "score": pa.array(res.score[keep], pa.float64()),
    })


# --------------------------------------------------------------------------------------------------------
# explain_forecast
# --------------------------------------------------------------------------------------------------------
@sql_function(
    "explain_forecast", "The ETS forecast of each item taken apart: level + trend + season + yearly = forecast.",
    args=[_RELATION, _HORIZON], returns=EXPLAIN_ROW, options=_ROLES,
    body=_typed("forecast", "level", "trend", "season", "yearly", "method"))
def explain_forecast(ctx, relation, horizon, **opts):
    """The additive parts of each series' ETS forecast (``tasks.forecast.explain``), which sum to ``forecast``."""
    h = _horizon(horizon)
    data = load_series(ctx, relation, opts)
    panel = data.panel
    ex = K.explain_panel(panel, h)
    keep = np.nonzero(panel.n_obs > 0)[0]
    series = np.repeat(keep, h)
    steps = np.tile(np.arange(1, h + 1), len(keep))
    days = K.period_dates(panel.start[series] + panel.lens[series] - 1 + steps, panel.freq, panel.anchor[series])
    labels = np.asarray(_labels(data, ex.method), dtype=object)
    return pa.table({
        "item": _names(data, series),
        "date": pa.array(days.astype("datetime64[D]"), pa.date32()),
        "forecast": pa.array(ex.forecast[keep].ravel(), pa.float64()),
        **{p: pa.array(ex.parts[p][keep].ravel(), pa.float64()) for p in K.PARTS},
        "method": pa.array(labels[series] if len(series) else [], pa.string()),
    })


# --------------------------------------------------------------------------------------------------------
# reorder_plan
# --------------------------------------------------------------------------------------------------------
def on_hand_quantity(rel: Relation, item: str, qty: str | None) -> str:
    """The stock column of an on_hand relation: ``qty`` (on_hand_qty), checked numeric, or else its one numeric
    column that is neither the item nor ID-like."""
    cols = rel.columns
    if qty is not None:
        qty = rel.column(qty, "on_hand_qty")
        if not is_numeric_type(cols[qty]):
            raise InvalidArgument("on_hand_qty", f"column '{qty}' has type {cols[qty]}, not a number",
                                  "Name the numeric column holding the stock on hand")
        return qty
    cands = [c for c, t in cols.items() if c != item and is_numeric_type(t) and not roles.SERIES_KEY.search(c)]
    if len(cands) != 1:
        raise AmbiguousColumn(rel.name, "on_hand_qty", "stock quantity (a numeric column)", cands)
    return cands[0]


def _on_hand(ctx, name: str, item_hint: str | None, opts: dict, items: pa.Array) -> np.ndarray:
    """Stock per item from the on_hand relation: its latest row per item when it has a date column, else the
    sum over rows. Items missing from it have 0 on hand."""
    rel = ctx.relation(name, "on_hand")
    cols = rel.columns
    it = opts.get("on_hand_item")
    if it is not None:
        it = rel.column(it, "on_hand_item")
    elif item_hint is not None and item_hint.lower() in {c.lower() for c in cols}:
        it = rel.column(item_hint, "on_hand_item")
    else:
        cands = [c for c, t in cols.items() if not is_numeric_type(t) and not is_date_type(t)]
        if len(cands) != 1:
            cands = cands or [c for c, t in cols.items() if is_numeric_type(t) and roles.SERIES_KEY.search(c)]
        if len(cands) != 1:
            raise AmbiguousColumn(rel.name, "on_hand_item", "item key", cands)
        it = cands[0]
    qty = on_hand_quantity(rel, it, opts.get("on_hand_qty"))
    dates = [c for c, t in cols.items() if is_date_type(t)]
    q = rel.q
    if len(dates) == 1:
        query = (f"SELECT CAST({q(it)} AS VARCHAR) AS item, arg_max(CAST({q(qty)} AS DOUBLE), {q(dates[0])}) AS qty "
                 f"FROM {rel.sql} WHERE {q(dates[0])} IS NOT NULL GROUP BY 1")
    else:
        query = f"SELECT CAST({q(it)} AS VARCHAR) AS item, sum(CAST({q(qty)} AS DOUBLE)) AS qty FROM {rel.sql} GROUP BY 1"
    tbl = ctx.read_arrow(query)
    pos = pc.index_in(items, value_set=tbl.column("item").combine_chunks())
    vals = tbl.column("qty").combine_chunks().fill_null(0.0).to_numpy(zero_copy_only=False)
    p = pos.to_numpy(zero_copy_only=False)
    p = np.where(np.isnan(p.astype(float)), -1, p).astype(np.int64) if pos.null_count else p.astype(np.int64)
    return np.where(p >= 0, vals[np.clip(p, 0, max(len(vals) - 1, 0))] if len(vals) else 0.0, 0.0)


@sql_function(
    "reorder_plan", "Per item: lead-time demand, safety stock, reorder point and the quantity to order now.",
    args=[_RELATION], returns=REORDER_ROW,
    body=_typed("lead_time_demand", "safety_stock", "reorder_point", "on_hand", "order_qty", "method", date=False),
    options=[
        Option("lead_time", Interval(int, 1, K.MAX_HORIZON), 7,
               fix="Pass the replenishment lead time in periods of the data (days for daily sales), e.g. lead_time := 7"),
        _probability("service_level", 0.95), Option("on_hand", RelationName(), doc="a relation of stock per item"),
        *_ROLES, _method_option("auto"),
        Option("review_period", Interval(int, 0, K.MAX_HORIZON), 0,
               fix="Pass how often stock is reviewed, e.g. review_period := 7 (0: continuous review)"),
        Option("on_hand_item", Identifier()), Option("on_hand_qty", Identifier())])
def reorder_plan(ctx, relation, **opts):
    lt, rp, sl, method = reorder_options(opts)
    oh_name = opts["on_hand"]

    def stock(items: pa.Array) -> np.ndarray:
        roles_item = opts["item"]
        if roles_item is None:
            roles_item = infer_roles(ctx.relation(relation), None, opts["date"], opts["value"]).item
        return _on_hand(ctx, oh_name, roles_item, opts, items)

    return reorder_rows(load_series(ctx, relation, opts), lt, rp, sl, method, stock if oh_name else None)


def reorder_options(opts: dict) -> tuple[int, int, float, str]:
    """(lead_time, review_period, service_level, method) of reorder_plan from its options as its spec parses them."""
    lt, rp = opts["lead_time"], opts["review_period"]
    if lt + rp > K.MAX_HORIZON:
        raise InvalidArgument("review_period", f"lead_time + review_period must be at most {K.MAX_HORIZON:,} periods",
                              "Pass a shorter review period")
    return lt, rp, opts["service_level"], opts["method"]


def reorder_rows(data: SeriesData, lt: int, rp: int, sl: float, method: str, stock=None) -> pa.Table:
    """reorder_plan's rows (REORDER_ROW), one per series with history; ``stock(items)`` gives their stock on hand
    (0 without it)."""
    try:
        res = K.forecast_panel(data.panel, lt + rp, method, 0.95)
    except K.ForecastInputError as e:
        raise _kernel_error(e) from None
    keep = np.nonzero(data.panel.n_obs > 0)[0]
    items = _names(data, keep)
    on_hand = stock(items) if stock is not None else np.zeros(len(keep))
    fc = res.fc.take(keep)
    q = K.reorder_quantities(fc, lt, sl, on_hand, rp)
    labels = _labels(data, res.method)
    return pa.table({
        "item": items,
        "lead_time_demand": pa.array(q["lead_time_demand"], pa.float64(), from_pandas=True),
        "safety_stock": pa.array(q["safety_stock"], pa.float64(), from_pandas=True),
        "reorder_point": pa.array(q["reorder_point"], pa.float64(), from_pandas=True),
        "on_hand": pa.array(on_hand, pa.float64()),
        "order_qty": pa.array(q["order_qty"], pa.float64(), from_pandas=True),
        "method": pa.array([labels[i] for i in keep], pa.string()),
    })


# --------------------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------------------
def plot_forecast(con, relation: str, item, horizon: int, out_png: str, *, item_col: str | None = None,
                  date: str | None = None, value: str | None = None, method: str = "auto", level: float = 0.95,
                  history: int = 180) -> str:
    """Write a PNG of one item's recent history (last ``history`` periods), forecast and ``level`` band.

    ``con`` is a connection with warehouse-ml installed (``wml.connect``); ``item`` is the item key as it
    appears in the item column (compared as text). Returns ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..binding.catalog import resolve
    from ..outputs import PNG_METADATA

    rel = resolve(con, relation)
    roles = infer_roles(rel, item_col, date, value)
    opts = {"item": roles.item, "date": roles.date, "value": roles.value}
    if roles.item is None:
        where, params = "TRUE", []
    else:
        where, params = f"CAST({rel.q(roles.item)} AS VARCHAR) = $1", [str(item)]
    hist = con.execute(
        f"SELECT CAST({rel.q(roles.date)} AS DATE) AS d, sum(CAST({rel.q(roles.value)} AS DOUBLE)) AS v "
        f"FROM {rel.sql} WHERE {where} AND {rel.q(roles.date)} IS NOT NULL GROUP BY 1 ORDER BY 1", params).fetchall()
    if not hist:
        raise InvalidArgument("item", f"no rows of '{relation}' have item {item!r}",
                              f"Pick an item from: SELECT DISTINCT {roles.item} FROM {rel.table}")
    item_filter = "item IS NULL" if roles.item is None else "item = $item"
    fc = con.execute(
        f"SELECT date, forecast, lower, upper, method FROM forecast_demand($rel, $h, item := $ic, date := $dc, "
        f"value := $vc, method := $m, level := $lv) WHERE {item_filter} ORDER BY date",
        {"rel": relation, "h": int(horizon), "ic": opts["item"], "dc": opts["date"], "vc": opts["value"],
         "m": method, "lv": float(level), **({} if roles.item is None else {"item": str(item)})}).fetchall()
    hist = hist[-history:]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    ax.plot([r[0] for r in hist], [r[1] for r in hist], color="#333333", lw=1, label="history")
    if fc:
        d = [r[0] for r in fc]
        ax.fill_between(d, [r[2] for r in fc], [r[3] for r in fc], color="#4C72B0", alpha=0.25,
                        label=f"{int(round(level * 100))}% interval")
        ax.plot(d, [r[1] for r in fc], color="#4C72B0", lw=1.8, label=f"forecast ({fc[0][4]})")
    ax.set_title(f"{relation}: {item}" if roles.item else relation)
    ax.set_ylabel(roles.value)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out_png, metadata=PNG_METADATA)  # marked as ours: commands may replace it later
    plt.close(fig)
    return out_png
