"""Fitting and evaluating recommenders: the trained model as stored arrays, method parameters, auto's search
over methods and settings on a per-user holdout, and the segments cold-start users fall back on."""
from __future__ import annotations

import json
import logging
import re
import time as _time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..binding.catalog import Relation
from ..errors import InvalidArgument
from ..tasks import roles
from ..tasks import recommend as rk
from .recommend_data import Interactions

log = logging.getLogger("warehouse_ml")


# -- the trained recommender as stored arrays --------------------------------------------------------------------
def _strings_to_arrays(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    a = arr.cast(pa.large_string())
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset:a.offset + len(a) + 1].copy()
    data_buf = a.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8).copy() if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def _strings_from_arrays(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    offsets = np.asarray(offsets, dtype=np.int64)
    data = np.asarray(data, dtype=np.uint8)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.tobytes()),
                                            pa.py_buffer(data.tobytes())).cast(pa.string())


@dataclass
class RecModel:
    """A fitted recommender with what lookups need: ids, the training history and segment popularity."""

    rec: rk.Recommender
    user_ids: pa.Array
    item_ids: pa.Array
    history: sp.csr_matrix
    meta: dict
    segment_ids: pa.Array | None = None
    user_segment: np.ndarray | None = None  # per history user, code into segment_ids or -1
    segment_popularity: sp.csr_matrix | None = None  # segments x items, distinct users
    recency: sp.csr_matrix | None = None  # users x items, 1 = the user's latest item (None without times)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"rec_{k}": v for k, v in self.rec.to_arrays().items()}
        for name, arr in (("user_ids", self.user_ids), ("item_ids", self.item_ids), ("segment_ids", self.segment_ids)):
            if arr is not None:
                out[f"{name}_offsets"], out[f"{name}_data"] = _strings_to_arrays(arr)
        h = self.history
        out.update(hist_indptr=h.indptr, hist_indices=h.indices, hist_data=h.data)
        if self.recency is not None:
            r = self.recency
            out.update(recency_indptr=r.indptr, recency_indices=r.indices, recency_data=r.data)
        if self.segment_popularity is not None:
            s = self.segment_popularity
            out.update(user_segment=self.user_segment, seg_indptr=s.indptr, seg_indices=s.indices, seg_data=s.data)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict) -> "RecModel":
        method = meta["method"]
        rec = rk.METHODS[method].from_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("rec_")},
                                             meta.get("params") or {})
        users = _strings_from_arrays(arrays["user_ids_offsets"], arrays["user_ids_data"])
        items = _strings_from_arrays(arrays["item_ids_offsets"], arrays["item_ids_data"])
        hist = sp.csr_matrix((arrays["hist_data"], arrays["hist_indices"], arrays["hist_indptr"]),
                             shape=(len(users), len(items)))
        m = cls(rec, users, items, hist, meta)
        if "recency_indptr" in arrays:
            m.recency = sp.csr_matrix((arrays["recency_data"], arrays["recency_indices"], arrays["recency_indptr"]),
                                      shape=hist.shape)
        if "seg_indptr" in arrays:
            m.segment_ids = _strings_from_arrays(arrays["segment_ids_offsets"], arrays["segment_ids_data"])
            m.user_segment = np.asarray(arrays["user_segment"], dtype=np.int64)
            m.segment_popularity = sp.csr_matrix((arrays["seg_data"], arrays["seg_indices"], arrays["seg_indptr"]),
                                                 shape=(len(m.segment_ids), len(items)))
        return m


def _segments_of(ctx, rel: Relation, user_col: str, seg_col: str, time_col: str | None) -> pa.Table:
    """One row per user: its segment (the latest by time, else the most frequent)."""
    agg = (f"arg_max(CAST({rel.q(seg_col)} AS VARCHAR), {rel.q(time_col)})" if time_col
           else f"mode(CAST({rel.q(seg_col)} AS VARCHAR))")
    return ctx.read_arrow(f"SELECT CAST({rel.q(user_col)} AS VARCHAR) AS u, {agg} AS s FROM {rel.sql} "
                          f"WHERE {rel.q(user_col)} IS NOT NULL AND {rel.q(seg_col)} IS NOT NULL GROUP BY 1")


def _attach_segments(model: RecModel, inter: Interactions, seg_table: pa.Table) -> None:
    seg = seg_table.column("s").combine_chunks().dictionary_encode()
    codes_for_table = seg.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pos = pc.index_in(inter.user_ids, value_set=seg_table.column("u").combine_chunks())
    pos = pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    user_segment = np.where(pos >= 0, codes_for_table[np.maximum(pos, 0)], -1)
    pair_seg = user_segment[inter.users]
    ok = pair_seg >= 0
    counts = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (pair_seg[ok], inter.items[ok])),
                           shape=(len(seg.dictionary), inter.n_items))
    counts.sum_duplicates()
    model.segment_ids, model.user_segment, model.segment_popularity = seg.dictionary, user_segment, counts


def _method_params(opts: dict, method: str, strict: bool) -> dict:
    """Hyperparameters for one method: params := {'als': {...}, 'item_knn': {...}} per method, or flat
    params := {'factors': 32}. Flat parameters go to the method that has them when several are tried (auto,
    evaluate); a name no method has is an error either way."""
    params = opts.get("params") or {}
    if isinstance(params.get(method), dict):
        return dict(params[method])
    flat = {k: v for k, v in params.items() if k not in rk.METHODS}
    known = set().union(*(cls.defaults for cls in rk.METHODS.values()))
    for name in flat:
        if name not in known:
            rk.METHODS["als" if method == "popular" else method].validate({name: flat[name]})  # did-you-mean error
    if strict:
        return flat
    return {k: v for k, v in flat.items() if k in rk.METHODS[method].defaults}


def _resolve_method(opts: dict) -> str:
    method = str(opts.get("method") or "auto").lower()
    if method != "auto":
        rk.make_recommender(method, {})  # validates the name (and says where two_tower comes from)
    return method


def _candidates(opts: dict) -> dict[str, dict]:
    """Methods an evaluation compares: popularity always, then the requested ones or every available one."""
    wanted = opts.get("methods")
    if wanted is None:
        names = rk.available_methods()
    else:
        names = ["popular"] + [m.lower() for m in wanted if m.lower() != "popular"]
        for m in names:
            rk.make_recommender(m, {})
    out = {}
    for m in names:
        p = _method_params(opts, m, strict=False)
        rk.METHODS[m].validate(p)
        out[m] = p
    return out


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?)?\s*$", re.I)


def _budget(opts: dict) -> float | None:
    """budget := '30s' / '2min' / 45 (seconds); None: the default that grows with the data."""
    b = opts.get("budget")
    if b is None:
        return None
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        seconds = float(b)
    else:
        m = _DURATION_RE.match(str(b))
        if not m:
            raise InvalidArgument("budget", f"expected a duration such as '30s' or '2min', got {b!r}",
                                  "Pass e.g. budget := '30s'")
        seconds = float(m.group(1)) * (60.0 if (m.group(2) or "s").lower().startswith("m") else 1.0)
    if not 0 < seconds <= 86_400:
        raise InvalidArgument("budget", f"must be between 0 and 24 hours, got {b!r}", "Pass e.g. budget := '30s'")
    return seconds


def _search(inter: Interactions, opts: dict, k: int) -> rk.Choice:
    """auto's search over the requested (or every fast) method on a time-ordered per-user holdout."""
    methods = _candidates(opts)
    k = rk.check_k(k, inter.n_items, f"relation '{inter.relation}'")
    return rk.tune(inter.users, inter.items, inter.weights, inter.n_users, inter.n_items, k, time=inter.time,
                   methods=list(methods), budget=_budget(opts), params={m: p for m, p in methods.items() if p},
                   test_fraction=opts.get("test_fraction", 0.2), seed=int(opts.get("seed", 0)))


def _candidate_note(ev: rk.Evaluation, k: int) -> str:
    return (f"{ev.method} {rk.describe(ev.params)}: NDCG@{k} {ev.metrics['ndcg_at_k']:.4f}, "
            f"recall@{k} {ev.metrics['recall_at_k']:.4f}, {ev.seconds:.2f} s")


def evaluate(inter: Interactions, opts: dict, k: int) -> list[dict]:
    """One row per method: its best settings found by auto's search (the search's holdout scores them, so a tuned
    method's figures are its validation scores), with every candidate it tried in the notes."""
    choice = _search(inter, opts, k)
    best_per_method: dict[str, rk.Evaluation] = {}
    for ev in choice.candidates:  # the first of equal scores stays
        if ev.method not in best_per_method or ev.metrics["ndcg_at_k"] > best_per_method[ev.method].metrics["ndcg_at_k"]:
            best_per_method[ev.method] = ev
    base = best_per_method["popular"].metrics["ndcg_at_k"]
    rows = []
    for method, best in best_per_method.items():
        tried = [c for c in choice.candidates if c.method == method]
        m = best.metrics
        rows.append({"method": method, **{name: m[name] for name in ("precision_at_k", "recall_at_k", "ndcg_at_k",
                                                                     "map_at_k", "coverage")},
                     "ndcg_vs_popular": m["ndcg_at_k"] / base if base > 0 else None,
                     "best": method == choice.method, "users": m["users"], "seconds": sum(c.seconds for c in tried),
                     "notes": inter.notes + choice.notes + [_candidate_note(c, k) for c in tried],
                     "params": json.dumps({p: v for p, v in best.params.items() if p not in ("threads",)}),
                     "candidates": len(tried), "test_pairs": m["test_pairs"]})
    return rows


def fit_model(ctx, inter: Interactions, opts: dict, k: int = 10, always_evaluate: bool = False
              ) -> tuple[RecModel, list[dict], list[str]]:
    """Fit the requested method on all the interactions. 'auto' first tunes every method on a per-user holdout
    (``rk.tune``) and refits the best settings; ``always_evaluate`` measures an explicit method against
    popularity on that holdout (with the given settings, no search)."""
    requested = _resolve_method(opts)
    method = requested
    notes = list(inter.notes)
    rows: list[dict] = []
    params = _method_params(opts, method, strict=requested != "auto") if requested != "auto" else {}
    if requested == "auto" or always_evaluate:
        kk = min(k, inter.n_items)
        try:
            if requested == "auto":
                choice = _search(inter, opts, kk)
                method, params, tried = choice.method, choice.params, choice.candidates
                notes.extend(choice.notes)
            else:
                tried = rk.evaluate_methods(inter.users, inter.items, inter.weights, inter.n_users, inter.n_items,
                                            {"popular": {}, requested: params}, kk, time=inter.time,
                                            test_fraction=opts.get("test_fraction", 0.2), seed=int(opts.get("seed", 0)))
            notes.extend(_candidate_note(c, kk) for c in tried)
            rows = [{"method": c.method, **c.metrics} for c in tried]
        except InvalidArgument as e:
            if e.argument != "relation":
                raise
            notes.append("no user has two or more items, so nothing could be held out"
                         + (": popularity was used" if requested == "auto" else ""))
            if requested == "auto":
                method, params = "popular", {}
    candidates = [{"algorithm": r["method"], "cv_score": r["ndcg_at_k"], "metric": f"ndcg_at_{k}"} for r in rows]
    t0 = _time.perf_counter()
    rec = rk.make_recommender(method, params).fit(inter.matrix())
    log.info("%s: fitted %s on %d users x %d items (%d pairs) in %.2f s", inter.relation, method, inter.n_users,
             inter.n_items, len(inter.users), _time.perf_counter() - t0)
    notes.extend(getattr(rec, "notes", []))  # e.g. two_tower: epochs, device, seconds, loss
    meta = {"method": method, "params": rec.params, "relation": inter.relation, "roles": inter.roles.as_dict(),
            "key_types": inter.key_types,
            "event_weights": inter.event_weights, "stats": inter.stats, "notes": notes, "candidates": candidates}
    model = RecModel(rec, inter.user_ids, inter.item_ids, inter.matrix(), meta, recency=inter.recency())
    seg = opts.get("segment")
    if seg is not None:
        if opts.get("for_users"):
            fu = ctx.relation(opts["for_users"], "for_users")
            seg_col, ucol = fu.column(seg, "segment"), _for_users_column(fu, inter.roles.user)
            table = _segments_of(ctx, fu, ucol, seg_col, None)
        else:
            rel = ctx.relation(inter.relation, "relation")
            table = _segments_of(ctx, rel, inter.roles.user, rel.column(seg, "segment"), inter.roles.time)
        if table.num_rows:
            _attach_segments(model, inter, table)
        model.meta["roles"]["segment"] = seg
    return model, rows, notes


def _for_users_column(fu: Relation, user_col: str) -> str:
    lower = {c.lower(): c for c in fu.columns}
    if user_col.lower() in lower:
        return lower[user_col.lower()]
    cands = [c for c in fu.columns if roles.USER.match(c)]
    if len(cands) == 1:
        return cands[0]
    raise InvalidArgument("for_users", f"relation '{fu.name}' has no column '{user_col}' (the user column of the "
                          "interactions)" + (f" and several user-like columns ({', '.join(cands)})" if cands else ""),
                          f"Pass a view that names its user column '{user_col}'")
