"""Training cost through SQL against fitting the same estimator on the same matrix, as a ratio.

    python benchmarks/train_overhead.py                                  # gbm on 500k rows, rf on 100k, median of 3
    python benchmarks/train_overhead.py --algorithms gbm:1000000 --repeat 5

For each ``algorithm:rows`` a table of that many rows (as in predict_throughput.py) is trained on with
``FROM ml_train('m', 'train', label := 'churned', algorithm := ...)``: reading the relation, featurising, the
hold-out split, the fit, evaluation, importances, the training snapshot, serialisation and the store write.
The reference, measured in the same rounds (interleaved, median of ``--repeat``), is ``clone(est).fit`` of the
very estimator ml_train stored, on the same training rows as an in-memory NumPy matrix. The target is a ratio
of at most 1.2 for fits over 2 s.
"""
from __future__ import annotations

import argparse
import os
import tempfile

from sklearn.base import clone

import warehouse_ml as wml
from predict_throughput import interleaved, make_table
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks import supervised as sv
from warehouse_ml.tasks.features import Featurizer, split_groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithms", default="gbm:500000,random_forest:100000", help="algorithm:training rows, ...")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    con = wml.connect(os.path.join(tempfile.mkdtemp(), "train.duckdb"))
    con.execute("CREATE OR REPLACE TABLE warm AS SELECT range % 2 AS y, random() AS x FROM range(200)")
    con.execute("FROM ml_train('warm_up', 'warm', label := 'y', algorithm := 'gbm')").fetchall()  # imports, once
    results = []
    for spec in args.algorithms.split(","):
        algorithm, rows = spec.split(":")
        rows = int(rows)
        make_table(con, rows, rows)
        sql = f"FROM ml_train('m_{algorithm}', 'train', label := 'churned', algorithm := '{algorithm}')"
        con.execute(sql).fetchall()
        est = runtime_for(con).store.load(f"m_{algorithm}").obj
        table = con.sql("FROM train").to_arrow_table()
        X = Featurizer.fit(table, "churned").transform(table)
        y = table.column("churned").to_numpy()
        X_tr, _, y_tr, _ = sv.split_holdout(X, y, "classification", 0.2, split_groups(table)[0])
        timed = interleaved({"fit": lambda: clone(est).fit(X_tr, y_tr),
                             "ml_train": lambda: con.execute(sql).fetchall()}, args.repeat)
        results.append((algorithm, rows, timed["ml_train"][0], timed["fit"][0]))
        print(f"{algorithm} on {rows:,} rows: ml_train {timed['ml_train'][0]:.2f}s, fit {timed['fit'][0]:.2f}s, "
              f"{timed['ml_train'][0] / timed['fit'][0]:.2f}x", flush=True)
    print(f"\nmedian of {args.repeat} interleaved rounds  load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<14} {'rows':>10} {'ml_train s':>10} {'fit s':>7} {'ratio':>6}")
    for algorithm, rows, t_train, t_fit in results:
        print(f"{algorithm:<14} {rows:>10,} {t_train:>10.2f} {t_fit:>7.2f} {t_train / t_fit:>6.2f}")


if __name__ == "__main__":
    main()
