"""The base of every recommender: parameter checks, top-k helpers, the ``Recommender`` class and the registry.

A recommender is one class: it subclasses ``Recommender``, declares ``method``, ``defaults`` and ``search_space``
(the values ``auto`` tries), implements ``_fit`` and ``_scores`` (or ``_recommend_warm``), and is registered with
``@register``. ``tasks.recommend`` holds the classic methods and the evaluation; ``tasks.recommend_nn`` the
two-tower model; both import only this module, so neither imports the other.
"""
from __future__ import annotations

import difflib

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidArgument

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
    """Base class: ``fit(X)`` on a users x items CSR, then ``recommend(users, history, k)``.

    ``search_space`` lists, per hyperparameter in the order ``auto`` tunes them, the values it tries (one
    parameter at a time, keeping the best so far: a coordinate search)."""

    method = "base"
    defaults: dict = {}
    search_space: tuple[tuple[str, tuple], ...] = ()

    def __init__(self, **params):
        self.params = self.validate(params)
        self.popularity: np.ndarray | None = None
        self.n_items = 0
        self.notes: list[str] = []

    @classmethod
    def validate(cls, params: dict | None) -> dict:
        return _check_params(cls.method, params, cls.defaults)

    @classmethod
    def refuses(cls, n_users: int, n_items: int) -> str | None:
        """Why this method cannot be fitted on a matrix of this shape (None when it can)."""
        return None

    def fit(self, X: sp.csr_matrix) -> "Recommender":
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.nnz == 0:
            raise InvalidArgument("relation", "there are no interactions to learn from",
                                  "Pass a relation with at least one row whose user and item are both set")
        why = self.refuses(*X.shape)
        if why:
            raise InvalidArgument("method", f"'{self.method}' {why}", "Use method := 'item_knn' or 'als'")
        self.n_items = X.shape[1]
        self.popularity = item_popularity(X)
        self._fit(X)
        return self

    def _fit(self, X: sp.csr_matrix) -> None:
        pass

    def _scores(self, users: np.ndarray, profile: sp.csr_matrix) -> np.ndarray:
        """Dense float32 scores (len(users) x n_items); ``profile`` rows (see ``profile``) belong to ``users``."""
        raise NotImplementedError

    def profile(self, history: sp.csr_matrix, recency: sp.csr_matrix | None) -> sp.csr_matrix:
        """What item-item methods score from: log(1 + weight) of each user's history, and with a ``recency``
        half-life h (a hyperparameter) and ``recency`` ranks given, each item's weight halves for every h items
        the user met after it: the latest items say most about the next ones."""
        C = _confidence(history)
        half_life = self.params.get("recency", 0)
        if half_life and recency is not None:
            decay = sp.csr_matrix(recency, dtype=np.float32, copy=True)
            decay.data = np.power(np.float32(0.5), (decay.data - 1) / np.float32(half_life))
            C = sp.csr_matrix(C.multiply(decay), dtype=np.float32)
        return C

    def _batch(self) -> int:
        return max(1, _SCORE_BUDGET // max(self.n_items, 1))

    def recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool = True,
                  allowed: np.ndarray | None = None, recency: sp.csr_matrix | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item codes (len(users) x k, -1 where fewer than k can be recommended) and their scores.

        ``users`` are row codes of the fitted model (used by factor models); ``history`` holds one row per user
        (what to exclude and what item-kNN scores from). A user whose history row is empty gets popular items.
        ``allowed`` (a boolean mask over items) keeps only those items: the filter applies before ranking, so
        every user still gets k items while k allowed unseen items exist. ``recency`` (the pattern of
        ``history``, values from ``recency_ranks``) lets methods with a ``recency`` half-life favour recent items.
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
            ci, cs = popular_top_k(self.popularity, k, allowed)
            out_items[cold], out_scores[cold] = ci, cs
        warm_idx = np.flatnonzero(warm)
        if len(warm_idx):
            hist = history[warm_idx]
            profile = self.profile(hist, None if recency is None else sp.csr_matrix(recency)[warm_idx])
            wi, ws = self._recommend_warm(users[warm_idx], hist, profile, k, exclude_seen, allowed)
            out_items[warm_idx], out_scores[warm_idx] = wi, ws
        return out_items, out_scores

    def _recommend_warm(self, users, history, profile, k, exclude_seen, allowed):
        items_out, scores_out = [], []
        step = self._batch()
        for s in range(0, len(users), step):
            hist = history[s:s + step]
            scores = self._scores(users[s:s + step], profile[s:s + step])
            mask_scores(scores, hist if exclude_seen else None, allowed)
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


def recency_ranks(users: np.ndarray, items: np.ndarray, time: np.ndarray, n_users: int, n_items: int
                  ) -> sp.csr_matrix:
    """users x items CSR over the given pairs: 1 for the item the user met last (by ``time``), 2 for the one
    before, and so on (ties: lower item code first)."""
    users = np.asarray(users, dtype=np.int64)
    order = np.lexsort((items, -np.asarray(time, dtype=np.float64), users))
    starts = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))[:-1]])
    rank = np.empty(len(users), np.float32)
    rank[order] = np.arange(len(users)) - starts[users[order]] + 1
    return sp.csr_matrix((rank, (users, items)), shape=(n_users, n_items), dtype=np.float32)


def mask_scores(scores: np.ndarray, seen: sp.csr_matrix | None, allowed: np.ndarray | None) -> None:
    """Seen items and items outside ``allowed`` get the filter score (in place)."""
    if seen is not None:
        _mask_seen(scores, seen)
    if allowed is not None:
        scores[:, ~allowed] = FILTERED


def popular_top_k(popularity: np.ndarray, k: int, allowed: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The k most popular item codes (ties: lower code first; only ``allowed`` ones, -1 past them) and their
    popularity, as 1 x k arrays."""
    order = np.argsort(-popularity, kind="stable")
    if allowed is not None:
        order = order[allowed[order]]
    items = np.full(k, -1, np.int64)
    scores = np.full(k, FILTERED)
    items[:min(k, len(order))] = order[:k]
    scores[:min(k, len(order))] = np.floor(popularity[order[:k]])
    return items[None, :], scores[None, :]


# -- the registry: method name -> class ----------------------------------------------------------------------------
METHODS: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: makes ``cls.method`` a value of ``method :=``."""
    METHODS[cls.method] = cls
    return cls


def fill_popular(items: np.ndarray, scores: np.ndarray, filled: np.ndarray, exclude: sp.csr_matrix,
                 popularity: np.ndarray, score_value: float | None = None, allowed: np.ndarray | None = None) -> None:
    """Fill slots ``filled[r]:k`` of each row with the most popular items not in ``exclude[r]`` (in place).

    Only ``allowed`` items are used when that mask is given. Scores are the popularity (user counts) unless
    ``score_value`` is given. Rows are processed in order of how
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
    if allowed is not None:
        order = order[allowed[order]]
    rank_of = np.full(len(popularity), len(popularity), np.int64)  # items outside ``allowed`` rank past any width
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

