"""One client's session: a DuckDB cursor with warehouse-ml installed, its prepared statements, portals and SQL
cursors, its PostgreSQL parameters, and the checks every statement passes before DuckDB sees it.

Results stream: a portal holds DuckDB's Arrow batches and hands out as many rows as each Execute (or FETCH)
asks for, so a client with a fetch size gets every row, in pieces. When another statement must run on the cursor
while a portal is still open, the portal's remaining rows are read into memory first (a DuckDB cursor streams one
result at a time).
"""
from __future__ import annotations

import logging
import re
import struct
import threading
import time
import warnings
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ... import wiring
from ...binding import registry
from ...errors import WmlError
from . import catalog
from .policy import (DISPLAY_NAMES, PG_DEFAULTS, REPORTED, Refused, Statement, WritingFunctions,
                     check_instance, check_read_only, check_setting, classify)
from .sqltext import parameter_count
from .types import binary_column, column_oid, text_column

log = logging.getLogger("warehouse_ml")

BATCH_ROWS = 8192
_DML_TAGS = {"INSERT": "INSERT 0 {n}", "UPDATE": "UPDATE {n}", "DELETE": "DELETE {n}", "CREATE": "SELECT {n}",
             "COPY": "COPY {n}", "MERGE": "MERGE {n}"}
_FETCH = re.compile(r"^\s*(FETCH|MOVE)\s+(?:(NEXT|ALL|FORWARD\s+ALL|FORWARD\s+\d+|FORWARD|\d+)\s+)?(?:(?:FROM|IN)\s+)?"
                    r"(\w+|\"(?:[^\"]|\"\")+\")\s*;?\s*$", re.I | re.S)
_CLOSE = re.compile(r"^\s*CLOSE\s+(ALL|\w+|\"(?:[^\"]|\"\")+\")\s*;?\s*$", re.I)
_DEALLOCATE = re.compile(r"^\s*DEALLOCATE\s+(?:PREPARE\s+)?(ALL|\w+|\"(?:[^\"]|\"\")+\")\s*;?\s*$", re.I)


class QueryError(Exception):
    """An error to send to the client with a PostgreSQL SQLSTATE."""

    def __init__(self, message: str, sqlstate: str = "XX000"):
        super().__init__(message)
        self.sqlstate = sqlstate


def sqlstate_for(e: BaseException) -> str:
    if isinstance(e, (Refused, QueryError)):
        return e.sqlstate
    text = str(e)
    if isinstance(e, duckdb.InterruptException) or "INTERRUPT" in text.upper():
        return "57014"  # query_canceled
    if isinstance(e, duckdb.ParserException):
        return "42601"
    if isinstance(e, (duckdb.CatalogException, duckdb.BinderException)):
        return "42P01" if "does not exist" in text else "42703"
    if isinstance(e, duckdb.OutOfMemoryException):
        return "53200"
    if isinstance(e, WmlError) or "while executing the UDF" in text:
        return "22023"
    if isinstance(e, (duckdb.ConversionException, duckdb.InvalidInputException, ValueError)):
        return "22P02"
    return "XX000"


@dataclass
class Prepared:
    sql: str
    stmt: Statement
    param_oids: list[int]


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


@dataclass
class Portal:
    """A statement's result as the client reads it: rows (streamed) or just a command tag."""

    tag: str = ""
    schema: pa.Schema | None = None
    duckdb_types: list = field(default_factory=list)  # DuckDB's type names (UUID and JSON look like strings in Arrow)
    reader: pa.RecordBatchReader | None = None
    formats: list[int] = field(default_factory=list)
    statement: str = ""
    hold: bool = False
    binary: bool = False
    sent: int = 0
    created: float = field(default_factory=time.time)
    _batch: pa.RecordBatch | None = None
    _offset: int = 0
    _buffered: list = field(default_factory=list)
    _done: bool = False

    @property
    def has_rows(self) -> bool:
        return self.schema is not None

    def column_formats(self) -> list[int]:
        n = len(self.schema)
        fmts = self.formats or [0]
        fmts = fmts * n if len(fmts) == 1 else fmts
        return fmts[:n] + [0] * (n - len(fmts))

    def detach(self) -> None:
        """Read what is left into memory, so the cursor is free for another statement."""
        if self.reader is not None and not self._done:
            self._buffered.extend(self.reader)
            self.reader = None

    def _next_batch(self) -> pa.RecordBatch | None:
        if self._buffered:
            return self._buffered.pop(0)
        if self.reader is None:
            return None
        try:
            return self.reader.read_next_batch()
        except StopIteration:
            return None

    def fetch(self, limit: int) -> tuple[list[bytes], bool]:
        """Up to ``limit`` DataRow messages (all when 0) and whether the result is exhausted."""
        out: list[bytes] = []
        fmts = self.column_formats()
        while not self._done and (limit <= 0 or len(out) < limit):
            if self._batch is None or self._offset >= self._batch.num_rows:
                self._batch, self._offset = self._next_batch(), 0
                if self._batch is None:
                    self._done = True
                    break
                if self._batch.num_rows == 0:
                    continue
            take = self._batch.num_rows - self._offset
            if limit > 0:
                take = min(take, limit - len(out))
            out.extend(data_rows(self._batch.slice(self._offset, take), fmts, self.duckdb_types))
            self._offset += take
        self.sent += len(out)
        return out, self._done


def data_rows(batch: pa.RecordBatch, fmts: list[int], duckdb_types: list | None = None) -> list[bytes]:
    """DataRow messages for every row of a batch, encoded a column at a time."""
    cols = []
    types = duckdb_types or [None] * batch.num_columns
    for i, col in enumerate(batch.columns):
        cols.append(binary_column(col, types[i]) if fmts[i] == 1 else text_column(col))
    head = struct.Struct("!cih").pack
    null = b"\xff\xff\xff\xff"
    pack = struct.Struct("!i").pack
    rows = []
    ncols = len(cols)
    for values in zip(*cols) if cols else [() for _ in range(batch.num_rows)]:
        parts = [null if v is None else pack(len(v)) + v for v in values]
        body = b"".join(parts)
        rows.append(head(b"D", len(body) + 6, ncols) + body)
    return rows


_CALL_NAME = re.compile(r'^"?([A-Za-z_]\w*)"?\(.*\)$', re.S)


def column_name(name: str) -> str:
    """PostgreSQL names an unaliased function call's column by the function (``version``, ``count``); DuckDB by
    the call's text (``"version"()``, ``count_star()``)."""
    m = _CALL_NAME.match(name)
    if not m:
        return name
    return {"count_star": "count"}.get(m.group(1).lower(), m.group(1).lower())


def row_description(schema: pa.Schema, fmts: list[int], duckdb_types: list | None = None) -> bytes:
    body = [struct.pack("!h", len(schema))]
    types = duckdb_types or [None] * len(schema)
    for i, f in enumerate(schema):
        oid, size = column_oid(f.type, types[i])
        body.append(column_name(f.name).encode() + b"\x00" + struct.pack("!ihihih", 0, 0, oid, size, -1, fmts[i] if i < len(fmts) else 0))
    payload = b"".join(body)
    return b"T" + struct.pack("!i", len(payload) + 4) + payload


class Session:
    """Everything one authenticated client owns."""

    def __init__(self, db: duckdb.DuckDBPyConnection, user: str, read_only: bool, startup: dict[str, str],
                 statement_timeout: float, db_lock: threading.Lock, activity=None):
        with db_lock:
            self.cursor = db.cursor()
        wiring.install(self.cursor)
        runtime = registry.runtime_for(self.cursor)
        if runtime is not None:
            runtime.read_only = read_only  # writing functions refuse before they start, whatever the spelling
        catalog.install(self.cursor, user)
        self.user = user
        self.read_only = read_only
        self.writing = WritingFunctions(self.cursor)
        self.params = dict(PG_DEFAULTS)
        for k, v in startup.items():
            if k.lower() in PG_DEFAULTS and k.lower() not in ("server_version", "server_encoding"):
                self.params[k.lower()] = v
        self.params["session_authorization"] = user
        self.server_statement_timeout = statement_timeout
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.in_txn = False
        self.failed_txn = False
        self.busy_since: float | None = None  # when the running statement started (None: idle)
        self.interrupt_reason = ""
        self.last_statement = ""
        self.activity = activity or (lambda: [])  # every session of the server, for pg_stat_activity

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.portals.clear()
        registry.forget(self.cursor)
        try:
            self.cursor.close()
        except duckdb.Error:
            pass

    def reported_parameters(self) -> list[tuple[str, str]]:
        return [(DISPLAY_NAMES.get(k, k), self.params[k]) for k in REPORTED]

    @property
    def status(self) -> bytes:
        return b"E" if self.failed_txn else (b"T" if self.in_txn else b"I")

    def statement_timeout(self) -> float:
        """Seconds a statement may run: the client's statement_timeout within the server's limit (0: none)."""
        client = _timeout_seconds(self.params.get("statement_timeout", "0"))
        server = self.server_statement_timeout
        if client and server:
            return min(client, server)
        return client or server

    def interrupt(self, reason: str) -> None:
        self.interrupt_reason = reason
        try:
            self.cursor.interrupt()
        except duckdb.Error:
            pass

    # -- statements ---------------------------------------------------------------------------------------------
    def prepare(self, sql: str, param_oids: list[int]) -> Prepared:
        stmt = classify(sql) if sql.strip() else Statement("", "EMPTY")
        return Prepared(sql, stmt, param_oids)

    def describe_statement(self, prep: Prepared) -> tuple[pa.Schema, list[str]] | None:
        """The columns (and DuckDB types) a prepared statement will return, without running it (None: no rows)."""
        if prep.stmt.kind != "SELECT":
            return None
        self._check(prep.stmt)
        self._detach_all()
        sql = self._rewrite(prep.sql)
        n = max(len(prep.param_oids), parameter_count(prep.sql))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rel = self.cursor.sql(sql, params=[None] * n) if n else self.cursor.sql(sql)
                schema = pa.schema([pa.field(name, registry.arrow_type(str(t))) for name, t in zip(rel.columns, rel.types)])
                return schema, [str(t) for t in rel.types]
        except duckdb.Error:
            described = self._execute_sql(f"SELECT * FROM ({sql.rstrip().rstrip(';')}) AS described LIMIT 0", [None] * n)
            return described.schema, described.duckdb_types

    def execute(self, stmt: Statement, params: list | None, formats: list[int] | None = None) -> Portal:
        """Run one statement (checked first); returns the portal its rows or tag are read from."""
        if self.failed_txn and not (stmt.kind == "TRANSACTION" and stmt.name in ("ROLLBACK", "ABORT", "COMMIT", "END")) \
                and stmt.kind != "ROLLBACK_TO":
            raise QueryError("current transaction is aborted, commands ignored until end of transaction block",
                             "25P02")
        self._check(stmt)
        self.last_statement = stmt.sql[:1000]
        handler = getattr(self, f"_run_{stmt.kind.lower()}", None)
        if handler is not None:
            return handler(stmt, params or [], formats or [])
        if stmt.kind in ("EMPTY",):
            return Portal(tag="")
        self._detach_all()
        portal = self._execute_sql(self._rewrite(stmt.sql), params)
        portal.formats = formats or []
        portal.statement = stmt.sql
        return portal

    def _check(self, stmt: Statement) -> None:
        if stmt.kind in ("PG_SET", "PG_RESET"):
            return  # judged in _run_pg_set
        check_instance(stmt)
        if self.read_only:
            check_read_only(stmt, self.writing)
        elif stmt.kind == "PRAGMA":
            check_read_only(stmt, self.writing)  # PRAGMA calls that change settings: refused for writers too
        if stmt.kind == "CREATE" or stmt.kind == "DROP":
            self.writing.forget()

    def _rewrite(self, sql: str) -> str:
        return catalog.rewrite(sql, self)

    def _execute_sql(self, sql: str, params: list | None) -> Portal:
        from ...frontdoor import run

        started = time.perf_counter()
        self.busy_since, self.interrupt_reason = time.monotonic(), ""
        try:
            cur = run(self.cursor, sql, list(params) if params else None)
        except duckdb.Error as e:
            if self.interrupt_reason:
                raise QueryError(f"canceling statement: {self.interrupt_reason}", "57014") from None
            if "read-only" in str(e).lower():
                raise Refused(f"{str(e).split(': ', 1)[-1]} (the database is open read-only)", "25006") from None
            raise
        finally:
            self.busy_since = None
        log.info("server: ran in %.2fs: %s", time.perf_counter() - started, " ".join(sql.split())[:200])
        if cur.description is None:
            return Portal(tag=_command_tag(sql))
        word = (sql.split(None, 1) or [""])[0].upper()
        if word in _DML_TAGS and len(cur.description) == 1 and cur.description[0][0] == "Count":
            n = cur.fetchone()
            return Portal(tag=_DML_TAGS[word].format(n=n[0] if n else 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Arrow output on a DB-API result makes an extra copy": batches only
            reader = cur.to_arrow_reader(BATCH_ROWS)
        return Portal(tag="SELECT", schema=reader.schema, reader=reader, duckdb_types=[str(d[1]) for d in cur.description])

    def fetch(self, portal: Portal, limit: int) -> tuple[list[bytes], bool]:
        """Rows of a portal; DuckDB may compute while we read, so this counts as running (timeouts, cancel)."""
        self.busy_since, self.interrupt_reason = time.monotonic(), ""
        try:
            return portal.fetch(limit)
        except duckdb.Error:
            if self.interrupt_reason:
                raise QueryError(f"canceling statement: {self.interrupt_reason}", "57014") from None
            raise
        finally:
            self.busy_since = None

    def _detach_all(self) -> None:
        for portal in self.portals.values():
            portal.detach()

    def end_of_sync(self) -> None:
        """Sync outside a transaction ends the implicit one: its portals go, SQL cursors WITH HOLD stay."""
        if not self.in_txn:
            self.portals = {k: p for k, p in self.portals.items() if p.hold}

    # -- statements handled here, not by DuckDB -----------------------------------------------------------------
    def _run_show_param(self, stmt, params, formats) -> Portal:
        if stmt.name == "all":
            rows = [(DISPLAY_NAMES.get(k, k), v, "") for k, v in sorted(self.params.items())]
            table = pa.table({"name": [r[0] for r in rows], "setting": [r[1] for r in rows],
                              "description": [r[2] for r in rows]})
        else:
            table = pa.table({stmt.name: [self.params.get(stmt.name, "")]})
        return _table_portal(table, "SHOW", formats)

    def _run_pg_set(self, stmt, params, formats) -> Portal:
        where = check_setting(stmt, self.cursor)
        if where == "duckdb":
            try:
                self.cursor.execute(f"SET SESSION {stmt.name} = ?", [stmt.value])
            except duckdb.Error:
                if stmt.name != "search_path":
                    raise
        if stmt.name != "transaction_characteristics":
            self.params[stmt.name] = stmt.value if stmt.value is not None else PG_DEFAULTS.get(stmt.name, "")
        return Portal(tag="SET")

    def _run_pg_reset(self, stmt, params, formats) -> Portal:
        check_setting(stmt, self.cursor)
        if stmt.name == "all":
            self.params.update({k: v for k, v in PG_DEFAULTS.items() if k not in ("session_authorization",)})
        else:
            self.params[stmt.name] = PG_DEFAULTS.get(stmt.name, "")
        return Portal(tag="RESET")

    def _run_transaction(self, stmt, params, formats) -> Portal:
        word = stmt.name
        if word in ("BEGIN", "START"):
            if not self.in_txn:
                self._detach_all()
                self.cursor.execute("BEGIN TRANSACTION")
                self.in_txn = True
            return Portal(tag="BEGIN")
        commit = word in ("COMMIT", "END") and not self.failed_txn
        if self.in_txn:
            self._detach_all()
            try:
                self.cursor.execute("COMMIT" if commit else "ROLLBACK")
            except duckdb.TransactionException:
                pass  # DuckDB had already rolled back after an error
        self.in_txn = self.failed_txn = False
        self.portals = {k: p for k, p in self.portals.items() if p.hold}
        return Portal(tag="COMMIT" if commit else "ROLLBACK")

    def _run_declare(self, stmt, params, formats) -> Portal:
        name = stmt.name
        if name in self.portals:
            raise QueryError(f'cursor "{name}" already exists', "42P03")
        if len(self.portals) >= 10_000:
            raise QueryError("this session holds 10000 cursors; CLOSE some first", "54000")
        query = classify(stmt.extra["query"])
        if query.kind not in ("SELECT", "EXPLAIN"):
            raise QueryError("DECLARE CURSOR needs a query (SELECT, FROM, WITH, VALUES, SHOW ...)", "42601")
        portal = self.execute(query, params)
        # outside a transaction block PostgreSQL refuses a cursor without HOLD; here it lives until CLOSE instead
        portal.hold = stmt.extra["hold"] or not self.in_txn
        portal.binary, portal.statement = stmt.extra["binary"], stmt.sql
        if not portal.has_rows:
            raise QueryError("DECLARE CURSOR needs a query that returns rows", "42601")
        portal.formats = [1 if portal.binary else 0]
        self.portals[name] = portal
        return Portal(tag="DECLARE CURSOR")

    def _run_fetch(self, stmt, params, formats) -> Portal:
        m = _FETCH.match(stmt.sql)
        if not m:
            raise QueryError("FETCH supports NEXT, n, ALL, FORWARD [n | ALL] FROM cursor (this cursor moves forward "
                             "only)", "0A000")
        verb, how, name = m.group(1).upper(), (m.group(2) or "NEXT").upper(), _unquote(m.group(3))
        portal = self.portals.get(name)
        if portal is None or not portal.has_rows:
            raise QueryError(f'cursor "{name}" does not exist', "34000")
        count = 0 if "ALL" in how else (1 if how in ("NEXT", "FORWARD") else int(how.split()[-1]))
        if count == 0 and "ALL" not in how:
            return _rows_portal(portal, [], f"{verb} 0", formats or portal.formats)
        saved = portal.formats
        portal.formats = formats or portal.formats
        self._detach_others(portal)
        rows, _ = self.fetch(portal, count)
        portal.formats = saved
        if verb == "MOVE":
            return Portal(tag=f"MOVE {len(rows)}")
        return _rows_portal(portal, rows, f"FETCH {len(rows)}", formats or portal.formats)

    _run_move = _run_fetch

    def _detach_others(self, keep: Portal) -> None:
        for p in self.portals.values():
            if p is not keep:
                p.detach()

    def _run_close(self, stmt, params, formats) -> Portal:
        m = _CLOSE.match(stmt.sql)
        if not m:
            raise QueryError("CLOSE needs a cursor name or ALL", "42601")
        name = m.group(1)
        if name.upper() == "ALL":
            self.portals = {k: p for k, p in self.portals.items() if not p.statement.upper().lstrip().startswith("DECLARE")}
        elif self.portals.pop(_unquote(name), None) is None:
            raise QueryError(f'cursor "{_unquote(name)}" does not exist', "34000")
        return Portal(tag="CLOSE CURSOR")

    def _run_deallocate(self, stmt, params, formats) -> Portal:
        m = _DEALLOCATE.match(stmt.sql)
        name = m.group(1) if m else "ALL"
        if name.upper() == "ALL":
            self.prepared.clear()
        else:
            self.prepared.pop(_unquote(name), None)
        return Portal(tag="DEALLOCATE")

    def _run_discard(self, stmt, params, formats) -> Portal:
        self.prepared.clear()
        self.portals.clear()
        self.params.update({k: v for k, v in PG_DEFAULTS.items() if k not in ("session_authorization",)})
        return Portal(tag="DISCARD ALL")

    def _run_listen(self, stmt, params, formats) -> Portal:
        raise QueryError("LISTEN/NOTIFY is not supported by this server", "0A000")

    _run_unlisten = _run_listen

    def _run_savepoint(self, stmt, params, formats) -> Portal:
        """Savepoints (psycopg and SQLAlchemy open them inside transactions). DuckDB has none: a read-only session
        has nothing to undo, so they are kept as markers; a writer cannot roll back to one."""
        return Portal(tag="SAVEPOINT")

    def _run_release(self, stmt, params, formats) -> Portal:
        return Portal(tag="RELEASE")

    def _run_rollback_to(self, stmt, params, formats) -> Portal:
        if not self.read_only:
            self.failed_txn = self.in_txn
            raise QueryError("ROLLBACK TO SAVEPOINT is not supported in a writing session (DuckDB has no "
                             "savepoints); roll back the whole transaction", "0A000")
        if self.in_txn:
            self._detach_all()
            try:
                self.cursor.execute("ROLLBACK")
            except duckdb.Error:
                pass
            self.cursor.execute("BEGIN TRANSACTION")
        self.failed_txn = False
        return Portal(tag="ROLLBACK")

    def cursors(self) -> list[Portal]:
        """Open SQL cursors (DECLARE), for the pg_cursors view."""
        return [(name, p) for name, p in self.portals.items() if p.statement.upper().lstrip().startswith("DECLARE")]


def _timeout_seconds(value: str) -> float:
    """PostgreSQL duration text ('0', '5000', '5s', '2min') -> seconds."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$", str(value))
    if not m:
        return 0
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "min": 60, "h": 3600, None: 0.001}[m.group(2)]


def _command_tag(sql: str) -> str:
    word = (sql.split(None, 1) or ["OK"])[0].upper()
    return {"INSERT": "INSERT 0 0", "UPDATE": "UPDATE 0", "DELETE": "DELETE 0"}.get(word, word)


def _table_portal(table: pa.Table, tag: str, formats) -> Portal:
    return Portal(tag=tag, schema=table.schema, reader=pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                  formats=formats or [])


@dataclass
class _Rows(Portal):
    rows: list = field(default_factory=list)

    def fetch(self, limit: int):
        out = self.rows if limit <= 0 else self.rows[:limit]
        self.rows = self.rows[len(out):]
        return out, not self.rows


def _rows_portal(source: Portal, rows, tag, formats) -> Portal:
    return _Rows(tag=tag, schema=source.schema, duckdb_types=source.duckdb_types, formats=formats or [], rows=rows)
