"""`warehouse-ml serve` with psql and psycopg, on 127.0.0.1: the front door, read-only checks by parsing,
settings confined to the session, errors that never poison a session."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from .conftest import churn_frame
from .pgserver import PGJDBC, PROBE, make_shop, psql, serve

psycopg = pytest.importorskip("psycopg", reason="needs psycopg (pip install 'psycopg[binary]')")

from warehouse_ml.integrations.server import ServerError, create_server  # noqa: E402


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    path = make_shop(str(tmp_path_factory.mktemp("server") / "shop.duckdb"))
    con = duckdb.connect(path)
    con.execute("CREATE TABLE wide AS SELECT range AS id, range * 0.5 AS x, 'row ' || range AS label FROM range(200000)")
    con.close()
    return path


def _fingerprint(path: str):
    con = duckdb.connect(path, read_only=True)
    try:
        return (con.execute("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL").fetchall(),
                con.execute("SELECT model, version FROM wml.model_versions ORDER BY ALL").fetchall(),
                con.execute("SELECT * FROM wml.deployments ORDER BY ALL").fetchall(),
                con.execute("SELECT count(*), sum(churned) FROM users").fetchone())
    finally:
        con.close()


@pytest.fixture(scope="module")
def server(shop_db):
    """A read-only `warehouse-ml serve` subprocess; the database must be unchanged afterwards."""
    before = _fingerprint(shop_db)
    with serve(shop_db) as (_, port):
        yield port
    assert _fingerprint(shop_db) == before, "the read-only server changed the database"


def _connect(port: int, **kw):
    return psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop", connect_timeout=10,
                           sslmode="disable", autocommit=True, **kw)


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
    assert "main|users|table|analyst" in lines[1:]
    assert not any(l.startswith("wml|") for l in lines[1:]), "wml.* is not on the search path, as in PostgreSQL"


WRITES = [
    "CREATE TABLE hacked AS SELECT 1", "DELETE FROM users", "INSERT INTO users (user_id) VALUES (1)",
    "UPDATE users SET churned = 0", "DROP TABLE users", "ALTER TABLE users ADD COLUMN z INT", "CHECKPOINT",
    "CREATE TEMP MACRO m() AS TABLE SELECT * FROM ml_train('x', 'users', label := 'churned')",
    "CREATE MODEL m OPTIONS(model_type='logistic_reg', input_label_cols=['churned']) AS SELECT * FROM users",
]
TRAININGS = [
    "FROM train_churn('users', algorithm := 'logistic')", "FROM ml_drop('churn')",
    'SELECT * FROM "ml_train"(\'c2\', \'users\', label := \'churned\')',
    "FROM ml_train/**/('c2', 'users', label := 'churned')", "FROM ML_TRAIN ('c2', 'users', label := 'churned')",
    "SELECT * FROM main.users WHERE 1 = (SELECT count(*) FROM ml_deploy('churn', 1))",
    "WITH t AS (FROM segment_users('users')) SELECT 1", "SELECT * FROM query('FROM ml_rollback(''churn'')')",
    "SELECT * FROM query('FROM ml_' || 'rollback(''churn'')')", "EXPLAIN ANALYZE FROM ml_drop('churn')",
    "CALL ml_deploy('churn', 1)", "SELECT wml_train('c3', 'users', '{}')",
    "DECLARE c CURSOR WITH HOLD FOR FROM train_churn('users')",
    "FROM ml_update('churn', 'users')", "FROM ml_retrain('churn', 'users')", "FROM dp_set_budget('users', epsilon := 9)",
]


def test_read_only_refuses_writes_and_training_before_running_them(server):
    r = psql(server, TRAININGS[0])  # psql shows the message a user reads
    assert r.returncode != 0 and "read-only" in r.stderr and "--allow-writes" in r.stderr, r.stderr
    with _connect(server) as conn:
        for stmt in WRITES + TRAININGS:
            started = time.perf_counter()
            with pytest.raises(psycopg.Error, match="read-only") as refused:
                conn.execute(stmt)
            assert "--allow-writes" in str(refused.value), stmt
            assert time.perf_counter() - started < 20, f"{stmt}: refused before any training started"
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (800,)


def test_read_only_allows_reading(server):
    r = psql(server, "SELECT count(*) FROM ml_models()", "SELECT count(*) FROM query('SELECT * FROM users')",
             "EXPLAIN SELECT 1", "PRAGMA table_info('users')", "CALL pragma_version()", "SHOW TABLES",
             "SELECT metric FROM ml_evaluate('churn') ORDER BY 1 LIMIT 1",
             "SELECT count(*) FROM forecast_demand('big', 3, item := 'flag', date := 'day', value := 'amount')")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "6"  # macros that run computed SQL (typed keys) still read


SETTINGS = ["SET memory_limit = '20MB'", "set memory_limit='16GB'", "SET threads = 1", "set threads to 1",
            "PRAGMA threads=1", "pragma THREADS = 1", "SET GLOBAL threads = 1", "SET lock_configuration = true",
            "SET  Memory_Limit  =  '1GB'", "RESET threads", "RESET memory_limit", "SET enable_external_access = true",
            "PRAGMA enable_checkpoint_on_shutdown", "PRAGMA memory_limit='1MB'", "SET SESSION threads = 1",
            "SET GLOBAL search_path = 'wml'", "SELECT * FROM enable_logging()", "ATTACH ':memory:' AS other",
            "INSTALL httpfs", "LOAD json", "CREATE SECRET s (TYPE s3)", "UPDATE EXTENSIONS", "SET/**/threads=1",
            "IMPORT DATABASE '/tmp'"]


def test_instance_settings_are_refused(server):
    query = "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('lock_configuration')"
    before = psql(server, query)
    r = psql(server, SETTINGS[0], "SELECT 1")
    assert r.returncode != 0 and "refused" in r.stderr and "every client" in r.stderr, r.stderr
    with _connect(server) as conn:
        for stmt in SETTINGS:
            with pytest.raises(psycopg.Error, match="refused"):
                conn.execute(stmt)
        assert conn.execute("SELECT 1").fetchone() == (1,)
    after = psql(server, query)
    assert before.returncode == 0 and before.stdout == after.stdout


def test_session_settings_stay_in_the_session(server):
    with _connect(server) as a, _connect(server) as b:
        a.execute("SET search_path = wml")
        a.execute("SET application_name = 'dash'")
        a.execute("SET extra_float_digits = 3")
        assert a.execute("SELECT count(*) FROM model_versions").fetchone()[0] >= 1
        assert a.execute("SHOW application_name").fetchone() == ("dash",)
        assert a.execute("SELECT current_setting('application_name')").fetchone() == ("dash",)
        with pytest.raises(psycopg.Error):
            b.execute("SELECT count(*) FROM model_versions")  # the other session still reads main
        assert b.execute("SHOW application_name").fetchone() == ("",)
        with pytest.raises(psycopg.Error, match="unrecognized configuration parameter"):
            b.execute("SET no_such_thing = 1")
        with pytest.raises(psycopg.Error, match="multiple commands"):  # a prepared statement holds one
            b.execute("SELECT %s; SET threads = 1", (1,))
        a.execute("USE wml")  # the default schema, for this session only
        assert a.execute("SELECT count(*) > 0 FROM deployments").fetchone() == (True,)
        assert b.execute("SELECT count(*) FROM users").fetchone() == (800,)


def test_failed_statements_never_poison_the_session(server):
    with _connect(server) as conn:
        with pytest.raises(psycopg.Error, match="read-only"):
            conn.execute("CREATE TABLE hacked AS SELECT 1")
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM no_such_table WHERE x = %s", (1,), prepare=True)
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT %s::INT", ("not a number",))
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (800,)
        for i in range(7):  # past psycopg's prepare threshold: named statements, Describe without running
            assert conn.execute("SELECT count(*) FROM users WHERE frequency >= %s", (i,)).fetchone()[0] >= 0
        conn.autocommit = False
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.rollback()


def test_psycopg_parameters(server):
    with _connect(server) as conn:
        rows = conn.execute("SELECT user_id, predict_churn(*) AS p FROM users WHERE user_id <= %s AND channel = %s "
                            "ORDER BY user_id", (50, "paid")).fetchall()
        assert rows and all(uid <= 50 and 0 <= p <= 1 for uid, p in rows)
        assert dict(conn.execute("SELECT * FROM ml_evaluate('churn')").fetchall())["roc_auc"] > 0.6


def test_several_clients_at_once(server):
    results, errors = [], []

    def client():
        try:
            with _connect(server) as conn:
                results.append(conn.execute("SELECT sum(predict_churn(u)) FROM users u").fetchone()[0])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 4
    assert max(results) - min(results) < 1e-9


def test_throughput_rows_per_second(server):
    with _connect(server) as conn:
        t0 = time.perf_counter()
        rows = conn.execute("SELECT id, x, label FROM wide").fetchall()
        dt = time.perf_counter() - t0
    assert len(rows) == 200_000 and rows[-1][2] == "row 199999"
    print(f"\nserver streamed {len(rows) / dt:,.0f} rows/s (3 columns, psycopg)")


def test_port_in_use_and_unsafe_host(server):
    with pytest.raises(ServerError, match=r"port .* already in use.*--port"):
        create_server(duckdb.connect(), port=server)
    with pytest.raises(ServerError, match="--password or --users.*--tls-cert"):
        create_server(duckdb.connect(), host="0.0.0.0", port=0)
    with pytest.raises(ServerError, match="--tls-cert"):
        create_server(duckdb.connect(), host="0.0.0.0", port=0, password="x")


def test_allow_writes_permits_training(tmp_path):
    path = str(tmp_path / "w.duckdb")
    con = duckdb.connect(path)
    con.register("df", churn_frame(300))
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    con.close()
    with serve(path, "--allow-writes") as (_, port):
        r = psql(port, "SELECT version, algorithm FROM train_churn('users', algorithm := 'logistic')",
                 "CREATE TABLE scores AS SELECT user_id, predict_churn(*) AS p FROM users",
                 "SELECT count(*) FROM scores", "SET threads = 1")
        assert r.stdout.strip().splitlines() == ["1|logistic", "SELECT 300", "300"], r.stderr  # CTAS: a tag, as PostgreSQL
        assert r.returncode != 0 and "refused" in r.stderr, "instance settings are refused for writers too"


@pytest.mark.slow
def test_cli_serve_with_password(shop_db):
    with serve(shop_db, "--password", "s3cret") as (_, port):
        ok = psql(port, "SELECT count(*) FROM users", password="s3cret")
        assert ok.returncode == 0 and ok.stdout.strip() == "800", ok.stderr
        bad = psql(port, "SELECT 1", password="wrong")
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, user="bi", password="nope", connect_timeout=10,
                            sslmode="disable")
        if shutil.which("java") and os.path.exists(PGJDBC):  # pgjdbc's SCRAM against ours
            probe = subprocess.run(["java", "-cp", PGJDBC, PROBE, str(port), "bi", "s3cret"], capture_output=True,
                                   text=True, timeout=300)
            assert probe.returncode == 0 and "PROBE PASSED" in probe.stdout, probe.stdout + probe.stderr
        second = subprocess.run([sys.executable, "-m", "warehouse_ml.cli", "serve", shop_db, "--port", str(port)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "already in use" in second.stderr and "--port" in second.stderr


def test_writing_functions_refuse_on_any_read_only_connection(shop_db):
    """The one list (UDFs declared writes=True) guards every path, not only the server's parser."""
    import warehouse_ml as wml
    from warehouse_ml.wiring import writing_functions

    assert {"wml_train", "wml_deploy", "wml_rollback", "wml_drop", "wml_segment_users", "wml_update", "wml_retrain",
            "wml_save_forecast", "wml_dp_set_budget"} <= writing_functions()
    con = wml.connect(shop_db, read_only=True)
    try:
        for stmt in ("FROM train_churn('users', algorithm := 'logistic')", "FROM ml_deploy('churn', 1)",
                     "FROM segment_users('users')", "FROM ml_drop('churn')"):
            started = time.perf_counter()
            with pytest.raises(duckdb.Error, match="ReadOnlyDatabase: .*nothing was trained or changed"):
                con.execute(stmt).fetchall()
            assert time.perf_counter() - started < 10, stmt
    finally:
        con.close()
