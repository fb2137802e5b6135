"""What a stored MLP costs a process that only scores it: a fresh interpreter that connects, scores every row of
a table with ``ml_predict`` and exits, against a fresh interpreter that only runs ``import tensorflow`` (what
every scoring process paid when the artifact was a Keras file).

    python benchmarks/mlp_scoring_startup.py              # 1,500 rows, best of 2
    python benchmarks/mlp_scoring_startup.py --rows 100000 --repeat 3

The MLP is trained once (TensorFlow is imported for that, in this process only). The scoring process also
reports whether ``tensorflow`` ended up in ``sys.modules`` and how many characters it wrote to stderr (log lines).
The ratio is scoring over the import alone: below 1 means scoring finishes before TensorFlow would have loaded.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import warehouse_ml as wml


def _wall(code: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(y=(x[:, 0] + x[:, 1] ** 2 > 1).astype(int))
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "mlp.duckdb")
        con = wml.connect(db)
        con.execute("CREATE TABLE t AS FROM frame")
        con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'mlp', params := {epochs: 5})").fetchall()
        con.close()
        score = (f"import sys, warehouse_ml as wml; con = wml.connect({db!r}, read_only=True); "
                 "con.execute(\"SELECT avg(ml_predict('m', t)) FROM t\").fetchall(); print('tensorflow' in sys.modules)")
        best_score = best_tf = float("inf")
        for _ in range(args.repeat):  # interleaved, best of each: the machine may be shared
            seconds, done = _wall(score)
            best_score = min(best_score, seconds)
            best_tf = min(best_tf, _wall("import tensorflow")[0])
        print(f"rows {args.rows:,}: scoring process {best_score:.2f}s (tensorflow imported: {done.stdout.strip()}, "
              f"stderr {len(done.stderr)} chars); import tensorflow alone {best_tf:.2f}s; "
              f"ratio {best_score / best_tf:.2f}")


if __name__ == "__main__":
    main()
