"""key_drivers speed: 10M rows x 6 dimensions, segments up to depth 3, against plain GROUP BY CUBE in DuckDB.

The table (built in DuckDB from random()) holds two periods of orders over six dimensions (6, 10, 8, 3, 20 and 5
values) with a revenue column; revenue of paid search on mobile is planted 30% lower in the test period. The
reference is the aggregation written by hand in the same run: ``GROUP BY CUBE(six dimensions), period`` with the
row count and the sums of revenue and its square, fetched as Arrow (every segment's statistics, no search, no
tests). A second reference, the same sums over only the grouping sets of depth <= 3, is printed too. The figure
is the ratio of ``key_drivers`` (aggregation, Apriori search, tests, ranking, descriptions) to the CUBE query.

    python benchmarks/key_drivers_speed.py                    # 10M rows
    python benchmarks/key_drivers_speed.py --rows 1000000     # a quick look
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warehouse_ml as wml  # noqa: E402

DIMENSIONS = {"channel": ["organic", "paid_search", "social", "email", "referral", "direct"],
              "category": [f"category_{i}" for i in range(10)], "region": [f"region_{i}" for i in range(8)],
              "device": ["mobile", "desktop", "tablet"], "country": [f"country_{i:02d}" for i in range(20)],
              "age_band": ["18-24", "25-34", "35-44", "45-54", "55+"]}


def build(con, rows: int) -> None:
    picks = ",\n".join(f"  {list(values)!r}[1 + floor(random() * {len(values)})::INTEGER] AS {name}"
                       for name, values in DIMENSIONS.items())
    con.execute(f"""CREATE OR REPLACE TABLE orders AS
        SELECT *, round(-ln(random()) * 60 * CASE WHEN period = 'this_week' AND channel = 'paid_search'
                                                     AND device = 'mobile' THEN 0.7 ELSE 1 END, 2) AS revenue
        FROM (SELECT {picks},
              CASE WHEN random() < 0.5 THEN 'this_week' ELSE 'last_week' END AS period
              FROM range({int(rows)}) t(i))""")


def best_of(repeat: int, run) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    dims = list(DIMENSIONS)
    with tempfile.TemporaryDirectory() as tmp:
        con = wml.connect(os.path.join(tmp, "bench.duckdb"))
        t0 = time.perf_counter()
        build(con, args.rows)
        print(f"built {args.rows:,} rows x {len(dims)} dimensions in {time.perf_counter() - t0:.1f}s")
        sums = "count(*) AS n, sum(revenue) AS y, sum(revenue * revenue) AS yy"
        cube_s, cube = best_of(args.repeat, lambda: con.sql(
            f"SELECT {', '.join(dims)}, period, {sums} FROM orders GROUP BY CUBE({', '.join(dims)}), period").to_arrow_table())
        sets = ", ".join(f"({', '.join(c + ('period',))})" for k in range(1, 4) for c in itertools.combinations(dims, k))
        sets_s, grouped = best_of(args.repeat, lambda: con.sql(
            f"SELECT {', '.join(dims)}, period, {sums} FROM orders GROUP BY GROUPING SETS ({sets})").to_arrow_table())
        query = (f"FROM key_drivers('orders', metric := 'revenue', dimensions := {dims!r}, period := 'period', "
                 "test := 'this_week', control := 'last_week', max_depth := 3)")
        kd_s, result = best_of(args.repeat, lambda: con.sql(query).to_arrow_table())
        top = result.slice(0, 1).to_pylist()[0]
        con.close()
    print(f"GROUP BY CUBE (64 sets x 2 periods): {cube_s:.2f}s, {cube.num_rows:,} rows")
    print(f"GROUP BY GROUPING SETS (depth <= 3): {sets_s:.2f}s, {grouped.num_rows:,} rows")
    print(f"key_drivers depth 3:                 {kd_s:.2f}s, {result.num_rows:,} segments tested")
    print(f"ratio key_drivers / CUBE: {kd_s / cube_s:.2f}x   (/ depth-3 grouping sets: {kd_s / sets_s:.2f}x)")
    print(f"rank 1: {top['segment']} ({top['description']})")


if __name__ == "__main__":
    main()
