"""Spark scaling: scoring and forecasting on local[1] vs local[2], against DuckDB on the same work.

    python benchmarks/spark_scaling.py                          # 10M rows, 2,000 series (the issue's sizes)
    python benchmarks/spark_scaling.py --rows 1000000 --series 500

A gradient-boosted churn model is trained in DuckDB (50,000 rows). Then, in this run:
- DuckDB scores ``--rows`` generated rows with ``avg(ml_predict('churn', t))`` and forecasts ``--series`` daily
  series of 365 days with ``forecast_demand(..., method := 'ets')``;
- for each of local[1] and local[2], a fresh Spark (its own process) starts (start-up timed separately),
  generates the same number of rows from the same formula in Spark, scores them with the same model read from
  the DuckDB file, and forecasts the same series (read from Parquet) with ``warehouse_ml.spark.forecast_demand``.
It prints rows/s and series/s, the local[2] / local[1] speed-up and Spark / DuckDB ratios. Spark's work is
timed after a small warm-up query over as many partitions (every Python worker started, model loaded), DuckDB's
likewise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

TRAIN_ROWS = 50_000
# One formula for both engines (DuckDB's random() and Spark's rand() both give uniform [0, 1)).
FEATURES = {"f0": "r0 * 2 - 1", "f1": "r1 * 2 - 1", "f2": "r2 * 10",
            "f3": "CASE WHEN r3 < 0.05 THEN NULL ELSE r3 * 3 END",
            "channel": "CASE WHEN r4 < 0.5 THEN 'organic' WHEN r4 < 0.8 THEN 'paid' ELSE 'email' END"}
LABEL = "CAST(1.5 * (r0 * 2 - 1) - (r1 * 2 - 1) + 0.2 * r2 * 10 - 1 + (r5 - 0.5) * 2 > 0 AS INT)"


def rows_sql(source: str, rand: str) -> str:
    draws = ", ".join(f"{rand.format(i)} AS r{i}" for i in range(6))
    cols = ", ".join(f"{expr} AS {name}" for name, expr in FEATURES.items())
    return f"SELECT id AS user_id, {cols}, {LABEL} AS churned FROM (SELECT id, {draws} FROM {source})"


def sales_frame(series: int, days: int = 365, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    level = rng.gamma(2, 10, (series, 1))
    y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 7)) + rng.normal(0, 1, (series, days)) * np.sqrt(level)
    return pd.DataFrame({"item": np.repeat([f"SKU-{i:05d}" for i in range(series)], days),
                         "day": np.tile(pd.date_range("2024-01-01", periods=days).date, series),
                         "units": np.maximum(y, 0).ravel()})


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_duckdb(db: str, sales: str, rows: int, method: str) -> dict:
    import warehouse_ml as wml

    con = wml.connect(db)
    con.execute("SELECT setseed(0.42)")
    con.execute(f"CREATE OR REPLACE TABLE t AS {rows_sql(f'(SELECT range AS id FROM range({rows}))', 'random()')}")
    con.execute("SELECT avg(ml_predict('churn', t)) FROM (FROM t LIMIT 1000) t").fetchall()  # warm-up
    score_s, _ = timed(lambda: con.execute("SELECT avg(ml_predict('churn', t)) FROM t").fetchall())
    con.execute(f"CREATE OR REPLACE TABLE sales AS SELECT * FROM read_parquet('{sales}')")
    fc_s, n = timed(lambda: con.execute(f"SELECT count(*) FROM forecast_demand('sales', 28, method := '{method}')")
                    .fetchone()[0])
    con.close()
    return {"score_s": score_s, "forecast_s": fc_s, "forecast_rows": n}


def run_spark(cores: int, db: str, sales: str, rows: int, method: str) -> dict:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    start_s, spark = timed(lambda: __import__("pyspark.sql", fromlist=["SparkSession"]).SparkSession.builder
                           .master(f"local[{cores}]").config("spark.ui.enabled", "false")
                           .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
                           .config("spark.sql.shuffle.partitions", str(2 * cores))
                           .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    import warehouse_ml.spark as wml_spark

    install_s, _ = timed(lambda: wml_spark.install(spark, models=db))
    parts = 4 * cores  # a few tasks per core, so both cores stay busy to the end
    for view, n in (("warm", 1000 * parts), ("t", rows)):  # warm-up: every Python worker started, model loaded
        spark.range(0, n, numPartitions=parts).createOrReplaceTempView(f"{view}_ids")
        spark.sql(rows_sql(f"{view}_ids", "rand(42 + {0})")).createOrReplaceTempView(view)
    spark.sql("SELECT avg(ml_predict('churn', struct(*))) FROM warm").collect()
    score_s, _ = timed(lambda: spark.sql("SELECT avg(ml_predict('churn', struct(*))) FROM t").collect())
    df = spark.read.parquet(sales)
    fc_s, n = timed(lambda: wml_spark.forecast_demand(df, 28, method=method).count())
    spark.stop()
    return {"start_s": start_s, "install_s": install_s, "score_s": score_s, "forecast_s": fc_s, "forecast_rows": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=2_000)
    ap.add_argument("--method", default="ets")
    ap.add_argument("--spark-worker", type=int, help=argparse.SUPPRESS)  # internal: one Spark run in a child
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.spark_worker:
        db, sales = os.path.join(args.dir, "bench.duckdb"), os.path.join(args.dir, "sales.parquet")
        print(json.dumps(run_spark(args.spark_worker, db, sales, args.rows, args.method)))
        return
    import warehouse_ml as wml

    tmp = tempfile.mkdtemp()
    db, sales = os.path.join(tmp, "bench.duckdb"), os.path.join(tmp, "sales.parquet")
    con = wml.connect(db)
    con.execute("SELECT setseed(0.17)")
    con.execute(f"CREATE TABLE train AS {rows_sql(f'(SELECT range AS id FROM range({TRAIN_ROWS}))', 'random()')}")
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'gbm')").fetchall()
    con.close()
    sales_frame(args.series).to_parquet(sales)
    print(f"scoring {args.rows:,} rows, forecasting {args.series:,} series x 365 days ({args.method}, 28 days ahead)",
          flush=True)
    results = {"duckdb": run_duckdb(db, sales, args.rows, args.method)}
    for cores in (1, 2):
        out = subprocess.run([sys.executable, __file__, "--spark-worker", str(cores), "--dir", tmp, "--rows",
                              str(args.rows), "--method", args.method], capture_output=True, text=True, check=True)
        results[f"local[{cores}]"] = json.loads(out.stdout.strip().splitlines()[-1])
    d, s1, s2 = results["duckdb"], results["local[1]"], results["local[2]"]
    assert s1["forecast_rows"] == s2["forecast_rows"] == d["forecast_rows"] == 28 * args.series
    print(f"{'engine':<10}{'start s':>9}{'score rows/s':>15}{'forecast series/s':>19}")
    for name, r in results.items():
        print(f"{name:<10}{r.get('start_s', 0):>9.1f}{args.rows / r['score_s']:>15,.0f}"
              f"{args.series / r['forecast_s']:>19,.1f}")
    print(f"speed-up local[2] / local[1]: scoring {s1['score_s'] / s2['score_s']:.2f}x, "
          f"forecasting {s1['forecast_s'] / s2['forecast_s']:.2f}x")
    print(f"Spark local[2] / DuckDB (all cores) throughput: scoring {d['score_s'] / s2['score_s']:.2f}x, "
          f"forecasting {d['forecast_s'] / s2['forecast_s']:.2f}x")
    print(f"Spark fixed cost: session start {s2['start_s']:.1f}s + install {s2['install_s']:.1f}s (not in the rates)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
