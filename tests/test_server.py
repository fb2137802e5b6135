"""The PostgreSQL-protocol server with real clients: psql and psycopg, on 127.0.0.1 only."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import duckdb
import pytest

import warehouse_ml as wml

from .conftest import churn_frame

pytest.importorskip("buenavista", reason="needs buenavista==0.5.0 (pip install buenavista==0.5.0)")
psycopg = pytest.importorskip("psycopg", reason="needs psycopg (pip install 'psycopg[binary]')")

from warehouse_ml.integrations.server import ServerError, create_server  # noqa: E402

PSQL = shutil.which("psql") or "/usr/bin/psql"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {timeout}s")


def psql(port: int, *sql: str, password: str | None = None, user: str = "analyst") -> subprocess.CompletedProcess:
    args = [PSQL, "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "shop", "-At", "-v", "ON_ERROR_STOP=1"]
    for s in sql:
        args += ["-c", s]
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def _connect(port: int, **kw):
    return psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop", connect_timeout=10,
                           sslmode="disable", autocommit=True, **kw)


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("server") / "shop.duckdb")
    con = wml.connect(path)
    con.register("df", churn_frame(800))
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    con.execute("CREATE TABLE big AS SELECT range AS id, range * 0.5 AS x, 'row ' || range AS label FROM range(200000)")
    con.execute("FROM train_churn('users', algorithm := 'logistic')").fetchall()
    con.close()
    return path


def _fingerprint(path: str):
    con = duckdb.connect(path, read_only=True)
    try:
        return (con.execute("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL").fetchall(),
                con.execute("SELECT model, version FROM wml.model_versions ORDER BY ALL").fetchall(),
                con.execute("SELECT count(*), sum(churned) FROM users").fetchone())
    finally:
        con.close()


@pytest.fixture(scope="module")
def server(shop_db):
    """A read-only server in a thread of this process, on a free port."""
    before = _fingerprint(shop_db)
    srv = create_server(shop_db, port=0)
    port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield port
    srv.shutdown()
    srv.server_close()
    srv.db.close()
    thread.join(10)
    assert _fingerprint(shop_db) == before, "the read-only server changed the database"


def test_psql_star_spelling_through_the_front_door(server):
    r = psql(server, "SELECT user_id, round(predict_churn(*), 4) FROM users ORDER BY user_id LIMIT 3",
             "SELECT count(*) FROM users u WHERE ml_predict_label('churn', u) IN ('0', '1')")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [l.split("|")[0] for l in lines[:3]] == ["1", "2", "3"]
    assert all(0 <= float(l.split("|")[1]) <= 1 for l in lines[:3])
    assert lines[3] == "800"


def test_psql_types_and_catalog(server):
    r = psql(server, "SELECT 1.5::DOUBLE, true, 'text', DATE '2024-01-02', [1, 2], {'a': 1}, NULL::INT, 'NaN'::DOUBLE",
             r"\dt")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == '1.5|t|text|2024-01-02|{1,2}|{"a": 1}||NaN'  # a LIST is a PostgreSQL array
    assert any(l.startswith("main|users|table") for l in lines[1:])


def test_read_only_refuses_writes_and_training(server, shop_db):
    for stmt in ("CREATE TABLE hacked AS SELECT 1", "DELETE FROM users", "INSERT INTO users (user_id) VALUES (1)",
                 "FROM train_churn('users', algorithm := 'logistic')", "FROM ml_drop('churn')"):
        r = psql(server, stmt)
        assert r.returncode != 0, stmt
        assert "read-only" in r.stderr and "--allow-writes" in r.stderr, r.stderr
    # the file system is off limits from SQL
    r = psql(server, "SELECT * FROM read_csv('/etc/passwd')")
    assert r.returncode != 0 and "disabled" in r.stderr
    # the session survives an error
    with _connect(server) as conn:
        with pytest.raises(psycopg.Error, match="read-only"):
            conn.execute("CREATE TABLE hacked AS SELECT 1")
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (800,)


def test_psycopg_parameters_and_prepared_statements(server):
    with _connect(server) as conn:
        rows = conn.execute("SELECT user_id, predict_churn(*) AS p FROM users WHERE user_id <= %s AND channel = %s "
                            "ORDER BY user_id", (50, "paid")).fetchall()
        assert rows and all(uid <= 50 and 0 <= p <= 1 for uid, p in rows)
        # after prepare_threshold executions psycopg prepares the statement (Describe without running it)
        for i in range(7):
            assert conn.execute("SELECT count(*) FROM users WHERE frequency >= %s", (i,)).fetchone()[0] >= 0
        err = conn.execute("SELECT * FROM ml_evaluate('churn')").fetchall()
        assert dict(err)["roc_auc"] > 0.6


def test_several_clients_at_once(server):
    results, errors = [], []

    def client(i):
        try:
            with _connect(server) as conn:
                results.append(conn.execute("SELECT sum(predict_churn(u)) FROM users u").fetchone()[0])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 4
    assert max(results) - min(results) < 1e-9


def test_throughput_rows_per_second(server):
    with _connect(server) as conn:
        t0 = time.perf_counter()
        rows = conn.execute("SELECT id, x, label FROM big").fetchall()
        dt = time.perf_counter() - t0
    assert len(rows) == 200_000 and rows[-1][2] == "row 199999"
    print(f"\nserver streamed {len(rows) / dt:,.0f} rows/s (3 columns, psycopg)")


def test_port_in_use_and_unsafe_host(server, shop_db):
    with pytest.raises(ServerError, match=r"port .* already in use.*--port"):
        create_server(duckdb.connect(), port=server)
    with pytest.raises(ServerError, match="--password"):
        create_server(duckdb.connect(), host="0.0.0.0", port=0)


def test_allow_writes_permits_training(tmp_path):
    path = str(tmp_path / "w.duckdb")
    con = wml.connect(path)
    con.register("df", churn_frame(300))
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    con.close()
    srv = create_server(path, port=0, allow_writes=True)
    port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        r = psql(port, "SELECT version, algorithm FROM train_churn('users', algorithm := 'logistic')",
                 "CREATE TABLE scores AS SELECT user_id, predict_churn(*) AS p FROM users",
                 "SELECT count(*) FROM scores")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines() == ["1|logistic", "SELECT 300", "300"]  # CTAS reports a tag, as PostgreSQL
    finally:
        srv.shutdown()
        srv.server_close()
        srv.db.close()
        thread.join(10)


@pytest.mark.slow
def test_cli_serve_with_password(shop_db, tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "warehouse_ml.cli", "serve", shop_db, "--port", str(port), "--password", "s3cret"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_port(port, proc)
        ok = psql(port, "SELECT count(*) FROM users", password="s3cret")
        assert ok.returncode == 0 and ok.stdout.strip() == "800", ok.stderr
        bad = psql(port, "SELECT 1", password="wrong")
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, user="bi", password="nope", connect_timeout=10, sslmode="disable")
        # a second server on the same port: a clear message and exit status 2
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "already in use" in second.stderr and "--port" in second.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
