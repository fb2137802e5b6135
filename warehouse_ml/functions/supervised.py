"""ml_train, ml_predict, ml_predict_label, ml_evaluate, ml_explain, ml_explain_row: supervised models in SQL.

Training reads the relation in Arrow batches through a second cursor, fits with the pure kernels in
``tasks.supervised``, and writes one new version through the store only after everything succeeded.
Prediction receives whole rows as an Arrow struct column (``ml_predict('churn', u) FROM uf u``), matches
features by name and scores the whole batch at once.
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.registry import scalar_udf
from ..binding.spec import (
    Anything, Arg, Identifier, Identifiers, Interval, Option, RelationArg, StrOptions, Struct, Text,
    sql_function, sql_macro,
)
from ..errors import InvalidArgument, ModelNotFound, TrainingFailed, WmlError
from ..store import StoredModel, dumps_estimator, dumps_keras, validate_model_name
from ..tasks import drift
from ..tasks import supervised as sv
from ..tasks.batches import BatchEncoder
from ..tasks.compiled import MAX_SQL_TREE_NODES, hashes_categories, linear_form, linear_sql, sql_tree, tree_sql
from ..tasks.estimators import ALGORITHMS
from ..tasks.features import Featurizer, nonfinite_as_null, split_groups
from ..tasks.roles import looks_like_id
from .base import PREDICTORS, TRAIN_ROW, TRAINERS
from .privacy import personal_plan

log = logging.getLogger("warehouse_ml")

SUPERVISED_TASKS = ("classification", "regression")
SUPERVISED_OPTIONS = ("label", "task", "algorithm", "exclude", "test_size", "params", "personal", "deploy", "shortcut")
BINARY_SHORTCUTS = ("train_churn", "train_conversion", "train_ctr")  # macros whose label must be yes/no
PREDICTION_PROFILE_ROWS = 20_000  # hold-out rows scored for the snapshot of the prediction distribution
IMPORTANCE_SAMPLE = "importance_sample"  # meta: the hold-out rows ml_explain's importances come from, until computed


DEPLOY = Option("deploy", StrOptions(drift.DEPLOY_POLICIES, "policy"), "if_better",
                fix=f"Use one of: {', '.join(drift.DEPLOY_POLICIES)}",
                doc="'if_better' activates a new version only when it scores at least as well as the active one on "
                    "the new hold-out; 'always' activates it; 'never' only stores it")
PARAMS = Option("params", Struct(), fix="Use e.g. params := {max_iter: 300}")
TEST_SIZE = Option("test_size", Interval(float, 0, 1, closed="left"), 0.2, fix="Use e.g. test_size := 0.2")


@sql_function(
    "ml_train", "Trains a model on a relation and stores it as a new version: supervised (label := ...) or another "
    "task (recommend, segment, sequence).", args=[Arg("model"), RelationArg()], returns=TRAIN_ROW, writes=True,
    options=[
        Option("label", Identifier()), Option("task", Text(nonempty=True), "auto"),
        Option("algorithm", Text(nonempty=True), "auto"), Option("exclude", Identifiers(nonempty=False)),
        TEST_SIZE, PARAMS, Option("user", Identifier()), Option("item", Identifier()),
        Option("weight", Identifier()), Option("time", Identifier()), Option("method", Text(nonempty=True)),
        Option("k", Anything("a number of segments or recommendations")),
        Option("personal", Anything("'exclude', 'hash' or 'keep'")), DEPLOY,
        Option("shortcut", Text(), doc="the macro that called ml_train (its label must be yes/no)")])
def ml_train(ctx, model, relation, **opts):
    validate_model_name(model)
    task = opts["task"].lower()
    policy = opts["deploy"]
    if task in TRAINERS:
        if policy == "never":
            raise InvalidArgument("deploy", f"'never' applies to supervised models; a {task} model is active once trained",
                                  "Leave deploy out, or go back afterwards with FROM ml_rollback(model)")
        row = TRAINERS[task](ctx, model, relation, {k: v for k, v in opts.items()
                                                    if k not in ("task", "deploy") and v is not None})
        return [row] if isinstance(row, dict) else row
    other = sorted(k for k, v in opts.items() if k not in SUPERVISED_OPTIONS and v is not None)
    if other:
        raise InvalidArgument(other[0], "is not an option of this function", f"Use: {', '.join(sorted(SUPERVISED_OPTIONS))}")
    if task not in ("auto",) + SUPERVISED_TASKS:
        raise InvalidArgument("task", f"unknown task '{task}'",
                              f"Use one of: auto, classification, regression, {', '.join(sorted(TRAINERS))}")
    rel = ctx.relation(relation)
    if opts["label"] is None:
        raise InvalidArgument("label", "is required to train a supervised model",
                              f"Name the column to predict, e.g. FROM ml_train('{model}', '{relation}', label := 'churned')")
    label = rel.column(opts["label"], "label")
    exclude = opts["exclude"] or []
    for c in exclude:
        rel.column(c, "exclude")
    algorithm = opts["algorithm"].lower()
    if algorithm not in ALGORITHMS:
        raise InvalidArgument("algorithm", f"unknown algorithm '{algorithm}'", f"Use one of: {', '.join(ALGORITHMS)}")
    test_size, params = opts["test_size"], opts["params"] or {}

    started = time.perf_counter()
    table = read_relation(ctx, rel)
    log.info("%s: read %s rows from %s in %.2fs", model, f"{table.num_rows:,}", relation, time.perf_counter() - started)
    options = {"algorithm": algorithm, "exclude": exclude, "test_size": float(test_size), "params": params,
               "personal": opts["personal"] or "exclude", "shortcut": opts["shortcut"]}
    return [train_table(ctx, model, relation, table, label, task, options, policy, started)]


def train_table(ctx, model: str, relation: str, table: pa.Table, label: str, task: str, options: dict, policy: str,
                started: float, notes: list[str] = (), extra_meta: dict | None = None) -> dict:
    """Fit on a table already read (``options``: algorithm, exclude, test_size, params, all validated) and store
    the version by the deploy policy; returns ml_train's row."""
    n_rows = table.num_rows
    table, y, label_type, label_notes = labelled_rows(table, label, relation)
    _check_binary_for_shortcut(options.get("shortcut"), model, relation, label, y)
    is_text = pa.types.is_string(label_type) or pa.types.is_large_string(label_type)
    if task == "auto":
        task = sv.infer_task(y, is_text)
    elif task == "regression" and (is_text or pa.types.is_boolean(label_type)):
        raise InvalidArgument("task", f"regression needs a numeric label, and '{label}' is {label_type}",
                              "Use task := 'classification'")
    # The row groups and the hold-out split are found on a second thread while the features are made (Arrow and
    # NumPy release the GIL, so the two share both cores).
    with ThreadPoolExecutor(1) as pool:
        holdout = pool.submit(_groups_and_split, table, y, task, options["test_size"])
        personal = personal_plan(table, label, options["exclude"], options.get("personal", "exclude"))
        featurizer = Featurizer.fit(table, label, list(options["exclude"]) + personal.excluded, hashed=personal.hashed)
        personal.explain(featurizer)
        matrix = [featurizer.transform(table, model)]  # in a list, so that fit_supervised gets its only reference
        groups, group_notes, split = holdout.result()
    log.info("training %s on %s rows x %s features", model, len(y), matrix[0].shape[1])
    fit = sv.fit_supervised(matrix.pop(), y, task=task, algorithm=options["algorithm"],
                            categorical=featurizer.categorical_mask, test_size=options["test_size"],
                            params=options["params"], features=featurizer.features,
                            progress=lambda m: log.info("%s: %s", model, m), groups=groups,
                            beside=beside_fit(ctx, model, task, label, table, featurizer, y), split=split)
    notes = (list(notes) + label_notes + group_notes + [f"excluded {e['name']}: {e['reason']}" for e in featurizer.excluded]
             + fit.notes)
    return store_version(ctx, model, task, label, label_type, featurizer, fit, table, y, policy, n_rows, started,
                         notes, options, extra_meta)


def _groups_and_split(table: pa.Table, y: np.ndarray, task: str, test_size: float):
    """``split_groups`` of the rows, and the hold-out split ``fit_supervised`` would draw with those groups (None
    where the split fails: fit_supervised then draws it itself, after its own checks, and says why)."""
    groups, notes = split_groups(table)
    try:
        return groups, notes, sv.holdout_positions(y, task, test_size, groups)
    except Exception:  # noqa: BLE001 - reported by fit_supervised, whose checks come first
        return groups, notes, None


def labelled_rows(table: pa.Table, label: str, relation: str) -> tuple[pa.Table, np.ndarray, pa.DataType, list[str]]:
    """The rows with a label, the label as NumPy, its Arrow type, and notes on rows left out and on NaN or
    infinite values (the numeric policy: they are missing values, like NULL) per column."""
    if table.num_rows == 0:
        raise TrainingFailed(f"relation '{relation}' is empty; there is nothing to train on")
    table, nonfinite = nonfinite_as_null(table)
    table, notes = _drop_missing_labels(table, label, nonfinite.get(label, 0))
    notes += [f"{k} NaN or infinite values of '{c}' treated as missing (imputed like NULL)"
              for c, k in nonfinite.items() if c != label]
    if table.num_rows == 0:
        raise TrainingFailed(f"every row of '{relation}' has a missing {label} (NULL, NaN or infinite); "
                             "there is nothing to learn from")
    y_col = table.column(label)
    label_type = y_col.type
    is_text = pa.types.is_string(label_type) or pa.types.is_large_string(label_type)
    if pa.types.is_temporal(label_type) or not (is_text or pa.types.is_integer(label_type) or pa.types.is_floating(label_type)
                                               or pa.types.is_boolean(label_type) or pa.types.is_decimal(label_type)):
        raise InvalidArgument("label", f"column '{label}' has type {label_type}, which cannot be a label",
                              "Use a numeric, boolean or text column")
    distinct = pc.count_distinct(y_col).as_py()
    if looks_like_id(label, label_type, distinct, table.num_rows) and distinct > 20:
        raise InvalidArgument("label", f"column '{label}' looks like an identifier ({distinct} distinct values in "
                              f"{table.num_rows} rows)", "Choose the outcome column to predict, e.g. label := 'churned'")
    return table, _label_array(y_col), label_type, notes


def store_version(ctx, model, task, label, label_type, featurizer, fit, table, y, policy, n_rows, started, notes,
                  options, extra_meta=None) -> dict:
    """Snapshot, compare with the active version on the same hold-out (``fit.holdout_rows``), store (active or
    not, by ``policy``) in one transaction, and return ml_train's row."""
    beside = fit.beside or beside_fit(ctx, model, task, label, table, featurizer, y)(fit.holdout_rows)
    profiles, (active, reason) = beside
    snapshot = training_snapshot(table, profiles, fit)
    activate, decision = drift.deploy_decision(policy, task, fit.metrics, active and active[1], active and active[0], reason)
    notes = notes + [decision]
    log.info("%s: fitted and evaluated after %.2fs; storing", model, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    fmt, blob = (dumps_keras if fit.algorithm == "mlp" else dumps_estimator)(fit.estimator)  # Keras models: .keras format
    for warning in sv.size_notes(fit.algorithm, len(blob)):
        log.warning("%s: %s", model, warning)
        notes.append(warning)
    meta = {"excluded": featurizer.excluded, "classes": fit.classes, IMPORTANCE_SAMPLE: fit.importance_sample,
            "baseline": fit.baseline, "candidates": fit.candidates, "notes": notes, "label_type": str(label_type),
            "profile": snapshot, "train_options": options, "holdout": fit.holdout,
            "linear_form": linear_form(fit.estimator, featurizer.features), **(extra_meta or {})}
    version = ctx.store.save(model, task=task, algorithm=fit.algorithm, fmt=fmt, artifact=blob, label=label,
                             features=featurizer.features, metrics=fit.metrics, params=fit.params, meta=meta,
                             n_rows=n_rows, n_train=fit.n_train, n_test=fit.n_test, seconds=seconds, activate=activate,
                             obj=fit.estimator if fmt == "skops" else None)  # a Keras model is rebuilt on load
    return train_row(model, version, task, fit.algorithm, fit.n_train, fit.n_test, fit.metrics, seconds,
                     fit.candidates, notes)


def beside_fit(ctx, model: str, task: str, label: str, table: pa.Table, featurizer: Featurizer, y: np.ndarray):
    """A function of the hold-out rows giving what ``store_version`` needs of the data but not of the new model:
    the training snapshot's feature profiles and the active version on the new hold-out (``active_on_holdout``).
    ``fit_supervised`` runs it while the estimator fits. The active version is read from the store here, on the
    calling thread."""
    try:
        active = ctx.store.active_version(model), ctx.store.load(model)
    except ModelNotFound:
        active = None

    def work(holdout: np.ndarray):
        return (feature_profiles(table, featurizer),
                active_on_holdout(active, task, label, table.take(pa.array(holdout)), y[holdout]))
    return work


def feature_profiles(table: pa.Table, featurizer: Featurizer) -> list[dict]:
    """Summary statistics of every feature over (a seeded sample of) the training table, for the snapshot."""
    sample = drift.sample_rows(table.num_rows)
    rows = table if sample is None else table.take(pa.array(sample))
    return [drift.profile_column(f, col) for f, col in zip(featurizer.features, featurizer.columns_of(rows))]


def training_snapshot(table: pa.Table, profiles: list[dict], fit) -> dict:
    """Summary statistics of every feature (``feature_profiles``) and of the predictions (the hold-out rows'
    scores, computed once by the fit), kept with the version so ml_drift can tell whether new data still looks
    like it. No row and no identifier is kept."""
    scores = fit.holdout_scores
    if len(scores) > PREDICTION_PROFILE_ROWS:
        scores = scores[np.random.default_rng(drift.SEED).choice(len(scores), PREDICTION_PROFILE_ROWS, replace=False)]
    return {"features": profiles, "prediction": drift.numeric_profile("prediction", scores),
            "n_rows": int(table.num_rows), "n_holdout": int(len(fit.holdout_rows))}


def active_on_holdout(active: tuple[int, StoredModel] | None, task: str, label: str, rows: pa.Table, y: np.ndarray):
    """((version, metrics), None) for the ``active`` version (its number and stored model) scored on the new
    hold-out, or (None, reason) when it cannot be (no active version: (None, None))."""
    if active is None:
        return None, None
    version, sm = active
    if sm.task != task or sm.label != label:
        return (version, {}), f"it is a {sm.task} model of label '{sm.label}'"
    if len(y) == 0:
        return (version, {}), "the hold-out is empty"
    try:
        featurizer, scorer = _prepared(sm)
        return (version, sv.evaluate(sm.obj, featurizer.transform(rows, sm.model), y, task, scorer)), None
    except (InvalidArgument, ValueError, TypeError) as e:
        return (version, {}), str(e).split(". ")[0]


def train_row(model, version, task, algorithm, n_train, n_test, metrics, seconds, candidates=(), notes=()) -> dict:
    """The row ml_train returns, shared by every task's trainer."""
    return {"model": model, "version": version, "task": task, "algorithm": algorithm, "n_train": n_train,
            "n_test": n_test, "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
            "trained_at": datetime.now(timezone.utc).replace(tzinfo=None), "seconds": seconds,
            "candidates": [{k: c[k] for k in ("algorithm", "cv_score", "metric")} for c in candidates],
            "notes": list(notes)}


def read_relation(ctx, rel, columns: list[str] | None = None, batch_size: int = 500_000) -> pa.Table:
    cols = ", ".join(rel.q(c) for c in columns) if columns else "*"
    batches = list(ctx.stream_arrow(f"SELECT {cols} FROM {rel.sql}", batch_size))
    if not batches:
        names = columns or list(rel.columns)
        return ctx.read_arrow(f"SELECT {', '.join(rel.q(c) for c in names)} FROM {rel.sql} LIMIT 0")
    return pa.Table.from_batches(batches)


def _check_binary_for_shortcut(shortcut: str | None, model: str, relation: str, label: str, y: np.ndarray) -> None:
    """train_churn / train_conversion / train_ctr predict a yes/no outcome: any other label is refused, naming
    the generic call that fits it (their predict_* returns P(yes), which means nothing for three classes)."""
    if shortcut is None:
        return
    if shortcut not in BINARY_SHORTCUTS:
        raise InvalidArgument("shortcut", f"unknown shortcut {shortcut!r}", f"Leave it out; it is set by "
                              f"{', '.join(BINARY_SHORTCUTS)}")
    values = np.unique(y)
    if len(values) <= 2:
        return  # a single class is refused later, with its own message
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    raise InvalidArgument("label", f"{shortcut} predicts a yes/no outcome, and '{label}' has {len(values)} distinct "
                          f"values ({shown})", f"Train a model for every class with FROM ml_train('{model}', "
                          f"'{relation}', label := '{label}', task := 'classification') and read it with "
                          f"ml_predict_label, or map '{label}' to 0/1 first")


def _drop_missing_labels(table: pa.Table, label: str, nonfinite: int) -> tuple[pa.Table, list[str]]:
    """Rows whose label is missing (NULL, or NaN/inf already turned to NULL) are left out, and counted."""
    missing = table.column(label).null_count
    if not missing:
        return table, []
    why = f"{missing - nonfinite} NULL, {nonfinite} NaN or infinite" if nonfinite else "NULL"
    return table.filter(pc.is_valid(table.column(label))), [f"{missing} rows with a missing label ({why}) were left out"]


def _label_array(col: pa.ChunkedArray) -> np.ndarray:
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.asarray(col.to_pylist(), dtype=object).astype(str)
    if pa.types.is_boolean(t):
        return col.to_numpy().astype(np.int64)
    if pa.types.is_integer(t):
        return col.to_numpy().astype(np.int64)
    return pc.cast(col, pa.float64()).to_numpy()


# -- prediction ---------------------------------------------------------------------------------------------
def _rows_arg(rows) -> pa.StructArray:
    if not pa.types.is_struct(rows.type):
        raise InvalidArgument("row", f"expected a whole row, got a single value of type {rows.type}",
                              "Pass the table or its alias: SELECT ml_predict('model', t) FROM my_table t")
    return rows


_CONSTANT_NAMES: dict[tuple[str, int, pa.DataType], pa.Array] = {}  # (name, length, type) -> that name repeated


def _single_model(models: pa.Array) -> str | None:
    """The model's name when every row names the same one (as good as always): one memory compare against a
    cached column of that name, cheaper than hashing every row to find the distinct names."""
    if models.null_count or not len(models):
        return None
    name = models[0].as_py()
    key = (name, len(models), models.type)
    same = _CONSTANT_NAMES.get(key)
    if same is None:
        if len(_CONSTANT_NAMES) > 256:
            _CONSTANT_NAMES.clear()
        same = _CONSTANT_NAMES[key] = pa.array([name] * len(models), models.type)
    return name if models.equals(same) else None


def _by_model(models: pa.Array, rows: pa.Array, out_type: pa.DataType, fn) -> pa.Array:
    """Score each model's rows in one call; nearly always a query uses a single model for the whole batch."""
    rows = _rows_arg(rows)
    if models.null_count == len(models):
        raise InvalidArgument("model", "is NULL", "Pass the model's name, e.g. ml_predict('churn', t)")
    single = _single_model(models)
    if single is not None:
        return fn(single, rows)
    uniq = pc.unique(models.drop_null())
    # Several models in one batch: score each model's rows, then put the parts back in row order, column-wise.
    positions, parts = [], []
    for name in uniq.to_pylist():
        idx = pc.indices_nonzero(pc.equal(models, name))
        positions.append(idx.to_numpy())
        parts.append(fn(name, rows.take(idx)).cast(out_type))
    missing = np.flatnonzero(pc.is_null(models).to_numpy(zero_copy_only=False))
    positions.append(missing)
    parts.append(pa.nulls(len(missing), out_type))  # a NULL model name scores NULL
    order = np.argsort(np.concatenate(positions), kind="stable")
    return pa.concat_arrays(parts).take(pa.array(order))


def predict_values(ctx, model: str, rows: pa.StructArray, output: str) -> pa.Array:
    sm = ctx.store.load(model)
    if sm.task not in SUPERVISED_TASKS:
        if sm.task not in PREDICTORS:
            raise InvalidArgument("model", f"model '{model}' is a {sm.task} model, which ml_predict does not score",
                                  "Use the task's own function (e.g. recommend_items, forecast_demand)")
        return PREDICTORS[sm.task](sm, rows, output)
    _, scorer = _prepared(sm)
    X = sm.derived["encoder"](rows)
    if output == "label":
        labels = sv.predict_labels(sm.obj, X, sm.task)
        return pa.array(labels.astype(str) if sm.task == "classification" else labels.astype(str), pa.string())
    return pa.array(np.asarray(scorer(X), dtype=np.float64))  # (naming the Arrow type costs more than this)


def model_sql_kind(sm: StoredModel) -> str | None:
    """``'linear'`` or ``'tree'`` when ``model_sql_for`` writes the active version as SQL, else None."""
    if sm.task not in SUPERVISED_TASKS or hashes_categories(sm.features):
        return None
    if "linear_form" not in sm.derived:
        sm.derived["linear_form"] = linear_form(sm.obj, sm.features)
    if sm.derived["linear_form"] is not None:
        return "linear"
    return "tree" if sql_tree(sm.obj) else None


def model_sql_for(sm: StoredModel, row: str) -> str | None:
    """The active version as a plain SQL expression over ``row`` when it is a linear model or a decision tree
    small enough to score faster in SQL (``tree_sql``), else None."""
    kind = model_sql_kind(sm)
    if kind == "linear":
        return linear_sql(sm.derived["linear_form"], row)
    return tree_sql(sm.obj, sm.features, row) if kind == "tree" else None


@sql_function("ml_export_sql", "A linear model or a decision tree as a plain SQL macro definition: scoring with "
              "no Python, by any DuckDB client.", args=[Arg("model")], returns="STRUCT(model VARCHAR, version INTEGER, macro_sql VARCHAR)")
def ml_export_sql(ctx, model):
    validate_model_name(model)
    sm = ctx.store.load(model)
    expr = model_sql_for(sm, "row")
    if expr is None and hashes_categories(sm.features):
        raise InvalidArgument("model", f"model '{model}' keeps personal text features as salted digests "
                              "(personal := 'hash'), which plain SQL cannot compute as Python does",
                              f"Score with ml_predict('{model}', t), or retrain with personal := 'exclude'")
    if expr is None:
        raise InvalidArgument("model", f"model '{model}' is {sm.algorithm}; only linear models (logistic, linear) and "
                              f"decision trees of at most {MAX_SQL_TREE_NODES:,} nodes compile exactly to SQL",
                              f"Train one with algorithm := 'logistic' or 'decision_tree', or score with ml_predict('{model}', t)")
    name = "predict_" + "".join(ch if ch.isalnum() else "_" for ch in model) + "_sql"
    return [{"model": model, "version": sm.version, "macro_sql": f"CREATE OR REPLACE MACRO {name}(row) AS {expr};"}]


def _prepared(sm: StoredModel):
    """The model's featurizer and its leanest exact scorer, built once per loaded version."""
    if "scorer" not in sm.derived:
        sm.derived["featurizer"] = Featurizer.from_json(sm.features)
        sm.derived["encoder"] = BatchEncoder(sm.derived["featurizer"], sm.model)
        sm.derived["scorer"] = sv.predict_fn(sm.obj, sm.task, sm.features)
    return sm.derived["featurizer"], sm.derived["scorer"]


_ROW = [Arg("model"), Arg("row", "ANY")]


@sql_function("ml_predict", "The model's prediction for a row (a probability for a yes/no classifier).",
              kind="scalar", args=_ROW, returns="DOUBLE", row_input=True)
def ml_predict(ctx, models, rows):
    return _by_model(models, rows, pa.float64(), lambda m, r: predict_values(ctx, m, r, "value"))


# The label comes back with the label column's type: cast_to_type takes it from a bind-time witness query (so the
# model must be a constant; wml_predict_label(model, row) gives the text form for any model argument).
@sql_function("ml_predict_label", "The predicted class (or value) for a row, with the label column's type.",
              kind="scalar", args=_ROW, returns="VARCHAR", row_input=True,
              body="cast_to_type({call}, (SELECT w FROM query(wml_label_type_sql(model))))")
def ml_predict_label(ctx, models, rows):
    return _by_model(models, rows, pa.string(), lambda m, r: predict_values(ctx, m, r, "label"))


_ARROW_TO_SQL = {"bool": "BOOLEAN", "int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
                 "uint8": "UTINYINT", "uint16": "USMALLINT", "uint32": "UINTEGER", "uint64": "UBIGINT",
                 "float": "FLOAT", "double": "DOUBLE", "string": "VARCHAR", "large_string": "VARCHAR"}


def label_sql_type(sm: StoredModel) -> str:
    """The SQL type ml_predict_label returns for a model: the label column's own type for a classifier, DOUBLE
    for a regression, INTEGER for segments, VARCHAR otherwise."""
    if sm.task == "regression":
        return "DOUBLE"
    if sm.task == "segment":
        return "INTEGER"
    arrow = str(sm.meta.get("label_type") or "")
    decimal = re.match(r"^decimal(?:128|256)?\((\d+), (\d+)\)$", arrow)
    if decimal:
        return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
    return _ARROW_TO_SQL.get(arrow, "VARCHAR") if sm.task == "classification" else "VARCHAR"


@scalar_udf("wml_label_type_sql", args=["VARCHAR"], returns="VARCHAR")
def label_type_sql(ctx, models):
    """Bind-time witness for ml_predict_label's cast: ``SELECT NULL::<label type> AS w`` (VARCHAR for a name that is
    not a model: wml_predict_label then reports it)."""
    out = []
    for model in models.to_pylist():
        try:
            out.append(f"SELECT NULL::{label_sql_type(ctx.store.load(model))} AS w")
        except WmlError:
            out.append("SELECT NULL::VARCHAR AS w")
    return pa.array(out, pa.string())


EXPLAIN_ROW = "STRUCT(feature VARCHAR, contribution DOUBLE)[]"


@sql_function("ml_explain_row", "The k features that moved a row's prediction most, with their contributions.",
              kind="scalar", args=[*_ROW, Arg("k", "BIGINT", 3)], returns=EXPLAIN_ROW, row_input=True)
def ml_explain_row(ctx, models, rows, ks):
    k = pc.max(ks).as_py() if len(ks) else 3
    if k is None or k < 1:
        raise InvalidArgument("k", f"must be a positive number of features, got {k}", "Use e.g. k := 3")
    out_type = registry_type(EXPLAIN_ROW)

    def explain(model, rows):
        sm = _supervised(ctx, model)
        X = Featurizer.from_json(sm.features).transform(rows, model)
        contrib = sv.row_contributions(sm.obj, X, np.asarray(sm.meta["baseline"], dtype=np.float64), sm.task)
        kk = min(int(k), contrib.shape[1])
        order = np.argsort(-np.abs(contrib), axis=1)[:, :kk]
        names = np.asarray([f["name"] for f in sm.features], dtype=object)
        top = np.take_along_axis(contrib, order, axis=1)
        feats = pa.array(names[order].ravel(), pa.string())
        vals = pa.array(top.ravel(), pa.float64())
        structs = pa.StructArray.from_arrays([feats, vals], names=["feature", "contribution"])
        offsets = pa.array(np.arange(0, len(rows) * kk + 1, kk, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, structs)

    return _by_model(models, rows, out_type, explain)


def registry_type(sql: str) -> pa.DataType:
    from ..binding.registry import arrow_type

    return arrow_type(sql)


def _supervised(ctx, model: str) -> StoredModel:
    sm = ctx.store.load(model)
    if sm.task not in SUPERVISED_TASKS:
        raise InvalidArgument("model", f"model '{model}' is a {sm.task} model; this function explains supervised models",
                              "Pass a model trained with ml_train(..., label := ...)")
    return sm


# -- evaluation and global explanation ---------------------------------------------------------------------
@sql_function("ml_evaluate", "The active version's hold-out metrics, or its metrics on another labelled relation.",
              args=[Arg("model"), RelationArg(default=None)], returns="STRUCT(metric VARCHAR, value DOUBLE)")
def ml_evaluate(ctx, model, relation):
    validate_model_name(model)
    sm = _supervised(ctx, model)
    if relation is None:
        return [{"metric": k, "value": v} for k, v in sm.metrics.items()]
    rel = ctx.relation(relation)
    label = rel.column(sm.label, "relation")
    feats = Featurizer.from_json(sm.features)
    table = read_relation(ctx, rel, [rel.column(n, "relation") for n in feats.names] + [label])
    table, _ = _drop_missing_labels(nonfinite_as_null(table)[0], label, 0)
    if table.num_rows == 0:
        raise InvalidArgument("relation", f"'{relation}' has no rows with a label (NULL, NaN and inf are missing)",
                              "Evaluate on labelled rows")
    X = feats.transform(table, model)
    y = _label_array(table.column(label))
    metrics = sv.evaluate(sm.obj, X, y, sm.task)
    return [{"metric": k, "value": v} for k, v in metrics.items()] + [{"metric": "n_rows", "value": float(len(y))}]


@sql_function("ml_explain", "The active version's feature importances and the direction of each feature's effect.",
              args=[Arg("model")], returns="STRUCT(feature VARCHAR, importance DOUBLE, direction VARCHAR)")
def ml_explain(ctx, model):
    validate_model_name(model)
    return importances(ctx, _supervised(ctx, model))


def importances(ctx, sm: StoredModel) -> list[dict]:
    """The version's permutation importances, computed on the first call from the hold-out rows training kept
    (``IMPORTANCE_SAMPLE``) and stored in its meta in place of them, so training does not pay for them and later
    calls and sessions read them back (a read-only database or session keeps them with the loaded model only)."""
    if "importance" in sm.meta:
        return sm.meta["importance"]
    if "importance" not in sm.derived:
        sample = sm.meta.get(IMPORTANCE_SAMPLE)
        if not sample:
            return []  # a version stored without either
        featurizer, scorer = _prepared(sm)
        sm.derived["importance"] = sv.global_importance(sm.obj, sample, sm.task, featurizer.categorical_mask,
                                                        featurizer.names, predict=scorer)
        if not ctx.runtime.read_only:
            ctx.store.complete_meta(sm, {"importance": sm.derived["importance"]}, drop=(IMPORTANCE_SAMPLE,))
    return sm.derived["importance"]


def _shortcut(model: str, label: str, what: str) -> None:
    """train_<model> (ml_train on the model of that name, whose yes/no label ml_train checks: shortcut := names
    the macro) and predict_<model> (scoring with it)."""
    sql_macro(f"train_{model}", f"Trains the {what} model (named '{model}') on a yes/no label.",
              f"""FROM ml_train('{model}', relation, label := label, task := 'classification', algorithm := algorithm,
    exclude := exclude, test_size := test_size, params := params, deploy := deploy, shortcut := 'train_{model}')""",
              module="supervised", writes=True, args=[RelationArg()],
              options=[Option("label", Identifier(), label), Option("algorithm", Text(nonempty=True), "auto"),
                       Option("exclude", Identifiers(nonempty=False)), TEST_SIZE, PARAMS, DEPLOY])
    sql_macro(f"predict_{model}", f"The {what} model's prediction for a row.", f"wml_predict('{model}', \"row\")",
              module="supervised", row_input=True, args=[Arg("row", "ANY")])


_shortcut("churn", "churned", "churn")
_shortcut("conversion", "converted", "purchase conversion")
_shortcut("ctr", "clicked", "click-through")
