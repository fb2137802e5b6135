"""ml_drift, ml_monitoring, ml_update, ml_retrain: keeping a supervised model right as the data moves.

``ml_drift(model, relation)`` compares a relation with the snapshot kept at training time (``skew``) and with the
previous check of the same version (``drift``): the rows are binned on the stored edges and counted per bin by
DuckDB in one scan on a second cursor (a linear model's predictions are computed in that same scan; other
models score the feature columns batch by batch), and the statistics come from the kernels in ``tasks.drift``.
Every check, update and retrain is appended to ``wml.monitoring``, which ``ml_monitoring(model)`` returns.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import quote_ident
from ..binding.registry import JSON, table_udf
from ..errors import InvalidArgument
from ..store import StoredModel, validate_model_name
from ..tasks import drift
from ..tasks import supervised as sv
from .supervised import SUPERVISED_TASKS, _label_array, _options, _prepared, linear_sql_for

log = logging.getLogger("warehouse_ml")

DRIFT_ROW = ("STRUCT(feature VARCHAR, kind VARCHAR, statistic VARCHAR, value DOUBLE, threshold DOUBLE, drifted BOOLEAN, "
             "n_rows BIGINT, reference VARCHAR, note VARCHAR, model VARCHAR, version INTEGER, check_id BIGINT, "
             "checked_at TIMESTAMP)")
MONITORING_ROW = ("STRUCT(check_id BIGINT, checked_at TIMESTAMP, model VARCHAR, version INTEGER, action VARCHAR, "
                  "relation VARCHAR, n_rows BIGINT, feature VARCHAR, kind VARCHAR, statistic VARCHAR, value DOUBLE, "
                  "threshold DOUBLE, drifted BOOLEAN, note VARCHAR)")
MONITORING_COLUMNS = [part.split(" ")[0] for part in MONITORING_ROW[len("STRUCT("):-1].split(", ")]
DRIFT_OPTIONS = {"threshold", "numeric", "categorical", "record"}
PREDICTION = "prediction"  # the feature name of the prediction distribution's row
SCORE_BATCH = 1_000_000


def _supervised(ctx, model: str, function: str) -> StoredModel:
    validate_model_name(model)
    sm = ctx.store.load(model)
    if sm.task not in SUPERVISED_TASKS:
        raise InvalidArgument("model", f"model '{model}' is a {sm.task} model; {function} checks supervised models",
                              "Pass a model trained with ml_train(..., label := ...)")
    return sm


def _statistic(opts: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = str(opts.get(key, allowed[0])).lower()
    if value not in allowed:
        raise InvalidArgument(key, f"unknown statistic {opts.get(key)!r}", f"Use one of: {', '.join(allowed)}")
    return value


# -- counting in SQL ----------------------------------------------------------------------------------------------
def _bin_sql(x: str, edges: list[float], lo: int = 0, hi: int | None = None) -> str:
    """Bin index of ``x`` over sorted ``edges`` as a binary tree of CASE expressions (log2 comparisons)."""
    hi = len(edges) if hi is None else hi
    if lo == hi:
        return str(lo)
    mid = (lo + hi) // 2
    return f"CASE WHEN {x} < {float(edges[mid])!r} THEN {_bin_sql(x, edges, lo, mid)} ELSE {_bin_sql(x, edges, mid + 1, hi)} END"


def _numeric_bin_sql(x: str, edges: list[float]) -> str:
    return f"CASE WHEN {x} IS NULL OR isnan({x}) THEN {len(edges) + 1} ELSE {_bin_sql(x, edges)} END"


def _category_bin_sql(x: str, param: int, n: int) -> str:
    # list_position is 1-based and NULL for a value outside the list: other -> n, NULL -> n + 1
    return f"CASE WHEN {x} IS NULL THEN {n + 1} ELSE coalesce(list_position(${param}, {x}) - 1, {n}) END"


def _to_counts(hist: dict | None, size: int) -> list[int]:
    counts = np.zeros(size, dtype=np.int64)
    for k, v in (hist or {}).items():
        counts[int(k)] = v
    return counts.tolist()


def count_bins(ctx, rel, sm: StoredModel, profile: dict, label: str | None) -> tuple[int, list[list[int]], dict]:
    """Rows, counts per stored bin of every feature, and the prediction's counts (plus the model's metric on
    labelled rows). Features (and a linear model's prediction) are counted by DuckDB in one scan."""
    specs = profile["features"]
    cols = [rel.column(p["name"], "relation") for p in specs]
    inner, outer, params = [], [], []
    for j, (p, c) in enumerate(zip(specs, cols)):
        if p["kind"] == "numeric":
            inner.append(f"TRY_CAST(r.{quote_ident(c)} AS DOUBLE) AS f{j}")
            outer.append(f"histogram({_numeric_bin_sql(f'f{j}', p['edges'])})")
        else:
            params.append(p["categories"])
            inner.append(f"CAST(r.{quote_ident(c)} AS VARCHAR) AS f{j}")
            outer.append(f"histogram({_category_bin_sql(f'f{j}', len(params), len(p['categories']))})")
    pred_profile = profile["prediction"]
    in_sql = linear_sql_for(sm, "r") if label is None else None
    if in_sql is not None:
        inner.append(f"{in_sql} AS prediction")
        outer.append(f"histogram({_numeric_bin_sql('prediction', pred_profile['edges'])})")
    query = f"SELECT count(*), {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {rel.sql} AS r)"
    row = ctx.cursor().execute(query, params).fetchall()[0]
    n_rows = int(row[0])
    counts = [_to_counts(h, len(p["counts"])) for h, p in zip(row[1:], specs)]
    if in_sql is not None:
        return n_rows, counts, {"counts": _to_counts(row[-1], len(pred_profile["counts"]))}
    return n_rows, counts, score_batches(ctx, rel, sm, cols, label)


def score_batches(ctx, rel, sm: StoredModel, cols: list[str], label: str | None) -> dict:
    """The prediction's counts over its stored bins, scoring the feature columns batch by batch; with a label,
    also the model's main metric on the rows that have one."""
    featurizer, scorer = _prepared(sm)
    edges = sm.meta["profile"]["prediction"]["edges"]
    names = list(dict.fromkeys(cols + ([label] if label else [])))
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    ys, scores, labels = [], [], []
    for batch in ctx.stream_arrow(f"SELECT {', '.join(rel.q(c) for c in names)} FROM {rel.sql}", SCORE_BATCH):
        table = pa.Table.from_batches([batch])
        X = featurizer.transform(table, sm.model)
        p = scorer(X)
        counts += drift.numeric_counts(p, edges)
        if label:
            keep = pc.is_valid(table.column(label)).to_numpy(zero_copy_only=False)
            ys.append(_label_array(table.column(label).filter(pa.array(keep))))
            scores.append(p[keep])
            if sm.task == "classification":
                labels.append(sv.predict_labels(sm.obj, X[keep], sm.task))
    out = {"counts": counts.tolist()}
    if label and ys:
        y = np.concatenate(ys)
        out["metric"] = drift.metric_value(sm.task, sm.metrics, y, np.concatenate(scores),
                                           np.concatenate(labels) if labels else None, sm.meta.get("classes"))
        out["labelled"] = int(len(y))
    return out


# -- ml_drift -----------------------------------------------------------------------------------------------------
@table_udf("wml_drift", args=["VARCHAR", "VARCHAR", JSON], returns=DRIFT_ROW)
def ml_drift(ctx, model, relation, options):
    return check(ctx, model, relation, options, "check")["rows"]


def check(ctx, model: str, relation: str, options: dict | None, action: str) -> dict:
    """One drift check: the rows of ml_drift, whether anything drifted or decayed, and the check's id."""
    sm = _supervised(ctx, model, "ml_drift")
    opts = _options(options, DRIFT_OPTIONS)
    limits = drift.thresholds(opts.get("threshold"))
    numeric = _statistic(opts, "numeric", drift.NUMERIC_STATISTICS)
    categorical = _statistic(opts, "categorical", drift.CATEGORICAL_STATISTICS)
    record = opts.get("record", True)
    if not isinstance(record, bool):
        raise InvalidArgument("record", f"expected true or false, got {record!r}", "Use record := false to skip the history")
    profile = sm.meta.get("profile")
    if not profile:
        raise InvalidArgument("model", f"version {sm.version} of '{model}' was trained before training snapshots were "
                              "kept, so there is nothing to compare with",
                              f"Retrain it (FROM ml_train('{model}', ...)) and check again")
    rel = ctx.relation(relation)
    lower = {c.lower(): c for c in rel.columns}
    label = lower.get((sm.label or "").lower())
    started = time.perf_counter()
    n_rows, counts, pred = count_bins(ctx, rel, sm, profile, label)
    log.info("%s: counted %s rows of %s in %.2fs", model, f"{n_rows:,}", relation, time.perf_counter() - started)
    previous = _previous_counts(ctx, model, sm.version)
    rows = []

    def add(spec: dict, current: list[int], statistic: str):
        threshold = limits[statistic]
        value, drifted = drift.compare(statistic, spec["counts"], current, threshold)
        rows.append({"feature": spec["name"], "kind": "skew", "statistic": statistic, "value": value,
                     "threshold": threshold, "drifted": drifted, "counts": current,
                     "reference": f"training of version {sm.version}",
                     "note": drift.largest_shift(spec, spec["counts"], current)})
        if spec["name"] in previous:
            check_id, before = previous[spec["name"]]
            value, drifted = drift.compare(statistic, before, current, threshold)
            rows.append({"feature": spec["name"], "kind": "drift", "statistic": statistic, "value": value,
                         "threshold": threshold, "drifted": drifted, "reference": f"check {check_id}",
                         "note": drift.largest_shift(spec, before, current)})

    for spec, current in zip(profile["features"], counts):
        add(spec, current, numeric if spec["kind"] == "numeric" else categorical)
    add(profile["prediction"], pred["counts"], numeric)
    decayed = False
    if "metric" in pred:
        name, higher, reference, current = pred["metric"]
        value = drift.relative_decay(name, higher, reference, current)
        decayed = bool(value > limits["decay"])
        rows.append({"feature": name, "kind": "decay", "statistic": f"relative_{'drop' if higher else 'rise'}",
                     "value": value, "threshold": limits["decay"], "drifted": decayed,
                     "reference": f"hold-out of version {sm.version}",
                     "note": f"{name} {reference:.4f} on the training hold-out, {current:.4f} on {pred['labelled']:,} "
                             f"labelled rows of '{relation}'"})
    elif label:
        rows.append({"feature": sm.label, "kind": "decay", "statistic": "relative_drop", "value": None,
                     "threshold": limits["decay"], "drifted": False, "note": "no row has a label to score"})
    check_id, checked_at = (None, None)
    if record:
        check_id, checked_at = ctx.store.append_monitoring(model, sm.version, action, rel.name, n_rows, rows)
    for r in rows:
        r.update(model=model, version=sm.version, n_rows=n_rows, check_id=check_id, checked_at=checked_at)
        r.pop("counts", None)
    drifted = [r["feature"] for r in rows if r["drifted"] and r["kind"] == "skew"]
    return {"rows": rows, "drifted": drifted, "decayed": decayed, "check_id": check_id, "sm": sm}


def _previous_counts(ctx, model: str, version: int) -> dict[str, tuple[int, list[int]]]:
    """feature -> (check id, counts) of the latest recorded check of this version (its skew rows)."""
    rows = ctx.store._query(
        """SELECT check_id, feature, counts FROM wml.monitoring
           WHERE model = $1 AND version = $2 AND kind = 'skew' AND counts IS NOT NULL
             AND check_id = (SELECT max(check_id) FROM wml.monitoring
                             WHERE model = $1 AND version = $2 AND kind = 'skew' AND counts IS NOT NULL)""",
        [model, version])
    return {f: (cid, list(c)) for cid, f, c in rows}


# -- ml_monitoring ------------------------------------------------------------------------------------------------
@table_udf("wml_monitoring", args=["VARCHAR"], returns=MONITORING_ROW)
def ml_monitoring(ctx, model):
    validate_model_name(model)
    rows = ctx.store._query(
        """SELECT check_id, checked_at, model, version, action, relation, n_rows, feature, kind, statistic, value,
                  threshold, drifted, note FROM wml.monitoring WHERE model = $1 ORDER BY check_id, kind DESC, feature""",
        [model])
    if not rows:
        ctx.store.versions(model)  # ModelNotFound (with suggestions) for a model that does not exist
    return [dict(zip(MONITORING_COLUMNS, r)) for r in rows]
