"""The interactions a recommender learns from: column roles, event weights, one row per user-item pair.

Interactions are read through a second cursor as one row per user-item pair (SQL does the grouping) and mapped
to integer codes with Arrow. Relation and column names reach SQL only as quoted catalogue names.
"""
from __future__ import annotations

import logging
import re
import time as _time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..binding.catalog import Relation, is_numeric_type, is_temporal_type
from ..errors import AmbiguousColumn, InvalidArgument, TrainingFailed
from ..tasks import roles
from ..tasks.roles import is_date_type
from ..tasks import recommend as rk

log = logging.getLogger("warehouse_ml")


# Weights of common event types when an event column is present and no mapping is given (view < cart < purchase).
DEFAULT_EVENT_WEIGHTS = {
    "impression": 0.5, "view": 1.0, "page_view": 1.0, "pageview": 1.0, "detail": 1.0, "click": 1.0,
    "like": 2.0, "wishlist": 2.0, "favorite": 2.0, "favourite": 2.0, "rating": 2.0, "review": 2.0,
    "cart": 3.0, "add_to_cart": 3.0, "addtocart": 3.0, "add-to-cart": 3.0, "basket": 3.0,
    "checkout": 4.0, "purchase": 5.0, "buy": 5.0, "order": 5.0, "transaction": 5.0, "conversion": 5.0,
}


# -- column roles ------------------------------------------------------------------------------------------------
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
    if not given:
        raise InvalidArgument("event_weights", "is an empty mapping",
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
