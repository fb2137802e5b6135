"""Inference and training throughput from SQL, as ratios against scikit-learn on in-memory NumPy.

    python benchmarks/predict_throughput.py                       # 2 million rows, every algorithm
    python benchmarks/predict_throughput.py --rows 10000000 --algorithms logistic,gbm

For each algorithm a model is trained through ``ml_train`` on 200k rows, then it prints rows/s of

* plain SQL: ``SELECT avg(ml_predict('m', t)) FROM t t`` -- the path dbt and every DuckDB client take;
* the front door: ``wml.sql(con, "SELECT avg(ml_predict('m', *)) FROM t")`` (linear models inlined as SQL);

against two references on the same rows held as a NumPy matrix, both cores, measured in this run:

* the bare estimator on a ready matrix: the fitted scikit-learn estimator's ``predict_proba`` on its own
  input (for the linear pipeline: the final model on the already-preprocessed matrix);
* the stored pipeline's ``predict_proba`` on the featurised matrix (our preprocessing included).

Then ``ml_train`` time against fitting the same estimator on the same matrix (best of ``--repeat``).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sklearn.pipeline import Pipeline

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks import supervised as sv
from warehouse_ml.tasks.features import Featurizer

TRAIN_ROWS = 200_000


def make_table(con, rows: int) -> None:
    """Ten features (eight numeric, one with NULLs, one categorical) and a churn label with real signal."""
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""
        CREATE OR REPLACE TABLE t AS
        SELECT range AS user_id, f0, f1, f2, f3, f4, f5, f6,
               CASE WHEN random() < 0.05 THEN NULL ELSE f7 END AS f7,
               ['organic', 'paid', 'email', 'social', 'referral'][1 + (range % 5)::INT] AS channel,
               random() * 100 AS tenure,
               (1.5 * f0 - f1 + f2 * f3 + 0.5 * (range % 5 = 1)::INT + 0.3 * f7 + (random() - 0.5) * 2 > 0)::INT AS churned
        FROM (SELECT range, random() * 2 - 1 AS f0, random() * 2 - 1 AS f1, random() * 2 - 1 AS f2,
                     random() * 2 - 1 AS f3, random() AS f4, random() * 10 AS f5, random() AS f6,
                     random() * 3 AS f7 FROM range({rows}))""")
    con.execute(f"CREATE OR REPLACE TABLE train AS FROM t WHERE user_id < {TRAIN_ROWS}")


def best(fn, repeat: int = 1):
    """(seconds of the fastest of ``repeat`` runs, its result)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t0, out))
    return min(runs, key=lambda r: r[0])


def bare_reference(est, X: np.ndarray):
    """The estimator itself on a matrix ready for it: a pipeline's last step on its preprocessed input."""
    if isinstance(est, Pipeline):
        ready = est[:-1].transform(X)
        return lambda: est[-1].predict_proba(ready)[:, 1].mean()
    return lambda: est.predict_proba(X)[:, 1].mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--algorithms", default="logistic,gbm,random_forest,decision_tree")
    ap.add_argument("--repeat", type=int, default=2, help="timings: best of this many runs (shared machines are noisy)")
    args = ap.parse_args()
    con = wml.connect(os.path.join(tempfile.mkdtemp(), "bench.duckdb"))
    print(f"building {args.rows:,} rows ...", flush=True)
    make_table(con, args.rows)
    table = con.sql("FROM t").to_arrow_table()
    train = con.sql("FROM train").to_arrow_table()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("CREATE OR REPLACE TABLE warm AS FROM train LIMIT 2000")  # the first training imports its parts
    con.execute("FROM ml_train('warm_up', 'warm', label := 'churned', algorithm := 'gbm')").fetchall()
    results = []
    for algorithm in args.algorithms.split(","):
        m = f"bench_{algorithm}"
        t_train, _ = best(lambda: con.execute(
            f"FROM ml_train('{m}', 'train', label := 'churned', algorithm := '{algorithm}', test_size := 0.2)").fetchall(),
            args.repeat)
        feats = Featurizer.fit(train, "churned", [])
        X_fit, _, y_fit, _ = sv.split_holdout(feats.transform(train), train.column("churned").to_numpy(), "classification", 0.2)
        est = sv.make_estimator(algorithm, "classification", feats.categorical_mask, {}, None)
        t_fit, _ = best(lambda: est.fit(X_fit, y_fit), args.repeat)

        stored = runtime_for(con).store.load(m).obj
        X = Featurizer.from_json(feats.features).transform(table)
        t_bare, ref = best(bare_reference(stored, X), args.repeat)
        t_pipe, _ = best(lambda: stored.predict_proba(X)[:, 1].mean(), args.repeat)
        con.execute(f"SELECT avg(ml_predict('{m}', t)) FROM t t LIMIT 1").fetchall()  # loads and compiles the scorer
        t_sql, sql = best(lambda: con.execute(f"SELECT avg(ml_predict('{m}', t)) FROM t t").fetchone()[0], args.repeat)
        t_door, door = best(lambda: wml.sql(con, f"SELECT avg(ml_predict('{m}', *)) FROM t").fetchone()[0], args.repeat)
        assert abs(sql - ref) < 1e-9 and abs(door - ref) < 1e-9, (sql, door, ref)
        n = args.rows
        results.append((algorithm, n / t_bare, n / t_pipe, n / t_sql, n / t_door, t_train, t_fit))
        print(f"{algorithm}: trained in {t_train:.2f}s (fit {t_fit:.2f}s); plain SQL {t_bare / t_sql:.2f}x and front door "
              f"{t_bare / t_door:.2f}x the bare estimator", flush=True)

    print(f"\nrows={args.rows:,}  threads={threads}  best of {args.repeat}  (ratios: against the bare estimator)")
    print(f"{'model':<14} {'bare rows/s':>12} {'pipeline rows/s':>15} {'plain SQL rows/s':>17} {'ratio':>6}"
          f" {'front door rows/s':>18} {'ratio':>6} {'ml_train s':>10} {'fit s':>7} {'overhead':>8}")
    for algorithm, bare, pipe, sql, door, t_train, t_fit in results:
        print(f"{algorithm:<14} {bare:>12,.0f} {pipe:>15,.0f} {sql:>17,.0f} {sql / bare:>6.2f}"
              f" {door:>18,.0f} {door / bare:>6.2f} {t_train:>10.2f} {t_fit:>7.2f} {t_train / t_fit:>8.2f}")


if __name__ == "__main__":
    main()
