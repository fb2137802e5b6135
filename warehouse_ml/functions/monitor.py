"""ml_drift, ml_monitoring, ml_update, ml_retrain, save_forecast, forecast_accuracy: keeping models right.

``ml_drift(model, relation)`` compares a relation with the snapshot kept at training time (``skew``) and with the
previous check of the same version (``drift``): the rows are binned on the stored edges and counted per bin by
DuckDB in one scan on a second cursor (a linear model's predictions are computed in that same scan; other
models score the feature columns batch by batch), and the statistics come from the kernels in ``tasks.drift``.
Every check, update and retrain is appended to ``wml.monitoring``, which ``ml_monitoring(model)`` returns.
``save_forecast`` keeps forecast_demand's rows in ``wml.forecasts`` with their run time; ``forecast_accuracy``
compares them with the actuals that arrived since (MASE, bias, interval coverage), in SQL.
"""
from __future__ import annotations

import json
import logging
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import is_temporal_type, quote_ident
from ..binding.spec import (
    Anything, Arg, Boolean, Identifier, Interval, Option, RelationArg, StrOptions, Text, spec, sql_function,
)
from ..errors import InvalidArgument, did_you_mean
from ..store import StoredModel, validate_model_name
from ..tasks import drift
from ..tasks import supervised as sv
from ..tasks.features import Featurizer
from .base import TRAIN_ROW
from .forecast import forecast_demand
from .forecast_series import Roles, infer_roles
from .supervised import (DEPLOY, SUPERVISED_TASKS, _label_array, _prepared, labelled_rows, model_sql_for,
                         store_version, train_table)

log = logging.getLogger("warehouse_ml")

DRIFT_ROW = ("STRUCT(feature VARCHAR, kind VARCHAR, statistic VARCHAR, value DOUBLE, threshold DOUBLE, drifted BOOLEAN, "
             "n_rows BIGINT, reference VARCHAR, note VARCHAR, model VARCHAR, version INTEGER, check_id BIGINT, "
             "checked_at TIMESTAMP)")
MONITORING_ROW = ("STRUCT(check_id BIGINT, checked_at TIMESTAMP, model VARCHAR, version INTEGER, action VARCHAR, "
                  "relation VARCHAR, n_rows BIGINT, feature VARCHAR, kind VARCHAR, statistic VARCHAR, value DOUBLE, "
                  "threshold DOUBLE, drifted BOOLEAN, note VARCHAR)")
MONITORING_COLUMNS = [part.split(" ")[0] for part in MONITORING_ROW[len("STRUCT("):-1].split(", ")]
SCORE_BATCH = 1_000_000


def _supervised(ctx, model: str, function: str) -> StoredModel:
    validate_model_name(model)
    sm = ctx.store.load(model)
    if sm.task not in SUPERVISED_TASKS:
        raise InvalidArgument("model", f"model '{model}' is a {sm.task} model; {function} checks supervised models",
                              "Pass a model trained with ml_train(..., label := ...)")
    return sm




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


def _to_counts(hist: dict | None, size: int) -> list[int]:
    counts = np.zeros(size, dtype=np.int64)
    for k, v in (hist or {}).items():
        counts[int(k)] = v
    return counts.tolist()


def _category_counts(hist: dict | None, n_rows: int, spec: dict) -> list[int]:
    """A text column's histogram (value -> rows, NULLs not counted) folded onto the model's categories, then
    'other' and NULL. Counting the raw values is cheaper in DuckDB than matching each row against a list; the
    distinct values are hashed here when the model keeps a personal column's categories as digests."""
    hist = hist or {}
    if "hash_salt" in spec and hist:
        digests = drift.as_categories(pa.array(list(hist), pa.string()), spec).to_pylist()
        folded: dict[str, int] = {}
        for digest, n in zip(digests, hist.values()):
            folded[digest] = folded.get(digest, 0) + n
        hist = folded
    known = [int(hist.get(c, 0)) for c in spec["categories"]]
    present = int(sum(hist.values()))
    return known + [present - sum(known), n_rows - present]


def count_bins(ctx, rel, sm: StoredModel, profile: dict, label: str | None) -> tuple[int, list[list[int]], dict]:
    """Rows, counts per stored bin of every feature, and the prediction's counts (plus the model's metric on
    labelled rows). Features (and a linear model's prediction) are counted by DuckDB in one scan."""
    specs = profile["features"]
    cols = [rel.column(p["name"], "relation") for p in specs]
    inner, outer = [], []
    for j, (p, c) in enumerate(zip(specs, cols)):
        if p["kind"] == "numeric":
            inner.append(f"TRY_CAST(r.{quote_ident(c)} AS DOUBLE) AS f{j}")
            outer.append(f"histogram({_numeric_bin_sql(f'f{j}', p['edges'])})")
        else:
            inner.append(f"CAST(r.{quote_ident(c)} AS VARCHAR) AS f{j}")
            outer.append(f"histogram(f{j})")
    pred_profile = profile["prediction"]
    in_sql = model_sql_for(sm, "r") if label is None else None
    if in_sql is not None:
        inner.append(f"{in_sql} AS prediction")
        outer.append(f"histogram({_numeric_bin_sql('prediction', pred_profile['edges'])})")
    query = f"SELECT count(*), {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {rel.sql} AS r)"
    row = ctx.cursor().execute(query).fetchall()[0]
    n_rows = int(row[0])
    counts = [_to_counts(h, len(p["counts"])) if p["kind"] == "numeric" else _category_counts(h, n_rows, p)
              for h, p in zip(row[1:], specs)]
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
_THRESHOLD = Option("threshold", Anything("a number, or a struct naming some of psi, jensen_shannon, ks, chi_square "
                                          "and decay"))
_MODEL_RELATION = [Arg("model"), RelationArg()]


@sql_function(
    "ml_drift", "Each feature, the prediction and the model's metric on a relation compared with the training "
    "snapshot (skew) and the previous check (drift).", args=_MODEL_RELATION, returns=DRIFT_ROW, options=[
        _THRESHOLD,
        Option("numeric", StrOptions(drift.NUMERIC_STATISTICS, "statistic"), drift.NUMERIC_STATISTICS[0],
               fix=f"Use one of: {', '.join(drift.NUMERIC_STATISTICS)}"),
        Option("categorical", StrOptions(drift.CATEGORICAL_STATISTICS, "statistic"), drift.CATEGORICAL_STATISTICS[0],
               fix=f"Use one of: {', '.join(drift.CATEGORICAL_STATISTICS)}"),
        Option("record", Boolean(), True, fix="Use record := false to skip the history")])
def ml_drift(ctx, model, relation, **opts):
    return check(ctx, model, relation, opts, "check")["rows"]


def check(ctx, model: str, relation: str, opts: dict, action: str) -> dict:
    """One drift check (``opts``: ml_drift's, checked): the rows of ml_drift, whether anything drifted or decayed,
    and the check's id."""
    sm = _supervised(ctx, model, "ml_drift")
    limits = drift.thresholds(opts["threshold"])
    numeric, categorical, record = opts["numeric"], opts["categorical"], opts["record"]
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

    def add(feature: dict, current: list[int], statistic: str):
        threshold = limits[statistic]
        value, drifted = drift.compare(statistic, feature["counts"], current, threshold)
        rows.append({"feature": feature["name"], "kind": "skew", "statistic": statistic, "value": value,
                     "threshold": threshold, "drifted": drifted, "counts": current,
                     "reference": f"training of version {sm.version}",
                     "note": drift.largest_shift(feature, feature["counts"], current)})
        if feature["name"] in previous:
            check_id, before = previous[feature["name"]]
            value, drifted = drift.compare(statistic, before, current, threshold)
            rows.append({"feature": feature["name"], "kind": "drift", "statistic": statistic, "value": value,
                         "threshold": threshold, "drifted": drifted, "reference": f"check {check_id}",
                         "note": drift.largest_shift(feature, before, current)})

    for feature, current in zip(profile["features"], counts):
        add(feature, current, numeric if feature["kind"] == "numeric" else categorical)
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
        try:
            check_id, checked_at = ctx.store.append_monitoring(model, sm.version, action, rel.name, n_rows, rows)
        except duckdb.Error as e:
            if "read-only" not in str(e).lower():
                raise
            raise InvalidArgument("record", "the database is open read-only, so the check cannot be added to the "
                                  "monitoring history", "Pass record := false, or open the database for writing") from None
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
@sql_function("ml_monitoring", "The monitoring history of a model: every drift check, update and retrain.",
              args=[Arg("model")], returns=MONITORING_ROW)
def ml_monitoring(ctx, model):
    validate_model_name(model)
    rows = ctx.store._query(
        """SELECT check_id, checked_at, model, version, action, relation, n_rows, feature, kind, statistic, value,
                  threshold, drifted, note FROM wml.monitoring WHERE model = $1 ORDER BY check_id, kind DESC, feature""",
        [model])
    if not rows:
        ctx.store.versions(model)  # ModelNotFound (with suggestions) for a model that does not exist
    return [dict(zip(MONITORING_COLUMNS, r)) for r in rows]


# -- ml_update ----------------------------------------------------------------------------------------------------
_WINDOW = [Option("window", Anything("an interval, e.g. INTERVAL 180 DAY")),
           Option("time", Identifier(), doc="the DATE or TIMESTAMP column the window is counted on")]


def _windowed(ctx, rel, opts: dict) -> tuple[pa.Table, str]:
    """The relation's rows, or only those within ``window`` of its latest ``time`` (a rolling window)."""
    window, time_col = opts.get("window"), opts.get("time")
    if window is None:
        if time_col is not None:
            raise InvalidArgument("window", "is needed with time",
                                  f'Add "window" := INTERVAL 180 DAY (rows within 180 days of the latest {time_col})')
        return ctx.read_arrow(f"SELECT * FROM {rel.sql}"), "every row"
    if time_col is None:
        raise InvalidArgument("time", "is needed with window",
                              "Name the DATE or TIMESTAMP column, e.g. time := 'signup_date'")
    t = rel.column(time_col, "time")
    if not is_temporal_type(rel.columns[t]):
        raise InvalidArgument("time", f"column '{t}' has type {rel.columns[t]}, not DATE or TIMESTAMP",
                              "Name a DATE or TIMESTAMP column")
    try:
        table = ctx.read_arrow(f"SELECT * FROM {rel.sql} WHERE {rel.q(t)} > (SELECT max({rel.q(t)}) FROM {rel.sql}) - "
                               "CAST($1 AS INTERVAL)", [str(window)])
    except duckdb.ConversionException as e:
        raise InvalidArgument("window", f"{window!r} is not an interval ({str(e).splitlines()[0][:120]})",
                              'Use e.g. "window" := INTERVAL 180 DAY') from None
    return table, f"rows within {window} of the latest {t}"


@sql_function(
    "ml_update", "Updates the active version on new rows (more trees, more epochs, or a retrain with its settings) "
    "and deploys by policy.", args=_MODEL_RELATION, returns=TRAIN_ROW, writes=True, options=[
        *_WINDOW, DEPLOY,
        Option("trees", Interval(int, 1, 10_000), fix="Use e.g. trees := 50"),
        Option("epochs", Interval(int, 1, 10_000), fix="Use e.g. epochs := 5"),
        Option("test_size", Interval(float, 0, 1, closed="neither"), fix="Use e.g. test_size := 0.2")])
def ml_update(ctx, model, relation, **opts):
    sm = _supervised(ctx, model, "ml_update")
    policy = opts["deploy"]
    rel = ctx.relation(relation)
    label = rel.column(sm.label, "relation")
    started = time.perf_counter()
    table, rows_used = _windowed(ctx, rel, opts)
    stored = _stored_options(sm)
    test_size = opts["test_size"] if opts["test_size"] is not None else stored["test_size"]
    notes = [f"update of version {sm.version} on {rows_used} of '{relation}'"]
    method, row = "retrain", None
    if sm.algorithm in drift.UPDATABLE:
        try:
            row = _update_in_place(ctx, sm, relation, table, label, float(test_size), opts, policy, started, notes)
            method = drift.UPDATABLE[sm.algorithm]
        except ValueError as e:
            notes.append(f"{sm.algorithm} could not be updated in place ({e}): retrained instead")
    else:
        why = ("scikit-learn's histogram boosting re-bins new rows on a warm start and would score its earlier trees "
               "on the wrong bins" if sm.algorithm == "gbm" else f"{sm.algorithm} has no incremental update")
        notes.append(f"retrained with the settings of version {sm.version}: {why}")
    if row is None:
        options = {**stored, "algorithm": sm.algorithm, "test_size": float(test_size)}
        row = train_table(ctx, model, relation, table, label, sm.task, options, policy, started, notes,
                          {"updated_from": sm.version})
    _record_training(ctx, model, "update", method, relation, table.num_rows, row)
    return [row]


def _stored_options(sm: StoredModel) -> dict:
    """The training settings of a version (those of versions stored before they were kept: from its params)."""
    return sm.meta.get("train_options") or {"algorithm": sm.algorithm, "exclude": [], "test_size": 0.2,
                                            "params": {k: v for k, v in sm.params.items() if k != "class_weight"},
                                            "personal": "exclude"}


def _update_in_place(ctx, sm: StoredModel, relation: str, table: pa.Table, label: str, test_size: float, opts: dict,
                     policy, started, notes) -> dict:
    """Update the active model on the new rows (but their hold-out) and store it by the deploy policy."""
    n_rows = table.num_rows
    table, y, label_type, label_notes = labelled_rows(table, label, relation)
    featurizer = Featurizer.from_json(sm.features, sm.meta.get("excluded"))
    X = featurizer.transform(table, sm.model)
    train, holdout = sv.holdout_positions(y, sm.task, test_size)
    est, note = drift.update_estimator(sm.algorithm, sm.obj, X[train], y[train], opts.get("trees"), opts.get("epochs"))
    predict = sv.predict_fn(est, sm.task, sm.features)
    scores = predict(X[holdout]) if len(holdout) else np.array([])
    metrics = sv.evaluate(est, X[holdout], y[holdout], sm.task, scores=scores)
    fit = sv.FitResult(est, sm.algorithm, sm.task, sm.meta.get("classes"), metrics, [], [note], len(train),
                       len(holdout), sv.importance_sample(est, X[holdout], y[holdout], sm.task),
                       sv.baseline_row(X[train], featurizer.categorical_mask), sm.params, holdout_rows=holdout,
                       holdout_scores=scores)
    options = {**_stored_options(sm), "test_size": test_size}
    return store_version(ctx, sm.model, sm.task, label, label_type, featurizer, fit, table, y, policy, n_rows,
                         started, notes + label_notes + [note], options, {"updated_from": sm.version})


def _record_training(ctx, model: str, action: str, method: str, relation: str, n_rows: int, row: dict) -> None:
    """One monitoring row for an update or retrain: the new version's main metric and the deploy decision."""
    key = drift.primary_metric(row["task"], row["metrics"])
    name = key[0] if key else None
    ctx.store.append_monitoring(model, row["version"], action, relation, n_rows, [{
        "feature": name, "kind": action, "statistic": method, "value": row["metrics"].get(name) if name else None,
        "note": row["notes"][-1]}])


# -- ml_retrain ---------------------------------------------------------------------------------------------------
RETRAIN_ROW = ("STRUCT(model VARCHAR, retrained BOOLEAN, reason VARCHAR, version INTEGER, active_version INTEGER, "
               "metrics MAP(VARCHAR, DOUBLE), check_id BIGINT, notes VARCHAR[])")
RETRAIN_WHEN = ("drift", "decay", "always")


@sql_function(
    "ml_retrain", "Checks drift first (recorded) and retrains with the active version's settings only when the "
    "condition says so.", args=_MODEL_RELATION, returns=RETRAIN_ROW, writes=True, options=[
        Option("when", StrOptions(RETRAIN_WHEN, "condition"), "drift", fix=f"Use one of: {', '.join(RETRAIN_WHEN)}"),
        _THRESHOLD, DEPLOY, *_WINDOW])
def ml_retrain(ctx, model, relation, **opts):
    sm = _supervised(ctx, model, "ml_retrain")
    when, policy = opts["when"], opts["deploy"]
    result = check(ctx, model, relation, spec("ml_drift").parse_options({"threshold": opts["threshold"]}), "check")
    if when == "always":
        reason = "when := 'always'"
    elif result["decayed"]:
        reason = "the model's metric decayed past the threshold"
    elif when == "drift" and result["drifted"]:
        reason = f"drift past the threshold in {', '.join(result['drifted'])}"
    else:
        reason = None
    out = {"model": model, "check_id": result["check_id"], "active_version": sm.version}
    if reason is None:
        wanted = "decay" if when == "decay" else "drift or decay"
        ctx.store.append_monitoring(model, sm.version, "retrain", relation, None, [{
            "kind": "retrain", "statistic": "skipped", "note": f"no {wanted} past the threshold (check {result['check_id']})"}])
        return [{**out, "retrained": False, "reason": f"no {wanted} past the threshold", "version": None,
                 "metrics": {}, "notes": []}]
    rel = ctx.relation(relation)
    table, rows_used = _windowed(ctx, rel, opts)
    options = _stored_options(sm)
    started = time.perf_counter()
    row = train_table(ctx, model, relation, table, rel.column(sm.label, "relation"), sm.task, options, policy, started,
                      [f"retrained on {rows_used} of '{relation}' because {reason}"], {"retrained_from": sm.version})
    _record_training(ctx, model, "retrain", "retrain", relation, table.num_rows, row)
    active = ctx.store.active_version(model)
    return [{**out, "retrained": True, "reason": reason, "version": row["version"], "active_version": active,
             "metrics": row["metrics"], "notes": row["notes"]}]


# -- forecast accuracy ---------------------------------------------------------------------------------------------
SAVED_ROW = ("STRUCT(name VARCHAR, run_at TIMESTAMP, item VARCHAR, date DATE, forecast DOUBLE, lower DOUBLE, "
             "upper DOUBLE, method VARCHAR)")
ACCURACY_ROW = ("STRUCT(name VARCHAR, run_at TIMESTAMP, scope VARCHAR, item VARCHAR, n_forecast BIGINT, "
                "n_actuals BIGINT, mae DOUBLE, bias DOUBLE, mase DOUBLE, coverage DOUBLE, level DOUBLE, "
                "last_actual DATE)")


@sql_function(
    "save_forecast", "forecast_demand whose rows are also kept (wml.forecasts) under a name with their run time.",
    args=[RelationArg(), Arg("horizon", "BIGINT")], returns=SAVED_ROW, writes=True, options=[
        Option("item", Identifier()), Option("date", Identifier()), Option("value", Identifier()),
        Option("method", Text(nonempty=True), "auto"), Option("level", Anything("a probability"), 0.95),
        Option("name", Text(nonempty=True), fix="Use e.g. name := 'sales'", doc="default: the relation's name")])
def save_forecast(ctx, relation, horizon, **opts):
    """forecast_demand, kept in ``wml.forecasts`` with its run time and each item's in-sample seasonal-naive
    error (the MASE scale), so forecast_accuracy can compare it with the actuals that arrive later."""
    name = opts.pop("name") or relation
    rel = ctx.relation(relation)
    roles = infer_roles(rel, opts["item"], opts["date"], opts["value"])
    opts.update(item=roles.item, date=roles.date, value=roles.value)
    opts = spec("forecast_demand").parse_options(opts)  # checked like forecast_demand's own call
    table = forecast_demand(ctx, relation, horizon, **opts)
    level = opts["level"]
    history = _series_sql(rel, roles)
    # seasonal naive (lag 7 for daily data, else the previous period) on each item's history: the MASE scale
    lag = 7 if table.num_rows < 2 or _is_daily(table) else 1
    scale = ctx.read_arrow(f"""SELECT item, avg(abs(v - prev)) AS scale FROM (
        SELECT item, v, lag(v, {lag}) OVER (PARTITION BY item ORDER BY d) AS prev FROM ({history})) GROUP BY item""")
    ctx.store.ensure_schema()
    cur = ctx.runtime.con.cursor()
    try:
        cur.register("wml_new_forecast", table)
        cur.register("wml_new_scale", scale)
        run_at = cur.execute("""INSERT INTO wml.forecasts SELECT $1, now()::TIMESTAMP, $2, $3, f.item, f.date, f.forecast,
                   f.lower, f.upper, $4, f.method, s.scale FROM wml_new_forecast f
                   LEFT JOIN wml_new_scale s ON f.item IS NOT DISTINCT FROM s.item RETURNING run_at""",
                                [name, _schema_qualified(rel), json.dumps(vars(roles)), level]).fetchall()
    finally:
        cur.close()
    stamp = run_at[0][0] if run_at else None
    return table.append_column("name", pa.array([name] * table.num_rows, pa.string())).append_column(
        "run_at", pa.array([stamp] * table.num_rows, pa.timestamp("us")))


def _schema_qualified(rel) -> str:
    """schema.table, quoted: stays valid when the database file is attached under another name."""
    return f"{quote_ident(rel.schema)}.{quote_ident(rel.table)}"


def _series_sql(rel, roles) -> str:
    item = f"CAST({rel.q(roles.item)} AS VARCHAR)" if roles.item else "CAST(NULL AS VARCHAR)"
    return (f"SELECT {item} AS item, CAST({rel.q(roles.date)} AS DATE) AS d, sum(CAST({rel.q(roles.value)} AS DOUBLE)) "
            f"AS v FROM {rel.sql} WHERE {rel.q(roles.date)} IS NOT NULL GROUP BY 1, 2")


def _is_daily(table: pa.Table) -> bool:
    days = np.unique(table.column("date").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False))
    return len(days) < 2 or int(np.min(np.diff(days))) == 1


@sql_function("forecast_accuracy", "Every saved forecast run scored against the actuals now in its relation (MAE, "
              "bias, MASE, coverage), per item and overall.", args=[Arg("name")], returns=ACCURACY_ROW)
def forecast_accuracy(ctx, name):
    """Every saved run of ``name`` against the actuals now in its relation: per item and overall (scope)."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name", f"expected the name forecasts were saved under, got {name!r}",
                              "Use the relation's name, or the name := given to save_forecast")
    runs = ctx.store._query("SELECT DISTINCT relation, roles FROM wml.forecasts WHERE name = $1", [name])
    if not runs:
        saved = ctx.store.forecast_names()
        raise InvalidArgument("name", f"no forecasts are saved under '{name}'.{did_you_mean(name, saved)}",
                              f"Save some first: FROM save_forecast('{name}', 28)")
    out = []
    for relation, roles in runs:
        rel = ctx.relation(relation)  # re-resolved: the stored name is the catalog's quoted spelling
        r = json.loads(roles)
        roles = Roles(r["item"] and rel.column(r["item"], "item"), rel.column(r["date"], "date"), rel.column(r["value"], "value"))
        out.extend(_accuracy_rows(ctx, name, relation, rel, roles))
    return out


def _accuracy_rows(ctx, name: str, relation: str, rel, roles) -> list[dict]:
    # dates up to the latest actual count; a missing (item, date) before it sold nothing (as forecast_demand fills gaps)
    rows = ctx.read_arrow(f"""
        WITH a AS ({_series_sql(rel, roles)}), latest AS (SELECT max(d) AS last FROM a),
        f AS (SELECT * FROM wml.forecasts WHERE name = $1 AND relation = $2),
        scored AS (SELECT f.run_at, f.item, f.forecast, f.lower, f.upper, f.level, f.scale, f.date,
                          CASE WHEN f.date <= latest.last THEN coalesce(a.v, 0) END AS actual
                   FROM f CROSS JOIN latest LEFT JOIN a ON f.item IS NOT DISTINCT FROM a.item AND f.date = a.d)
        SELECT run_at, CASE WHEN grouping(item) = 1 THEN 'overall' ELSE 'item' END AS scope,
               CASE WHEN grouping(item) = 1 THEN NULL ELSE item END AS item, count(*) AS n_forecast,
               count(actual) AS n_actuals, avg(abs(forecast - actual)) AS mae, avg(forecast - actual) AS bias,
               avg(abs(forecast - actual) / nullif(scale, 0)) AS mase,
               avg(CASE WHEN actual IS NULL THEN NULL ELSE (actual BETWEEN lower AND upper)::INTEGER END) AS coverage,
               any_value(level) AS level, (SELECT last FROM latest) AS last_actual
        FROM scored GROUP BY GROUPING SETS ((run_at, item), (run_at))
        ORDER BY run_at, grouping(item), item""", [name, relation])
    return [{"name": name, **r} for r in rows.to_pylist()]
