"""Plain SQL's cost per small query as the store grows, as ratios against the UDF on the same rows.

    python benchmarks/store_size_latency.py                          # 1 to 31 ten-feature logistic models
    python benchmarks/store_size_latency.py --models 1,11,41 --repeat 100

DuckDB binds every branch of the store's macro ``wml.predict_inline`` (one per active linear model) on every query
that calls ``ml_predict``, before it drops the other models' branches; the shortcuts (``predict_churn``) call
their model's own macro. For each store size (the churn model and ``N - 1`` other linear models over the same ten
features), a query scoring 100 rows with the churn model is timed three ways, median of ``--repeat``:

* ``predict_churn(t)``: the shortcut, through ``wml.predict_inline_churn``;
* ``ml_predict('churn', t)``: the generic call, through ``wml.predict_inline``;
* the reference, ``wml_predict('churn', t)``: the Python UDF itself, which no store size changes.

The figures are milliseconds per query and each one's ratio to the reference (below 1: faster than the UDF).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import warehouse_ml as wml

FEATURES = 10


def per_query_ms(con, sql: str, repeat: int) -> float:
    con.execute(sql).fetchall()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="1,6,11,21,31", help="store sizes (active linear models), increasing")
    ap.add_argument("--repeat", type=int, default=60)
    args = ap.parse_args()
    con = wml.connect(os.path.join(tempfile.mkdtemp(), "store.duckdb"))
    con.execute("SELECT setseed(0.5)")
    columns = ", ".join(f"random() * {k + 1} AS x{k}" for k in range(FEATURES))
    con.execute(f"CREATE TABLE users AS SELECT range AS user_id, {columns}, (random() < 0.3)::INT AS churned "
                "FROM range(2000)")
    con.execute("CREATE TABLE small AS FROM users LIMIT 100")
    con.execute("FROM train_churn('users', algorithm := 'logistic')").fetchall()
    paths = {"predict_churn": "SELECT avg(predict_churn(t)) FROM small t",
             "ml_predict": "SELECT avg(ml_predict('churn', t)) FROM small t",
             "UDF": "SELECT avg(wml_predict('churn', t)) FROM small t"}
    print(f"{'models':>6} " + " ".join(f"{name + ' ms':>17} {'ratio':>6}" for name in paths), flush=True)
    in_store = 1
    for size in (int(n) for n in args.models.split(",")):
        for k in range(in_store, size):
            con.execute(f"FROM ml_train('other{k}', 'users', label := 'churned', algorithm := 'logistic')").fetchall()
        in_store = max(in_store, size)
        ms = {name: per_query_ms(con, sql, args.repeat) for name, sql in paths.items()}
        print(f"{in_store:>6} " + " ".join(f"{ms[name]:>17.2f} {ms[name] / ms['UDF']:>6.2f}" for name in paths),
              flush=True)


if __name__ == "__main__":
    main()
