"""BigQuery ML statements through the front door, translated onto warehouse-ml's SQL functions.

    CREATE [OR REPLACE] MODEL [IF NOT EXISTS] m OPTIONS(model_type='logistic_reg', input_label_cols=['y']) AS SELECT ...
    SELECT * FROM ML.PREDICT(MODEL m, TABLE t | (SELECT ...) [, STRUCT(0.6 AS threshold)])
    SELECT * FROM ML.EVALUATE(MODEL m [, TABLE t | (SELECT ...)])
    SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL m)      -- and ML.GLOBAL_EXPLAIN, ML.TRAINING_INFO
    SELECT * FROM ML.FORECAST(MODEL m, STRUCT(7 AS horizon, 0.9 AS confidence_level))   -- model_type='arima_plus'
    SELECT * FROM ML.RECOMMEND(MODEL m [, TABLE users])                                   -- 'matrix_factorization'
    DROP MODEL [IF EXISTS] m

How: ``CREATE MODEL`` materialises its SELECT (transpiled from BigQuery SQL to DuckDB with sqlglot) into the table
``wml."bqml_<model>_v<version>"`` of the same database, then trains with ``ml_train`` (a new version of the model named
after the BigQuery model, e.g. ``'bqml_tutorial.penguins_model'``). ``ML.*`` table functions are replaced by
DuckDB subqueries over ``ml_predict``, ``ml_explain``, ``forecast_demand`` and ``recommend_items``; the rest of
the statement is transpiled from BigQuery SQL. Options and model types without an exact counterpart raise an
error that names them.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from ..binding.catalog import quote_ident, resolve
from ..errors import InvalidArgument, WmlError
from ..frontdoor import register_statement_handler
from .bigquery_ml_functions import SUPERVISED, describe_model, model_store, translate
from .bigquery_sql import LEADING_COMMENTS, ML_CALL, model_name, option_value, outside_quotes

log = logging.getLogger("warehouse_ml")

# model_type -> (task, algorithm)
MODEL_TYPES = {
    "logistic_reg": ("classification", "logistic"),
    "linear_reg": ("regression", "linear"),
    "boosted_tree_classifier": ("classification", "gbm"),
    "boosted_tree_regressor": ("regression", "gbm"),
    "random_forest_classifier": ("classification", "random_forest"),
    "random_forest_regressor": ("regression", "random_forest"),
    "dnn_classifier": ("classification", "mlp"),
    "dnn_regressor": ("regression", "mlp"),
    "kmeans": ("segment", "kmeans"),
    "matrix_factorization": ("recommend", "als"),
    "arima_plus": ("forecast", "arima_plus"),
}
COMMON_OPTIONS = {"model_type"}
OPTIONS_BY_TASK = {
    "classification": {"input_label_cols", "data_split_method", "data_split_eval_fraction", "auto_class_weights",
                       "max_iterations", "enable_global_explain", "early_stop"},
    "regression": {"input_label_cols", "data_split_method", "data_split_eval_fraction", "max_iterations",
                   "enable_global_explain", "early_stop"},
    "segment": {"num_clusters", "standardize_features"},
    "recommend": {"user_col", "item_col", "rating_col", "feedback_type", "num_factors", "l2_reg", "max_iterations"},
    "forecast": {"time_series_timestamp_col", "time_series_data_col", "time_series_id_col", "horizon", "auto_arima",
                 "data_frequency", "decompose_time_series"},
}
SUPPORTED_TYPES = ", ".join(f"'{t}'" for t in MODEL_TYPES)

_CREATE_MODEL = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?MODEL\b", re.I)
_DROP_MODEL = re.compile(r"^\s*DROP\s+MODEL\b", re.I)


def matches(query: str) -> bool:
    body = LEADING_COMMENTS.sub("", query, count=1)
    if _CREATE_MODEL.match(body) or _DROP_MODEL.match(body):
        return True
    return any(outside_quotes(query, m.start()) for m in ML_CALL.finditer(query))


def run(con, query: str, params=None):
    """Translate and run one BigQuery ML statement on ``con``; returns ``con`` holding the result."""
    body = LEADING_COMMENTS.sub("", query, count=1).strip().rstrip(";")
    if _CREATE_MODEL.match(body):
        return create_model(con, body)
    if _DROP_MODEL.match(body):
        return drop_model(con, body)
    sql = translate(con, body)
    try:  # linear models then score as plain SQL, in parallel
        from ..frontdoor import rewrite

        sql = rewrite(sql, con)
    except WmlError:
        pass
    log.info("BigQuery ML statement translated to: %s", sql)
    return con.execute(sql, params) if params is not None else con.execute(sql)


# -- CREATE MODEL ----------------------------------------------------------------------------------------------
@dataclass
class ModelSpec:
    name: str
    replace: bool
    if_not_exists: bool
    options: dict
    select_sql: str  # DuckDB SQL


def parse_create_model(sql: str) -> ModelSpec:
    try:
        stmt = sqlglot.parse_one(sql, read="bigquery")
    except sqlglot.errors.ParseError as e:
        raise InvalidArgument("CREATE MODEL", f"could not parse the statement: {str(e).splitlines()[0]}",
                              "Write CREATE [OR REPLACE] MODEL m OPTIONS(model_type='...', ...) AS SELECT ...") from None
    if not isinstance(stmt, exp.Create) or str(stmt.args.get("kind", "")).upper() != "MODEL":
        raise InvalidArgument("CREATE MODEL", "is not a CREATE MODEL statement", "Write CREATE MODEL m OPTIONS(...) AS SELECT ...")
    options = {}
    for prop in (stmt.args.get("properties").expressions if stmt.args.get("properties") else []):
        if type(prop) is exp.Property and prop.this is not None:
            key = prop.name.lower() if prop.name else prop.this.sql().lower()
            options[key] = option_value(prop.args.get("value"))
        else:
            clause = type(prop).__name__.replace("ModelProperty", "").replace("Property", "").upper() or "clause"
            raise InvalidArgument(clause, f"the {clause} clause of CREATE MODEL is not supported",
                                  "Compute those columns in the AS SELECT instead (and the same way when predicting)")
    if stmt.expression is None:
        raise InvalidArgument("AS SELECT", "CREATE MODEL needs training data",
                              "Add AS SELECT ... (remote and imported models are not supported)")
    select_sql = stmt.expression.sql(dialect="duckdb")
    return ModelSpec(model_name(stmt.this.sql(dialect="bigquery")), bool(stmt.args.get("replace")),
                     bool(stmt.args.get("exists")), options, select_sql)


def _check_options(spec: ModelSpec) -> tuple[str, str]:
    model_type = spec.options.get("model_type")
    if not isinstance(model_type, str):
        raise InvalidArgument("model_type", "is required", f"Add OPTIONS(model_type='logistic_reg', ...); supported: {SUPPORTED_TYPES}")
    kind = model_type.lower()
    if kind not in MODEL_TYPES:
        raise InvalidArgument("model_type", f"'{model_type}' is not supported by warehouse-ml",
                              f"Use one of: {SUPPORTED_TYPES}")
    task, algorithm = MODEL_TYPES[kind]
    allowed = COMMON_OPTIONS | OPTIONS_BY_TASK[task]
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        raise InvalidArgument(unknown[0], f"option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                              f"{'are' if len(unknown) > 1 else 'is'} not supported for model_type '{kind}'",
                              f"Remove {'them' if len(unknown) > 1 else 'it'}; supported options: {', '.join(sorted(allowed))}")
    return task, algorithm


def _one_column(options: dict, key: str, required: bool = True) -> str | None:
    v = options.get(key)
    if isinstance(v, list):
        if len(v) != 1:
            raise InvalidArgument(key, f"expected one column, got {v!r}", f"Pass one column, e.g. {key}=['label']")
        v = v[0]
    if v is None and required:
        raise InvalidArgument(key, "is required for this model_type", f"Add {key}='column' to OPTIONS")
    if v is not None and not isinstance(v, str):
        raise InvalidArgument(key, f"expected a column name, got {v!r}", f"Write {key}='column'")
    return v


def _number(options: dict, key: str, lo: float, hi: float, integer: bool = False):
    v = options.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (integer and int(v) != v):
        kind = "a whole number" if integer else "a number"
        raise InvalidArgument(key, f"expected {kind} from {lo} to {hi}, got {v!r}", f"Write e.g. {key}={int(lo) if integer else lo}")
    return int(v) if integer else float(v)


def _flag(options: dict, key: str):
    v = options.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise InvalidArgument(key, f"expected TRUE or FALSE, got {v!r}", f"Write {key}=TRUE")


def create_model(con, sql: str):
    spec = parse_create_model(sql)
    task, algorithm = _check_options(spec)
    store = model_store(con)
    exists = spec.name in store.model_names()
    if exists and spec.if_not_exists:
        return con.execute("SELECT $1 AS model, 'exists: not retrained' AS status", [spec.name])
    if exists and not spec.replace:
        raise InvalidArgument("CREATE MODEL", f"model '{spec.name}' already exists",
                              "Use CREATE OR REPLACE MODEL to train a new version (earlier versions stay in the registry), "
                              "or CREATE MODEL IF NOT EXISTS")
    o = spec.options
    # validate every option before touching the database
    if task in SUPERVISED:
        label = _one_column(o, "input_label_cols")
        split = str(o.get("data_split_method") or "auto_split").lower()
        if split not in ("auto_split", "random", "no_split"):
            raise InvalidArgument("data_split_method", f"'{o['data_split_method']}' is not supported",
                                  "Use 'AUTO_SPLIT', 'RANDOM' or 'NO_SPLIT'")
        frac = _number(o, "data_split_eval_fraction", 0.01, 0.9)
        test_size = 0.0 if split == "no_split" else (frac if frac is not None else 0.2)
        params = {}
        weights = _flag(o, "auto_class_weights")
        if weights is not None:
            params["class_weight"] = "balanced" if weights else "none"
        iters = _number(o, "max_iterations", 1, 100000, integer=True)
        if iters is not None:
            if algorithm not in ("logistic", "gbm"):
                raise InvalidArgument("max_iterations", f"has no counterpart for model_type '{o['model_type'].lower()}'",
                                      "Remove it (warehouse-ml stops training by itself)")
            params["max_iter"] = iters
        _flag(o, "enable_global_explain"), _flag(o, "early_stop")  # accepted: always on in warehouse-ml
    elif task == "segment":
        k = _number(o, "num_clusters", 2, 50, integer=True)
        if _flag(o, "standardize_features") is False:
            raise InvalidArgument("standardize_features", "FALSE is not supported: segments are always fitted on "
                                  "standardised features", "Remove the option")
    elif task == "recommend":
        user, item = _one_column(o, "user_col"), _one_column(o, "item_col")
        rating = _one_column(o, "rating_col", required=False)
        feedback = str(o.get("feedback_type") or "implicit").lower()
        if feedback != "implicit":
            raise InvalidArgument("feedback_type", f"'{o['feedback_type']}' is not supported: warehouse-ml's "
                                  "recommenders learn from implicit feedback",
                                  "Write feedback_type='implicit' (ratings are then used as confidence weights)")
        rec_params = {}
        for key, name, lo, hi, integer in (("num_factors", "factors", 1, 1024, True), ("l2_reg", "regularization", 0, 1e6, False),
                                           ("max_iterations", "iterations", 1, 1000, True)):
            v = _number(o, key, lo, hi, integer)
            if v is not None:
                rec_params[name] = v
    else:  # forecast
        ts = _one_column(o, "time_series_timestamp_col")
        value = _one_column(o, "time_series_data_col")
        ids = o.get("time_series_id_col")
        if isinstance(ids, list) and len(ids) > 1:
            raise InvalidArgument("time_series_id_col", f"several id columns {ids} are not supported",
                                  "Combine them into one column in the AS SELECT, e.g. concat_ws('|', a, b) AS series_id")
        ids = _one_column(o, "time_series_id_col", required=False)
        horizon = _number(o, "horizon", 1, 10000, integer=True) or 1000
        if _flag(o, "auto_arima") is False:
            raise InvalidArgument("auto_arima", "FALSE (a fixed order) is not supported", "Remove the option")
        freq = str(o.get("data_frequency") or "auto_frequency").lower()
        if freq not in ("auto_frequency", "daily"):
            raise InvalidArgument("data_frequency", f"'{o['data_frequency']}' is not supported",
                                  "Remove it: the frequency is inferred from the dates")
        _flag(o, "decompose_time_series")

    # the training data of each version stays in the database (forecasts and recommender evaluation read it)
    version = max(store.versions(spec.name)) + 1 if exists else 1
    relation = f"wml.{quote_ident(f'bqml_{spec.name}_v{version}')}"
    con.execute("CREATE SCHEMA IF NOT EXISTS wml")
    con.execute(f"CREATE OR REPLACE TABLE {relation} AS {spec.select_sql}")
    log.info("CREATE MODEL %s: %s training on %s (%s)", spec.name, o["model_type"], relation, task)
    try:
        return _train(con, spec, task, algorithm, relation, locals())
    except BaseException:
        con.execute(f"DROP TABLE IF EXISTS {relation}")  # a failed CREATE MODEL leaves the database as it was
        raise


def _train(con, spec, task, algorithm, relation, v):
    rel = resolve(con, relation)
    label, test_size, params, k = v.get("label"), v.get("test_size"), v.get("params"), v.get("k")
    user, item, rating, rec_params = v.get("user"), v.get("item"), v.get("rating"), v.get("rec_params")
    if task in SUPERVISED:
        rel.column(label, "input_label_cols")
        return con.execute(
            "SELECT model, version, task, algorithm, n_train, n_test, metrics, seconds, notes FROM ml_train($1, $2, "
            "label := $3, task := $4, algorithm := $5, test_size := $6, params := json($7))",
            [spec.name, relation, label, task, algorithm, test_size, json.dumps(params) if params else None])
    if task == "segment":
        return con.execute("SELECT model, version, task, algorithm, n_train, metrics, seconds, notes FROM ml_train($1, $2, "
                           "task := 'segment', k := $3)", [spec.name, relation, k if k is not None else "auto"])
    if task == "recommend":
        for col, key in ((user, "user_col"), (item, "item_col"), (rating, "rating_col")):
            if col is not None:
                rel.column(col, key)
        return con.execute(
            "SELECT model, version, task, algorithm, n_train, metrics, seconds, notes FROM ml_train($1, $2, "
            "task := 'recommend', user := $3, item := $4, weight := $5, method := 'als', params := json($6))",
            [spec.name, relation, user, item, rating, json.dumps(rec_params)])
    return _store_forecast_model(con, spec, rel, relation, v["ts"], v["value"], v["ids"], v["horizon"])


def _store_forecast_model(con, spec, rel, relation, ts, value, ids, horizon):
    """ARIMA_PLUS: the series are kept in the staging table and fitted when ML.FORECAST asks (per series, the
    method forecast_demand chooses, reported in its output); the model records the roles and the data."""
    from ..store import dumps_arrays

    ts, value = rel.column(ts, "time_series_timestamp_col"), rel.column(value, "time_series_data_col")
    ids = rel.column(ids, "time_series_id_col") if ids else None
    # fail now, not at ML.FORECAST: check the series can be read and forecast
    con.execute("SELECT count(*) FROM forecast_demand($1, 1, item := $2, date := $3, value := $4)",
                [relation, ids, ts, value]).fetchall()
    n = con.execute(f"SELECT count(*) FROM {rel.sql}").fetchone()[0]
    fmt, blob = dumps_arrays({})
    meta = {"relation": relation, "roles": {"item": ids, "date": ts, "value": value}, "horizon": horizon,
            "bigquery_model_type": "arima_plus"}
    version = model_store(con).save(spec.name, task="forecast", algorithm="arima_plus", fmt=fmt, artifact=blob,
                               label=value, features=[], metrics={}, params={"horizon": horizon}, meta=meta,
                               n_rows=n, n_train=n, n_test=0, seconds=0.0)
    return con.execute("SELECT $1 AS model, $2 AS version, 'forecast' AS task, 'arima_plus' AS algorithm, $3 AS n_train",
                       [spec.name, version, n])


def drop_model(con, sql: str):
    stmt = sqlglot.parse_one(sql, read="bigquery")
    name = model_name(stmt.args["tables"][0].sql(dialect="bigquery"))
    if name not in model_store(con).model_names():
        if stmt.args.get("exists"):
            return con.execute("SELECT $1 AS model, 0 AS versions_removed", [name])
        describe_model(con, name)  # raises ModelNotFound with suggestions
    for version in model_store(con).versions(name):
        con.execute(f"DROP TABLE IF EXISTS wml.{quote_ident(f'bqml_{name}_v{version}')}")
    return con.execute("SELECT model, count(*) AS versions_removed FROM ml_drop($1) GROUP BY model", [name])


register_statement_handler(matches, run)

__all__ = ["matches", "run", "translate", "create_model", "parse_create_model", "MODEL_TYPES", "WmlError"]
