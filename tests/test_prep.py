"""clean_events, data_quality, user_features, rfm_segments: known answers on hand-made tables, bad input."""
from __future__ import annotations

from datetime import date

import duckdb
import pytest

import warehouse_ml as wml

ORDERS = """CREATE TABLE orders AS SELECT * FROM (VALUES
    (1, TIMESTAMP '2024-01-01 10:00', 10.0, 0.0),
    (1, TIMESTAMP '2024-03-01 10:00', 20.0, 2.0),
    (1, TIMESTAMP '2024-04-20 08:00', 30.0, 0.0),
    (2, TIMESTAMP '2024-02-15 09:00', 5.0, 0.0),
    (2, TIMESTAMP '2024-03-31 22:00', 7.0, 1.0),
    (3, TIMESTAMP '2024-03-20 12:00', 100.0, 10.0),
    (4, TIMESTAMP '2024-04-05 00:00', 1.0, 0.0),
    (5, TIMESTAMP '2024-01-10 00:00', 50.0, 0.0),
    (5, TIMESTAMP '2024-06-15 00:00', 60.0, 0.0)
) v(user_id, order_ts, amount, discount)"""


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = wml.connect(str(tmp_path_factory.mktemp("prep") / "t.duckdb"))
    c.execute(ORDERS)
    c.execute("""CREATE TABLE ev AS SELECT * FROM (VALUES
        (1, 10, 'view', TIMESTAMP '2024-01-01 10:00', 2.0, true),
        (1, 10, 'view', TIMESTAMP '2024-01-01 10:00', 2.0, true),
        (1, 11, 'cart', TIMESTAMP '2024-01-02 10:00', NULL, NULL),
        (2, NULL, 'view', TIMESTAMP '2024-01-03 10:00', 4.0, false),
        (2, 12, NULL, NULL, 9.0, false),
        (3, 12, 'view', TIMESTAMP '2024-01-04 10:00', 4.0, false)
    ) v(user_id, product_id, event_type, ts, price, flag)""")
    yield c
    c.close()


def _dicts(con, sql):
    rel = con.sql(sql)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def _err(con, sql) -> str:
    with pytest.raises(duckdb.Error) as e:
        con.sql(sql).fetchall()
    return str(e.value)


# ---- user_features -----------------------------------------------------------------------------------------

def test_user_features_known_answers(con):
    rows = {r["user_id"]: r for r in _dicts(con, "FROM user_features('orders', as_of := DATE '2024-03-31')")}
    assert set(rows) == {1, 2, 3, 5}  # user 4 ordered only after as_of
    u1 = rows[1]  # orders 2024-01-01 and 2024-03-01 before the end of 2024-03-31
    assert u1["recency_days"] == 30 and u1["tenure_days"] == 90 and u1["frequency"] == 2
    assert u1["monetary"] == pytest.approx(30.0) and u1["avg_order_value"] == pytest.approx(15.0)
    assert u1["orders_30d"] == 0 and u1["orders_90d"] == 1  # 2024-03-01 is 30 days and 13h before the cutoff
    assert u1["avg_discount"] == pytest.approx(1.0) and u1["days_between_orders"] == pytest.approx(60.0)
    u2 = rows[2]  # an order at 22:00 on as_of counts (a DATE as_of means the end of that day)
    assert u2["recency_days"] == 0 and u2["frequency"] == 2 and u2["orders_30d"] == 1
    assert u2["days_between_orders"] == pytest.approx((45 * 24 + 13) / 24)
    assert rows[3]["days_between_orders"] is None and rows[3]["recency_days"] == 11
    assert "churned" not in u1


def test_user_features_types_and_default_as_of(con):
    rel = con.sql("FROM user_features('orders')")
    types = dict(zip(rel.columns, map(str, rel.types)))
    assert types["user_id"] == "INTEGER"  # the user column keeps its name and type
    assert types["recency_days"] == "BIGINT" and types["monetary"] == "DOUBLE"
    rows = {r["user_id"]: r for r in _dicts(con, "FROM user_features('orders')")}
    assert len(rows) == 5 and rows[5]["recency_days"] == 0  # default as_of: the last order (2024-06-15)
    assert rows[1]["recency_days"] == (date(2024, 6, 15) - date(2024, 4, 20)).days


def test_churn_label(con):
    rows = {r["user_id"]: r for r in _dicts(
        con, "FROM user_features('orders', as_of := DATE '2024-03-31', label_window := 30)")}
    # within (2024-03-31, 2024-04-30]: user 1 ordered 04-20 -> stays; user 4 is not a prior customer
    assert rows[1]["churned"] == 0
    assert rows[2]["churned"] == 1 and rows[3]["churned"] == 1
    assert rows[5]["churned"] == 1  # next order 2024-06-15 is outside the window
    assert 4 not in rows
    # future orders never leak into the features
    assert rows[1]["frequency"] == 2 and rows[1]["monetary"] == pytest.approx(30.0)
    rows90 = {r["user_id"]: r["churned"] for r in _dicts(
        con, "FROM user_features('orders', as_of := DATE '2024-03-31', label_window := 76)")}
    assert rows90[5] == 0  # 2024-06-15 is 76 days after 2024-03-31


def test_user_features_named_columns_and_quoted_relation(con):
    con.execute("""CREATE SCHEMA IF NOT EXISTS s2;
        CREATE OR REPLACE TABLE s2."My Orders" AS
        SELECT user_id AS "Customer", CAST(order_ts AS DATE) AS d, amount AS "Amt" FROM orders""")
    rel = con.sql("""FROM user_features('s2."My Orders"', as_of := '2024-03-31', user_col := 'customer',
                     time_col := 'd', amount_col := 'amt')""")
    assert rel.columns[0] == "Customer" and "avg_discount" not in rel.columns
    rows = {r[0]: r for r in rel.fetchall()}
    assert rows[1][rel.columns.index("recency_days")] == 30


def test_rfm_segments(con):
    rows = {r["user_id"]: r for r in _dicts(con, "FROM rfm_segments('orders', as_of := DATE '2024-03-31')")}
    assert set(rows) == {1, 2, 3, 5}
    for r in rows.values():
        assert 1 <= r["r_score"] <= 5 and 1 <= r["f_score"] <= 5 and 1 <= r["m_score"] <= 5
        assert r["rfm_score"] == f"{r['r_score']}{r['f_score']}{r['m_score']}"
    # recency: user 2 (0 days) most recent, user 5 (81 days) least
    assert rows[2]["r_score"] == 5 and rows[5]["r_score"] == 1
    assert rows[1]["f_score"] == rows[2]["f_score"] > rows[3]["f_score"]  # ties share a score
    assert rows[3]["m_score"] == 5
    assert rows[2]["segment"] == "Champions"
    assert rows[5]["segment"] == "Lost"


# ---- clean_events ------------------------------------------------------------------------------------------

def test_clean_events_default(con):
    rel = con.sql("FROM clean_events('ev') ORDER BY user_id, product_id")
    assert rel.columns == ["user_id", "product_id", "event_type", "ts", "price", "flag"]
    assert [str(t) for t in rel.types] == ["INTEGER", "INTEGER", "VARCHAR", "TIMESTAMP", "DECIMAL(2,1)", "BOOLEAN"]
    rows = rel.fetchall()
    # the whole-row duplicate is gone, the row without a product_id (an ID) is dropped, not imputed
    assert len(rows) == 4
    cart = rows[1]
    assert cart[1] == 11 and float(cart[4]) == 4.0 and cart[5] is False  # median price, most common flag
    missing_type = rows[2]
    assert missing_type[2] == "view" and missing_type[3] is None  # text: mode; timestamps are never filled


def test_clean_events_options(con):
    assert con.execute("SELECT count(*) FROM clean_events('ev', dedupe := [], required := [], fill := 'none')").fetchall()[0][0] == 6
    rows = con.sql("FROM clean_events('ev', required := ['event_type'], fill := 'zero') ORDER BY ALL").fetchall()
    assert len(rows) == 4 and all(r[2] is not None for r in rows)
    cart = [r for r in rows if r[2] == "cart"][0]
    assert float(cart[4]) == 0.0 and cart[5] is False
    one_per_user = con.sql("FROM clean_events('ev', dedupe := ['USER_ID'], required := []) ORDER BY user_id").fetchall()
    assert [r[0] for r in one_per_user] == [1, 2, 3]
    assert one_per_user[0][1] == 10  # the first row of the key by column values


# ---- data_quality ------------------------------------------------------------------------------------------

def test_data_quality(con):
    con.execute("""CREATE OR REPLACE TABLE dq AS SELECT range AS order_id, 'x' AS const,
        CASE WHEN range % 10 = 0 THEN range END AS mostly_null,
        CASE WHEN range = 3 THEN -5.0 ELSE range * 1.0 END AS amount,
        CASE WHEN range % 2 = 0 THEN 'Paid' ELSE 'paid' END AS channel
        FROM range(40) UNION ALL SELECT 39, 'x', NULL, 39.0, 'paid'""")
    rows = {r["column"]: r for r in _dicts(con, "FROM data_quality('dq')")}
    assert rows["const"]["distinct_count"] == 1 and any("constant" in i for i in rows["const"]["issues"])
    assert rows["mostly_null"]["null_fraction"] == pytest.approx(37 / 41)
    assert any("mostly missing" in i for i in rows["mostly_null"]["issues"])
    assert any("negative" in i for i in rows["amount"]["issues"])
    assert any("inconsistent spelling" in i for i in rows["channel"]["issues"])
    assert rows["order_id"]["duplicate_rows"] == 1
    con.execute("CREATE OR REPLACE TABLE ids AS SELECT range AS user_id, range % 3 AS grp FROM range(100)")
    rows = {r["column"]: r for r in _dicts(con, "FROM data_quality('ids')")}
    assert any("ID-like" in i for i in rows["user_id"]["issues"]) and rows["grp"]["issues"] == []


# ---- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    "FROM user_features('{}')", "FROM rfm_segments('{}')", "FROM clean_events('{}')", "FROM data_quality('{}')"])
def test_unknown_relation_and_injection(con, call):
    msg = _err(con, call.format("ordrs"))
    assert "UnknownRelation" in msg and "Did you mean 'orders'" in msg
    msg = _err(con, call.format("orders; DROP TABLE orders"))
    assert "UnknownRelation" in msg
    assert con.execute("SELECT count(*) FROM orders").fetchall()[0][0] == 9


def test_unknown_column_and_bad_values(con):
    msg = _err(con, "FROM user_features('orders', user_col := 'usr_id')")
    assert "UnknownColumn" in msg and "user_col" in msg and "Did you mean 'user_id'" in msg
    assert "Did you mean 'order_ts'" in _err(con, "FROM rfm_segments('orders', time_col := 'order_tss')")
    assert "time_col" in _err(con, "FROM user_features('orders', time_col := 'amount', amount_col := 'discount')")
    assert "amount_col" in _err(con, "FROM user_features('orders', amount_col := 'order_ts', time_col := 'order_ts')")
    assert "as_of" in _err(con, "FROM user_features('orders', as_of := 5)")
    assert "label_window" in _err(con, "FROM user_features('orders', as_of := DATE '2024-03-01', label_window := INTERVAL 30 DAY)")
    assert "label_window" in _err(con, "FROM user_features('orders', as_of := DATE '2024-03-01', label_window := -3)")
    msg = _err(con, "FROM user_features('orders', label_window := 30)")  # no as_of: everyone would be churned
    assert "label_window" in msg and "as_of := DATE" in msg
    assert "runs past" in _err(con, "FROM user_features('orders', as_of := DATE '2024-06-01', label_window := 90)")
    msg = _err(con, "FROM clean_events('ev', dedupe := ['usr'])")
    assert "dedupe" in msg and "Did you mean 'user_id'" in msg
    assert "a list" in _err(con, "FROM clean_events('ev', required := 'user_id')")
    assert "fill" in _err(con, "FROM clean_events('ev', fill := 'mean')")


def test_empty_relation(con):
    con.execute("CREATE OR REPLACE TABLE empty_o (user_id BIGINT, order_ts TIMESTAMP, amount DOUBLE)")
    assert con.sql("FROM user_features('empty_o')").fetchall() == []
    assert con.sql("FROM user_features('empty_o', as_of := DATE '2024-01-01', label_window := 30)").fetchall() == []
    assert con.sql("FROM rfm_segments('empty_o')").fetchall() == []
    assert con.sql("FROM clean_events('empty_o')").fetchall() == []
    rows = _dicts(con, "FROM data_quality('empty_o')")
    assert len(rows) == 3 and all("empty" in r["issues"][0] for r in rows)


def test_macros_on_a_view_and_after_reconnect(tmp_path):
    path = str(tmp_path / "v.duckdb")
    c = wml.connect(path)
    c.execute(ORDERS)
    c.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount >= 10")
    c.close()
    c = wml.connect(path)
    assert len(c.sql("FROM rfm_segments('big_orders')").fetchall()) == 3
    c.close()
