"""Plain SQL scores a linear model with no Python: ml_predict and predict_<model> route through the store's macro
``wml.predict_inline``, which the store rewrites in the same transaction as every change of an active version.

Each test compares with the UDF itself (``wml_predict``), which loads the active version from the store."""
from __future__ import annotations

import duckdb
import pytest

import warehouse_ml as wml

from .test_numeric_policy import ODD_ROWS

ROWS = """CREATE TABLE t AS SELECT range AS row_id, (range % 7)::DOUBLE + random() AS x,
          CASE WHEN range % 10 = 0 THEN NULL ELSE random() END AS z,
          CASE WHEN range % 3 = 0 THEN 'paid' ELSE 'email' END AS channel,
          (range % 2 + (range % 7 > 3)::INT > 0)::INT AS y FROM range(400)"""


def _scores(con, call: str, table: str = "t") -> list[float]:
    return [r[0] for r in con.execute(f"SELECT {call} FROM {table} s ORDER BY row_id").fetchall()]


def _plan(con, call: str, table: str = "t") -> str:
    return "\n".join(r[1] for r in con.execute(f"EXPLAIN SELECT {call} FROM {table} s").fetchall())


@pytest.fixture
def linear(con):
    con.execute("SELECT setseed(0.3)")
    con.execute(ROWS)
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchall()
    con.execute(ODD_ROWS)
    return con


def test_plain_sql_inlines_a_linear_model_and_scores_like_the_udf(linear):
    assert "wml_predict" not in _plan(linear, "ml_predict('m', s)")
    assert "wml_predict" in _plan(linear, "wml_predict('m', s)")
    for table in ("t", "odd"):  # odd: NaN, NULL, +-inf and an unseen category
        assert _scores(linear, "ml_predict('m', s)", table) == pytest.approx(
            _scores(linear, "wml_predict('m', s)", table), abs=1e-12)


def test_the_shortcut_macro_inlines_too(linear):
    linear.execute("FROM train_churn('t', label := 'y', algorithm := 'logistic')").fetchall()
    assert "wml_predict" not in _plan(linear, "predict_churn(s)")
    assert _scores(linear, "predict_churn(s)") == pytest.approx(_scores(linear, "wml_predict('churn', s)"), abs=1e-12)


def test_a_shortcut_binds_its_own_model_alone(linear):
    """predict_churn calls the churn model's own macro, so what DuckDB binds for it does not grow with the other
    linear models in the store (every branch of wml.predict_inline is bound on every query)."""
    for k in range(3):
        linear.execute(f"FROM ml_train('other{k}', 't', label := 'y', algorithm := 'logistic')").fetchall()
    assert "'other2'" in _macro(linear, "predict_inline")
    assert _macro(linear, "predict_inline_churn") == "wml_predict('churn', \"row\")"  # no churn model yet
    with pytest.raises(duckdb.Error, match="no model named 'churn'"):
        linear.execute("SELECT predict_churn(s) FROM t s").fetchall()
    linear.execute("FROM train_churn('t', label := 'y', algorithm := 'logistic')").fetchall()
    own = _macro(linear, "predict_inline_churn")
    assert "'churn'" in own and "other" not in own and "'m'" not in own
    assert "wml_predict" not in _plan(linear, "predict_churn(s)")
    for table in ("t", "odd"):
        assert _scores(linear, "predict_churn(s)", table) == pytest.approx(
            _scores(linear, "wml_predict('churn', s)", table), abs=1e-12)
    linear.execute("FROM train_churn('t', label := 'y', algorithm := 'gbm', deploy := 'always')").fetchall()
    assert _macro(linear, "predict_inline_churn") == "wml_predict('churn', \"row\")"
    assert _scores(linear, "predict_churn(s)") == pytest.approx(_scores(linear, "wml_predict('churn', s)"), abs=1e-12)


def _macro(con, name: str) -> str:
    return con.execute("SELECT macro_definition FROM duckdb_functions() WHERE schema_name = 'wml' AND "
                       "function_name = $1", [name]).fetchone()[0]


def test_a_model_that_is_not_linear_scores_through_the_udf(linear):
    linear.execute("FROM ml_train('g', 't', label := 'y', algorithm := 'gbm')").fetchall()
    assert "wml_predict" in _plan(linear, "ml_predict('g', s)")
    assert _scores(linear, "ml_predict('g', s)") == pytest.approx(_scores(linear, "wml_predict('g', s)"), abs=1e-12)


def test_a_row_missing_a_feature_gets_the_udfs_error(linear):
    with pytest.raises(duckdb.Error, match="the row has no field 'z'"):
        linear.execute("SELECT ml_predict('m', s) FROM (SELECT row_id, x, channel FROM t) s").fetchall()


def test_deploy_rollback_and_drop_on_another_connection_are_seen_at_once(linear, db_path):
    other = wml.connect(db_path)
    try:
        other.execute("UPDATE t SET y = 1 - y WHERE row_id % 4 = 0")
        other.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchall()
        other.execute("FROM ml_deploy('m', 2)").fetchall()  # (training keeps version 1 when it scores better)
        v2 = _scores(linear, "ml_predict('m', s)")
        assert v2 == pytest.approx(_scores(linear, "wml_predict('m', s)"), abs=1e-12)
        other.execute("FROM ml_rollback('m')").fetchall()
        v1 = _scores(linear, "ml_predict('m', s)")
        assert v1 == pytest.approx(_scores(linear, "wml_predict('m', s)"), abs=1e-12)
        assert v1 != pytest.approx(v2, abs=1e-6)
        other.execute("FROM ml_deploy('m', 2)").fetchall()
        assert _scores(linear, "ml_predict('m', s)") == pytest.approx(v2, abs=1e-12)
        other.execute("FROM ml_drop('m')").fetchall()
        with pytest.raises(duckdb.Error, match="no model named 'm'"):
            linear.execute("SELECT ml_predict('m', s) FROM t s").fetchall()
    finally:
        other.close()


@pytest.mark.parametrize("macro", ["predict_inline", "predict_inline_churn"])
def test_a_macro_the_store_did_not_write_is_never_used(linear, db_path, macro):
    linear.execute("FROM train_churn('t', label := 'y', algorithm := 'logistic')").fetchall()
    calls = ("ml_predict('m', s)", "predict_churn(s)")
    expected = [_scores(linear, "wml_predict('m', s)"), _scores(linear, "wml_predict('churn', s)")]
    params = '"row"' if macro.endswith("churn") else 'model, "row"'
    linear.execute(f"CREATE OR REPLACE MACRO wml.{macro}({params}) AS 42.0")  # another program's
    linear.close()
    reader = wml.connect(db_path, read_only=True)  # cannot repair it: scores through the UDF
    try:
        for call, want in zip(calls, expected):
            assert _scores(reader, call) == pytest.approx(want, abs=1e-12)
            assert "wml_predict" in _plan(reader, call)
    finally:
        reader.close()
    writer = wml.connect(db_path)  # writable: install writes the store's own macros again
    try:
        for call, want in zip(calls, expected):
            assert _scores(writer, call) == pytest.approx(want, abs=1e-12)
            assert "wml_predict" not in _plan(writer, call)
    finally:
        writer.close()
