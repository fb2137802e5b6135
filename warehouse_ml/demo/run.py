"""``warehouse-ml demo``: build the shop in a DuckDB file and run the data-to-decision loop in SQL.

Every step is a SQL statement an analyst could type (printed before its result), run through the front
door, so the demo doubles as a tour of the SQL surface.
"""
from __future__ import annotations

import json
import os
import sys
import time

import duckdb

import warehouse_ml as wml

from ..frontdoor import relation
from ..functions.forecast_plot import plot_forecast
from ..outputs import DEMO_TABLE_COMMENT, check_replaceable, refuse_to_replace
from ..progress import duckdb_bar_only_on_a_terminal
from ..shell import render
from .shop import generate_shop

AS_OF = "DATE '2024-06-30'"

CHURN_FEATURES = f"""
CREATE OR REPLACE TABLE churn_features AS
SELECT f.*, u.channel, u.device, coalesce(t.tickets_90d, 0) AS support_tickets_90d
FROM user_features('orders', as_of := {AS_OF}, label_window := 90) f
JOIN users u USING (user_id)
LEFT JOIN (SELECT user_id, count(*) AS tickets_90d FROM support_tickets
           WHERE created_at < {AS_OF} AND created_at >= {AS_OF} - INTERVAL 90 DAY GROUP BY user_id) t USING (user_id)
"""

RECENT_SESSIONS = """
CREATE OR REPLACE VIEW recent_sessions AS
SELECT s.traffic_source, s.device, u.country, s.purchased,
       CASE WHEN s.started_at >= TIMESTAMP '2024-09-17' THEN 'last_14_days' ELSE 'previous_14_days' END AS period
FROM sessions s JOIN users u USING (user_id)
WHERE s.started_at >= TIMESTAMP '2024-09-03'
"""

CONVERSION_DRIVERS = """
CREATE OR REPLACE TABLE conversion_drivers AS
FROM key_drivers('recent_sessions', metric := 'purchased', denominator := '*',
                 dimensions := ['traffic_source', 'device', 'country'], period := 'period',
                 test := 'last_14_days', control := 'previous_14_days')
"""

STEPS: list[tuple[str, str]] = [
    ("Data quality of the raw orders", "FROM data_quality('orders')"),
    ("User features as of 2024-06-30, labelled with churn in the next 90 days", CHURN_FEATURES),
    ("Churn base rate", "SELECT count(*) AS users, round(avg(churned), 3) AS churn_rate FROM churn_features"),
    ("RFM segments", f"SELECT segment, count(*) AS users FROM rfm_segments('orders', as_of := {AS_OF}) GROUP BY ALL ORDER BY users DESC"),
    ("Train the churn model (algorithm chosen by cross-validation)",
     "SELECT version, algorithm, n_train, n_test, metrics, candidates FROM train_churn('churn_features')"),
    ("Hold-out metrics", "FROM ml_evaluate('churn')"),
    ("What drives churn", "FROM ml_explain('churn')"),
    ("Active customers (ordered in the last 60 days) most at risk: the star spelling, through the front door",
     "SELECT user_id, round(predict_churn(*), 3) AS p_churn, recency_days, frequency, support_tickets_90d, "
     "round(avg_discount, 2) AS avg_discount FROM churn_features WHERE recency_days <= 60 ORDER BY p_churn DESC LIMIT 10"),
    ("Why they are at risk",
     "SELECT user_id, ml_explain_row('churn', c, k := 3) AS top_reasons FROM churn_features c "
     "WHERE recency_days <= 60 ORDER BY predict_churn(c) DESC LIMIT 5"),
    ("Purchase conversion per session",
     "SELECT version, algorithm, metrics['roc_auc'] AS roc_auc, notes FROM train_conversion('session_features', label := 'purchased')"),
    ("Conversion by traffic source: observed vs predicted",
     "SELECT traffic_source, round(avg(purchased::INT), 4) AS observed, round(avg(predict_conversion(s)), 4) AS predicted "
     "FROM session_features s GROUP BY ALL ORDER BY observed DESC"),
    ("Which recommender to trust: every method, tuned for 20 s, against popularity on a time-ordered holdout",
     "SELECT method, round(precision_at_k, 3) AS precision_at_10, round(recall_at_k, 3) AS recall_at_10, "
     "round(ndcg_at_k, 3) AS ndcg_at_10, round(coverage, 3) AS coverage, round(ndcg_vs_popular, 2) AS ndcg_vs_popular, "
     "params FROM evaluate_recommender('events', 10, budget := '20s')"),
    ("Train the recommender once (method and settings tuned on the holdout), then look recommendations up",
     "SELECT version, algorithm, metrics['ndcg_at_k'] AS ndcg_at_10 FROM ml_train('recs', 'events', task := 'recommend', "
     "k := 10, params := {'budget': '20s'})"),
    ("Recommendations for three customers, next to the categories they bought",
     "WITH bought AS (SELECT o.user_id, string_agg(DISTINCT p.category, ', ' ORDER BY p.category) AS bought "
     "FROM order_items i JOIN orders o USING (order_id) JOIN products p USING (product_id) GROUP BY ALL), "
     "recs AS (SELECT r.\"user\", string_agg(p.category || ' #' || p.product_id, ', ' ORDER BY r.rank) AS recommended "
     "FROM recommend_items('recs', 4) r JOIN products p ON p.product_id = r.item GROUP BY ALL) "
     "SELECT b.user_id, b.bought, r.recommended FROM bought b JOIN recs r ON r.\"user\" = b.user_id "
     "ORDER BY b.user_id LIMIT 3"),
    ("Customer segments (k chosen by silhouette): segment_users stores a model, and says what it trained on",
     "SELECT DISTINCT model, version, active, notes FROM segment_users('churn_features')"),
    ("The segments described in words", "SELECT segment, n, round(share, 3) AS share, description FROM segment_profiles('churn_features')"),
    ("7-day demand forecast for the three best sellers (method chosen per series by backtest)",
     "SELECT item, date, round(forecast, 1) AS forecast, round(lower, 1) AS lower, round(upper, 1) AS upper, method "
     "FROM forecast_demand('daily_sales', 7, item := 'sku', date := 'day', value := 'units') "
     "WHERE item IN (SELECT sku FROM daily_sales GROUP BY sku ORDER BY sum(units) DESC LIMIT 3) ORDER BY item, date"),
    ("Which forecasting method is right for which item (rolling-origin backtest, 2 folds)",
     "SELECT method, count(*) AS items, round(avg(mase), 3) AS mase, round(avg(coverage), 3) AS coverage "
     "FROM backtest_demand('daily_sales', 7, folds := 2, item := 'sku', date := 'day', value := 'units') "
     "GROUP BY method ORDER BY mase"),
    ("Reorder plan: 7-day lead time, 95% service level, against on-hand inventory",
     "SELECT item, round(lead_time_demand, 1) AS lead_time_demand, round(safety_stock, 1) AS safety_stock, "
     "round(reorder_point, 1) AS reorder_point, on_hand, round(order_qty, 1) AS order_qty "
     "FROM reorder_plan('daily_sales', lead_time := 7, service_level := 0.95, on_hand := 'inventory', "
     "item := 'sku', date := 'day', value := 'units') ORDER BY order_qty DESC LIMIT 10"),
    ("The experiment's design: visitors per arm and the power to detect the planted +2 points on conversion",
     "SELECT count(*) FILTER (variant = 'A') AS visitors_a, count(*) FILTER (variant = 'B') AS visitors_b, "
     "round(avg(converted) FILTER (variant = 'A'), 4) AS baseline, "
     "round(ab_power(avg(converted) FILTER (variant = 'A'), 0.02, count(*) FILTER (variant = 'A')), 3) AS power "
     "FROM experiment"),
    ("A/B test on conversion (the simulation's true lift is +2.0 points)",
     "SELECT variant, n, round(mean, 4) AS mean, round(lift, 4) AS lift, round(ci_low, 4) AS ci_low, "
     "round(ci_high, 4) AS ci_high, round(p_value, 4) AS p_value, significant, test, round(srm_p_value, 3) AS srm_p "
     "FROM ab_test('experiment', variant := 'variant', metric := 'converted', control := 'A')"),
    ("A/B test on revenue per user, with CUPED on pre-period revenue",
     "SELECT variant, n, round(lift, 3) AS lift, round(ci_low, 3) AS ci_low, round(ci_high, 3) AS ci_high, "
     "round(p_value, 4) AS p_value, test, (SELECT round(value, 3) FROM demo_truth WHERE name = 'experiment.lift_revenue_per_user') AS true_lift "
     "FROM ab_test('experiment', variant := 'variant', metric := 'revenue', control := 'A', covariate := 'pre_revenue')"),
    ("Users per arm to detect +1 point on a 5% conversion rate", "SELECT ab_sample_size(0.05, 0.01) AS users_per_arm"),
    ("Sessions of the last 28 days, labelled by fortnight", RECENT_SESSIONS),
    ("Why did conversion move in the last 14 days? (the simulation planted a drop for paid search on mobile)",
     CONVERSION_DRIVERS),
    ("The key drivers, most important first",
     "SELECT rank, segment, round(control_value, 3) AS before, round(test_value, 3) AS after, "
     "round(share_of_change, 2) AS share_of_change, round(p_value, 4) AS p_value, significant, explained_by "
     "FROM conversion_drivers ORDER BY rank LIMIT 6"),
    ("Privacy: orders with each customer's acquisition channel, and a privacy budget of epsilon 3 for that table",
     "CREATE OR REPLACE TABLE order_channels AS SELECT o.user_id, u.channel, o.amount FROM orders o JOIN users u USING (user_id); "
     "FROM dp_set_budget('order_channels', epsilon := 3)"),
    ("Customers and average order by channel with differential privacy (BigQuery's spelling): each customer counts "
     "once, amounts clamped to [0, 300], OpenDP noise, rare channels suppressed",
     "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 1e-6, privacy_unit_column = user_id) "
     "channel, COUNT(*) AS customers, ROUND(AVG(amount contribution_bounds_per_group => (0, 300)), 2) AS avg_order "
     "FROM order_channels GROUP BY channel ORDER BY channel"),
    ("The same release with its noise (95% noise intervals) next to the exact average over all orders, which the "
     "private figure does not target exactly: it averages one random order per customer, clamped to [0, 300]",
     "SELECT d.channel, round(d.value, 2) AS private_avg, round(d.ci_low, 2) AS ci_low, round(d.ci_high, 2) AS ci_high, "
     "round(e.exact_avg, 2) AS exact_avg FROM dp_aggregate('order_channels', group_by := ['channel'], "
     "metrics := ['avg(amount)'], bounds := {'amount': [0, 300]}, epsilon := 1, privacy_unit := 'user_id') d "
     "JOIN (SELECT channel, avg(amount) AS exact_avg FROM order_channels GROUP BY channel) e USING (channel) ORDER BY channel"),
    ("What is left of the budget (a third release of epsilon 1.5 would be refused)", "FROM dp_budget('order_channels')"),
    ("A/B test on conversion released with differential privacy (epsilon 1): the interval carries the noise",
     "SELECT variant, n, round(lift, 4) AS lift, round(ci_low, 4) AS ci_low, round(ci_high, 4) AS ci_high, "
     "round(p_value, 4) AS p_value FROM ab_test('experiment', variant := 'variant', metric := 'converted', control := 'A', epsilon := 1)"),
    ("Price elasticity per product against the simulation's truth (sparse items get wide intervals, so the "
     "correlation is shown for items whose 95% interval is narrower than 1)",
     "SELECT count(*) AS items_estimated, round(avg((t.elasticity BETWEEN e.ci_low AND e.ci_high)::INT), 3) AS ci_coverage, "
     "count(*) FILTER (WHERE e.ci_high - e.ci_low <= 1) AS precise_items, "
     "round(corr(e.elasticity, t.elasticity) FILTER (WHERE e.ci_high - e.ci_low <= 1), 3) AS precise_corr_with_truth "
     "FROM price_elasticity('daily_sales', item := 'sku', price := 'price', units := 'units') e "
     "JOIN demo_truth_elasticity t ON t.sku = e.item WHERE e.elasticity IS NOT NULL"),
    ("Profit-maximising prices (within each product's observed range)",
     "SELECT item, round(current_price, 2) AS current_price, round(optimal_price, 2) AS optimal_price, "
     "round(expected_profit - current_profit, 2) AS profit_gain_per_day FROM optimal_price('daily_sales', cost := 'unit_cost') "
     "WHERE optimal_price IS NOT NULL ORDER BY profit_gain_per_day DESC LIMIT 8"),
    ("The model registry", "SELECT model, version, task, algorithm, is_active, n_rows, round(seconds, 2) AS seconds FROM ml_models()"),
]

SESSION_FEATURES = """
CREATE OR REPLACE TABLE session_features AS
SELECT session_id, traffic_source, device, pages, viewed_price, purchased FROM sessions
"""


def _demo_contents(con) -> dict:
    """What a demo database holds: its tables and views and how many versions of each model, to compare with
    the mark."""
    tables = sorted(r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name <> 'wml' AND NOT temporary "
        "AND database_name = current_database() UNION ALL SELECT view_name FROM duckdb_views() "
        "WHERE NOT internal AND NOT temporary AND database_name = current_database()").fetchall())
    models = dict(con.execute("SELECT model, count(*) FROM wml.model_versions GROUP BY ALL ORDER BY 1").fetchall()) \
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'wml' "
                       "AND table_name = 'model_versions'").fetchall()[0][0] else {}
    return {"tables": tables, "models": models}


def check_demo_target(db: str, force: bool = False) -> bool:
    """Whether ``db`` exists and may be replaced: only a database an earlier demo built and nobody changed since
    (no new tables, no new model versions), or anything with ``force``. Anything else raises, naming --force."""
    if not os.path.exists(db):
        if os.path.exists(db + ".wal") and not force:
            raise refuse_to_replace(db + ".wal", "--db", "is the write-ahead log of a database that is not there")
        return False
    if force:
        return True
    try:
        con = duckdb.connect(db, read_only=True)
    except duckdb.IOException:
        raise  # e.g. another process has it open for writing: the command says so in one line
    except duckdb.Error as e:
        raise refuse_to_replace(db, "--db", f"could not be opened as a demo database ({str(e).splitlines()[0]})") from None
    try:
        mark = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'demo_truth' "
                           "AND database_name = current_database()").fetchall()
        recorded = mark[0][0] if mark and mark[0][0] else ""
        if not recorded.startswith(DEMO_TABLE_COMMENT + ": "):
            raise refuse_to_replace(db, "--db", "was not created by the demo")
        if _demo_contents(con) != json.loads(recorded[len(DEMO_TABLE_COMMENT) + 2:]):
            raise refuse_to_replace(db, "--db", "was changed since the demo built it (new tables, views or model versions)")
    finally:
        con.close()
    return True


def _mark_as_demo(con) -> None:
    """Record what the demo built, so a later run may replace this file only while nobody added to it."""
    con.execute(f"COMMENT ON TABLE demo_truth IS $${DEMO_TABLE_COMMENT}: {json.dumps(_demo_contents(con))}$$")


def run_demo(db: str = "shop.duckdb", users: int = 5000, seed: int = 0, out=sys.stdout, force: bool = False) -> None:
    """Build the shop in ``db`` and run every step. An existing ``db`` is replaced only when an earlier demo
    built it and it is unchanged since, or with ``force``."""
    started = time.perf_counter()
    say = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    if check_demo_target(db, force):
        say(f"replacing {db}" + (" (--force)" if force else " (built by an earlier demo, unchanged since)"))
        for suffix in ("", ".wal"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    con = wml.connect(db)
    duckdb_bar_only_on_a_terminal(con)
    say(f"[{_elapsed(started)}] building a shop of {users:,} users in {db} ...")
    truth = generate_shop(con, users=users, seed=seed)
    rows = ", ".join(f"{t} {n:,}" for t, n in truth["rows"].items())
    say(f"[{_elapsed(started)}] done: {rows}")
    _mark_as_demo(con)
    con.execute(SESSION_FEATURES)
    for title, sql in STEPS:
        say(f"\n== {title}  [{_elapsed(started)}]")
        say("   " + " ".join(sql.split())[:400])
        step_started = time.perf_counter()
        rel = relation(con, sql)
        if rel is not None:
            say(render(rel.materialize(), max_rows=15))
        say(f"   ({time.perf_counter() - step_started:.1f} s)")
    top = con.execute("SELECT sku FROM daily_sales GROUP BY sku ORDER BY sum(units) DESC LIMIT 1").fetchone()[0]
    png = os.path.splitext(db)[0] + f"_forecast_{top}.png"
    try:
        check_replaceable(png, "--db", force)
        plot_forecast(con, "daily_sales", top, 28, png, item_col="sku", date="day", value="units")
        say(f"\nForecast chart of {top}: {png}")
        # the same item forecast by the global model with its price as a driver, today's price held as the plan
        con.execute("CREATE OR REPLACE TABLE price_plan AS SELECT s.sku, s.last_day + CAST(k AS INTEGER) AS day, "
                    "s.price FROM (SELECT sku, max(day) AS last_day, arg_max(price, day) AS price FROM daily_sales "
                    "GROUP BY sku) s, range(1, 29) t(k)")
        png = os.path.splitext(db)[0] + f"_forecast_drivers_{top}.png"
        check_replaceable(png, "--db", force)
        plot_forecast(con, "daily_sales", top, 28, png, item_col="sku", date="day", value="units", method="gbm",
                      features=["price"], future="price_plan")
        say(f"Forecast chart of {top} with its price as a driver (method gbm, price_plan holds today's price): {png}")
    except wml.WmlError as e:
        say(f"\nForecast chart not drawn: {e}")
    _mark_as_demo(con)
    say(f"Done in {_elapsed(started)}. Open the database with: warehouse-ml sql {db}")
    con.close()


def _elapsed(t0: float) -> str:
    s = time.perf_counter() - t0
    return f"{int(s // 60)}:{s % 60:04.1f}"


if __name__ == "__main__":
    run_demo(sys.argv[1] if len(sys.argv) > 1 else "shop.duckdb")
