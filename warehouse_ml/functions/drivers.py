"""key_drivers: why a metric moved between two periods, in SQL, over the kernel in ``tasks.drivers``.

The heavy part runs in DuckDB through a second cursor: one GROUP BY of the relation on every dimension and the
period, with the sums the tests need. The kernel searches the segments of that aggregated table.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import is_numeric_type
from ..binding.spec import (
    Anything, Identifier, Identifiers, Interval, Option, RelationArg, StrOptions, Text, sql_function,
)
from ..errors import InvalidArgument, did_you_mean
from ..tasks import drivers as kd

DRIVER_ROW = ("STRUCT(rank INTEGER, segment VARCHAR, depth INTEGER, dimensions MAP(VARCHAR, VARCHAR), "
              "control_value DOUBLE, test_value DOUBLE, difference DOUBLE, relative_change DOUBLE, contribution DOUBLE, "
              "share_of_change DOUBLE, rate_effect DOUBLE, mix_effect DOUBLE, share_of_rows DOUBLE, n_control BIGINT, "
              "n_test BIGINT, p_value DOUBLE, p_value_raw DOUBLE, significant BOOLEAN, explained_by VARCHAR, "
              "description VARCHAR, notes VARCHAR)")
ROWS = "*"  # metric := '*' counts rows; denominator := '*' divides by the row count (a mean per row)
_NESTED = ("[]", "STRUCT", "MAP", "UNION")


def _value_column(rel, name, argument: str) -> str | None:
    """A numeric (or boolean) column, or None for '*' (rows)."""
    if name == ROWS:
        return None
    col = rel.column(name, argument)
    t = rel.columns[col]
    if not (is_numeric_type(t) or t.upper() == "BOOLEAN"):
        raise InvalidArgument(argument, f"column '{col}' is {t}, not a number",
                              f"Pass a numeric or boolean column, '*' to count rows, or cast it in a view "
                              f"(e.g. CAST({col} AS DOUBLE))")
    return col


def _dimensions(rel, given: list[str], taken: dict[str, str]) -> list[str]:
    out = []
    for name in given:
        col = rel.column(name, "dimensions")
        if col in out:
            raise InvalidArgument("dimensions", f"'{col}' is listed twice", "List each dimension once")
        for role, other in taken.items():
            if col == other:
                raise InvalidArgument("dimensions", f"'{col}' is also the {role} column",
                                      f"Segment by other columns than the {role}")
        if any(m in rel.columns[col].upper() for m in _NESTED):
            raise InvalidArgument("dimensions", f"column '{col}' is {rel.columns[col]}, a nested type",
                                  "Pass columns with plain values (text, numbers, dates, booleans)")
        out.append(col)
    return out


def _period_value(value) -> str:
    """A period value as DuckDB writes it when the column is cast to text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_BETWEEN_0_AND_1 = Interval(float, 0, 1, closed="neither")


@sql_function(
    "key_drivers", "The segments that explain a metric's change from control to test: contributions, rate and mix "
    "effects, corrected tests.", args=[RelationArg()], returns=DRIVER_ROW, options=[
        Option("metric", Text(nonempty=True), doc="a column to sum, '*' to count rows"),
        Option("dimensions", Identifiers(), fix="Pass e.g. dimensions := ['channel', 'device']"),
        Option("period", Identifier()),
        Option("test", Anything("a value of the period column")),
        Option("control", Anything("a value of the period column")),
        Option("denominator", Text(nonempty=True), doc="sum(metric) / sum(denominator); '*' divides by rows"),
        Option("max_depth", Interval(int, 1, 6), 3,
               fix="Pass a whole number from 1 to 6, e.g. max_depth := 3 (segments of up to three dimension values)"),
        Option("min_support", _BETWEEN_0_AND_1, 0.01,
               fix="Pass a share of rows strictly between 0 and 1, e.g. min_support := 0.01 (segments with at least "
                   "1% of the rows)"),
        Option("alpha", _BETWEEN_0_AND_1, 0.05, fix="Pass a number strictly between 0 and 1, e.g. alpha := 0.05"),
        Option("correction", StrOptions(kd.CORRECTIONS, "correction"), "holm",
               fix="Use 'holm' (family-wise error), 'bh' (false discovery rate) or 'bonferroni'"),
        Option("max_values", Interval(int, 1, None), 1000, fix="Pass e.g. max_values := 1000"),
        Option("max_segments", Interval(int, 1, None), 10_000, fix="Pass e.g. max_segments := 10000"),
    ])
def key_drivers(ctx, relation, **opts):
    example = f"FROM key_drivers('{relation}', metric := 'revenue', dimensions := ['channel', 'device'], " \
              "period := 'period', test := 'this_week', control := 'last_week')"
    for required in ("metric", "dimensions", "period"):
        if opts[required] is None:
            raise InvalidArgument(required, "is required", f"For example: {example}")
    rel = ctx.relation(relation)
    metric = _value_column(rel, opts["metric"], "metric")
    denominator = _value_column(rel, opts["denominator"], "denominator") if opts["denominator"] is not None else False
    period = rel.column(opts["period"], "period")
    roles = {"period": period, **({"metric": metric} if metric else {}), **({"denominator": denominator} if denominator else {})}
    if metric == period:
        raise InvalidArgument("metric", f"'{metric}' is the period column", "Pass the measure to explain as metric")
    dims = _dimensions(rel, opts["dimensions"], roles)
    max_values = opts["max_values"]
    depth, support, alpha, correction, max_segments = kd.check_options(  # before the heavy query
        opts["max_depth"], opts["min_support"], opts["alpha"], opts["correction"], opts["max_segments"], len(dims))
    defaults = {"test": True, "control": False} if rel.columns[period].upper() == "BOOLEAN" else {}
    periods = {}
    for argument, example_value in (("test", "this_week"), ("control", "last_week")):
        value = opts[argument] if opts[argument] is not None else defaults.get(argument)
        if value is None:
            raise InvalidArgument(argument, f"is required: which value of '{period}' marks the {argument} period",
                                  f"Name it, e.g. {argument} := '{example_value}', or pass a BOOLEAN period column "
                                  "(true is the test period)")
        periods[argument] = _period_value(value)
    test, control = periods["test"], periods["control"]
    if test == control:
        raise InvalidArgument("control", f"is the same value as test ('{test}')", "Pass two different periods")

    q = rel.q
    p = f"CAST({q(period)} AS VARCHAR)"
    y = "1.0" if metric is None else f"CAST({q(metric)} AS DOUBLE)"
    d = "1.0" if denominator in (None, False) else f"CAST({q(denominator)} AS DOUBLE)"
    # the numeric policy (README: Numbers): NaN and inf are missing values, excluded like NULL and counted
    valid = f"coalesce(isfinite({y}), false)" + ("" if denominator is False else f" AND coalesce(isfinite({d}), false)")
    distinct = ", ".join(f"approx_count_distinct({q(c)})" for c in dims)
    counts = ctx.cursor().execute(
        f"SELECT count(*), count(*) FILTER (WHERE {p} = $1), count(*) FILTER (WHERE {p} = $2), "
        f"count(*) FILTER (WHERE {p} IN ($1, $2) AND NOT ({valid})), {distinct} FROM {rel.sql}", [test, control]).fetchall()[0]
    n_all, n_test, n_control, n_invalid = counts[:4]
    for argument, value, n in (("test", test, n_test), ("control", control, n_control)):
        if n == 0:
            found = [r[0] for r in ctx.cursor().execute(
                f"SELECT DISTINCT {p} FROM {rel.sql} WHERE {p} IS NOT NULL ORDER BY 1 LIMIT 50").fetchall()]
            raise InvalidArgument(argument, f"no rows where {period} = '{value}'.{did_you_mean(value, found)}".rstrip("."),
                                  f"Pass one of the values of '{period}'")
    for col, n_distinct in zip(dims, counts[4:]):
        if n_distinct > max_values:
            raise InvalidArgument("dimensions", f"'{col}' has about {n_distinct:,} distinct values (more than max_values := "
                                  f"{max_values:,}); a segment needs min_support of the rows, so an identifier-like column "
                                  "finds nothing", f"Drop '{col}' from dimensions, bucket it in a view, or raise max_values")

    sums = ["count(*) AS n", f"sum({y}) AS y", f"sum({y} * {y}) AS yy"]
    if denominator is not False:
        sums += [f"sum({d}) AS d", f"sum({d} * {d}) AS dd", f"sum({y} * {d}) AS yd"]
    keys = ", ".join(f"{q(c)} AS k{i}" for i, c in enumerate(dims))
    cast_keys = ", ".join(f"CAST(k{i} AS VARCHAR) AS k{i}" for i in range(len(dims)))
    table = ctx.read_arrow(
        f"SELECT {cast_keys}, is_test, * EXCLUDE ({', '.join(f'k{i}' for i in range(len(dims)))}, is_test) FROM ("
        f"SELECT {keys}, {p} = $1 AS is_test, {', '.join(sums)} FROM {rel.sql} "
        f"WHERE {p} IN ($1, $2) AND {valid} GROUP BY ALL)", [test, control])
    codes, labels = [], []
    for i in range(len(dims)):
        enc = pc.dictionary_encode(table.column(f"k{i}").combine_chunks())
        values = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy(zero_copy_only=False) if enc.null_count == 0 else \
            pc.fill_null(enc.indices, len(values)).to_numpy(zero_copy_only=False)
        codes.append(np.asarray(idx, dtype=np.int64))
        labels.append(values + ([None] if enc.null_count else []))
    stats = {name: pc.fill_null(table.column(name), 0).to_numpy() for name in table.column_names[len(dims) + 1:]}
    cells = kd.CellTable(codes, labels, table.column("is_test").to_numpy(zero_copy_only=False), stats)
    name = (metric or "rows") if denominator is False else f"{metric or 'rows'} per {denominator or 'row'}"
    result = kd.key_drivers(cells, dims, name, max_depth=depth, min_support=support, alpha=alpha,
                            correction=correction, max_segments=max_segments)
    notes = result.notes
    if n_all - n_test - n_control:
        notes.append(f"{n_all - n_test - n_control:,} rows outside both periods ignored")
    if n_invalid:
        notes.append(f"{n_invalid:,} rows with a missing (NULL, NaN or infinite) metric or denominator excluded")
    return result.rows.append_column("notes", pa.array(["; ".join(notes)] * result.rows.num_rows, pa.string()))
