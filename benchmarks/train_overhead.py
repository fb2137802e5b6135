"""Training cost through SQL against fitting the same estimator on the same matrix, as a ratio.

    python benchmarks/train_overhead.py                                  # gbm on 500k rows, rf on 100k, median of 5
    python benchmarks/train_overhead.py --algorithms gbm:200000 --repeat 7

For each ``algorithm:rows`` a table of that many rows (as in predict_throughput.py) is trained on with
``FROM ml_train('m', 'train', label := 'churned', algorithm := ...)``, a retraining of a model that already has
an active version (the default deploy := 'if_better', so the active version is scored on the new hold-out too):
reading the relation, featurising, the hold-out split, the fit, evaluation, the hold-out rows kept for the
importances (which the first ``ml_explain`` computes, so they are not timed here), the training snapshot, the
comparison with the active version, serialisation and the store write.

The reference is ``clone(est).fit(X_train, y_train)``: the very estimator ml_train stored (same class, same
parameters: early stopping, validation fraction, class weights, seed), unfitted, on the same training rows (the
same hold-out split) as a ready NumPy matrix, in the same process and with the same threads. Both run in the
same rounds, interleaved, ``--repeat`` times, each going first in every other round (ml_train run right after a
reference fit took about 1 s longer). ``--pause S`` idles S seconds before every timed call: on this project's VMs
memory freed and left idle for a few seconds is slow to use again, and a call after a pause is slower on both sides
(a 3 s pause took the reference fit of a 2M-row logistic regression from 2.1 to 2.9 s). Other jobs on a shared machine change a fit's time from one
round to the next (an OpenMP fit waits for its slowest thread), so two figures are printed:

* ``ratio``: median ml_train time over median reference fit time;
* ``own-fit ratio``: per round, ml_train's time over the time of the fit inside that same call (its note
  ``fit took``), median over rounds: what the rest of ml_train adds to a fit under the same load;
* ``CPU ratio``: the CPU seconds of all the process's threads, median ml_train over median reference fit
  (less sensitive to waiting for a core than wall time).

The target is a ratio of at most 1.2 for fits over 2 s.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time

from sklearn.base import clone

import warehouse_ml as wml
from predict_throughput import make_table
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks import supervised as sv
from warehouse_ml.tasks.features import Featurizer, split_groups


def train(con, sql: str) -> tuple[float, float, float]:
    """(seconds of the whole ml_train call, seconds of the fit inside it, CPU seconds of the process's threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    notes = con.execute(f"SELECT notes FROM ({sql})").fetchall()[0][0]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    fit = next(float(m.group(1)) for n in notes if (m := re.match(r"fit took ([\d.]+)s", n)))
    return seconds, fit, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithms", default="gbm:500000,random_forest:100000", help="algorithm:training rows, ...")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds idle before each timed call (on this VM, memory left idle a few seconds is slower "
                         "to use again, and both sides slow down; 0 measures them back to back)")
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
        train(con, sql)  # the first version: every timed call below is a retraining
        est = runtime_for(con).store.load(f"m_{algorithm}").obj
        table = con.sql("FROM train").to_arrow_table()
        X = Featurizer.fit(table, "churned").transform(table)
        y = table.column("churned").to_numpy()
        X_tr, _, y_tr, _ = sv.split_holdout(X, y, "classification", 0.2, split_groups(table)[0])
        calls, fits, fit_cpu = [], [], []
        def reference_fit():
            time.sleep(args.pause)
            t0, c0 = time.perf_counter(), time.process_time()
            clone(est).fit(X_tr, y_tr)
            fits.append(time.perf_counter() - t0)
            fit_cpu.append(time.process_time() - c0)

        for round_ in range(args.repeat):  # each goes first in every other round (see the docstring)
            if round_ % 2 == 0:
                reference_fit()
            time.sleep(args.pause)
            calls.append(train(con, sql))
            if round_ % 2 == 1:
                reference_fit()
        t_train, t_fit = statistics.median(c[0] for c in calls), statistics.median(fits)
        own = statistics.median(total / inside for total, inside, _ in calls)
        cpu = statistics.median(c[2] for c in calls) / statistics.median(fit_cpu)
        results.append((algorithm, rows, t_train, t_fit, own, cpu))
        print(f"{algorithm} on {rows:,} rows: ml_train {t_train:.2f}s (rounds, total/own fit: "
              f"{', '.join(f'{a:.1f}/{b:.1f}' for a, b, _ in calls)}), reference fit {t_fit:.2f}s "
              f"(rounds: {', '.join(f'{f:.1f}' for f in fits)}), {t_train / t_fit:.2f}x, own-fit {own:.2f}x, "
              f"CPU {cpu:.2f}x", flush=True)
    print(f"\nmedian of {args.repeat} interleaved rounds  pause {args.pause:g} s  load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<14} {'rows':>10} {'ml_train s':>10} {'fit s':>7} {'ratio':>6} {'own-fit ratio':>13} {'CPU ratio':>9}")
    for algorithm, rows, t_train, t_fit, own, cpu in results:
        print(f"{algorithm:<14} {rows:>10,} {t_train:>10.2f} {t_fit:>7.2f} {t_train / t_fit:>6.2f} {own:>13.2f} {cpu:>9.2f}")


if __name__ == "__main__":
    main()
