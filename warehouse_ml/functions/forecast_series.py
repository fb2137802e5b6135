"""The series every forecasting function reads: column roles, the per-(item, date) aggregation in SQL, the panel.

``load_series`` resolves a relation and its roles against the catalog, aggregates one row per (item, date) on a
second cursor (quoted catalog names only; duplicate rows summed, NaN/inf treated as missing) and builds the
left-aligned panel the kernels of ``warehouse_ml.tasks.forecast`` take. Spark builds the same panel from its own
aggregation with ``series_from_groups``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..binding.catalog import Relation, is_numeric_type
from ..binding.registry import scalar_udf
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import forecast as K
from ..tasks import roles
from ..tasks.roles import is_date_type


def kernel_error(e: K.ForecastInputError) -> InvalidArgument:
    """A kernel's input error as the SQL functions raise it."""
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


def series_labels(data: SeriesData, made: list) -> list[str]:
    """Each series' method label (the text of its ``Provenance``, or an explanation's label) with what was done
    to its rows (duplicates summed, NaN/inf as missing)."""
    out = [str(m) for m in made]
    for i in np.nonzero(data.duplicates > 0)[0]:
        k = int(data.duplicates[i])
        out[i] = f"{out[i]} [{k} date{'s' if k > 1 else ''} with duplicate rows summed]"
    for i in np.nonzero(data.nonfinite > 0)[0]:
        k = int(data.nonfinite[i])
        out[i] = f"{out[i]} [{k} NaN or infinite value{'s' if k > 1 else ''} treated as missing]"
    return out


def check_horizon(h, argument="horizon") -> int:
    try:
        return K.validate_horizon(h)
    except K.ForecastInputError as e:
        raise InvalidArgument(argument, e.problem, e.fix.replace("periods to forecast", f"periods ({argument})")) from None
