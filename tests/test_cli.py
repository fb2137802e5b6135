"""The warehouse-ml command: the SQL shell through the front door, and the demo (the main job)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import warehouse_ml as wml
from warehouse_ml.demo.run import check_demo_target, run_demo
from warehouse_ml.errors import WmlError

from .conftest import churn_frame


def cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "warehouse_ml.cli", *args], capture_output=True, text=True,
                          input=input, timeout=300)


def test_sql_shell_runs_the_star_spelling(db_path):
    con = wml.connect(db_path)
    df = churn_frame(400)
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    con.execute("FROM train_churn('users', algorithm := 'logistic')").fetchall()
    con.close()
    r = cli("sql", db_path, "--mode", "csv", "-c",
            "SELECT user_id, predict_churn(*) AS p FROM users ORDER BY user_id LIMIT 3; FROM ml_models()")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "user_id,p" and lines[1].startswith("1,0.") and len(lines) > 5
    assert "churn" in r.stdout and "logistic" in r.stdout
    r = cli("sql", db_path, input="SELECT count(*) AS n\nFROM users;\nFROM nope;\n")
    assert "400" in r.stdout and "nope does not exist" in r.stderr and r.returncode == 0  # the shell goes on


def test_plot_forecast_command_writes_a_png(db_path, tmp_path):
    con = wml.connect(db_path)
    con.execute("""CREATE TABLE sales AS SELECT 'a' AS sku, DATE '2024-01-01' + i::INT AS day,
                   10 + 3 * sin(i / 7 * 2 * pi()) + (i % 5) AS units FROM range(120) r(i)""")
    con.close()
    out = tmp_path / "a.png"
    r = cli("plot-forecast", db_path, "--relation", "sales", "--item", "a", "--horizon", "14", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    r = cli("plot-forecast", db_path, "--relation", "sale", "--item", "a")
    assert r.returncode == 1 and "Did you mean 'sales'" in r.stderr
    # its own chart is replaced; a file warehouse-ml did not write is not, unless --force
    r = cli("plot-forecast", db_path, "--relation", "sales", "--item", "a", "--horizon", "7", "--out", str(out))
    assert r.returncode == 0, r.stderr
    notes = tmp_path / "notes.png"
    notes.write_text("my notes")
    r = cli("plot-forecast", db_path, "--relation", "sales", "--item", "a", "--out", str(notes))
    assert r.returncode == 1 and "--force" in r.stderr and "notes_2.png" in r.stderr and notes.read_text() == "my notes"
    r = cli("plot-forecast", db_path, "--relation", "sales", "--item", "a", "--out", str(notes), "--force")
    assert r.returncode == 0 and notes.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_refuses_to_replace_a_database_it_did_not_build(db_path):
    con = wml.connect(db_path)
    con.execute("CREATE TABLE my_orders AS SELECT 1 AS id")
    con.close()
    before = open(db_path, "rb").read()
    r = cli("demo", "--db", db_path, "--users", "300")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "was not created by the demo" in r.stderr and "--force" in r.stderr and "shop_2.duckdb" in r.stderr
    assert open(db_path, "rb").read() == before


def test_sql_shell_reports_errors_with_a_nonzero_exit(db_path):
    wml.connect(db_path).close()
    r = cli("sql", db_path, "-c", "FROM train_churn('missing_table')")
    assert r.returncode == 1 and "UnknownRelation" in r.stderr


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path):
    out = tmp_path / "demo.txt"
    db = str(tmp_path / "shop.duckdb")
    with open(out, "w") as f:
        run_demo(db, users=600, seed=1, out=f)
    text = out.read_text()
    for step in ["Data quality", "Train the churn model", "most at risk", "Why they are at risk", "A/B test on conversion",
                 "7-day demand forecast", "Reorder plan", "Price elasticity", "Recommendations for three customers",
                 "Why did conversion move", "average order by channel with differential privacy",
                 "model registry"]:
        assert step in text
    con = wml.connect(db)
    models = dict(con.execute("SELECT model, metrics['roc_auc'] FROM ml_models() WHERE is_active").fetchall())
    assert models["churn"] > 0.75 and models["conversion"] > 0.6
    assert set(models) == {"churn", "conversion", "recs", "segments"}
    pngs = sorted(tmp_path.glob("shop_forecast_*.png"))  # the forecast, and the one with price as its driver
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert sum("_forecast_drivers_" in p.name for p in pngs) == 1 and "price as a driver" in text
    # an unchanged demo database may be rebuilt; once a user adds to it, only --force replaces it
    con.close()
    assert check_demo_target(db)
    con = wml.connect(db)
    con.execute("CREATE TABLE my_notes AS SELECT 1 AS x")
    con.close()
    with pytest.raises(WmlError, match="was changed since the demo built it.*--force"):
        check_demo_target(db)
    assert check_demo_target(db, force=True)
