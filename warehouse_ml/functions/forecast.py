"""forecast_demand, backtest_demand, reorder_plan: demand forecasting from SQL (SQL_SURFACE.md section 4).

Each is a table UDF ``wml_<name>(relation, <number>, options JSON)`` declared by its spec, whose TEMP table macro
casts the item and date back to the source columns' types. The UDF resolves the relation and its column roles against the catalog, aggregates one row
per (item, date) in SQL on a second cursor (quoted catalog names only; duplicate rows are summed and said so
in ``method``), reads Arrow, runs the vectorised kernels of ``warehouse_ml.tasks.forecast`` on all series at
once and returns the rows. Nothing is written to the database.

The series they read come from ``forecast_series``, the drivers of the global model from ``forecast_drivers``;
``forecast_plot.plot_forecast`` draws history, forecast and bands to a PNG.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import norm

from ..binding.catalog import Relation, is_numeric_type
from ..binding.spec import (
    Arg, Identifier, Identifiers, Interval, Option, RelationArg, RelationName, StrOptions, Text, sql_function,
)
from ..errors import AmbiguousColumn, InvalidArgument, did_you_mean
from ..tasks import forecast as K
from ..tasks import roles
from ..tasks.roles import is_date_type
from .forecast_drivers import load_drivers
from .forecast_series import SeriesData, check_horizon, infer_roles, kernel_error, load_series, series_labels

FORECAST_ROW = "STRUCT(item VARCHAR, date DATE, forecast DOUBLE, lower DOUBLE, upper DOUBLE, method VARCHAR)"
BACKTEST_ROW = ("STRUCT(item VARCHAR, method VARCHAR, mase DOUBLE, smape DOUBLE, rmse DOUBLE, coverage DOUBLE, "
                "folds INTEGER)")
ANOMALY_ROW = ("STRUCT(item VARCHAR, date DATE, value DOUBLE, expected DOUBLE, lower DOUBLE, upper DOUBLE, "
               "is_anomaly BOOLEAN, score DOUBLE)")
EXPLAIN_ROW = ("STRUCT(item VARCHAR, date DATE, forecast DOUBLE, level DOUBLE, trend DOUBLE, season DOUBLE, "
               "yearly DOUBLE, holiday DOUBLE, drivers MAP(VARCHAR, DOUBLE), residual DOUBLE, method VARCHAR)")
REORDER_ROW = ("STRUCT(item VARCHAR, lead_time_demand DOUBLE, safety_stock DOUBLE, reorder_point DOUBLE, "
               "on_hand DOUBLE, order_qty DOUBLE, method VARCHAR)")

# backtest_demand compares auto with the simple methods it chooses among (each declares ``in_auto``)
BACKTEST_METHODS = tuple(n for n in K.METHODS if K.REGISTRY[n].in_auto) + ("auto",)


# -- the options, declared once for every forecasting function --------------------------------------------------
def _probability(name: str, default: float) -> Option:
    return Option(name, Interval(float, 0, 1, closed="neither"), default, fix=f"Pass e.g. {name} := {default}")


def _method_option(default: str | None, *extra: str) -> Option:
    return Option("method", StrOptions(K.METHODS + extra, "method"), default,
                  fix=f"Use one of {', '.join(K.METHODS + extra)}")


_ROLES = [Option("item", Identifier()), Option("date", Identifier()), Option("value", Identifier())]
_FEATURES = Option("features", Identifiers(), fix="Pass e.g. features := ['price', 'promo']",
                   doc="columns method := 'gbm' or 'xreg' learns from")
_FUTURE = Option("future", RelationName(), doc="a relation with the features' planned values over the horizon")
_DRIVERS = [Option("holidays", Text(nonempty=True), fix="Pass e.g. holidays := 'US'", doc="a country code"),
            Option("events", RelationName(), doc="a relation of dated events (date, event name, optional item)")]
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
def forecast_table(ctx, relation: str, horizon, opts: dict) -> tuple[pa.Table, SeriesData, K.PanelResult]:
    """forecast_demand's rows (``opts``: its options, checked), with the series and the kernel's result."""
    h = check_horizon(horizon)
    method, level = opts["method"], opts["level"]
    data = load_series(ctx, relation, opts)
    drivers = load_drivers(ctx, ctx.relation(relation), data, opts, h)
    if drivers is not None and not K.REGISTRY[method].takes_drivers:
        raise InvalidArgument("method", f"features, future, holidays and events are inputs of method := 'gbm' "
                              f"and 'xreg' (which auto considers), not '{method}'",
                              "Add method := 'gbm' (one model over all series that learns from them), 'xreg' (a "
                              "regression on them) or leave method out (auto)")
    tbl, res = forecast_rows(data, h, method, level, drivers)
    return tbl, data, res


def forecast_rows(data: SeriesData, h: int, method: str, level: float,
                  drivers: K.Drivers | None = None) -> tuple[pa.Table, K.PanelResult]:
    """forecast_demand's rows (FORECAST_ROW) for the series of ``data``, and the kernel's result."""
    try:
        res = K.forecast_panel(data.panel, h, method, level, nn_config=drivers)
    except K.ForecastInputError as e:
        raise kernel_error(e) from None
    labels = np.asarray(series_labels(data, res.method), dtype=object)
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
        _FEATURES, _FUTURE, *_DRIVERS])
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
    h = check_horizon(horizon)
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
        raise kernel_error(e) from None
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
    options=[*_ROLES, _probability("level", 0.99),
             Option("model", Identifier(), doc="check the rows against the forecast saved under this name")])
def detect_anomalies(ctx, relation, **opts):
    """Every period of every series (gaps as zero, like the forecasts) against its expected value and band; with
    ``model`` the relation's rows against a forecast saved under that name instead."""
    if opts["model"] is not None:
        return _against_saved_forecast(ctx, relation, opts["model"], opts, opts["level"])
    return anomaly_rows(load_series(ctx, relation, opts), opts["level"])


def anomaly_rows(data: SeriesData, level: float) -> pa.Table:
    """detect_anomalies' rows (ANOMALY_ROW): every period of every series with history."""
    panel = data.panel
    try:
        res = K.detect_anomalies(panel, level)
    except K.ForecastInputError as e:
        raise kernel_error(e) from None
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


def _against_saved_forecast(ctx, relation: str, name: str, opts: dict, level: float) -> pa.Table:
    """Rows of ``relation`` on the dates a forecast saved under ``name`` (save_forecast) covers, against its
    latest run for each (item, date): ``expected`` is that forecast, and each side of its band is rescaled from
    the saved level to ``level`` (``lower = expected - (expected - saved lower) * z(level) / z(saved level)``);
    ``score`` is the distance from ``expected`` in forecast standard deviations (that side's half-width / z)."""
    saved = ctx.store.forecast_names()
    if name not in saved:
        raise InvalidArgument("model", f"no forecast is saved under '{name}'.{did_you_mean(name, saved)}",
                              f"Save one first: FROM save_forecast('{relation}', 28, name := '{name}')")
    rel = ctx.relation(relation)
    roles = infer_roles(rel, opts["item"], opts["date"], opts["value"])
    item = f"CAST({rel.q(roles.item)} AS VARCHAR)" if roles.item else "CAST(NULL AS VARCHAR)"
    d, v = rel.q(roles.date), f"CAST({rel.q(roles.value)} AS DOUBLE)"
    tbl = ctx.read_arrow(f"""
        WITH a AS (SELECT {item} AS item, CAST({d} AS DATE) AS d, sum({v}) AS v FROM {rel.sql}
                   WHERE {d} IS NOT NULL GROUP BY 1, 2),
             f AS (SELECT item, date, arg_max(forecast, run_at) AS forecast, arg_max(lower, run_at) AS lower,
                          arg_max(upper, run_at) AS upper, arg_max(level, run_at) AS level
                   FROM wml.forecasts WHERE name = $1 GROUP BY item, date)
        SELECT a.item, a.d AS date, a.v AS value, f.forecast, f.lower, f.upper, f.level
        FROM a JOIN f ON a.item IS NOT DISTINCT FROM f.item AND a.d = f.date
        WHERE a.v IS NOT NULL ORDER BY 1 NULLS LAST, 2""", [name])
    if tbl.num_rows == 0:
        span = ctx.store._query("SELECT min(date), max(date) FROM wml.forecasts WHERE name = $1", [name])[0]
        raise InvalidArgument("relation", f"no row of '{rel.name}' falls on an (item, date) forecast under "
                              f"'{name}' ({span[0]} to {span[1]})",
                              "Pass the rows that arrived for the forecast dates (the same items and date column)")
    col = {k: tbl.column(k).to_numpy(zero_copy_only=False).astype(float)
           for k in ("value", "forecast", "lower", "upper", "level")}
    z = norm.ppf(0.5 + level / 2)
    z_saved = norm.ppf(0.5 + col["level"] / 2)  # one quantile per row, over the whole column
    expected, value = col["forecast"], col["value"]
    sd_low, sd_high = (expected - col["lower"]) / z_saved, (col["upper"] - expected) / z_saved
    lower, upper = expected - z * sd_low, expected + z * sd_high
    sd = np.where(value >= expected, sd_high, sd_low)
    score = np.where(sd > 0, np.abs(value - expected) / np.where(sd > 0, sd, 1.0), 0.0)
    return pa.table({"item": tbl.column("item"), "date": tbl.column("date"), "value": pa.array(value),
                     "expected": pa.array(expected), "lower": pa.array(lower), "upper": pa.array(upper),
                     "is_anomaly": pa.array((value < lower) | (value > upper)), "score": pa.array(score)})


# --------------------------------------------------------------------------------------------------------
# explain_forecast
# --------------------------------------------------------------------------------------------------------
@sql_function(
    "explain_forecast", "Each item's forecast taken apart: level + trend + season + yearly + holiday + drivers + "
    "residual = forecast (ETS, or the gbm model when drivers are given, or the xreg regression).",
    args=[_RELATION, _HORIZON], returns=EXPLAIN_ROW, options=[
        *_ROLES, Option("method", StrOptions({"ets", "gbm", "xreg"}, "method"),
                        fix="Leave method out (ets; gbm when features, holidays or events are given), or 'xreg' "
                            "with them"),
        _FEATURES, _FUTURE, *_DRIVERS],
    body=_typed("forecast", "level", "trend", "season", "yearly", "holiday", "drivers", "residual", "method"))
def explain_forecast(ctx, relation, horizon, **opts):
    """The additive parts of each series' forecast (``tasks.forecast.explain``), which sum to ``forecast``: of the
    ETS forecast, or with drivers (or ``method := 'gbm'``) of the global model, one ``drivers`` entry each (or of
    the regression on them, ``method := 'xreg'``)."""
    h = check_horizon(horizon)
    data = load_series(ctx, relation, opts)
    panel = data.panel
    drivers = load_drivers(ctx, ctx.relation(relation), data, opts, h)
    method = opts["method"] or ("gbm" if drivers is not None else "ets")
    if method == "ets" and drivers is not None:
        raise InvalidArgument("method", "features, holidays and events are inputs of the gbm model, not of ets",
                              "Leave method out (gbm is then explained) or drop the drivers")
    if method == "gbm":
        ex = K.explain_global(panel, h, drivers or K.Drivers.none(*panel.y.shape, h))
    elif method == "xreg":
        try:
            ex = K.explain_xreg(panel, h, drivers)
        except K.ForecastInputError as e:
            raise kernel_error(e) from None
    else:
        ex = K.explain_panel(panel, h)
    return explain_rows(data, h, ex)


def explain_rows(data: SeriesData, h: int, ex) -> pa.Table:
    """explain_forecast's rows (EXPLAIN_ROW) from the kernel's explanation ``ex`` of the series of ``data``."""
    panel = data.panel
    keep = np.nonzero(panel.n_obs > 0)[0]
    series = np.repeat(keep, h)
    steps = np.tile(np.arange(1, h + 1), len(keep))
    days = K.period_dates(panel.start[series] + panel.lens[series] - 1 + steps, panel.freq, panel.anchor[series])
    labels = np.asarray(series_labels(data, ex.method), dtype=object)
    names = list(ex.drivers)
    values = np.stack([ex.drivers[n][keep].ravel() for n in names], axis=1) if names else np.zeros((len(series), 0))
    drivers_map = pa.MapArray.from_arrays(np.arange(len(series) + 1, dtype=np.int32) * len(names),
                                          pa.array(names * len(series), pa.string()),
                                          pa.array(values.ravel(), pa.float64()))
    return pa.table({
        "item": _names(data, series),
        "date": pa.array(days.astype("datetime64[D]"), pa.date32()),
        "forecast": pa.array(ex.forecast[keep].ravel(), pa.float64()),
        **{p: pa.array(ex.parts[p][keep].ravel(), pa.float64()) for p in K.PARTS if p != "residual"},
        "drivers": drivers_map,
        "residual": pa.array(ex.parts["residual"][keep].ravel(), pa.float64()),
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
        raise kernel_error(e) from None
    keep = np.nonzero(data.panel.n_obs > 0)[0]
    items = _names(data, keep)
    on_hand = stock(items) if stock is not None else np.zeros(len(keep))
    fc = res.fc.take(keep)
    q = K.reorder_quantities(fc, lt, sl, on_hand, rp)
    labels = series_labels(data, res.method)
    return pa.table({
        "item": items,
        "lead_time_demand": pa.array(q["lead_time_demand"], pa.float64(), from_pandas=True),
        "safety_stock": pa.array(q["safety_stock"], pa.float64(), from_pandas=True),
        "reorder_point": pa.array(q["reorder_point"], pa.float64(), from_pandas=True),
        "on_hand": pa.array(on_hand, pa.float64()),
        "order_qty": pa.array(q["order_qty"], pa.float64(), from_pandas=True),
        "method": pa.array([labels[i] for i in keep], pa.string()),
    })
