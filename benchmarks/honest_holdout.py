"""How much copies flatter a hold-out: a random forest's hold-out ROC AUC on labels that are pure noise.

    python benchmarks/honest_holdout.py

Three tables, each with three random features and a random 0/1 label (so any AUC above 0.5 is memorisation):
400 distinct rows; the same 400 rows copied 4 times; 200 users with 5 near-identical rows each (a ``user_id``
column). ``ml_train`` keeps copies and one user's rows on one side of the hold-out split, so all three should
be near 0.5; a split that lets them straddle gives about 1.0 on the last two.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import warehouse_ml as wml


def noise(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "c": rng.random(n), "label": rng.integers(0, 2, n)})


def main() -> None:
    con = wml.connect(":memory:")
    distinct = noise(400, 1)
    users = noise(200, 2)
    visits = users.loc[np.repeat(users.index, 5)].reset_index(drop=True)
    visits[["a", "b", "c"]] += np.random.default_rng(2).normal(0, 0.01, (len(visits), 3))
    visits.insert(0, "user_id", np.repeat(np.arange(200), 5))
    tables = {"distinct rows": distinct, "rows copied 4 times": pd.concat([distinct] * 4, ignore_index=True),
              "200 users x 5 rows": visits}
    print(f"{'table':<22} {'rows':>6} {'hold-out ROC AUC':>17}")
    for i, (name, frame) in enumerate(tables.items()):
        con.register("frame", frame)
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM frame")
        auc = con.execute(f"SELECT metrics['roc_auc'] FROM ml_train('m{i}', 't{i}', label := 'label', "
                          "algorithm := 'random_forest')").fetchall()[0][0]
        print(f"{name:<22} {len(frame):>6} {auc:>17.3f}")


if __name__ == "__main__":
    main()
