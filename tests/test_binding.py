"""The binding layer: installation, catalog resolution of names, and errors that reach SQL."""
from __future__ import annotations

import duckdb
import pytest

import warehouse_ml as wml
from warehouse_ml.binding.catalog import resolve, split_name
from warehouse_ml.errors import UnknownRelation


def test_install_twice_is_harmless_and_installs_every_macro(con):
    wml.install(con)
    wml.install(con)
    macros = {r[0] for r in con.execute("SELECT function_name FROM duckdb_functions() WHERE function_type LIKE '%macro%'").fetchall()}
    for name in ["ml_train", "ml_predict", "ml_evaluate", "ml_explain", "ml_explain_row", "ml_models", "ml_deploy",
                 "ml_rollback", "ml_drop", "train_churn", "predict_churn", "train_conversion", "predict_ctr"]:
        assert name in macros
    assert con.execute("FROM ml_models()").fetchall() == []


def test_store_schema_is_created_in_the_database_file(con):
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'wml'").fetchall()}
    assert tables == {"model_versions", "deployments", "monitoring", "forecasts"}


@pytest.mark.parametrize("name,parts", [
    ("orders", ["orders"]),
    ("main.orders", ["main", "orders"]),
    ('"shop"."main"."Orders x"', ["shop", "main", "Orders x"]),
    ('"we""ird"', ['we"ird']),
])
def test_split_name(name, parts):
    assert split_name(name) == parts


def test_relation_names_resolve_quoted_and_qualified(con):
    con.execute('CREATE TABLE "Odd Name" AS SELECT 1 AS x')
    db = con.execute("SELECT current_database()").fetchone()[0]
    rel = resolve(con, f'"{db}"."main"."Odd Name"')
    assert rel.table == "Odd Name" and rel.columns == {"x": "INTEGER"}
    assert con.execute(f"SELECT x FROM {rel.sql}").fetchone() == (1,)
    assert resolve(con, "odd name").table == "Odd Name"  # case-insensitive, like DuckDB


def test_sql_in_a_relation_name_fails_and_drops_nothing(con):
    con.execute("CREATE TABLE users AS SELECT 1 AS user_id, 0 AS churned")
    with pytest.raises(duckdb.Error, match="UnknownRelation: no table or view named 'users; DROP TABLE users'"):
        con.execute("FROM ml_train('m', 'users; DROP TABLE users', label := 'churned')").fetchall()
    assert con.execute("SELECT count(*) FROM users").fetchone() == (1,)
    with pytest.raises(UnknownRelation):
        resolve(con, "users; DROP TABLE users")


def test_unknown_relation_suggests_the_closest_name(con):
    con.execute("CREATE TABLE user_features AS SELECT 1 AS x, 0 AS y")
    with pytest.raises(duckdb.Error, match="Did you mean 'user_features'"):
        con.execute("FROM ml_train('m', 'user_feature', label := 'y')").fetchall()
