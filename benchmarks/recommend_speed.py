"""Recommendation speed and quality: 1M interactions, 50k users, 10k items (synthetic, with taste clusters).

For every method: training time and recommendations per second (the kernel on a SciPy matrix), the whole SQL
call ``recommend_items('events', 10, method := ...)`` materialised into a table, and recall@10 / NDCG@10 on a
time-ordered per-user holdout against popularity (``evaluate_recommender``). As a reference, the same ALS
(same confidence matrix, same hyperparameters) through the ``implicit`` library directly on a SciPy matrix:
build the matrix, fit, ``recommend`` for every user. The SQL path's overhead is the ratio of the two.

    python benchmarks/recommend_speed.py                 # the full size
    python benchmarks/recommend_speed.py --scale 0.1     # a quick look
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warehouse_ml as wml  # noqa: E402
from warehouse_ml.functions.recommend_data import DEFAULT_EVENT_WEIGHTS  # noqa: E402
from warehouse_ml.tasks import recommend as rk  # noqa: E402


def make_events(n_users: int, n_items: int, n: int, seed: int = 0) -> pa.Table:
    d = rk.synthetic_interactions(n_users, n_items, n, n_clusters=max(10, n_items // 200), seed=seed)
    ts = (np.datetime64("2024-01-01T00:00:00", "us") + (d["time"] * 1e6).astype("timedelta64[us]"))
    return pa.table({"user_id": d["user"].astype(np.int64), "item_id": d["item"].astype(np.int64), "ts": ts,
                     "event_type": d["event"].astype(str), "qty": d["qty"].astype(np.int64)})


def reference_als(events: pa.Table, n_users: int, n_items: int, params: dict, k: int) -> dict:
    """What a Python user would write: weights -> SciPy CSR -> implicit ALS -> recommend for everyone."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    ev = events.column("event_type").to_numpy(zero_copy_only=False)
    types, codes = np.unique(ev, return_inverse=True)
    w = np.array([DEFAULT_EVENT_WEIGHTS.get(t, 1.0) for t in types])[codes] * events.column("qty").to_numpy()
    X = rk.interaction_matrix(events.column("user_id").to_numpy(), events.column("item_id").to_numpy(), w,
                              n_users, n_items)
    conf = rk.ALSRecommender(**params).confidence(X)  # the same confidence the SQL path fits on
    t1 = time.perf_counter()
    p = rk.ALSRecommender.validate(params)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=p["factors"], regularization=p["regularization"], alpha=1.0,
                                        iterations=p["iterations"], random_state=p["random_state"],
                                        calculate_training_loss=False)
        model.fit(conf, show_progress=False)
    t2 = time.perf_counter()
    users = np.arange(n_users)
    ids, scores = model.recommend(users, X.tocsr(), N=k, filter_already_liked_items=True)
    t3 = time.perf_counter()
    return {"prepare": t1 - t0, "fit": t2 - t1, "recommend": t3 - t2, "total": t3 - t0, "recs": int((scores > -1e38).sum())}


class _Breakdown(logging.Handler):
    """Keeps the SQL path's own timing lines (reading, fitting, recommending) to print them."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        msg = record.getMessage()
        if " in " in msg and " s" in msg:
            self.lines.append(msg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (1M interactions)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1, help="runs of the ALS reference and SQL path (best is kept)")
    ap.add_argument("--skip-eval", action="store_true", help="skip evaluate_recommender (the holdout)")
    args = ap.parse_args()
    n = int(1_000_000 * args.scale)
    n_users, n_items = int(50_000 * args.scale), max(100, int(10_000 * args.scale))
    k = args.k
    als_params = {"factors": 64, "iterations": 15}
    print(f"recommend_speed: {n:,} interactions, {n_users:,} users, {n_items:,} items, k={k}, "
          f"{os.cpu_count()} CPUs, implicit {'available' if rk._implicit_available() else 'MISSING'}")

    events = make_events(n_users, n_items, n)
    tmp = tempfile.mkdtemp(prefix="wml_rec_bench_")
    con = wml.connect(os.path.join(tmp, "shop.duckdb"))
    con.execute("SET enable_progress_bar = false")
    con.register("ev_arrow", events)
    con.execute("CREATE TABLE events AS SELECT * FROM ev_arrow")
    con.unregister("ev_arrow")

    # kernel timings on the matrix the SQL path builds (same weights)
    ev = events.column("event_type").to_numpy(zero_copy_only=False)
    types, codes = np.unique(ev, return_inverse=True)
    w = np.array([DEFAULT_EVENT_WEIGHTS.get(t, 1.0) for t in types])[codes] * events.column("qty").to_numpy()
    X = rk.interaction_matrix(events.column("user_id").to_numpy(), events.column("item_id").to_numpy(), w,
                              n_users, n_items)
    methods = {"popular": {}, "item_knn": {}}
    if rk._implicit_available():
        methods["als"] = als_params
    print(f"\n{'method':<10}{'fit s':>9}{'recommend s':>13}{'recs/s':>12}{'SQL total s':>13}{'SQL recs/s':>12}")
    sql_times = {}
    breakdown = _Breakdown()
    wlog = logging.getLogger("warehouse_ml")
    wlog.addHandler(breakdown)
    wlog.setLevel(logging.INFO)
    for name, params in methods.items():
        t0 = time.perf_counter()
        rec = rk.make_recommender(name, params).fit(X)
        t1 = time.perf_counter()
        items, _ = rec.recommend(np.arange(n_users), X, k)
        t2 = time.perf_counter()
        n_recs = int((items >= 0).sum())
        best = None
        for _ in range(args.repeat if name == "als" else 1):
            s0 = time.perf_counter()
            con.execute(f"""CREATE OR REPLACE TABLE recs AS FROM recommend_items('events', {k}, weight := 'qty',
                            method := '{name}', params := {_struct(params)})""")
            s1 = time.perf_counter()
            best = s1 - s0 if best is None else min(best, s1 - s0)
        sql_n = con.execute("SELECT count(*) FROM recs").fetchone()[0]
        sql_times[name] = best
        print(f"{name:<10}{t1 - t0:>9.2f}{t2 - t1:>13.2f}{n_recs / (t2 - t1):>12,.0f}{best:>13.2f}{sql_n / best:>12,.0f}")

    if "als" in methods:
        ref = None
        for _ in range(args.repeat):
            r = reference_als(events, n_users, n_items, als_params, k)
            ref = r if ref is None or r["total"] < ref["total"] else ref
        print(f"\nALS reference (implicit on a SciPy matrix): prepare {ref['prepare']:.2f} s, fit {ref['fit']:.2f} s, "
              f"recommend {ref['recommend']:.2f} s ({ref['recs'] / ref['recommend']:,.0f} recs/s), total {ref['total']:.2f} s")
        print("SQL path, last ALS call: " + "; ".join(breakdown.lines[-3:]))
        print(f"SQL path recommend_items(method := 'als'): {sql_times['als']:.2f} s -> overhead ratio "
              f"{sql_times['als'] / ref['total']:.2f}x (target <= 1.2x)")

    if not args.skip_eval:
        t0 = time.perf_counter()
        rows = con.execute(f"""SELECT method, precision_at_k, recall_at_k, ndcg_at_k, map_at_k, coverage,
                                      ndcg_vs_popular, seconds
                               FROM evaluate_recommender('events', {k}, weight := 'qty', params := {_struct(als_params)})""").fetchall()
        t1 = time.perf_counter()
        pop_recall = next(r[2] for r in rows if r[0] == "popular")
        print(f"\nholdout (last 20% of each user's items by time), k={k}, {t1 - t0:.1f} s:")
        print(f"{'method':<10}{'prec@k':>9}{'recall@k':>10}{'ndcg@k':>9}{'map@k':>9}{'coverage':>10}"
              f"{'recall/popular':>16}{'ndcg/popular':>14}{'fit+rec s':>11}")
        for m, p, r, nd, mp, cov, vs, secs in rows:
            print(f"{m:<10}{p:>9.4f}{r:>10.4f}{nd:>9.4f}{mp:>9.4f}{cov:>10.3f}{r / pop_recall:>16.2f}{vs:>14.2f}{secs:>11.2f}")
    con.close()


def _struct(params: dict) -> str:
    """A DuckDB struct literal of numeric hyperparameters (the benchmark's own constants)."""
    if not params:
        return "NULL"
    return "{" + ", ".join(f"'{k}': {v!r}" for k, v in params.items()) + "}"


if __name__ == "__main__":
    main()
