"""BigQuery ML statements through the front door: tutorials' SQL run unchanged apart from table names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.errors import InvalidArgument, ModelNotFound, WmlError


def _penguins(n: int = 340, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n)
    sex = rng.choice(["MALE", "FEMALE", None], n, p=[0.48, 0.48, 0.04])
    flipper = rng.normal(200, 14, n)
    mass = 50 * flipper - 6000 + np.where(species == "Gentoo", 500, 0) + np.where(sex == "MALE", 300, 0) + rng.normal(0, 200, n)
    mass[:4] = np.nan
    return pd.DataFrame({"species": species, "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
                         "culmen_length_mm": rng.normal(44, 5, n), "culmen_depth_mm": rng.normal(17, 2, n),
                         "flipper_length_mm": flipper, "body_mass_g": mass, "sex": sex})


def _census(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    edu = rng.integers(1, 17, n)
    hours = rng.integers(10, 70, n)
    marital = rng.choice(["Married-civ-spouse", "Never-married", "Divorced"], n)
    logit = -9 + 0.05 * age + 0.35 * edu + 0.04 * hours + np.where(marital == "Married-civ-spouse", 1.5, 0)
    rich = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"age": age, "workclass": rng.choice(["Private", "Self-emp", "Gov"], n),
                         "marital_status": marital, "education_num": edu,
                         "occupation": rng.choice(["Sales", "Tech", "Craft", "Admin"], n), "hours_per_week": hours,
                         "functional_weight": rng.integers(10_000, 500_000, n),
                         "income_bracket": np.where(rich, " >50K", " <=50K")})


@pytest.fixture
def penguins(con):
    con.execute("CREATE SCHEMA bqml_tutorial")
    con.register("df", _penguins())
    con.execute("CREATE TABLE bqml_tutorial.penguins AS SELECT * FROM df")
    con.unregister("df")
    return con


def _q(con, sql):
    return wml.sql(con, sql).fetchall()


def _cols(con, sql):
    cur = wml.sql(con, sql)
    return [d[0] for d in cur.description], cur.fetchall()


def test_penguins_linear_regression_tutorial(penguins):
    con = penguins
    # https://cloud.google.com/bigquery/docs/linear-regression-tutorial, verbatim
    names, rows = _cols(con, """
        CREATE OR REPLACE MODEL `bqml_tutorial.penguins_model`
        OPTIONS
          (model_type='linear_reg',
          input_label_cols=['body_mass_g']) AS
        SELECT
          *
        FROM
          `bqml_tutorial.penguins`
        WHERE
          body_mass_g IS NOT NULL""")
    assert rows[0][:4] == ("bqml_tutorial.penguins_model", 1, "regression", "linear")
    names, rows = _cols(con, """
        SELECT
          *
        FROM
          ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`,
            (
            SELECT
              *
            FROM
              `bqml_tutorial.penguins`
            WHERE
              body_mass_g IS NOT NULL))""")
    metrics = dict(zip(names, rows[0]))
    assert metrics["r2_score"] > 0.8 and metrics["mean_absolute_error"] < 300
    assert {"mean_squared_error", "median_absolute_error", "explained_variance"} <= set(metrics)
    names, rows = _cols(con, """
        SELECT
          *
        FROM
          ML.PREDICT(MODEL `bqml_tutorial.penguins_model`,
            (
            SELECT
              *
            FROM
              `bqml_tutorial.penguins`
            WHERE
              island = 'Biscoe'))""")
    assert names[0] == "predicted_body_mass_g" and "species" in names and "island" in names
    assert rows and all(r[names.index("island")] == "Biscoe" for r in rows)
    pred = np.array([r[0] for r in rows if r[names.index("body_mass_g")] is not None])
    true = np.array([r[names.index("body_mass_g")] for r in rows if r[names.index("body_mass_g")] is not None])
    assert np.corrcoef(pred, true)[0, 1] > 0.9
    # the evaluation split of training, and what drives it
    names, rows = _cols(con, "SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`)")
    assert "r2_score" in names and isinstance(rows[0][names.index("r2_score")], float)
    names, rows = _cols(con, "SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL `bqml_tutorial.penguins_model`)")
    assert names[:4] == ["feature", "importance_weight", "importance_gain", "importance_cover"]
    assert rows[0][0] == "flipper_length_mm"


def test_census_logistic_regression_tutorial(con):
    con.execute("CREATE SCHEMA census")
    con.register("df", _census())
    con.execute("CREATE TABLE census.census_adult_income AS SELECT * FROM df")
    # the tutorial's view, in DuckDB (no BigQuery ML in it)
    con.execute("""
        CREATE OR REPLACE VIEW census.input_data AS
        SELECT age, workclass, marital_status, education_num, occupation, hours_per_week, income_bracket,
          CASE WHEN MOD(functional_weight, 10) < 8 THEN 'training'
               WHEN MOD(functional_weight, 10) = 8 THEN 'evaluation'
               WHEN MOD(functional_weight, 10) = 9 THEN 'prediction' END AS dataframe
        FROM census.census_adult_income""")
    # https://cloud.google.com/bigquery/docs/logistic-regression-prediction, verbatim
    rows = _q(con, """
        CREATE OR REPLACE MODEL
          `census.census_model`
        OPTIONS
          ( model_type='LOGISTIC_REG',
            auto_class_weights=TRUE,
            enable_global_explain=TRUE,
            data_split_method='NO_SPLIT',
            input_label_cols=['income_bracket'],
            max_iterations=15) AS
        SELECT * EXCEPT(dataframe)
        FROM
          `census.input_data`
        WHERE
          dataframe = 'training'""")
    assert rows[0][3] == "logistic" and any("test_size := 0" in n for n in rows[0][8])  # NO_SPLIT: no hold-out
    names, rows = _cols(con, """
        SELECT
          *
        FROM
          ML.EVALUATE (MODEL `census.census_model`,
            (
            SELECT
              *
            FROM
              `census.input_data`
            WHERE
              dataframe = 'evaluation'
            )
          )""")
    m = dict(zip(names, rows[0]))
    assert {"precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"} <= set(m)
    assert m["roc_auc"] > 0.75 and 0 < m["log_loss"] < 1
    names, rows = _cols(con, """
        SELECT
          *
        FROM
          ML.PREDICT (MODEL `census.census_model`,
            (
            SELECT
              *
            FROM
              `census.input_data`
            WHERE
              dataframe = 'prediction'
            )
          )""")
    assert names[:2] == ["predicted_income_bracket", "predicted_income_bracket_probs"]
    assert {r[0] for r in rows} <= {" >50K", " <=50K"}
    probs = rows[0][1]
    assert {p["label"] for p in probs} == {" >50K", " <=50K"} and abs(sum(p["prob"] for p in probs) - 1) < 1e-9
    names, rows = _cols(con, "SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL `census.census_model`)")
    assert names[:2] == ["feature", "attribution"] and len(rows) >= 5
    # a threshold moves predictions one way only
    n_hi = _q(con, "SELECT count(*) FROM ML.PREDICT(MODEL `census.census_model`, TABLE census.input_data, "
                   "STRUCT(0.9 AS threshold)) WHERE predicted_income_bracket = ' >50K'")[0][0]
    n_lo = _q(con, "SELECT count(*) FROM ML.PREDICT(MODEL `census.census_model`, TABLE census.input_data, "
                   "STRUCT(0.1 AS threshold)) WHERE predicted_income_bracket = ' >50K'")[0][0]
    assert n_hi < n_lo


def test_kmeans_and_training_info(penguins):
    con = penguins
    rows = _q(con, "CREATE MODEL bqml_tutorial.clusters OPTIONS(model_type='kmeans', num_clusters=3) AS "
                   "SELECT culmen_length_mm, culmen_depth_mm, flipper_length_mm FROM bqml_tutorial.penguins")
    assert rows[0][2:4] == ("segment", "kmeans")
    counts = _q(con, "SELECT centroid_id, count(*) FROM ML.PREDICT(MODEL bqml_tutorial.clusters, "
                     "TABLE bqml_tutorial.penguins) GROUP BY 1 ORDER BY 1")
    assert [c for c, _ in counts] == [1, 2, 3] and sum(n for _, n in counts) == 340
    info = _cols(con, "SELECT * FROM ML.TRAINING_INFO(MODEL bqml_tutorial.clusters)")
    assert "duration_ms" in info[0] and len(info[1]) == 1


def test_arima_plus_and_forecast(con):
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"store": s, "date": days, "sales": base + 5 * np.sin(np.arange(120) * 2 * np.pi / 7)
                            + rng.normal(0, 1, 120)}) for s, base in (("north", 50.0), ("south", 20.0))]
    con.register("df", pd.concat(frames))
    con.execute("CREATE TABLE sales AS SELECT store, date::DATE AS date, sales FROM df")
    rows = _q(con, """CREATE OR REPLACE MODEL demand
        OPTIONS(model_type='ARIMA_PLUS', time_series_timestamp_col='date', time_series_data_col='sales',
                time_series_id_col='store', horizon=30, auto_arima=TRUE)
        AS SELECT store, date, sales FROM sales""")
    assert rows[0][2:4] == ("forecast", "arima_plus")
    names, rows = _cols(con, "SELECT * FROM ML.FORECAST(MODEL demand, STRUCT(7 AS horizon, 0.9 AS confidence_level))")
    assert names[:7] == ["store", "forecast_timestamp", "forecast_value", "standard_error", "confidence_level",
                         "prediction_interval_lower_bound", "prediction_interval_upper_bound"]
    assert len(rows) == 14 and {r[0] for r in rows} == {"north", "south"}
    north = [r for r in rows if r[0] == "north"]
    assert all(30 < r[2] < 70 and r[5] <= r[2] <= r[6] and r[4] == 0.9 for r in north)
    assert str(north[0][1]).startswith("2024-04-30")
    with pytest.raises(InvalidArgument, match="horizon"):
        _q(con, "SELECT * FROM ML.FORECAST(MODEL demand, STRUCT(31 AS horizon))")
    with pytest.raises(InvalidArgument, match="ML.FORECAST"):
        _q(con, "SELECT * FROM ML.PREDICT(MODEL demand, TABLE sales)")


def test_matrix_factorization_and_recommend(con):
    rng = np.random.default_rng(0)
    users = rng.integers(1, 200, 1500)
    items = (users % 5) * 30 + rng.integers(0, 30, 1500)  # five taste groups of 30 items; ~7 purchases a user
    con.register("df", pd.DataFrame({"user_id": users, "item_id": items, "qty": rng.integers(1, 3, 1500).astype(float)}))
    con.execute("CREATE TABLE purchases AS SELECT * FROM df")
    rows = _q(con, """CREATE OR REPLACE MODEL recs OPTIONS(model_type='matrix_factorization', feedback_type='implicit',
                      user_col='user_id', item_col='item_id', rating_col='qty', num_factors=8)
                      AS SELECT user_id, item_id, sum(qty) AS qty FROM purchases GROUP BY ALL""")
    assert rows[0][2] == "recommend"
    names, rows = _cols(con, "SELECT * FROM ML.RECOMMEND(MODEL recs, (SELECT DISTINCT user_id FROM purchases WHERE user_id <= 10))")
    assert names[:3] == ["user_id", "item_id", "predicted_qty_confidence"]
    assert {r[0] for r in rows} <= set(range(1, 11)) and isinstance(rows[0][1], int)
    # recommendations stay within the user's taste group more often than not
    same = np.mean([(r[1] // 30) == (r[0] % 5) for r in rows])
    assert same > 0.5


def test_unsupported_model_types_options_and_functions_are_named(penguins):
    con = penguins
    before = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]
    with pytest.raises(InvalidArgument, match=r"'autoencoder' is not supported.*logistic_reg"):
        _q(con, "CREATE MODEL m OPTIONS(model_type='autoencoder') AS SELECT * FROM bqml_tutorial.penguins")
    with pytest.raises(InvalidArgument) as e:
        _q(con, "CREATE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g'], l1_reg=0.1, "
                "optimize_strategy='normal_equation') AS SELECT * FROM bqml_tutorial.penguins")
    assert "l1_reg" in str(e.value) and "optimize_strategy" in str(e.value) and "supported options" in str(e.value)
    with pytest.raises(InvalidArgument, match="TRANSFORM"):
        _q(con, "CREATE MODEL m TRANSFORM(flipper_length_mm * 2 AS f2, body_mass_g) "
                "OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) AS SELECT * FROM bqml_tutorial.penguins")
    with pytest.raises(InvalidArgument, match="feedback_type"):
        _q(con, "CREATE MODEL m OPTIONS(model_type='matrix_factorization', user_col='a', item_col='b', "
                "feedback_type='explicit') AS SELECT 1 AS a, 2 AS b")
    with pytest.raises(WmlError, match="nonexistent"):  # a label that is not a column: clean failure
        _q(con, "CREATE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['nonexistent']) "
                "AS SELECT * FROM bqml_tutorial.penguins")
    # nothing was created by the refused statements
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == before
    assert _q(con, "SELECT count(*) FROM ml_models()") == [(0,)]
    with pytest.raises(ModelNotFound, match="CREATE MODEL"):
        _q(con, "SELECT * FROM ML.PREDICT(MODEL nope, TABLE bqml_tutorial.penguins)")
    _q(con, "CREATE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) AS "
            "SELECT flipper_length_mm, body_mass_g FROM bqml_tutorial.penguins")
    with pytest.raises(InvalidArgument, match="ML.EXPLAIN_PREDICT.*ML.PREDICT"):
        _q(con, "SELECT * FROM ML.EXPLAIN_PREDICT(MODEL m, TABLE bqml_tutorial.penguins)")
    with pytest.raises(InvalidArgument, match="already exists.*OR REPLACE"):
        _q(con, "CREATE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) AS "
                "SELECT flipper_length_mm, body_mass_g FROM bqml_tutorial.penguins")
    assert _q(con, "CREATE MODEL IF NOT EXISTS m OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) "
                   "AS SELECT * FROM bqml_tutorial.penguins")[0][1].startswith("exists")
    # OR REPLACE adds a version; DROP MODEL removes every version and its training data
    assert _q(con, "CREATE OR REPLACE MODEL m OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) AS "
                   "SELECT flipper_length_mm, body_mass_g FROM bqml_tutorial.penguins")[0][1] == 2
    assert _q(con, "DROP MODEL m") == [("m", 2)]
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == before
    assert _q(con, "DROP MODEL IF EXISTS m") == [("m", 0)]


def test_strings_and_comments_are_not_mistaken_for_ml_calls(con):
    assert wml.sql(con, "SELECT 'ML.PREDICT(MODEL x)' AS s -- ML.FORECAST(\n").fetchall() == [("ML.PREDICT(MODEL x)",)]
