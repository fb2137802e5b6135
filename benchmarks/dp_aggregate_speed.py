"""Differentially private aggregation against the exact GROUP BY, in the same run.

10 million orders of 1 million users in 20 channels (synthetic). The reference is the exact query an analyst
would otherwise run, ``SELECT channel, count(*), sum(revenue), avg(revenue) FROM orders GROUP BY channel``
(materialised). The private runs are ``dp_aggregate`` with the same metrics (row-level, and per user with
contribution bounding: a window over users, the group threshold and the keys joined back), and the same per
user with a private median (OpenDP's quantile on every group's values) added. Each figure is the best of
``--repeat`` runs; the printed ratio is private time / exact time.

    python benchmarks/dp_aggregate_speed.py                 # 10M rows
    python benchmarks/dp_aggregate_speed.py --rows 1000000  # a quick look
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warehouse_ml as wml  # noqa: E402

EXACT = "SELECT channel, count(*), sum(revenue), avg(revenue) FROM orders GROUP BY channel"
PRIVATE = ("SELECT * FROM dp_aggregate('orders', group_by := ['channel'], metrics := ['count', 'sum(revenue)', "
           "'avg(revenue)'{extra}], bounds := {{'revenue': [0, 500]}}, epsilon := 1, delta := 1e-6{unit})")


def timed(con, sql: str, repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE bench_out AS {sql}")
        best = min(best, time.perf_counter() - t0)
        rows = con.execute("SELECT count(*) FROM bench_out").fetchall()[0][0]
    return best, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=None, help="default: rows / 10")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    users = args.users or max(args.rows // 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        con = wml.connect(os.path.join(tmp, "bench.duckdb"))
        con.execute(f"""CREATE TABLE orders AS SELECT (hash(i) % {users})::BIGINT AS user_id,
                            'channel_' || (hash(i * 7) % 20)::VARCHAR AS channel,
                            (hash(i * 13) % 60000) / 100.0 AS revenue
                        FROM range({args.rows}) t(i)""")
        exact, n_exact = timed(con, EXACT, args.repeat)
        print(f"{args.rows:,} rows, {users:,} users, 20 channels; best of {args.repeat}")
        print(f"{'query':<44} {'seconds':>8} {'rows out':>8} {'ratio':>7}")
        print(f"{'exact GROUP BY (count, sum, avg)':<44} {exact:8.2f} {n_exact:8d} {1.0:7.2f}")
        for label, extra, unit in [
            ("dp_aggregate, each row a unit", "", ""),
            ("dp_aggregate, privacy_unit := 'user_id'", "", ", privacy_unit := 'user_id'"),
            ("... plus 'median(revenue)'", ", 'median(revenue)'", ", privacy_unit := 'user_id'"),
        ]:
            # budget-free database: every run is a new release, recorded in the ledger
            t, n = timed(con, PRIVATE.format(extra=extra, unit=unit), args.repeat)
            print(f"{label:<44} {t:8.2f} {n:8d} {t / exact:7.2f}")
        con.close()


if __name__ == "__main__":
    main()
