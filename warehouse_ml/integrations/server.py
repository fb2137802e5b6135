"""``warehouse-ml serve shop.duckdb``: the database over the PostgreSQL wire protocol, for BI tools and psql.

Our own implementation of the protocol (``pgwire/``), so that what JDBC, SQLAlchemy, psycopg and psql send is
answered: streaming with fetch sizes, binary parameters and results, SQL cursors, the ``pg_catalog`` they read,
TLS, SCRAM authentication, cancel requests and limits. Every client session is a cursor of one DuckDB connection
with every warehouse-ml function installed, and its statements go through the front door
(``SELECT user_id, predict_churn(*) FROM users`` and BigQuery ML statements work as written).

* Read-only by default: the file is opened read-only, and every statement is classified by DuckDB's parser before
  it runs: writes, training and model changes are refused at once. ``allow_writes=True`` opens it read-write;
  with a users file, only users with the ``writer`` role may then write.
* A client changes only its own session: instance-wide settings (``memory_limit``, ``threads``, ...) are refused.
* File system access from SQL (``read_csv('/etc/...')``, ``COPY ... TO``, ``ATTACH``) is disabled.
* Listening beyond 127.0.0.1 needs credentials (``--password`` or ``--users``) and TLS (``--tls-cert/--tls-key``).
"""
from __future__ import annotations

import errno
import os
import socket
import ssl
import sys

import duckdb

from .. import wiring
from ..errors import WmlError
from .pgwire.auth import read_users
from .pgwire.wire import Limits, PgServer, is_loopback

__all__ = ["Limits", "ServerError", "create_server", "open_database", "serve"]


class ServerError(WmlError):
    """A problem starting the server (port in use, unsafe host, missing database, bad TLS or users file)."""


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
    return wiring.install(con)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServerError("arguments '--tls-cert' and '--tls-key': pass both (a PEM certificate and its private key)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ServerError(f"argument '--tls-cert'/'--tls-key': could not load {cert!r} with {key!r}: {e}. "
                          "Pass a PEM certificate and the matching unencrypted PEM key") from None
    return ctx


def create_server(db: str | duckdb.DuckDBPyConnection, host: str = "127.0.0.1", port: int = 5433,
                  allow_writes: bool = False, password: str | None = None, *, users_file: str | None = None,
                  tls_cert: str | None = None, tls_key: str | None = None, limits: Limits | None = None) -> PgServer:
    """A server (not yet serving) for a DuckDB file or an open connection. ``port=0`` picks a free port;
    ``server.server_address`` says which. Call ``serve_forever()`` (e.g. in a thread) and ``shutdown()``."""
    if password is not None and not password:
        raise ServerError("argument '--password': is empty. Pass a non-empty password, or leave the option out")
    if password is not None and users_file:
        raise ServerError("arguments '--password' and '--users': pass one of them (a users file can hold any "
                          "number of users)")
    users = None
    if users_file:
        try:
            users = read_users(users_file)
        except (OSError, ValueError) as e:
            raise ServerError(f"argument '--users': {e}") from None
    tls = tls_context(tls_cert, tls_key)
    if not is_loopback(host) and (not (password or users) or tls is None):
        raise ServerError(f"argument '--host': {host} accepts connections from other machines, so the server needs "
                          "credentials (--password or --users) and TLS (--tls-cert and --tls-key). Pass them, "
                          "or keep --host 127.0.0.1 (and reach it through an SSH tunnel)")
    limits = limits or Limits()
    if limits.max_connections < 1:
        raise ServerError("argument '--max-connections': must be at least 1")
    owned = not isinstance(db, duckdb.DuckDBPyConnection)
    con = open_database(db, allow_writes) if owned else wiring.install(db)
    try:
        server = PgServer((host, int(port)), con, allow_writes, password=password, users=users, tls=tls, limits=limits)
    except OSError as e:
        if owned:
            con.close()
        if e.errno == errno.EADDRINUSE:
            raise ServerError(f"argument '--port': port {port} on {host} is already in use (another server, perhaps "
                              f"PostgreSQL itself). Pick a free one, e.g. --port {int(port) + 1}") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ServerError(f"argument '--port': not allowed to listen on port {port}. Use a port above 1024") from None
        if e.errno == errno.EADDRNOTAVAIL or isinstance(e, socket.gaierror):
            raise ServerError(f"argument '--host': {host} is not an address of this machine. Use 127.0.0.1") from None
        raise
    server.owns_db = owned
    return server


def serve(db: str, host: str = "127.0.0.1", port: int = 5433, allow_writes: bool = False,
          password: str | None = None, out=None, **options) -> None:
    """Run the server until interrupted (Ctrl-C or SIGTERM)."""
    import signal

    out = out or sys.stdout
    server = create_server(db, host, port, allow_writes, password, **options)
    h, p = server.server_address[:2]
    mode = "read-write" if allow_writes else "read-only"
    auth = ("users from " + options["users_file"]) if options.get("users_file") else (
        "password required" if password else "no password")
    tls = "TLS" if server.tls else "no TLS"
    print(f"warehouse-ml: serving {db} ({mode}, {auth}, {tls}) on postgresql://{h}:{p}/  (Ctrl-C stops)\n"
          f"  psql -h {h} -p {p} -c \"SELECT user_id, predict_churn(*) FROM churn_features LIMIT 5\"",
          file=out, flush=True)

    def stop(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        if server.owns_db:
            server.db.close()
