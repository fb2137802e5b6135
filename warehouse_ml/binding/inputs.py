"""Make every relation a user can name readable by the table functions (used by the front door).

A table function's UDF reads its input through a second cursor (a UDF must not query the connection running
it), and a second cursor does not see the calling connection's TEMP tables, the DataFrames and Arrow tables
registered on it, or the statement's CTEs. Before such a statement runs, the front door finds each relation
argument of a table macro (an argument its spec declares as read: ``relation``, ``orders``, ``on_hand``, ...) that the second cursor cannot read and
copies it into a table of ``wml_scratch``, an in-memory database attached to the instance (every cursor sees
it, even when the file is read-only), then passes that table's name instead. The copy is dropped when the
connection runs its next statement through the front door. A ``(FROM orders WHERE ...)`` subquery argument is
passed on as query text when the second cursor can read it, so it costs no copy.
"""
from __future__ import annotations

import uuid

import duckdb
import sqlglot
from sqlglot import exp

from .catalog import SCRATCH_DATABASE, looks_like_query, quote_ident, resolve, short_text, validate_query
from ..errors import WmlError
from .spec import relation_readers

_PENDING_DROPS: dict[int, list[str]] = {}  # connection id -> scratch copies of its last statement's inputs


def mentions_relation_macro(con: duckdb.DuckDBPyConnection, query: str) -> bool:
    """Cheap test before parsing: does the text call a table macro that takes a relation?"""
    lowered = query.lower()
    return any(f"{name}(" in lowered or f"{name} (" in lowered for name in relation_readers())


def drop_scratch_copies(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the copies made for the connection's previous statement (its result is gone once it runs another)."""
    names = _PENDING_DROPS.pop(id(con), [])
    if not names:
        return
    cur = con.cursor()
    try:
        for name in names:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        cur.close()


def make_inputs_readable(con: duckdb.DuckDBPyConnection, stmt: exp.Expression) -> bool:
    """Rewrite the relation arguments of table macros in ``stmt`` that a second cursor cannot read.
    Returns whether anything changed."""
    macros = relation_readers()
    changed = False
    for call in list(stmt.find_all(exp.Anonymous)):
        params, reads = macros.get((call.name or "").lower(), ([], frozenset()))
        if not reads or not isinstance(call.parent, exp.Table):
            continue
        for i, arg in enumerate(call.expressions):
            if isinstance(arg, (exp.PropertyEQ, exp.Kwarg)):
                name, value = arg.this.name.lower(), arg.expression
            else:
                name, value = (params[i] if i < len(params) else None), arg
            if name in reads:
                readable = _readable_argument(con, call, value)
                if readable is not None:
                    value.replace(readable)
                    changed = True
    return changed


def _readable_argument(con, call: exp.Anonymous, value: exp.Expression) -> exp.Expression | None:
    """A string literal the second cursor can read in place of ``value``, or None to leave it as it is."""
    if isinstance(value, exp.Subquery):
        text, parsed = value.this.sql(dialect="duckdb"), value.this.copy()
    elif isinstance(value, exp.Literal) and value.is_string:
        text, parsed = value.this, None
    elif isinstance(value, exp.Column) and not isinstance(value.this, exp.Star):  # train_churn(uf): a name, unquoted
        text = ".".join(part.sql(dialect="duckdb") for part in value.parts)
        return _readable_argument(con, call, exp.Literal.string(text)) or exp.Literal.string(text)
    else:
        return None
    ctes = _ctes_in_scope(call)
    if parsed is None and not looks_like_query(text):  # a name: a CTE, or a relation of the connection
        cte = next((c.alias for c in ctes if c.alias.lower() == text.lower()), None)
        if cte is None:
            return None if _cursor_reads(con, text) else _copy_connection_relation(con, text)
        parsed = exp.select("*").from_(exp.table_(cte, quoted=True))
    elif parsed is None:
        parsed = _parse_select(text)
        if parsed is None or (not _refers_to(parsed, ctes) and _cursor_reads(con, text)):
            return None  # readable as it is, or invalid (the UDF says what is wrong with it)
    query = _with_ctes(parsed, ctes)
    if _cursor_reads(con, query):
        return exp.Literal.string(query)
    return exp.Literal.string(_copy_to_scratch(con, query, short_text(text)))


def _parse_select(text: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(validate_query(text), read="duckdb")
    except (WmlError, sqlglot.errors.SqlglotError):
        return None


def _ctes_in_scope(node: exp.Expression) -> list[exp.CTE]:
    """CTEs visible where ``node`` is, outermost first: all of a WITH for its query body, and only the earlier
    ones (itself too when RECURSIVE) for a node inside one of its CTEs."""
    scopes = []
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            k = next(i for i, c in enumerate(ctes) if c is child)
            scopes.append(ctes[: k + 1] if parent.args.get("recursive") else ctes[:k])
        else:
            with_ = parent.args.get("with_") or parent.args.get("with")
            if isinstance(with_, exp.With) and child is not with_:
                scopes.append(list(with_.expressions))
        child, parent = parent, parent.parent
    return [cte for scope in reversed(scopes) for cte in scope]


def _refers_to(query: exp.Expression, ctes: list[exp.CTE]) -> bool:
    names = {c.alias.lower() for c in ctes}
    return any(t.name.lower() in names for t in query.find_all(exp.Table))


def _with_ctes(query: exp.Expression, ctes: list[exp.CTE]) -> str:
    """``query`` as SQL text, preceded by the surrounding CTEs when it refers to any of them."""
    if _refers_to(query, ctes):
        key = "with_" if "with_" in query.arg_types else "with"
        own = query.args.get(key)
        inner = list(own.expressions) if isinstance(own, exp.With) else []
        recursive = any(isinstance(w, exp.With) and w.args.get("recursive") for w in [own] + [c.parent for c in ctes])
        query.set(key, exp.With(expressions=[c.copy() for c in ctes] + inner, recursive=recursive or None))
    return query.sql(dialect="duckdb")


def _cursor_reads(con, text: str) -> bool:
    """Whether a fresh cursor (what a UDF reads through) can bind this name or query."""
    cur = con.cursor()
    try:
        resolve(cur, text)
        return True
    except (WmlError, duckdb.Error):
        return False
    finally:
        cur.close()


def _copy_connection_relation(con, name: str) -> exp.Expression | None:
    """A scratch copy of a relation only the calling connection sees (a TEMP table, a registered DataFrame or
    Arrow table), or None when it does not see one of that name either."""
    try:
        rel = resolve(con, name)
    except (WmlError, duckdb.Error):
        return None  # unknown everywhere: the UDF raises UnknownRelation with suggestions
    return exp.Literal.string(_copy_to_scratch(con, f"SELECT * FROM {rel.sql}", name))


def _copy_to_scratch(con, query: str, display: str) -> str:
    """Copy the result of ``query`` as the calling connection sees it into a new scratch table, committed by a
    cursor of its own (so it is visible even while ``con`` is inside a transaction); returns its quoted name."""
    source = con.sql(query)
    columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in zip(source.columns, source.types))
    name = f"{quote_ident(SCRATCH_DATABASE)}.main.{quote_ident('input_' + uuid.uuid4().hex[:12])}"
    cur = con.cursor()
    try:
        cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {quote_ident(SCRATCH_DATABASE)} (READ_WRITE)")
        cur.execute(f"CREATE TABLE {name} ({columns})")
        _PENDING_DROPS.setdefault(id(con), []).append(name)
        cur.register("__wml_input", source.to_arrow_reader(1_000_000))
        cur.execute(f"INSERT INTO {name} SELECT * FROM __wml_input")
        cur.unregister("__wml_input")
        cur.execute(f"COMMENT ON TABLE {name} IS $${display}$$")
    finally:
        cur.close()
    return name
