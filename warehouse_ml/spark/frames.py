"""Spark DataFrames as the DuckDB functions see relations, and DuckDB's row types in Spark's DDL.

The DuckDB functions check column names and infer roles against a catalog entry (``binding.catalog.Relation``:
names and DuckDB type names); ``relation_of`` builds one from an Arrow schema, so the Spark functions run the
same checks with the same errors. ``map_partitions`` runs an Arrow function over hash partitions of rows.
"""
from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation

_SQL_TYPES = ((pa.types.is_date, "DATE"), (pa.types.is_timestamp, "TIMESTAMP"), (pa.types.is_integer, "BIGINT"),
              (pa.types.is_floating, "DOUBLE"), (pa.types.is_decimal, "DECIMAL(38,10)"),
              (pa.types.is_boolean, "BOOLEAN"))


def _sql_type(t: pa.DataType) -> str:
    """The DuckDB type name of an Arrow column, for the role rules shared with ``functions.forecast``."""
    return next((name for test, name in _SQL_TYPES if test(t)), "VARCHAR")


# A DuckDB row type's fields in Spark's DDL and in Arrow: Spark returns the names and types DuckDB returns.
_FIELD_TYPES = {"VARCHAR": ("string", pa.string()), "DOUBLE": ("double", pa.float64()), "DATE": ("date", pa.date32()),
                "BIGINT": ("bigint", pa.int64()), "INTEGER": ("int", pa.int32()), "BOOLEAN": ("boolean", pa.bool_()),
                "MAP(VARCHAR, DOUBLE)": ("map<string, double>", pa.map_(pa.string(), pa.float64()))}


def _fields(row: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a ``STRUCT(name TYPE, ...)`` whose types are those of ``_FIELD_TYPES``."""
    fields, depth, start, body = [], 0, 0, row.strip()[len("STRUCT("):-1]
    for i, ch in enumerate(body + ","):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:  # a field ends here, not at the comma inside MAP(VARCHAR, DOUBLE)
            name, sql_type = body[start:i].strip().split(" ", 1)
            fields.append((name.strip('"'), sql_type))  # DuckDB quotes names like "user"
            start = i + 1
    return fields


def spark_ddl(row: str) -> str:
    return ", ".join(f"`{name}` {_FIELD_TYPES[t][0]}" for name, t in _fields(row))


def arrow_schema(row: str) -> pa.Schema:
    return pa.schema([(name, _FIELD_TYPES[t][1]) for name, t in _fields(row)])


def relation_of(schema: pa.Schema, name: str) -> Relation:
    """A Spark relation's columns as the catalog entry DuckDB's functions check names and roles against."""
    return Relation(name, "", "", name, {f.name: _sql_type(f.type) for f in schema})


def frame_relation(df, name: str = "DataFrame") -> Relation:
    """``relation_of`` a Spark DataFrame (its timestamps read as zone-aware only to name their type)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return relation_of(to_arrow_schema(df.schema, timezone="UTC"), name)


def restore_key(out: pa.Table, column: str, source: pa.ChunkedArray | pa.Array) -> pa.Table:
    """``out`` with its text ``column`` back in the type of ``source``, the key column it was cast from with
    ``pc.cast(..., pa.string())``: each text is looked up among the source's distinct values' texts (exact for
    any type, NULL staying NULL)."""
    originals = pc.unique(source)
    typed = pc.take(originals, pc.index_in(out.column(column), value_set=pc.cast(originals, pa.string())))
    return out.set_column(out.schema.get_field_index(column), column, typed)


def map_partitions(rows, key: str | None, ddl: str, run: Callable[[pa.Table], pa.Table], per_key: bool = False,
                   typed_keys: dict[str, str] | None = None):
    """``run`` over the rows of ``rows`` hash-partitioned by ``key`` (all in one task without a key), one call
    per partition, or with ``per_key`` one call per key value, its result led by the key in its own type.
    ``typed_keys`` ({output column: input column}): text key columns of ``run``'s result given back the input
    column's type (``ddl`` names them as text)."""
    from pyspark.sql import functions as SF
    from pyspark.sql.types import StructField, StructType

    if per_key and key is not None:
        ddl = f"`{key}` {rows.schema[key].dataType.simpleString()}, {ddl}"
    schema = StructType.fromDDL(ddl)
    typed_keys = {out: source for out, source in (typed_keys or {}).items() if source is not None}
    schema = StructType([StructField(f.name, rows.schema[typed_keys[f.name]].dataType, True)
                         if f.name in typed_keys else f for f in schema.fields])
    rows = rows.repartition(SF.col(key)) if key is not None else rows.coalesce(1)

    def typed(table: pa.Table, out: pa.Table) -> pa.Table:
        for column, source in typed_keys.items():
            out = restore_key(out, column, table.column(source))
        return out

    def per_partition(batches):
        batches = list(batches)
        if not batches or not sum(b.num_rows for b in batches):
            return
        table = pa.Table.from_batches(batches)
        if not (per_key and key is not None):
            yield from typed(table, run(table)).to_batches()
            return
        keys = table.column(key)
        for value in pc.unique(keys):
            part = table.filter(pc.equal(keys, value) if value.is_valid else pc.is_null(keys))
            out = typed(part, run(part))
            yield from out.add_column(0, key, pa.repeat(value, out.num_rows)).to_batches()

    return rows.mapInArrow(per_partition, schema)


def partition_udtf(name: str, ddl: str, params: tuple[str, ...], arguments: Callable[[dict], tuple],
                   run: Callable[[pa.Table, tuple], pa.Table]):
    """A PyArrow SQL table function ``name(TABLE(t) ..., arg, ...)`` that collects the rows Spark hands one call
    (one partition: ``PARTITION BY`` key or ``WITH SINGLE PARTITION``) and, when Spark ends it, returns
    ``run(rows, arguments({param: value}))``; ``params`` names the constant arguments after the table, in order."""
    from pyspark.sql.functions import arrow_udtf

    from ..errors import InvalidArgument

    @arrow_udtf(returnType=ddl)
    class PartitionTableFunction:
        def __init__(self):
            self.batches, self.args = [], None

        def eval(self, rows: pa.RecordBatch, *args: pa.Array):
            if self.args is None:
                if len(args) > len(params):
                    raise InvalidArgument(name, f"takes at most {len(params)} arguments after the table, got "
                                          f"{len(args)}", f"Pass ({', '.join(params)}) in order")
                self.args = arguments({p: _first(a) for p, a in zip(params, args)})
            self.batches.append(rows)
            return iter(())

        def terminate(self):
            if self.batches:
                yield run(pa.Table.from_batches(self.batches), self.args)

    PartitionTableFunction.__name__ = PartitionTableFunction.__qualname__ = "".join(w.title() for w in name.split("_"))
    return PartitionTableFunction


def _first(values: pa.Array):
    """A constant argument of a UDTF (Spark passes it as a column; a literal like 0.8 is a DECIMAL in Spark
    SQL, a DOUBLE in DuckDB)."""
    if pa.types.is_decimal(values.type):
        values = values.cast(pa.float64())
    return values[0].as_py() if len(values) else None
