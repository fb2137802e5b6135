"""Keys that come back with the type they went in with.

A table UDF returns one fixed row type, so user and item keys travel through it as text. The table macro does
not call it directly: it runs ``FROM query(wml_x_sql(...))``, where ``wml_x_sql`` is a scalar UDF that DuckDB
evaluates once while binding (its arguments are constants). It looks up the source columns' types in the catalog
(or in the stored model) and returns the SQL text of the call to the table UDF with each key cast back to its type.
Only plain scalar types are cast back; anything else (ENUM, STRUCT, ...) stays VARCHAR.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import pyarrow as pa

from ..errors import WmlError

_CASTABLE = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|"
    r"DECIMAL\(\d{1,2}, ?\d{1,2}\)|DATE|TIMESTAMP|TIMESTAMP WITH TIME ZONE|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|"
    r"UUID|VARCHAR)$", re.IGNORECASE)


def key_type(sql_type: str | None) -> str:
    """The type a key column is cast back to: its own when it survives a trip through text, else VARCHAR."""
    t = (sql_type or "").strip()
    return t.upper() if _CASTABLE.match(t) else "VARCHAR"


def literal(value) -> str:
    """A SQL literal for a string, a whole number, a JSON-able value (as text) or NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text.replace("'", "''") + "'"


def typed_call_sql(udf: str, args: list, columns: list[str], casts: dict[str, str]) -> str:
    """``SELECT`` of every row of table UDF ``udf(args...)``, the columns named in ``casts`` cast to their types."""
    select = []
    for c in columns:
        quoted = '"' + c.replace('"', '""') + '"'
        t = key_type(casts.get(c))
        select.append(f"CAST({quoted} AS {t}) AS {quoted}" if c in casts and t != "VARCHAR" else quoted)
    call = f"{udf}({', '.join(literal(a) for a in args)})"
    return f"SELECT {', '.join(select)} FROM (SELECT unnest({call}, recursive := true))"


def typed_calls(ctx, udf: str, arrays: list[pa.Array], columns: list[str], types_of: Callable[..., dict[str, str]]
                ) -> pa.Array:
    """Body of a bind-time ``wml_x_sql`` UDF: per row of constant arguments, the SQL text of the call to table UDF
    ``udf`` with the key columns that ``types_of(ctx, *args)`` types cast back. When ``types_of`` fails on a bad
    argument the keys stay VARCHAR: ``udf`` itself then reports the problem when it runs."""
    out = []
    for args in zip(*(a.to_pylist() for a in arrays)):
        try:
            types = types_of(ctx, *args)
        except (WmlError, ValueError, KeyError, TypeError):
            types = {}
        out.append(typed_call_sql(udf, list(args), columns, types))
    return pa.array(out, pa.string())
