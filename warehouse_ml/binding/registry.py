"""Registration of Arrow UDFs and SQL macros on a DuckDB connection.

DuckDB's Python UDFs are scalar only, so every SQL function here takes one of two shapes:

* ``scalar_udf``: a column-wise function over Arrow arrays (predict, explain_row, sample sizes). DuckDB hands
  it at most 2048 rows per call; it must work on whole columns, never per row.
* ``table_udf``: a function called with constant arguments (a relation name, options) that returns a whole
  result as ``LIST(STRUCT(...))``; a TEMP table macro in ``sql/`` unnests it into rows. It reads data through
  a second cursor (a UDF must not query the connection running it) and writes models the same way.

Task modules in ``warehouse_ml.functions`` declare their UDFs with the decorators below; ``install`` registers
them once per connection and (re)creates the TEMP macros from ``sql/*.sql``, so calling it twice is harmless.
"""
from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import ReadOnlyDatabase
from ..sqltext import split_statements
from .context import CallContext, Runtime
from .inputs import drop_scratch_copies

log = logging.getLogger("warehouse_ml")

JSON = "JSON"  # argument marker: passed as VARCHAR from SQL, handed to Python as a parsed object


@dataclass(frozen=True)
class UdfSpec:
    name: str
    func: Callable
    args: Sequence[str] | None  # SQL types; None registers varargs of ANY
    returns: str
    kind: str  # "table" or "scalar"
    side_effects: bool
    writes: bool = False  # changes the model store: refused before it starts on a read-only connection


_UDFS: dict[str, UdfSpec] = {}
_ARROW_TYPES: dict[str, pa.DataType] = {}
_TYPE_LOCK = threading.Lock()


def table_udf(name: str, args: Sequence[str], returns: str, writes: bool = False):
    """Declare a table function: ``func(ctx, *python_args) -> pa.Table | list[dict]``; ``returns`` is the row
    STRUCT type as SQL. The SQL macro calls ``unnest(name(...), recursive := true)``. ``writes=True`` marks a
    function that changes the model store (training, deploys): the one list read-only checks use."""

    def wrap(func):
        _UDFS[name] = UdfSpec(name, func, list(args), f"{returns}[]", "table", True, writes)
        return func

    return wrap


def scalar_udf(name: str, args: Sequence[str] | None, returns: str, side_effects: bool = False, writes: bool = False):
    """Declare a column-wise function: ``func(ctx, *pa.Array) -> pa.Array`` of the same length. ``writes=True``
    marks one whose result leads to a store write (the SQL text of a writing call that a macro runs)."""

    def wrap(func):
        _UDFS[name] = UdfSpec(name, func, None if args is None else list(args), returns, "scalar", side_effects, writes)
        return func

    return wrap


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type DuckDB uses for a SQL type, asked of DuckDB itself so the two always agree."""
    with _TYPE_LOCK:
        if sql_type not in _ARROW_TYPES:
            probe = duckdb.connect()
            try:
                _ARROW_TYPES[sql_type] = probe.sql(f"SELECT NULL::{sql_type} AS x").to_arrow_table().schema.field(0).type
            finally:
                probe.close()
        return _ARROW_TYPES[sql_type]


def writing_functions() -> frozenset[str]:
    """Names of the UDFs that change the model store (declared with ``writes=True``)."""
    _load_function_modules()
    return frozenset(spec.name for spec in _UDFS.values() if spec.writes)


def _refuse_if_read_only(spec: UdfSpec, runtime: Runtime) -> None:
    """A writing function on a read-only connection fails before any work (not after a whole training)."""
    if runtime.read_only:
        raise ReadOnlyDatabase(spec.name, "this session is read-only")
    probe = runtime.con.cursor()
    try:
        read_only = probe.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    finally:
        probe.close()
    if read_only and read_only[0]:
        raise ReadOnlyDatabase(spec.name, "the database is open read-only")


def rows_to_list_array(result: pa.Table | list[dict], element_sql: str) -> pa.Array:
    """One LIST(STRUCT) value holding a whole table result."""
    struct_type = arrow_type(element_sql)
    if isinstance(result, pa.Table):
        names = [f.name for f in struct_type]
        missing = [n for n in names if n not in result.column_names]
        if missing:
            raise RuntimeError(f"internal: result lacks columns {missing}")
        cols = [result.column(n).combine_chunks().cast(struct_type.field(n).type) for n in names]
        if result.num_rows:
            values = pa.StructArray.from_arrays(cols, fields=list(struct_type))
        else:
            values = pa.array([], type=struct_type)
    else:
        values = pa.array(result, type=struct_type)
    return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)


def _to_python(spec_type: str, value: pa.Scalar) -> Any:
    py = value.as_py()
    if spec_type == JSON and py is not None:
        return json.loads(py)
    return py


def _make_table_wrapper(spec: UdfSpec, runtime: Runtime):
    def call(*columns):
        if spec.writes:
            _refuse_if_read_only(spec, runtime)
        n = len(columns[0]) if columns else 1
        out, memo = [], {}
        for i in range(n):
            args = tuple(_to_python(t, c[i]) for t, c in zip(spec.args, columns))
            key = json.dumps(args, default=str, sort_keys=True)
            if key not in memo:
                ctx = CallContext(runtime, spec.name)
                memo[key] = rows_to_list_array(spec.func(ctx, *args), spec.returns[:-2])
            out.append(memo[key])
        return pa.concat_arrays(out) if len(out) != 1 else out[0]

    return call


def _make_scalar_wrapper(spec: UdfSpec, runtime: Runtime):
    def call(*columns):
        arrays = [(c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()) if isinstance(c, pa.ChunkedArray) else c
                  for c in columns]
        return spec.func(CallContext(runtime, spec.name), *arrays)

    return call


def _load_function_modules() -> None:
    from .. import functions  # noqa: F401  (importing registers every task's UDFs)


def sql_files() -> list[tuple[str, str]]:
    """(file name, text) of every macro file shipped in ``warehouse_ml.sql`` (the repository's ``sql/``)."""
    try:
        root = resources.files("warehouse_ml.sql")  # an installed wheel: pyproject maps sql/ to this package
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2] / "sql"  # a source checkout
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def install_macros(con) -> None:
    """(Re)create the TEMP macros on a connection or cursor; TEMP macros are per connection and per cursor."""
    for fname, text in sql_files():
        statements, rest = split_statements(text)
        for stmt in statements + ([rest] if rest else []):
            try:
                con.execute(stmt)
            except duckdb.Error as e:  # a broken macro file is a packaging bug: say which
                raise RuntimeError(f"warehouse-ml could not create a macro from sql/{fname}: {e}\n{stmt[:300]}") from e


_RUNTIMES: dict[int, Runtime] = {}


def runtime_for(con) -> Runtime | None:
    return _RUNTIMES.get(id(con))


def forget(con) -> None:
    """Drop the state install() keeps for a connection or cursor (its model cache, the scratch copies of its
    last statement's inputs), e.g. when a session ends."""
    _RUNTIMES.pop(id(con), None)
    drop_scratch_copies(con)


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Register every UDF on ``con`` (once) and create the TEMP macros (every call). Returns ``con``."""
    _load_function_modules()
    runtime = _RUNTIMES.get(id(con))
    if runtime is None or runtime.con is not con:
        runtime = Runtime(con)
        _RUNTIMES[id(con)] = runtime
        registered = {
            r[0] for r in con.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE 'wml_%' OR function_name LIKE 'ml_%'").fetchall()
        }
        for spec in _UDFS.values():
            if spec.name in registered:
                try:
                    con.remove_function(spec.name)
                except duckdb.Error:
                    continue  # a cursor sees the UDFs of the connection it came from: keep those
            wrapper = (_make_table_wrapper if spec.kind == "table" else _make_scalar_wrapper)(spec, runtime)
            if spec.args is not None:  # DuckDB checks the Python signature against the declared arity
                wrapper.__signature__ = inspect.Signature(
                    [inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(spec.args))])
            params = None if spec.args is None else [duckdb.sqltype("VARCHAR" if t == JSON else t) for t in spec.args]
            con.create_function(
                spec.name,
                wrapper,
                params,
                duckdb.sqltype(spec.returns),
                type="arrow",
                null_handling="special",
                side_effects=spec.side_effects,
            )
    runtime.store.ensure_schema()
    install_macros(con)
    return con
