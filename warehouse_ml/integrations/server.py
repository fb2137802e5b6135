"""``warehouse-ml serve shop.duckdb``: the database over the PostgreSQL wire protocol, for BI tools and psql.

Built on buenavista 0.5.0 (the protocol) by subclassing, adapted to DuckDB 2.0 and to warehouse-ml:

* every client session is a cursor of one DuckDB connection, with every UDF and TEMP macro installed, and each
  statement goes through the front door (``SELECT user_id, predict_churn(*) FROM users`` and BigQuery ML
  statements work as written);
* read-only by default: the file is opened read-only, so a write is refused by DuckDB itself and the database is
  never changed; training statements are refused before they start. ``allow_writes=True`` permits both;
* file system access from SQL (``read_csv('/etc/...')``, ``COPY ... TO``, ``ATTACH``) is disabled;
* an optional password (MD5 authentication, any user name); a wrong one closes the connection;
* results stream in Arrow batches and are written through a buffered socket (buenavista writes each row with
  its own system call); text parameters from psycopg's server-side binding are typed by their OID;
* a port in use, or a non-loopback host without a password, is refused with a clear message.

No TLS: keep it on 127.0.0.1, or put it behind an SSH tunnel.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import errno
import hashlib
import io
import ipaddress
import json
import logging
import math
import os
import re
import socket
import socketserver
import struct
import threading
import time
import uuid
import warnings
from collections.abc import Iterator

import duckdb
import pyarrow as pa
from buenavista import postgres as bvpg
from buenavista.backends.duckdb import DuckDBConnection, DuckDBSession
from buenavista.core import BVType, QueryResult

from ..binding import registry
from ..errors import InvalidArgument, WmlError

log = logging.getLogger("warehouse_ml")

BATCH_ROWS = 8192
_TXN_BEGIN = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION)\b", re.I)
_TXN_END = re.compile(r"^\s*(COMMIT|END|ROLLBACK|ABORT)\b", re.I)
_TRAINING = re.compile(r"\b(train_\w+|ml_train|ml_update|ml_retrain|save_forecast|ml_deploy|ml_rollback|ml_drop|segment_users)\s*\(|\bCREATE\s+(OR\s+REPLACE\s+)?MODEL\b", re.I)
_PG_CATALOG_FN = re.compile(r"\bpg_catalog\.(pg_get_userbyid|pg_table_is_visible|format_type|pg_get_expr)\s*\(", re.I)
_READ_ONLY_HINT = ("the server is read-only, so the database was not changed. Restart it with "
                   "`warehouse-ml serve DB --allow-writes` to permit writes and training")


class ServerError(WmlError):
    """A problem starting the server (port in use, unsafe host, missing database)."""


# -- results --------------------------------------------------------------------------------------------------
def _bvtype(t: pa.DataType) -> BVType:
    if pa.types.is_boolean(t):
        return BVType.BOOL
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return BVType.BIGINT
    if pa.types.is_integer(t):
        return BVType.BIGINT if pa.types.is_uint64(t) else BVType.INTEGER
    if pa.types.is_floating(t):
        return BVType.FLOAT
    if pa.types.is_decimal(t):
        return BVType.DECIMAL
    if pa.types.is_date(t):
        return BVType.DATE
    if pa.types.is_timestamp(t):
        return BVType.TIMESTAMP
    if pa.types.is_time(t):
        return BVType.TIME
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return BVType.BYTES
    if pa.types.is_nested(t):
        return BVType.JSON
    return BVType.TEXT  # strings, UUIDs, intervals and anything else: their text form


def _json_value(v):
    if isinstance(v, list) and v and isinstance(v[0], tuple) and len(v[0]) == 2:  # a MAP
        return {str(k): _json_value(x) for k, x in v}
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (_dt.date, _dt.datetime, _dt.time, decimal.Decimal, uuid.UUID, _dt.timedelta)):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


TEXT_OUT = {
    BVType.BOOL: lambda v: "t" if v else "f",
    BVType.BIGINT: str,
    BVType.INTEGER: str,
    BVType.FLOAT: _float_text,
    BVType.DECIMAL: str,
    BVType.DATE: lambda v: v.isoformat(),
    BVType.TIMESTAMP: lambda v: v.isoformat(sep=" "),
    BVType.TIME: lambda v: v.isoformat(),
    BVType.BYTES: lambda v: "\\x" + v.hex(),
    BVType.JSON: lambda v: json.dumps(_json_value(v)),
    BVType.TEXT: str,
}


class ArrowResult(QueryResult):
    """A DuckDB result as buenavista sees it, read in Arrow batches of ``BATCH_ROWS`` rows."""

    def __init__(self, reader: pa.RecordBatchReader | None = None, status: str = ""):
        super().__init__()
        self.reader = reader
        self._status = status
        self.bvtypes = [_bvtype(f.type) for f in reader.schema] if reader is not None else []

    def has_results(self) -> bool:
        return self.reader is not None

    def column_count(self) -> int:
        return len(self.bvtypes)

    def column(self, index: int):
        return self.reader.schema[index].name, self.bvtypes[index]

    def rows(self) -> Iterator[tuple]:
        if self.reader is None:
            return iter(())
        return self._rows()

    def _rows(self):
        for batch in self.reader:
            yield from zip(*(c.to_pylist() for c in batch.columns))

    def status(self) -> str:
        return self._status


# -- sessions -------------------------------------------------------------------------------------------------
class WmlSession(DuckDBSession):
    """One client: a cursor with warehouse-ml installed; statements go through the front door."""

    def __init__(self, cursor, read_only: bool):
        self.read_only = read_only
        super().__init__(cursor)

    def close(self):
        registry.forget(self._cursor)  # the per-cursor runtime install() made
        try:
            self._cursor.close()
        except duckdb.Error:
            pass

    def rewrite_sql(self, sql: str) -> str:
        sql = _PG_CATALOG_FN.sub(lambda m: m.group(1) + "(", sql)  # psql \dt, \d: DuckDB has these outside pg_catalog
        return super().rewrite_sql(sql)

    def execute_sql(self, sql: str, params=None) -> QueryResult:
        from ..frontdoor import run

        sql = self.rewrite_sql(sql.strip())
        if not sql.strip().rstrip(";").strip():
            return ArrowResult(status="SET" if sql == "" else "")
        if _TXN_BEGIN.match(sql):
            self._cursor.execute("BEGIN TRANSACTION")
            self.in_txn = True
            return ArrowResult(status="BEGIN")
        if _TXN_END.match(sql):
            word = _TXN_END.match(sql).group(1).upper()
            if self.in_txn:
                self._cursor.execute("COMMIT" if word in ("COMMIT", "END") else "ROLLBACK")
            self.in_txn = False
            return ArrowResult(status="COMMIT" if word in ("COMMIT", "END") else "ROLLBACK")
        if self.read_only and _TRAINING.search(sql):
            raise PermissionError(f"training and model changes are refused: {_READ_ONLY_HINT}")
        started = time.perf_counter()
        try:
            cur = run(self._cursor, sql, list(params) if params else None)
            log.info("server: ran in %.2fs: %s", time.perf_counter() - started, " ".join(sql.split())[:200])
        except duckdb.Error as e:
            if self.read_only and "read-only" in str(e):
                raise PermissionError(f"{str(e).split(': ', 1)[-1]} ({_READ_ONLY_HINT})") from None
            raise
        if cur.description is None:
            return ArrowResult(status=_command_tag(sql))
        word = sql.split(None, 1)[0].upper()
        if word in _DML_TAGS and len(cur.description) == 1 and cur.description[0][0] == "Count":
            n = cur.fetchone()
            return ArrowResult(status=_DML_TAGS[word].format(n=n[0] if n else 0))  # as PostgreSQL: a tag, no rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Arrow output on a DB-API result makes an extra copy": batches only
            reader = cur.to_arrow_reader(BATCH_ROWS)
        return ArrowResult(reader)


_DML_TAGS = {"INSERT": "INSERT 0 {n}", "UPDATE": "UPDATE {n}", "DELETE": "DELETE {n}", "CREATE": "SELECT {n}",
             "COPY": "COPY {n}", "MERGE": "MERGE {n}"}


def _command_tag(sql: str) -> str:
    word = (sql.split(None, 1) or ["OK"])[0].upper()
    return {"INSERT": "INSERT 0 0", "UPDATE": "UPDATE 0", "DELETE": "DELETE 0"}.get(word, word)


class WmlConnection(DuckDBConnection):
    def __init__(self, db, read_only: bool):
        super().__init__(db)
        self.read_only = read_only
        self._lock = threading.Lock()

    def parameters(self):
        return {"server_version": "14.0 (warehouse-ml on DuckDB)", "client_encoding": "UTF8", "DateStyle": "ISO",
                "integer_datetimes": "on", "standard_conforming_strings": "on"}

    def new_session(self):
        with self._lock:
            cursor = self.db.cursor()
        registry.install(cursor)  # macros on this cursor, and a runtime so linear models compile to SQL
        cursor.execute("CREATE OR REPLACE TEMP MACRO pg_get_userbyid(oid) AS 'duckdb'")  # for psql \dt
        return WmlSession(cursor, self.read_only)


# -- protocol -------------------------------------------------------------------------------------------------
class _AuthFailed(Exception):
    pass


class WmlContext(bvpg.BVContext):
    def describe_statement(self, name: str) -> QueryResult:
        """Row description of a prepared statement without running it: queries run under LIMIT 0 with NULL
        parameters; other statements are not run at all (they describe no rows)."""
        sql, param_oids = self.stmts[name]
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "("):
            return ArrowResult(status="")
        params = [None] * len(param_oids)
        return self.execute_sql(f"SELECT * FROM ({sql.rstrip().rstrip(';')}) AS described LIMIT 0", params)


_TEXT_PARAM = {
    16: lambda s: s.lower() in ("t", "true", "1", "yes", "on"),
    20: int, 21: int, 23: int, 26: int,
    700: float, 701: float, 1700: decimal.Decimal,
}


class WmlHandler(bvpg.BuenaVistaHandler):
    wbufsize = 1 << 16  # buffered writes; flushed whenever the client waits for us

    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.r = bvpg.BVBuffer(self.rfile)
        ctx = None
        try:
            ctx = self.handle_startup(self.server.conn)
            if ctx:
                self.server.ctxts[ctx.process_id] = ctx
            while ctx:
                type_code = self.r.read_byte()
                if not type_code or type_code == bvpg.ClientCommand.TERMINATE:
                    break
                msglen = self.r.read_uint32()
                payload = self.r.read_bytes(msglen - 4) if msglen > 4 else None
                if not ctx.authenticated:
                    if type_code != bvpg.ClientCommand.PASSWORD_MESSAGE:
                        raise _AuthFailed("expected a password message")
                    self.handle_md5_password(ctx, payload)
                elif type_code == bvpg.ClientCommand.QUERY:
                    self.handle_query(ctx, payload)
                elif type_code == bvpg.ClientCommand.PARSE:
                    self.handle_parse(ctx, payload)
                elif type_code == bvpg.ClientCommand.BIND:
                    try:
                        self.handle_bind(ctx, payload)
                    except Exception as e:  # a bad parameter fails the statement, not the session
                        self.send_error(e, ctx)
                elif type_code == bvpg.ClientCommand.DESCRIBE:
                    self.handle_describe(ctx, payload)
                elif type_code == bvpg.ClientCommand.EXECUTE:
                    self.handle_execute(ctx, payload)
                elif type_code == bvpg.ClientCommand.CLOSE:
                    self.handle_close(ctx, payload)
                elif type_code == bvpg.ClientCommand.SYNC:
                    ctx.sync()
                    self.send_ready_for_query(ctx)
                elif type_code == bvpg.ClientCommand.FLUSH:
                    self.wfile.flush()
                else:
                    raise ValueError(f"unsupported message type {type_code!r}")
        except _AuthFailed:
            pass  # the error was sent; close the connection
        except (ConnectionError, OSError):
            pass  # the client went away
        except Exception as e:
            log.exception("server session failed")
            try:
                self.send_error(e)
            except OSError:
                pass
        finally:
            if ctx:
                self.server.conn.close_session(ctx.session)
                self.server.ctxts.pop(ctx.process_id, None)

    def handle_startup(self, conn):
        msglen = self.r.read_uint32() - 4
        code = self.r.read_uint32()
        if code == 80877103 or code == 80877104:  # SSL or GSSAPI encryption request: not supported, go on in clear
            self.wfile.write(b"N")
            self.wfile.flush()
            return self.handle_startup(conn)
        if code == 196608:  # protocol 3.0
            msg = [x.decode("utf-8") for x in self.r.read_bytes(msglen - 4).split(bvpg.NULL_BYTE)]
            params = dict(zip(msg[::2], msg[1::2]))
            ctx = WmlContext(conn.create_session(), self.server.rewriter, params)
            self.send_auth_request(ctx)
            return ctx
        if code == 80877102:  # cancel request: interrupt the running query of that session
            process_id, secret_key = self.r.read_uint32(), self.r.read_uint32()
            target = self.server.ctxts.get(process_id)
            if target and target.secret_key == secret_key:
                try:
                    target.session.cursor().interrupt()
                except duckdb.Error:
                    pass
            return None
        raise ValueError(f"unsupported startup message {code}")

    def send_authentication_md5(self, ctx):
        super().send_authentication_md5(ctx)
        self.wfile.flush()

    def handle_md5_password(self, ctx, payload: bytes):
        client_side = payload.decode("utf-8").rstrip("\x00")
        user = ctx.params.get("user", "")
        first = hashlib.md5(self.server.password.encode("utf-8") + user.encode("utf-8")).hexdigest()
        expected = "md5" + hashlib.md5(first.encode("utf-8") + ctx.salt).hexdigest()
        if client_side != expected:
            self._error(f'password authentication failed for user "{user}": the password does not match the one '
                        "the server was started with (--password)", "28P01", "FATAL")
            self.wfile.flush()
            raise _AuthFailed()
        self.send_authentication_ok()
        self.handle_post_auth(ctx)

    def handle_bind(self, ctx, payload: bytes):
        """buenavista's bind, with text parameters converted by their type OID (psycopg sends text)."""
        ba = bytearray(payload)
        portal_idx = ba.index(bvpg.NULL_BYTE)
        portal = ba[:portal_idx].decode("utf-8")
        stmt_idx = ba.index(bvpg.NULL_BYTE, portal_idx + 1)
        stmt = ba[portal_idx + 1: stmt_idx].decode("utf-8")
        buf = bvpg.BVBuffer(io.BytesIO(ba[stmt_idx + 1:]))
        formats = [buf.read_int16() for _ in range(buf.read_int16())]
        n = buf.read_int16()
        formats = (formats or [0]) * n if len(formats) < n else formats
        oids = ctx.stmts[stmt][1]
        params = []
        for i in range(n):
            size = buf.read_int32()
            if size < 0:
                params.append(None)
                continue
            raw = buf.read_bytes(size)
            oid = oids[i] if i < len(oids) else 0
            if formats[i] == 0:
                text = raw.decode("utf-8")
                params.append(_TEXT_PARAM.get(oid, str)(text))
            else:
                known = bvpg.TYPE_OIDS.get(oid)
                if not known or not known[1]:
                    raise InvalidArgument(f"parameter ${i + 1}", f"binary parameters of type OID {oid} are not supported",
                                          "Send parameters in text format (psycopg's default)")
                params.append(struct.unpack(known[1], raw)[0])
        result_formats = [buf.read_int16() for _ in range(buf.read_int16())]
        ctx.add_portal(portal, stmt, params, result_formats)
        self.send_bind_complete()

    def send_data_rows(self, query_result: QueryResult, limit: int = 0) -> int:
        ncols = query_result.column_count()
        fmts = query_result.result_format or []
        convs = []
        for i in range(ncols):
            bvtype = query_result.column(i)[1]
            binary = i < len(fmts) and fmts[i] == 1
            pg = bvpg.BVTYPE_TO_PGTYPE.get(bvtype)
            if binary and pg is not None and len(pg) > 2 and pg[2] is not None:
                convs.append((pg[2], False))
            else:
                convs.append((TEXT_OUT.get(bvtype, str), True))
        head = bvpg.ServerResponse.DATA_ROW
        pack_int = struct.Struct("!i").pack
        null = pack_int(-1)
        out = self.wfile
        count = 0
        for row in query_result.rows():
            parts = []
            for v, (conv, text) in zip(row, convs):
                if v is None:
                    parts.append(null)
                else:
                    b = conv(v)
                    if text:
                        b = b.encode("utf-8")
                    parts.append(pack_int(len(b)))
                    parts.append(b)
            body = b"".join(parts)
            out.write(head + struct.pack("!ih", len(body) + 6, ncols) + body)
            count += 1
            if limit > 0 and count >= limit:
                break
        return count

    def send_row_description(self, query_result: QueryResult):
        # text results are sent for types without a binary converter: say so in the description
        fmts = query_result.result_format
        if fmts:
            fixed = []
            for i in range(query_result.column_count()):
                pg = bvpg.BVTYPE_TO_PGTYPE.get(query_result.column(i)[1])
                ok = pg is not None and len(pg) > 2 and pg[2] is not None
                fixed.append(fmts[i] if i < len(fmts) and ok else 0)
            query_result.result_format = fixed
        super().send_row_description(query_result)

    def send_error(self, exception, ctx=None):
        text = str(exception)
        if isinstance(exception, PermissionError):
            code = "25006"  # read_only_sql_transaction
        elif isinstance(exception, duckdb.ParserException):
            code = "42601"
        elif isinstance(exception, (duckdb.CatalogException, duckdb.BinderException)):
            code = "42P01" if "does not exist" in text else "42703"
        elif isinstance(exception, WmlError) or "Python exception occurred while executing the UDF" in text:
            code = "22023"  # invalid_parameter_value
        else:
            code = "XX000"
        self._error(text, code)
        if ctx:
            ctx.mark_error()

    def _error(self, message: str, code: str, severity: str = "ERROR"):
        buf = bvpg.BVBuffer()
        for field, value in ((b"S", severity), (b"V", severity), (b"C", code), (b"M", message)):
            buf.write_byte(field)
            buf.write_string(value)
        buf.write_byte(bvpg.NULL_BYTE)
        body = buf.get_value()
        self.wfile.write(struct.pack("!ci", bvpg.ServerResponse.ERROR_RESPONSE, len(body) + 4) + body)
        log.info("server: %s", message)

    def send_ready_for_query(self, ctx):
        super().send_ready_for_query(ctx)
        self.wfile.flush()


class WmlServer(bvpg.BuenaVistaServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, conn: WmlConnection, password: str | None = None):
        socketserver.ThreadingTCPServer.__init__(self, address, WmlHandler)
        self.conn = conn
        self.rewriter = None
        self.extensions = {}
        self.ctxts = {}
        self.password = password
        self.auth = None if password is None else {"*": password}
        self.loopback_only = _is_loopback(address[0])

    def verify_request(self, request, client_address) -> bool:
        return (not self.loopback_only) or _is_loopback(client_address[0])


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def open_database(db: str, allow_writes: bool = False) -> duckdb.DuckDBPyConnection:
    if db != ":memory:" and not os.path.exists(db):
        raise ServerError(f"argument 'db': no DuckDB file at {db!r}. Create one first, e.g. "
                          f"`warehouse-ml demo --db {db}`, or pass the path of an existing database")
    try:
        con = duckdb.connect(db, read_only=not allow_writes and db != ":memory:",
                             config={"enable_external_access": False})
    except duckdb.IOException as e:
        raise ServerError(f"argument 'db': could not open {db!r}: {e}. If another process has it open for "
                          "writing, stop it or serve a copy") from None
    return registry.install(con)


def create_server(db: str | duckdb.DuckDBPyConnection, host: str = "127.0.0.1", port: int = 5433,
                  allow_writes: bool = False, password: str | None = None) -> WmlServer:
    """A server (not yet serving) for a DuckDB file or an open connection. ``port=0`` picks a free port;
    ``server.server_address`` says which. Call ``serve_forever()`` (e.g. in a thread) and ``shutdown()``."""
    if not _is_loopback(host) and not password:
        raise ServerError(f"argument '--host': {host} accepts connections from other machines, and this server has "
                          "no TLS. Pass --password as well (and prefer an SSH tunnel), or keep --host 127.0.0.1")
    if password is not None and not password:
        raise ServerError("argument '--password': is empty. Pass a non-empty password, or leave the option out")
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else open_database(db, allow_writes)
    if isinstance(db, duckdb.DuckDBPyConnection):
        registry.install(con)
    try:
        server = WmlServer((host, int(port)), WmlConnection(con, read_only=not allow_writes), password=password)
    except OSError as e:
        if not isinstance(db, duckdb.DuckDBPyConnection):
            con.close()
        if e.errno == errno.EADDRINUSE:
            raise ServerError(f"argument '--port': port {port} on {host} is already in use (another server, perhaps "
                              f"PostgreSQL itself). Pick a free one, e.g. --port {int(port) + 1}") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ServerError(f"argument '--port': not allowed to listen on port {port}. Use a port above 1024") from None
        if e.errno == errno.EADDRNOTAVAIL or isinstance(e, socket.gaierror):
            raise ServerError(f"argument '--host': {host} is not an address of this machine. Use 127.0.0.1") from None
        raise
    server.db = con
    server.owns_db = not isinstance(db, duckdb.DuckDBPyConnection)
    return server


def serve(db: str, host: str = "127.0.0.1", port: int = 5433, allow_writes: bool = False,
          password: str | None = None, out=None) -> None:
    """Run the server until interrupted (Ctrl-C)."""
    import sys

    out = out or sys.stdout
    server = create_server(db, host, port, allow_writes, password)
    h, p = server.server_address[:2]
    mode = "read-write" if allow_writes else "read-only"
    auth = "password required" if password else "no password"
    print(f"warehouse-ml: serving {db} ({mode}, {auth}) on postgresql://{h}:{p}/  (Ctrl-C stops)\n"
          f"  psql -h {h} -p {p} -c \"SELECT user_id, predict_churn(*) FROM churn_features LIMIT 5\"",
          file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if server.owns_db:
            server.db.close()
