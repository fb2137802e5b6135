"""Recommendation quality on real data: MovieLens 100K, every method against implicit's own models, one run.

The data: MovieLens 100K (943 users, 1,682 movies, 100,000 timestamped ratings; GroupLens), as shipped inside
the ``recbole`` wheel on PyPI (``recbole/dataset_example/ml-100k/ml-100k.inter``). Install the data without the
library's dependencies: ``pip install --no-deps recbole==1.2.1`` (nothing is imported from it; the file is found
through the package's metadata). Every rating counts as one implicit interaction (the usual top-N protocol).

Protocol: each user's last 20% of movies by timestamp are held out (``holdout_split``, the same split
``evaluate_recommender`` uses); every model is fitted on the rest and ranks the movies the user has not rated in
training; recall@10 and NDCG@10 over the users with a held-out movie (``ranking_metrics``). For each of our
methods: its defaults, and tuned by ``auto``'s own search restricted to that method (the search sees only the
training part: it holds out the last 20% of it again). ``auto`` searches every method within its budget and
refits the winner on the whole training part. implicit's models with their default settings are the library a
Python user would pick instead; implicit's ``ranking_metrics_at_k`` cross-checks NDCG on them (it uses the same
binary gains; its 'precision' divides by min(k, relevant), so it is not our recall).

    python benchmarks/recommend_quality.py                   # all methods, one run (a few minutes on 2 cores)
    python benchmarks/recommend_quality.py --budget 10       # a smaller search budget per tuned method
"""
from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warehouse_ml.tasks import recommend as rk  # noqa: E402

K = 10


def movielens_100k() -> dict[str, np.ndarray]:
    """user, item (codes), time (epoch seconds) of MovieLens 100K from the recbole wheel."""
    try:
        path = next(f.locate() for f in importlib.metadata.files("recbole") if str(f).endswith("ml-100k.inter"))
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        sys.exit("MovieLens 100K comes inside the recbole wheel: pip install --no-deps recbole==1.2.1")
    raw = np.loadtxt(path, skiprows=1, dtype=np.float64)
    _, users = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
    _, items = np.unique(raw[:, 1].astype(np.int64), return_inverse=True)
    return {"user": users.astype(np.int64), "item": items.astype(np.int64), "time": raw[:, 3]}


def split(d: dict) -> tuple:
    n_users, n_items = int(d["user"].max()) + 1, int(d["item"].max()) + 1
    test = rk.holdout_split(d["user"], n_users, d["time"], 0.2)
    train = {key: v[~test] for key, v in d.items()}
    X = rk.interaction_matrix(train["user"], train["item"], None, n_users, n_items)
    R = rk.recency_ranks(train["user"], train["item"], train["time"], n_users, n_items)
    T = rk.interaction_matrix(d["user"][test], d["item"][test], None, n_users, n_items)
    return train, X, R, T, n_users, n_items


def score(top: np.ndarray, T, eval_users: np.ndarray, n_items: int) -> dict:
    m = rk.ranking_metrics(top, T[eval_users], K, n_items)
    return {"recall": m["recall_at_k"], "ndcg": m["ndcg_at_k"]}


def run_ours(name: str, X, R, T, eval_users, n_items, make) -> dict:
    t0 = time.perf_counter()
    rec, detail = make()
    seconds = time.perf_counter() - t0
    top, _ = rec.recommend(eval_users, X[eval_users], K, recency=R[eval_users])
    return {"name": name, **score(top, T, eval_users, n_items), "seconds": seconds, "detail": detail}


def run_implicit(name: str, model, X, T, eval_users, n_items) -> dict:
    from implicit.evaluation import ranking_metrics_at_k
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        model.fit(X, show_progress=False)
        seconds = time.perf_counter() - t0
        ids, _ = model.recommend(eval_users, X[eval_users], N=K, filter_already_liked_items=True)
        check = ranking_metrics_at_k(model, X, T, K=K, show_progress=False)
    return {"name": name, **score(np.asarray(ids), T, eval_users, n_items), "seconds": seconds,
            "detail": f"implicit ndcg {check['ndcg']:.4f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=None, help="search budget (s) per tuned method; default: auto's")
    args = ap.parse_args()
    import implicit

    d = movielens_100k()
    train, X, R, T, n_users, n_items = split(d)
    eval_users = np.flatnonzero(np.diff(T.indptr) > 0)
    print(f"MovieLens 100K: {n_users} users, {n_items} items, {len(d['user'])} ratings; "
          f"{T.nnz} held out for {len(eval_users)} users; implicit {implicit.__version__}")
    rows = []

    def defaults(method):
        return lambda: (rk.make_recommender(method).fit(X), "defaults")

    def tuned(methods):
        def make():
            choice = rk.tune(train["user"], train["item"], np.ones(len(train["user"]), np.float32), n_users, n_items,
                             K, time=train["time"], methods=methods, budget=args.budget)
            return choice.refit(X), f"{choice.method} {rk.describe(choice.params)} ({len(choice.candidates)} tried)"
        return make

    for m in rk.available_methods():
        rows.append(run_ours(f"{m} (defaults)", X, R, T, eval_users, n_items, defaults(m)))
        if m != "popular":
            rows.append(run_ours(f"{m} (tuned)", X, R, T, eval_users, n_items, tuned([m])))
    rows.append(run_ours("auto", X, R, T, eval_users, n_items, tuned(None)))

    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.cpu.lmf import LogisticMatrixFactorization
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    for name, model in [("implicit ALS", AlternatingLeastSquares(random_state=0)),
                        ("implicit BPR", BayesianPersonalizedRanking(random_state=0)),
                        ("implicit LMF", LogisticMatrixFactorization(random_state=0)),
                        ("implicit CosineRecommender", CosineRecommender()),
                        ("implicit BM25Recommender", BM25Recommender()),
                        ("implicit TFIDFRecommender", TFIDFRecommender())]:
        rows.append(run_implicit(name, model, X, T, eval_users, n_items))

    best_implicit = max((r for r in rows if r["name"].startswith("implicit")), key=lambda r: r["ndcg"])
    pop = next(r for r in rows if r["name"].startswith("popular"))
    print(f"\n{'model':34s} {'recall@10':>9s} {'NDCG@10':>8s} {'vs pop':>7s} {'vs impl.':>8s} {'fit s':>7s}  detail")
    for r in rows:
        print(f"{r['name']:34s} {r['recall']:9.4f} {r['ndcg']:8.4f} {r['ndcg'] / pop['ndcg']:7.3f} "
              f"{r['ndcg'] / best_implicit['ndcg']:8.3f} {r['seconds']:7.2f}  {r['detail']}")
    auto = next(r for r in rows if r["name"] == "auto")
    best_single = max((r for r in rows if r["name"].endswith("(tuned)")), key=lambda r: r["ndcg"])
    print(f"\nauto NDCG@10 / best tuned single method ({best_single['name']}): {auto['ndcg'] / best_single['ndcg']:.3f}; "
          f"/ best implicit default ({best_implicit['name']}): {auto['ndcg'] / best_implicit['ndcg']:.3f} "
          f"(recall@10 ratio {auto['recall'] / best_implicit['recall']:.3f})")


if __name__ == "__main__":
    main()
