"""Drift check throughput: ``ml_drift`` against computing the same statistics with pandas and SciPy.

    python benchmarks/drift_speed.py                      # 1M rows x 20 features, logistic model
    python benchmarks/drift_speed.py --algorithm gbm      # predictions scored in Python batches instead of SQL

A model is trained on 100,000 rows of 20 features (16 numeric, some with NULLs, and 4 text columns); then
``ml_drift`` checks a relation of ``--rows`` rows whose features partly moved. The reference computes the same
statistics from the same stored bins the way an analyst would in Python: the relation as a pandas DataFrame,
``np.searchsorted`` + ``np.bincount`` per numeric column, ``value_counts`` per text column, the model's
``predict_proba`` for the prediction distribution, PSI and Jensen-Shannon with NumPy/SciPy. It is timed from a
DataFrame already in memory and, separately, including reading the table into pandas. Every figure is measured in
this run and the values of both paths are checked to agree.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks import drift

TRAIN_ROWS = 100_000
NUMERIC, TEXT = 16, 4


def make_table(con, name: str, rows: int, shift: float, seed: float) -> None:
    """Numeric features n0..n15 (n3 with 5% NULLs), text features c0..c3 and a label; ``shift`` moves n0, n1
    and the mix of c0."""
    con.execute(f"SELECT setseed({seed})")
    nums = ", ".join(f"CASE WHEN {i} = 3 AND random() < 0.05 THEN NULL ELSE "
                     f"random() * {i + 1} + {shift if i < 2 else 0} END AS n{i}" for i in range(NUMERIC))
    texts = ", ".join(f"['a', 'b', 'c', 'd', 'e'][1 + least(4, floor(random() * (5 - {shift if i == 0 else 0} * 3)))::INT] AS c{i}"
                      for i in range(TEXT))
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {nums}, {texts} FROM range({rows})")
    con.execute(f"ALTER TABLE {name} ADD COLUMN y INTEGER")
    con.execute(f"UPDATE {name} SET y = (n0 - n1 + 0.3 * n2 + (c0 = 'a')::INT + random() - 0.5 > 0.9)::INT")


def pandas_reference(df: pd.DataFrame, sm, profile: dict) -> dict[str, float]:
    """The same statistics from a DataFrame with pandas/NumPy/SciPy: counts on the stored bins, the model's
    predictions, then PSI / Jensen-Shannon."""
    out, matrix = {}, []
    for spec in profile["features"]:
        col = df[spec["name"]]
        if spec["kind"] == "numeric":
            x = col.to_numpy(dtype=np.float64, na_value=np.nan)
            counts = drift.numeric_counts(x, spec["edges"])
            out[spec["name"]] = drift.psi(spec["counts"], counts)
            matrix.append(x)
        else:
            vc = col.value_counts(dropna=False)
            known = [int(vc.get(c, 0)) for c in spec["categories"]]
            nulls = int(col.isna().sum())
            counts = known + [len(col) - sum(known) - nulls, nulls]
            out[spec["name"]] = drift.js_distance(spec["counts"], counts)
            codes = pd.Categorical(col, categories=spec["categories"]).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            matrix.append(codes)
    p = sm.obj.predict_proba(np.column_stack(matrix))[:, 1]
    out["prediction"] = drift.psi(profile["prediction"]["counts"], drift.numeric_counts(p, profile["prediction"]["edges"]))
    return out


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--algorithm", default="logistic", choices=["logistic", "gbm"])
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs of each path (shared machines are noisy)")
    args = ap.parse_args()
    con = wml.connect(os.path.join(tempfile.mkdtemp(), "bench.duckdb"))
    print(f"building {TRAIN_ROWS:,} training rows and {args.rows:,} rows to check ...", flush=True)
    make_table(con, "train", TRAIN_ROWS, 0.0, 0.1)
    make_table(con, "today", args.rows, 0.3, 0.2)
    con.execute(f"FROM ml_train('m', 'train', label := 'y', algorithm := '{args.algorithm}')").fetchall()
    sm = runtime_for(con).store.load("m")
    query = "SELECT feature, value FROM ml_drift('m', 'today', record := false) WHERE kind = 'skew'"
    t_sql, rows = best_of(args.repeat, lambda: con.execute(query).fetchall())
    t_read, df = best_of(1, lambda: con.sql("SELECT * EXCLUDE (y) FROM today").df())
    t_ref, ref = best_of(args.repeat, lambda: pandas_reference(df, sm, sm.meta["profile"]))
    ours = dict(rows)
    worst = max(abs(ours[k] - ref[k]) for k in ref)
    assert worst < 1e-9, f"ml_drift and the reference disagree by {worst}"
    n, feats = args.rows, NUMERIC + TEXT
    print(f"\n{n:,} rows x {feats} features, {args.algorithm} model (best of {args.repeat}); statistics agree to {worst:.1e}")
    print(f"{'path':<48} {'seconds':>8} {'rows/s':>12} {'ml_drift vs it':>15}")
    print(f"{'ml_drift (SQL)':<48} {t_sql:>8.2f} {n / t_sql:>12,.0f} {'':>15}")
    print(f"{'pandas/SciPy on an in-memory DataFrame':<48} {t_ref:>8.2f} {n / t_ref:>12,.0f} {t_ref / t_sql:>14.2f}x")
    print(f"{'pandas/SciPy including reading it into pandas':<48} {t_ref + t_read:>8.2f} {n / (t_ref + t_read):>12,.0f} "
          f"{(t_ref + t_read) / t_sql:>14.2f}x")
    print("drifted on purpose: n0, n1, c0 ->", {k: round(v, 3) for k, v in ours.items() if k in ("n0", "n1", "c0", "n5", "prediction")})


if __name__ == "__main__":
    main()
