"""ml_train(..., task := 'sequence') and ml_predict_sequence: next-purchase prediction from event histories.

```sql
FROM ml_train('next_purchase', 'events', task := 'sequence', user := 'user_id', time := 'ts',
              params := {event: 'event_type', horizon_days: 14, as_of: '2024-06-30'});
FROM ml_predict_sequence('next_purchase', 'events');              -- user, p_purchase, n_events
FROM train_next_purchase('events', horizon_days := 14);           -- the model named 'next_purchase'
FROM predict_next_purchase('events', as_of := DATE '2024-09-30');
```

Training reads the events through a second cursor as ``(user, epoch microseconds, event type, item)`` sorted by
user and time (SQL does the sort and the casts; names are catalogue-resolved and quoted), maps them to integer
ids with Arrow, and hands NumPy arrays to ``tasks.sequence`` (sequence building is vectorised, the GRU trains
with TensorFlow). The label is built from the events: a purchase within ``horizon_days`` after a cutoff. The
version is written only after training and the holdout evaluation succeeded.

Scoring is a table function, not a row UDF: a user's score depends on all their events, so
``ml_predict_sequence(model, relation, as_of := NULL)`` reads the event relation (events on or before ``as_of``,
default: the latest event), builds every user's sequence and scores them with the NumPy forward pass.
``ml_predict`` on a sequence model says so and points here.
"""
from __future__ import annotations

import logging
import time as _time
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation
from ..binding.spec import Anything, Arg, Identifier, Option, RelationArg, Struct, sql_function, sql_macro
from ..errors import AmbiguousColumn, InvalidArgument, TrainingFailed, UnknownColumn, did_you_mean
from ..store import dumps_arrays, validate_model_name
from ..tasks import roles
from ..tasks import sequence as sq
from ..tasks.roles import is_date_type
from .base import predictor, trainer
from .recommend_data import _pick

log = logging.getLogger("warehouse_ml")

TASK = "sequence"
PRED_ROW = 'STRUCT("user" VARCHAR, p_purchase DOUBLE, n_events BIGINT)'
PURCHASE_NAMES = ("purchase", "purchased", "order", "ordered", "buy", "transaction", "checkout", "conversion", "sale")
EVENT_KEYS = ("event", "item", "purchase_event", "as_of")  # role options, top level or inside params


# -- options and columns -----------------------------------------------------------------------------------------
def _split_options(model: str, relation: str, options: dict) -> tuple[dict, dict]:
    """(role options: user, time, event, item, purchase_event, as_of; hyperparameters for tasks.sequence)."""
    raw = {k: v for k, v in (options or {}).items() if v is not None}
    example = (f"FROM ml_train('{model}', '{relation}', task := 'sequence', user := 'user_id', time := 'ts', "
               "params := {event: 'event_type', horizon_days: 14})")
    if "label" in raw:
        raise InvalidArgument("label", "a sequence model builds its label from the events (a purchase within "
                              "horizon_days after each cutoff) and takes no label column", f"Drop label :=, e.g. {example}")
    for name in ("exclude", "weight", "k"):
        if raw.get(name) not in (None, [], ""):
            raise InvalidArgument(name, "is not an option of task 'sequence'", f"Drop it, e.g. {example}")
    for name in ("algorithm", "method"):
        v = str(raw.get(name) or "auto").lower()
        if v not in ("auto", "gru"):
            raise InvalidArgument(name, f"task 'sequence' trains a GRU, not '{raw[name]}'", f"Use {name} := 'gru' or leave it out")
    if raw.get("test_size") not in (None, 0.2):
        raise InvalidArgument("test_size", "a sequence model is tested on the window after as_of, not on a share of rows",
                              "Drop test_size; choose the holdout with params := {as_of: '2024-06-30'}")
    params = raw.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidArgument("params", f"expected a struct of options, got {params!r}",
                              "Use e.g. params := {event: 'event_type', horizon_days: 14}")
    merged = {k: raw[k] for k in ("event", "item", "purchase_event", "as_of", "horizon_days") if k in raw}
    merged.update(params)  # params win over the defaults of train_next_purchase's named arguments
    roles = {k: merged.pop(k) for k in EVENT_KEYS if merged.get(k) is not None}
    for k in EVENT_KEYS:
        merged.pop(k, None)
    for k in ("user", "time"):
        if raw.get(k) is not None:
            roles[k] = raw[k]
        if k in merged:  # user / time inside params work too
            roles.setdefault(k, merged.pop(k))
    if raw.get("item") is not None:
        roles["item"] = raw["item"]
    return roles, merged


def resolve_roles(rel: Relation, opts: dict) -> dict:
    """Which columns hold the user, the event time, the event type (optional) and the item (optional)."""
    user = _pick(rel, opts.get("user"), "user", "user id", roles.USER)
    if opts.get("time") is not None:
        time_col = rel.column(opts["time"], "time")
        if not is_date_type(rel.columns[time_col]):
            raise InvalidArgument("time", f"column '{time_col}' has type {rel.columns[time_col]}, which cannot place "
                                  "events in days", "Name a DATE or TIMESTAMP column, e.g. time := 'ts'")
    else:
        temporal = [c for c, t in rel.columns.items() if c != user and is_date_type(t)]
        if len(temporal) > 1:
            named = [c for c in temporal if roles.TIME.match(c)]
            temporal = named if len(named) == 1 else temporal
        if len(temporal) != 1:
            if not temporal:
                raise InvalidArgument("time", f"relation '{rel.name}' has no DATE or TIMESTAMP column to order the "
                                      "events by", "Pass a relation with an event time and name it with time := 'ts'")
            raise AmbiguousColumn(rel.name, "time", "event time", temporal)
        time_col = temporal[0]
    used = {user, time_col}
    if opts.get("event") is not None:
        event = rel.column(opts["event"], "event")
    else:
        cands = [c for c, t in rel.columns.items() if c not in used and roles.EVENT.match(c)
                 and (t.upper() == "VARCHAR" or t.upper().startswith("ENUM"))]
        if len(cands) > 1:
            raise AmbiguousColumn(rel.name, "event", "event type", cands)
        event = cands[0] if cands else None
    item = rel.column(opts["item"], "item") if opts.get("item") is not None else None
    for name, col in (("event", event), ("item", item)):
        if col is not None and col in used:
            raise InvalidArgument(name, f"column '{col}' is already the {'user' if col == user else 'time'} column",
                                  f"Name a different column with {name} := '...'")
        if col is not None:
            used.add(col)
    return {"user": user, "time": time_col, "event": event, "item": item}


def _as_of_us(ctx, value, argument: str = "as_of") -> int | None:
    """A date or timestamp (as text) in epoch microseconds, parsed by DuckDB; a clear error when it is not one."""
    if value is None:
        return None
    try:
        row = ctx.cursor().execute("SELECT epoch_us(CAST(CAST($1 AS VARCHAR) AS TIMESTAMP))", [str(value)]).fetchall()
    except duckdb.Error:
        row = None
    row = row[0] if row else None
    if not row or row[0] is None:
        raise InvalidArgument(argument, f"cannot read {value!r} as a date or timestamp",
                              f"Use e.g. {argument} := '2024-06-30' (midnight at the start of that day) or a TIMESTAMP")
    return int(row[0])


def _fmt(seconds: float) -> str:
    dt = datetime(1970, 1, 1) + timedelta(seconds=float(seconds))
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt.time() != datetime.min.time() else dt.strftime("%Y-%m-%d")


def read_events(ctx, rel: Relation, roles: dict, upper_us: int | None = None) -> tuple[pa.Table, int, tuple]:
    """(events on or before ``upper_us`` sorted by user and time, with columns u, t[, e][, i]; rows skipped for a
    NULL user or time; (first, last) event time in seconds over the whole relation)."""
    t_expr = f"epoch_us(CAST({rel.q(roles['time'])} AS TIMESTAMP))"
    cols = [f"CAST({rel.q(roles['user'])} AS VARCHAR) AS u", f"{t_expr} AS t"]
    order = ["u", "t"]
    if roles.get("event"):
        cols.append(f"lower(trim(CAST({rel.q(roles['event'])} AS VARCHAR))) AS e")
        order.append("e")
    if roles.get("item"):
        cols.append(f"CAST({rel.q(roles['item'])} AS VARCHAR) AS i")
        order.append("i")
    valid = f"{rel.q(roles['user'])} IS NOT NULL AND {rel.q(roles['time'])} IS NOT NULL"
    where = valid + (" AND " + t_expr + " <= $1" if upper_us is not None else "")
    params = [upper_us] if upper_us is not None else None
    cur = ctx.cursor()
    table = cur.sql(f"SELECT {', '.join(cols)} FROM {rel.sql} WHERE {where} ORDER BY {', '.join(order)}",
                    params=params).to_arrow_table()
    skipped, first, last = cur.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({valid})), min({t_expr}) FILTER (WHERE {valid}), "
        f"max({t_expr}) FILTER (WHERE {valid}) FROM {rel.sql}").fetchall()[0]
    span = (None if first is None else first / 1e6, None if last is None else last / 1e6)
    return table, int(skipped), span


def _vocab(values: pa.ChunkedArray, mask: np.ndarray, limit: int) -> list[str]:
    """The most frequent non-NULL values where ``mask`` (ties by value), at most ``limit``."""
    arr = values.combine_chunks().filter(pa.array(mask))
    counts = pc.value_counts(arr.drop_null()) if len(arr) else pa.array([], pa.struct([("values", pa.string()), ("counts", pa.int64())]))
    if not len(counts):
        return []
    vals = counts.field("values").to_numpy(zero_copy_only=False).astype(str)
    n = counts.field("counts").to_numpy()
    order = np.lexsort((vals, -n))
    return [str(v) for v in vals[order][:limit]]


def _ids(values: pa.ChunkedArray, vocab: list[str], first: int, missing: int) -> np.ndarray:
    """Position in ``vocab`` + ``first`` for each value; ``missing`` for NULL and values outside it."""
    pos = pc.index_in(values.combine_chunks(), value_set=pa.array(vocab, pa.string()))
    valid = pc.is_valid(pos).to_numpy(zero_copy_only=False)
    idx = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(valid, idx + first, missing).astype(np.int32)


def event_log(table: pa.Table, roles: dict, event_types: list[str], purchase_events: list[str],
              item_ids: list[str] | None) -> sq.EventLog:
    """Integer ids for the sorted events (user codes follow the sort, so the log stays sorted by user and time)."""
    u = table.column("u").combine_chunks().dictionary_encode()
    user = u.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    t = table.column("t").to_numpy().astype(np.float64) / 1e6
    if roles.get("event"):
        e = table.column("e")
        event = _ids(e, event_types, 1, len(event_types) + 1)
        purchase = pc.fill_null(pc.is_in(e.combine_chunks(), value_set=pa.array(purchase_events, pa.string())),
                                False).to_numpy(zero_copy_only=False)
    else:  # no event column: every row is a purchase (e.g. an orders table)
        event = np.ones(len(t), np.int32)
        purchase = np.ones(len(t), bool)
    item = _ids(table.column("i"), item_ids, 2, 1) if item_ids is not None else None
    return sq.EventLog(user=user, t=t, event=event, purchase=np.asarray(purchase, bool), user_ids=u.dictionary, item=item)


def _purchase_events(given, table: pa.Table, roles: dict, relation: str) -> list[str]:
    if not roles.get("event"):
        if given is not None:
            raise InvalidArgument("purchase_event", f"relation '{relation}' has no event-type column, so every row "
                                  "counts as a purchase", "Name the event-type column with params := {event: 'event_type'}")
        return []
    present = [v for v in pc.unique(table.column("e").combine_chunks()).to_pylist() if v is not None]
    if given is None:
        for name in PURCHASE_NAMES:
            if name in present:
                return [name]
        raise InvalidArgument("purchase_event", f"cannot tell which value of column '{roles['event']}' marks a purchase "
                              f"(it has: {', '.join(repr(v) for v in sorted(present)[:12])})",
                              "Name it, e.g. params := {purchase_event: 'order'}")
    wanted = [given] if isinstance(given, str) else given
    if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) and w.strip() for w in wanted):
        raise InvalidArgument("purchase_event", f"expected an event type or a list of them, got {given!r}",
                              "Use e.g. params := {purchase_event: 'purchase'}")
    out = []
    for w in wanted:
        w = w.strip().lower()
        if w not in present:
            raise InvalidArgument("purchase_event", f"no event of type '{w}' in column '{roles['event']}' of "
                                  f"'{relation}'.{did_you_mean(w, present)}", "Name the event type that marks a purchase")
        out.append(w)
    return out


# -- training ----------------------------------------------------------------------------------------------------
@trainer(TASK)
def train_sequence(ctx, model: str, relation: str, options: dict) -> dict:
    validate_model_name(model)
    started = _time.perf_counter()
    role_opts, hyper = _split_options(model, relation, options)
    p = sq.check_params(hyper)
    rel = ctx.relation(relation, "relation")
    roles = resolve_roles(rel, role_opts)
    as_of_us = _as_of_us(ctx, role_opts.get("as_of"))
    h = float(p["horizon_days"]) * sq.DAY
    upper = None if as_of_us is None else as_of_us + int(round(h * 1e6))
    table, skipped, (first, last) = read_events(ctx, rel, roles, upper)
    if first is None:
        raise InvalidArgument("relation", f"'{relation}' has no events with a {roles['user']} and a {roles['time']}",
                              "Pass a relation with events")
    notes = []
    if as_of_us is None:
        if last - first < 2 * h:
            raise InvalidArgument("horizon_days", f"the events of '{relation}' span {(last - first) / sq.DAY:.1f} days, "
                                  f"too short for a training window and a test window of {p['horizon_days']} days each",
                                  "Use a shorter horizon, e.g. params := {horizon_days: 7}, or a longer history")
        as_of = last - h
        notes.append(f"as_of defaulted to {_fmt(as_of)}: the last event ({_fmt(last)}) minus horizon_days, so the "
                     "test window is fully observed")
    else:
        as_of = as_of_us / 1e6
        if as_of < first:
            raise InvalidArgument("as_of", f"no events of '{relation}' are on or before as_of {_fmt(as_of)} (they run "
                                  f"from {_fmt(first)} to {_fmt(last)})",
                                  f"Pass an as_of between {_fmt(first + h)} and {_fmt(last - h)}, or leave it out")
        if as_of + h > last + 1.0:
            raise InvalidArgument("as_of", f"the test window (as_of, as_of + {p['horizon_days']} days] ends at "
                                  f"{_fmt(as_of + h)}, after the last event of '{relation}' ({_fmt(last)}), so "
                                  "purchases in it are not in the data yet",
                                  f"Pass an as_of on or before {_fmt(last - h)}, or leave it out to use that")
    t = table.column("t").to_numpy().astype(np.float64) / 1e6
    cutoffs = [as_of - k * h for k in range(1, int(p["windows"]) + 1) if as_of - k * h >= first]
    if not cutoffs:
        raise InvalidArgument("as_of", f"no training window fits before as_of {_fmt(as_of)}: as_of - horizon_days "
                              f"({_fmt(as_of - h)}) is before the first event ({_fmt(first)})",
                              "Pass a later as_of or a shorter horizon_days")
    purchase_events = _purchase_events(role_opts.get("purchase_event"), table, roles, relation)
    known = t <= max(cutoffs)  # vocabularies from what training sees (later types and items map to 'other')
    event_types = _vocab(table.column("e"), known, int(p["max_event_types"])) if roles["event"] else ["(event)"]
    item_ids = _vocab(table.column("i"), known, int(p["max_items"])) if roles["item"] else None
    elog = event_log(table, roles, event_types, purchase_events, item_ids)
    n_ids = len(event_types) + 2
    recent = float(p["recent_days"] or p["horizon_days"]) * sq.DAY
    lookback = None if p["lookback_days"] is None else float(p["lookback_days"]) * sq.DAY
    L = int(p["max_len"])
    train = sq.Examples.concat([sq.build_examples(elog, c, L, n_ids, recent, h, lookback) for c in cutoffs])
    test = sq.build_examples(elog, as_of, L, n_ids, recent, h, lookback)
    if len(np.unique(train.label)) < 2:
        what = "no user purchased" if not train.label.any() else "every user purchased"
        raise TrainingFailed(f"{what} within {p['horizon_days']} days after the training cutoffs ({len(cutoffs)} "
                             f"window(s) before as_of {_fmt(as_of)}), so there is nothing to tell apart. Use a "
                             "different horizon_days or as_of, or check purchase_event")
    log.info("%s: %d training sequences over %d cutoffs, %d test users", model, len(train), len(cutoffs), len(test))
    seq_model, info = sq.fit_gru(train, p, event_types, item_ids)
    baseline = sq.fit_baseline(train)
    metrics: dict = {}
    candidates = []
    if len(test):
        pt = seq_model.predict_proba(test)
        pb = baseline.predict_proba(test.agg)[:, 1]
        metrics.update(sq.classification_metrics(test.label, pt))
        metrics.update(sq.classification_metrics(test.label, pb, "baseline_"))
    if "roc_auc" in metrics:
        candidates = [{"algorithm": "gru", "cv_score": metrics["roc_auc"], "metric": "roc_auc"},
                      {"algorithm": "logistic_recency_frequency", "cv_score": metrics["baseline_roc_auc"],
                       "metric": "roc_auc"}]
        notes.append(f"holdout after as_of: ROC AUC gru {metrics['roc_auc']:.3f} vs logistic regression on recency, "
                     f"frequency and event counts {metrics['baseline_roc_auc']:.3f}; PR AUC {metrics['pr_auc']:.3f} vs "
                     f"{metrics['baseline_pr_auc']:.3f}")
    else:
        notes.append(f"the {len(test)} users at as_of {_fmt(as_of)} all have the same outcome: no holdout AUC")
    positive = float(test.label.mean()) if len(test) else float("nan")
    metrics.update({"positive_rate": positive, "train_positive_rate": float(train.label.mean()),
                    "n_users_test": float(len(test)), "n_sequences_train": float(len(train)),
                    "horizon_days": float(p["horizon_days"]), "windows": float(len(cutoffs)),
                    "train_seconds": info["seconds"]})
    metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}  # JSON in the store has no NaN
    label = f"a purchase ({', '.join(purchase_events) or 'any row'}) within {p['horizon_days']} days"
    notes.insert(0, f"label: {label} after a cutoff; trained on {len(train):,} sequences at {len(cutoffs)} cutoff(s) "
                    f"from {_fmt(min(cutoffs))} to {_fmt(max(cutoffs))}, tested on the {len(test):,} users with events "
                    f"on or before as_of {_fmt(as_of)} ({positive:.1%} purchased in the next {p['horizon_days']} days)")
    notes += seq_model.notes
    if not roles["event"]:
        notes.append(f"no event-type column: every row of '{relation}' counts as a purchase")
    if skipped:
        notes.append(f"{skipped} rows with a NULL {roles['user']} or {roles['time']} were ignored")
    notes.append(f"score with: FROM ml_predict_sequence('{model}', '{relation}')")
    seq_model.config.update(roles=roles, purchase_events=purchase_events, as_of=_fmt(as_of))
    seq_model.notes = notes
    fmt, blob = dumps_arrays(seq_model.to_arrays())
    seconds = _time.perf_counter() - started
    features = [{"name": c, "role": r} for r, c in roles.items() if c]
    params = {k: v for k, v in p.items()}
    version = ctx.store.save(model, task=TASK, algorithm="gru", fmt=fmt, artifact=blob, label=label,
                             features=features, metrics=metrics, params=params,
                             meta={"relation": relation, "roles": roles, "purchase_events": purchase_events, "as_of": _fmt(as_of),
                                   "event_types": event_types, "notes": notes, "candidates": candidates},
                             n_rows=table.num_rows, n_train=len(train), n_test=len(test), seconds=seconds)
    return {"model": model, "version": version, "task": TASK, "algorithm": "gru", "n_train": len(train),
            "n_test": len(test), "metrics": metrics,
            "trained_at": datetime.now(timezone.utc).replace(tzinfo=None), "seconds": seconds,
            "candidates": candidates, "notes": notes}


# -- scoring -----------------------------------------------------------------------------------------------------
def _loaded(ctx, model: str):
    sm = ctx.store.load(model)
    if sm.task != TASK:
        raise InvalidArgument("model", f"model '{model}' is a {sm.task} model, not a sequence model",
                              f"Train one with: FROM ml_train('{model}', 'events', task := 'sequence', "
                              "user := 'user_id', time := 'ts')")
    if "sequence" not in sm.derived:
        sm.derived["sequence"] = sq.SequenceModel.from_arrays(sm.obj)
    return sm, sm.derived["sequence"]


def _user_type(ctx, model, relation, **_) -> dict[str, str]:
    _, seq = _loaded(ctx, model)
    rel = ctx.relation(relation, "relation")
    return {"user": rel.columns[rel.column(seq.config["roles"]["user"], "relation")]}


@sql_function(
    "ml_predict_sequence", "Each user's probability of a purchase within the model's horizon, from their event "
    "history up to as_of (default: the latest event).", args=[Arg("model"), RelationArg()], returns=PRED_ROW,
    options=[Option("as_of", Anything("a date or timestamp"))], key_types=_user_type)
def ml_predict_sequence(ctx, model, relation, as_of):
    validate_model_name(model)
    sm, seq = _loaded(ctx, model)
    rel = ctx.relation(relation, "relation")
    roles = {}
    for role, col in seq.config["roles"].items():
        if not col:
            roles[role] = None
            continue
        try:
            roles[role] = rel.column(col, "relation")
        except UnknownColumn:
            raise InvalidArgument("relation", f"model '{model}' reads column '{col}' (the {role}), which '{relation}' "
                                  f"lacks.{did_you_mean(col, rel.columns)}",
                                  f"Pass a relation with the columns it was trained on "
                                  f"({', '.join(c for c in seq.config['roles'].values() if c)}), e.g. a view that "
                                  "renames yours") from None
    as_of_us = _as_of_us(ctx, as_of)
    table, _, _ = read_events(ctx, rel, roles, as_of_us)
    if table.num_rows == 0:
        raise InvalidArgument("as_of" if as_of_us is not None else "relation",
                              f"'{relation}' has no events" + (f" on or before {_fmt(as_of_us / 1e6)}" if as_of_us is not None else ""),
                              "Pass a later as_of, or a relation with events" if as_of_us is not None else "Pass a relation with events")
    elog = event_log(table, roles, seq.event_types, seq.config["purchase_events"], seq.item_ids)
    cutoff = as_of_us / 1e6 if as_of_us is not None else float(elog.t.max())
    c = seq.config
    recent = float(c["recent_days"] or c["horizon_days"]) * sq.DAY
    lookback = None if c["lookback_days"] is None else float(c["lookback_days"]) * sq.DAY
    ex = sq.build_examples(elog, cutoff, int(c["max_len"]), seq.n_event_ids, recent, None, lookback)
    p = seq.predict_proba(ex)
    order = np.argsort(-p, kind="stable")
    return pa.table({"user": elog.user_ids.take(pa.array(ex.users[order])), "p_purchase": p[order],
                     "n_events": ex.n_events[order]})


# The model named 'next_purchase': ml_train with task 'sequence', its named options passed in params (params
# given by the caller win, as in ml_train).
sql_macro("train_next_purchase", "Trains the model named 'next_purchase', which predicts a purchase within horizon_days.",
          """FROM ml_train('next_purchase', relation, task := 'sequence', "user" := "user", "time" := "time", item := item,
    params := json_merge_patch(json_object('event', event, 'purchase_event', purchase_event,
        'horizon_days', horizon_days, 'as_of', as_of), coalesce(CAST(params AS JSON), '{}')))""",
          module="sequence", writes=True, args=[RelationArg()], options=[
              Option("user", Identifier()), Option("time", Identifier()), Option("event", Identifier()),
              Option("item", Identifier()), Option("purchase_event", Anything("an event type or a list of them")),
              Option("horizon_days", Anything("a whole number of days"), 14),
              Option("as_of", Anything("a date or timestamp")), Option("params", Struct())])
sql_macro("predict_next_purchase", "Each user's probability of a purchase, from the model named 'next_purchase'.",
          "FROM ml_predict_sequence('next_purchase', relation, as_of := as_of)", module="sequence",
          args=[RelationArg()], options=[Option("as_of", Anything("a date or timestamp"))])


@predictor(TASK)
def predict_sequence_row(stored_model, rows, output):
    m = stored_model.model
    roles = (stored_model.meta or {}).get("roles") or {}
    src = (stored_model.meta or {}).get("relation") or "events"
    raise InvalidArgument("model", f"model '{m}' is a sequence model: it scores a user from their whole event history, "
                          "not from one row", f"Score every user with: FROM ml_predict_sequence('{m}', '{src}') "
                          f"(a relation with columns {', '.join(c for c in roles.values() if c)})")
