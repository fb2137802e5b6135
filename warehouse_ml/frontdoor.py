"""The front door: SQL as analysts write it, rewritten with sqlglot into what DuckDB runs.

DuckDB binds ``f(*)`` as ``f()``, so ``SELECT predict_churn(*) FROM users`` would lose the row. Here every
``predict_*(*)``, ``ml_predict(m, *)``, ``ml_predict_label(m, *)`` and ``ml_explain_row(m, *)`` is rewritten to
pass the row as a struct (``predict_churn(users)``), the native spelling.

When the active version of a model is linear, ``predict_m(t)`` / ``ml_predict('m', t)`` is also replaced by
the model's exact SQL expression, so DuckDB scores it in parallel without calling Python at all. Statements
that need neither run exactly as written.
"""
from __future__ import annotations

import re

import duckdb
import sqlglot
from sqlglot import exp

from .errors import InvalidArgument

ROW_FUNCTIONS = re.compile(r"^(predict_\w+|ml_predict|ml_predict_label|ml_explain_row)$", re.IGNORECASE)
_QUICK = re.compile(r"(predict_\w+|ml_predict\w*|ml_explain_row)\s*\([^()]*\*", re.IGNORECASE)
_PREDICT = re.compile(r"(predict_\w+|ml_predict)\s*\(", re.IGNORECASE)
_EXTENSIONS: list = []  # (matches(statement_text) -> bool, run(con, statement_text, params)) from integrations


def register_statement_handler(matches, run) -> None:
    """Let an integration (e.g. BigQuery ML statements) take statements the front door recognises."""
    _EXTENSIONS.append((matches, run))


def needs_rewrite(query: str, compile_models: bool = False) -> bool:
    return bool(_QUICK.search(query) or (compile_models and _PREDICT.search(query)))


def rewrite(query: str, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """Rewrite star arguments of row functions, and (given the connection) inline linear models as SQL.
    Returns the query unchanged when there is nothing to rewrite."""
    compiler = _linear_compiler(con)
    if not needs_rewrite(query, compiler is not None):
        return query
    try:
        statements = sqlglot.parse(query, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise InvalidArgument("query", f"could not parse the SQL to rewrite f(*): {str(e).splitlines()[0]}",
                              "Pass the row by naming the table or its alias instead: predict_churn(u) FROM users u") from None
    out = []
    for stmt in statements:
        if stmt is None:
            continue
        for call in list(stmt.find_all(exp.Anonymous)):
            name = call.name
            if not ROW_FUNCTIONS.match(name or ""):
                continue
            args = call.expressions
            stars = [i for i, a in enumerate(args) if isinstance(a, exp.Star)]
            if not stars:
                continue
            select = call.find_ancestor(exp.Select)
            row = _row_reference(select, name)
            for i in stars:
                args[i].replace(exp.column(row))
        if compiler is not None:
            for call in list(stmt.find_all(exp.Anonymous)):
                compiled = compiler(call)
                if compiled is not None:
                    call.replace(compiled)
        out.append(stmt.sql(dialect="duckdb"))
    return ";\n".join(out)


def _linear_compiler(con):
    """call -> SQL expression for predict calls on linear models, or None if that does not apply."""
    from .binding.registry import runtime_for
    from .errors import WmlError
    from .functions.supervised import linear_sql_for

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
        expr = linear_sql_for(sm, row.sql(dialect="duckdb"))
        return None if expr is None else sqlglot.parse_one(expr, read="duckdb")

    return compile_call


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
    from .integrations import bigquery_dp, bigquery_ml  # noqa: F401  (register their statement handlers once)

    for matches, handler in _EXTENSIONS:
        if matches(query):
            return handler(con, query, params)
    sql = rewrite(query, con)
    return con.execute(sql, params) if params is not None else con.execute(sql)
