"""Rows per second through `warehouse-ml serve` to psycopg (text and binary results), as a ratio to DuckDB's own
Python fetch of the same query in-process (the reference, measured in the same run).

    python benchmarks/server_throughput.py --rows 200000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import duckdb
import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.pgserver import serve  # noqa: E402

QUERY = "SELECT id, x, label FROM wide"


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - t)
    return rows, min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.duckdb")
        con = duckdb.connect(path)
        con.execute(f"CREATE TABLE wide AS SELECT range AS id, (range * 0.5)::DOUBLE AS x, 'row ' || range AS label "
                    f"FROM range({args.rows})")
        con.close()
        ref = duckdb.connect(path, read_only=True)
        rows, t_ref = best_of(args.repeat, lambda: ref.execute(QUERY).fetchall())
        ref.close()
        with serve(path) as (_, port):
            with psycopg.connect(host="127.0.0.1", port=port, user="bench", dbname="shop", sslmode="disable") as conn:
                results = {}
                for binary in (False, True):
                    def fetch():
                        with conn.cursor(binary=binary) as cur:
                            return cur.execute(QUERY).fetchall()
                    got, t = best_of(args.repeat, fetch)
                    assert len(got) == len(rows)
                    results["binary" if binary else "text"] = t
    print(f"{args.rows:,} rows x 3 columns; reference: DuckDB fetchall in-process {args.rows / t_ref:,.0f} rows/s")
    for name, t in results.items():
        print(f"  server -> psycopg ({name}): {args.rows / t:,.0f} rows/s, ratio {t_ref / t:.2f}")


if __name__ == "__main__":
    main()
