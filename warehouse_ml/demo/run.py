"""``warehouse-ml demo``: build the shop in a DuckDB file and run the data-to-decision loop in SQL.

Every step is a SQL statement an analyst could type (printed before its result), run through the front
door, so the demo doubles as a tour of the SQL surface.
"""
from __future__ import annotations

import os
import sys
import time

import warehouse_ml as wml

from ..cli import format_result
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
    ("The model registry", "SELECT model, version, task, algorithm, is_active, n_rows, round(seconds, 2) AS seconds FROM ml_models()"),
]

SESSION_FEATURES = """
CREATE OR REPLACE TABLE session_features AS
SELECT session_id, traffic_source, device, pages, viewed_price, purchased FROM sessions
"""


def run_demo(db: str = "shop.duckdb", users: int = 5000, seed: int = 0, out=sys.stdout) -> None:
    started = time.perf_counter()
    say = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    for suffix in ("", ".wal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    con = wml.connect(db)
    say(f"[{_elapsed(started)}] building a shop of {users:,} users in {db} ...")
    truth = generate_shop(con, users=users, seed=seed)
    rows = ", ".join(f"{t} {n:,}" for t, n in truth["rows"].items())
    say(f"[{_elapsed(started)}] done: {rows}")
    con.execute(SESSION_FEATURES)
    for title, sql in STEPS:
        say(f"\n== {title}  [{_elapsed(started)}]")
        say("   " + " ".join(sql.split())[:400])
        result = wml.sql(con, sql)
        say(format_result(result, max_rows=15))
    say(f"\nDone in {_elapsed(started)}. Open the database with: warehouse-ml sql {db}")
    con.close()


def _elapsed(t0: float) -> str:
    s = time.perf_counter() - t0
    return f"{int(s // 60)}:{s % 60:04.1f}"


if __name__ == "__main__":
    run_demo(sys.argv[1] if len(sys.argv) > 1 else "shop.duckdb")
