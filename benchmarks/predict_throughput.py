"""Inference and training throughput from SQL, as ratios against the same model on in-memory NumPy.

    python benchmarks/predict_throughput.py              # 10 million rows (the issue's default)
    python benchmarks/predict_throughput.py --rows 1000000

For logistic regression and gradient boosting it prints rows/s of ``SELECT avg(predict_churn(t)) FROM t``
(run through the front door, which inlines linear models as SQL, and as the plain UDF call), and of the same
fitted estimator's ``predict_proba`` on the same rows held as a NumPy matrix; then training time through
``ml_train`` against fitting the same pipeline on the NumPy matrix directly. Every figure is measured in this
run; the ratio is what to compare across machines.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


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


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="training timings: best of this many runs (shared machines are noisy)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    con = wml.connect(os.path.join(tmp, "bench.duckdb"))
    print(f"building {args.rows:,} rows ...", flush=True)
    make_table(con, args.rows)
    table = con.sql("FROM t").to_arrow_table()
    train = con.sql("FROM train").to_arrow_table()
    # Warm-up, as one would for any library: the first training imports the serialiser and scikit-learn parts.
    con.execute("CREATE OR REPLACE TABLE warm AS FROM train LIMIT 2000")
    con.execute("FROM ml_train('warm_up', 'warm', label := 'churned', algorithm := 'logistic')").fetchall()
    results = []
    for algorithm in ("logistic", "gbm"):
        # -- training: ml_train against the same featurize + fit on NumPy ---------------------------------
        t_sql = min(timed(lambda: con.execute(
            f"FROM train_churn('train', algorithm := '{algorithm}', test_size := 0.2)").fetchone())[0]
            for _ in range(args.repeat))
        feats = Featurizer.fit(train, "churned", [])
        X_train = feats.transform(train)
        y_train = train.column("churned").to_numpy()
        est = sv.make_estimator(algorithm, "classification", feats.categorical_mask, {}, None)
        X_fit, _, y_fit, _ = sv.split_holdout(X_train, y_train, "classification", 0.2)  # the rows ml_train fits on
        t_np = min(timed(lambda: est.fit(X_fit, y_fit))[0] for _ in range(args.repeat))

        # -- inference: SQL against predict_proba on the in-memory matrix ---------------------------------
        stored = runtime_for(con).store.load("churn").obj
        X = Featurizer.from_json(feats.features).transform(table)
        t_ref, ref = timed(lambda: stored.predict_proba(X)[:, 1].mean())
        t_door, door = timed(lambda: wml.sql(con, "SELECT avg(predict_churn(t)) FROM t").fetchone()[0])
        t_udf, udf = timed(lambda: con.execute("SELECT avg(ml_predict('churn', t)) FROM t t").fetchone()[0])
        assert abs(door - ref) < 1e-6 and abs(udf - ref) < 1e-6, (door, udf, ref)
        n = args.rows
        results.append((algorithm, n / t_ref, n / t_door, n / t_udf, t_sql, t_np))
        print(f"{algorithm}: trained in {t_sql:.2f}s (NumPy fit {t_np:.2f}s); scored {n:,} rows", flush=True)

    print(f"\nrows={args.rows:,}  training best of {args.repeat}  threads={con.execute('SELECT current_setting(' + chr(39) + 'threads' + chr(39) + ')').fetchone()[0]}")
    print(f"{'model':<10} {'numpy rows/s':>14} {'front door rows/s':>18} {'ratio':>6} {'UDF rows/s':>12} {'ratio':>6}"
          f" {'ml_train s':>10} {'numpy fit s':>11} {'overhead':>8}")
    for algorithm, ref, door, udf, t_sql, t_np in results:
        print(f"{algorithm:<10} {ref:>14,.0f} {door:>18,.0f} {door / ref:>6.2f} {udf:>12,.0f} {udf / ref:>6.2f}"
              f" {t_sql:>10.2f} {t_np:>11.2f} {t_sql / t_np:>8.2f}")
    print("\nThe front door inlines linear models as SQL; gradient boosting runs through the Arrow UDF either way.")
    print("ml_train also evaluates on the hold-out, computes permutation importances and stores the model.")


if __name__ == "__main__":
    main()
