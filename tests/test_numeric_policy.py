"""One numeric policy on every path: NaN, inf and -inf are missing values, like NULL (README: Numbers).

Each test pins the same rows through the plain UDF, the front door (which inlines linear models as SQL when a
query reads a big enough table) and the SQL exported by ml_export_sql, or through the task's SQL function, and
checks the note that says what happened."""
from __future__ import annotations

import math

import pytest

import warehouse_ml as wml

ODD_ROWS = """CREATE TABLE odd AS SELECT * FROM (VALUES
    (1, 3.0, 0.5, 'paid'), (2, 'nan'::DOUBLE, 0.5, 'paid'), (3, NULL, 0.5, 'paid'),
    (4, 'inf'::DOUBLE, 0.5, 'paid'), (5, '-inf'::DOUBLE, NULL, 'email'), (6, 3.0, 'nan'::DOUBLE, NULL)
) v(row_id, x, z, channel)"""


@pytest.fixture
def linear(con):
    con.execute("""CREATE TABLE t AS SELECT range AS row_id, (range % 7)::DOUBLE + random() AS x,
                   CASE WHEN range % 10 = 0 THEN NULL ELSE random() END AS z,
                   CASE WHEN range % 3 = 0 THEN 'paid' ELSE 'email' END AS channel,
                   (range % 2 + (range % 7 > 3)::INT > 0)::INT AS y FROM range(400)""")
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchall()
    con.execute(ODD_ROWS)
    return con


def _three_paths(con, table: str) -> tuple[list, list, list]:
    """The UDF, the front door and ml_export_sql's macro (plain ml_predict, routed through the store's macro, is
    pinned to the UDF here too)."""
    plain = [r[0] for r in con.execute(f"SELECT wml_predict('m', s) FROM {table} s ORDER BY row_id").fetchall()]
    routed = [r[0] for r in con.execute(f"SELECT ml_predict('m', s) FROM {table} s ORDER BY row_id").fetchall()]
    assert routed == pytest.approx(plain, abs=1e-12)
    # the front door writes the model as SQL for a query over a big enough table: the rows again, many times
    con.execute(f"""CREATE OR REPLACE TABLE {table}_big AS FROM {table} UNION ALL SELECT * EXCLUDE (range)
                    REPLACE (row_id + 100 * (range + 1) AS row_id) FROM {table} CROSS JOIN range(4000)""")
    door = f"SELECT ml_predict('m', s) FROM {table}_big s WHERE row_id < 100 ORDER BY row_id"
    front = [r[0] for r in wml.sql(con, door).fetchall()]
    assert "ml_predict(" not in wml.frontdoor.rewrite(door, con)  # inlined
    assert "ml_predict(" in wml.frontdoor.rewrite(f"SELECT ml_predict('m', s) FROM {table} s", con)  # too few rows
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_temp AS FROM {table}")
    assert "ml_predict(" not in wml.frontdoor.rewrite(f"SELECT ml_predict('m', s) FROM {table}_temp s", con)  # unknown
    con.execute(con.execute("SELECT macro_sql FROM ml_export_sql('m')").fetchone()[0])
    exported = [r[0] for r in con.execute(f"SELECT predict_m_sql(s) FROM {table} s ORDER BY row_id").fetchall()]
    return plain, front, exported


def test_nan_inf_and_null_features_score_alike_on_every_path(linear):
    plain, front, exported = _three_paths(linear, "odd")
    for got in (front, exported):
        assert got == pytest.approx(plain, abs=1e-12)
    assert all(math.isfinite(p) for p in plain)
    assert plain[1] == pytest.approx(plain[2]) == pytest.approx(plain[3])  # NaN, NULL, inf: x is missing
    assert plain[0] != pytest.approx(plain[2])


def test_a_text_column_holding_numbers_scores_the_same_on_every_path(linear):
    linear.execute("CREATE TABLE odd_text AS SELECT row_id, CAST(x AS VARCHAR) AS x, z, channel FROM odd "
                   "UNION ALL SELECT 7, 'not a number', 0.5, 'paid'")
    plain, front, exported = _three_paths(linear, "odd_text")
    numeric, _, _ = _three_paths(linear, "odd")
    for got in (front, exported):
        assert got == pytest.approx(plain, abs=1e-12)
    assert plain[:6] == pytest.approx(numeric, abs=1e-12)
    assert plain[6] == pytest.approx(plain[2])  # unparsable text is missing, as TRY_CAST reads it


def test_a_decision_tree_scores_nan_inf_null_and_text_alike_on_every_path(con):
    """A decision tree: the UDF, ml_export_sql's macro, and the front door, which writes the tree as SQL unless the
    query reads a table known to hold at least SQL_MIN_ROWS['tree'] rows (a TEMP table, of unknown size: the UDF)."""
    from warehouse_ml.frontdoor import SQL_MIN_ROWS, rewrite

    rows = SQL_MIN_ROWS["tree"] + 20_000
    con.execute(f"""CREATE TABLE big AS SELECT range AS row_id, CASE WHEN range % 11 = 0 THEN NULL
                    ELSE (range % 7)::DOUBLE + random() END AS x, CASE WHEN range % 10 = 0 THEN 'nan'::DOUBLE
                    ELSE random() END AS z, CASE WHEN range % 3 = 0 THEN 'paid' ELSE 'email' END AS channel,
                    ((range % 2 + (range % 7 > 3)::INT > 0) <> (random() < 0.1))::INT AS y FROM range({rows})""")
    con.execute("CREATE TABLE t AS FROM big WHERE row_id < 5000")
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'decision_tree')").fetchall()
    con.execute(ODD_ROWS)
    con.execute("CREATE TABLE odd_text AS SELECT row_id, CAST(x AS VARCHAR) AS x, z, channel FROM odd "
                "UNION ALL SELECT 7, 'not a number', 0.5, 'paid' UNION ALL SELECT 8, '1e300', 0.5, 'social'")
    con.execute(con.execute("SELECT macro_sql FROM ml_export_sql('m')").fetchone()[0])
    con.execute("CREATE TEMP TABLE odd_temp AS FROM odd_text")
    for table in ("odd", "odd_text", "big", "odd_temp"):
        plain = con.execute(f"SELECT wml_predict('m', s) FROM {table} s ORDER BY row_id").fetchall()
        assert con.execute(f"SELECT predict_m_sql(s) FROM {table} s ORDER BY row_id").fetchall() == plain
        door = f"SELECT ml_predict('m', s) FROM {table} s ORDER BY row_id"
        assert ("ml_predict(" in rewrite(door, con)) == (table != "big")  # the UDF unless the table is known big
        assert wml.sql(con, door).fetchall() == plain
    odd = [p for (p,) in con.execute("SELECT wml_predict('m', s) FROM odd s ORDER BY row_id").fetchall()]
    assert odd[1] == odd[2] == odd[3]  # NaN, NULL and inf: x is missing


@pytest.mark.parametrize("algorithm", ["logistic", "auto", "random_forest"])
def test_training_on_a_feature_with_inf_treats_it_as_missing_and_says_so(con, algorithm):
    con.execute("""CREATE TABLE ti AS SELECT range AS row_id,
                   CASE WHEN range IN (5, 9) THEN 'inf'::DOUBLE WHEN range = 6 THEN 'nan'::DOUBLE
                        ELSE (range % 7)::DOUBLE END AS x, (range % 2) AS y FROM range(300)""")
    notes = con.execute(f"SELECT notes FROM ml_train('mi', 'ti', label := 'y', algorithm := '{algorithm}')").fetchone()[0]
    assert "3 NaN or infinite values of 'x' treated as missing (imputed like NULL)" in notes


def test_nan_and_inf_labels_are_missing_labels_left_out_with_a_note(con):
    con.execute("""CREATE TABLE tl AS SELECT range AS row_id, (range % 7)::DOUBLE AS x,
                   CASE WHEN range = 5 THEN 'nan'::DOUBLE WHEN range = 8 THEN 'inf'::DOUBLE WHEN range = 11 THEN NULL
                        ELSE (range % 2)::DOUBLE END AS y FROM range(300)""")
    task, n_train, n_test, notes = con.execute(
        "SELECT task, n_train, n_test, notes FROM ml_train('ml', 'tl', label := 'y', algorithm := 'logistic')").fetchone()
    assert task == "classification" and n_train + n_test == 297
    assert "3 rows with a missing label (1 NULL, 2 NaN or infinite) were left out" in notes
    metrics = dict(con.execute("SELECT metric, value FROM ml_evaluate('ml', 'tl')").fetchall())
    assert metrics["n_rows"] == 297


def test_an_infinite_value_in_one_series_is_a_missing_day_and_is_noted(con):
    con.execute("""CREATE TABLE s AS SELECT CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END AS sku,
                   DATE '2024-01-01' + (i // 2)::INT AS day,
                   CASE WHEN i = 101 THEN 'inf'::DOUBLE WHEN i = 103 THEN 'nan'::DOUBLE ELSE 10 + (i % 7) END AS units
                   FROM range(240) t(i)""")
    rows = con.execute("SELECT item, max(upper), any_value(method) FROM forecast_demand('s', 7, method := 'ets') "
                       "GROUP BY 1 ORDER BY 1").fetchall()
    assert all(math.isfinite(u) and u < 100 for _, u, _ in rows)
    assert "[2 NaN or infinite values treated as missing]" in rows[1][2] and "NaN" not in rows[0][2]
    qty = con.execute("SELECT item, order_qty, method FROM reorder_plan('s', lead_time := 7) ORDER BY 1").fetchall()
    assert all(math.isfinite(q) and q < 500 for _, q, _ in qty)
    assert "treated as missing" in qty[1][2]


def test_an_infinite_metric_in_an_ab_test_is_excluded_with_a_note(con):
    con.execute("""CREATE TABLE ab AS SELECT CASE WHEN range % 2 = 0 THEN 'A' ELSE 'B' END AS variant,
                   CASE WHEN range = 7 THEN 'inf'::DOUBLE WHEN range = 9 THEN 'nan'::DOUBLE
                        ELSE 10 + (range % 5) END AS revenue FROM range(400)""")
    rows = con.execute("SELECT variant, n, mean, p_value, n_excluded, notes FROM ab_test('ab', variant := 'variant', "
                       "metric := 'revenue', control := 'A') ORDER BY 1").fetchall()
    assert all(math.isfinite(r[2]) for r in rows) and math.isfinite(rows[1][3])
    assert rows[1][4] == 2  # both odd rows were in B
    assert "1 rows with an infinite metric treated as missing and excluded" in rows[1][5]


def test_infinite_prices_are_excluded_and_counted(con):
    con.execute("""CREATE TABLE p AS SELECT 'sku_1' AS sku, DATE '2024-01-01' + range::INT AS day,
                   CASE WHEN range = 3 THEN 'inf'::DOUBLE ELSE 8 + (range % 5) END AS price,
                   greatest(0, 60 - 4 * (8 + (range % 5)) + (range % 3))::DOUBLE AS units FROM range(200)""")
    n_excluded, note = con.execute("SELECT n_excluded, note FROM price_elasticity('p', item := 'sku')").fetchone()
    assert n_excluded == 1 and "missing (NULL, NaN or infinite)" in note


def test_infinite_segment_features_are_missing_values(con):
    con.execute("""CREATE TABLE users AS SELECT range AS user_id, (range % 5)::DOUBLE AS visits,
                   CASE WHEN range = 4 THEN 'inf'::DOUBLE ELSE (range % 3)::DOUBLE END AS spend FROM range(200)""")
    notes = con.execute("SELECT notes FROM ml_train('seg', 'users', task := 'segment', k := 2)").fetchone()[0]
    assert any("1 missing (NULL, NaN or infinite) feature values" in n for n in notes)
    assert con.execute("SELECT count(*) FROM users u WHERE ml_predict('seg', u) IS NULL").fetchone() == (0,)


def test_infinite_interaction_weights_are_ignored_and_counted(con):
    con.execute("""CREATE TABLE ev AS SELECT (range % 50) AS user_id, (range * 7 % 30) AS product_id,
                   CASE WHEN range = 3 THEN 'inf'::DOUBLE WHEN range = 4 THEN 'nan'::DOUBLE ELSE 1.0 END AS w
                   FROM range(2000)""")
    notes = con.execute("SELECT notes FROM ml_train('recs', 'ev', task := 'recommend', user := 'user_id', "
                        "item := 'product_id', weight := 'w', method := 'item_knn')").fetchone()[0]
    assert "2 rows with a missing (NULL, NaN or infinite), zero or negative w were ignored" in notes
    scores = [r[0] for r in con.execute("SELECT score FROM recommend_items('recs', 3)").fetchall()]
    assert len(scores) == 150 and all(math.isfinite(s) for s in scores)


def test_an_infinite_metric_in_key_drivers_is_excluded_with_a_note(con):
    con.execute("""CREATE TABLE kd AS SELECT CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS channel,
                   CASE WHEN range < 500 THEN 'before' ELSE 'after' END AS period,
                   CASE WHEN range = 7 THEN 'inf'::DOUBLE WHEN range = 9 THEN 'nan'::DOUBLE
                        ELSE 10.0 + (range % 3) + (range >= 500 AND range % 2 = 0)::INT END AS revenue FROM range(1000)""")
    rows = con.execute("SELECT control_value, test_value, notes FROM key_drivers('kd', metric := 'revenue', "
                       "dimensions := ['channel'], period := 'period', test := 'after', control := 'before')").fetchall()
    assert rows and all(math.isfinite(c) and math.isfinite(t) for c, t, _ in rows)
    assert "2 rows with a missing (NULL, NaN or infinite) metric or denominator excluded" in rows[0][2]


def test_the_server_scores_nan_inf_and_null_like_the_plain_function(linear, db_path):
    """The fourth path: a psycopg client of `warehouse-ml serve` gets the plain function's numbers."""
    psycopg = pytest.importorskip("psycopg")
    from .pgserver import serve

    plain, _, _ = _three_paths(linear, "odd")
    linear.close()  # the server opens the file read-only
    with serve(db_path) as (_, port), psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop",
                                                       sslmode="disable", autocommit=True) as client:
        served = [r[0] for r in client.execute("SELECT ml_predict('m', *) FROM odd ORDER BY row_id").fetchall()]
        inlined = [r[0] for r in client.execute("SELECT ml_predict('m', s) FROM odd s ORDER BY row_id").fetchall()]
    assert served == pytest.approx(plain, abs=1e-12) and inlined == pytest.approx(plain, abs=1e-12)
