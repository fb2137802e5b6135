"""What a client's statement is, found by DuckDB's own parser, and whether this session may run it.

Statement types come from ``duckdb.extract_statements``; the functions a SELECT calls come from DuckDB's parse tree
(``json_serialize_sql``), so quoting (``"ml_train"(...)``), comments (``ml_train/**/(...)``) and case make no
difference. A function changes the model store when it is one of the UDFs declared ``writes=True`` or a macro whose
body calls one (found by reading the session's macro definitions, recursively).

Configuration: a client may change only its own session. PostgreSQL session parameters (``DateStyle``,
``extra_float_digits``, ``statement_timeout``, ...) are kept per session; DuckDB settings are refused unless
DuckDB scopes them to the session and they are on a short list; instance-wide ones (``memory_limit``,
``threads``, ``lock_configuration``, ...) are refused however they are spelled (``SET``, ``SET GLOBAL``,
``PRAGMA x=y``, ``RESET``, ``PRAGMA`` calls that change settings).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

import duckdb

from ... import wiring
from .sqltext import code_only, first_words

READ_ONLY_HINT = ("the server is read-only, so nothing was run. Restart it with `warehouse-ml serve DB "
                  "--allow-writes` (and connect as a user with the writer role) to permit writes and training")

# DuckDB statement types that never change the database or the instance
_READING = {"SELECT", "EXPLAIN", "TRANSACTION", "PREPARE", "EXECUTE", "RELATION", "LOGICAL_PLAN", "MULTI"}
# PRAGMA calls that only read (``PRAGMA table_info('t')``); every other PRAGMA is refused
_READ_PRAGMAS = {"table_info", "show_tables", "show_tables_expanded", "show", "database_list", "database_size",
                 "storage_info", "version", "platform", "functions", "collations", "user_agent", "metadata_info",
                 "show_databases"}
# DuckDB settings a client may change for its own session only (DuckDB scopes them LOCAL)
SESSION_DUCKDB_SETTINGS = {"search_path", "schema"}
# PostgreSQL parameters clients set and read; kept per session (statement_timeout is also enforced)
PG_DEFAULTS = {
    "server_version": "14.0", "server_version_num": "140000", "server_encoding": "UTF8",
    "client_encoding": "UTF8", "datestyle": "ISO, MDY", "intervalstyle": "postgres", "timezone": "UTC",
    "integer_datetimes": "on", "standard_conforming_strings": "on", "extra_float_digits": "1",
    "application_name": "", "client_min_messages": "notice", "bytea_output": "hex", "search_path": '"$user", main',
    "statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
    "transaction_isolation": "serializable", "default_transaction_isolation": "serializable",
    "transaction_read_only": "off", "default_transaction_read_only": "off", "is_superuser": "off",
    "session_authorization": "", "max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C",
    "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C", "jit": "off", "geqo": "on",
    "row_security": "on", "check_function_bodies": "on", "xmloption": "content", "array_nulls": "on",
    "backslash_quote": "safe_encoding", "escape_string_warning": "on", "quote_all_identifiers": "off",
    "synchronous_commit": "on", "work_mem": "4MB", "enable_seqscan": "on", "join_collapse_limit": "8",
    "tcp_keepalives_idle": "0", "default_text_search_config": "pg_catalog.simple",
}
# parameters a client learns at startup (ParameterStatus)
REPORTED = ("server_version", "server_encoding", "client_encoding", "datestyle", "intervalstyle", "timezone",
            "integer_datetimes", "standard_conforming_strings", "application_name", "is_superuser",
            "session_authorization")
DISPLAY_NAMES = {"datestyle": "DateStyle", "intervalstyle": "IntervalStyle", "timezone": "TimeZone"}


# table functions that change the whole instance (logging) or write the file (checkpoints)
INSTANCE_FUNCTIONS = frozenset({"enable_logging", "disable_logging", "truncate_duckdb_logs"})
FILE_FUNCTIONS = frozenset({"checkpoint", "force_checkpoint"})


class Refused(Exception):
    """A statement this session may not run; ``sqlstate`` says why in PostgreSQL's terms."""

    def __init__(self, message: str, sqlstate: str = "25006"):
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass
class Statement:
    """One client statement: its DuckDB type and, for SET/RESET/SHOW, the parameter and value."""

    sql: str
    kind: str  # a DuckDB StatementType name, or one of ours: SHOW_PARAM, PG_SET, DECLARE, FETCH, CLOSE, ...
    name: str = ""
    value: str | None = None
    extra: dict = field(default_factory=dict)


DYNAMIC_QUERY = "query(<computed SQL>)"
_PARSER = duckdb.connect()  # a private in-memory instance: parsing needs no catalog
_PARSER_LOCK = threading.Lock()

_SET = re.compile(r"^\s*SET\s+(?:(SESSION|LOCAL|GLOBAL)\s+)?(?:(?:VARIABLE)\s+)?([A-Za-z_][\w.]*|\"[^\"]+\")\s*(?:=|\bTO\b)\s*(.*?)\s*;?\s*$", re.I | re.S)
_SET_TIMEZONE = re.compile(r"^\s*SET\s+(?:(?:SESSION|LOCAL)\s+)?TIME\s+ZONE\s+(.*?)\s*;?\s*$", re.I | re.S)
_RESET = re.compile(r"^\s*RESET\s+(?:(SESSION|LOCAL|GLOBAL)\s+)?([A-Za-z_][\w.]*|ALL)\s*;?\s*$", re.I)
_PRAGMA_ASSIGN = re.compile(r"^\s*PRAGMA\s+([A-Za-z_]\w*)\s*=\s*(.*?)\s*;?\s*$", re.I | re.S)
_PRAGMA_CALL = re.compile(r"^\s*PRAGMA\s+([A-Za-z_]\w*)", re.I)
_SHOW = re.compile(r"^\s*SHOW\s+(.*?)\s*;?\s*$", re.I | re.S)
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^)]*\)\s*)?", re.I)
_CALL = re.compile(r"^\s*CALL\s+", re.I)
_DECLARE = re.compile(r"^\s*DECLARE\s+(\w+|\"(?:[^\"]|\"\")+\")\s+(BINARY\s+)?(?:(?:IN|A)?SENSITIVE\s+)?(?:(?:NO\s+)?SCROLL\s+)?"
                      r"CURSOR\s+(?:(WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.*?)\s*;?\s*$", re.I | re.S)


def classify(sql: str) -> Statement:
    """The kind of one statement (already split from its neighbours), without running anything."""
    words = first_words(sql, 4)
    head = words[0] if words else ""
    if head == "SHOW":
        m = _SHOW.match(code_only(sql))
        target = " ".join(m.group(1).split()).lower() if m else ""
        if target == "transaction isolation level":
            return Statement(sql, "SHOW_PARAM", "transaction_isolation")
        if target.replace(" ", "_") in PG_DEFAULTS or target == "all":
            return Statement(sql, "SHOW_PARAM", target.replace(" ", "_"))
    if head == "SET":
        if words[1:2] == ["TRANSACTION"] or words[1:3] == ["SESSION", "CHARACTERISTICS"]:
            return Statement(sql, "PG_SET", "transaction_characteristics", sql)
        m = _SET_TIMEZONE.match(sql)
        if m:
            return Statement(sql, "PG_SET", "timezone", _unquote(m.group(1)))
        m = _SET.match(sql)
        if m:
            return Statement(sql, "PG_SET", _unquote(m.group(2)).lower(), _unquote(m.group(3)), {"scope": (m.group(1) or "").upper()})
    if head == "RESET":
        m = _RESET.match(sql)
        if m:
            return Statement(sql, "PG_RESET", m.group(2).lower(), None, {"scope": (m.group(1) or "").upper()})
    if head == "PRAGMA":
        m = _PRAGMA_ASSIGN.match(sql)
        if m:
            return Statement(sql, "PG_SET", m.group(1).lower(), _unquote(m.group(2)), {"scope": "PRAGMA"})
        m = _PRAGMA_CALL.match(sql)
        return Statement(sql, "PRAGMA", m.group(1).lower() if m else "")
    if head == "DECLARE":
        m = _DECLARE.match(sql)
        if not m:
            raise Refused("DECLARE needs the form DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH HOLD] FOR query",
                          "42601")
        return Statement(sql, "DECLARE", _unquote(m.group(1)), None,
                         {"query": m.group(4), "binary": bool(m.group(2)), "hold": (m.group(3) or "").upper() == "WITH"})
    if head in ("FETCH", "MOVE", "CLOSE", "DISCARD", "DEALLOCATE", "LISTEN", "UNLISTEN", "SAVEPOINT",
                "RELEASE"):
        return Statement(sql, head)
    if head == "USE":  # the session's default schema: DuckDB scopes it to the session
        return Statement(sql, "USE")
    if head in ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"):
        if head == "ROLLBACK" and "TO" in words[1:3]:
            return Statement(sql, "ROLLBACK_TO")
        return Statement(sql, "TRANSACTION", head)
    try:
        with _PARSER_LOCK:
            parsed = duckdb.extract_statements(sql)
        kinds = [p.type.name for p in parsed]
    except duckdb.Error:
        return Statement(sql, "INVALID")  # DuckDB will say what is wrong when it runs (and refuses) it
    except ValueError:
        return Statement(sql, "UNKNOWN")  # a statement type this DuckDB's Python API cannot name
    if len(kinds) != 1:
        return Statement(sql, "MULTI")
    kind = kinds[0]
    if kind == "SET":  # a spelling the patterns above missed: refuse rather than guess
        return Statement(sql, "PG_SET", "?", None, {"scope": "UNKNOWN"})
    return Statement(sql, kind)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def called_functions(sql: str) -> set[str]:
    """Lower-cased names of every function (scalar or table) a SELECT-like statement calls, from DuckDB's parse
    tree; None when DuckDB cannot serialize it (not a plain query)."""
    with _PARSER_LOCK:
        tree = json.loads(_PARSER.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        return None
    names: set[str] = set()
    strings: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class") == "FUNCTION" and isinstance(node.get("function_name"), str):
                names.add(node["function_name"].lower())
                if node["function_name"].lower() == "query":  # SQL text run at run time: check it too
                    texts = _constant_strings(node.get("arguments"))
                    strings.extend(texts)
                    if not texts:
                        names.add(DYNAMIC_QUERY)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(tree["statements"])
    for text in strings:  # query('FROM ml_train(...)'): the SQL inside is checked too
        inner = called_functions(text)
        names |= inner if inner is not None else {DYNAMIC_QUERY}
    return names


def _constant_strings(arguments) -> list[str]:
    out = []
    for arg in arguments or []:
        expr = arg.get("expression", arg) if isinstance(arg, dict) else None
        if isinstance(expr, dict) and expr.get("class") == "CONSTANT":
            literal = expr.get("literal") or expr.get("value") or {}
            if isinstance(literal, dict) and isinstance(literal.get("text"), str):
                out.append(literal["text"])
    return out


class WritingFunctions:
    """The functions that change the model store, as seen from one session: those whose spec says ``writes=True``
    (their macros and UDFs) and every other macro, e.g. one a user created, whose body (recursively) calls one."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self._cursor = cursor
        self._names: frozenset[str] | None = None

    def names(self) -> frozenset[str]:
        if self._names is None:
            writing = set(wiring.writing_functions())
            macros = {}
            for name, definition in self._cursor.execute(
                    "SELECT function_name, macro_definition FROM duckdb_functions() "
                    "WHERE function_type IN ('macro', 'table_macro') AND macro_definition IS NOT NULL").fetchall():
                macros.setdefault(name.lower(), []).append(definition)
            calls = {name: set().union(*(_calls_in(d) for d in defs)) for name, defs in macros.items()}
            changed = True
            while changed:
                changed = False
                for name, inner in calls.items():
                    if name not in writing and inner & writing:
                        writing.add(name)
                        changed = True
            self._names = frozenset(writing)
        return self._names

    def forget(self) -> None:
        """Macros were created or dropped: read them again on the next check."""
        self._names = None


def _calls_in(definition: str) -> set[str]:
    body = definition.strip()
    body = body if body.upper().startswith(("SELECT", "FROM", "WITH", "(")) else f"SELECT {body}"
    try:
        names = called_functions(body)
    except duckdb.Error:
        names = None
    return names or set(re.findall(r"([A-Za-z_]\w*)\s*\(", code_only(body).lower()))


def _query_of(stmt: Statement) -> tuple[str, str]:
    """(SQL, kind) of the query a statement runs: EXPLAIN's and CALL's inner query, else the statement."""
    sql, kind = stmt.sql, stmt.kind
    if kind == "EXPLAIN":
        sql = _EXPLAIN.sub("", sql, count=1)
        kind = classify(sql).kind
    elif kind == "CALL":
        rest = _CALL.sub("", sql, count=1)
        if rest != sql:
            sql, kind = f"FROM {rest}", "SELECT"
    return sql, kind


def functions_of(stmt: Statement) -> set[str] | None:
    """Functions the statement's query calls (cached on the statement); None when it cannot be told."""
    if "functions" not in stmt.extra:
        sql, kind = _query_of(stmt)
        stmt.extra["functions"] = called_functions(sql) if kind == "SELECT" else set()
    return stmt.extra["functions"]


_WRITING_VERBS = {"CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "ATTACH", "DETACH",
                  "INSTALL", "LOAD", "EXPORT", "IMPORT", "VACUUM", "CHECKPOINT", "TRUNCATE", "GRANT", "REVOKE",
                  "COMMENT", "CALL", "EXECUTE", "PREPARE", "SET", "RESET", "PRAGMA", "UPSERT", "REPLACE"}


def check_instance(stmt: Statement) -> None:
    """Refuse, for every session, statements that would change the whole server: attaching databases, loading
    extensions, exporting, secrets, logging, statements DuckDB cannot even name, several statements in one."""
    if stmt.kind in ("ATTACH", "DETACH", "LOAD", "EXPORT", "UNKNOWN") or (
            stmt.kind == "CREATE" and "SECRET" in first_words(stmt.sql, 4)):
        raise Refused(f"{(first_words(stmt.sql, 1) or ['this'])[0]} is refused: it would change the server for every "
                      "client (databases, extensions and secrets are set up when `warehouse-ml serve` starts)", "42501")
    if stmt.kind == "MULTI":
        raise Refused("cannot insert multiple commands into a prepared statement; send them one by one", "42601")
    if stmt.kind in ("SELECT", "EXPLAIN", "CALL"):
        hits = sorted((functions_of(stmt) or set()) & INSTANCE_FUNCTIONS)
        if hits:
            raise _config_refused(f"{hits[0]}()")


def check_read_only(stmt: Statement, writing: WritingFunctions) -> None:
    """Raise Refused unless the statement only reads. Configuration is judged separately (``check_setting``)."""
    kind = stmt.kind
    if kind in ("SHOW_PARAM", "PG_SET", "PG_RESET", "FETCH", "MOVE", "CLOSE", "DISCARD", "DEALLOCATE",
                "TRANSACTION", "LISTEN", "UNLISTEN", "SAVEPOINT", "RELEASE", "ROLLBACK_TO", "USE"):
        return
    if kind == "INVALID":  # DuckDB cannot parse it, so only the front door could run it (CREATE MODEL, ML.*)
        verb = (first_words(stmt.sql, 1) or [""])[0]
        if verb in _WRITING_VERBS:
            raise Refused(f"{verb} statements change the database, and {READ_ONLY_HINT}", "25006")
        return
    if kind == "DECLARE":
        query = stmt.extra.get("query")
        if query is not None:
            check_read_only(classify(query), writing)
        return
    if kind == "PRAGMA":
        if stmt.name not in _READ_PRAGMAS:
            raise Refused(f"PRAGMA {stmt.name or ' '.join(first_words(stmt.sql, 2))} is refused: {READ_ONLY_HINT}", "25006")
        return
    if kind == "CALL" and not _CALL.match(stmt.sql):  # CHECKPOINT and friends are CALLs too
        raise Refused(f"{first_words(stmt.sql, 1)[0]} is refused: {READ_ONLY_HINT}", "25006")
    sql, kind = _query_of(stmt)
    if kind not in _READING:
        raise Refused(f"{kind.replace('_', ' ')} statements change the database, and {READ_ONLY_HINT}", "25006")
    if kind in ("SELECT",):
        called = functions_of(stmt)
        if called is None:
            raise Refused(f"this statement could not be checked, and {READ_ONLY_HINT}", "25006")
        hits = sorted(called & (writing.names() | FILE_FUNCTIONS))
        if hits:
            raise Refused(f"{hits[0]}(...) changes the database or its models, and {READ_ONLY_HINT}", "25006")
        if DYNAMIC_QUERY in called:
            raise Refused(f"query() with SQL computed at run time cannot be checked, and {READ_ONLY_HINT}", "25006")
    if kind in ("PREPARE", "EXECUTE", "MULTI"):
        raise Refused(f"{kind} is not accepted over this server; use the protocol's prepared statements "
                      "(every client library does)", "0A000")


def check_setting(stmt: Statement, cursor: duckdb.DuckDBPyConnection) -> str:
    """For PG_SET/PG_RESET/PRAGMA-assignments: 'pg' (a PostgreSQL session parameter, kept by the session),
    'duckdb' (a session-scoped DuckDB setting, applied with SET SESSION) or Refused."""
    name = stmt.name
    if name == "transaction_characteristics":
        return "pg"
    if stmt.kind == "PG_RESET" and name == "all":
        return "pg"
    duck = cursor.execute("SELECT name, scope FROM duckdb_settings() WHERE lower(name) = ?", [name]).fetchall()
    if name in SESSION_DUCKDB_SETTINGS and stmt.extra.get("scope") != "GLOBAL":
        return "duckdb"
    if name in PG_DEFAULTS or "." in name:
        if stmt.extra.get("scope") in ("GLOBAL", "PRAGMA") and duck:
            raise _config_refused(duck[0][0])
        return "pg"
    if duck:
        raise _config_refused(duck[0][0])
    if name == "?":
        raise Refused("this SET statement's spelling is not understood, so it was refused. Use "
                      "SET name = value for a session parameter", "42601")
    raise Refused(f'unrecognized configuration parameter "{name}"', "42704")


def _config_refused(name: str) -> Refused:
    return Refused(f"setting {name} is refused: it would change the server for every client. Ask the server's "
                   "operator (it is configured when `warehouse-ml serve` starts)", "42501")
