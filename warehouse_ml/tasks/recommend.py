"""Recommendation kernels: popularity, item-kNN, ALS and EASE recommenders, ``auto``'s search, a time-ordered
holdout, ranking metrics.

Pure NumPy/SciPy (no DuckDB): interactions come in as a users x items CSR matrix of positive weights (one entry
per user-item pair, repeated events already summed), and results come out as arrays of item codes. The SQL layer
(``warehouse_ml.functions.recommend``) maps ids to codes and back.

* ``PopularRecommender``: items ranked by how many distinct users interacted with them (the baseline).
* ``ItemKNNRecommender``: item-item similarity (cosine or BM25-weighted), the ``neighbors`` most similar items
  kept per item (``implicit``'s all-pairs kNN); a user's score is the similarity-weighted sum over their history.
* ``ALSRecommender``: implicit-feedback matrix factorisation, fitted by the ``implicit`` library (CPU).
* ``EASERecommender``: Steck's closed-form item-item regression (2019), for catalogues up to ``EASE_MAX_ITEMS``.
* ``tune``: ``auto``'s search: each method's hyperparameters tuned one at a time on a time-ordered holdout within a
  time budget; the best candidate wins.

Every recommender ranks items the user has not seen (``exclude_seen``), never returns an item outside the
catalogue it was fitted on (nor outside ``allowed``), and falls back to popularity where its own scores carry no
evidence (a user with no history, or an item-kNN score of zero). Estimators serialise to plain arrays
(``to_arrays``/``from_arrays``) so the model store keeps them in the ``npz`` format, whose loading runs no code.
"""
from __future__ import annotations

import difflib
import time as _time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidArgument, MissingDependency
from .recommend_base import (FILTERED, METHODS, _SCORE_BUDGET, Recommender, _confidence, _finish, _non_negative,
                             _positive, _rows_of, _top_k_dense, check_k, fill_popular, interaction_matrix,
                             item_popularity, mask_scores, popular_top_k, recency_ranks, register)

__all__ = ["FILTERED", "METHODS", "Recommender", "check_k", "interaction_matrix", "item_popularity", "popular_top_k",
           "fill_popular", "recency_ranks", "make_recommender", "available_methods", "similar_items", "holdout_split",
           "ranking_metrics", "evaluate_methods", "tune", "Choice", "describe", "default_budget", "synthetic_interactions"]

ON_REQUEST = ("two_tower",)  # trained by auto / evaluate_recommender only when named (it takes far longer)
EASE_MAX_ITEMS = 15_000  # EASE holds about three items x items float64 matrices: 15k items ~ 5.4 GB
EASE_ONE_THREAD_ITEMS = 4_000


def _check_choice(method: str, params: dict, name: str, allowed: tuple) -> None:
    if params[name] not in allowed:
        raise InvalidArgument("params", f"parameter '{name}' of method '{method}' must be one of "
                              f"{', '.join(map(repr, allowed))}, got {params[name]!r}",
                              f"Pass e.g. {{'{name}': {allowed[0]!r}}}")


def _check_unit(method: str, params: dict, name: str) -> None:
    if not 0 <= params[name] <= 1:
        raise InvalidArgument("params", f"parameter '{name}' of method '{method}' must be between 0 and 1, got "
                              f"{params[name]!r}", f"Pass e.g. {{'{name}': 0.8}}")


@register
class PopularRecommender(Recommender):
    """Items by the number of distinct users who interacted with them; the baseline every method is measured
    against. Scores are those user counts."""

    method = "popular"
    defaults: dict = {}

    def _recommend_warm(self, users, history, profile, k, exclude_seen, allowed):
        n = len(users)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), FILTERED)
        exclude = history if exclude_seen else sp.csr_matrix(history.shape, dtype=np.float32)
        fill_popular(items, scores, np.zeros(n, np.int64), exclude, self.popularity, allowed=allowed)
        return items, scores


@register
class ItemKNNRecommender(Recommender):
    """Item-based collaborative filtering. Each item keeps its ``neighbors`` most similar items, by cosine on
    log-weighted interactions (``weighting := 'cosine'``) or by dot product of BM25-weighted item vectors
    (``'bm25'``, which discounts users who interact with everything). A user's score for an item is the sum of
    its similarities to the items in the user's history, weighted by log(1 + weight)."""

    method = "item_knn"
    defaults = {"neighbors": 100, "weighting": "cosine", "K1": 1.2, "B": 0.75, "recency": 0.0}
    search_space = (("recency", (10.0, 3.0, 30.0)), ("neighbors", (50, 200, 400, 25)), ("weighting", ("bm25",)),
                    ("B", (0.5, 0.9, 1.0), {"weighting": "bm25"}), ("K1", (0.5, 3.0), {"weighting": "bm25"}))

    def __init__(self, **params):
        super().__init__(**params)
        _positive(self.method, self.params, "neighbors", "K1")
        _non_negative(self.method, self.params, "recency")
        _check_unit(self.method, self.params, "B")
        _check_choice(self.method, self.params, "weighting", ("cosine", "bm25"))
        self.similarity: sp.csr_matrix | None = None

    def _fit(self, X):
        self.similarity = item_similarity(X, self.params["neighbors"], self.params["weighting"], self.params["K1"],
                                          self.params["B"])

    def _recommend_warm(self, users, history, profile, k, exclude_seen, allowed):
        # Dense rows start at a popularity-ordered value below any similarity (in [-2, -1)), the sparse scores are
        # written over them: items without evidence then rank by popularity, and argpartition sees no ties.
        base = (self.popularity / (self.popularity.max() + 1.0) - 2.0).astype(np.float32)
        items_out, scores_out = [], []
        step = self._batch()
        for s in range(0, len(users), step):
            hist = history[s:s + step]
            P = sp.csr_matrix(profile[s:s + step] @ self.similarity)
            keep = P.data > 0
            dense = np.tile(base, (hist.shape[0], 1))
            dense[_rows_of(P)[keep], P.indices[keep]] = P.data[keep]
            mask_scores(dense, hist if exclude_seen else None, allowed)
            idx, vals = _top_k_dense(dense, k)
            vals = np.where(np.isfinite(vals) & (vals < 0), 0, vals)  # popularity fill: no similarity evidence
            i, v = _finish(idx, vals)
            items_out.append(i)
            scores_out.append(v)
        return np.vstack(items_out), np.vstack(scores_out)

    def to_arrays(self):
        S = self.similarity
        return {**super().to_arrays(), "sim_indptr": S.indptr, "sim_indices": S.indices, "sim_data": S.data}

    def _load(self, arrays):
        n = self.n_items
        self.similarity = sp.csr_matrix((arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=(n, n))


def item_similarity(X: sp.csr_matrix, neighbors: int = 100, weighting: str = "cosine", K1: float = 1.2,
                    B: float = 0.75) -> sp.csr_matrix:
    """items x items CSR keeping, per item, its ``neighbors`` most similar other items (similarity > 0): the item
    vectors (columns of log(1 + weight)) L2-normalised or BM25-weighted by ``implicit``, the nearest neighbours
    found by ``implicit``'s all-pairs kNN (multi-threaded C++)."""
    from implicit.nearest_neighbours import all_pairs_knn, bm25_weight, normalize

    C = _confidence(sp.csr_matrix(X, dtype=np.float32))
    n_items = C.shape[1]
    item_users = C.T.tocsr()
    weighted = bm25_weight(item_users, K1, B) if weighting == "bm25" else normalize(item_users)
    K = min(int(neighbors), max(n_items - 1, 1))
    S = sp.csr_matrix(all_pairs_knn(sp.csr_matrix(weighted).T.tocsr(), K + 1, num_threads=0, show_progress=False),
                      dtype=np.float32)
    S.setdiag(0)  # an item is not its own neighbour
    S.data[~(S.data > 0)] = 0
    S.eliminate_zeros()
    return _keep_top_per_row(S, K)


def _keep_top_per_row(S: sp.csr_matrix, K: int) -> sp.csr_matrix:
    """Rows with more than K entries keep their K largest, in descending order within each row."""
    S.sort_indices()
    rows = _rows_of(S)
    order = np.lexsort((-S.data, rows))
    rank = np.arange(S.nnz) - S.indptr[rows[order]]
    keep = order[rank < K]
    keep = keep[np.lexsort((-S.data[keep], rows[keep]))]
    counts = np.bincount(rows[keep], minlength=S.shape[0])
    return sp.csr_matrix((S.data[keep], S.indices[keep], np.concatenate([[0], np.cumsum(counts)])), shape=S.shape)


def _implicit_available() -> bool:
    try:
        import implicit.cpu.als  # noqa: F401
    except Exception:  # noqa: BLE001  (an import that fails for any reason means: not available)
        return False
    return True


@register
class ALSRecommender(Recommender):
    """Implicit-feedback matrix factorisation (alternating least squares, Hu, Koren and Volinsky 2008), fitted by
    the ``implicit`` library on CPU. Confidence is ``alpha * log(1 + weight)``, or BM25-weighted with
    ``weighting := 'bm25'``. A user's score for an item is the dot product of their factors."""

    method = "als"
    defaults = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15, "weighting": "bm25",
                "K1": 100.0, "B": 0.8, "random_state": 0, "threads": 0}
    search_space = (("factors", (32, 128, 16)), ("regularization", (0.5, 5.0, 0.005)), ("alpha", (1.0, 5.0, 10.0)),
                    ("B", (0.5, 0.95), {"weighting": "bm25"}), ("weighting", ("log",)), ("iterations", (30,)))

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        _positive(self.method, p, "factors", "iterations", "alpha", "K1")
        _non_negative(self.method, p, "regularization", "threads")
        _check_unit(self.method, p, "B")
        _check_choice(self.method, p, "weighting", ("bm25", "log"))
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def confidence(self, X: sp.csr_matrix) -> sp.csr_matrix:
        from implicit.nearest_neighbours import bm25_weight

        C = _confidence(X)
        if self.params["weighting"] == "bm25":
            C = bm25_weight(C.T.tocsr(), self.params["K1"], self.params["B"]).T
        C = sp.csr_matrix(C, dtype=np.float32)
        C.data *= np.float32(self.params["alpha"])
        return C

    def _fit(self, X):
        if not _implicit_available():
            raise MissingDependency("implicit", "method := 'als'", "pip install 'implicit>=0.7'")
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        p = self.params
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; a BLAS thread pool on top slows it
            model = AlternatingLeastSquares(factors=p["factors"], regularization=p["regularization"], alpha=1.0,
                                            iterations=p["iterations"], random_state=p["random_state"],
                                            num_threads=p["threads"], calculate_training_loss=False)
            model.fit(self.confidence(X), show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _scores(self, users, profile):
        return self.user_factors[users] @ self.item_factors.T

    def _recommend_warm(self, users, history, profile, k, exclude_seen, allowed):
        from implicit.cpu.topk import topk

        ids, scores = topk(self.item_factors, np.ascontiguousarray(self.user_factors[users]), k,
                           filter_query_items=history if exclude_seen else None,
                           filter_items=None if allowed is None else np.flatnonzero(~allowed).astype(np.int32),
                           num_threads=self.params["threads"])
        return _finish(np.asarray(ids), np.asarray(scores))

    def to_arrays(self):
        return {**super().to_arrays(), "user_factors": self.user_factors, "item_factors": self.item_factors}

    def _load(self, arrays):
        self.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)


@register
class EASERecommender(Recommender):
    """EASE (Steck, "Embarrassingly shallow autoencoders for sparse data", 2019): the item-item weights B minimise
    ||X - XB||^2 + lambda ||B||^2 with a zero diagonal, in closed form: P = (X'X + lambda I)^-1, B_ij = -P_ij / P_jj.
    X holds log(1 + weight); lambda = ``regularization`` x the mean diagonal of X'X, so one setting suits data
    of any density. A user's score is their history row times B. Memory grows with the square of the catalogue:
    above ``EASE_MAX_ITEMS`` items it refuses (use item_knn or als there)."""

    method = "ease"
    defaults = {"regularization": 10.0, "recency": 0.0}
    search_space = (("recency", (10.0, 3.0, 30.0)), ("regularization", (3.0, 30.0, 1.0, 100.0, 300.0)))

    def __init__(self, **params):
        super().__init__(**params)
        _positive(self.method, self.params, "regularization")
        _non_negative(self.method, self.params, "recency")
        self.weights: np.ndarray | None = None

    @classmethod
    def refuses(cls, n_users, n_items):
        if n_items > EASE_MAX_ITEMS:
            return (f"needs about {3 * 8 * n_items ** 2 / 1e9:.1f} GB for {n_items} items (an items x items matrix): "
                    f"it is limited to {EASE_MAX_ITEMS} items")
        return None

    def _fit(self, X):
        from scipy.linalg import cho_factor
        from scipy.linalg.lapack import dpotri

        from threadpoolctl import threadpool_limits

        C = _confidence(X)
        G = (C.T @ C).toarray().astype(np.float64)
        diag = np.arange(G.shape[0])
        G[diag, diag] += self.params["regularization"] * max(float(G[diag, diag].mean()), 1e-12)
        # a few thousand items factor in well under a second on one core, where BLAS threads only contend
        with threadpool_limits(1 if G.shape[0] <= EASE_ONE_THREAD_ITEMS else None, "blas"):
            L, _ = cho_factor(G, lower=True, overwrite_a=True, check_finite=False)
            P, info = dpotri(L, lower=True, overwrite_c=True)  # the inverse from the Cholesky factor, lower half
        if info != 0:
            raise InvalidArgument("params", "EASE's regularised Gram matrix could not be inverted",
                                  "Pass a larger regularization, e.g. params := {'regularization': 100}")
        P = np.tril(P) + np.tril(P, -1).T
        B = P / -np.diag(P)
        B[diag, diag] = 0.0
        self.weights = B.astype(np.float32)

    def _scores(self, users, profile):
        return np.asarray(profile @ self.weights, dtype=np.float32)

    def to_arrays(self):
        return {**super().to_arrays(), "weights": self.weights}

    def _load(self, arrays):
        self.weights = np.asarray(arrays["weights"], dtype=np.float32)


def available_methods() -> list[str]:
    """Methods 'auto' and evaluate_recommender compare by default: the fast ones (two_tower only on request)."""
    return [m for m in METHODS if m not in ON_REQUEST and (m != "als" or _implicit_available())]


def make_recommender(method: str, params: dict | None = None) -> Recommender:
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), list(METHODS) + ["auto"], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InvalidArgument("method", f"unknown method {method!r}{hint}",
                              f"Use 'auto', {', '.join(repr(m) for m in METHODS)}")
    return METHODS[method](**(params or {}))


def similar_items(rec: Recommender, history: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the k most similar other items (codes, -1 where fewer) and cosine similarities: of ALS item
    factors for an ALS model, of log-weighted co-occurrence otherwise."""
    n = history.shape[1]
    k = min(int(k), max(n - 1, 1))
    if getattr(rec, "item_factors", None) is not None:  # factor models (als, two_tower): cosine of item vectors
        V = rec.item_factors
        norms = np.linalg.norm(V, axis=1)
        norms[norms == 0] = 1
        Vn = (V / norms[:, None]).astype(np.float32)
        out_i, out_s = [], []
        step = max(1, _SCORE_BUDGET // max(n, 1))
        for s in range(0, n, step):
            block = Vn[s:s + step] @ Vn.T
            block[np.arange(block.shape[0]), np.arange(s, s + block.shape[0])] = FILTERED
            i, v = _top_k_dense(block, k)
            i, v = _finish(i, v)
            out_i.append(i)
            out_s.append(v)
        return np.vstack(out_i), np.vstack(out_s)
    S = item_similarity(history, k, "cosine")
    items = np.full((n, k), -1, np.int64)
    scores = np.full((n, k), FILTERED)
    rows = _rows_of(S)
    slot = np.arange(S.nnz) - S.indptr[rows]  # rows of S are already in descending similarity
    items[rows, slot] = S.indices
    scores[rows, slot] = S.data
    return items, scores


# -- holdout and metrics -----------------------------------------------------------------------------------------
def holdout_split(users: np.ndarray, n_users: int, time: np.ndarray | None = None, test_fraction: float = 0.2,
                  seed: int = 0) -> np.ndarray:
    """Boolean mask over user-item pairs: True for the test set. Per user with two or more items, the items the
    user reached last (by ``time``, the first time they met the item) form the test set: round(test_fraction *
    n) of them, at least one, always leaving one for training. Without times the order is random (seeded)."""
    if not 0 < test_fraction < 1:
        raise InvalidArgument("test_fraction", f"must be between 0 and 1, got {test_fraction!r}", "Pass e.g. 0.2")
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    if time is None:
        key = np.random.default_rng(seed).random(n)
    else:
        key = np.asarray(time, dtype=np.float64)
    order = np.lexsort((np.arange(n), key, users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    su = users[order]
    pos = np.arange(n) - starts[su]
    n_test = np.where(counts >= 2, np.maximum(1, np.floor(counts * test_fraction + 0.5)), 0).astype(np.int64)
    n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
    test = np.empty(n, bool)
    test[order] = pos >= counts[su] - n_test[su]
    return test


def ranking_metrics(recommended: np.ndarray, relevant: sp.csr_matrix, k: int, n_items: int) -> dict[str, float]:
    """Mean precision@k, recall@k, NDCG@k and MAP@k over the rows with at least one relevant item, and catalogue
    coverage (distinct recommended items / n_items).

    ``recommended``: n x k item codes in rank order (-1 for an empty slot); ``relevant``: n x items, nonzero where
    the item is relevant. recall@k = hits / |relevant|; MAP@k divides by min(k, |relevant|); NDCG uses binary gains
    and log2(rank + 1) discounts.
    """
    rec = np.asarray(recommended, dtype=np.int64)[:, :k]
    rel = sp.csr_matrix(relevant)
    rel.eliminate_zeros()
    rel.sort_indices()
    n, kk = rec.shape
    n_rel = np.diff(rel.indptr)
    keys = _rows_of(rel).astype(np.int64) * n_items + rel.indices  # sorted: rows ascending, columns ascending
    q = np.arange(n, dtype=np.int64)[:, None] * n_items + np.where(rec >= 0, rec, 0)
    pos = np.searchsorted(keys, q)
    hits = (rec >= 0) & (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == q if len(keys) else False)
    hits = np.asarray(hits, dtype=np.float64).reshape(n, kk)
    valid = n_rel > 0
    out = {"precision_at_k": 0.0, "recall_at_k": 0.0, "ndcg_at_k": 0.0, "map_at_k": 0.0, "users": int(valid.sum())}
    shown = rec[rec >= 0]
    out["coverage"] = float(len(np.unique(shown)) / n_items) if n_items else 0.0
    if not valid.any():
        return out
    h, nr = hits[valid], n_rel[valid].astype(np.float64)
    n_hit = h.sum(axis=1)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * disc[:kk]).sum(axis=1)
    idcg = np.cumsum(disc)[np.minimum(nr, k).astype(np.int64) - 1]
    prec_at_j = np.cumsum(h, axis=1) / np.arange(1, kk + 1)
    ap = (prec_at_j * h).sum(axis=1) / np.minimum(nr, k)
    out.update(precision_at_k=float(np.mean(n_hit / k)), recall_at_k=float(np.mean(n_hit / nr)),
               ndcg_at_k=float(np.mean(dcg / idcg)), map_at_k=float(np.mean(ap)))
    return out


@dataclass
class Evaluation:
    method: str
    metrics: dict[str, float]
    seconds: float
    params: dict = field(default_factory=dict)


class Holdout:
    """A time-ordered per-user holdout of one set of interactions, built once and used to score many candidates:
    each is fitted on the training part and ranks, for every user with held-out items, the items that user has
    not met in training; the held-out items are the relevant ones. Inputs are one entry per user-item pair."""

    def __init__(self, users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int, k: int,
                 time: np.ndarray | None = None, test_fraction: float = 0.2, seed: int = 0):
        test = holdout_split(users, n_users, time, test_fraction, seed)
        if not test.any():
            raise InvalidArgument("relation", "no user has two or more distinct items, so nothing can be held out",
                                  "Evaluate on a relation where users interact with several items")
        self.k = k
        self.n_items = n_items
        self.train = interaction_matrix(users[~test], items[~test], weights[~test], n_users, n_items)
        test_X = interaction_matrix(users[test], items[test], None, n_users, n_items)
        self.eval_users = np.flatnonzero(np.diff(test_X.indptr) > 0)
        self.relevant = test_X[self.eval_users]
        self.history = self.train[self.eval_users]
        self.recency = None if time is None else recency_ranks(users[~test], items[~test], time[~test], n_users,
                                                               n_items)[self.eval_users]
        self.n_catalogue = max(int((np.diff(self.train.tocsc().indptr) > 0).sum()), 1)
        self.test_pairs = int(test.sum())

    def score(self, method: str, params: dict | None = None) -> Evaluation:
        t0 = _time.perf_counter()
        rec = make_recommender(method, params).fit(self.train)
        top, _ = rec.recommend(self.eval_users, self.history, min(self.k, self.n_items), exclude_seen=True,
                               recency=self.recency)
        m = ranking_metrics(top, self.relevant, self.k, self.n_catalogue)
        m["test_pairs"] = self.test_pairs
        return Evaluation(method, m, _time.perf_counter() - t0, rec.params)


def evaluate_methods(users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int,
                     methods: dict[str, dict | None], k: int, time: np.ndarray | None = None,
                     test_fraction: float = 0.2, seed: int = 0) -> list[Evaluation]:
    """Every method with the given parameters, scored on one time-ordered per-user holdout."""
    holdout = Holdout(users, items, weights, n_users, n_items, k, time, test_fraction, seed)
    return [holdout.score(name, params) for name, params in methods.items()]


def default_budget(n_pairs: int) -> float:
    """Seconds ``auto`` searches for by default: 30 s per 100k user-item pairs on a square-root scale, 10-120 s."""
    return float(np.clip(30.0 * np.sqrt(n_pairs / 100_000), 10.0, 120.0))


@dataclass
class Choice:
    """What the search found: the winning method and settings, its holdout NDCG@k and every candidate tried."""

    method: str
    params: dict
    score: float
    candidates: list[Evaluation]
    notes: list[str]

    def refit(self, X: sp.csr_matrix) -> Recommender:
        """The winner fitted on all the interactions."""
        return make_recommender(self.method, self.params).fit(X)


def _coordinate_search(cls: type[Recommender], start: dict, fixed: set):
    """Generator of candidate settings (send back each one's score): the start, then one hyperparameter at a time
    over ``cls.search_space``, keeping the best value before moving to the next."""
    best = dict(start)
    best_score = yield best
    for name, values, *condition in cls.search_space:
        if name in fixed or (condition and any(best.get(c) != v for c, v in condition[0].items())):
            continue
        for value in values:
            if value == best[name]:
                continue
            trial = {**best, name: value}
            score = yield trial
            if score > best_score:
                best, best_score = trial, score


def tune(users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int, k: int,
         time: np.ndarray | None = None, methods: list[str] | None = None, budget: float | None = None,
         params: dict[str, dict] | None = None, test_fraction: float = 0.2, seed: int = 0) -> Choice:
    """``auto``: tune each method's hyperparameters on a time-ordered per-user holdout and pick the best NDCG@k.

    Every method's defaults (overridden by ``params[method]``, which the search then leaves alone) are scored
    first; then the method with the best score so far tries the next candidate of its coordinate search, until
    its search ends or the ``budget`` (seconds; ``default_budget`` when None) would be exceeded (a candidate is
    started only when the method's last fit suggests it ends within the budget); then the next best method. Popularity is always a candidate. Ties keep the earlier
    (simpler) candidate."""
    budget = default_budget(len(users)) if budget is None else float(budget)
    if not budget > 0:
        raise InvalidArgument("budget", f"must be a positive number of seconds, got {budget!r}", "Pass e.g. '30s'")
    names = ["popular"] + [m for m in (methods or available_methods()) if m != "popular"]
    params = params or {}
    notes: list[str] = []
    holdout = Holdout(users, items, weights, n_users, n_items, k, time, test_fraction, seed)
    searches = {}
    for m in names:
        why = METHODS[m].refuses(*holdout.train.shape)
        if why:
            notes.append(f"{m} was not tried: it {why}")
            continue
        start = METHODS[m].validate(params.get(m))
        searches[m] = _coordinate_search(METHODS[m], start, set(params.get(m) or {}))
    started = _time.perf_counter()
    candidates: list[Evaluation] = []
    pending = {m: next(gen) for m, gen in searches.items()}
    last_seconds: dict[str, float] = {}
    best_of: dict[str, float] = {}
    while pending:
        # every method's defaults first (in order), then the method with the best score so far takes the next turn
        m = next((m for m in pending if m not in best_of), None) or max(pending, key=lambda m: best_of[m])
        if m in last_seconds and _time.perf_counter() - started + last_seconds[m] > budget:
            del pending[m]
            continue
        ev = holdout.score(m, pending[m])
        candidates.append(ev)
        last_seconds[m] = ev.seconds
        best_of[m] = max(best_of.get(m, -np.inf), ev.metrics["ndcg_at_k"])
        try:
            pending[m] = searches[m].send(ev.metrics["ndcg_at_k"])
        except StopIteration:
            del pending[m]
    spent = _time.perf_counter() - started
    best = max(candidates, key=lambda e: e.metrics["ndcg_at_k"])  # max keeps the first of equal scores
    notes.append(f"auto tried {len(candidates)} candidates in {spent:.1f} s (budget {budget:.0f} s) and chose "
                 f"{best.method} {describe(best.params)} by NDCG@{k} {best.metrics['ndcg_at_k']:.4f} on a "
                 "time-ordered per-user holdout")
    return Choice(best.method, best.params, best.metrics["ndcg_at_k"], candidates, notes)


def describe(params: dict) -> str:
    shown = {k: v for k, v in params.items() if k not in ("random_state", "threads")}
    return "(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")" if shown else "(no settings)"


# -- synthetic data ----------------------------------------------------------------------------------------------
def synthetic_interactions(n_users: int = 2000, n_items: int = 500, n_interactions: int = 40_000,
                           n_clusters: int = 20, affinity: float = 0.85, seed: int = 0) -> dict[str, np.ndarray]:
    """Interactions with structure: items fall into clusters (tastes); each user has one favourite cluster and
    picks from it with probability ``affinity`` (Zipf-like within the cluster), otherwise from the whole catalogue
    by global popularity. Returns arrays user, item, time (seconds, increasing per user), event ('view', 'cart',
    'purchase') and qty. Item-kNN and ALS beat popularity on it, as they should on real baskets."""
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, n_clusters, n_items)
    user_cluster = rng.integers(0, n_clusters, n_users)
    # users' activity is skewed; every user gets at least one interaction when possible
    activity = rng.pareto(1.5, n_users) + 1
    user = rng.choice(n_users, n_interactions, p=activity / activity.sum())
    if n_interactions >= n_users:
        user[:n_users] = np.arange(n_users)
    global_pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    global_pop = global_pop[rng.permutation(n_items)]
    global_pop /= global_pop.sum()
    item = np.empty(n_interactions, np.int64)
    in_cluster = rng.random(n_interactions) < affinity
    # within-cluster choice: each cluster's items in a fixed random order with Zipf weights
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    for c in range(n_clusters):  # loop over clusters (a handful), vectorised within
        sel = np.flatnonzero(in_cluster & (user_cluster[user] == c))
        if len(members[c]) == 0:
            in_cluster[sel] = False
            continue
        w = 1.0 / np.arange(1, len(members[c]) + 1) ** 0.7
        item[sel] = rng.choice(members[c], len(sel), p=w / w.sum())
    out_sel = np.flatnonzero(~in_cluster)
    item[out_sel] = rng.choice(n_items, len(out_sel), p=global_pop)
    time = np.sort(rng.random(n_interactions)) * 90 * 86400
    time = time[rng.permutation(n_interactions)]
    event = rng.choice(np.array(["view", "cart", "purchase"]), n_interactions, p=[0.7, 0.2, 0.1])
    qty = np.where(event == "purchase", rng.integers(1, 4, n_interactions), 1)
    return {"user": user, "item": item, "time": time, "event": event, "qty": qty}


from . import recommend_nn  # noqa: E402,F401  (registers two_tower after the classic methods)
