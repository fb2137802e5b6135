"""price_elasticity and optimal_price: per-item demand curves in SQL over the kernels in ``tasks.pricing``.

Each row of the relation is one observation of an item's units sold at a price (e.g. an item-day). Column
roles are inferred when unambiguous: the item (named like sku/item/product, else the only text column; none
means the whole relation is one item), the price (named like price), the units (named like units/quantity/qty)
and the date (the only DATE/TIMESTAMP column; ``date := ...`` names one).

The demand model is the one in ``tasks.pricing``: by default a per-item Poisson GLM (log link) of units on log
price, with controls for time (trend, weekday, yearly terms) built from the date, robust standard errors, and
zero-unit days used as observations. ``controls := 'none'``, or a relation without a date, fits units on log
price alone; ``model := 'loglog'`` fits OLS of log units instead (``controls := 'none', model := 'loglog'`` is
the classic log-log regression). The ``method`` column says per item what was fitted. In optimal_price the date
also decides the current price (the latest date's) and the recent conditions (the last 28 days) at which the
fitted curve predicts units.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import is_numeric_type
from ..binding.spec import Boolean, Identifier, Interval, OneOf, Option, RelationArg, StrOptions, sql_function
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import pricing as pr
from ..tasks import roles
from ..tasks.roles import is_date_type

ELASTICITY_ROW = ("STRUCT(item VARCHAR, elasticity DOUBLE, ci_low DOUBLE, ci_high DOUBLE, r2 DOUBLE, n BIGINT, "
                  "n_excluded BIGINT, method VARCHAR, note VARCHAR)")
OPTIMAL_ROW = ("STRUCT(item VARCHAR, current_price DOUBLE, optimal_price DOUBLE, expected_units DOUBLE, "
               "expected_profit DOUBLE, current_units DOUBLE, current_profit DOUBLE, unit_cost DOUBLE, "
               "elasticity DOUBLE, note VARCHAR)")

_TEXT = re.compile(r"^(VARCHAR|TEXT|STRING|CHAR.*|ENUM.*)$", re.IGNORECASE)


_COLUMNS = [Option("item", Identifier()), Option("price", Identifier()), Option("units", Identifier()),
            Option("date", Identifier())]
_FIT = [
    Option("controls", StrOptions({"auto", "none"}), "auto",
           fix="Pass controls := 'auto' (trend, weekday and yearly terms from the date) or controls := 'none'"),
    Option("model", StrOptions({"poisson", "loglog"}), "poisson",
           fix="Pass model := 'poisson' (GLM with a log link; uses zero-unit days) or model := 'loglog'"),
    Option("alpha", Interval(float, 0, 1, closed="neither"), 0.05),
    Option("min_rows", Interval(int, 3, None), 5),
    Option("min_price_variation", Interval(float, 0, None), 0.02),
]


def _numeric(rel, col: str, argument: str) -> str:
    t = rel.columns[col]
    if not is_numeric_type(t):
        raise InvalidArgument(argument, f"column '{col}' is {t}, not a number",
                              f"Pass a numeric column, or cast it in a view (e.g. CAST({col} AS DOUBLE))")
    return col


def _infer(rel, given, argument: str, role: str, pattern, type_ok, taken=(), required=True) -> str | None:
    if given is not None:
        return rel.column(given, argument)
    by_name = [c for c in rel.columns if pattern.search(c) and type_ok(rel.columns[c]) and c not in taken]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise AmbiguousColumn(rel.name, argument, role, by_name)
    if required:
        raise AmbiguousColumn(rel.name, argument, role, [c for c in rel.columns if type_ok(rel.columns[c])])
    return None


def _resolve(rel, opts: dict):
    cost = opts.get("cost")
    cost = (rel.column(cost, "cost"),) if isinstance(cost, str) else ()
    price = _numeric(rel, _infer(rel, opts.get("price"), "price", "price", roles.PRICE, is_numeric_type, taken=cost),
                     "price")
    units = _numeric(rel, _infer(rel, opts.get("units"), "units", "units sold", roles.UNITS, is_numeric_type,
                                 taken=(price, *cost)), "units")
    if opts.get("item") is not None:
        item = rel.column(opts["item"], "item")
    else:
        item = _infer(rel, None, "item", "item", roles.PRODUCT, lambda t: True, taken=(price, units), required=False)
        if item is None:
            text = [c for c, t in rel.columns.items() if _TEXT.match(t)]
            if len(text) > 1:
                raise AmbiguousColumn(rel.name, "item", "item", text)
            item = text[0] if text else None
    return item, price, units


def _date(rel, opts: dict) -> str | None:
    date = opts.get("date")
    if date is not None:
        date = rel.column(date, "date")
        if not is_date_type(rel.columns[date]):
            raise InvalidArgument("date", f"column '{date}' is {rel.columns[date]}, not a date",
                                  "Pass a DATE or TIMESTAMP column")
        return date
    dates = [c for c, t in rel.columns.items() if is_date_type(t)]
    return dates[0] if len(dates) == 1 else None


def _read(ctx, rel, item, price, units, extra: list[str] = ()) -> pa.Table:
    cols = [f"CAST({rel.q(item)} AS VARCHAR) AS item" if item else "'all' AS item",
            f"CAST({rel.q(price)} AS DOUBLE) AS price", f"CAST({rel.q(units)} AS DOUBLE) AS units", *extra]
    return ctx.read_arrow(f"SELECT {', '.join(cols)} FROM {rel.sql}")


def _fit(table: pa.Table, opts: dict, has_date: bool):
    items = table.column("item").combine_chunks()
    enc = pc.dictionary_encode(items)
    labels = enc.dictionary
    codes = pc.fill_null(enc.indices, len(labels)).to_numpy(zero_copy_only=False).astype(np.int64)
    has_null = items.null_count > 0
    k = len(labels) + (1 if has_null else 0)
    item_out = labels.to_pylist() + ([None] if has_null else [])
    price = pc.fill_null(table.column("price"), np.nan).to_numpy()
    units = pc.fill_null(table.column("units"), np.nan).to_numpy()
    controls = opts["controls"]
    day = None
    if has_date and controls == "auto":
        day = pc.fill_null(pc.cast(table.column("t"), pa.float64()), np.nan).to_numpy() / 86_400_000_000
    fit = pr.fit_elasticity(codes, k, price, units, alpha=opts["alpha"], min_rows=opts["min_rows"],
                            min_price_variation=opts["min_price_variation"], day=day, controls=controls,
                            model=opts["model"])
    return fit, codes, item_out, price, units


def _nan_to_none(a) -> list:
    return [None if v is None or (isinstance(v, float) and not np.isfinite(v)) else v for v in np.asarray(a, dtype=float).tolist()]


@sql_function("price_elasticity", "Per-item demand curves: the elasticity of units to price with its confidence "
              "interval (a Poisson GLM with trend, weekday and yearly controls by default).",
              args=[RelationArg()], options=_COLUMNS + _FIT, returns=ELASTICITY_ROW)
def price_elasticity(ctx, relation, **opts):
    rel = ctx.relation(relation)
    item, price, units = _resolve(rel, opts)
    date = _date(rel, opts)
    extra = [f"epoch_us(CAST({rel.q(date)} AS TIMESTAMP)) AS t"] if date else []
    return elasticity_table(_read(ctx, rel, item, price, units, extra), opts, bool(date))


def elasticity_table(table: pa.Table, opts: dict, has_date: bool) -> pa.Table:
    """price_elasticity's rows (ELASTICITY_ROW) from item (text), price, units and t (epoch microseconds)."""
    fit, _, items, _, _ = _fit(table, opts, has_date)
    return pa.table({
        "item": pa.array(items, pa.string()),
        "elasticity": pa.array(_nan_to_none(fit.elasticity), pa.float64()),
        "ci_low": pa.array(_nan_to_none(fit.ci_low), pa.float64()),
        "ci_high": pa.array(_nan_to_none(fit.ci_high), pa.float64()),
        "r2": pa.array(_nan_to_none(fit.r2), pa.float64()),
        "n": pa.array(fit.n, pa.int64()),
        "n_excluded": pa.array(fit.n_excluded, pa.int64()),
        "method": pa.array(fit.methods, pa.string()),
        "note": pa.array(fit.notes, pa.string()),
    })


@sql_function(
    "optimal_price", "The profit-maximising price of each item from its demand curve and unit cost.",
    args=[RelationArg()], returns=OPTIMAL_ROW, options=[
        Option("cost", OneOf(Identifier(), Interval(float, 0, None)), fix="Pass a cost column name or a number >= 0"),
        *_COLUMNS[:4], *_FIT[:2],
        Option("min_price", Interval(float, 0, None)),
        Option("max_price", Interval(float, 0, None, closed="neither"), fix="Pass e.g. max_price := 20"),
        Option("within_observed", Boolean(), True,
               fix="Pass within_observed := false to search beyond the observed prices"),
        *_FIT[2:]])
def optimal_price(ctx, relation, **opts):
    rel = ctx.relation(relation)
    item, price, units = _resolve(rel, opts)
    extra = []
    cost = opts["cost"]
    cost_const = None
    if isinstance(cost, str):
        extra.append(f"CAST({rel.q(_numeric(rel, rel.column(cost, 'cost'), 'cost'))} AS DOUBLE) AS cost")
    elif cost is not None:
        cost_const = cost
    date = _date(rel, opts)
    if date:
        extra.append(f"epoch_us(CAST({rel.q(date)} AS TIMESTAMP)) AS t")
    return optimal_table(_read(ctx, rel, item, price, units, extra), opts, date, cost_const)


def optimal_table(table: pa.Table, opts: dict, date: str | None, cost_const: float | None) -> pa.Table:
    """optimal_price's rows (OPTIMAL_ROW) from item (text), price, units, optionally cost and t (epoch
    microseconds of the column ``date``); ``cost_const``: one unit cost for every item instead of a column."""
    within, min_price, max_price = opts["within_observed"], opts["min_price"], opts["max_price"]
    fit, codes, items, p, q = _fit(table, opts, bool(date))
    k = len(items)
    ok = np.isfinite(p) & np.isfinite(q) & (p > 0) & (q >= 0)
    if date:
        never = np.iinfo(np.int64).min
        t = pc.fill_null(table.column("t"), never).to_numpy().astype(np.int64)
        has_t = ok & (t != never)
        current = pr.group_latest_mean(codes[has_t], p[has_t], t[has_t], k)
        basis = f"price on the latest '{date}'"
    else:
        current = pr.group_median(codes[ok], p[ok], k)
        basis = "median observed price (no date column; name one with date := ...)"
    if cost_const is not None:
        unit_cost = np.full(k, cost_const)
    elif "cost" in table.column_names:
        c = pc.fill_null(table.column("cost"), np.nan).to_numpy()
        has_c = ok & np.isfinite(c)
        s = np.bincount(codes[has_c], weights=c[has_c], minlength=k)
        m = np.bincount(codes[has_c], minlength=k)
        unit_cost = np.where(m > 0, s / np.maximum(m, 1), np.nan)
    else:
        unit_cost = np.full(k, np.nan)
    res = pr.optimal_prices(fit, unit_cost, current, min_price=min_price, max_price=max_price, within_observed=within)
    notes = [("current price: " + basis) if n is None else f"{n}; current price: {basis}" for n in res["notes"]]
    return pa.table({
        "item": pa.array(items, pa.string()),
        "current_price": pa.array(_nan_to_none(current), pa.float64()),
        "optimal_price": pa.array(_nan_to_none(res["optimal_price"]), pa.float64()),
        "expected_units": pa.array(_nan_to_none(res["expected_units"]), pa.float64()),
        "expected_profit": pa.array(_nan_to_none(res["expected_profit"]), pa.float64()),
        "current_units": pa.array(_nan_to_none(res["current_units"]), pa.float64()),
        "current_profit": pa.array(_nan_to_none(res["current_profit"]), pa.float64()),
        "unit_cost": pa.array(_nan_to_none(unit_cost), pa.float64()),
        "elasticity": pa.array(_nan_to_none(fit.elasticity), pa.float64()),
        "note": pa.array(notes, pa.string()),
    })
