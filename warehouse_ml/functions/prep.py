"""Data preparation (SQL_SURFACE section 1): argument checks for the pure-SQL macros, and data_quality.

``clean_events``, ``user_features`` and ``rfm_segments`` are pure SQL macros (bodies in ``sql/<name>.sql``): their output
keeps the relation's own columns (clean_events) or the user column's own name and type, which a Python table
function with a fixed return type could not. They read their input as
``query_table(wml_prep_check(function, relation, to_json({...})))``: DuckDB folds that constant call while it
binds the FROM clause, before anything else in the macro is bound, so this UDF resolves the relation against
the catalog, checks every column argument (did-you-mean) and every value argument, and hands ``query_table``
the catalog's own quoted name. A bad name never reaches SQL text.

``data_quality`` has a fixed output, so it is a table UDF that builds one aggregate query from quoted names.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime

import pyarrow as pa

from ..binding.catalog import Relation, is_numeric_type
from ..binding.registry import scalar_udf, sql_body
from ..binding.spec import (
    Anything, Identifier, Identifiers, Option, RelationArg, StrOptions, spec, sql_function, sql_macro,
)
from ..errors import InvalidArgument
from ..tasks import roles
from ..tasks.roles import is_date_type
from .privacy import personal_columns

FILLS = ("median", "mode", "zero", "none")
_TEXT = re.compile(r"^(VARCHAR|STRING|TEXT)$", re.I)


def _check_as_of(call: dict) -> None:
    kind, value = call.get("as_of_type"), call.get("as_of")
    if kind in (None, "NULL") or value is None:
        return
    if kind == "DATE" or kind.startswith("TIMESTAMP"):
        return
    if kind == "VARCHAR":
        try:
            datetime.fromisoformat(str(value).strip())
            return
        except ValueError:
            pass
    raise InvalidArgument("as_of", f"expected a date or timestamp, got {value!r} ({kind})",
                          "Write e.g. as_of := DATE '2024-06-30', or leave it out to use the last order time")


def _check_window(call: dict) -> int | None:
    kind, value = call.get("label_window_type"), call.get("label_window")
    if kind in (None, "NULL") or value is None:
        return None
    fix = "Pass the number of days after as_of to look for a next order, e.g. label_window := 90"
    if kind == "INTERVAL" or isinstance(value, str):
        raise InvalidArgument("label_window", f"expected a whole number of days, got {value!r} ({kind})", fix)
    if isinstance(value, bool) or float(value) != int(value) or int(value) < 1:
        raise InvalidArgument("label_window", f"expected a whole number of days of at least 1, got {value!r}", fix)
    return int(value)


def _check_user_features(ctx, rel: Relation, call: dict) -> None:
    def last_time(column: str) -> datetime | None:
        return ctx.cursor().execute(f"SELECT max(CAST({rel.q(column)} AS TIMESTAMP)) FROM {rel.sql}").fetchall()[0][0]

    check_user_features(rel, call, last_time)


def check_user_features(rel: Relation, call: dict, last_time) -> dict[str, str]:
    """user_features' checks on any engine: the role columns (returned by argument name), as_of and label_window;
    ``last_time(column)`` reads the latest order time, needed only with a label_window."""
    roles = {}
    for arg in ("user_col", "time_col", "amount_col"):
        roles[arg] = rel.column(call.get(arg), arg)
    if len(set(roles.values())) < 3:
        raise InvalidArgument("user_col", f"user_col, time_col and amount_col must be three different columns, got {roles}",
                              "Name a distinct column for each role")
    t_type = rel.columns[roles["time_col"]]
    if not is_date_type(t_type):
        raise InvalidArgument("time_col", f"column '{roles['time_col']}' of '{rel.name}' has type {t_type}, not a DATE or TIMESTAMP",
                              f"Name a date/timestamp column, or convert it in a view: CAST({roles['time_col']} AS TIMESTAMP)")
    a_type = rel.columns[roles["amount_col"]]
    if not is_numeric_type(a_type):
        raise InvalidArgument("amount_col", f"column '{roles['amount_col']}' of '{rel.name}' has type {a_type}, not a number",
                              "Name the numeric order value column, e.g. amount_col := 'amount'")
    if call.get("discount_col") is not None:
        d = rel.column(call["discount_col"], "discount_col")
        if not is_numeric_type(rel.columns[d]):
            raise InvalidArgument("discount_col", f"column '{d}' has type {rel.columns[d]}, not a number",
                                  "Name a numeric discount column, or leave discount_col out")
    _check_as_of(call)
    window = _check_window(call)
    if window is not None:
        last = last_time(roles["time_col"])
        if last is None:
            return roles
        if call.get("as_of") is None:
            raise InvalidArgument("label_window", f"needs an as_of before the end of the data: without as_of the features are "
                                  f"computed at the last order ({last}), so no order can follow and every user would be churned",
                                  f"Pass an earlier date, e.g. as_of := DATE '{_minus_days(last, window)}'")
        cutoff = _cutoff(call)
        if cutoff is not None and (last - cutoff).total_seconds() < (window - 1) * 86400:
            raise InvalidArgument("label_window", f"the {window}-day window after as_of ({cutoff:%Y-%m-%d}) runs past the last "
                                  f"{roles['time_col']} in '{rel.name}' ({last}), so users would look churned only because the data ends",
                                  f"Use an as_of at least {window} days before the end, e.g. as_of := DATE '{_minus_days(last, window)}'")
    return roles


def _minus_days(ts: datetime, days: int) -> str:
    return date.fromordinal(ts.date().toordinal() - days).isoformat()


def _cutoff(call: dict) -> datetime | None:
    value = call.get("as_of")
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if call.get("as_of_type") == "DATE" or len(str(value).strip()) <= 10:
        return parsed.replace(hour=23, minute=59, second=59)
    return parsed.replace(tzinfo=None)


def _check_clean(rel: Relation, given: dict) -> None:
    opts = spec("clean_events").parse_options(given)
    for argument in ("dedupe", "required"):
        for name in opts[argument] or []:
            rel.column(name, argument)


def _column_list(argument: str) -> Option:
    return Option(argument, Identifiers(nonempty=False, one_alone=False),
                  fix=f"Write {argument} := ['col_a', 'col_b'] (a list, even for one column)")


sql_macro("clean_events", "The relation's own columns with duplicates removed, rows missing a required column "
          "dropped and the remaining gaps filled.", sql_body("clean_events"), module="prep", args=[RelationArg()],
          options=[_column_list("dedupe"), _column_list("required"), Option(
              "fill", StrOptions(FILLS), "median",
              fix="'median' fills numbers with the median and text with the most common value; 'mode' uses the most "
                  "common value; 'zero' fills numbers with 0; 'none' leaves gaps")])
_ORDERS = [RelationArg("orders")]
_ORDER_COLUMNS = [Option("as_of", Anything("a date or timestamp")), Option("user_col", Identifier(), "user_id"),
                  Option("time_col", Identifier(), "order_ts"), Option("amount_col", Identifier(), "amount")]
sql_macro("user_features", "One row per user: recency, frequency, monetary value, tenure and order counts as of a "
          "date, and a churn label with label_window.", sql_body("user_features"), module="prep", args=_ORDERS,
          options=_ORDER_COLUMNS + [Option("label_window", Anything("a whole number of days")),
                                    Option("discount_col", Identifier())])
sql_macro("rfm_segments", "Recency, frequency and monetary scores 1-5 per user and the standard RFM segment.",
          sql_body("rfm_segments"), module="prep", args=_ORDERS, options=_ORDER_COLUMNS)


@scalar_udf("wml_prep_check", args=["VARCHAR", "VARCHAR", "VARCHAR"], returns="VARCHAR")
def prep_check(ctx, function, relation, options):
    """Validate a prep macro's arguments; return the query the macro reads with ``query()``: a SELECT of the
    relation's quoted catalog name, or of the validated query text."""
    out = []
    for fn, name, raw in zip(function.to_pylist(), relation.to_pylist(), options.to_pylist()):
        opts = json.loads(raw) if raw else {}
        rel = ctx.relation(name, "orders" if fn in ("user_features", "rfm_segments") else "relation")
        if fn in ("user_features", "rfm_segments"):
            _check_user_features(ctx, rel, opts)
        elif fn == "clean_events":
            _check_clean(rel, opts)
        out.append(f"SELECT * FROM {rel.sql}")
    return pa.array(out, pa.string())


@scalar_udf("wml_prep_column", args=["VARCHAR", "VARCHAR[]", "VARCHAR"], returns="VARCHAR")
def prep_column(ctx, relation, candidates, missing):
    """The catalog spelling of the first candidate column that exists, else ``missing`` (a placeholder column)."""
    out = []
    for name, cands, miss in zip(relation.to_pylist(), candidates.to_pylist(), missing.to_pylist()):
        cols = ctx.relation(name).columns
        lower = {c.lower(): c for c in cols}
        found = next((lower[c.lower()] for c in (cands or []) if c is not None and c.lower() in lower), None)
        out.append(found if found is not None and is_numeric_type(cols[found]) else miss)
    return pa.array(out, pa.string())


@scalar_udf("wml_prep_required", args=["VARCHAR", "VARCHAR[]"], returns="VARCHAR[]")
def prep_required(ctx, relation, required):
    """Lower-cased columns whose missing values drop a row in clean_events: those named, or by default the
    ID-like columns (``id``, ``*_id``), which must never be imputed."""
    out = []
    for name, req in zip(relation.to_pylist(), required.to_pylist()):
        if req is not None:
            out.append([c.lower() for c in req if c is not None])
        else:
            out.append([c.lower() for c in ctx.relation(name).columns if roles.KEY.search(c)])
    return pa.array(out, pa.list_(pa.string()))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


QUALITY_ROW = ("STRUCT(\"column\" VARCHAR, type VARCHAR, null_fraction DOUBLE, distinct_count BIGINT, "
               "duplicate_rows BIGINT, issues VARCHAR[])")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@sql_function("data_quality", "One row per column with plain-language issues (gaps, constants, outliers, "
              "personal data).", args=[RelationArg()], returns=QUALITY_ROW)
def data_quality(ctx, relation):
    """One row per column: type, share of NULLs, distinct values, whole-row duplicates and plain-language issues."""
    rel = ctx.relation(relation)
    cols = list(rel.columns.items())
    aggs = ["count(*) AS n"]
    for i, (c, t) in enumerate(cols):
        q = rel.q(c)
        aggs += [f"count({q}) AS nn{i}", f"count(DISTINCT {q}) AS d{i}"]
        if is_numeric_type(t):
            aggs += [f"count(*) FILTER (WHERE {q} < 0) AS neg{i}",
                     f"CAST(quantile_cont({q}, [0.01, 0.99]) AS DOUBLE[]) AS iq{i}",
                     f"CAST(min({q}) AS DOUBLE) AS mn{i}",
                     f"CAST(max({q}) AS DOUBLE) AS mx{i}"]
        elif _TEXT.match(t):
            aggs += [f"count(*) FILTER (WHERE trim({q}) = '') AS blank{i}",
                     f"count(*) FILTER (WHERE trim({q}) <> {q} AND trim({q}) <> '') AS pad{i}",
                     f"count(DISTINCT lower(trim({q}))) AS dl{i}"]
        elif is_date_type(t):
            aggs += [f"count(*) FILTER (WHERE CAST({q} AS TIMESTAMP) > now()::TIMESTAMP + INTERVAL 1 DAY) AS fut{i}",
                     f"count(*) FILTER (WHERE CAST({q} AS TIMESTAMP) < TIMESTAMP '1900-01-01') AS old{i}"]
    cur = ctx.cursor()
    res = cur.execute(f"SELECT {', '.join(aggs)} FROM {rel.sql}")
    stats = dict(zip([d[0] for d in res.description], res.fetchall()[0]))
    n = stats["n"]
    try:
        dup, = cur.execute(f"SELECT {n} - count(*) FROM (SELECT DISTINCT * FROM {rel.sql})").fetchall()[0]
    except Exception:  # noqa: BLE001  (a column type DISTINCT cannot compare: report duplicates as unknown)
        dup = None
    personal = personal_columns(ctx, rel)
    rows = []
    for i, (c, t) in enumerate(cols):
        nn, d = stats[f"nn{i}"], stats[f"d{i}"]
        issues = []
        frac = None if n == 0 else (n - nn) / n
        if n == 0:
            issues.append("relation is empty: no rows to check")
        elif nn == 0:
            issues.append("all values are missing: drop the column")
        else:
            if frac > 0.5:
                issues.append(f"mostly missing ({_pct(frac)} null): consider dropping it or adding an is-missing flag")
            elif frac > 0:
                issues.append(f"{_plural(n - nn, 'missing value')} ({_pct(frac)}): fill them (clean_events fill :=) or drop those rows")
            if d == 1 and n > 1:
                issues.append("constant: every value is the same, so it carries no information for a model")
            id_named = bool(roles.KEY.search(c))
            numeric_or_text = is_numeric_type(t) or bool(_TEXT.match(t)) or t.upper() == "UUID"
            if numeric_or_text and nn >= 20 and not t.upper().startswith(("DOUBLE", "FLOAT", "DECIMAL")) and (d == nn or (id_named and d >= 0.95 * nn)):
                issues.append("ID-like: (almost) every value is unique; use it as a key, not as a model feature")
            elif _TEXT.match(t) and nn >= 50 and d > 0.5 * nn:
                issues.append(f"high-cardinality text ({d} distinct values): group rare values or leave it out of models")
            if is_numeric_type(t):
                if stats[f"neg{i}"] and roles.AMOUNT.search(c):
                    issues.append(f"{_plural(stats[f'neg{i}'], 'negative value')} in an amount-like column: refunds or errors? filter or fix them")
                q1, q3 = (stats[f"iq{i}"] or [None, None])
                if q1 is not None and q3 is not None and q3 > q1:  # beyond 5x the 1%-99% range: entry or unit errors
                    span = 5 * (q3 - q1)
                    if stats[f"mx{i}"] > q3 + span or stats[f"mn{i}"] < q1 - span:
                        issues.append(f"extreme values (range {stats[f'mn{i}']:g} to {stats[f'mx{i}']:g}, while 98% lie "
                                      f"between {q1:g} and {q3:g}): check for outliers or unit errors")
            if _TEXT.match(t):
                if stats[f"blank{i}"]:
                    issues.append(f"{_plural(stats[f'blank{i}'], 'empty or blank string')}: treat them as missing")
                if stats[f"pad{i}"]:
                    issues.append(f"{_plural(stats[f'pad{i}'], 'value')} with leading or trailing spaces: trim them")
                if stats[f"dl{i}"] < d and not stats[f"pad{i}"]:
                    issues.append(f"inconsistent spelling: {d - stats[f'dl{i}']} values differ from another only by upper/lower case")
                elif stats[f"dl{i}"] < d:
                    issues.append(f"inconsistent spelling: {d - stats[f'dl{i}']} values differ from another only by case or spaces")
            if is_date_type(t):
                if stats[f"fut{i}"]:
                    issues.append(f"{_plural(stats[f'fut{i}'], 'timestamp')} in the future: check clocks and time zones")
                if stats[f"old{i}"]:
                    issues.append(f"{_plural(stats[f'old{i}'], 'timestamp')} before 1900: placeholder dates?")
        if c in personal:
            issues.append(f"looks personal ({personal[c]}): models leave it out by default; share it only as "
                          f"pseudonyms, e.g. FROM pseudonymize('{relation}', columns := ['{c}'], key := ...)")
        rows.append({"column": c, "type": t, "null_fraction": frac, "distinct_count": d,
                     "duplicate_rows": dup, "issues": issues})
    return rows
