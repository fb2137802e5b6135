"""The front door: SQL as analysts write it, rewritten with sqlglot into what DuckDB runs.

DuckDB binds ``f(*)`` as ``f()``, so ``SELECT predict_churn(*) FROM users`` would lose the row. Here every
``predict_*(*)``, ``ml_predict(m, *)``, ``ml_predict_label(m, *)`` and ``ml_explain_row(m, *)`` is rewritten to
pass the row as a struct (``predict_churn(users)``), the native spelling.

When the active version of a model is linear or a small decision tree, ``predict_m(t)`` / ``ml_predict('m', t)``
is also replaced by the model's exact SQL expression, so DuckDB scores it in parallel without calling Python,
when the query reads enough rows to win back the time DuckDB takes to bind it (``SQL_MIN_ROWS``, ``_table_rows``). Statements
that need neither run exactly as written.
"""
from __future__ import annotations

import functools
import re
import time
import uuid
import warnings

import duckdb
import sqlglot
from sqlglot import exp

from .binding import registry
from .binding.inputs import drop_scratch_copies, make_inputs_readable, mentions_relation_macro
from .errors import InvalidArgument

#: the fewest rows a table must hold for the front door to write a model as SQL (``_table_rows``): DuckDB takes
#: about 3.5 ms to bind a 10-feature linear model's expression and 20 ms a 511-node tree's, which the SQL wins back
#: from about 20,000 rows (linear: 4.8 ms against the UDF's 4.4 ms; at 1,000 rows 4.0 against 1.4) and 100,000
#: rows (a tree: 2M rows in 0.25 s against 0.6 s; 10 rows in 20 ms against 1 ms)
SQL_MIN_ROWS = {"linear": 20_000, "tree": 100_000}
#: a table's estimated size is asked again after this many seconds (asking costs about 1 ms, a twentieth of scoring
#: 1M rows; a stale answer only picks the slower of two paths to the same scores)
SIZE_TTL_S = 10.0
_SIZES: dict[tuple, tuple[float, int | None]] = {}  # (database key, catalog, schema, table) -> (asked at, rows)
_PREDICT = re.compile(r"(predict_\w+|ml_predict)\s*\(", re.IGNORECASE)
_EXTENSIONS: list = []  # (matches(statement_text) -> bool, run(con, statement_text, params)) from integrations


def register_statement_handler(matches, run) -> None:
    """Let an integration (e.g. BigQuery ML statements) take statements the front door recognises; it registers
    when ``warehouse_ml.wiring`` imports it."""
    _EXTENSIONS.append((matches, run))


def is_row_function(name: str | None) -> bool:
    """Takes a whole row: a function declared with ``row_input=True`` (ml_predict, ml_predict_label,
    ml_explain_row, predict_churn, ...), or any ``predict_<model>`` macro (deploys create them)."""
    name = (name or "").lower()
    return name.startswith("predict_") or name in registry.row_functions()


@functools.cache
def _star_call() -> re.Pattern:
    """A row function called with a star argument somewhere in the text: the quick test before parsing."""
    names = "|".join(sorted(map(re.escape, registry.row_functions())))
    return re.compile(rf"\b(predict_\w+|{names})\s*\([^()]*\*", re.IGNORECASE)


def needs_rewrite(query: str, compile_models: bool = False) -> bool:
    return bool(_star_call().search(query) or (compile_models and _PREDICT.search(query)))


def rewrite(query: str, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """Rewrite star arguments of row functions, and (given the connection) inline models as SQL and make
    TEMP tables, CTEs and registered DataFrames readable as inputs. Returns the query unchanged when there is
    nothing to rewrite."""
    compiler = _model_compiler(con)
    inputs = con is not None and mentions_relation_macro(con, query)
    if not needs_rewrite(query, compiler is not None) and not inputs:
        return query
    try:
        statements = sqlglot.parse(query, read="duckdb")
    except sqlglot.errors.ParseError as e:
        if not needs_rewrite(query, False):
            return query  # only inputs to check, and DuckDB parses what sqlglot cannot: run it as written
        raise InvalidArgument("query", f"could not parse the SQL to rewrite f(*): {str(e).splitlines()[0]}",
                              "Pass the row by naming the table or its alias instead: predict_churn(u) FROM users u") from None
    out, changed = [], False
    for stmt in statements:
        if stmt is None:
            continue
        if inputs:
            changed |= make_inputs_readable(con, stmt)
        named = _name_prediction_columns(stmt)
        for call in list(stmt.find_all(exp.Anonymous)):
            name = call.name
            if not is_row_function(name):
                continue
            args = call.expressions
            stars = [i for i, a in enumerate(args) if isinstance(a, exp.Star)]
            if not stars:
                continue
            select = call.find_ancestor(exp.Select)
            row = _row_reference(select, name)
            for i in stars:
                args[i].replace(exp.column(row))
            changed = True
        inlined = _inline(stmt, compiler) if compiler is not None else {}
        changed |= named or bool(inlined)
        text = stmt.sql(dialect="duckdb", normalize_functions=False)
        for token, expr in inlined.items():
            text = text.replace(f"{token}()", expr)
        out.append(text)
    return ";\n".join(out) if changed else query


def _name_prediction_columns(stmt: exp.Expression) -> bool:
    """Alias unaliased select items that call a row function, so a column's name never depends on the model
    behind it (an inlined linear model would otherwise name it by its whole SQL expression): a bare call is
    named after the function (``predict_churn``), any other expression after its text as written."""
    changed = False
    for select in stmt.find_all(exp.Select):
        for item in list(select.expressions):
            if isinstance(item, exp.Alias) or not any(is_row_function(c.name) for c in item.find_all(exp.Anonymous)):
                continue
            label = item.name if isinstance(item, exp.Anonymous) else item.sql(dialect="duckdb", normalize_functions=False)
            item.replace(exp.alias_(item.copy(), exp.to_identifier(label, quoted=True)))
            changed = True
    return changed


def _model_compiler(con):
    """call -> SQL expression for predict calls on linear models and small decision trees, or None if that does not
    apply."""
    from .binding.registry import runtime_for
    from .errors import WmlError
    from .functions.supervised import model_sql_for, model_sql_kind

    runtime = runtime_for(con) if con is not None else None
    if runtime is None:
        return None

    def compile_call(call: exp.Anonymous):
        name, args = (call.name or "").lower(), call.expressions
        if name == "ml_predict" and len(args) == 2 and isinstance(args[0], exp.Literal) and args[0].is_string:
            model, row = args[0].this, args[1]
        elif name.startswith("predict_") and len(args) == 1:
            model, row = name[len("predict_"):], args[0]
        else:
            return None
        if not isinstance(row, exp.Column) or row.table:
            return None
        try:
            sm = runtime.store.load(model)
        except WmlError:
            return None  # unknown model: leave the call, whose UDF raises the usual clear error
        kind = model_sql_kind(sm)
        if kind is None:
            return None
        rows = _table_rows(con, runtime.store.db_key, call)
        if (kind == "tree" and rows is None) or (rows is not None and rows < SQL_MIN_ROWS[kind]):
            return None  # too few rows to win back the bind; a tree (20 ms to bind) needs its size known
        row_sql = row.sql(dialect="duckdb")
        key = ("model_sql", row_sql)
        if key not in sm.derived:
            sm.derived[key] = model_sql_for(sm, row_sql)
        return sm.derived[key]

    return compile_call


def _table_rows(con, db_key: str, call: exp.Anonymous) -> int | None:
    """DuckDB's estimate of the rows in the one table of the catalog the call's SELECT reads, or None when that is
    not known so: a join, a subquery, a CTE, a view, a TEMP table (which the second cursor asked does not see).
    The front door writes a linear model as SQL unless the table is known to be small (on a few rows the SQL costs
    a few milliseconds more, on millions it is several times faster), and a decision tree only when the table is
    known to be big (its SQL takes 20 ms to bind)."""
    select = call.find_ancestor(exp.Select)
    src = select and (select.args.get("from_") or select.args.get("from"))
    table = src and src.this
    if not isinstance(table, exp.Table) or select.args.get("joins") or not table.name:
        return None
    if any(cte.alias.lower() == table.name.lower() for cte in call.root().find_all(exp.CTE)):
        return None
    key = (db_key, (table.catalog or "").lower(), (table.db or "").lower(), table.name.lower())
    asked, rows = _SIZES.get(key, (-SIZE_TTL_S, None))
    if time.monotonic() - asked >= SIZE_TTL_S:
        cur = con.cursor()  # the caller's connection may hold a result still being read (the shell's last statement)
        try:
            rows = cur.execute("SELECT max(estimated_size) FROM duckdb_tables() WHERE lower(table_name) = $1 AND "
                               "($2 = '' OR lower(schema_name) = $2) AND ($3 = '' OR lower(database_name) = $3)",
                               [key[3], key[2], key[1]]).fetchone()[0]
        finally:
            cur.close()
        _SIZES[key] = (time.monotonic(), rows)
    return rows


def _inline(stmt: exp.Expression, compiler) -> dict[str, str]:
    """Replace each predict call ``compiler`` compiles by a placeholder call, returning placeholder -> SQL text:
    the text goes in after the statement is generated, so the long expression is neither copied nor generated
    by sqlglot (that cost more than DuckDB scoring a million rows with it)."""
    texts: dict[str, str] = {}
    for call in list(stmt.find_all(exp.Anonymous)):
        text = compiler(call)
        if text is not None:
            token = f"wml_inlined_{uuid.uuid4().hex}_{len(texts)}"
            texts[token] = text
            call.replace(exp.Anonymous(this=token, expressions=[]))
    return texts


def _row_reference(select: exp.Select | None, fname: str) -> exp.Identifier:
    """The alias (or name) of the one table in the SELECT's FROM clause, quoted for DuckDB."""
    hint = f"Name the table or its alias instead of *: {fname}(t) ... FROM my_table t"
    if select is None or not select.args.get("from_") and not select.args.get("from"):
        raise InvalidArgument("*", f"{fname}(*) needs a FROM clause to take the row from", hint)
    src = select.args.get("from_") or select.args.get("from")
    if select.args.get("joins"):
        raise InvalidArgument("*", f"{fname}(*) is ambiguous in a query that joins several tables", hint)
    source = src.this
    alias = source.alias
    if alias:
        return exp.to_identifier(alias, quoted=True)
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        return exp.to_identifier(source.name, quoted=True)
    raise InvalidArgument("*", f"{fname}(*) over a subquery or function needs an alias", hint)


def run(con: duckdb.DuckDBPyConnection, query: str, params=None):
    """Run a query through the front door; returns the connection holding the result (fetchall(), df(), ...)."""
    handled = _run_statement_handler(con, query, params)
    if handled is not None:
        return handled
    drop_scratch_copies(con)
    sql = rewrite(query, con)
    return con.execute(sql, params) if params is not None else con.execute(sql)


def relation(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyRelation | None:
    """A statement through the front door as a DuckDB relation, for DuckDB's own rendering (the shell, the
    demo); None for statements that return no rows. Call ``materialize()`` on it to run it exactly once."""
    handled = _run_statement_handler(con, query, None)
    if handled is not None:
        if handled.description is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Arrow output on a DB-API result makes an extra copy": small results
            return con.from_arrow(handled.to_arrow_table())
    drop_scratch_copies(con)
    return con.sql(rewrite(query, con))


def _run_statement_handler(con, query: str, params):
    """The result of an integration's handler (e.g. BigQuery ML statements) if one takes the query, else None.
    The handlers register themselves when ``warehouse_ml.wiring`` imports them (as installing does)."""
    for matches, handler in _EXTENSIONS:
        if matches(query):
            return handler(con, query, params)
    return None
