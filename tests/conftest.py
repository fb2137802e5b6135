"""Shared fixtures: real DuckDB files in a temporary folder, with every warehouse-ml function installed."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "shop.duckdb")


@pytest.fixture
def con(db_path):
    c = wml.connect(db_path)
    yield c
    c.close()


def churn_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Users whose churn depends on recency (up), frequency (down) and support tickets (up), plus noise,
    an ID column, a categorical channel and a few NULLs."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(40, n)
    frequency = rng.poisson(4, n)
    tickets = rng.poisson(0.5, n)
    channel = rng.choice(["organic", "paid", "email"], n, p=[0.5, 0.3, 0.2])
    logit = 0.04 * recency - 0.5 * frequency + 0.8 * tickets + np.where(channel == "paid", 0.7, 0.0) - 0.5
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    monetary = np.round(frequency * rng.gamma(3, 20, n), 2)
    monetary[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"user_id": np.arange(1, n + 1), "recency_days": recency, "frequency": frequency,
                         "monetary": monetary, "support_tickets": tickets, "channel": channel, "churned": churned})


@pytest.fixture
def churn_table(con):
    df = churn_frame()
    con.register("churn_df", df)
    con.execute("CREATE TABLE uf AS SELECT * FROM churn_df")
    con.unregister("churn_df")
    return "uf"


def run_without_tensorflow(body: str, cwd=None) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter where ``import tensorflow`` fails: exactly the state of a user
    who has not installed it (no mock of anything the user runs)."""
    script = "import sys\nsys.modules['tensorflow'] = None\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=cwd)


def errors_without_tensorflow(setup: str, queries: list[str], cwd) -> tuple[list[str], list[str]]:
    """In a fresh interpreter without TensorFlow: ``setup`` (Python that makes ``con``, a warehouse-ml connection,
    and may print), then each query. Returns the printed lines and each query's error (``error: ...``, or ``no
    error``); checks that nothing imported TensorFlow on the way."""
    out = run_without_tensorflow("\n".join([
        f"sys.path.insert(0, {str(REPO)!r})",
        "import warehouse_ml as wml",
        textwrap.dedent(setup),
        f"for q in {list(queries)!r}:",
        "    try:",
        "        con.execute(q).fetchall()",
        "        print('no error')",
        "    except Exception as e:",
        "        print('error:', e)",
        "assert 'tensorflow' not in [m for m in sys.modules if sys.modules[m] is not None]",
    ]), cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    return lines, [line.removeprefix("error: ") for line in lines if line.startswith(("error:", "no error"))]
