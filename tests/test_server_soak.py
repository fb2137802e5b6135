"""Soak: 50 concurrent clients for two minutes against `warehouse-ml serve --allow-writes` on 127.0.0.1, mixing
predictions, trainings and malformed messages; then the server must be up, back to its starting memory (within
10%) and the model store consistent. WML_SOAK_SECONDS shortens it for a quick local run."""
from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time

import duckdb
import pytest

from .pgserver import make_shop, rss_kib, serve

psycopg = pytest.importorskip("psycopg", reason="needs psycopg (pip install 'psycopg[binary]')")

CLIENTS = 50
SECONDS = float(os.environ.get("WML_SOAK_SECONDS", "120"))
# a training that loses a race with another one for the next version number (the store's concurrency is
# handled in store.py); anything else is a failure
RACE = ("Duplicate key", "Failed to commit", "conflict", "Conflict")


def _connect(port):
    return psycopg.connect(host="127.0.0.1", port=port, user="soak", dbname="shop", sslmode="disable",
                           connect_timeout=20, autocommit=True)


def _predict(port, rng):
    with _connect(port) as conn:
        if rng.random() < 0.5:
            p = conn.execute("SELECT avg(predict_churn(*)) FROM users WHERE frequency >= %s", (rng.randint(0, 4),)).fetchone()[0]
            assert p is None or 0 <= p <= 1
        else:
            with conn.cursor("c") as cur:  # a server-side cursor, read in pieces
                conn.autocommit = False
                cur.execute("SELECT id, ts FROM big")
                assert len(cur.fetchmany(500)) == 500
            conn.rollback()


def _train(port, rng):
    with _connect(port) as conn:
        algorithm = rng.choice(["logistic", "decision_tree"])
        row = conn.execute(f"SELECT version FROM train_churn('users', algorithm := '{algorithm}')").fetchone()
        assert row[0] >= 2


def _malformed(port, rng):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        kind = rng.randrange(5)
        body = struct.pack("!i", 196608) + b"user\x00soak\x00database\x00shop\x00\x00"
        startup = struct.pack("!i", len(body) + 4) + body
        if kind == 0:
            s.sendall(os.urandom(rng.randint(1, 200)))  # garbage
        elif kind == 1:
            s.sendall(startup[: rng.randint(1, len(startup) - 1)])  # truncated startup
        elif kind == 2:
            s.sendall(struct.pack("!i", rng.choice([2**31 - 1, 10_001, 7, -5])) + b"\x00" * 8)  # absurd lengths
        elif kind == 3:  # a valid session, then a message claiming 1 GB
            s.sendall(startup)
            s.recv(4096)
            s.sendall(b"Q" + struct.pack("!i", 1 << 30) + b"SELECT")
        else:  # a valid session that starts a query and drops the connection in the middle
            s.sendall(startup)
            s.recv(4096)
            q = b"SELECT count(*) FROM range(100000) a, range(20000) b\x00"
            s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
            time.sleep(rng.uniform(0.05, 0.5))
        s.shutdown(socket.SHUT_WR)
        s.settimeout(20)
        while s.recv(4096):
            pass
    except OSError:
        pass  # the server may hang up first: that is the point
    finally:
        s.close()


def _store_is_consistent(path: str) -> tuple[int, int]:
    con = duckdb.connect(path, read_only=True)
    try:
        dup = con.execute("SELECT model, version, count(*) FROM wml.model_versions GROUP BY ALL HAVING count(*) > 1").fetchall()
        assert not dup, f"duplicate versions {dup}"
        orphans = con.execute("SELECT d.model, d.version FROM wml.deployments d ANTI JOIN wml.model_versions v "
                              "USING (model, version)").fetchall()
        assert not orphans, f"deployments of versions that do not exist: {orphans}"
        versions = con.execute("SELECT count(*), max(version) FROM wml.model_versions WHERE model = 'churn'").fetchone()
        assert versions[0] == versions[1], "versions are numbered 1..n without gaps"
        return versions
    finally:
        con.close()


def _run_clients(port: int, seconds: float, counts: dict, errors: list) -> None:
    """CLIENTS threads for ``seconds``: two train, a third of the rest send malformed messages, the others predict."""
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i):
        rng = random.Random(i)
        action = _train if i < 2 else (_malformed if i % 3 == 0 else _predict)
        name = {_train: "train", _malformed: "malformed", _predict: "predict"}[action]
        while time.monotonic() < deadline:
            try:
                action(port, rng)
                with lock:
                    counts[name] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    if name == "train" and any(r in str(e) for r in RACE):
                        counts["race"] += 1
                    else:
                        errors.append(f"{name}: {type(e).__name__}: {e}")
            time.sleep(rng.uniform(0.05, 0.3))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    assert not any(t.is_alive() for t in threads), "a client hung"


@pytest.mark.slow
def test_soak_fifty_clients(tmp_path):
    path = make_shop(str(tmp_path / "soak.duckdb"))
    counts = {"predict": 0, "train": 0, "malformed": 0, "race": 0}
    errors = []
    with serve(path, "--allow-writes", "--max-connections", "64", "--auth-timeout", "5") as (proc, port):
        # warm up with the same mix (libraries imported, model caches, DuckDB's buffers, allocator arenas), so
        # what is compared is the steady state before and after the soak
        _run_clients(port, min(20.0, SECONDS / 4), counts, errors)
        time.sleep(3)
        rss_start = rss_kib(proc.pid)
        _run_clients(port, SECONDS, counts, errors)
        assert not errors, errors[:5]
        assert counts["predict"] >= CLIENTS and counts["train"] >= 1 and counts["malformed"] > CLIENTS // 3, counts

        # up, every session gone, and memory back where it started
        time.sleep(3)
        with _connect(port) as conn:
            assert conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone() == (1,)
            assert 0 <= conn.execute("SELECT avg(predict_churn(*)) FROM users").fetchone()[0] <= 1
        rss_end = rss_kib(proc.pid)
        print(f"\nsoak {SECONDS:.0f}s, {CLIENTS} clients: {counts}; RSS {rss_start / 1024:.0f} MiB -> {rss_end / 1024:.0f} MiB")
        assert rss_end <= rss_start * 1.10, f"RSS grew from {rss_start} KiB to {rss_end} KiB"
    n_versions, _ = _store_is_consistent(path)
    assert n_versions == 1 + counts["train"]
