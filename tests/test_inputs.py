"""Any relation a user can name is an input: tables, views, TEMP tables, CTEs, registered DataFrames and Arrow
tables, and query text, through the front door; tables, views and query text in plain DuckDB too."""
from __future__ import annotations


import duckdb
import pyarrow as pa
import pytest

import warehouse_ml as wml

from .conftest import churn_frame

FILTER = "frequency > 2"


@pytest.fixture
def inputs_con(db_path):
    """A file with table uf, view uv and TEMP table tuf of the same rows; a DataFrame and an Arrow table of them
    registered on the connection."""
    con = wml.connect(db_path)
    df = churn_frame(400)
    con.execute("CREATE TABLE uf AS FROM df")
    con.execute("CREATE VIEW uv AS FROM uf")
    con.execute("CREATE TEMP TABLE tuf AS FROM uf")
    con.register("dfuf", df)
    con.register("aruf", pa.Table.from_pandas(df))
    yield con
    con.close()


def _n_train(con, relation_sql: str, run=wml.sql) -> int:
    """Rows used to train (train + test) when the given relation argument is passed to ml_train."""
    row = run(con, f"SELECT n_train + n_test FROM ml_train('m', {relation_sql}, label := 'churned', "
                   "algorithm := 'logistic')").fetchall()
    return row[0][0]


def _native(con, sql):
    return con.execute(sql)


@pytest.mark.parametrize("relation_sql", [
    "'uf'", "'uv'", "'tuf'", "'dfuf'", "'aruf'",
    "relation := 'tuf'",
    "tuf", "relation := dfuf", "main.uf",  # unquoted names, rewritten to strings by the front door
])
def test_every_named_relation_trains_through_the_front_door(inputs_con, relation_sql):
    assert _n_train(inputs_con, relation_sql) == 400


@pytest.mark.parametrize("statement", [
    f"WITH x AS (FROM uf WHERE {FILTER}) FROM ml_train('m', 'x', label := 'churned', algorithm := 'logistic')",
    f"WITH x AS (FROM tuf WHERE {FILTER}) FROM ml_train('m', 'x', label := 'churned', algorithm := 'logistic')",
    f"WITH x AS (FROM uf), y AS (FROM x WHERE {FILTER}) FROM ml_train('m', 'y', label := 'churned', algorithm := 'logistic')",
    f"FROM ml_train('m', 'SELECT * FROM uf WHERE {FILTER}', label := 'churned', algorithm := 'logistic')",
    f"FROM ml_train('m', 'FROM dfuf WHERE {FILTER}', label := 'churned', algorithm := 'logistic')",
    f"FROM ml_train('m', (FROM uf WHERE {FILTER}), label := 'churned', algorithm := 'logistic')",
    f"FROM ml_train('m', (FROM tuf WHERE {FILTER}), label := 'churned', algorithm := 'logistic')",
    f"WITH x AS (FROM aruf) FROM ml_train('m', (FROM x WHERE {FILTER}), label := 'churned', algorithm := 'logistic')",
])
def test_ctes_queries_and_subqueries_train_through_the_front_door(inputs_con, statement):
    expected = inputs_con.execute(f"SELECT count(*) FROM uf WHERE {FILTER}").fetchall()[0][0]
    row = wml.sql(inputs_con, statement).fetchall()[0]
    assert row[4] + row[5] == expected < 400  # n_train + n_test: exactly the filtered rows


def test_plain_duckdb_reads_tables_views_and_query_text(inputs_con):
    expected = inputs_con.execute(f"SELECT count(*) FROM uf WHERE {FILTER}").fetchall()[0][0]
    assert _n_train(inputs_con, "'uf'", _native) == 400
    assert _n_train(inputs_con, "'uv'", _native) == 400
    assert _n_train(inputs_con, f"'FROM uf WHERE {FILTER}'", _native) == expected
    # a SQL macro over query() (the prep functions) reads query text as well
    rows = inputs_con.execute("SELECT count(*) FROM data_quality('SELECT user_id, channel FROM uf')").fetchall()
    assert rows == [(2,)]


def test_plain_duckdb_names_the_spelling_that_works_for_temp_tables_and_ctes(inputs_con):
    for sql in ["FROM data_quality('tuf')", "WITH x AS (FROM uf) FROM data_quality('x')", "FROM data_quality('FROM tuf')"]:
        with pytest.raises(duckdb.Error) as e:
            inputs_con.execute(sql).fetchall()
        assert "through the front door (wml.sql(con, ...)" in str(e.value)
        assert "SELECT * FROM orders WHERE" in str(e.value)
    assert wml.sql(inputs_con, "FROM data_quality('tuf')").fetchall()  # the spelling it names works


@pytest.mark.parametrize("text,problem", [
    ("SELECT 1 AS churned; DROP TABLE uf", "got SELECT, DROP"),
    ("DELETE FROM uf", "got DELETE"),
    ("CREATE TABLE x AS FROM uf", "got CREATE"),
    ("SELECT * FROM uf WHERE", "could not parse the query"),
])
def test_query_text_must_be_one_read_only_select(inputs_con, text, problem):
    quoted = text.replace("'", "''")
    for run in (wml.sql, _native):
        with pytest.raises(duckdb.Error) as e:
            run(inputs_con, f"FROM ml_train('m', '{quoted}', label := 'churned')").fetchall()
        assert "argument 'relation'" in str(e.value) and problem in str(e.value)
    assert inputs_con.execute("SELECT count(*) FROM uf").fetchall()[0] == (400,)
    assert inputs_con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'x'").fetchall()[0] == (0,)


def test_prep_macros_take_ctes_and_temp_tables(inputs_con):
    inputs_con.execute("""CREATE TEMP TABLE torders AS SELECT user_id, TIMESTAMP '2024-01-01' + to_days(CAST(frequency AS INTEGER))
                          AS order_ts, 10.0 AS amount FROM uf""")
    want = inputs_con.execute("SELECT count(DISTINCT user_id) FROM torders").fetchall()[0][0]
    got = wml.sql(inputs_con, "SELECT count(*) FROM user_features('torders')").fetchall()[0][0]
    cte = wml.sql(inputs_con, "WITH o AS (FROM torders WHERE amount > 0) SELECT count(*) FROM user_features('o')").fetchall()[0][0]
    assert got == cte == want


def test_scratch_copies_are_dropped_and_keep_types(inputs_con):
    inputs_con.execute("CREATE TEMP TABLE typed AS SELECT 1::HUGEINT AS k, 'a'::ENUM('a', 'b') AS e, DATE '2024-01-02' AS d, "
                       "1.5::DECIMAL(10, 2) AS m")
    rows = wml.sql(inputs_con, "SELECT \"column\", type FROM data_quality('typed') ORDER BY 1").fetchall()
    assert rows == [("d", "DATE"), ("e", "ENUM('a', 'b')"), ("k", "HUGEINT"), ("m", "DECIMAL(10,2)")]
    scratch = "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'wml_scratch'"
    assert inputs_con.execute(scratch).fetchall()[0] == (1,)
    wml.sql(inputs_con, "SELECT 1").fetchall()  # the connection's next statement drops the copy
    assert inputs_con.execute(scratch).fetchall()[0] == (0,)


def test_temp_inputs_work_on_a_read_only_file_and_inside_a_transaction(inputs_con, db_path):
    wml.sql(inputs_con, "BEGIN")
    assert _n_train(inputs_con, "'tuf'") == 400
    wml.sql(inputs_con, "COMMIT")
    inputs_con.close()
    ro = wml.connect(db_path, read_only=True)
    try:
        ro.execute("CREATE TEMP TABLE t AS FROM uf LIMIT 50")
        assert wml.sql(ro, "SELECT count(*) FROM data_quality('t')").fetchall()[0][0] == 7
        assert wml.sql(ro, "WITH x AS (FROM uf LIMIT 5) SELECT count(*) FROM data_quality('x')").fetchall()[0][0] == 7
    finally:
        ro.close()


def test_messages_name_the_relation_the_user_passed(inputs_con):
    with pytest.raises(duckdb.Error, match="relation 'tuf' has no column 'churnd'"):
        wml.sql(inputs_con, "FROM ml_train('m', 'tuf', label := 'churnd')").fetchall()
    with pytest.raises(duckdb.Error, match="relation 'FROM uf WHERE frequency > 2' has no column 'churnd'"):
        wml.sql(inputs_con, f"FROM ml_train('m', 'FROM uf WHERE {FILTER}', label := 'churnd')").fetchall()


def test_a_cte_does_not_see_itself_or_later_ctes(inputs_con):
    """Inside CTE x, 'x' is not the CTE (SQL scoping): here it names the table x."""
    inputs_con.execute("CREATE TABLE x AS SELECT 1 AS a")
    rows = wml.sql(inputs_con, "WITH x AS (SELECT count(*) AS n FROM data_quality('x')), y AS (FROM uf LIMIT 3) "
                               "SELECT n, (SELECT count(*) FROM data_quality('y')) FROM x").fetchall()
    assert rows == [(1, 7)]


def test_read_only_server_takes_ctes_and_query_text(db_path):
    """Over the read-only server a CTE and query text work; CREATE TEMP TABLE is refused there, as PostgreSQL
    refuses every CREATE in a read-only transaction (TEMP tables are tested through the front door above)."""
    psycopg = pytest.importorskip("psycopg")
    from .pgserver import serve

    con = wml.connect(db_path)
    con.register("df", churn_frame(300))
    con.execute("CREATE TABLE uf AS FROM df")
    con.close()
    with serve(db_path) as (_, port):  # read-only, as BI users get it
        with psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="shop",
                             autocommit=True, sslmode="disable", connect_timeout=10) as c:
            cte = c.execute(f"WITH x AS (SELECT user_id, frequency FROM uf WHERE {FILTER}) "
                            "SELECT count(*) FROM data_quality('x')").fetchall()
            text = c.execute("SELECT count(*) FROM data_quality('SELECT user_id, channel, churned FROM uf')").fetchall()
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("CREATE TEMP TABLE mine AS SELECT user_id FROM uf LIMIT 10")
    assert cte == [(2,)] and text == [(3,)]
