"""Helpers for tests that drive `warehouse-ml serve` as a subprocess on 127.0.0.1 with real clients."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time

import warehouse_ml as wml

from .conftest import churn_frame

PSQL = shutil.which("psql") or "/usr/bin/psql"
PGJDBC = "/usr/share/java/postgresql.jar"  # Debian's libpostgresql-jdbc-java
PROBE = os.path.join(os.path.dirname(__file__), "clients", "Probe.java")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
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


@contextlib.contextmanager
def serve(db: str, *args: str, env: dict | None = None):
    """`warehouse-ml serve DB --port P ARGS` in a subprocess; yields (process, port); stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "warehouse_ml.cli", "serve", db, "--port", str(port), *args]
    log = open(os.path.join(os.path.dirname(db), f"server-{port}.log"), "w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_for_port(port, proc)
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def psql(port: int, *sql: str, password: str | None = None, user: str = "analyst", sslmode: str = "disable",
         extra_env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    args = [PSQL, "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "shop", "-At", "-v", "ON_ERROR_STOP=1"]
    for s in sql:
        args += ["-c", s]
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGSSLMODE=sslmode, **(extra_env or {}))
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def make_shop(path: str, users: int = 800, train: bool = True) -> str:
    """A DuckDB file with `users` (churn data), `big` (2,000 rows of common types) and a trained churn model."""
    con = wml.connect(path)
    con.register("df", churn_frame(users))
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    con.execute("CREATE TABLE big AS SELECT range AS id, DATE '2024-01-01' + (range % 30)::INT AS day, "
                "range % 2 = 0 AS flag, (range * 0.25)::DECIMAL(12, 2) AS amount, "
                "TIMESTAMP '2024-01-01 10:00' + INTERVAL (range) SECOND AS ts, 'row ' || range AS label FROM range(2000)")
    if train:
        con.execute("FROM train_churn('users', algorithm := 'logistic')").fetchall()
    con.close()
    return path


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
