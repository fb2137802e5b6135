"""The clients BI tools are built on, against `warehouse-ml serve`: pgjdbc (DBeaver, Metabase, Tableau's JDBC
path), SQLAlchemy's postgresql+psycopg inspector (Superset), psycopg sync and async, and psql's meta-commands."""
from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from .pgserver import PGJDBC, PROBE, make_shop, psql, serve

psycopg = pytest.importorskip("psycopg", reason="needs psycopg (pip install 'psycopg[binary]')")



@pytest.fixture(scope="module")
def port(tmp_path_factory):
    path = make_shop(str(tmp_path_factory.mktemp("clients") / "shop.duckdb"))
    with serve(path) as (_, p):
        yield p


def _connect(port: int, **kw):
    kw.setdefault("autocommit", True)
    return psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop", connect_timeout=10,
                           sslmode="disable", **kw)


@pytest.mark.skipif(not (shutil.which("java") and os.path.exists(PGJDBC)),
                    reason="needs Java 17 and pgjdbc (apt-get install libpostgresql-jdbc-java)")
def test_pgjdbc_metadata_streaming_parameters_and_predictions(port):
    r = subprocess.run(["java", "-cp", PGJDBC, PROBE, str(port)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok fetch size 50 streamed 2000 rows" in r.stdout
    assert "PROBE PASSED" in r.stdout


def test_sqlalchemy_inspector(port):
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(f"postgresql+psycopg://analyst@127.0.0.1:{port}/shop?sslmode=disable")
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            assert {"main", "wml"} <= set(insp.get_schema_names())
            assert {"users", "big"} <= set(insp.get_table_names())
            assert "model_versions" in insp.get_table_names(schema="wml")
            cols = {c["name"]: c["type"] for c in insp.get_columns("big")}
            assert isinstance(cols["id"], sa.BigInteger) and isinstance(cols["day"], sa.Date)
            assert isinstance(cols["amount"], sa.Numeric) and (cols["amount"].precision, cols["amount"].scale) == (12, 2)
            assert isinstance(cols["ts"], sa.DateTime) and isinstance(cols["flag"], sa.Boolean)
            assert insp.has_table("users") and not insp.has_table("no_such_table")
            big = sa.Table("big", sa.MetaData(), autoload_with=conn)
            q = sa.select(sa.func.count()).select_from(big).where(big.c.day >= dt.date(2024, 1, 15))
            assert conn.execute(q).scalar() == 1062
            rows = conn.execute(sa.text("SELECT user_id, predict_churn(*) AS p FROM users ORDER BY user_id LIMIT 3")).all()
            assert [r[0] for r in rows] == [1, 2, 3] and all(0 <= r[1] <= 1 for r in rows)
    finally:
        engine.dispose()


def test_psycopg_named_cursor_streams_everything(port):
    with _connect(port, autocommit=False) as conn:
        with conn.cursor("stream") as cur:
            cur.itersize = 100
            cur.execute("SELECT id, ts FROM big ORDER BY id")
            ids = [r[0] for r in cur]
        assert ids == list(range(2000))
        with conn.cursor("held", withhold=True) as cur:
            cur.execute("SELECT label FROM big WHERE id < %s ORDER BY id", (250,))
            first = cur.fetchmany(10)
            assert conn.execute("SELECT count(*) FROM pg_cursors WHERE name = 'held'").fetchone() == (1,)
            conn.commit()  # WITH HOLD survives the commit
            rest = cur.fetchall()
        assert [r[0] for r in first + rest] == [f"row {i}" for i in range(250)]
        assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)


def test_sql_cursors_declare_fetch_close(port):
    r = psql(port, "BEGIN", 'DECLARE "SQL_CUR1" CURSOR WITH HOLD FOR SELECT id FROM big ORDER BY id',
             'FETCH 3 FROM "SQL_CUR1"', 'FETCH FORWARD 2 IN "SQL_CUR1"', "COMMIT", 'FETCH NEXT FROM "SQL_CUR1"',
             'CLOSE "SQL_CUR1"', "DECLARE b BINARY CURSOR FOR SELECT 1", "CLOSE ALL")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["BEGIN", "DECLARE", "CURSOR", "0", "1", "2", "3", "4", "COMMIT", "5", "CLOSE", "CURSOR",
                                "DECLARE", "CURSOR", "CLOSE", "CURSOR"]
    bad = psql(port, 'FETCH 1 FROM "SQL_CUR1"')
    assert bad.returncode != 0 and "does not exist" in bad.stderr


VALUES = [dt.date(2024, 1, 2), dt.datetime(2024, 1, 1, 10, 0, 30, 123456), decimal.Decimal("-1234.0050"),
          decimal.Decimal("0.00012"), True, False, b"\x00\x01\xff", 5, -7, 2**40, 2.5, "text 'quoted'",
          [1, 2, 3], [1.5, None], [dt.date(2024, 1, 1)], uuid.UUID("12345678-1234-5678-1234-567812345678"),
          dt.time(10, 30, 1), dt.timedelta(days=2, seconds=5)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_parameters_and_results_of_common_types_round_trip(port, binary):
    with _connect(port) as conn:
        with conn.cursor(binary=binary) as cur:
            for value in VALUES:
                marker = "%b" if binary else "%t"
                for prepare in (False, True):
                    cur.execute(f"SELECT {marker}", (value,), prepare=prepare)
                    got = cur.fetchone()[0]
                    assert got == value, (value, got, binary, prepare)
            cur.execute("SELECT TIMESTAMP '2024-01-01 10:00', TIMESTAMPTZ '2024-01-01 10:00+00', DATE '2024-02-29', "
                        "1.5::DECIMAL(5, 2), [1, 2], INTERVAL '1 day 2 hours', 'x'::BLOB")
            assert cur.fetchone() == (dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc),
                                      dt.date(2024, 2, 29), decimal.Decimal("1.50"), [1, 2],
                                      dt.timedelta(days=1, hours=2), b"x")
        expected = conn.execute("SELECT count(*) FROM big WHERE day = DATE '2024-01-02' AND NOT flag AND amount > 1")
        assert conn.execute("SELECT count(*) FROM big WHERE day = %s AND flag = %s AND amount > %s",
                            (dt.date(2024, 1, 2), False, decimal.Decimal("1"))).fetchone() == expected.fetchone() == (66,)


def test_psycopg_async(port):
    async def main():
        async with await psycopg.AsyncConnection.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop",
                                                         sslmode="disable", autocommit=True) as conn:
            cur = await conn.execute("SELECT count(*) FROM users WHERE channel = %s", ("paid",))
            paid = (await cur.fetchone())[0]
            cur = await conn.execute("SELECT avg(predict_churn(*)) FROM users")
            p = (await cur.fetchone())[0]
            async with conn.cursor("a") as named:
                await named.execute("SELECT id FROM big")
                n = len(await named.fetchall())
            return paid, p, n

    paid, p, n = asyncio.run(main())
    assert 100 < paid < 400 and 0 < p < 1 and n == 2000


def test_bi_handshake(port):
    with _connect(port) as conn:
        version = conn.execute("select pg_catalog.version()").fetchone()[0]
        assert version.startswith("PostgreSQL 14") and "warehouse-ml" in version
        assert conn.execute("SELECT version()").fetchone()[0] == version
        for name, expected in [("server_version", "14.0"), ("client_encoding", "UTF8"),
                               ("standard_conforming_strings", "on"), ("transaction isolation level", None),
                               ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC"), ("search_path", None)]:
            got = conn.execute(f"SHOW {name}").fetchone()[0]
            assert got and (expected is None or got == expected), (name, got)
        assert conn.execute("select current_schema(), current_database()").fetchone() == ("main", "shop")
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_stat_activity").fetchone()[0] >= 1
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        conn.execute("SET TIME ZONE 'UTC'")


@pytest.mark.parametrize("command, expected", [
    (r"\d users", "recency_days"), (r"\d+ users", "channel"), (r"\dt", "users"), (r"\df predict_churn", "predict_churn"),
    (r"\l", "shop"), (r"\dn", "wml"), (r"\dv", ""), (r"\di", ""), (r"\du", ""), (r"\conninfo", "127.0.0.1"),
])
def test_psql_meta_commands(port, command, expected):
    r = psql(port, command)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout


def test_cancel_request_interrupts_the_query(port):
    with _connect(port) as conn:
        timer = threading.Timer(1.5, conn.cancel)
        timer.start()
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range * b.range % 7 = 3")
        assert time.perf_counter() - started < 20
        assert conn.execute("SELECT 1").fetchone() == (1,)
