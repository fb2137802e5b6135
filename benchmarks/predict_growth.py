"""Scoring cost as data grows: time per row and peak memory for 1M, 10M and 100M rows on disk.

    python benchmarks/predict_growth.py                          # 1M, 10M, 100M rows, gradient boosting
    python benchmarks/predict_growth.py --sizes 1000000,10000000 --algorithm logistic --memory-limit 1GB

Each size is generated in DuckDB into its own database file (ten features, as in predict_throughput.py), a
model is trained through ``ml_train`` on the first 200k rows, and then a fresh process scores every row in
plain SQL (``CREATE TABLE scores AS SELECT user_id, ml_predict('m', t) AS p FROM t t``, the shape of a
nightly scoring job) and reports its wall time and its peak resident memory (VmHWM). The reference for
linear growth is the 1M-row run of the same benchmark: the ratio column is time per row against it.
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
con = wml.connect(sys.argv[1])
if sys.argv[2]:
    con.execute("SET memory_limit = " + repr(sys.argv[2]))
t0 = time.perf_counter()
con.execute("CREATE OR REPLACE TABLE scores AS SELECT user_id, ml_predict('m', t) AS p FROM t t")
seconds = time.perf_counter() - t0
n = con.execute("SELECT count(*) FROM scores").fetchone()[0]
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(seconds, n, hwm * 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000,100000000")
    ap.add_argument("--algorithm", default="gbm")
    ap.add_argument("--dir", default=None, help="where the database files go (100M rows take about 5 GB)")
    ap.add_argument("--memory-limit", default="", help="DuckDB's memory_limit in the scoring process, e.g. 1GB "
                    "(by default its buffer pool keeps the table's blocks cached up to 80%% of RAM)")
    args = ap.parse_args()
    import warehouse_ml as wml

    folder = args.dir or tempfile.mkdtemp()
    rows_out = []
    for n in (int(s) for s in args.sizes.split(",")):
        path = os.path.join(folder, f"growth_{n}.duckdb")
        con = wml.connect(path)
        t0 = time.perf_counter()
        make_table(con, n)
        built = time.perf_counter() - t0
        con.execute(f"FROM ml_train('m', 'train', label := 'churned', algorithm := '{args.algorithm}')").fetchall()
        con.close()
        out = subprocess.run([sys.executable, "-c", SCORE, path, args.memory_limit], capture_output=True, text=True, check=True)
        seconds, scored, peak = out.stdout.split()[-3:]
        seconds, scored, peak = float(seconds), int(scored), int(peak)
        assert scored == n, (scored, n)
        rows_out.append((n, seconds, peak))
        print(f"{n:>12,} rows: built in {built:.1f}s, scored in {seconds:.1f}s ({n / seconds:,.0f} rows/s), "
              f"peak RSS {peak / 2**30:.2f} GiB", flush=True)
        os.remove(path)
    base = rows_out[0][1] / rows_out[0][0]
    print(f"\nalgorithm={args.algorithm}  trained on {TRAIN_ROWS:,} rows  memory_limit={args.memory_limit or 'default'}"
          f"  load average {os.getloadavg()[0]:.1f}")
    print(f"{'rows':>12} {'seconds':>9} {'ns/row':>8} {'vs smallest':>11} {'peak RSS GiB':>12}")
    for n, seconds, peak in rows_out:
        print(f"{n:>12,} {seconds:>9.1f} {seconds / n * 1e9:>8.0f} {seconds / n / base:>11.2f} {peak / 2**30:>12.2f}")


if __name__ == "__main__":
    main()
