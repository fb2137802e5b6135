"""Spark scaling: scoring and forecasting on local[1] vs local[2], against DuckDB on the same work.

    python benchmarks/spark_scaling.py                          # 10M rows, 2,000 series (the issue's sizes)
    python benchmarks/spark_scaling.py --rows 1000000 --series 500

A gradient-boosted churn model is trained in DuckDB (50,000 rows). The rows to score (``--rows``) and the
sales (``--series`` daily series of 365 days) are written once to Parquet, and every engine reads the same files:
- DuckDB scores them with ``avg(ml_predict('churn', t))`` and forecasts with ``forecast_demand(..., method := 'ets')``;
- for each of local[1] and local[2], a fresh Spark (its own process) starts (start-up timed separately), scores
  the same rows with the same model read from the DuckDB file and forecasts the same series with
  ``warehouse_ml.spark.forecast_demand``. The scoring file is split into many small tasks
  (``spark.sql.files.maxPartitionBytes``) so that every core stays busy to the end.

Besides rows/s and series/s it measures where the CPU goes: per phase, the CPU seconds used by the engine's
processes (for Spark: the driver, the JVM and its Python workers) per wall second, i.e. how many cores the
phase kept busy, and the whole machine's busy cores (other jobs included) with the load average. By default each
Spark run is pinned to as many cores as its task slots (``sched_setaffinity`` before the JVM starts; the JVM and
its Python workers inherit it), so local[1] runs on one core and local[2] on two: the speed-up from one core to
two. ``--no-pin`` lets local[1] spread its JVM and Python worker over every core (then local[1] already keeps
about 1.5 cores busy, and two cores can give it at most ~1.3x more).
Spark's work is timed after a warm-up query over as many partitions (every Python worker started, model loaded).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

TRAIN_ROWS = 50_000
FEATURES = {"f0": "r0 * 2 - 1", "f1": "r1 * 2 - 1", "f2": "r2 * 10",
            "f3": "CASE WHEN r3 < 0.05 THEN NULL ELSE r3 * 3 END",
            "channel": "CASE WHEN r4 < 0.5 THEN 'organic' WHEN r4 < 0.8 THEN 'paid' ELSE 'email' END"}
LABEL = "CAST(1.5 * (r0 * 2 - 1) - (r1 * 2 - 1) + 0.2 * r2 * 10 - 1 + (r5 - 0.5) * 2 > 0 AS INT)"
TASKS_PER_CORE = 8  # many small tasks: no core waits idle behind the last big one


def rows_sql(n: int) -> str:
    draws = ", ".join(f"random() AS r{i}" for i in range(6))
    cols = ", ".join(f"{expr} AS {name}" for name, expr in FEATURES.items())
    return f"SELECT id AS user_id, {cols}, {LABEL} AS churned FROM (SELECT range AS id, {draws} FROM range({n}))"


def sales_frame(series: int, days: int = 365, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    level = rng.gamma(2, 10, (series, 1))
    y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 7)) + rng.normal(0, 1, (series, days)) * np.sqrt(level)
    return pd.DataFrame({"item": np.repeat([f"SKU-{i:05d}" for i in range(series)], days),
                         "day": np.tile(pd.date_range("2024-01-01", periods=days).date, series),
                         "units": np.maximum(y, 0).ravel()})


# -- CPU accounting -------------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds of the process and its reaped children) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, tail = f.read().rsplit(")", 1)
    except OSError:  # gone between listing and reading
        return None
    fields = tail.split()
    return int(fields[1]), head.split("(", 1)[1], sum(int(v) for v in fields[11:15]) / _TICK  # utime..cstime


def tree_cpu_seconds(root: int | None = None) -> tuple[float, float]:
    """CPU seconds used so far by ``root`` (this process) and every process below it, counting the children they
    have already reaped: (all of them, Java's part: Spark's JVM, as against the Python driver and workers)."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    root = root or os.getpid()
    below, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (pp, _, _) in stats.items() if pp == parent and p not in below]
        below.update(kids)
        frontier += kids
    mine = [stats[p] for p in below if p in stats]
    return sum(s[2] for s in mine), sum(s[2] for s in mine if s[1] == "java")


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle or waiting for I/O) since boot."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


def measured(fn) -> tuple[dict, object]:
    """Run ``fn``; its wall seconds, the cores this process tree kept busy (and the JVM's part of them), the
    machine's busy cores and the load average."""
    (cpu0, jvm0), busy0, t0 = tree_cpu_seconds(), machine_busy_seconds(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    cpu1, jvm1 = tree_cpu_seconds()
    return {"s": wall, "cores": (cpu1 - cpu0) / wall, "jvm_cores": (jvm1 - jvm0) / wall,
            "machine_cores": (machine_busy_seconds() - busy0) / wall, "load": os.getloadavg()[0]}, out


# -- the engines ----------------------------------------------------------------------------------------------
def run_duckdb(db: str, rows: str, sales: str, method: str) -> dict:
    import warehouse_ml as wml

    con = wml.connect(db)
    con.execute(f"SELECT avg(ml_predict('churn', t)) FROM (FROM read_parquet('{rows}') LIMIT 1000) t").fetchall()
    score, _ = measured(lambda: con.execute(f"SELECT avg(ml_predict('churn', t)) FROM read_parquet('{rows}') t")
                        .fetchall())
    con.execute(f"CREATE OR REPLACE VIEW sales AS SELECT * FROM read_parquet('{sales}')")
    forecast, n = measured(lambda: con.execute(f"SELECT count(*) FROM forecast_demand('sales', 28, method := "
                                               f"'{method}')").fetchone()[0])
    con.close()
    return {"score": score, "forecast": forecast, "forecast_rows": n}


def run_spark(cores: int, db: str, rows: str, sales: str, method: str, batch: int) -> dict:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    split = max(1 << 20, os.path.getsize(rows) // (TASKS_PER_CORE * cores))
    from pyspark.sql import SparkSession

    start, spark = measured(lambda: SparkSession.builder.master(f"local[{cores}]")
                            .config("spark.ui.enabled", "false")
                            .config("spark.ui.showConsoleProgress", "false")
                            .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
                            .config("spark.sql.shuffle.partitions", str(TASKS_PER_CORE * cores))
                            .config("spark.sql.files.maxPartitionBytes", str(split))
                            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
                            .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    import warehouse_ml.spark as wml_spark

    install, _ = measured(lambda: wml_spark.install(spark, models=db))
    users = spark.read.parquet(rows)
    users.createOrReplaceTempView("t")
    tasks = users.rdd.getNumPartitions()
    users.limit(1000 * cores).repartition(2 * cores).createOrReplaceTempView("warm")  # every worker starts
    spark.sql("SELECT avg(ml_predict('churn', struct(*))) FROM warm").collect()
    score, _ = measured(lambda: spark.sql("SELECT avg(ml_predict('churn', struct(*))) FROM t").collect())
    df = spark.read.parquet(sales)
    forecast, n = measured(lambda: wml_spark.forecast_demand(df, 28, method=method).count())
    spark.stop()
    return {"start": start, "install": install, "score": score, "forecast": forecast, "forecast_rows": n,
            "score_tasks": tasks}


def spark_child(cores: int, tmp: str, args) -> dict:
    """One Spark run in its own process (a fresh JVM); its stderr passes through, so a failure shows."""
    cmd = [sys.executable, __file__, "--spark-worker", str(cores), "--dir", tmp, "--method", args.method,
           "--batch", str(args.batch)] + ([] if args.pin else ["--no-pin"])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if out.returncode:
        why = (f"killed by {signal.Signals(-out.returncode).name}" if out.returncode < 0
               else f"exit status {out.returncode}")
        sys.exit(f"the local[{cores}] run failed ({why}); its output:\n{out.stdout[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=2_000)
    ap.add_argument("--method", default="ets")
    ap.add_argument("--batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin each Spark run to as many cores as its task slots")
    ap.add_argument("--spark-worker", type=int, help=argparse.SUPPRESS)  # internal: one Spark run in a child
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.spark_worker:
        if args.pin:  # local[N] on N cores: the JVM and its Python workers inherit this process's affinity
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.spark_worker])
        paths = [os.path.join(args.dir, f) for f in ("bench.duckdb", "rows.parquet", "sales.parquet")]
        print(json.dumps(run_spark(args.spark_worker, *paths, args.method, args.batch)))
        return
    import warehouse_ml as wml

    tmp = tempfile.mkdtemp()
    db, rows, sales = (os.path.join(tmp, f) for f in ("bench.duckdb", "rows.parquet", "sales.parquet"))
    con = wml.connect(db)
    con.execute("SELECT setseed(0.17)")
    con.execute(f"CREATE TABLE train AS {rows_sql(TRAIN_ROWS)}")
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'gbm')").fetchall()
    con.execute("SELECT setseed(0.42)")
    row_group = max(2_048, args.rows // (16 * TASKS_PER_CORE))  # enough row groups for every task to get some
    con.execute(f"COPY ({rows_sql(args.rows)}) TO '{rows}' (FORMAT parquet, ROW_GROUP_SIZE {row_group})")
    con.close()
    sales_frame(args.series).to_parquet(sales)
    print(f"scoring {args.rows:,} rows, forecasting {args.series:,} series x 365 days ({args.method}, 28 days "
          f"ahead); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; Spark runs "
          f"{'pinned to 1 and 2 cores' if args.pin else 'not pinned'}", flush=True)
    results = {"duckdb": run_duckdb(db, rows, sales, args.method)}
    for cores in (1, 2):
        print(f"{list(results)[-1]} done; starting Spark local[{cores}]", flush=True)
        results[f"local[{cores}]"] = spark_child(cores, tmp, args)
    d, s1, s2 = results["duckdb"], results["local[1]"], results["local[2]"]
    assert s1["forecast_rows"] == s2["forecast_rows"] == d["forecast_rows"] == 28 * args.series
    print(f"\n{'engine':<10}{'start s':>8}{'score rows/s':>14}{'cores used':>11}{'machine':>9}"
          f"{'forecast series/s':>19}{'cores used':>11}{'machine':>9}{'load':>6}")
    for name, r in results.items():
        sc, fc = r["score"], r["forecast"]
        print(f"{name:<10}{r['start']['s'] if 'start' in r else 0:>8.1f}{args.rows / sc['s']:>14,.0f}"
              f"{sc['cores']:>11.2f}{sc['machine_cores']:>9.2f}{args.series / fc['s']:>19,.1f}{fc['cores']:>11.2f}"
              f"{fc['machine_cores']:>9.2f}{max(sc['load'], fc['load']):>6.1f}")
    print("(cores used: CPU seconds of the engine's processes per wall second; machine: busy cores of the whole "
          "machine, other jobs included)")
    for name in ("local[1]", "local[2]"):
        sc, fc = results[name]["score"], results[name]["forecast"]
        print(f"{name}: the JVM's share of the CPU: scoring {sc['jvm_cores'] / sc['cores']:.0%}, "
              f"forecasting {fc['jvm_cores'] / fc['cores']:.0%}")
    print(f"speed-up local[2] / local[1]: scoring {s1['score']['s'] / s2['score']['s']:.2f}x, "
          f"forecasting {s1['forecast']['s'] / s2['forecast']['s']:.2f}x")
    for name, r in results.items():
        print(f"per CPU second ({name}): scoring {args.rows / (r['score']['s'] * r['score']['cores']):,.0f} rows, "
              f"forecasting {args.series / (r['forecast']['s'] * r['forecast']['cores']):,.1f} series")
    print(f"Spark local[2] / DuckDB (all cores) throughput: scoring {d['score']['s'] / s2['score']['s']:.2f}x, "
          f"forecasting {d['forecast']['s'] / s2['forecast']['s']:.2f}x")
    print(f"Spark fixed cost: session start {s2['start']['s']:.1f}s + install {s2['install']['s']:.1f}s (not in the "
          f"rates); scoring ran as {s1['score_tasks']} / {s2['score_tasks']} tasks")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
