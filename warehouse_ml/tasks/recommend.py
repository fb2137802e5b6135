"""Recommendation kernels: popularity, item-kNN and ALS recommenders, a time-ordered holdout, ranking metrics.

Pure NumPy/SciPy (no DuckDB): interactions come in as a users x items CSR matrix of positive weights (one entry
per user-item pair, repeated events already summed), and results come out as arrays of item codes. The SQL layer
(``warehouse_ml.functions.recommend``) maps ids to codes and back.

* ``PopularRecommender``: items ranked by how many distinct users interacted with them (the baseline).
* ``ItemKNNRecommender``: item-item similarity (cosine or BM25-weighted) on the sparse matrix, the ``neighbors``
  most similar items kept per item; a user's score for an item is the similarity-weighted sum over their history.
* ``ALSRecommender``: implicit-feedback matrix factorisation, fitted by the ``implicit`` library (CPU).

Every recommender ranks items the user has not seen (``exclude_seen``), never returns an item outside the
catalogue it was fitted on, and falls back to popularity where its own scores carry no evidence (a user with no
history, or an item-kNN score of zero). Estimators serialise to plain arrays (``to_arrays``/``from_arrays``) so the
model store keeps them in the ``npz`` format, whose loading runs no code.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidArgument, MissingDependency
from ..progress import steps

FILTERED = -np.inf  # score of a slot with no item (fewer candidates than k)
_SCORE_BUDGET = 16_000_000  # dense scores held at once (floats): batch size = budget // n_items


# -- parameters --------------------------------------------------------------------------------------------------
def _check_params(method: str, given: dict | None, defaults: dict) -> dict:
    """Defaults overridden by ``given``; unknown names and wrong types are InvalidArgument('params')."""
    out = dict(defaults)
    for name, value in (given or {}).items():
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidArgument("params", f"method '{method}' has no parameter '{name}'{hint}",
                                  f"Use one of: {', '.join(sorted(defaults))}")
        default = defaults[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())
            value = int(value) if ok else value
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise InvalidArgument("params", f"parameter '{name}' of method '{method}' must be a {type(default).__name__}, "
                                  f"got {value!r}", f"Pass e.g. {{'{name}': {default!r}}}")
        out[name] = value
    return out


def _positive(method: str, params: dict, *names: str) -> None:
    for n in names:
        if not params[n] > 0:
            raise InvalidArgument("params", f"parameter '{n}' of method '{method}' must be positive, got {params[n]!r}",
                                  f"Pass a value above 0, e.g. {{'{n}': 1}}")


def _non_negative(method: str, params: dict, *names: str) -> None:
    for n in names:
        if not params[n] >= 0:
            raise InvalidArgument("params", f"parameter '{n}' of method '{method}' must be 0 or more, got {params[n]!r}",
                                  f"Pass e.g. {{'{n}': 0}}")


def check_k(k, n_items: int | None = None, what: str = "the catalogue") -> int:
    """k must be a positive whole number no larger than the number of items that can be recommended."""
    if k is None or isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidArgument("k", f"must be a positive whole number of items per user, got {k!r}",
                              "Pass e.g. 10 as the second argument")
    if n_items is not None and k > n_items:
        raise InvalidArgument("k", f"asks for {k} items but {what} has only {n_items} distinct items",
                              f"Pass k of at most {n_items}")
    return int(k)


# -- helpers -----------------------------------------------------------------------------------------------------
def interaction_matrix(users: np.ndarray, items: np.ndarray, weights: np.ndarray | None, n_users: int,
                       n_items: int) -> sp.csr_matrix:
    """users x items CSR of summed weights (float32); duplicate pairs are summed, zero and negative dropped."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    w = np.ones(len(users), np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    keep = w > 0
    m = sp.csr_matrix((w[keep], (users[keep], items[keep])), shape=(n_users, n_items), dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return m


def item_popularity(X: sp.csr_matrix) -> np.ndarray:
    """Distinct users per item (float64); ties broken by total weight, so it is a strict order where data allows."""
    users_per_item = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    weight_per_item = np.bincount(X.indices, weights=X.data, minlength=X.shape[1])
    if weight_per_item.max(initial=0) > 0:
        users_per_item += 0.5 * weight_per_item / (weight_per_item.max() * (1 + 1e-9))
    return users_per_item


def _rows_of(X: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def _confidence(X: sp.csr_matrix) -> sp.csr_matrix:
    """log(1 + weight): repeated events and large quantities count, with diminishing returns."""
    C = X.astype(np.float32, copy=True)
    C.data = np.log1p(C.data)
    return C


def bm25_weight(item_users: sp.csr_matrix, K1: float = 1.2, B: float = 0.75) -> sp.csr_matrix:
    """BM25 weighting of an items x users matrix: users with long histories count less (idf), and each item row's
    weights are saturated by K1 and length-normalised by B."""
    M = item_users.astype(np.float32, copy=True)
    n_items = M.shape[0]
    idf = np.log(max(n_items, 1)) - np.log1p(np.bincount(M.indices, minlength=M.shape[1]))
    idf = np.maximum(idf, 0.0).astype(np.float32)
    row_sums = np.asarray(M.sum(axis=1)).ravel()
    avg = row_sums.mean() if len(row_sums) and row_sums.mean() > 0 else 1.0
    length_norm = ((1.0 - B) + B * row_sums / avg).astype(np.float32)
    rows = _rows_of(M)
    M.data = M.data * (K1 + 1.0) / (K1 * length_norm[rows] + M.data) * idf[M.indices]
    M.eliminate_zeros()
    return M


def _top_k_dense(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest scores in descending order (ties: lower column first)."""
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        part = np.argpartition(scores, n - k, axis=1)[:, n - k:]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = _desc_order(vals, part)
    return np.take_along_axis(part, order, 1), np.take_along_axis(vals, order, 1)


def _desc_order(vals: np.ndarray, cols: np.ndarray) -> np.ndarray:
    # sort by column first (stable), then by score descending (stable): ties keep the lower column first
    by_col = np.argsort(cols, axis=1, kind="stable")
    v = np.take_along_axis(vals, by_col, 1)
    by_score = np.argsort(-v, axis=1, kind="stable")
    return np.take_along_axis(by_col, by_score, 1)


def _mask_seen(scores: np.ndarray, seen_rows: sp.csr_matrix) -> None:
    if seen_rows.nnz:
        scores[_rows_of(seen_rows), seen_rows.indices] = FILTERED


def _finish(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots whose score is the filter value hold no item: code -1."""
    empty = ~np.isfinite(scores) | (scores <= -1e38)
    items = items.astype(np.int64)
    items[empty] = -1
    scores = scores.astype(np.float64)
    scores[empty] = FILTERED
    return items, scores


# -- recommenders ------------------------------------------------------------------------------------------------
class Recommender:
    """Base class: ``fit(X)`` on a users x items CSR, then ``recommend(users, history, k)``."""

    method = "base"
    defaults: dict = {}

    def __init__(self, **params):
        self.params = self.validate(params)
        self.popularity: np.ndarray | None = None
        self.n_items = 0

    @classmethod
    def validate(cls, params: dict | None) -> dict:
        return _check_params(cls.method, params, cls.defaults)

    def fit(self, X: sp.csr_matrix) -> "Recommender":
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.nnz == 0:
            raise InvalidArgument("relation", "there are no interactions to learn from",
                                  "Pass a relation with at least one row whose user and item are both set")
        self.n_items = X.shape[1]
        self.popularity = item_popularity(X)
        self._fit(X)
        return self

    def _fit(self, X: sp.csr_matrix) -> None:
        pass

    def _scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Dense float32 scores (len(users) x n_items); ``history`` rows belong to ``users``."""
        raise NotImplementedError

    def _batch(self) -> int:
        return max(1, _SCORE_BUDGET // max(self.n_items, 1))

    def recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item codes (len(users) x k, -1 where fewer than k can be recommended) and their scores.

        ``users`` are row codes of the fitted model (used by factor models); ``history`` holds one row per user
        (what to exclude and what item-kNN scores from). A user whose history row is empty gets popular items.
        """
        users = np.asarray(users, dtype=np.int64)
        history = sp.csr_matrix(history, dtype=np.float32)
        k = min(int(k), self.n_items)
        out_items = np.full((len(users), k), -1, np.int64)
        out_scores = np.full((len(users), k), FILTERED)
        if not len(users):
            return out_items, out_scores
        warm = np.diff(history.indptr) > 0
        cold = np.flatnonzero(~warm)
        if len(cold):
            ci, cs = popular_top_k(self.popularity, k)
            out_items[cold], out_scores[cold] = ci, cs
        warm_idx = np.flatnonzero(warm)
        if len(warm_idx):
            wi, ws = self._recommend_warm(users[warm_idx], history[warm_idx], k, exclude_seen)
            out_items[warm_idx], out_scores[warm_idx] = wi, ws
        return out_items, out_scores

    def _recommend_warm(self, users, history, k, exclude_seen):
        items_out, scores_out = [], []
        step = self._batch()
        for s in range(0, len(users), step):
            hist = history[s:s + step]
            scores = self._scores(users[s:s + step], hist)
            if exclude_seen:
                _mask_seen(scores, hist)
            idx, vals = _top_k_dense(scores, k)
            i, v = _finish(idx, vals)
            items_out.append(i)
            scores_out.append(v)
        return np.vstack(items_out), np.vstack(scores_out)

    # -- serialisation --
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], params: dict) -> "Recommender":
        obj = cls(**params)
        obj.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        obj.n_items = len(obj.popularity)
        obj._load(arrays)
        return obj

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        pass


def popular_top_k(popularity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most popular item codes (ties: lower code first) and their popularity, as 1 x k arrays."""
    order = np.argsort(-popularity, kind="stable")[:k]
    return order[None, :].astype(np.int64), np.floor(popularity[order])[None, :].astype(np.float64)


class PopularRecommender(Recommender):
    """Items by the number of distinct users who interacted with them; the baseline every method is measured
    against. Scores are those user counts."""

    method = "popular"
    defaults: dict = {}

    def _recommend_warm(self, users, history, k, exclude_seen):
        n = len(users)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), FILTERED)
        exclude = history if exclude_seen else sp.csr_matrix(history.shape, dtype=np.float32)
        fill_popular(items, scores, np.zeros(n, np.int64), exclude, self.popularity)
        return items, scores


def fill_popular(items: np.ndarray, scores: np.ndarray, filled: np.ndarray, exclude: sp.csr_matrix,
                 popularity: np.ndarray, score_value: float | None = None) -> None:
    """Fill slots ``filled[r]:k`` of each row with the most popular items not in ``exclude[r]`` (in place).

    Scores are the popularity (user counts) unless ``score_value`` is given. Rows are processed in order of how
    much they exclude, so each batch only looks at the k + (longest exclusion in the batch) most popular items.
    """
    n, k = items.shape
    need = k - filled
    rows_needing = np.flatnonzero(need > 0)
    if not len(rows_needing):
        return
    exclude = sp.csr_matrix(exclude)
    lengths = np.diff(exclude.indptr)[rows_needing]
    rows_needing = rows_needing[np.argsort(lengths, kind="stable")]
    order = np.argsort(-popularity, kind="stable")
    rank_of = np.empty(len(order), np.int64)
    rank_of[order] = np.arange(len(order))
    pop_scores = np.floor(popularity) if score_value is None else np.full(len(popularity), float(score_value))
    lengths = np.diff(exclude.indptr)[rows_needing]  # ascending
    start = 0
    while start < len(rows_needing):
        # the largest batch whose (rows) x (k + longest exclusion) fits the budget; at least one row
        cost = np.arange(1, len(rows_needing) - start + 1) * (k + lengths[start:])
        step = max(1, int(np.searchsorted(cost, _SCORE_BUDGET, side="right")))
        batch = rows_needing[start:start + step]
        width = min(len(order), k + int(lengths[start:start + step].max()))
        ex = exclude[batch]
        r_ex = _rows_of(ex)
        rk = rank_of[ex.indices]
        inside = rk < width
        seen = np.zeros((len(batch), width), bool)
        seen[r_ex[inside], rk[inside]] = True
        avail = ~seen
        rank = np.cumsum(avail, axis=1)
        take = avail & (rank <= need[batch][:, None])
        r, c = np.nonzero(take)
        rows = batch[r]
        slot = filled[rows] + rank[r, c] - 1
        items[rows, slot] = order[c]
        scores[rows, slot] = pop_scores[order[c]]
        start += len(batch)


class ItemKNNRecommender(Recommender):
    """Item-based collaborative filtering. Each item keeps its ``neighbors`` most similar items, by cosine on
    log-weighted interactions (``weighting := 'cosine'``) or by dot product of BM25-weighted item vectors
    (``'bm25'``, which discounts users who interact with everything). A user's score for an item is the sum of
    its similarities to the items in the user's history, weighted by log(1 + weight)."""

    method = "item_knn"
    defaults = {"neighbors": 100, "weighting": "cosine", "K1": 1.2, "B": 0.75}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        _positive(self.method, p, "neighbors", "K1")
        if not 0 <= p["B"] <= 1:
            raise InvalidArgument("params", f"parameter 'B' of method 'item_knn' must be between 0 and 1, got {p['B']!r}",
                                  "Pass e.g. {'B': 0.75}")
        if p["weighting"] not in ("cosine", "bm25"):
            raise InvalidArgument("params", f"parameter 'weighting' of method 'item_knn' must be 'cosine' or 'bm25', "
                                  f"got {p['weighting']!r}", "Pass {'weighting': 'cosine'} or {'weighting': 'bm25'}")
        self.similarity: sp.csr_matrix | None = None

    def _fit(self, X):
        self.similarity = item_similarity(X, self.params["neighbors"], self.params["weighting"], self.params["K1"],
                                          self.params["B"])

    def _scores(self, users, history):
        return np.asarray((_confidence(history) @ self.similarity).toarray(), dtype=np.float32)

    def _recommend_warm(self, users, history, k, exclude_seen):
        # Dense rows start at a popularity-ordered value below any similarity (in [-2, -1)), the sparse scores are
        # written over them: items without evidence then rank by popularity, and argpartition sees no ties.
        base = (self.popularity / (self.popularity.max() + 1.0) - 2.0).astype(np.float32)
        items_out, scores_out = [], []
        step = self._batch()
        for s in range(0, len(users), step):
            hist = history[s:s + step]
            P = sp.csr_matrix(_confidence(hist) @ self.similarity)
            keep = P.data > 0
            dense = np.tile(base, (hist.shape[0], 1))
            dense[_rows_of(P)[keep], P.indices[keep]] = P.data[keep]
            if exclude_seen:
                _mask_seen(dense, hist)
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
    """items x items CSR keeping, per item, its ``neighbors`` most similar other items (similarity > 0)."""
    C = _confidence(sp.csr_matrix(X, dtype=np.float32))
    IU = C.T.tocsr()  # items x users
    n_items = IU.shape[0]
    if weighting == "bm25":
        IU = bm25_weight(IU, K1, B)
    else:
        norms = np.sqrt(np.asarray(IU.multiply(IU).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        IU = sp.csr_matrix(sp.diags(1.0 / norms.astype(np.float32)) @ IU, dtype=np.float32)
    UI = IU.T.tocsr()  # users x items, weighted
    K = min(int(neighbors), max(n_items - 1, 1))
    chunk = max(1, min(n_items, 8_000_000 // max(n_items, 1)))
    indptr = [np.zeros(1, np.int64)]
    indices, data = [], []
    total = 0
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        block = np.asarray((IU[start:stop] @ UI).toarray(), dtype=np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = 0  # an item is not its own neighbour
        idx, vals = _top_k_dense(block, K)
        keep = vals > 0
        counts = keep.sum(axis=1)
        indices.append(idx[keep].astype(np.int32))
        data.append(vals[keep].astype(np.float32))
        indptr.append(total + np.cumsum(counts))
        total += int(counts.sum())
    return sp.csr_matrix((np.concatenate(data) if data else np.zeros(0, np.float32),
                          np.concatenate(indices) if indices else np.zeros(0, np.int32),
                          np.concatenate(indptr)), shape=(n_items, n_items))


def _implicit_available() -> bool:
    try:
        import implicit.cpu.als  # noqa: F401
    except Exception:  # noqa: BLE001  (an import that fails for any reason means: not available)
        return False
    return True


class ALSRecommender(Recommender):
    """Implicit-feedback matrix factorisation (alternating least squares, Hu, Koren and Volinsky 2008), fitted by
    the ``implicit`` library on CPU. Confidence is ``alpha * log(1 + weight)``, or BM25-weighted with
    ``weighting := 'bm25'``. A user's score for an item is the dot product of their factors."""

    method = "als"
    defaults = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15, "weighting": "bm25",
                "K1": 100.0, "B": 0.8, "random_state": 0, "threads": 0}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        _positive(self.method, p, "factors", "iterations", "alpha", "K1")
        _non_negative(self.method, p, "regularization", "threads")
        if not 0 <= p["B"] <= 1:
            raise InvalidArgument("params", f"parameter 'B' of method 'als' must be between 0 and 1, got {p['B']!r}",
                                  "Pass e.g. {'B': 0.8}")
        if p["weighting"] not in ("log", "bm25"):
            raise InvalidArgument("params", f"parameter 'weighting' of method 'als' must be 'log' or 'bm25', "
                                  f"got {p['weighting']!r}", "Pass {'weighting': 'bm25'} or {'weighting': 'log'}")
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def confidence(self, X: sp.csr_matrix) -> sp.csr_matrix:
        if self.params["weighting"] == "bm25":
            C = bm25_weight(_confidence(X).T.tocsr(), self.params["K1"], self.params["B"]).T.tocsr()
        else:
            C = _confidence(X)
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

    def _scores(self, users, history):
        return self.user_factors[users] @ self.item_factors.T

    def _recommend_warm(self, users, history, k, exclude_seen):
        try:
            from implicit.cpu.topk import topk
        except Exception:  # noqa: BLE001  (scoring works without the library, only slower)
            return super()._recommend_warm(users, history, k, exclude_seen)
        ids, scores = topk(self.item_factors, np.ascontiguousarray(self.user_factors[users]), k,
                           filter_query_items=history if exclude_seen else None, num_threads=self.params["threads"])
        return _finish(np.asarray(ids), np.asarray(scores))

    def to_arrays(self):
        return {**super().to_arrays(), "user_factors": self.user_factors, "item_factors": self.item_factors}

    def _load(self, arrays):
        self.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)


# method name -> class. 'two_tower' (tasks.recommend_nn) imports TensorFlow only when it is fitted.
METHODS: dict[str, type[Recommender]] = {
    "popular": PopularRecommender,
    "item_knn": ItemKNNRecommender,
    "als": ALSRecommender,
}
PLANNED: dict[str, str] = {}
ON_REQUEST = ("two_tower",)  # trained by auto / evaluate_recommender only when named (it takes far longer)


def available_methods() -> list[str]:
    """Methods 'auto' and evaluate_recommender compare by default: the fast ones (two_tower only on request)."""
    return [m for m in METHODS if m not in ON_REQUEST and (m != "als" or _implicit_available())]


def make_recommender(method: str, params: dict | None = None) -> Recommender:
    if method in PLANNED and method not in METHODS:
        raise InvalidArgument("method", f"'{method}' comes with {PLANNED[method]}, which is not installed here",
                              "Use method := 'als', 'item_knn' or 'popular'")
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), list(METHODS) + ["auto"], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InvalidArgument("method", f"unknown method {method!r}{hint}",
                              "Use 'auto', 'popular', 'item_knn', 'als' or 'two_tower'")
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


def evaluate_methods(users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int,
                     methods: dict[str, dict | None], k: int, time: np.ndarray | None = None,
                     test_fraction: float = 0.2, seed: int = 0) -> list[Evaluation]:
    """Fit every method on the training part of a per-user holdout and score its top-k against each user's
    held-out items (items the user had not met in training). Inputs are one entry per user-item pair."""
    import time as _time

    test = holdout_split(users, n_users, time, test_fraction, seed)
    if not test.any():
        raise InvalidArgument("relation", "no user has two or more distinct items, so nothing can be held out",
                              "Evaluate on a relation where users interact with several items")
    train_X = interaction_matrix(users[~test], items[~test], weights[~test], n_users, n_items)
    test_X = interaction_matrix(users[test], items[test], None, n_users, n_items)
    eval_users = np.flatnonzero(np.diff(test_X.indptr) > 0)
    relevant = test_X[eval_users]
    history = train_X[eval_users]
    n_catalogue = int((np.diff(train_X.tocsc().indptr) > 0).sum())
    results = []
    for name, params in steps(methods.items(), "evaluating recommenders", total=len(methods), unit="method"):
        t0 = _time.perf_counter()
        rec = make_recommender(name, params).fit(train_X)
        top, _ = rec.recommend(eval_users, history, min(k, n_items), exclude_seen=True)
        m = ranking_metrics(top, relevant, k, max(n_catalogue, 1))
        m["test_pairs"] = int(test.sum())
        results.append(Evaluation(name, m, _time.perf_counter() - t0))
    return results


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


from .recommend_nn import TwoTowerRecommender  # noqa: E402  (subclasses Recommender, defined above)

METHODS["two_tower"] = TwoTowerRecommender
