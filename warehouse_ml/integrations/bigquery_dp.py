"""BigQuery's differential privacy clause through the front door, translated onto ``dp_aggregate``.

    SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 1e-6, privacy_unit_column = user_id)
        channel, COUNT(*) AS orders, AVG(revenue contribution_bounds_per_group => (0, 500)) AS avg_revenue
    FROM orders GROUP BY channel

How: each DP aggregate (``COUNT(*)``, ``SUM``, ``AVG``, ``PERCENTILE_CONT(x, p)``, each with
``contribution_bounds_per_group`` or ``contribution_bounds_per_row``) becomes a metric of one ``dp_aggregate`` call;
its long output (one row per group and metric) is pivoted back to one column per aggregate, and the rest of
the SELECT (aliases, expressions over the aggregates, HAVING, ORDER BY, LIMIT) runs over that, as
post-processing of the noisy values. Options: ``epsilon``, ``delta``, ``privacy_unit_column``,
``max_groups_contributed``, ``max_rows_contributed``. Contribution bounds clamp each row's value (BigQuery clamps
each unit's per-group aggregate); the intervals and noise scales are in ``dp_aggregate``'s own output.
"""
from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp

from ..errors import InvalidArgument
from ..frontdoor import register_statement_handler
from .bigquery_sql import LEADING_COMMENTS, close_paren, literal, quote_state, split_args

log = logging.getLogger("warehouse_ml")

_DP_SELECT = re.compile(r"^\s*SELECT\s+WITH\s+DIFFERENTIAL_PRIVACY\s+OPTIONS\s*\(", re.I)
_AGGREGATE = re.compile(r"\b(COUNT|SUM|AVG|PERCENTILE_CONT)\s*\(", re.I)
_BOUNDS = re.compile(r",?\s*contribution_bounds_per_(?:group|row)\s*=>\s*\(([^()]*)\)\s*$", re.I)
OPTIONS = {"epsilon": "epsilon", "delta": "delta", "privacy_unit_column": "privacy_unit",
           "max_groups_contributed": "max_groups_per_unit", "max_rows_contributed": "max_rows_per_unit"}
HINT = ("Write e.g. SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 1e-6, privacy_unit_column = user_id) "
        "channel, COUNT(*), AVG(revenue contribution_bounds_per_group => (0, 500)) FROM orders GROUP BY channel")


def matches(query: str) -> bool:
    return bool(_DP_SELECT.match(LEADING_COMMENTS.sub("", query, count=1)))


def run(con, query: str, params=None):
    sql = translate(query)
    log.info("differential privacy statement translated to: %s", sql)
    return con.execute(sql, params) if params is not None else con.execute(sql)


def _number(text: str, what: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidArgument(what, f"expected a number, got {text.strip()!r}", HINT) from None


def _options(text: str) -> dict:
    out = {}
    for item in split_args(text):
        name, eq, value = item.partition("=")
        key = name.strip().lower()
        if not eq or key not in OPTIONS:
            raise InvalidArgument(f"OPTIONS({name.strip()})", "is not a differential privacy option understood here",
                                  f"Use: {', '.join(OPTIONS)}")
        value = value.strip()
        if key == "privacy_unit_column":
            out[OPTIONS[key]] = value.strip("`\"'")
        elif key.startswith("max_"):
            count = _number(value, f"OPTIONS({key})")
            out[OPTIONS[key]] = int(count) if count == int(count) else count  # a fraction fails dp_aggregate's check
        else:
            out[OPTIONS[key]] = _number(value, f"OPTIONS({key})")
    return out


def _metric(func: str, body: str) -> tuple[str, str | None, tuple[float, float] | None]:
    """(dp_aggregate metric, value column, bounds) of one aggregate call's text."""
    bounds = None
    m = _BOUNDS.search(body)
    if m:
        parts = split_args(m.group(1))
        if len(parts) != 2:
            raise InvalidArgument("contribution_bounds_per_group", f"expected (lower, upper), got ({m.group(1)})", HINT)
        bounds = (_number(parts[0], "contribution_bounds_per_group"), _number(parts[1], "contribution_bounds_per_group"))
        body = body[:m.start()]
    args = split_args(body)
    func = func.upper()
    if func == "COUNT":
        if args != ["*"]:
            raise InvalidArgument("COUNT", f"COUNT({body.strip()}) is not supported with differential privacy here",
                                  "Use COUNT(*): it counts rows with each privacy unit's contribution bounded")
        return "count", None, None
    column = args[0].strip().strip("`\"") if args else ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
        raise InvalidArgument(func, f"expected a column name, got {args[0] if args else ''!r}",
                              "Aggregate a column directly; compute expressions in a view first")
    if bounds is None:
        raise InvalidArgument(func, f"{func}({column}) needs public contribution bounds",
                              f"Write {func}({column}{', 0.5' if func == 'PERCENTILE_CONT' else ''} "
                              "contribution_bounds_per_group => (0, 500))")
    if func == "PERCENTILE_CONT":
        if len(args) != 2:
            raise InvalidArgument("PERCENTILE_CONT", "expected a column and a percentile", "Write PERCENTILE_CONT(x, 0.5 ...)")
        return f"quantile({column}, {_number(args[1], 'PERCENTILE_CONT'):g})", column, bounds
    return f"{func.lower()}({column})", column, bounds


def translate(query: str) -> str:
    """The DuckDB SQL that answers a BigQuery ``SELECT WITH DIFFERENTIAL_PRIVACY`` statement."""
    body = LEADING_COMMENTS.sub("", query, count=1).strip().rstrip(";")
    head = _DP_SELECT.match(body)
    inside = quote_state(body)
    close = close_paren(body, head.end() - 1, inside)
    options = _options(body[head.end():close])
    rest, metrics, bounds, names = body[close + 1:], [], {}, []
    out, pos, inside = [], 0, quote_state(rest)
    for m in _AGGREGATE.finditer(rest):
        if m.start() < pos or inside[m.start()]:
            continue
        end = close_paren(rest, m.end() - 1, inside)
        metric, column, bound = _metric(m.group(1), rest[m.end():end])
        if column is not None:
            if column in bounds and bounds[column] != bound:
                raise InvalidArgument("contribution_bounds_per_group", f"'{column}' has two different bounds",
                                      "Give every aggregate of one column the same bounds")
            bounds[column] = bound
        if metric not in metrics:
            metrics.append(metric)
            names.append(re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_"))
        out.append(rest[pos:m.start()] + f"__wml_dp_{metrics.index(metric)}")
        pos = end + 1
    out.append(rest[pos:])
    if not metrics:
        raise InvalidArgument("query", "the SELECT has no differentially private aggregate", HINT)
    try:
        select = sqlglot.parse_one("SELECT " + "".join(out), read="bigquery")
    except sqlglot.errors.ParseError as e:
        raise InvalidArgument("query", f"could not parse the statement: {str(e).splitlines()[0]}", HINT) from None
    source = select.args.get("from_") or select.args.get("from")
    if not isinstance(select, exp.Select) or source is None or not isinstance(source.this, exp.Table) or select.args.get("joins"):
        raise InvalidArgument("FROM", "a differentially private SELECT reads one table or view", HINT)
    if select.args.get("where"):
        raise InvalidArgument("WHERE", "filters are not translated (the privacy unit's rows must be bounded after filtering)",
                              "Filter in a view first and select from the view")
    table = ".".join(p.name for p in source.this.parts)
    group_by = [g.name for g in (select.args.get("group") or exp.Group()).expressions]
    if any(not isinstance(g, exp.Column) for g in (select.args.get("group") or exp.Group()).expressions):
        raise InvalidArgument("GROUP BY", "group by plain columns", "Compute derived keys in a view first")
    args = [literal(table), "group_by := [" + ", ".join(literal(g) for g in group_by) + "]",
            "metrics := [" + ", ".join(literal(mt) for mt in metrics) + "]"]
    if bounds:
        args.append("bounds := {" + ", ".join(f"{literal(c)}: [{lo!r}, {hi!r}]" for c, (lo, hi) in bounds.items()) + "}")
    args += [f"{k} := {literal(v)}" for k, v in options.items()]
    keys = "".join(f"{exp.to_identifier(g, quoted=True).sql(dialect='duckdb')}, " for g in group_by)
    pivots = ", ".join(f"max(value) FILTER (WHERE metric = {literal(mt)}) AS __wml_dp_{i}" for i, mt in enumerate(metrics))
    inner = f"(SELECT {keys}{pivots} FROM dp_aggregate({', '.join(args)}) GROUP BY ALL)"
    for i, item in enumerate(select.expressions):  # a bare aggregate gets a readable name
        if isinstance(item, exp.Column) and item.name.startswith("__wml_dp_"):
            item.replace(exp.alias_(item.copy(), names[int(item.name.rsplit("_", 1)[1])], quoted=True))
    select.set("group", None)
    if select.args.get("having"):
        select.set("where", exp.Where(this=select.args["having"].this))
        select.set("having", None)
    source.set("this", exp.Table(this=exp.to_identifier("__wml_dp_release")))
    sql = select.sql(dialect="duckdb")
    if "FROM __wml_dp_release" not in sql:
        raise InvalidArgument("query", "could not rewrite the FROM clause", HINT)
    return sql.replace("FROM __wml_dp_release", f"FROM {inner} AS __wml_dp_release", 1)


register_statement_handler(matches, run)
