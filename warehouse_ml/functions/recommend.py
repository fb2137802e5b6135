"""recommend_items, similar_items, evaluate_recommender, and ml_train's 'recommend' task (SQL_SURFACE.md section 5).

The first argument of each function names either a model trained with ``ml_train(..., task := 'recommend')``
(then it is a lookup on that model, which holds the history it was trained on) or a table/view of interactions
(then a recommender is trained on the fly). Interactions are read through a second cursor as one row per
user-item pair (SQL does the grouping), mapped to codes with Arrow, and handed to the NumPy/SciPy kernels in
``warehouse_ml.tasks.recommend``. Relation and column names reach SQL only as quoted catalogue names.
"""
from __future__ import annotations

import logging
import time as _time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation
from ..binding.spec import (
    Anything, Arg, Boolean, Identifier, Identifiers, Interval, Option, RelationArg, RelationName, Struct, Text,
    parse_options, sql_function,
)
from ..errors import InvalidArgument, UnknownRelation
from ..store import dumps_arrays, validate_model_name
from ..tasks import roles
from ..tasks import recommend as rk
from .base import trainer
from .recommend_data import infer_roles, load_interactions
from .recommend_fit import RecModel, _for_users_column, _method_params, _resolve_method, evaluate, fit_model

log = logging.getLogger("warehouse_ml")

TASK = "recommend"
REC_ROW = 'STRUCT("user" VARCHAR, rank INTEGER, item VARCHAR, score DOUBLE)'
SIM_ROW = "STRUCT(item VARCHAR, rank INTEGER, similar_item VARCHAR, score DOUBLE)"
EVAL_ROW = ("STRUCT(method VARCHAR, precision_at_k DOUBLE, recall_at_k DOUBLE, ndcg_at_k DOUBLE, map_at_k DOUBLE, "
            "coverage DOUBLE, ndcg_vs_popular DOUBLE, best BOOLEAN, users BIGINT, seconds DOUBLE, notes VARCHAR[], "
            "params VARCHAR, candidates INTEGER)")
ROLE_OPTIONS = ("user", "item", "weight", "time", "event", "event_weights", "segment")
_EXAMPLE_WEIGHTS = "Pass e.g. event_weights := {'view': 1, 'cart': 3, 'purchase': 5}"
OPTIONS = {o.name: o for o in [
    Option("user", Identifier()), Option("item", Identifier()), Option("weight", Identifier()),
    Option("time", Identifier()), Option("event", Identifier()),
    Option("event_weights", Struct(), fix=_EXAMPLE_WEIGHTS, doc="event type -> weight"),
    Option("method", Text(nonempty=True), "auto"),
    Option("exclude_seen", Boolean(), True, fix="Pass exclude_seen := true or exclude_seen := false"),
    Option("for_users", RelationName(), doc="a relation of the users to recommend to"),
    Option("segment", Identifier(), doc="the column whose popular items cold-start users get"),
    Option("params", Struct(), fix="Pass e.g. params := {'factors': 32}"),
    Option("methods", Identifiers(), fix="Pass e.g. methods := ['item_knn', 'als']"),
    Option("test_fraction", Interval(float, 0, 1, closed="neither"), 0.2, fix="Pass e.g. 0.2"),
    Option("seed", Interval(int), 0),
    Option("budget", Anything("a duration such as '30s' or seconds")),
    Option("exclude", RelationName(), doc="a relation of items never to recommend"),
    Option("candidates", RelationName(), doc="a relation of the only items to recommend"),
]}


def _options(*names: str) -> list[Option]:
    return [OPTIONS[n] for n in names]


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


def recommend_table(ctx, model: RecModel, k: int, opts: dict) -> pa.Table:
    exclude_seen = opts["exclude_seen"]
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


def _key_types_of_call(ctx, source, k, **opts) -> dict[str, str]:
    types = key_types(ctx, source, opts)
    return {"user": types.get("user"), "item": types.get("item"), "similar_item": types.get("item")}


_SOURCE_K = [RelationArg(), Arg("k", "BIGINT")]
_ROLES = ("user", "item", "weight", "time", "event", "event_weights")


@sql_function(
    "recommend_items", "The top k items for each user, from a table of interactions (a recommender trained on the "
    "fly) or a recommender model.", args=_SOURCE_K, returns=REC_ROW, key_types=_key_types_of_call,
    options=_options(*_ROLES, "method", "exclude_seen", "for_users", "segment", "params", "budget", "exclude",
                     "candidates"))
def recommend_items(ctx, source, k, **opts):
    rk.check_k(k)
    t0 = _time.perf_counter()
    model = _source_model(ctx, source, opts, k)
    t1 = _time.perf_counter()
    out = recommend_table(ctx, model, k, opts)
    log.info("recommend_items(%s): model ready in %.2f s, %d recommendations in %.2f s", source, t1 - t0,
             out.num_rows, _time.perf_counter() - t1)
    return out


@sql_function(
    "similar_items", "The k items most similar to each item, by co-occurrence (or by ALS factors).",
    args=_SOURCE_K, returns=SIM_ROW, key_types=_key_types_of_call, options=_options(*_ROLES, "method", "params"))
def similar_items(ctx, source, k, **opts):
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


@sql_function(
    "evaluate_recommender", "Every method (or those named) compared on a time-ordered per-user holdout: precision, "
    "recall, NDCG and MAP at k, against popularity.", args=_SOURCE_K, returns=EVAL_ROW,
    options=_options(*_ROLES, "methods", "test_fraction", "params", "seed", "budget"))
def evaluate_recommender(ctx, source, k, **opts):
    rk.check_k(k)
    if _is_model(ctx, source):  # evaluate the model's relation and settings afresh
        sm = ctx.store.describe(source)
        if sm.task != TASK:
            raise InvalidArgument("relation", f"model '{source}' is a {sm.task} model, not a recommender",
                                  "Pass a recommender model or a table of interactions")
        trained = {k_: v for k_, v in (sm.meta.get("roles") or {}).items() if k_ in ROLE_OPTIONS}
        trained["event_weights"] = sm.meta.get("event_weights")
        opts = {**opts, **{k_: v for k_, v in trained.items() if opts.get(k_) is None}}
        source = sm.meta["relation"]
    inter = load_interactions(ctx, source, opts, need_time=True)
    return evaluate(inter, opts, k)


# What ml_train(..., task := 'recommend') takes, checked like the options of the functions above.
_TRAIN_OPTIONS = _options("user", "item", "weight", "time", "method", "event", "event_weights", "segment",
                          "for_users", "test_fraction", "methods", "seed", "budget", "params")


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
    opts = parse_options(_TRAIN_OPTIONS, opts, "ml_train(task := 'recommend')")
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
