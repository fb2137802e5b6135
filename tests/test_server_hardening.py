"""`warehouse-ml serve` under careless and hostile clients: authentication before any session, limits on
connections, startup size, idle and statement time, dropped clients, TLS, reader and writer roles."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from .pgserver import make_shop, psql, rss_kib, serve

psycopg = pytest.importorskip("psycopg", reason="needs psycopg (pip install 'psycopg[binary]')")

LONG_QUERY = "SELECT count(*) FROM range(200000) a, range(200000) b WHERE (a.range * b.range) % 7 = 3"


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    return make_shop(str(tmp_path_factory.mktemp("hardening") / "shop.duckdb"))


@pytest.fixture(scope="module")
def plain(shop_db):
    """A read-only server with default settings: (process, port)."""
    with serve(shop_db) as server:
        yield server


def _connect(port: int, **kw):
    kw.setdefault("sslmode", "disable")
    return psycopg.connect(host="127.0.0.1", port=port, user=kw.pop("user", "analyst"), dbname="shop",
                           connect_timeout=10, autocommit=True, **kw)


def _sessions(port: int, **kw) -> int:
    with _connect(port, **kw) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]


def _startup_packet(user: str = "analyst") -> bytes:
    body = struct.pack("!i", 196608) + b"user\x00" + user.encode() + b"\x00database\x00shop\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


def test_no_session_before_authentication_and_a_deadline_for_it(shop_db):
    with serve(shop_db, "--password", "s3cret", "--auth-timeout", "3") as (proc, port):
        _sessions(port, password="s3cret")
        rss_before = rss_kib(proc.pid)
        half_open = []
        for _ in range(40):  # each sends a valid startup packet and never answers the password challenge
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(_startup_packet())
            half_open.append(s)
        for s in half_open:
            assert s.recv(1) == b"R"  # the SCRAM challenge
        assert _sessions(port, password="s3cret") == 1, "no DuckDB session exists for unauthenticated clients"
        assert rss_kib(proc.pid) - rss_before < 40_000
        time.sleep(4)
        for s in half_open:  # past --auth-timeout the server hangs up
            s.settimeout(5)
            while s.recv(4096):
                pass
            s.close()


@pytest.mark.parametrize("payload", [
    struct.pack("!i", 2**31 - 1) + b"\x00" * 8,  # a startup packet that claims 2 GB
    struct.pack("!i", 8),  # truncated
    os.urandom(64),  # garbage
    _startup_packet()[:-3],  # cut short
])
def test_malformed_startup_is_refused_cheaply(plain, payload):
    proc, port = plain
    vm_before = rss_kib(proc.pid)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(15)
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
    s.close()
    assert answer == b"" or answer.startswith(b"E")  # a FATAL error or nothing, then the connection closes
    assert rss_kib(proc.pid) - vm_before < 20_000
    assert _sessions(port) == 1


def test_connection_limit_idle_and_statement_timeouts(shop_db):
    with serve(shop_db, "--max-connections", "2", "--idle-timeout", "3", "--statement-timeout", "4") as (_, port):
        a, b = _connect(port), _connect(port)
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            _connect(port)
        a.close()
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            b.execute(LONG_QUERY)
        assert time.perf_counter() - started < 20
        b.execute("SET statement_timeout = '1s'")  # a client may ask for less, never for more
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled):
            b.execute(LONG_QUERY)
        assert time.perf_counter() - started < 4
        time.sleep(4.5)  # idle past --idle-timeout: the server hangs up
        with pytest.raises(psycopg.OperationalError):
            b.execute("SELECT 1")
        b.close()
        assert _connect(port).execute("SELECT 1").fetchone() == (1,)


def test_a_dropped_client_s_query_is_interrupted(plain):
    port = plain[1]
    client = subprocess.Popen([sys.executable, "-c", (
        "import psycopg,sys; c = psycopg.connect(host='127.0.0.1', port=int(sys.argv[1]), user='gone', "
        f"dbname='shop', sslmode='disable'); c.execute('{LONG_QUERY}')"), str(port)])
    deadline = time.monotonic() + 30
    with _connect(port) as watcher:
        while time.monotonic() < deadline:
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gone' "
                               "AND state = 'active'").fetchone()[0]:
                break
            time.sleep(0.2)
        client.kill()
        client.wait(10)
        killed = time.monotonic()
        while time.monotonic() - killed < 15:
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'gone'").fetchone()[0] == 0:
                break
            time.sleep(0.2)
        assert time.monotonic() - killed < 15, "the dropped client's query kept running"


def test_tls_with_psql_sslmode_require(shop_db, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    with serve(shop_db, "--tls-cert", cert, "--tls-key", key, "--password", "s3cret") as (_, port):
        r = psql(port, r"\conninfo", "SELECT count(*) FROM users", password="s3cret", sslmode="require")
        assert r.returncode == 0, r.stderr
        assert "SSL connection" in r.stdout and r.stdout.strip().endswith("800")
        # psycopg over TLS in its own interpreter, as a user runs it: libpq's OpenSSL must not meet the one that
        # TensorFlow loads into the test process (that aborts the process)
        check = subprocess.run([sys.executable, "-c", (
            "import psycopg, sys; c = psycopg.connect(host='127.0.0.1', port=int(sys.argv[1]), user='bi', "
            "password='s3cret', dbname='shop', sslmode='require'); "
            "print(c.pgconn.ssl_in_use, c.execute('SELECT count(*) FROM big').fetchone()[0])"), str(port)],
            capture_output=True, text=True, timeout=60)
        assert check.stdout.split() == ["True", "2000"], check.stderr
        bad = psql(port, "SELECT 1", password="wrong", sslmode="require")
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr


def test_sslmode_require_without_a_certificate_is_refused(plain):
    r = psql(plain[1], "SELECT 1", sslmode="require")  # as by PostgreSQL without ssl = on
    assert r.returncode != 0 and "SSL" in r.stderr


def test_reader_and_writer_roles_from_a_users_file(tmp_path):
    shop_db = make_shop(str(tmp_path / "writable.duckdb"))  # its own file: a writer needs it exclusively
    users = str(tmp_path / "users.txt")
    for name, role, password in [("ann", "reader", "reader-pass"), ("wes", "writer", "writer-pass")]:
        r = subprocess.run([sys.executable, "-m", "warehouse_ml.cli", "serve-user", users, name, "--role", role],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ, WML_SERVER_PASSWORD=password))
        assert r.returncode == 0, r.stderr
    text = open(users).read()
    assert "reader-pass" not in text and "writer-pass" not in text and text.count("SCRAM-SHA-256$") == 2
    assert oct(os.stat(users).st_mode & 0o777) == "0o600"
    train = "SELECT version FROM train_churn('users', algorithm := 'logistic')"
    with serve(shop_db, "--users", users, "--allow-writes") as (_, port):
        reader = psql(port, "SELECT count(*) FROM users", train, user="ann", password="reader-pass")
        assert reader.stdout.strip() == "800" and reader.returncode != 0 and "read-only" in reader.stderr
        writer = psql(port, train, user="wes", password="writer-pass")
        assert writer.returncode == 0 and writer.stdout.strip() == "2", writer.stderr
        for user, password in [("ann", "writer-pass"), ("nobody", "reader-pass")]:
            bad = psql(port, "SELECT 1", user=user, password=password)
            assert bad.returncode != 0 and "password authentication failed" in bad.stderr
