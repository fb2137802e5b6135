"""Resolve relation and column names passed as strings against DuckDB's catalog.

Names are never pasted into SQL: a string is parsed as a (possibly quoted, dotted) identifier, looked up in
``duckdb_tables()`` / ``duckdb_views()`` with bound parameters, and only the catalog's own spelling is quoted
back into SQL. Anything else (``'users; DROP TABLE users'``) is an UnknownRelation.

A string that starts like a query (``'SELECT ...'``, ``'FROM orders WHERE ...'``, ``'WITH ...'``) is read as
one: DuckDB's own parser must find exactly one read-only SELECT in it, and it is then used as a subquery.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from ..errors import InvalidArgument, UnknownColumn, UnknownRelation

_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$"
)
_TEMPORAL = re.compile(r"^(DATE|TIMESTAMP.*|TIME.*)$")
_IDENT_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')
# query text, or any other statement (which validate_query then refuses by name)
_QUERY_START = re.compile(
    r"^[\s(]*(select|from|with|values|table|summarize|describe|show|pivot|unpivot|insert|update|delete|drop|"
    r"create|alter|copy|attach|detach|pragma|set|call|export|import|install|load|truncate|merge|vacuum|"
    r"checkpoint|begin|commit|rollback|use|prepare|execute)\s", re.IGNORECASE)

#: an in-memory database attached to every instance that the front door uses to make TEMP tables, CTEs and
#: registered DataFrames of a connection readable by the UDFs' second cursor (see ``binding/inputs.py``)
SCRATCH_DATABASE = "wml_scratch"
#: how to pass what plain DuckDB cannot hand to a UDF, for error messages
INPUT_SPELLINGS = ("TEMP tables, CTEs and DataFrames registered on your connection are readable when the statement "
                   "runs through the front door (wml.sql(con, ...), `warehouse-ml sql`, `warehouse-ml serve`); "
                   "in plain DuckDB pass a table, a view or the query text, e.g. 'SELECT * FROM orders WHERE ...'")


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def split_name(name: str) -> list[str]:
    """Split 'db.schema.table' with optional double quotes (as dbt renders a ref) into its parts."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument("relation", f"expected the name of a table or view, got {name!r}",
                              "Pass it as a string, e.g. 'orders'")
    parts, pos, text = [], 0, name.strip()
    while pos < len(text):
        m = _IDENT_PART.match(text, pos)
        if not m:
            raise UnknownRelation(name)
        parts.append(m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2).strip())
        pos = m.end()
        if pos < len(text):
            if text[pos] != ".":
                raise UnknownRelation(name)
            pos += 1
    if not 1 <= len(parts) <= 3 or any(p == "" for p in parts):
        raise UnknownRelation(name)
    return parts


def is_numeric_type(sql_type: str) -> bool:
    return bool(_NUMERIC.match(sql_type.upper()))


def is_temporal_type(sql_type: str) -> bool:
    return bool(_TEMPORAL.match(sql_type.upper()))


def looks_like_query(text: str) -> bool:
    """Whether a relation argument is query text rather than a name."""
    return isinstance(text, str) and bool(_QUERY_START.match(text))


def validate_query(text: str, argument: str = "relation") -> str:
    """The text of the one read-only SELECT in ``text`` (trailing semicolon dropped), or InvalidArgument."""
    fix = ("Pass one query that only reads, e.g. 'SELECT * FROM orders WHERE amount > 0' or 'FROM orders', "
           "or the name of a table or view")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as e:
        raise InvalidArgument(argument, f"could not parse the query {short_text(text)!r}: {str(e).splitlines()[0]}",
                              fix) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(str(s.type).rsplit(".", 1)[-1] for s in statements) or "nothing"
        raise InvalidArgument(argument, f"expected exactly one read-only query (SELECT, FROM or WITH), got {kinds} "
                              f"in {short_text(text)!r}", fix)
    return statements[0].query.strip().rstrip(";").strip()


def short_text(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters, for naming a query in a message."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


@dataclass(frozen=True)
class Relation:
    """A table, view or query that exists, with its columns in order and a safely quoted SQL name."""

    name: str  # what the user passed, for messages
    database: str
    schema: str
    table: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> DuckDB type, in order
    query: str | None = None  # the validated SELECT when the relation was passed as query text

    @property
    def sql(self) -> str:
        """What goes after FROM: the quoted catalog name, or the query as a subquery."""
        if self.query is not None:
            return f"(\n{self.query}\n)"
        return ".".join(quote_ident(p) for p in (self.database, self.schema, self.table))

    def column(self, name: str, argument: str | None = None) -> str:
        """The catalog's spelling of a column (case-insensitive match), or UnknownColumn with a suggestion."""
        if not isinstance(name, str) or not name:
            raise InvalidArgument(argument or "column", f"expected a column name, got {name!r}",
                                  f"Pass one of the columns of '{self.name}' as a string")
        if name in self.columns:
            return name
        lower = {c.lower(): c for c in self.columns}
        if name.lower() in lower:
            return lower[name.lower()]
        raise UnknownColumn(self.name, name, self.columns, argument)

    def q(self, column: str) -> str:
        """Quoted identifier of a column already resolved by column()."""
        return quote_ident(column)


def resolve(con: duckdb.DuckDBPyConnection, name: str, argument: str = "relation") -> Relation:
    """Look a relation name up in the catalog (tables and views, temporary ones included), or bind query text."""
    if looks_like_query(name):
        return resolve_query(con, name, argument)
    try:
        parts = split_name(name)
    except UnknownRelation:
        raise UnknownRelation(name, _all_relation_names(con)) from None
    except InvalidArgument as e:
        raise InvalidArgument(argument, str(e).split(": ", 1)[1].split(". ")[0], "Pass it as a string, e.g. 'orders'") from None
    table = parts[-1]
    schema = parts[-2] if len(parts) >= 2 else None
    database = parts[-3] if len(parts) == 3 else None
    rows = con.execute(
        """
        SELECT database_name, schema_name, table_name, comment FROM (
            SELECT database_name, schema_name, table_name, temporary, comment FROM duckdb_tables()
            UNION ALL
            SELECT database_name, schema_name, view_name, temporary, comment FROM duckdb_views() WHERE NOT internal
        )
        WHERE lower(table_name) = lower($1)
          AND ($2::VARCHAR IS NULL OR lower(schema_name) = lower($2))
          AND ($3::VARCHAR IS NULL OR lower(database_name) = lower($3))
        ORDER BY (database_name = current_database()) DESC, (schema_name = current_schema()) DESC,
                 temporary DESC, (table_name = $1) DESC
        """,
        [table, schema, database],
    ).fetchall()
    if not rows:
        raise UnknownRelation(name, _all_relation_names(con))
    db, sch, tbl, comment = rows[0]
    if db == SCRATCH_DATABASE and comment:
        name = comment  # a copy the front door made of a TEMP table, CTE or DataFrame: name what the user named
    columns = dict(
        con.execute(
            """SELECT column_name, data_type FROM duckdb_columns()
               WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 ORDER BY column_index""",
            [db, sch, tbl],
        ).fetchall()
    )
    return Relation(name=name, database=db, schema=sch, table=tbl, columns=columns)


def resolve_query(con: duckdb.DuckDBPyConnection, text: str, argument: str = "relation") -> Relation:
    """Query text as a relation: validated as one read-only SELECT and bound (not run) for its columns."""
    query = validate_query(text, argument)
    try:
        bound = con.sql(query)
    except duckdb.Error as e:
        raise InvalidArgument(argument, f"the query {short_text(text)!r} does not run: {str(e).splitlines()[0]}",
                              f"Fix the query. {INPUT_SPELLINGS}") from None
    columns = dict(zip(bound.columns, (str(t) for t in bound.types)))
    return Relation(name=short_text(text), database="", schema="", table="", columns=columns, query=query)


def _all_relation_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        f"""SELECT table_name FROM duckdb_tables() WHERE schema_name <> 'wml' AND database_name <> '{SCRATCH_DATABASE}'
            UNION SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]
