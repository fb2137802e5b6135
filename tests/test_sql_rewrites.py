"""Table-driven cases for the SQL text the package rewrites: one line per case, input -> expected output or error
(in the manner of sqlglot's ``validate_identity``). Statement splitting, the front door's ``f(*)`` rewrite, the
BigQuery ML and differential privacy translators. Fast: no training except one tiny linear model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.errors import InvalidArgument, ModelNotFound
from warehouse_ml.frontdoor import rewrite
from warehouse_ml.integrations import bigquery_dp, bigquery_ml
from warehouse_ml.integrations.bigquery_ml_functions import translate
from warehouse_ml.integrations.pgwire.sqltext import split_statements as split_message
from warehouse_ml.sqltext import split_statements

# -- splitting: text -> (statements, unfinished rest) ---------------------------------------------------------
SPLITS = [
    ("", ([], "")),
    ("SELECT 1", ([], "SELECT 1")),
    ("SELECT 1;", (["SELECT 1"], "")),
    ("SELECT 1; SELECT 2;", (["SELECT 1", "SELECT 2"], "")),
    (" ; ;SELECT 1;;", (["SELECT 1"], "")),
    ("SELECT ';' ; SELECT 2", (["SELECT ';'"], "SELECT 2")),
    ('SELECT ";"; x', (['SELECT ";"'], "x")),
    ("SELECT 'it''s;'; y", (["SELECT 'it''s;'"], "y")),
    ("SELECT E'a\\';b'; c", (["SELECT E'a\\';b'"], "c")),  # E'' strings escape with a backslash
    ("SELECT 1 -- c;\n; d", (["SELECT 1 -- c;"], "d")),
    ("SELECT /* ; /* ; */ ; */ 1; e", (["SELECT /* ; /* ; */ ; */ 1"], "e")),  # comments nest, as in DuckDB
    ("SELECT $$;$$; f", (["SELECT $$;$$"], "f")),
    ("SELECT $t$ $$; $t$; g", (["SELECT $t$ $$; $t$"], "g")),
    ("SELECT a$b$; h", (["SELECT a$b$"], "h")),  # $ inside a name starts no quote
    ("SELECT $1; i", (["SELECT $1"], "i")),
    ("-- only a comment;\n", ([], "")),
    ("/* c */;", ([], "")),
    ("SELECT 'abc", ([], "SELECT 'abc")),  # an open quote: the statement is unfinished
    ("SELECT 1; /* open", (["SELECT 1"], "/* open")),  # an open comment too
    ("SELECT 1; -- trailing", (["SELECT 1"], "")),
    ("SELECT 1; $$x", (["SELECT 1"], "$$x")),
    ("CREATE MODEL m OPTIONS(model_type='kmeans') AS SELECT 1; SELECT 2",
     (["CREATE MODEL m OPTIONS(model_type='kmeans') AS SELECT 1"], "SELECT 2")),  # what DuckDB cannot parse
]


@pytest.mark.parametrize("text,expected", SPLITS)
def test_split_statements(text, expected):
    assert split_statements(text) == expected
    statements, rest = expected  # the server sends an unfinished last statement on, for DuckDB to report
    assert split_message(text) == statements + ([rest] if rest else [])


# -- the front door: f(*) passes the row; unaliased row functions are named after the function -------------------
REWRITES = [
    ("SELECT 1", "SELECT 1"),
    ("SELECT count(*) FROM users", "SELECT count(*) FROM users"),
    ("SELECT 'predict_churn(*)' FROM users", "SELECT 'predict_churn(*)' FROM users"),
    ("SELECT predict_churn(u) FROM users u", "SELECT predict_churn(u) FROM users u"),
    ("SELECT predict_churn(*) FROM users", 'SELECT predict_churn("users") AS "predict_churn" FROM users'),
    ("SELECT id, predict_churn(*) FROM users u", 'SELECT id, predict_churn("u") AS "predict_churn" FROM users AS u'),
    ("SELECT PREDICT_CHURN(*) FROM Users", 'SELECT PREDICT_CHURN("Users") AS "PREDICT_CHURN" FROM Users'),
    ("SELECT ml_predict('churn', *) AS p FROM users", "SELECT ml_predict('churn', \"users\") AS p FROM users"),
    ("SELECT ml_predict_label('churn', *) FROM main.users",
     "SELECT ml_predict_label('churn', \"users\") AS \"ml_predict_label\" FROM main.users"),
    ("SELECT ml_explain_row('churn', *) FROM users AS x",
     "SELECT ml_explain_row('churn', \"x\") AS \"ml_explain_row\" FROM users AS x"),
    ("SELECT predict_churn(*) > 0.5 FROM users",
     'SELECT predict_churn("users") > 0.5 AS "predict_churn(*) > 0.5" FROM users'),
    ("SELECT predict_churn(*) FROM users WHERE predict_churn(*) > 0.5",
     'SELECT predict_churn("users") AS "predict_churn" FROM users WHERE predict_churn("users") > 0.5'),
    ("SELECT * FROM (SELECT predict_churn(*) FROM users) s",
     'SELECT * FROM (SELECT predict_churn("users") AS "predict_churn" FROM users) AS s'),
    ("SELECT predict_churn(*) FROM users; SELECT ml_predict('m', *) FROM t",
     'SELECT predict_churn("users") AS "predict_churn" FROM users;\nSELECT ml_predict(\'m\', "t") AS "ml_predict" FROM t'),
]
REWRITE_ERRORS = [
    ("SELECT predict_churn(*)", "argument '*': predict_churn(*) needs a FROM clause"),
    ("SELECT predict_churn(*) FROM users u JOIN orders o USING (id)", "ambiguous in a query that joins"),
    ("SELECT predict_churn(*) FROM (SELECT * FROM users)", "over a subquery or function needs an alias"),
    ("SELECT predict_churn(*) FROM read_parquet('u.parquet')", "over a subquery or function needs an alias"),
    ("SELECT predict_churn(*) FROM users)", "argument 'query': could not parse the SQL"),
]


@pytest.mark.parametrize("query,expected", REWRITES)
def test_front_door_rewrite(query, expected):
    assert rewrite(query) == expected


@pytest.mark.parametrize("query,message", REWRITE_ERRORS)
def test_front_door_rewrite_refuses(query, message):
    with pytest.raises(InvalidArgument) as e:
        rewrite(query)
    assert message in str(e.value)


# -- BigQuery ML: which statements are taken, how CREATE MODEL reads, what ML.* becomes ---------------------------
TAKEN = [
    ("CREATE MODEL m OPTIONS(model_type='linear_reg') AS SELECT 1", True),
    ("  -- c\n create or replace model m", True),
    ("/* x */ DROP MODEL m", True),
    ("SELECT * FROM ML.PREDICT(MODEL m, TABLE t)", True),
    ("SELECT 'ML.PREDICT(' FROM t", False),
    ("SELECT `ML.PREDICT(` FROM t", False),
    ("SELECT 1 -- ML.PREDICT(\n", False),
    ("SELECT ml_predict('m', t) FROM t", False),
    ("SELECT * FROM html.page(1)", False),
    ("CREATE TABLE model (x INT)", False),
]


@pytest.mark.parametrize("query,taken", TAKEN)
def test_bigquery_ml_takes_its_statements_only(query, taken):
    assert bigquery_ml.matches(query) is taken


CREATE_MODELS = [  # statement -> (name, replace, if_not_exists, options, select)
    ("CREATE MODEL `ds.m` OPTIONS(model_type='logistic_reg', input_label_cols=['y']) AS SELECT * FROM t",
     ("ds.m", False, False, {"model_type": "logistic_reg", "input_label_cols": ["y"]}, "SELECT * FROM t")),
    ("CREATE OR REPLACE MODEL ds.m OPTIONS(MODEL_TYPE='KMEANS', num_clusters=4, standardize_features=TRUE) AS SELECT a FROM t",
     ("ds.m", True, False, {"model_type": "KMEANS", "num_clusters": 4, "standardize_features": True}, "SELECT a FROM t")),
    ("CREATE MODEL IF NOT EXISTS p.ds.m OPTIONS(model_type='arima_plus', horizon=-3, x=null) AS SELECT * FROM t WHERE d > '2024-01-01'",
     ("p.ds.m", False, True, {"model_type": "arima_plus", "horizon": -3, "x": None}, "SELECT * FROM t WHERE d > '2024-01-01'")),
    ("CREATE MODEL m OPTIONS(model_type='linear_reg')", "argument 'AS SELECT': CREATE MODEL needs training data"),
    ("CREATE MODEL m TRANSFORM(x) OPTIONS(model_type='linear_reg') AS SELECT 1", "argument 'TRANSFORM': the TRANSFORM clause"),
    ("CREATE MODEL m OPTIONS(model_type=foo(1)) AS SELECT 1", "argument 'OPTIONS': cannot read the option value foo"),
]


@pytest.mark.parametrize("statement,expected", CREATE_MODELS)
def test_parse_create_model(statement, expected):
    if isinstance(expected, str):
        with pytest.raises(InvalidArgument) as e:
            bigquery_ml.parse_create_model(statement)
        assert expected in str(e.value)
        return
    spec = bigquery_ml.parse_create_model(statement)
    assert (spec.name, spec.replace, spec.if_not_exists, spec.options, spec.select_sql) == expected


@pytest.fixture(scope="module")
def bq_con():
    """One linear regression 'm' of y on x and g, trained through CREATE MODEL."""
    con = wml.connect()
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "g": rng.choice(["a", "b"], 60)})
    df["y"] = 2 * df["x"] + 0.1 * rng.normal(size=60)
    con.execute("CREATE TABLE t AS SELECT * FROM df")
    wml.sql(con, "CREATE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['y']) AS SELECT * FROM t").fetchall()
    yield con
    con.close()


ML_CALLS = [
    ("SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL m)",
     "SELECT * FROM (SELECT feature, importance AS importance_weight, importance AS importance_gain, importance AS "
     "importance_cover, direction FROM ml_explain('m') ORDER BY importance_gain DESC)"),
    ("SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL `m`)",
     "SELECT * FROM (SELECT feature, importance AS attribution, direction FROM ml_explain('m') ORDER BY attribution DESC)"),
    ("SELECT * FROM ML.TRAINING_INFO(MODEL m)",
     "SELECT * FROM (SELECT 0 AS training_run, 0 AS iteration, NULL::DOUBLE AS loss, NULL::DOUBLE AS eval_loss, "
     "CAST(round(seconds * 1000) AS BIGINT) AS duration_ms, version, algorithm, n_rows FROM ml_models() "
     "WHERE model = 'm' AND is_active)"),
    ("SELECT * FROM ML.PREDICT(MODEL m, TABLE t)",
     "SELECT * FROM (SELECT ml_predict('m', __wml_s) AS \"predicted_y\", __wml_s.* FROM t AS __wml_s)"),
    ("SELECT p.x FROM t JOIN ML.PREDICT(MODEL m, TABLE t) AS p USING (g)",
     "SELECT p.x FROM t JOIN (SELECT ml_predict('m', __wml_s) AS \"predicted_y\", __wml_s.* FROM t AS __wml_s) AS p USING (g)"),
    ("SELECT predicted_y FROM ML.PREDICT(MODEL m, (SELECT x, g FROM t WHERE x > 0))",
     "SELECT predicted_y FROM (SELECT ml_predict('m', __wml_s) AS \"predicted_y\", __wml_s.* "
     "FROM (SELECT x, g FROM t WHERE x > 0) AS __wml_s)"),
]
ML_CALL_ERRORS = [
    ("SELECT * FROM ML.FOO(MODEL m)", InvalidArgument, "argument 'ML.FOO': is not supported by warehouse-ml"),
    ("SELECT * FROM ML.PREDICT(m, TABLE t)", InvalidArgument, "argument 'ML.PREDICT': the first argument must be MODEL"),
    ("SELECT * FROM ML.PREDICT(MODEL m)", InvalidArgument, "argument 'ML.PREDICT': needs the data to score"),
    ("SELECT * FROM ML.PREDICT(MODEL m, t)", InvalidArgument, "argument 'ML.PREDICT': expected TABLE name or"),
    ("SELECT * FROM ML.PREDICT(MODEL m, TABLE t", InvalidArgument, "argument 'query': an ML.* call has no closing"),
    ("SELECT * FROM ML.PREDICT(MODEL m, TABLE t, STRUCT(1 AS foo))", InvalidArgument,
     "argument 'foo': is not an option of ML.PREDICT"),
    ("SELECT * FROM ML.PREDICT(MODEL nope, TABLE t)", ModelNotFound, "no model named 'nope'"),
    ("SELECT * FROM ML.FORECAST(MODEL m)", InvalidArgument, "argument 'ML.FORECAST': model 'm' is a regression model (linear). ML.FORECAST needs a model created with "
     "model_type='arima_plus'"),
    ("SELECT * FROM ML.RECOMMEND(MODEL m)", InvalidArgument, "model_type='matrix_factorization'"),
    ("SELECT * FROM ML.EVALUATE(MODEL m, TABLE t, STRUCT(0.5 AS threshold))", InvalidArgument,
     "argument 'ML.EVALUATE': takes MODEL and optionally the data"),
    ("SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL m, TABLE t)", InvalidArgument, "takes only MODEL"),
    ("SELECT ML.PREDICT(MODEL m, TABLE t)", InvalidArgument, "argument 'query': an ML.* function can only be used as a table"),
    ("SELECT x FROM t WHERE x IN (ML.PREDICT(MODEL m, TABLE t))", InvalidArgument, "can only be used as a table"),
]


@pytest.mark.parametrize("query,expected", ML_CALLS)
def test_bigquery_ml_translation(bq_con, query, expected):
    assert translate(bq_con, query) == expected


@pytest.mark.parametrize("query,error,message", ML_CALL_ERRORS)
def test_bigquery_ml_translation_refuses(bq_con, query, error, message):
    with pytest.raises(error) as e:
        translate(bq_con, query)
    assert message in str(e.value)


DP_SELECTS = [
    ("SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 1e-6, privacy_unit_column = user_id) "
     "channel, COUNT(*) AS n FROM orders GROUP BY channel",
     "SELECT channel, __wml_dp_0 AS n FROM (SELECT \"channel\", max(value) FILTER (WHERE metric = 'count') AS __wml_dp_0 "
     "FROM dp_aggregate('orders', group_by := ['channel'], metrics := ['count'], epsilon := 1.0, delta := 1e-06, "
     "privacy_unit := 'user_id') GROUP BY ALL) AS __wml_dp_release"),
    ("SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, privacy_unit_column = user_id) "
     "AVG(revenue contribution_bounds_per_group => (0, 500)) FROM orders",
     "SELECT __wml_dp_0 AS \"avg_revenue\" FROM (SELECT max(value) FILTER (WHERE metric = 'avg(revenue)') AS __wml_dp_0 "
     "FROM dp_aggregate('orders', group_by := [], metrics := ['avg(revenue)'], bounds := {'revenue': [0.0, 500.0]}, "
     "epsilon := 1.0, privacy_unit := 'user_id') GROUP BY ALL) AS __wml_dp_release"),
    ("SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = x) COUNT(*) FROM orders",
     "argument 'OPTIONS(epsilon)': expected a number, got 'x'"),
    ("SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(foo = 1) COUNT(*) FROM orders",
     "argument 'OPTIONS(foo)': is not a differential privacy option"),
]


@pytest.mark.parametrize("query,expected", DP_SELECTS)
def test_bigquery_differential_privacy_translation(query, expected):
    assert bigquery_dp.matches(query)
    if expected.startswith("argument "):
        with pytest.raises(InvalidArgument) as e:
            bigquery_dp.translate(query)
        assert expected in str(e.value)
    else:
        assert bigquery_dp.translate(query) == expected
