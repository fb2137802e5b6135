"""The PostgreSQL v3 wire protocol over TCP (and TLS): startup, authentication, simple and extended queries,
cancel requests, with the limits a server facing careless or hostile clients needs.

Order of events for a connection: a thread is given only while fewer than ``2 * max_connections`` handshakes and
sessions exist; the startup packet (at most 10,000 bytes, as PostgreSQL) and authentication must complete within
``startup_timeout`` seconds; only then is a DuckDB session built, and only while fewer than ``max_connections``
sessions exist. A watchdog interrupts statements that run past ``statement_timeout`` or whose client went away.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import secrets
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
from dataclasses import dataclass

import duckdb

from .auth import ScramExchange, User, Verifier
from .policy import Refused, classify
from .session import Portal, QueryError, Session, row_description, sqlstate_for
from .sqltext import parameter_count, split_statements
from .types import decode_parameter

log = logging.getLogger("warehouse_ml")

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
MAX_STARTUP_BYTES = 10_000
MAX_NAMED = 10_000  # prepared statements, portals or cursors one session may hold
ROWS_PER_WRITE = 1000


@dataclass
class Limits:
    max_connections: int = 64
    startup_timeout: float = 10.0  # seconds for the startup packet and authentication together
    idle_timeout: float = 3600.0  # seconds a client may send nothing (0: no limit)
    statement_timeout: float = 3600.0  # seconds a statement may run (0: no limit; clients may set a lower one)
    max_message_bytes: int = 64 << 20


class ProtocolViolation(Exception):
    """The client broke the protocol; the connection is closed after a FATAL error."""


class _Closed(Exception):
    pass


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class PgServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, db: duckdb.DuckDBPyConnection, allow_writes: bool, *, password: str | None = None,
                 users: dict[str, User] | None = None, tls: ssl.SSLContext | None = None, limits: Limits | None = None):
        self._stop = threading.Event()
        super().__init__(address, PgHandler)
        self.db = db
        self.db_lock = threading.Lock()
        self.allow_writes = allow_writes
        self.password_verifier = None
        if password is not None:
            from .auth import make_verifier
            self.password_verifier = make_verifier(password)  # the clear password is not kept
        self.users = users
        self.tls = tls
        self.limits = limits or Limits()
        self.loopback_only = is_loopback(address[0])
        self._lock = threading.Lock()
        self.handlers = 0
        self.sessions: dict[int, PgHandler] = {}
        self._pids = itertools.count(1000)
        self._watchdog = threading.Thread(target=self._watch, name="wml-server-watchdog", daemon=True)
        self._watchdog.start()

    # -- admission ----------------------------------------------------------------------------------------------
    def verify_request(self, request, client_address) -> bool:
        if self.loopback_only and not is_loopback(client_address[0]):
            return False
        with self._lock:
            if self.handlers >= 2 * self.limits.max_connections:
                return False  # closed at once: no thread, no buffer
            self.handlers += 1
        return True

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.handlers -= 1

    def register(self, handler) -> int | None:
        with self._lock:
            if len(self.sessions) >= self.limits.max_connections:
                return None
            pid = next(self._pids)
            self.sessions[pid] = handler
            return pid

    def unregister(self, pid: int) -> None:
        with self._lock:
            self.sessions.pop(pid, None)

    def activity(self) -> list[tuple]:
        """(pid, user, application, state, query, started) of every session, for pg_stat_activity."""
        with self._lock:
            handlers = list(self.sessions.items())
        out = []
        for pid, h in handlers:
            s = h.session
            if s is not None:
                out.append((pid, s.user, s.params.get("application_name", ""),
                            "active" if s.busy_since is not None else ("idle in transaction" if s.in_txn else "idle"),
                            s.last_statement, h.started))
        return out

    def cancel(self, pid: int, secret: int) -> None:
        with self._lock:
            handler = self.sessions.get(pid)
        if handler is not None and handler.session is not None and secrets.compare_digest(
                struct.pack("!i", handler.secret), struct.pack("!i", secret)):
            handler.session.interrupt("canceling statement due to user request")

    # -- watchdog -----------------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Interrupt statements past their time limit or whose client disconnected."""
        while not self._stop.wait(0.25):
            with self._lock:
                handlers = list(self.sessions.values())
            now = time.monotonic()
            for h in handlers:
                s = h.session
                since = s.busy_since if s is not None else None
                if since is None:
                    continue
                limit = s.statement_timeout()
                if limit and now - since > limit:
                    s.interrupt(f"canceling statement due to statement timeout ({limit:g} s)")
                elif h.peer_closed():
                    s.interrupt("the client disconnected")

    def server_close(self):
        self._stop.set()
        super().server_close()


class PgHandler(socketserver.BaseRequestHandler):
    server: PgServer

    def setup(self):
        self.sock: socket.socket = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.raw_fd = self.sock.fileno()
        self.rfile = self.sock.makefile("rb")
        self.out: list[bytes] = []
        self.out_size = 0
        self.session: Session | None = None
        self.pid: int | None = None
        self.secret = secrets.randbits(31)
        self.skipping = False
        self.bound: dict[str, tuple] = {}
        self.tls_active = False
        self.started = time.time()

    # -- io -----------------------------------------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise _Closed()
        return data

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.out.append(kind + struct.pack("!i", len(payload) + 4) + payload)
        self.out_size += len(payload) + 5
        if self.out_size > 1 << 16:
            self.flush()

    def send_raw(self, data: bytes) -> None:
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out, self.out_size = [], 0
            self.sock.sendall(data)

    def peer_closed(self) -> bool:
        try:
            p = select.poll()
            p.register(self.raw_fd, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
            return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR) for _, ev in p.poll(0))
        except (OSError, ValueError):
            return True

    def error(self, message: str, sqlstate: str, severity: str = "ERROR") -> None:
        fields = [(b"S", severity), (b"V", severity), (b"C", sqlstate), (b"M", message)]
        self.send(b"E", b"".join(k + v.encode("utf-8", "replace") + b"\x00" for k, v in fields) + b"\x00")
        log.info("server: %s %s: %s", severity, sqlstate, message[:300])

    def fatal(self, message: str, sqlstate: str) -> None:
        try:
            self.error(message, sqlstate, "FATAL")
            self.flush()
        except OSError:
            pass

    # -- connection ---------------------------------------------------------------------------------------------
    def handle(self):
        limits = self.server.limits
        try:
            self.sock.settimeout(limits.startup_timeout)
            deadline = time.monotonic() + limits.startup_timeout
            params = self.startup(deadline)
            if params is None:
                return
            user = self.authenticate(params, deadline)
            if user is None:
                return
            self.pid = self.server.register(self)
            if self.pid is None:
                self.fatal("sorry, too many clients already (the server's --max-connections)", "53300")
                return
            read_only = not self.server.allow_writes or (user.role == "reader" if isinstance(user, User) else False)
            name = user.name if isinstance(user, User) else user
            self.session = Session(self.server.db, name, read_only, params, limits.statement_timeout, self.server.db_lock,
                                   activity=self.server.activity)
            self.send(b"R", struct.pack("!i", 0))
            for k, v in self.session.reported_parameters():
                self.send(b"S", k.encode() + b"\x00" + v.encode() + b"\x00")
            self.send(b"K", struct.pack("!ii", self.pid, self.secret))
            self.ready()
            self.loop()
        except ProtocolViolation as e:
            self.fatal(str(e), "08P01")
        except (_Closed, ConnectionError, TimeoutError, socket.timeout, ssl.SSLError, OSError):
            pass  # the client went away, stalled or broke TLS: nothing to tell it
        except Exception as e:  # noqa: BLE001  (a bug must not take the server down)
            log.exception("server: connection failed")
            self.fatal(f"internal error: {e}", "XX000")
        finally:
            if self.pid is not None:
                self.server.unregister(self.pid)
            if self.session is not None:
                self.session.close()
            try:
                self.rfile.close()
            except OSError:
                pass

    def startup(self, deadline: float) -> dict[str, str] | None:
        while True:
            (length,) = struct.unpack("!i", self.read(4))
            if length < 8 or length > MAX_STARTUP_BYTES:
                raise ProtocolViolation(f"invalid startup packet length {length}")
            body = self.read(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code == SSL_REQUEST:
                if self.server.tls is None or self.tls_active:
                    self.sock.sendall(b"N")
                    continue
                self.sock.sendall(b"S")
                self.sock.settimeout(max(0.1, deadline - time.monotonic()))
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
                self.rfile = self.sock.makefile("rb")
                self.tls_active = True
                continue
            if code == GSSENC_REQUEST:
                self.sock.sendall(b"N")
                continue
            if code == CANCEL_REQUEST and length == 16:
                pid, secret = struct.unpack("!ii", body[4:12])
                self.server.cancel(pid, secret)
                return None
            if code >> 16 != 3:
                raise ProtocolViolation(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: this server "
                                        "speaks 3.0")
            items = body[4:].split(b"\x00")
            try:
                params = {k.decode(): v.decode() for k, v in zip(items[0::2], items[1::2]) if k}
            except UnicodeDecodeError:
                raise ProtocolViolation("startup parameters are not UTF-8") from None
            unknown = [k for k in params if k.startswith("_pq_.")]
            if code & 0xFFFF or unknown:
                self.send(b"v", struct.pack("!ii", 0, len(unknown)) + b"".join(k.encode() + b"\x00" for k in unknown))
            if "user" not in params:
                raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
            if self.server.tls is not None and not self.tls_active and not is_loopback(self.client_address[0]):
                self.fatal("this server requires TLS from other machines: connect with sslmode=require", "28000")
                return None
            return params

    def authenticate(self, params: dict[str, str], deadline: float):
        """The User (or the user name when no credentials are configured), or None after a FATAL error."""
        name = params["user"]
        server = self.server
        if server.users is None and server.password_verifier is None:
            return name
        user = server.users.get(name) if server.users is not None else None
        verifier: Verifier | None = user.verifier if user is not None else (
            server.password_verifier if server.users is None else None)
        self.send(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256\x00\x00")
        self.flush()
        scram = ScramExchange(verifier)
        try:
            body = self.expect(b"p")
            mech, _, rest = body.partition(b"\x00")
            if mech != b"SCRAM-SHA-256":
                raise ProtocolViolation("only SCRAM-SHA-256 authentication is offered")
            (size,) = struct.unpack("!i", rest[:4])
            server_first = scram.first(rest[4:4 + size].decode())
            self.send(b"R", struct.pack("!i", 11) + server_first.encode())
            self.flush()
            server_final = scram.final(self.expect(b"p").decode())
        except (ValueError, KeyError, struct.error, UnicodeDecodeError) as e:
            raise ProtocolViolation(f"malformed SCRAM message: {e}") from None
        if server_final is None:
            how = "--users file" if server.users is not None else "--password"
            self.fatal(f'password authentication failed for user "{name}": the user or password does not match '
                       f"the server's {how}", "28P01")
            return None
        self.send(b"R", struct.pack("!i", 12) + server_final.encode())
        return user if user is not None else name

    def expect(self, kind: bytes) -> bytes:
        t = self.read(1)
        (length,) = struct.unpack("!i", self.read(4))
        if length < 4 or length > MAX_STARTUP_BYTES:
            raise ProtocolViolation(f"invalid message length {length} during authentication")
        body = self.read(length - 4)
        if t != kind:
            raise ProtocolViolation(f"expected message {kind!r} during authentication, got {t!r}")
        return body

    def ready(self) -> None:
        self.send(b"Z", self.session.status)
        self.flush()

    # -- messages -----------------------------------------------------------------------------------------------
    def loop(self) -> None:
        limits = self.server.limits
        while True:
            self.sock.settimeout(limits.idle_timeout or None)
            try:
                t = self.read(1)
            except (TimeoutError, socket.timeout):
                self.fatal(f"terminating connection due to idle timeout ({limits.idle_timeout:g} s)", "57P05")
                return
            self.sock.settimeout(60)
            (length,) = struct.unpack("!i", self.read(4))
            if length < 4 or length > limits.max_message_bytes:
                raise ProtocolViolation(f"invalid message length {length} (the limit is {limits.max_message_bytes} "
                                        "bytes)")
            body = self.read(length - 4)
            if t == b"X":
                return
            if self.skipping and t not in (b"S",):
                continue
            try:
                self.dispatch(t, body)
            except (ProtocolViolation, _Closed, OSError):
                raise
            except Exception as e:  # noqa: BLE001  (every failure of a statement is the client's error message)
                self.statement_failed(e)
                if t == b"Q":
                    self.ready()
                else:
                    self.skipping = True

    def statement_failed(self, e: BaseException) -> None:
        if not isinstance(e, (duckdb.Error, Refused, QueryError, ValueError, LookupError)):
            log.exception("server: statement failed")
        if self.session.in_txn:
            self.session.failed_txn = True
        self.error(str(e) or type(e).__name__, sqlstate_for(e))

    def dispatch(self, t: bytes, body: bytes) -> None:
        handler = {b"Q": self.on_query, b"P": self.on_parse, b"B": self.on_bind, b"D": self.on_describe,
                   b"E": self.on_execute, b"C": self.on_close, b"S": self.on_sync, b"H": self.on_flush}.get(t)
        if handler is None:
            if t in (b"d", b"c", b"f", b"F"):
                raise QueryError("COPY and function-call messages are not supported by this server", "0A000")
            raise ProtocolViolation(f"invalid frontend message type {t!r}")
        handler(body)

    def on_flush(self, body: bytes) -> None:
        self.flush()

    def on_sync(self, body: bytes) -> None:
        self.skipping = False
        self.session.end_of_sync()
        self.bound = {k: v for k, v in self.bound.items() if k in self.session.portals}
        self.ready()

    def on_query(self, body: bytes) -> None:
        sql = _cstr(body, 0)[0]
        statements = split_statements(sql)
        if not statements:
            self.send(b"I")
        for text in statements:
            portal = self.session.execute(classify(text), None)
            self.send_result(portal, 0, describe=True)
        self.session.end_of_sync()
        self.ready()

    def send_result(self, portal: Portal, limit: int, describe: bool) -> bool:
        """Rows (up to ``limit``) and the completion of a portal; True when it completed."""
        if not portal.has_rows:
            self.send(b"C", portal.tag.encode() + b"\x00") if portal.tag else self.send(b"I")
            return True
        if describe:
            self.send_raw(row_description(portal.schema, portal.column_formats(), portal.duckdb_types))
        remaining = limit
        while True:
            step = ROWS_PER_WRITE if remaining <= 0 else min(ROWS_PER_WRITE, remaining)
            rows, done = self.session.fetch(portal, step)
            for r in rows:
                self.send_raw(r)
            if remaining > 0:
                remaining -= len(rows)
            if done:
                tag = f"SELECT {portal.sent}" if portal.tag == "SELECT" else portal.tag
                self.send(b"C", tag.encode() + b"\x00")
                return True
            if limit > 0 and remaining <= 0:
                self.send(b"s")  # PortalSuspended: the next Execute continues from here
                return False

    def on_parse(self, body: bytes) -> None:
        name, pos = _cstr(body, 0)
        sql, pos = _cstr(body, pos)
        (n,) = struct.unpack_from("!h", body, pos)
        oids = list(struct.unpack_from(f"!{n}I", body, pos + 2)) if n > 0 else []
        if name not in self.session.prepared and len(self.session.prepared) >= MAX_NAMED:
            raise QueryError(f"this session holds {MAX_NAMED} prepared statements; close some first", "54000")
        self.session.prepared[name] = self.session.prepare(sql, oids)
        self.send(b"1")

    def on_bind(self, body: bytes) -> None:
        portal_name, pos = _cstr(body, 0)
        stmt_name, pos = _cstr(body, pos)
        prep = self.session.prepared.get(stmt_name)
        if prep is None:
            raise QueryError(f'prepared statement "{stmt_name}" does not exist', "26000")
        (nf,) = struct.unpack_from("!h", body, pos)
        pos += 2
        fmts = list(struct.unpack_from(f"!{nf}h", body, pos))
        pos += 2 * nf
        (n,) = struct.unpack_from("!h", body, pos)
        pos += 2
        fmts = fmts * n if len(fmts) == 1 else (fmts or [0] * n)
        params = []
        for i in range(n):
            (size,) = struct.unpack_from("!i", body, pos)
            pos += 4
            if size < 0:
                params.append(None)
                continue
            raw = body[pos:pos + size]
            pos += size
            oid = prep.param_oids[i] if i < len(prep.param_oids) else 0
            try:
                params.append(decode_parameter(raw, oid, fmts[i] == 1))
            except (ValueError, struct.error, IndexError, ArithmeticError) as e:
                raise QueryError(f"parameter ${i + 1}: {e}", "22P02") from None
        (nr,) = struct.unpack_from("!h", body, pos)
        result_formats = list(struct.unpack_from(f"!{nr}h", body, pos + 2))
        self.session.portals.pop(portal_name, None)
        if portal_name not in self.bound and len(self.bound) + len(self.session.portals) >= MAX_NAMED:
            raise QueryError(f"this session holds {MAX_NAMED} portals; close some first", "54000")
        self.bound[portal_name] = (prep, params, result_formats)
        self.send(b"2")

    def portal(self, name: str) -> Portal:
        """The portal, run now if it was only bound (Describe or the first Execute runs it)."""
        portal = self.session.portals.get(name)
        if portal is not None:
            return portal
        if name not in self.bound:
            raise QueryError(f'portal "{name}" does not exist', "34000")
        prep, params, formats = self.bound.pop(name)
        portal = self.session.execute(prep.stmt, params, formats)
        if prep.stmt.kind == "EMPTY":
            portal.tag = ""
        self.session.portals[name] = portal
        return portal

    def on_describe(self, body: bytes) -> None:
        kind, name = body[:1], _cstr(body, 1)[0]
        if kind == b"S":
            prep = self.session.prepared.get(name)
            if prep is None:
                raise QueryError(f'prepared statement "{name}" does not exist', "26000")
            n = max(len(prep.param_oids), parameter_count(prep.sql))
            oids = [(prep.param_oids[i] if i < len(prep.param_oids) and prep.param_oids[i] else 25) for i in range(n)]
            self.send(b"t", struct.pack(f"!h{n}I", n, *oids))
            described = self.session.describe_statement(prep)
            if described is None:
                self.send(b"n")
            else:
                schema, duckdb_types = described
                self.send_raw(row_description(schema, [0] * len(schema), duckdb_types))
            return
        portal = self.portal(name)
        if portal.has_rows:
            self.send_raw(row_description(portal.schema, portal.column_formats(), portal.duckdb_types))
        else:
            self.send(b"n")

    def on_execute(self, body: bytes) -> None:
        name, pos = _cstr(body, 0)
        (limit,) = struct.unpack_from("!i", body, pos)
        portal = self.portal(name)
        self.send_result(portal, max(0, limit), describe=False)

    def on_close(self, body: bytes) -> None:
        kind, name = body[:1], _cstr(body, 1)[0]
        if kind == b"S":
            self.session.prepared.pop(name, None)
        else:
            self.session.portals.pop(name, None)
            self.bound.pop(name, None)
        self.send(b"3")


def _cstr(body: bytes, pos: int) -> tuple[str, int]:
    end = body.index(b"\x00", pos)
    return body[pos:end].decode("utf-8"), end + 1
