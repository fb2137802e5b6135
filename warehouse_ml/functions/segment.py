"""segment_users, segment_profiles and the 'segment' task of ml_train / ml_predict.

``FROM segment_users('uf', k := 'auto', model := 'segments')`` fits k-means on the relation's behavioural
columns (numeric and boolean; ID-like and label-like columns and the user column are left out and reported),
stores it as model ``segments`` (a new version each call, made active unless ``deploy := 'never'``), and
returns every row's user, segment and distance to its segment's centre, with the model, version and notes
saying what was trained. ``ml_predict('segments', u)`` assigns new users with the stored model; ``segment_profiles``
describes each segment of a relation under the stored model (fitting one first if none exists).
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import is_numeric_type
from ..binding.spec import (
    Anything, Identifier, Identifiers, Interval, OneOf, Option, RelationArg, StrOptions, Text, spec,
    sql_function,
)
from ..errors import InvalidArgument, ModelNotFound, TrainingFailed
from ..store import dumps_arrays, validate_model_name
from ..tasks import segment as sg
from ..tasks import roles
from ..tasks.roles import looks_like_id, looks_like_label
from .base import predictor, trainer

SEGMENT_ROW = ("STRUCT(\"user\" VARCHAR, segment INTEGER, distance DOUBLE, model VARCHAR, version INTEGER, "
               "active BOOLEAN, notes VARCHAR)")
PROFILE_ROW = ("STRUCT(segment INTEGER, n BIGINT, share DOUBLE, description VARCHAR, "
               "feature_means MAP(VARCHAR, DOUBLE), feature_z MAP(VARCHAR, DOUBLE), model VARCHAR, version INTEGER, "
               "notes VARCHAR, intervals MAP(VARCHAR, DOUBLE[]), epsilon DOUBLE)")


def _fit_options(k_default):
    """The options of fitting segments, shared by segment_users and segment_profiles (which refits only when k or
    features is given, so its k has no default)."""
    return [
        Option("k", OneOf(StrOptions({"auto"}), Interval(int, 2, 50)), k_default,
               fix="Pass e.g. k := 4, or k := 'auto' to choose by silhouette"),
        Option("model", Text(nonempty=True), "segments"),
        Option("user", Identifier()),
        Option("features", Identifiers(), fix="Pass e.g. features := ['col_a', 'col_b']"),
        Option("exclude", Identifiers(nonempty=False), fix="Pass e.g. exclude := ['col_a', 'col_b']"),
        Option("max_k", Interval(int, 2, 50), 8),
        Option("seed", Interval(int), 0),
        Option("deploy", StrOptions({"always", "never"}), "always",
               fix="deploy := 'never' stores the new version without making it the active one"),
    ]


def _is_feature_type(t: str) -> bool:
    return is_numeric_type(t) or t.upper() == "BOOLEAN"


def user_column(rel, opts: dict) -> str | None:
    """The user column: user := ..., else the one user-like name, else the one '..._id' column (None: none)."""
    if opts.get("user") is not None:
        return rel.column(opts["user"], "user")
    named = [c for c in rel.columns if roles.USER.match(c)]
    if len(named) == 1:
        return named[0]
    ids = [c for c in rel.columns if re.search(r"(^|_)id$", c, re.IGNORECASE)]
    return ids[0] if len(ids) == 1 else None


def choose_columns(ctx, rel, opts: dict) -> tuple[str | None, list[str], list[str]]:
    """(user column, feature columns, notes). Features are the numeric/boolean columns that are not ID-like."""
    notes: list[str] = []
    exclude = {rel.column(c, "exclude") for c in opts.get("exclude") or []}
    numeric = [c for c, t in rel.columns.items() if _is_feature_type(t)]
    stats = {}
    if numeric:
        parts = ", ".join(f"count({rel.q(c)}), count(DISTINCT {rel.q(c)})" for c in numeric)
        row = ctx.read_arrow(f"SELECT {parts} FROM {rel.sql}").to_pylist()[0]
        vals = list(row.values())
        stats = {c: (vals[2 * i], vals[2 * i + 1]) for i, c in enumerate(numeric)}
    user = user_column(rel, opts)
    if opts.get("user") is None:
        notes.append(f"user column: '{user}' (name it with user := ...)" if user is not None else
                     "no user column found; user is the row number (name it with user := ...)")
    if opts.get("features") is not None:
        features = [rel.column(c, "features") for c in opts["features"]]
        bad = [c for c in features if not _is_feature_type(rel.columns[c])]
        if bad:
            raise InvalidArgument("features", f"column(s) {bad} are not numeric",
                                  "Segment on numeric behaviour (counts, amounts, days, shares); encode categories first")
    else:
        features = []
        for c in numeric:
            if c == user or c in exclude:
                continue
            non_null, distinct = stats[c]
            t = rel.columns[c].upper()
            arrow_t = pa.int64() if re.match(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?)$", t) else pa.float64()
            if looks_like_id(c, arrow_t, distinct, non_null) or roles.ID.search(c):
                notes.append(f"ID-like column '{c}' excluded")
                continue
            if distinct <= 1:
                notes.append(f"constant column '{c}' excluded")
                continue
            if looks_like_label(c):
                notes.append(f"label-like column '{c}' excluded (an outcome, not a behaviour; name it in "
                             "features := [...] to segment on it)")
                continue
            features.append(c)
    skipped = [c for c, t in rel.columns.items() if not _is_feature_type(t) and c != user]
    if skipped and opts.get("features") is None:
        notes.append("non-numeric column(s) not used: " + ", ".join(f"'{c}'" for c in skipped))
    if not features:
        raise InvalidArgument("relation", f"'{rel.name}' has no numeric behavioural columns to segment on",
                              "Build per-user features first, e.g. FROM user_features('orders'), or name them with features := [...]")
    return user, features, notes


def _read(ctx, rel, user: str | None, features: list[str]) -> tuple[pa.Array, np.ndarray]:
    cols = [f"CAST({rel.q(c)} AS DOUBLE) AS {rel.q(c)}" for c in features]
    ucol = f"CAST({rel.q(user)} AS VARCHAR)" if user else "CAST(row_number() OVER () AS VARCHAR)"
    batches = list(ctx.stream_arrow(f"SELECT {ucol} AS __user, {', '.join(cols)} FROM {rel.sql}"))
    if not batches or sum(b.num_rows for b in batches) == 0:
        return pa.array([], pa.string()), np.zeros((0, len(features)))
    table = pa.Table.from_batches(batches)
    X = np.column_stack([pc.fill_null(table.column(c), np.nan).to_numpy() for c in features]).astype(float)
    return table.column("__user").combine_chunks(), _infinite_as_missing(X)


def _infinite_as_missing(X: np.ndarray) -> np.ndarray:
    """The numeric policy: +-inf is a missing value like NULL and NaN (filled with the feature mean)."""
    return np.where(np.isinf(X), np.nan, X)


def fit_and_store(ctx, model: str, relation: str, opts: dict):
    """Fit k-means on the relation with options checked by segment_users' spec, store it, return what was done."""
    validate_model_name(model)
    k, max_k, seed, deploy = opts["k"] or "auto", opts["max_k"], opts["seed"], opts["deploy"]
    started = time.perf_counter()
    rel = ctx.relation(relation)
    user, features, notes = choose_columns(ctx, rel, opts)
    users, X = _read(ctx, rel, user, features)
    n_all = len(X)
    usable = ~np.all(np.isnan(X), axis=1)
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} rows with every feature NULL assigned by the feature means")
    n_need = 3 if k == "auto" else k + 1
    if usable.sum() < n_need:
        raise TrainingFailed(f"relation '{relation}' has {int(usable.sum())} rows with features; segmenting into "
                             f"{'2 or more' if k == 'auto' else k} segments needs at least {n_need}")
    nulls = int(np.isnan(X[usable]).sum())
    if nulls:
        notes.append(f"{nulls} missing (NULL, NaN or infinite) feature values filled with the feature mean")
    m = sg.fit_segments(X[usable], features, k=k, max_k=max_k, seed=seed)
    if m.log_mask.any():
        notes.append("log-transformed (skewed): " + ", ".join(f"'{c}'" for c, b in zip(features, m.log_mask) if b))
    if k == "auto":
        notes.append(f"k = {m.k} chosen by silhouette ({m.silhouette:.3f}) among k = "
                     f"{min(m.scores)}..{max(m.scores)}")
    seg, dist = m.assign(X)
    prof = sg.profiles(m, X, seg)
    seconds = time.perf_counter() - started
    fmt, blob = dumps_arrays(m.to_arrays())
    metrics = {"silhouette": m.silhouette, "k": m.k, "inertia": m.inertia}
    version = ctx.store.save(
        model, task="segment", algorithm="kmeans", fmt=fmt, artifact=blob, label=None,
        features=[{"name": c, "type": rel.columns[c]} for c in features], metrics=metrics,
        params={"k": k, "max_k": max_k, "seed": seed},
        meta={"relation": relation, "user": user, "notes": notes,
              "descriptions": [p["description"] for p in prof]},
        n_rows=n_all, n_train=n_all, n_test=0, seconds=seconds, activate=deploy == "always")
    notes.insert(0, f"trained k-means on {', '.join(features)} and stored it as model '{model}' version {version}"
                 + (", now the active version" if deploy == "always" else
                    f", not made active (deploy := 'never'; activate it with FROM ml_deploy('{model}', {version}))"))
    return dict(active=deploy == "always", model=model, m=m, users=users, X=X, seg=seg, dist=dist, prof=prof, version=version, notes=notes,
                seconds=seconds, metrics=metrics, features=features)


@trainer("segment")
def train_segments(ctx, model, relation, options):
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    if opts.get("label"):
        raise InvalidArgument("label", "segments are unsupervised and take no label",
                              f"Drop label, e.g. FROM ml_train('{model}', '{relation}', task := 'segment', k := 'auto')")
    if opts.get("algorithm", "auto") not in ("auto", "kmeans"):
        raise InvalidArgument("algorithm", f"segments are fitted with k-means, not {opts['algorithm']!r}",
                              "Leave algorithm out or pass algorithm := 'kmeans'")
    for key in ("label", "algorithm", "test_size"):  # ml_train's defaults, meaningless here
        opts.pop(key, None)
    r = fit_and_store(ctx, model, relation, spec("segment_users").parse_options(opts))
    # a one-row list: ml_train hands the trainer's result straight to the LIST(STRUCT) conversion
    return [dict(model=model, version=r["version"], task="segment", algorithm="kmeans", n_train=len(r["X"]), n_test=0,
                metrics={k: float(v) for k, v in r["metrics"].items()}, trained_at=datetime.now(timezone.utc).replace(tzinfo=None),
                seconds=r["seconds"],
                candidates=[dict(algorithm=f"kmeans k={kk}", cv_score=v if np.isfinite(v) else None, metric="silhouette")
                            for kk, v in sorted(r["m"].scores.items())],
                notes=r["notes"])]


def _user_type(ctx, relation, **opts) -> dict[str, str]:
    rel = ctx.relation(relation)
    user = user_column(rel, opts)
    return {"user": rel.columns[user] if user else "BIGINT"}  # without a user column: the row number


@sql_function(
    "segment_users", "Fits k-means on behavioural columns, stores it as a model and returns each user's segment.",
    args=[RelationArg()], options=_fit_options("auto"), returns=SEGMENT_ROW, writes=True, key_types=_user_type)
def segment_users(ctx, relation, **opts):
    r = fit_and_store(ctx, opts["model"], relation, opts)
    n = len(r["seg"])
    return pa.table({"user": r["users"], "segment": pa.array(r["seg"], pa.int32()),
                     "distance": pa.array(r["dist"], pa.float64()), "model": pa.array([r["model"]] * n, pa.string()),
                     "version": pa.array([r["version"]] * n, pa.int32()), "active": pa.array([r["active"]] * n),
                     "notes": pa.array(["; ".join(r["notes"])] * n, pa.string())})


def _load_segment_model(ctx, model: str):
    sm = ctx.store.load(model)
    if sm.task != "segment":
        raise InvalidArgument("model", f"model '{model}' is a {sm.task} model, not a segmentation",
                              "Pass the name given to segment_users (default 'segments')")
    return sm, sg.SegmentModel.from_arrays(sm.obj)


@sql_function(
    "segment_profiles", "Describes each segment of a relation under the stored segment model (fitting one if none "
    "exists).", args=[RelationArg()], returns=PROFILE_ROW,
    options=_fit_options(None) + [Option("epsilon", Anything("a positive privacy budget")),
                                  Option("bounds", Anything("a struct of [lower, upper] per feature"))])
def segment_profiles(ctx, relation, **opts):
    model = validate_model_name(opts["model"])
    if opts["epsilon"] is not None:
        from .privacy import private_profiles

        return private_profiles(ctx, relation, model, opts, _load_segment_model, _read)
    refit = opts.get("k") is not None or opts.get("features") is not None
    if not refit:
        try:
            sm, m = _load_segment_model(ctx, model)
        except ModelNotFound:
            refit = True
    if refit:
        r = fit_and_store(ctx, model, relation, opts)
        prof, version, notes = r["prof"], r["version"], r["notes"]
    else:
        rel = ctx.relation(relation)
        missing = [c for c in m.names if c not in rel.columns and c.lower() not in {x.lower() for x in rel.columns}]
        if missing:
            raise InvalidArgument("relation", f"'{relation}' lacks column(s) {missing} that model '{model}' segments on",
                                  f"Profile a relation with those columns, or refit with FROM segment_users('{relation}', model := '{model}')")
        user = sm.meta.get("user")
        user = rel.column(user) if user and (user in rel.columns or user.lower() in {x.lower() for x in rel.columns}) else None
        _, X = _read(ctx, rel, user, [rel.column(c) for c in m.names])
        seg, _ = m.assign(X)
        prof, version = sg.profiles(m, X, seg), sm.version
        notes = [f"segments of model '{model}' version {version}"]
    text = "; ".join(notes) or None
    return [dict(p, model=model, version=version, notes=text) for p in prof]


def _struct_columns(rows: pa.StructArray, names: list[str], model: str) -> np.ndarray:
    fields = {rows.type.field(i).name: i for i in range(rows.type.num_fields)}
    lower = {n.lower(): i for n, i in fields.items()}
    cols = []
    for name in names:
        i = fields.get(name, lower.get(name.lower()))
        if i is None:
            raise InvalidArgument("row", f"the row has no column '{name}', which model '{model}' segments on",
                                  f"Pass rows with the model's features: {', '.join(names)}")
        arr = rows.field(i)
        if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)
                or pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
            raise InvalidArgument("row", f"column '{name}' is {arr.type}, not numeric", "Pass the numeric feature columns")
        cols.append(pc.fill_null(pc.cast(arr, pa.float64()), np.nan).to_numpy(zero_copy_only=False))
    return _infinite_as_missing(np.column_stack(cols)) if cols else np.zeros((len(rows), 0))


@predictor("segment")
def predict_segment(stored_model, rows: pa.StructArray, output: str = "value") -> pa.Array:
    """Segment number (1..k) of each row: DOUBLE for ml_predict, text for ml_predict_label; NULL for a NULL row."""
    m = sg.SegmentModel.from_arrays(stored_model.obj)
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    X = _struct_columns(rows, m.names, stored_model.model)
    seg, _ = m.assign(X)
    valid = pc.is_valid(rows).to_numpy(zero_copy_only=False)
    if output == "label":
        return pa.array(seg.astype(str), pa.string(), mask=~valid)
    return pa.array(seg.astype(float), pa.float64(), mask=~valid)
