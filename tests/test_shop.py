"""The demo shop generator: schema, determinism, internal consistency and real, known structure."""
from __future__ import annotations

import time
from datetime import date

import numpy as np
import pytest

from warehouse_ml.tasks import abtest as ab

import warehouse_ml as wml
from warehouse_ml.demo.shop import generate_shop

SCHEMA = {
    "users": ["user_id BIGINT", "signup_date DATE", "channel VARCHAR", "country VARCHAR", "device VARCHAR"],
    "products": ["product_id BIGINT", "sku VARCHAR", "category VARCHAR", "base_price DOUBLE", "unit_cost DOUBLE"],
    "orders": ["order_id BIGINT", "user_id BIGINT", "order_ts TIMESTAMP", "amount DOUBLE", "discount DOUBLE",
               "n_items INTEGER"],
    "order_items": ["order_id BIGINT", "product_id BIGINT", "qty INTEGER", "unit_price DOUBLE"],
    "sessions": ["session_id BIGINT", "user_id BIGINT", "started_at TIMESTAMP", "traffic_source VARCHAR",
                 "device VARCHAR", "pages INTEGER", "viewed_price DOUBLE", "added_to_cart BOOLEAN", "purchased BOOLEAN"],
    "events": ["user_id BIGINT", "product_id BIGINT", "event_type VARCHAR", "ts TIMESTAMP"],
    "support_tickets": ["ticket_id BIGINT", "user_id BIGINT", "created_at TIMESTAMP", "topic VARCHAR"],
    "experiment": ["visitor_id BIGINT", "variant VARCHAR", "converted INTEGER", "revenue DOUBLE", "pre_revenue DOUBLE"],
    "daily_sales": ["sku VARCHAR", "day DATE", "units DOUBLE", "price DOUBLE", "unit_cost DOUBLE"],
    "inventory": ["sku VARCHAR", "on_hand DOUBLE"],
    "demo_truth": ["name VARCHAR", "value DOUBLE"],
    "demo_truth_elasticity": ["sku VARCHAR", "elasticity DOUBLE"],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    con = wml.connect(str(tmp_path_factory.mktemp("shop") / "shop.duckdb"))
    t0 = time.perf_counter()
    truth = generate_shop(con, users=5000, seed=0)
    seconds = time.perf_counter() - t0
    yield con, truth, seconds
    con.close()


def one(con, sql):
    return con.execute(sql).fetchall()[0]


def test_schema(shop):
    con, truth, seconds = shop
    assert seconds < 20  # a few seconds on a laptop core; generous for slow CI machines
    for table, cols in SCHEMA.items():
        got = [f"{c} {t}" for c, t in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
            [table]).fetchall()]
        assert got == cols, table
    for table, n in truth["rows"].items():
        assert one(con, f'SELECT count(*) FROM "{table}"')[0] == n, table
    assert 250 <= truth["rows"]["products"] <= 400
    assert set(r[0] for r in con.execute("SELECT DISTINCT channel FROM users").fetchall()) == {
        "organic", "paid_search", "social", "email", "referral"}
    assert set(r[0] for r in con.execute("SELECT DISTINCT event_type FROM events").fetchall()) == {"view", "cart", "purchase"}
    lo, hi = one(con, "SELECT min(order_ts), max(order_ts) FROM orders")
    assert lo.date() >= date(2023, 1, 1) and hi.date() <= date(2024, 9, 30)


def test_determinism(tmp_path):
    def digest(path, seed):
        c = wml.connect(str(tmp_path / path))
        truth = generate_shop(c, users=300, seed=seed)
        sums = {t: one(c, f'SELECT count(*), sum(hash(x)) FROM "{t}" x') for t in SCHEMA}
        c.close()
        return truth, sums

    t1, a = digest("a.duckdb", 7)
    t2, b = digest("b.duckdb", 7)
    _, other = digest("c.duckdb", 8)
    assert a == b and t1 == t2
    assert a["orders"] != other["orders"] and a["daily_sales"] != other["daily_sales"]


def test_consistency(shop):
    con, _, _ = shop
    # purchases in events are exactly the order items, at the order time
    assert one(con, """SELECT count(*) FROM (
        SELECT o.user_id, i.product_id, o.order_ts FROM order_items i JOIN orders o USING (order_id)
        EXCEPT ALL SELECT user_id, product_id, ts FROM events WHERE event_type = 'purchase')""")[0] == 0
    assert one(con, "SELECT count(*) FROM events WHERE event_type = 'purchase'")[0] == one(con, "SELECT count(*) FROM order_items")[0]
    # amount = items - discount; n_items = units; every order has items and a known user
    bad = one(con, """SELECT count(*) FROM orders o JOIN (
        SELECT order_id, sum(qty * unit_price) AS gross, sum(qty) AS units FROM order_items GROUP BY 1) i USING (order_id)
        WHERE abs(o.amount + o.discount - i.gross) > 0.02 OR o.n_items <> i.units""")[0]
    assert bad == 0
    assert one(con, "SELECT count(*) FROM orders WHERE user_id NOT IN (SELECT user_id FROM users)")[0] == 0
    assert one(con, "SELECT count(*) FROM orders o JOIN users u USING (user_id) WHERE o.order_ts::DATE < u.signup_date")[0] == 0
    assert one(con, "SELECT count(*) FROM (SELECT order_id, product_id FROM order_items GROUP BY ALL HAVING count(*) > 1)")[0] == 0
    # no duplicate event rows
    assert one(con, "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM events)) FROM events")[0] == 0


def test_churn_has_signal(shop):
    con, _, _ = shop
    rows = dict(con.execute("""SELECT recency_days > 60, avg(churned)
        FROM user_features('orders', as_of := DATE '2024-06-30', label_window := 90) GROUP BY 1""").fetchall())
    assert rows[True] > 0.75 and rows[False] < 0.35
    # frequency and discounts lower churn among recent customers; support tickets raise it
    f = dict(con.execute("""SELECT frequency >= 8, avg(churned)
        FROM user_features('orders', as_of := DATE '2024-06-30', label_window := 90)
        WHERE recency_days <= 60 GROUP BY 1""").fetchall())
    assert f[True] < f[False]


def test_conversion_and_experiment_structure(shop):
    con, truth, _ = shop
    conv = dict(con.execute("SELECT traffic_source, avg(purchased::INT) FROM sessions GROUP BY 1").fetchall())
    assert conv["email"] > conv["organic"] > conv["social"]
    pages = con.execute("SELECT pages >= 6, avg(purchased::INT) FROM sessions GROUP BY 1 ORDER BY 1").fetchall()
    assert pages[1][1] > pages[0][1]
    assert one(con, "SELECT count(*) FROM sessions WHERE purchased AND NOT added_to_cart")[0] == 0
    exp = truth["experiment"]
    assert exp["lift_conversion"] == pytest.approx(0.02) and exp["lift_revenue_per_user"] > 0
    stored = dict(con.execute("SELECT name, value FROM demo_truth").fetchall())
    assert stored["experiment.lift_conversion"] == pytest.approx(0.02)
    assert stored["params.churn_b_tickets"] > 0
    a, b = (one(con, f"SELECT avg(converted) FROM experiment WHERE variant = '{v}'")[0] for v in "AB")
    assert 0 < b - a < 0.04  # +2 points; one standard error is about 0.6 points at the sized experiment
    # sized for 95% power to detect the planted lift, whatever the number of users
    per_arm = stored["experiment.visitors_per_arm"]
    assert stored["experiment.power_conversion"] > 0.94 and one(con, "SELECT count(*) FROM experiment")[0] == 2 * per_arm
    assert ab.power(exp["baseline_conversion"], 0.02, per_arm) == pytest.approx(stored["experiment.power_conversion"])
    assert one(con, "SELECT corr(revenue, pre_revenue) FROM experiment")[0] > 0.3  # CUPED has something to use


def test_daily_sales_structure(shop):
    con, truth, _ = shop
    stored = dict(con.execute("FROM demo_truth_elasticity").fetchall())
    assert stored == pytest.approx(truth["elasticity"]) and all(e < 0 for e in stored.values())
    per_sku = con.execute("""SELECT sku, count(*) AS n, date_diff('day', min(day), max(day)) + 1 AS span,
        avg((units = 0)::INT) AS zero_share FROM daily_sales GROUP BY 1""").fetchall()
    assert sum(1 for _, n, span, _ in per_sku if n < span) >= 3  # a few items with missing days
    assert sum(1 for *_, z in per_sku if z > 0.6) >= 20  # intermittent long tail
    assert sum(1 for _, n, _, _ in per_sku if n < 60) >= 3  # new products with short histories
    # the price response is the true elasticity: log-log slope of a head item, price varies with promotions
    top = con.execute("""SELECT sku FROM daily_sales GROUP BY 1 HAVING count(*) > 500 ORDER BY sum(units) DESC LIMIT 5""").fetchall()
    errs = []
    for (sku,) in top:
        rows = np.array(con.execute("SELECT units, price FROM daily_sales WHERE sku = ? AND units > 0", [sku]).fetchall())
        slope = np.polyfit(np.log(rows[:, 1]), np.log(rows[:, 0]), 1)[0]
        errs.append(abs(slope - truth["elasticity"][sku]))
    assert np.median(errs) < 0.6
    assert one(con, "SELECT count(*), min(on_hand) FROM inventory") == (truth["rows"]["products"], 0.0)
