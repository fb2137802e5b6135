"""Resolve relation and column names passed as strings against DuckDB's catalog.

Names are never pasted into SQL: a string is parsed as a (possibly quoted, dotted) identifier, looked up in
``duckdb_tables()`` / ``duckdb_views()`` with bound parameters, and only the catalog's own spelling is quoted
back into SQL. Anything else (``'users; DROP TABLE users'``) is an UnknownRelation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from ..errors import AmbiguousColumn, InvalidArgument, UnknownColumn, UnknownRelation

_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$"
)
_TEMPORAL = re.compile(r"^(DATE|TIMESTAMP.*|TIME.*)$")
_IDENT_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


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


@dataclass(frozen=True)
class Relation:
    """A table or view that exists, with its columns in order and a safely quoted SQL name."""

    name: str  # what the user passed, for messages
    database: str
    schema: str
    table: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> DuckDB type, in order

    @property
    def sql(self) -> str:
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

    def infer_column(self, given: str | None, argument: str, role: str, predicate) -> str:
        """Use the named column, or the only column whose type fits the role; else say which are candidates."""
        if given is not None:
            return self.column(given, argument)
        candidates = [c for c, t in self.columns.items() if predicate(c, t)]
        if len(candidates) == 1:
            return candidates[0]
        raise AmbiguousColumn(self.name, argument, role, candidates)

    def q(self, column: str) -> str:
        """Quoted identifier of a column already resolved by column()."""
        return quote_ident(column)


def resolve(con: duckdb.DuckDBPyConnection, name: str, argument: str = "relation") -> Relation:
    """Look a relation name up in the catalog (tables and views, temporary ones included)."""
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
        SELECT database_name, schema_name, table_name FROM (
            SELECT database_name, schema_name, table_name, temporary FROM duckdb_tables()
            UNION ALL
            SELECT database_name, schema_name, view_name, temporary FROM duckdb_views() WHERE NOT internal
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
    db, sch, tbl = rows[0]
    columns = dict(
        con.execute(
            """SELECT column_name, data_type FROM duckdb_columns()
               WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 ORDER BY column_index""",
            [db, sch, tbl],
        ).fetchall()
    )
    return Relation(name=name, database=db, schema=sch, table=tbl, columns=columns)


def _all_relation_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """SELECT table_name FROM duckdb_tables() WHERE schema_name <> 'wml'
           UNION SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]
