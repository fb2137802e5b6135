"""The dbt-duckdb plugin with real dbt: `dbt run` and `dbt test` of examples/dbt_shop on a fresh demo shop."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb", reason="needs dbt-core<1.12 and dbt-duckdb (pip install 'dbt-core<1.12' dbt-duckdb)")

from warehouse_ml.demo.shop import generate_shop  # noqa: E402
from warehouse_ml.errors import InvalidArgument  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1] / "examples" / "dbt_shop"


def _dbt(project: Path, db: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dbt")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dbt.cli.main"]
    env = dict(os.environ, WML_DB=str(db), DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    return subprocess.run(cmd + list(args) + ["--profiles-dir", str(project), "--project-dir", str(project)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def shop_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("dbt")
    project = root / "dbt_shop"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"))
    db = root / "shop.duckdb"
    con = duckdb.connect(str(db))
    generate_shop(con, users=300, seed=1)
    con.close()
    return project, db


@pytest.mark.slow
def test_dbt_run_and_test_example_project(shop_project):
    project, db = shop_project
    run = _dbt(project, db, "run")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "ERROR=0" in run.stdout
    con = duckdb.connect(str(db), read_only=True)
    try:
        # training as a table model stored a version of 'churn' in the same database
        version, roc_auc = con.execute("SELECT version, roc_auc FROM churn_model").fetchone()
        assert version >= 1 and roc_auc > 0.6
        assert con.execute("SELECT count(*) FROM wml.model_versions WHERE model = 'churn'").fetchone()[0] >= 1
        n_users, n_scores, lo, hi = con.execute(
            "SELECT (SELECT count(*) FROM user_features), count(*), min(p_churn), max(p_churn) FROM churn_scores").fetchone()
        assert n_scores == n_users > 100 and 0 <= lo < hi <= 1
        # the outputs are plain tables: any DuckDB client (this one has no UDFs) reads them
        n_items, n_rows = con.execute("SELECT count(DISTINCT item), count(*) FROM demand_forecast").fetchone()
        assert n_items == 3 and n_rows == 3 * 14
        assert con.execute("SELECT count(*) FROM churn_drivers").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM recommendations").fetchone()[0] > 0
        # the private report: noisy values per released channel, and the release in the privacy ledger
        assert con.execute("SELECT count(*) FROM private_channel_report WHERE metric = 'avg(amount)' "
                           "AND ci_low < value AND value < ci_high").fetchone()[0] > 0
        assert con.execute("SELECT relation, epsilon FROM wml.dp_ledger").fetchall() == [("main.order_channels", 1.0)]
        # the daily monitoring models: the training data itself has not drifted, so nothing was retrained
        kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM churn_drift").fetchall()}
        assert kinds == {"skew", "decay"} and not con.execute("SELECT bool_or(drifted) FROM churn_drift").fetchone()[0]
        assert con.execute("SELECT retrained FROM churn_retrain").fetchall() == [(False,)]
        assert con.execute("SELECT count(DISTINCT check_id) FROM churn_monitoring").fetchone()[0] == 3
    finally:
        con.close()
    test = _dbt(project, db, "test")
    assert test.returncode == 0, test.stdout[-4000:] + test.stderr[-2000:]
    assert "ERROR=0" in test.stdout and "PASS=" in test.stdout
    # the run-operation spelling of training adds a version
    op = _dbt(project, db, "run-operation", "wml_train_churn", "--args", "{relation: user_features}")
    assert op.returncode == 0, op.stdout[-4000:] + op.stderr[-2000:]
    assert "trained churn version 2" in op.stdout
    # the data moves (every user now comes through one channel): today's check drifts and the dbt test fails
    con = duckdb.connect(str(db))
    con.execute("UPDATE users SET channel = 'paid'")
    con.close()
    rerun = _dbt(project, db, "run", "--select", "user_features", "churn_drift")
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-2000:]
    drifted = _dbt(project, db, "test", "--select", "churn_has_not_drifted")
    assert drifted.returncode != 0 and "FAIL 1 churn_has_not_drifted" in drifted.stdout, drifted.stdout[-3000:]


def test_plugin_rejects_unknown_config_keys():
    from dbt.adapters.duckdb.plugins import BasePlugin

    with pytest.raises(InvalidArgument) as e:
        BasePlugin.create("warehouse_ml.dbt", config={"verbose": True, "treads": 4})
    msg = str(e.value)
    assert "'treads'" in msg and "verbose" in msg and "profiles.yml" in msg
    with pytest.raises(InvalidArgument, match="verbose"):
        BasePlugin.create("warehouse_ml.dbt", config={"verbose": "yes"})
    plugin = BasePlugin.create("warehouse_ml.dbt", config={"verbose": False})
    assert plugin.name == "dbt"


def test_plugin_installs_functions_on_connection_and_cursors(tmp_path):
    """What dbt-duckdb does with the plugin: configure_connection once, configure_cursor per cursor."""
    from dbt.adapters.duckdb.plugins import BasePlugin

    plugin = BasePlugin.create("warehouse_ml.dbt")
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    plugin.configure_connection(con)
    con.execute("CREATE TABLE orders AS SELECT 1 AS user_id, TIMESTAMP '2024-01-01' AS order_ts, 10.0 AS amount")
    cur = con.cursor()
    plugin.configure_cursor(cur)
    # a relation as dbt renders ref(): quoted and database-qualified
    rows = cur.execute("""SELECT user_id, frequency FROM user_features('"x"."main"."orders"', as_of := DATE '2024-02-01')""").fetchall()
    assert rows == [(1, 1)]
    con.close()
