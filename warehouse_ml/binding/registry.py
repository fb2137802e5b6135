"""Registration of a connection's UDFs and TEMP macros, from the function specs (``binding.spec``).

DuckDB's Python UDFs are scalar only, so every SQL function takes one of two shapes:

* scalar: a column-wise function over Arrow arrays (predict, explain_row, sample sizes). DuckDB hands it at most
  2048 rows per call; it must work on whole columns, never per row.
* table: a function called with constant arguments (a relation name, options) that returns a whole result as
  ``LIST(STRUCT(...))``; its generated TEMP table macro unnests it into rows. It reads data through a second
  cursor (a UDF must not query the connection running it) and writes models the same way.

Modules in ``warehouse_ml.functions`` declare their functions with ``spec.sql_function`` (internal helpers with
``table_udf``/``scalar_udf``, specs without options); ``install`` registers them once per connection and
(re)creates the TEMP macros, so calling it twice is harmless. This layer never imports those modules (they import
it): ``warehouse_ml.wiring`` does, and its ``install`` is the one callers use.
"""
from __future__ import annotations

import inspect
import json
import logging
import re
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import ReadOnlyDatabase
from ..sqltext import split_statements
from .context import CallContext, Runtime
from .inputs import drop_scratch_copies
from .keys import typed_calls
from .spec import Arg, FunctionSpec, declare, macro_sql, specs, writing_names
from .spec import row_functions as spec_row_functions

log = logging.getLogger("warehouse_ml")

JSON = "JSON"  # argument marker of a legacy declaration: VARCHAR in SQL, a parsed object in Python


def table_udf(name: str, args: Sequence[str], returns: str, writes: bool = False):
    """Declare an internal table UDF without a spec of options: ``func(ctx, *python_args)``; ``returns`` is the
    row STRUCT type. A ``JSON`` argument arrives parsed."""

    def wrap(func):
        declare(FunctionSpec(name=name, doc=func.__doc__ or "", kind="table", returns=returns,
                             args=tuple(Arg(f"a{i}", t) for i, t in enumerate(args)), kernel=func, writes=writes,
                             udf=name, public=False, module=func.__module__.rsplit(".", 1)[-1]))
        return func

    return wrap


def scalar_udf(name: str, args: Sequence[str] | None, returns: str, side_effects: bool = False, writes: bool = False):
    """Declare an internal column-wise UDF: ``func(ctx, *pa.Array) -> pa.Array`` of the same length; ``args``
    None takes a row of any shape."""

    def wrap(func):
        declare(FunctionSpec(name=name, doc=func.__doc__ or "", kind="scalar", returns=returns,
                             args=tuple(Arg(f"a{i}", t) for i, t in enumerate(["ANY"] if args is None else args)),
                             kernel=func, writes=writes, udf=name, side_effects=side_effects, public=False,
                             module=func.__module__.rsplit(".", 1)[-1]))
        return func

    return wrap


_ARROW_TYPES: dict[str, pa.DataType] = {}
_TYPE_LOCK = threading.Lock()


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
    """Names of the functions that change the model store (declared with ``writes=True``): macros and UDFs."""
    _require_declarations()
    return writing_names()


def row_functions() -> frozenset[str]:
    """Names of the functions that take a whole row (declared with ``row_input=True``)."""
    _require_declarations()
    return spec_row_functions()


def _refuse_if_read_only(spec: FunctionSpec, runtime: Runtime) -> None:
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


def _table_call(spec: FunctionSpec, ctx: CallContext, raw: tuple):
    """One call of a table kernel: positional arguments, then the options parsed and checked by the spec."""
    n = len(spec.args)
    args = [json.loads(v) if a.sql_type == JSON and v is not None else v for a, v in zip(spec.args, raw[:n])]
    if not spec.options:
        return spec.kernel(ctx, *args)
    return spec.kernel(ctx, *args, **spec.parse_options(json.loads(raw[n]) if raw[n] else {}))


def _make_table_wrapper(spec: FunctionSpec, runtime: Runtime):
    def call(*columns):
        if spec.writes:
            _refuse_if_read_only(spec, runtime)
        n = len(columns[0]) if columns else 1
        out, memo = [], {}
        for i in range(n):  # one call per distinct row of constant arguments, not per data row
            raw = tuple(c[i].as_py() for c in columns)
            key = json.dumps(raw, default=str, sort_keys=True)
            if key not in memo:
                memo[key] = rows_to_list_array(_table_call(spec, CallContext(runtime, spec.udf), raw), spec.returns)
            out.append(memo[key])
        return pa.concat_arrays(out) if len(out) != 1 else out[0]

    return call


def _make_scalar_wrapper(spec: FunctionSpec, runtime: Runtime):
    def call(*columns):
        arrays = [(c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()) if isinstance(c, pa.ChunkedArray) else c
                  for c in columns]
        return spec.kernel(CallContext(runtime, spec.udf), *arrays)

    return call


def _make_sql_writer(spec: FunctionSpec, runtime: Runtime):
    """The bind-time ``<udf>_sql`` of a function whose keys come back typed: per row of constant arguments, the
    SQL text of the table UDF's call with each key cast to the type ``spec.key_types`` finds (binding/keys.py)."""
    columns = [f.name for f in arrow_type(spec.returns)]

    def types_of(ctx, *raw):
        n = len(spec.args)
        opts = spec.parse_options(json.loads(raw[n]) if raw[n] else {}) if spec.options else {}
        return spec.key_types(ctx, *raw[:n], **opts)

    def call(*columns_in):
        arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns_in]
        return typed_calls(CallContext(runtime, spec.udf + "_sql"), spec.udf, arrays, columns, types_of)

    return call


def _registrations(spec: FunctionSpec, runtime: Runtime):
    """(UDF name, Python callable, SQL parameter types or None, SQL return type, side effects) of one spec."""
    if spec.kind == "table":
        yield spec.udf, _make_table_wrapper(spec, runtime), spec.udf_params(), f"{spec.returns}[]", True
        if spec.key_types:
            yield spec.udf + "_sql", _make_sql_writer(spec, runtime), spec.udf_params(), "VARCHAR", False
    elif spec.kind == "scalar":
        yield spec.udf, _make_scalar_wrapper(spec, runtime), spec.udf_params(), spec.returns, spec.side_effects


def _require_declarations() -> None:
    """The lists below are read from the declared specs: refuse to answer before the modules declared them."""
    if not specs():
        raise RuntimeError("internal: no SQL function is declared yet; go through warehouse_ml.install "
                           "(warehouse_ml.wiring), which imports the function modules")


def sql_body(function: str) -> str:
    """The hand-written body of a function's macro, ``sql/<function>.sql`` (pure SQL too long for a spec)."""
    return dict(sql_files())[f"{function}.sql"]


def sql_files() -> list[tuple[str, str]]:
    """(file name, text) of every macro file shipped in ``warehouse_ml.sql`` (the repository's ``sql/``)."""
    try:
        root = resources.files("warehouse_ml.sql")  # an installed wheel: pyproject maps sql/ to this package
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2] / "sql"  # a source checkout
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def macro_statements() -> list[str]:
    """The CREATE TEMP MACRO statement of every public function, generated from its spec: first those over a UDF,
    then the pure-SQL ones in declaration order (DuckDB binds a table macro's body when it is created, so the
    functions it calls must exist)."""
    _require_declarations()
    ordered = sorted(specs(), key=lambda s: s.kind == "macro")
    return [m for m in map(macro_sql, ordered) if m]


def install_macros(con) -> None:
    """(Re)create the TEMP macros on a connection or cursor; TEMP macros are per connection and per cursor."""
    bodies = {s.name for s in specs()}
    for fname, text in sql_files():
        if fname.removesuffix(".sql") in bodies:
            continue  # the body of a spec's macro, read by its module
        statements, rest = split_statements(text)
        for stmt in statements + ([rest] if rest else []):
            try:
                con.execute(stmt)
            except duckdb.Error as e:  # a broken macro file is a packaging bug: say which
                raise RuntimeError(f"warehouse-ml could not create a macro from sql/{fname}: {e}\n{stmt[:300]}") from e
    for stmt in macro_statements():
        try:
            con.execute(stmt)
        except duckdb.Error as e:  # a spec whose macro DuckDB refuses is a packaging bug: say which
            raise RuntimeError(f"warehouse-ml could not create a macro: {e}\n{stmt[:300]}") from e


# ml_predict and predict_<model> call this UDF; routed, they call the store's macro wml.predict_inline, which
# inlines the active linear models as SQL and calls the same UDF for every other model (a shortcut for one of the
# store's DEDICATED_MODELS calls that model's own macro, wml.predict_inline_<model>).
PREDICT_CALL = "wml_predict("
_SHORTCUT_CALL = re.compile(r"""wml_predict\('(\w+)', "row"\)""")


def route_scoring_through_store(con) -> None:
    """Re-create the TEMP macros that call ``wml_predict`` to call the store's scoring macros instead (the same
    answers; for a linear model, no Python at all)."""
    from ..store import DEDICATED_MODELS, INLINE_MACRO

    def own_macro(call: re.Match) -> str:
        return f'wml.{INLINE_MACRO}_{call[1]}("row")' if call[1] in DEDICATED_MODELS else call[0]

    for stmt in macro_statements():
        if PREDICT_CALL in stmt:
            con.execute(_SHORTCUT_CALL.sub(own_macro, stmt).replace(PREDICT_CALL, f"wml.{INLINE_MACRO}("))


_RUNTIMES: dict[int, Runtime] = {}


def runtime_for(con) -> Runtime | None:
    return _RUNTIMES.get(id(con))


def forget(con) -> None:
    """Drop the state install() keeps for a connection or cursor (its model cache, the scratch copies of its
    last statement's inputs), e.g. when a session ends."""
    _RUNTIMES.pop(id(con), None)
    drop_scratch_copies(con)


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Register every declared UDF on ``con`` (once) and create the TEMP macros (every call). Returns ``con``.
    Call ``warehouse_ml.install``, which imports the function modules first (the macros call their UDFs)."""
    _require_declarations()
    runtime = _RUNTIMES.get(id(con))
    if runtime is None or runtime.con is not con:
        runtime = Runtime(con)
        _RUNTIMES[id(con)] = runtime
        registered = {
            r[0] for r in con.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE 'wml_%' OR function_name LIKE 'ml_%'").fetchall()
        }
        for spec in specs():
            for name, func, params, returns, side_effects in _registrations(spec, runtime):
                if name in registered:
                    try:
                        con.remove_function(name)
                    except duckdb.Error:
                        continue  # a cursor sees the UDFs of the connection it came from: keep those
                if params is not None:  # DuckDB checks the Python signature against the declared arity
                    func.__signature__ = inspect.Signature(
                        [inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(params))])
                con.create_function(name, func, None if params is None else [duckdb.sqltype("VARCHAR" if t == JSON else t) for t in params],
                                    duckdb.sqltype(returns), type="arrow", null_handling="special",
                                    side_effects=side_effects)
    runtime.store.ensure_schema()
    install_macros(con)
    if runtime.store.prepare_inline_scoring():
        route_scoring_through_store(con)
    return con

