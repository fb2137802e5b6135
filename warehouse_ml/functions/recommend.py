"""recommend_items, similar_items, evaluate_recommender, and ml_train's 'recommend' task (SQL_SURFACE.md section 5).

The first argument of each function names either a model trained with ``ml_train(..., task := 'recommend')``
(then it is a lookup on that model, which holds the history it was trained on) or a table/view of interactions
(then a recommender is trained on the fly). Interactions are read through a second cursor as one row per
user-item pair (SQL does the grouping), mapped to codes with Arrow, and handed to the NumPy/SciPy kernels in
``warehouse_ml.tasks.recommend``. Relation and column names reach SQL only as quoted catalogue names.
"""
from __future__ import annotations

import json
import logging
import re
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..binding.catalog import Relation, is_numeric_type, is_temporal_type
from ..binding.keys import typed_calls
from ..binding.registry import JSON, scalar_udf, table_udf
from ..errors import AmbiguousColumn, InvalidArgument, TrainingFailed, UnknownRelation
from ..store import dumps_arrays, validate_model_name
from ..tasks import recommend as rk
from ..tasks import roles
from ..tasks.roles import is_date_type
from .base import trainer

log = logging.getLogger("warehouse_ml")

TASK = "recommend"
REC_ROW = 'STRUCT("user" VARCHAR, rank INTEGER, item VARCHAR, score DOUBLE)'
SIM_ROW = "STRUCT(item VARCHAR, rank INTEGER, similar_item VARCHAR, score DOUBLE)"
EVAL_ROW = ("STRUCT(method VARCHAR, precision_at_k DOUBLE, recall_at_k DOUBLE, ndcg_at_k DOUBLE, map_at_k DOUBLE, "
            "coverage DOUBLE, ndcg_vs_popular DOUBLE, best BOOLEAN, users BIGINT, seconds DOUBLE, notes VARCHAR[], "
            "params VARCHAR, candidates INTEGER)")


# Weights of common event types when an event column is present and no mapping is given (view < cart < purchase).
DEFAULT_EVENT_WEIGHTS = {
    "impression": 0.5, "view": 1.0, "page_view": 1.0, "pageview": 1.0, "detail": 1.0, "click": 1.0,
    "like": 2.0, "wishlist": 2.0, "favorite": 2.0, "favourite": 2.0, "rating": 2.0, "review": 2.0,
    "cart": 3.0, "add_to_cart": 3.0, "addtocart": 3.0, "add-to-cart": 3.0, "basket": 3.0,
    "checkout": 4.0, "purchase": 5.0, "buy": 5.0, "order": 5.0, "transaction": 5.0, "conversion": 5.0,
}
ROLE_OPTIONS = ("user", "item", "weight", "time", "event", "event_weights", "segment")
CALL_OPTIONS = ROLE_OPTIONS + ("method", "exclude_seen", "for_users", "params", "methods", "test_fraction", "seed",
                               "budget", "exclude", "candidates")


# -- options and column roles ------------------------------------------------------------------------------------
def _options(options, allowed=CALL_OPTIONS) -> dict:
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise InvalidArgument(unknown[0], "is not an option of this function", f"Use: {', '.join(allowed)}")
    return opts


@dataclass
class Roles:
    user: str
    item: str
    weight: str | None = None
    time: str | None = None
    event: str | None = None
    segment: str | None = None
    time_kind: str | None = None  # 'temporal' or 'numeric'

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("user", "item", "weight", "time", "event", "segment", "time_kind")}


def _pick(rel: Relation, given, argument: str, role: str, pattern: re.Pattern, exclude=()) -> str:
    if given is not None:
        return rel.column(given, argument)
    candidates = [c for c in rel.columns if pattern.match(c) and c not in exclude]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        candidates = [c for c in rel.columns if c not in exclude and not is_temporal_type(rel.columns[c])]
    raise AmbiguousColumn(rel.name, argument, role, candidates)


def infer_roles(rel: Relation, opts: dict, need_time: bool = False) -> Roles:
    """Which columns are the user, the item, and optionally the weight, time, event type and segment."""
    user = _pick(rel, opts.get("user"), "user", "user id", roles.USER)
    item = _pick(rel, opts.get("item"), "item", "item id", roles.ITEM, exclude=(user,))
    if user == item:
        raise InvalidArgument("item", f"is the same column as the user ('{user}')",
                              "Name two different columns with user := and item :=")
    used = {user, item}
    weight = None
    if opts.get("weight") is not None:
        weight = rel.column(opts["weight"], "weight")
        if not is_numeric_type(rel.columns[weight]):
            raise InvalidArgument("weight", f"column '{weight}' has type {rel.columns[weight]}, not a number",
                                  "Name a numeric column such as a quantity or a rating")
        used.add(weight)
    time_col, time_kind = None, None
    if opts.get("time") is not None:
        time_col = rel.column(opts["time"], "time")
        t = rel.columns[time_col]
        if is_date_type(t):
            time_kind = "temporal"
        elif is_numeric_type(t):
            time_kind = "numeric"
        else:
            raise InvalidArgument("time", f"column '{time_col}' has type {t}, which cannot order events",
                                  "Name a DATE or TIMESTAMP column (or a numeric epoch)")
    else:
        temporal = [c for c, t in rel.columns.items()
                    if c not in used and is_date_type(t)]
        if len(temporal) > 1:
            named = [c for c in temporal if roles.TIME.match(c)]
            temporal = named if len(named) == 1 else temporal
        if len(temporal) == 1:
            time_col, time_kind = temporal[0], "temporal"
        elif len(temporal) > 1 and need_time:
            raise AmbiguousColumn(rel.name, "time", "event time", temporal)
    if time_col:
        used.add(time_col)
    event = None
    if opts.get("event") is not None:
        event = rel.column(opts["event"], "event")
    else:
        cands = [c for c, t in rel.columns.items() if c not in used and roles.EVENT.match(c)
                 and (t.upper() == "VARCHAR" or t.upper().startswith("ENUM"))]
        if len(cands) == 1:
            event = cands[0]
        elif len(cands) > 1 and opts.get("event_weights") is not None:
            raise AmbiguousColumn(rel.name, "event", "event type", cands)
        elif opts.get("event_weights") is not None:
            raise InvalidArgument("event_weights", f"relation '{rel.name}' has no column recognisable as the event "
                                  "type", "Name it with event := 'column'")
    segment = None
    if opts.get("segment") is not None and not opts.get("for_users"):
        segment = rel.column(opts["segment"], "segment")
    return Roles(user, item, weight, time_col, event, segment, time_kind)


def _event_weights(opts: dict) -> tuple[dict[str, float], bool]:
    """(mapping of lower-cased event type -> weight, whether it was given explicitly)."""
    given = opts.get("event_weights")
    if given is None:
        return dict(DEFAULT_EVENT_WEIGHTS), False
    if isinstance(given, list):  # a DuckDB MAP can arrive as [{'key': .., 'value': ..}]
        try:
            given = {d["key"]: d["value"] for d in given}
        except (TypeError, KeyError):
            given = None
    if not isinstance(given, dict) or not given:
        raise InvalidArgument("event_weights", f"expected a mapping of event type to weight, got {given!r}",
                              "Pass e.g. event_weights := {'view': 1, 'cart': 3, 'purchase': 5}")
    out = {}
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise InvalidArgument("event_weights", f"the weight of '{k}' must be a number of 0 or more, got {v!r}",
                                  "Pass e.g. event_weights := {'view': 1, 'cart': 3, 'purchase': 5}")
        out[str(k).strip().lower()] = float(v)
    return out, True


def _read(ctx, query: str, params: list | None = None) -> pa.Table:
    """Arrow from a query built of quoted catalogue names, values bound as parameters (no DB-API copy)."""
    return ctx.cursor().sql(query, params=params or None).to_arrow_table()


# -- reading interactions ----------------------------------------------------------------------------------------
@dataclass
class Interactions:
    relation: str
    roles: Roles
    user_ids: pa.Array  # string, code -> id
    item_ids: pa.Array
    users: np.ndarray  # one entry per user-item pair
    items: np.ndarray
    weights: np.ndarray
    time: np.ndarray | None
    stats: dict
    notes: list[str] = field(default_factory=list)
    event_weights: dict | None = None
    key_types: dict = field(default_factory=dict)  # role -> SQL type of the source column

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def matrix(self) -> sp.csr_matrix:
        return rk.interaction_matrix(self.users, self.items, self.weights, self.n_users, self.n_items)

    def recency(self) -> sp.csr_matrix | None:
        """Per user-item pair, 1 for the user's latest item, 2 for the one before... (None without times)."""
        if self.time is None:
            return None
        return rk.recency_ranks(self.users, self.items, self.time, self.n_users, self.n_items)


def _select_list(rel: Relation, roles: Roles) -> str:
    cols = [f"CAST({rel.q(roles.user)} AS VARCHAR) AS u", f"CAST({rel.q(roles.item)} AS VARCHAR) AS i"]
    if roles.time:
        expr = (f"epoch_us(CAST({rel.q(roles.time)} AS TIMESTAMP))" if roles.time_kind == "temporal"
                else f"CAST({rel.q(roles.time)} AS DOUBLE)")
        cols.append(f"{expr} AS t")
    if roles.event:
        cols.append(f"lower(trim(CAST({rel.q(roles.event)} AS VARCHAR))) AS e")
    if roles.weight:
        cols.append(f"CAST({rel.q(roles.weight)} AS DOUBLE) AS w")
    return ", ".join(cols)


def load_interactions(ctx, relation: str, opts: dict, need_time: bool = False) -> Interactions:
    started = _time.perf_counter()
    rel = ctx.relation(relation, "relation")
    roles = infer_roles(rel, opts, need_time)
    mapping, explicit = _event_weights(opts) if roles.event else ({}, False)
    params: list = []
    src = f"SELECT {_select_list(rel, roles)} FROM {rel.sql}"
    ctes = [f"src AS ({src})"]
    if roles.event:
        ctes.append("m AS (SELECT unnest($1::VARCHAR[]) AS ev, unnest($2::DOUBLE[]) AS ew)")
        params = [list(mapping), list(mapping.values())]
    valid = "u IS NOT NULL AND i IS NOT NULL"
    # one scan for the counts the notes report
    stat_cols = ["count(*) AS n_rows", "count(*) FILTER (WHERE u IS NULL) AS null_user",
                 "count(*) FILTER (WHERE u IS NOT NULL AND i IS NULL) AS null_item"]
    if roles.weight:
        stat_cols.append(f"count(*) FILTER (WHERE {valid} AND (w IS NULL OR NOT isfinite(w) OR w <= 0)) AS bad_weight")
    if roles.event:
        stat_cols.append(f"count(*) FILTER (WHERE {valid} AND m.ev IS NULL) AS unmapped_rows")
        stat_cols.append(f"list(DISTINCT e) FILTER (WHERE {valid} AND m.ev IS NULL) AS unmapped_types")
    if roles.time:
        stat_cols.append(f"count(*) FILTER (WHERE {valid} AND t IS NULL) AS null_time")
    join = " LEFT JOIN m ON src.e = m.ev" if roles.event else ""
    stats_sql = f"WITH {', '.join(ctes)} SELECT {', '.join(stat_cols)} FROM src{join}"
    stats = _read(ctx, stats_sql, params).to_pylist()[0]
    if roles.time:  # exact duplicate events (same user, item, time, type, weight) count once
        stats["duplicates"] = ctx.read_arrow(
            f"WITH {ctes[0]} SELECT (SELECT count(*) FROM src WHERE {valid}) - "
            f"(SELECT count(*) FROM (SELECT DISTINCT * FROM src WHERE {valid})) AS d").column(0)[0].as_py()
    body = f"(SELECT DISTINCT * FROM src WHERE {valid})" if roles.time else f"(SELECT * FROM src WHERE {valid})"
    weight = "w" if roles.weight else "1.0"  # NULL, NaN and infinite weights are dropped (and counted)
    if roles.event:
        default = "NULL" if explicit else "1.0"
        weight = f"{weight} * coalesce(m.ew, {default})"
    tcol = ", min(t) AS t" if roles.time else ""
    pairs_sql = (f"WITH {', '.join(ctes)}, d AS {body}, wt AS (SELECT u, i{', t' if roles.time else ''}, "
                 f"{weight} AS w FROM d{' LEFT JOIN m ON d.e = m.ev' if roles.event else ''}) "
                 f"SELECT u, i, sum(w) AS w{tcol}, count(*) AS n FROM wt WHERE w > 0 AND isfinite(w) "
                 f"GROUP BY u, i ORDER BY u, i")
    table = _read(ctx, pairs_sql, params)
    notes = _notes(relation, roles, stats, explicit)
    if table.num_rows == 0:
        raise TrainingFailed(
            f"relation '{relation}' has no interactions to learn from: {stats['n_rows']} rows, "
            f"{stats['null_user']} with a NULL {roles.user}, {stats['null_item']} with a NULL {roles.item}"
            + (f", {stats.get('bad_weight', 0)} with a missing or non-positive {roles.weight}" if roles.weight else "")
            + (f", {stats.get('unmapped_rows', 0)} with an event type outside event_weights" if roles.event else "")
            + f". Pass a relation with rows whose {roles.user} and {roles.item} are set"
            + (" (and check user := / item := name the right columns)" if stats["n_rows"] else ""))
    u = table.column("u").combine_chunks().dictionary_encode()
    i = table.column("i").combine_chunks().dictionary_encode()
    t = None
    if roles.time:
        tc = table.column("t")
        if tc.null_count == len(tc):
            t = None
            notes.append(f"every {roles.time} is NULL: the holdout orders events at random")
        else:
            t = tc.to_numpy(zero_copy_only=False).astype(np.float64)
            t = np.where(np.isnan(t), np.nanmin(t), t)
    inter = Interactions(relation, roles, u.dictionary, i.dictionary,
                         u.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                         i.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                         table.column("w").to_numpy(zero_copy_only=False).astype(np.float32), t,
                         stats, notes, mapping if roles.event else None,
                         {"user": rel.columns[roles.user], "item": rel.columns[roles.item]})
    stats.update(n_pairs=table.num_rows, n_users=inter.n_users, n_items=inter.n_items,
                 n_events=int(pc.sum(table.column("n")).as_py()))
    for n in notes:
        log.info("%s: %s", relation, n)
    log.info("%s: read %d interactions as %d user-item pairs in %.2f s", relation, stats["n_events"],
             stats["n_pairs"], _time.perf_counter() - started)
    return inter


def _notes(relation: str, roles: Roles, stats: dict, explicit: bool) -> list[str]:
    notes = []
    if stats["null_user"]:
        notes.append(f"{stats['null_user']} rows with a NULL {roles.user} were ignored")
    if stats["null_item"]:
        notes.append(f"{stats['null_item']} rows with a NULL {roles.item} were ignored")
    if stats.get("bad_weight"):
        notes.append(f"{stats['bad_weight']} rows with a missing (NULL, NaN or infinite), zero or negative "
                     f"{roles.weight} were ignored")
    if stats.get("duplicates"):
        notes.append(f"{stats['duplicates']} exact duplicate events (same {roles.user}, {roles.item}, {roles.time}"
                     f"{', ' + roles.event if roles.event else ''}) were counted once")
    if stats.get("unmapped_rows"):
        types = ", ".join(f"'{t}'" for t in (stats.get("unmapped_types") or [])[:8])
        if explicit:
            notes.append(f"{stats['unmapped_rows']} rows whose {roles.event} is not in event_weights were ignored ({types})")
        else:
            notes.append(f"{stats['unmapped_rows']} rows with an unrecognised {roles.event} got weight 1 ({types}); "
                         "pass event_weights := {...} to weigh them")
    if not roles.time:
        notes.append("no time column: repeated rows count as repeated interactions and the holdout is random")
    return notes


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
    if not isinstance(params, dict):
        raise InvalidArgument("params", f"expected a struct of method parameters, got {params!r}",
                              "Pass e.g. params := {'factors': 32}")
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
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
            raise InvalidArgument("methods", f"expected a list of method names, got {wanted!r}",
                                  "Pass e.g. methods := ['item_knn', 'als']")
        names = ["popular"] + [m.lower() for m in wanted if m.lower() != "popular"]
        for m in names:
            rk.make_recommender(m, {})
    out = {}
    for m in names:
        p = _method_params(opts, m, strict=False)
        rk.METHODS[m].validate(p)
        out[m] = p
    return out


def _holdout_fraction(opts: dict) -> float:
    f = opts.get("test_fraction", 0.2)
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
        raise InvalidArgument("test_fraction", f"must be a number between 0 and 1, got {f!r}", "Pass e.g. 0.2")
    return float(f)


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
                   test_fraction=_holdout_fraction(opts), seed=int(opts.get("seed", 0)))


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
                                            test_fraction=_holdout_fraction(opts), seed=int(opts.get("seed", 0)))
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


# -- model or relation -------------------------------------------------------------------------------------------
def _is_model(ctx, source) -> bool:
    if not isinstance(source, str) or not source.strip():
        raise InvalidArgument("relation", f"expected the name of a table, view or recommender model, got {source!r}",
                              "Pass it as a string, e.g. 'events' or 'recs'")
    if source not in ctx.store.model_names():
        return False
    task = ctx.store.describe(source).task
    if task == TASK:
        return True
    try:  # a model of another task with the same name as a table: the table is meant
        ctx.relation(source, "relation")
        return False
    except UnknownRelation:
        raise InvalidArgument("relation", f"model '{source}' is a {task} model, not a recommender",
                              f"Train one with FROM ml_train('{source}_recs', 'events', task := 'recommend'), or "
                              "pass the name of a table of interactions") from None


def load_model(ctx, name: str, opts: dict) -> RecModel:
    sm = ctx.store.load(name)
    if sm.task != TASK:
        raise InvalidArgument("relation", f"model '{name}' is a {sm.task} model, not a recommender",
                              f"Train one with FROM ml_train('{name}_recs', 'events', task := 'recommend'), or pass "
                              "the name of a table of interactions")
    cached = getattr(sm, "_wml_recmodel", None)
    if cached is None:
        cached = RecModel.from_arrays(sm.obj, sm.meta)
        sm._wml_recmodel = cached  # the store caches StoredModel per version; keep the decoded model with it
    roles = sm.meta.get("roles", {})
    for opt in ("user", "item", "weight", "time", "event"):
        v = opts.get(opt)
        if v is not None and str(v).lower() != str(roles.get(opt) or "").lower():
            raise InvalidArgument(opt, f"model '{name}' was trained with {opt} := {roles.get(opt)!r}; columns are "
                                  "fixed at training", f"Drop the argument, or retrain: FROM ml_train('{name}', "
                                  f"'{sm.meta.get('relation')}', task := 'recommend', {opt} := '{v}')")
    method = str(opts.get("method") or "auto").lower()
    if method != "auto" and method != sm.algorithm:
        raise InvalidArgument("method", f"model '{name}' was trained with method '{sm.algorithm}'",
                              f"Drop method :=, or retrain: FROM ml_train('{name}', '{sm.meta.get('relation')}', "
                              f"task := 'recommend', method := '{method}')")
    return cached


def _source_model(ctx, source: str, opts: dict, k: int, need_time: bool = False) -> RecModel:
    if _is_model(ctx, source):
        return load_model(ctx, source, opts)
    inter = load_interactions(ctx, source, opts, need_time=need_time or (opts.get("method") or "auto") == "auto")
    rk.check_k(k, inter.n_items, f"relation '{source}'")
    model, _, _ = fit_model(ctx, inter, opts, k)
    return model


def _bool(opts: dict, name: str, default: bool) -> bool:
    v = opts.get(name, default)
    if not isinstance(v, bool):
        raise InvalidArgument(name, f"must be true or false, got {v!r}", f"Pass {name} := true or {name} := false")
    return v


def recommend_table(ctx, model: RecModel, k: int, opts: dict) -> pa.Table:
    exclude_seen = _bool(opts, "exclude_seen", True)
    n_items = model.history.shape[1]
    k = rk.check_k(k, n_items, "the catalogue")
    seg_codes = None
    if opts.get("for_users"):
        fu = ctx.relation(opts["for_users"], "for_users")
        ucol = _for_users_column(fu, model.meta["roles"]["user"])
        seg = opts.get("segment")
        seg_expr = f", CAST({fu.q(fu.column(seg, 'segment'))} AS VARCHAR) AS s" if seg else ""
        t = ctx.read_arrow(f"SELECT DISTINCT ON (u) CAST({fu.q(ucol)} AS VARCHAR) AS u{seg_expr} FROM {fu.sql} "
                           f"WHERE {fu.q(ucol)} IS NOT NULL ORDER BY u")
        targets = t.column("u").combine_chunks()
        codes = pc.index_in(targets, value_set=model.user_ids).fill_null(-1).to_numpy(zero_copy_only=False)
        codes = codes.astype(np.int64)
        if seg and model.segment_ids is None:
            raise InvalidArgument("segment", "this recommender was trained without segments",
                                  "Train it with segment := 'column' (in ml_train: params := {'segment': 'column'})")
        if seg:
            seg_codes = pc.index_in(t.column("s").combine_chunks(), value_set=model.segment_ids)
            seg_codes = seg_codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        targets = model.user_ids
        codes = np.arange(len(targets), dtype=np.int64)
    n = len(codes)
    items = np.full((n, k), -1, np.int64)
    scores = np.full((n, k), rk.FILTERED)
    allowed = _allowed_items(ctx, model, opts)
    warm = np.flatnonzero(codes >= 0)
    if len(warm):
        recency = None if model.recency is None else model.recency[codes[warm]]
        wi, ws = model.rec.recommend(codes[warm], model.history[codes[warm]], k, exclude_seen, allowed, recency)
        items[warm], scores[warm] = wi, ws
    cold = np.flatnonzero(codes < 0)
    if len(cold):
        if seg_codes is None and model.user_segment is not None:
            seg_codes = np.full(n, -1, np.int64)
        ci, cs = _cold_start(model, k, seg_codes[cold] if seg_codes is not None else np.full(len(cold), -1),
                             allowed)
        items[cold], scores[cold] = ci, cs
    valid = items >= 0
    r, c = np.nonzero(valid)
    return pa.table({"user": targets.take(pa.array(r)), "rank": pa.array(c + 1, pa.int32()),
                     "item": model.item_ids.take(pa.array(items[r, c])), "score": pa.array(scores[r, c])})


def _allowed_items(ctx, model: RecModel, opts: dict) -> np.ndarray | None:
    """The items that may be recommended: those of ``candidates := rel`` (all when not given) less those of
    ``exclude := rel``; None when neither is given. Items the model never saw cannot be recommended."""
    if opts.get("candidates") is None and opts.get("exclude") is None:
        return None
    allowed = np.ones(len(model.item_ids), bool)
    for argument in ("candidates", "exclude"):
        if opts.get(argument) is None:
            continue
        rel = ctx.relation(opts[argument], argument)
        col = _item_column(rel, model.meta["roles"]["item"], argument)
        ids = ctx.read_arrow(f"SELECT DISTINCT CAST({rel.q(col)} AS VARCHAR) AS i FROM {rel.sql} "
                             f"WHERE {rel.q(col)} IS NOT NULL").column("i").combine_chunks()
        codes = pc.index_in(ids, value_set=model.item_ids).drop_null().to_numpy(zero_copy_only=False)
        listed = np.zeros(len(model.item_ids), bool)
        listed[codes.astype(np.int64)] = True
        allowed &= listed if argument == "candidates" else ~listed
    return allowed


def _item_column(rel: Relation, item_col: str, argument: str) -> str:
    """The column of a filter relation that holds item ids: the interactions' item column name, the only column,
    or the only item-like one."""
    lower = {c.lower(): c for c in rel.columns}
    if item_col.lower() in lower:
        return lower[item_col.lower()]
    if len(rel.columns) == 1:
        return next(iter(rel.columns))
    cands = [c for c in rel.columns if roles.ITEM.match(c)]
    if len(cands) == 1:
        return cands[0]
    raise InvalidArgument(argument, f"relation '{rel.name}' has no column '{item_col}' (the item column of the "
                          "interactions)" + (f" and several item-like columns ({', '.join(cands)})" if cands else ""),
                          f"Pass a relation with one column, or one named '{item_col}'")


def _cold_start(model: RecModel, k: int, seg_codes: np.ndarray, allowed: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Users with no history: the most popular (allowed) items of their segment, then of everyone."""
    pop = model.rec.popularity
    g_items, g_scores = rk.popular_top_k(pop, k, allowed)
    items = np.repeat(g_items, len(seg_codes), 0)
    scores = np.repeat(g_scores, len(seg_codes), 0)
    if model.segment_popularity is not None:  # a segment without history counts as no segment
        has_data = np.diff(model.segment_popularity.indptr) > 0
        seg_codes = np.where((seg_codes >= 0) & has_data[np.maximum(seg_codes, 0)], seg_codes, -1)
    if model.segment_popularity is not None and (seg_codes >= 0).any():
        segs = np.unique(seg_codes[seg_codes >= 0])
        dense = model.segment_popularity[segs].toarray().astype(np.float64)
        key = dense + pop / (pop.max() + 1.0)  # the segment's counts first, the global order breaks ties
        if allowed is not None:
            key[:, ~allowed] = rk.FILTERED
        top = np.argsort(-key, axis=1, kind="stable")[:, :k]
        top_scores = np.floor(np.take_along_axis(key, top, 1))
        top = np.where(np.isfinite(top_scores), top, -1)
        where = np.searchsorted(segs, seg_codes)
        hit = seg_codes >= 0
        items[hit] = top[where[hit]]
        scores[hit] = top_scores[where[hit]]
    return items, scores


# -- SQL entry points --------------------------------------------------------------------------------------------
def key_types(ctx, source, opts: dict) -> dict[str, str]:
    """The SQL types of the user and item columns behind a relation or a trained recommender (VARCHAR for a model
    trained before types were recorded)."""
    if _is_model(ctx, source):
        return dict(ctx.store.describe(source).meta.get("key_types") or {})  # {} before types were recorded
    rel = ctx.relation(source, "relation")
    roles = infer_roles(rel, opts)
    return {"user": rel.columns[roles.user], "item": rel.columns[roles.item]}


def _key_types_of_call(ctx, source, k, raw) -> dict[str, str]:
    types = key_types(ctx, source, _options(json.loads(raw) if raw else {}))
    return {"user": types.get("user"), "item": types.get("item"), "similar_item": types.get("item")}


@scalar_udf("wml_recommend_items_sql", args=["VARCHAR", "BIGINT", "VARCHAR"], returns="VARCHAR")
def recommend_items_sql(ctx, sources, ks, options):
    return typed_calls(ctx, "wml_recommend_items", [sources, ks, options], ["user", "rank", "item", "score"],
                       _key_types_of_call)


@scalar_udf("wml_similar_items_sql", args=["VARCHAR", "BIGINT", "VARCHAR"], returns="VARCHAR")
def similar_items_sql(ctx, sources, ks, options):
    return typed_calls(ctx, "wml_similar_items", [sources, ks, options], ["item", "rank", "similar_item", "score"],
                       _key_types_of_call)


@table_udf("wml_recommend_items", args=["VARCHAR", "BIGINT", JSON], returns=REC_ROW)
def recommend_items(ctx, source, k, options):
    opts = _options(options)
    rk.check_k(k)
    t0 = _time.perf_counter()
    model = _source_model(ctx, source, opts, k)
    t1 = _time.perf_counter()
    out = recommend_table(ctx, model, k, opts)
    log.info("recommend_items(%s): model ready in %.2f s, %d recommendations in %.2f s", source, t1 - t0,
             out.num_rows, _time.perf_counter() - t1)
    return out


@table_udf("wml_similar_items", args=["VARCHAR", "BIGINT", JSON], returns=SIM_ROW)
def similar_items(ctx, source, k, options):
    opts = _options(options)
    rk.check_k(k)
    if _is_model(ctx, source):
        model = load_model(ctx, source, opts)
        rec, history, item_ids = model.rec, model.history, model.item_ids
    else:
        inter = load_interactions(ctx, source, opts)
        method = _resolve_method(opts)
        history, item_ids = inter.matrix(), inter.item_ids
        rec = rk.make_recommender("als", _method_params(opts, "als", True)).fit(history) if method == "als" else None
    n = history.shape[1]
    rk.check_k(k, n - 1, "the catalogue (less the item itself)")
    items, scores = rk.similar_items(rec, history, k)
    r, c = np.nonzero(items >= 0)
    return pa.table({"item": item_ids.take(pa.array(r)), "rank": pa.array(c + 1, pa.int32()),
                     "similar_item": item_ids.take(pa.array(items[r, c])), "score": pa.array(scores[r, c])})


@table_udf("wml_evaluate_recommender", args=["VARCHAR", "BIGINT", JSON], returns=EVAL_ROW)
def evaluate_recommender(ctx, source, k, options):
    opts = _options(options)
    rk.check_k(k)
    if _is_model(ctx, source):  # evaluate the model's relation and settings afresh
        sm = ctx.store.describe(source)
        if sm.task != TASK:
            raise InvalidArgument("relation", f"model '{source}' is a {sm.task} model, not a recommender",
                                  "Pass a recommender model or a table of interactions")
        roles = {k_: v for k_, v in (sm.meta.get("roles") or {}).items() if k_ in ROLE_OPTIONS and v is not None}
        opts = {**roles, "event_weights": sm.meta.get("event_weights"), **opts}
        source = sm.meta["relation"]
    inter = load_interactions(ctx, source, opts, need_time=True)
    return evaluate(inter, opts, k)


@trainer(TASK)
def train_recommender(ctx, model: str, relation: str, options: dict) -> dict:
    """ml_train(model, relation, task := 'recommend', user := .., item := .., method := .., params := {..}).

    Options of recommend_items that ml_train has no parameter for (event, event_weights, segment, for_users)
    may be passed inside params; so may the method's hyperparameters."""
    validate_model_name(model)
    raw = {k: v for k, v in (options or {}).items() if v is not None}
    if raw.get("label") is not None:
        raise InvalidArgument("label", "a recommender learns from interactions and takes no label",
                              f"Drop label :=, and name the columns: FROM ml_train('{model}', '{relation}', "
                              "task := 'recommend', user := 'user_id', item := 'item_id')")
    if raw.get("exclude"):
        raise InvalidArgument("exclude", "is not an option of task 'recommend'", "Name the columns with user := and item :=")
    params = dict(raw.get("params") or {}) if isinstance(raw.get("params"), dict) else raw.get("params")
    opts = {k: raw[k] for k in ("user", "item", "weight", "time", "method") if k in raw}
    if isinstance(params, dict):
        for key in ("event", "event_weights", "segment", "for_users", "test_fraction", "methods", "seed", "budget"):
            if key in params:
                opts[key] = params.pop(key)
        opts["params"] = params
    elif params is not None:
        opts["params"] = params  # reported by the validation below
    algorithm = str(raw.get("algorithm") or "auto").lower()
    if "method" not in opts and algorithm != "auto":
        opts["method"] = algorithm
    if "test_size" in raw and "test_fraction" not in opts and isinstance(raw["test_size"], (int, float)) \
            and 0 < raw["test_size"] < 1:
        opts["test_fraction"] = raw["test_size"]
    k = raw.get("k") or 10
    rk.check_k(k)
    started = _time.perf_counter()
    inter = load_interactions(ctx, relation, opts, need_time=(opts.get("method") or "auto") == "auto")
    rec_model, rows, notes = fit_model(ctx, inter, opts, min(int(k), inter.n_items), always_evaluate=True)
    seconds = _time.perf_counter() - started
    rec_model.meta["notes"] = notes
    method = rec_model.meta["method"]
    candidates = rec_model.meta["candidates"]
    metrics: dict = {}
    chosen = max((r for r in rows if r["method"] == method), key=lambda r: r["ndcg_at_k"], default=None)
    if chosen:
        metrics.update({m: chosen[m] for m in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")})
        metrics["k"] = int(k)
    popular = next((r for r in rows if r["method"] == "popular"), None)  # popularity has one candidate
    if popular and method != "popular":
        metrics["popular_ndcg_at_k"] = popular["ndcg_at_k"]
    metrics.update({f"n_{s}": inter.stats[f"n_{s}"] for s in ("users", "items", "pairs", "events")})
    metrics.update({s: inter.stats.get(s) or 0 for s in ("null_user", "null_item", "duplicates")})
    n_test = int(rows[0]["test_pairs"]) if rows else 0
    fmt, blob = dumps_arrays(rec_model.to_arrays())
    roles = inter.roles
    features = [{"name": c, "role": r} for r, c in roles.as_dict().items() if c and r != "time_kind"]
    version = ctx.store.save(model, task=TASK, algorithm=method, fmt=fmt, artifact=blob, features=features,
                             metrics=metrics, params=rec_model.rec.params, meta=rec_model.meta,
                             n_rows=inter.stats["n_rows"], n_train=inter.stats["n_pairs"] - n_test, n_test=n_test,
                             seconds=seconds)
    return {"model": model, "version": version, "task": TASK, "algorithm": method,
            "n_train": inter.stats["n_pairs"] - n_test, "n_test": n_test, "metrics": {k_: float(v) for k_, v in metrics.items() if v is not None},
            "trained_at": datetime.now(timezone.utc).replace(tzinfo=None), "seconds": seconds,
            "candidates": candidates, "notes": notes}
