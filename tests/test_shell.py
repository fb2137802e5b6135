"""`warehouse-ml sql` driven as a user drives it: as a subprocess with -c and piped input, and in a terminal (a
pty) for Ctrl-C and history."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import duckdb
import pytest

import warehouse_ml as wml


def shell(db, *args, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "warehouse_ml.cli", "sql", db, *args], capture_output=True,
                          text=True, input=input, timeout=300, env=env)


@pytest.fixture
def small_db(db_path):
    con = wml.connect(db_path)
    con.execute("CREATE TABLE t AS SELECT range AS id, range / 3 AS third FROM range(100)")
    con.execute("CREATE VIEW v AS FROM t WHERE id < 5")
    con.close()
    return db_path


def test_every_result_is_drawn_by_duckdb_with_types_and_full_precision(small_db):
    r = shell(small_db, "-c", "SELECT 1.0 / 3 AS x, 42::HUGEINT AS h; SELECT count(*) AS n FROM t; FROM v ORDER BY id")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "0.3333333333333333" in out and "double" in out and "│" in out  # DuckDB's box, types, all digits
    assert "100" in out and "0.6666666666666666" in out  # the second and third results are there too
    assert out.count("┌") == 3


def test_modes_dot_commands_and_psql_commands_do_not_swallow_statements(small_db):
    script = "\n".join([
        ".mode csv", "SELECT id, third FROM t ORDER BY id LIMIT 2;",
        ".tables", "\\dt", "SELECT 'after dt' AS s;",
        "\\x", "SELECT 'after unknown' AS s;",
        ".schema v", ".mode markdown", "SELECT 7 AS seven;", ".mode line", "SELECT 8 AS eight;",
        ".timer on", "SELECT 9 AS nine;", ".nope", "SELECT 'last' AS s;",
    ])
    r = shell(small_db, input=script + "\n")
    out = r.stdout
    assert "id,third\n0,0.0\n1,0.3333333333333333" in out
    assert out.count("t  v") == 2  # .tables and \dt list the table and the view
    assert "after dt" in out and "after unknown" in out and "last" in out
    assert "unknown command \\x" in r.stderr and "unknown command .nope" in r.stderr
    assert "CREATE VIEW v AS" in out and "| seven |" in out and "eight = 8" in out
    assert "Run Time (s): real" in out


def test_read_runs_a_file_and_scripts_stop_at_the_first_error(small_db, tmp_path):
    script = tmp_path / "s.sql"
    script.write_text(".mode csv\nSELECT 'from file' AS s;\n")
    r = shell(small_db, "-c", f".read {script}\nSELECT 2 AS two")
    assert r.returncode == 0 and "from file" in r.stdout and "two\n2" in r.stdout
    r = shell(small_db, "-c", "SELECT * FROM nope; SELECT 'never' AS s")
    assert r.returncode == 1 and "nope does not exist" in r.stderr and "never" not in r.stdout


def test_verbose_flag_is_accepted_after_the_subcommand(small_db):
    r = subprocess.run([sys.executable, "-m", "warehouse_ml.cli", "sql", small_db, "-c", "SELECT 1 AS one", "-v"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_a_second_writer_gets_one_line_not_a_traceback(small_db):
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({small_db!r}); "
                               "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = shell(small_db, "-c", "SELECT 1")
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "open for writing" in lines[0] and str(holder.pid) in lines[0]


def _read_until(fd, marker: bytes, timeout: float = 120) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in: {seen.decode(errors='replace')[-2000:]}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_cancels_the_query_and_history_is_kept(small_db, tmp_path):
    history = tmp_path / "history"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell in a terminal, as a user starts it
        env = dict(os.environ, WML_HISTORY=str(history), TERM="dumb")
        os.execvpe(sys.executable, [sys.executable, "-m", "warehouse_ml.cli", "sql", small_db], env)
    try:
        _read_until(fd, b"wml> ")
        os.write(fd, b"SELECT sum(hash(i)) AS h FROM range(100000000000) t(i);\n")
        time.sleep(3)
        started = time.monotonic()
        os.write(fd, b"\x03")  # Ctrl-C, as the terminal sends it
        out = _read_until(fd, b"cancelled (Ctrl-C)")
        assert time.monotonic() - started < 30
        os.write(fd, b"SELECT 'still here' AS s;\n")
        out += _read_until(fd, b"still here")
        os.write(fd, b".quit\n")
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
        assert done[0] == pid, "the shell did not quit on .quit"
        status = done[1]
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)
    assert "SELECT 'still here' AS s;" in history.read_text()


def test_long_steps_log_progress_off_a_terminal(small_db):
    con = wml.connect(small_db)
    con.execute("""CREATE TABLE sales AS SELECT 'sku' || (i % 3) AS sku, DATE '2024-01-01' + (i // 3)::INT AS day,
                   10 + (i % 7) AS units FROM range(3 * 120) r(i)""")
    con.close()
    r = shell(small_db, "-v", "-c", "SELECT count(*) AS n FROM backtest_demand('sales', 7, folds := 2, item := 'sku', "
                                    "date := 'day', value := 'units', method := 'ets')")
    assert r.returncode == 0, r.stderr
    assert "backtest of 3 series: 1/1 method done in" in r.stderr
