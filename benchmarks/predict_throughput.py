"""Inference throughput from SQL, as ratios against the bare estimator on an in-memory NumPy matrix.

    python benchmarks/predict_throughput.py                       # 1 million rows, every algorithm, median of 3
    python benchmarks/predict_throughput.py --rows 10000000 --algorithms logistic,gbm --repeat 5
    python benchmarks/predict_throughput.py --rows 2000000 --algorithms logistic --table floats   # issue 14's setup

``--table mixed`` (the default) has ten features: eight numbers, one of them NULL in 5% of rows, a text channel and
a tenure; ``--table floats`` has ten float features and no NULLs (the setup issue 14 measured on).

For each algorithm a model is trained through ``ml_train`` on the first ``--train-rows`` rows, then every row
is scored (timings interleaved round by round, so load from other jobs falls on all alike, each timed call right
after an untimed one of the same path; the median of ``--repeat`` rounds is reported) by

* plain SQL: ``SELECT avg(ml_predict('m', t)) FROM t t`` -- the path dbt and every DuckDB client take (a linear
  model through the store's macro ``wml.predict_inline``, as SQL; any other model through the Python UDF);
* the front door: ``wml.sql(con, "SELECT avg(ml_predict('m', *)) FROM t")`` (linear models inlined as SQL);
* the UDF itself: ``SELECT avg(wml_predict('m', t)) FROM t t`` (the Arrow batch path, for every model);

against two references on the same rows held as a NumPy matrix, both cores, measured in the same rounds:

* the bare estimator on a ready matrix: the fitted scikit-learn estimator's ``predict_proba`` on its own input
  (for the linear pipeline: the final model on the already-preprocessed matrix; for the MLP: the Keras model's
  ``predict`` on its standardised inputs, ``batch_size=8192``);
* the stored pipeline's ``predict_proba`` on the featurised matrix (our preprocessing included).

Also timed, as the ceiling of any Python UDF over a whole row: ``SELECT avg(empty_udf(t)) FROM t t``, an Arrow
UDF that returns zeros without reading its input (what DuckDB spends handing the row struct to Python); and as the
ceiling of any Python UDF at all, the same over one DOUBLE column (``empty_udf_number``: DuckDB's cost per call of
2,048 rows, whatever the function does).

Every path's mean score must equal the bare estimator's (1e-9; the float32 MLP 1e-5), or the run fails.
Training cost is measured by ``train_overhead.py``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa
from sklearn.pipeline import Pipeline

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks.features import Featurizer

TRAIN_ROWS = 200_000
SETTLE_S = 0.3  # pause before each timed call: right after NumPy's reference a DuckDB query ran 25% slower


def make_table(con, rows: int, train_rows: int = TRAIN_ROWS, kind: str = "mixed") -> None:
    """Tables ``t`` (every row) and ``train`` (the first ``train_rows``): ten features and a churn label with real
    signal; ``mixed``: nine numeric (one with NULLs) and one categorical, ``floats``: ten floats, no NULLs."""
    con.execute("SELECT setseed(0.42)")
    if kind == "floats":
        features = ", ".join(f"random() * {k + 1} - 0.5 AS x{k}" for k in range(10))
        con.execute(f"""CREATE OR REPLACE TABLE t AS SELECT user_id, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9,
                         (x0 - x1 + 0.3 * x2 + random() - 0.5 > 0)::INT AS churned
                         FROM (SELECT range AS user_id, {features} FROM range({rows}))""")
        con.execute(f"CREATE OR REPLACE TABLE train AS FROM t WHERE user_id < {train_rows}")
        return
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
    con.execute(f"CREATE OR REPLACE TABLE train AS FROM t WHERE user_id < {train_rows}")


def interleaved(paths: dict, repeat: int) -> dict:
    """name -> (median seconds, result): every path once per round, ``repeat`` rounds, each timed call right after
    an untimed one of the same path: a call pays for what the path before it left behind (scikit-learn's decision
    tree ran 0.31-0.44 s on 2M rows right after a DuckDB query, 0.13-0.14 s right after itself)."""
    times, results = {k: [] for k in paths}, {}
    for _ in range(repeat):
        for name, fn in paths.items():
            time.sleep(SETTLE_S)
            fn()
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), results[k]) for k, v in times.items()}


def bare_reference(est, X: np.ndarray):
    """The estimator itself on a matrix ready for it: a pipeline's last step on its preprocessed input, the
    Keras network on its standardised inputs."""
    if isinstance(est, Pipeline):
        ready = est[:-1].transform(X)
        return lambda: est[-1].predict_proba(ready)[:, 1].mean()
    if hasattr(est, "prep_"):  # the MLP: rebuild the Keras network from the stored weights
        from warehouse_ml.tasks.deep import import_tf, model_inputs, set_weights

        _, keras = import_tf()
        network = est._build(keras, compile=False)
        set_weights(network, est._weights)
        ready = model_inputs(est.prep_, *est.prep_.transform(X))
        network.predict(ready, batch_size=8192, verbose=0)  # builds the predict function once
        return lambda: float(network.predict(ready, batch_size=8192, verbose=0)[:, 0].astype(np.float64).mean())
    return lambda: est.predict_proba(X)[:, 1].mean()


def register_empty_udf(con) -> None:
    """``empty_udf(row)``: zeros for a batch of ``t``'s rows, reading nothing (the hand-off's own cost), and
    ``empty_udf_number(x)``: the same for one DOUBLE column."""
    row_type = con.execute("SELECT typeof(t) FROM t t LIMIT 1").fetchall()[0][0]
    con.create_function("empty_udf", lambda rows: pa.array(np.zeros(len(rows))), [duckdb.sqltype(row_type)],
                        duckdb.sqltype("DOUBLE"), type="arrow", null_handling="special")
    con.create_function("empty_udf_number", lambda x: pa.array(np.zeros(len(x))), [duckdb.sqltype("DOUBLE")],
                        duckdb.sqltype("DOUBLE"), type="arrow", null_handling="special")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=TRAIN_ROWS)
    ap.add_argument("--table", choices=("mixed", "floats"), default="mixed", help="see the docstring")
    ap.add_argument("--algorithms", default="logistic,gbm,random_forest,decision_tree,mlp")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported (shared machines are noisy)")
    args = ap.parse_args()
    con = wml.connect(os.path.join(tempfile.mkdtemp(), "bench.duckdb"))
    print(f"building {args.rows:,} rows ...", flush=True)
    make_table(con, args.rows, args.train_rows, args.table)
    register_empty_udf(con)
    table = con.sql("FROM t").to_arrow_table()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    number = next(f'"{f.name}"' for f in table.schema if pa.types.is_float64(f.type))  # the first DOUBLE feature
    results = []
    for algorithm in args.algorithms.split(","):
        m = f"bench_{algorithm}"
        con.execute(f"FROM ml_train('{m}', 'train', label := 'churned', algorithm := '{algorithm}')").fetchall()
        sm = runtime_for(con).store.load(m)
        X = Featurizer.from_json(sm.features).transform(table)
        con.execute(f"SELECT avg(ml_predict('{m}', t)) FROM t t LIMIT 1").fetchall()  # loads and compiles the scorer
        timed = interleaved({
            "bare": bare_reference(sm.obj, X),
            "pipeline": lambda: sm.obj.predict_proba(X)[:, 1].mean(),
            "sql": lambda: con.execute(f"SELECT avg(ml_predict('{m}', t)) FROM t t").fetchone()[0],
            "door": lambda: wml.sql(con, f"SELECT avg(ml_predict('{m}', *)) FROM t").fetchone()[0],
            "udf": lambda: con.execute(f"SELECT avg(wml_predict('{m}', t)) FROM t t").fetchone()[0],
            "empty": lambda: con.execute("SELECT avg(empty_udf(t)) FROM t t").fetchone()[0],
            "empty number": lambda: con.execute(f"SELECT avg(empty_udf_number({number})) FROM t").fetchone()[0],
        }, args.repeat)
        ref = timed["bare"][1]
        tolerance = 1e-5 if algorithm == "mlp" else 1e-9
        for path in ("pipeline", "sql", "door", "udf"):
            assert abs(timed[path][1] - ref) < tolerance, (algorithm, path, timed[path][1], ref)
        rate = {k: args.rows / v[0] for k, v in timed.items()}
        results.append((algorithm, rate))
        print(f"{algorithm}: plain SQL {rate['sql'] / rate['bare']:.2f}x and front door {rate['door'] / rate['bare']:.2f}x"
              f" the bare estimator", flush=True)

    print(f"\nrows={args.rows:,}  table={args.table}  threads={threads}  median of {args.repeat} interleaved rounds  "
          f"load average {os.getloadavg()[0]:.1f}  (ratios: against the bare estimator)")
    print(f"{'model':<14} {'bare rows/s':>12} {'pipeline rows/s':>15} {'plain SQL rows/s':>17} {'ratio':>6}"
          f" {'front door rows/s':>18} {'ratio':>6} {'UDF rows/s':>12} {'ratio':>6} {'empty UDF rows/s':>17} {'ratio':>6}"
          f" {'empty UDF of a number':>21} {'ratio':>6}")
    for algorithm, r in results:
        print(f"{algorithm:<14} {r['bare']:>12,.0f} {r['pipeline']:>15,.0f} {r['sql']:>17,.0f} {r['sql'] / r['bare']:>6.2f}"
              f" {r['door']:>18,.0f} {r['door'] / r['bare']:>6.2f} {r['udf']:>12,.0f} {r['udf'] / r['bare']:>6.2f}"
              f" {r['empty']:>17,.0f} {r['empty'] / r['bare']:>6.2f}"
              f" {r['empty number']:>21,.0f} {r['empty number'] / r['bare']:>6.2f}")


if __name__ == "__main__":
    main()
