"""Scoring cost as data grows: time per row and peak memory for 1M, 10M and 100M rows on disk.

    python benchmarks/predict_growth.py --algorithm logistic --memory-limit 1GB       # 1M, 10M, 100M rows
    python benchmarks/predict_growth.py --sizes 1000000,10000000 --algorithm gbm --memory-limit 1GB

Each size is generated in DuckDB into its own database file (ten features, as in predict_throughput.py), a
model is trained through ``ml_train`` on the first 200k rows, and then fresh processes score every row in
plain SQL (``CREATE TABLE scores AS SELECT user_id, ml_predict('m', t) AS p FROM t t``, the shape of a
nightly scoring job) and report wall time and peak resident memory (VmHWM), with the resident memory just
before the query (imports, the connection, the model loaded by scoring one batch first) for comparison.

The reference, measured the same way on the same file, is the same query without warehouse-ml: every column
the model reads, combined by plain SQL (``CREATE TABLE scores AS SELECT user_id, f0 + f1 + ... AS p FROM t``).
DuckDB keeps the table's blocks it has read in its buffer pool, up to ``memory_limit`` (by default 80% of RAM),
so a scan of a large table grows the resident memory of any query; the reference shows how much of the peak
is that cache, and ``--memory-limit`` bounds it. Time per row is reported against the smallest size, and
``added ns/row`` is what ml_predict adds to the plain scan of the same rows, per row.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from predict_throughput import TRAIN_ROWS, make_table

SCORE = """
import sys, time
import warehouse_ml as wml
def rss(key):
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key)) * 1024
con = wml.connect(sys.argv[1])
if sys.argv[3]:
    con.execute("SET memory_limit = " + repr(sys.argv[3]))
con.execute("SELECT " + sys.argv[2] + " FROM t t LIMIT 2048").fetchall()  # the model loaded, its scorer built
before = rss('VmRSS')
t0 = time.perf_counter()
con.execute("CREATE OR REPLACE TABLE scores AS SELECT user_id, " + sys.argv[2] + " AS p FROM t t")
seconds = time.perf_counter() - t0
n = con.execute("SELECT count(*) FROM scores").fetchone()[0]
con.execute("DROP TABLE scores")
print(seconds, n, before, rss('VmHWM'))
"""
# every column the model reads, combined without warehouse-ml: the reference scan
PLAIN = "f0 + f1 + f2 + f3 + f4 + f5 + f6 + coalesce(f7, 0) + length(channel) + tenure"
PREDICT = "ml_predict('m', t)"


def score(path: str, expression: str, memory_limit: str) -> tuple[float, int, int]:
    """(seconds, rows scored, resident bytes before the query, peak resident bytes) of one fresh scoring process."""
    out = subprocess.run([sys.executable, "-c", SCORE, path, expression, memory_limit], capture_output=True,
                         text=True, check=True)
    seconds, scored, before, peak = out.stdout.split()[-4:]
    return float(seconds), int(scored), int(before), int(peak)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000,100000000")
    ap.add_argument("--algorithm", default="logistic")
    ap.add_argument("--dir", default=None, help="where the database files go (100M rows take about 5 GB)")
    ap.add_argument("--keep", action="store_true", help="keep the database files, and reuse those already there")
    ap.add_argument("--memory-limit", default="", help="DuckDB's memory_limit in the scoring processes, e.g. 1GB "
                    "(by default its buffer pool keeps the table's blocks cached up to 80%% of RAM)")
    args = ap.parse_args()
    import warehouse_ml as wml

    folder = args.dir or tempfile.mkdtemp()
    gib = 2**30
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        path = os.path.join(folder, f"growth_{n}.duckdb")
        reused = args.keep and os.path.exists(path)
        con = wml.connect(path)
        t0 = time.perf_counter()
        if not reused:
            make_table(con, n)
        built = time.perf_counter() - t0
        con.execute(f"FROM ml_train('m', 'train', label := 'churned', algorithm := '{args.algorithm}', "
                    "deploy := 'always')").fetchall()
        con.close()
        runs = {}
        for name, expression in (("plain", PLAIN), ("ml_predict", PREDICT)):
            seconds, scored, before, peak = score(path, expression, args.memory_limit)
            assert scored == n, (scored, n)
            runs[name] = (seconds, before, peak)
            print(f"{n:>12,} rows, {name:<10}: {'reused' if reused else f'built in {built:.1f}s'}, scored in "
                  f"{seconds:.1f}s ({n / seconds:,.0f} rows/s), RSS {before / gib:.2f} GiB before, peak "
                  f"{peak / gib:.2f} GiB", flush=True)
        results.append((n, runs))
        if not args.keep:
            os.remove(path)
    base = results[0][1]["ml_predict"][0] / results[0][0]
    print(f"\nalgorithm={args.algorithm}  trained on {TRAIN_ROWS:,} rows  memory_limit={args.memory_limit or 'default'}"
          f"  load average {os.getloadavg()[0]:.1f}")
    print(f"{'rows':>12} {'ml_predict s':>12} {'ns/row':>7} {'vs smallest':>11} {'peak GiB':>8} "
          f"{'plain SQL s':>11} {'plain peak GiB':>14} {'added ns/row':>12} {'RSS before GiB':>14}")
    for n, runs in results:
        seconds, before, peak = runs["ml_predict"]
        p_seconds, _, p_peak = runs["plain"]
        print(f"{n:>12,} {seconds:>12.1f} {seconds / n * 1e9:>7.0f} {seconds / n / base:>11.2f} {peak / gib:>8.2f} "
              f"{p_seconds:>11.1f} {p_peak / gib:>14.2f} {(seconds - p_seconds) / n * 1e9:>12.0f} {before / gib:>14.2f}")


if __name__ == "__main__":
    main()
