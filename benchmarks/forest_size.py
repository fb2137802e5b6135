"""A random forest's stored size, training time and hold-out quality: the bounded default against the old one.

    python benchmarks/forest_size.py               # 100,000 rows x 10 features
    python benchmarks/forest_size.py --rows 443000

Data: seeded synthetic rows whose 0/1 label depends on 5 of 10 features through a non-linear score plus noise.
Both forests train through ``ml_train`` on the same DuckDB table in the same run: the default (trees stop at
about 2,000 leaves: ``min_samples_leaf`` = training rows / 2,000) and ``params := {min_samples_leaf: 3}`` (the
default before the bound). Printed: artifact MB, ``ml_train`` seconds and hold-out ROC AUC, with ratios.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import pandas as pd

import warehouse_ml as wml


def make_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    score = X[:, 0] - 0.8 * X[:, 1] ** 2 + np.sin(2 * X[:, 2]) + 0.5 * X[:, 3] * X[:, 4] + rng.normal(0, 1, n)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(10)])
    frame["label"] = (score > np.median(score)).astype(int)
    return frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = wml.connect(os.path.join(tmp, "forest.duckdb"))
        con.register("frame", make_rows(args.rows))
        con.execute("CREATE TABLE t AS SELECT * FROM frame")
        runs = {"bounded default": "NULL", "min_samples_leaf 3": "{min_samples_leaf: 3}"}
        out = {}
        for name, params in runs.items():
            seconds, auc, version = con.execute(
                f"SELECT seconds, metrics['roc_auc'], version FROM ml_train('forest', 't', label := 'label', "
                f"algorithm := 'random_forest', params := {params})").fetchall()[0]
            size = con.execute("SELECT octet_length(artifact) FROM wml.model_versions WHERE version = $1",
                               [version]).fetchall()[0][0]
            out[name] = (size / 2**20, seconds, auc)
        ref = out["min_samples_leaf 3"]
        print(f"{args.rows:,} rows: {'forest':<20} {'MB':>8} {'ratio':>7} {'train s':>8} {'ratio':>7} {'ROC AUC':>8}")
        for name, (mb, s, auc) in out.items():
            print(f"{'':>{len(f'{args.rows:,} rows:')}} {name:<20} {mb:>8.1f} {mb / ref[0]:>7.3f} {s:>8.1f} "
                  f"{s / ref[1]:>7.3f} {auc:>8.4f}")


if __name__ == "__main__":
    main()
