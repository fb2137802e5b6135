"""BigQuery ML's table functions (``ML.PREDICT``, ``ML.EVALUATE``, ``ML.FEATURE_IMPORTANCE``, ``ML.GLOBAL_EXPLAIN``,
``ML.TRAINING_INFO``, ``ML.FORECAST``, ``ML.RECOMMEND``) as DuckDB subqueries over warehouse-ml's SQL functions.

``translate`` replaces every ``ML.*`` call of a statement by one and transpiles the rest; the statements
themselves (``CREATE MODEL``, ``DROP MODEL``, running a translated query) are ``bigquery_ml``'s.
"""
from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from ..binding.catalog import quote_ident, resolve
from ..errors import InvalidArgument, ModelNotFound
from .bigquery_sql import (ML_CALL, close_paren, literal, model_name, option_value, quote_state, split_args,
                           transpile)

SUPERVISED = {"classification", "regression"}
ML_FUNCTIONS = ("PREDICT", "EVALUATE", "FEATURE_IMPORTANCE", "GLOBAL_EXPLAIN", "TRAINING_INFO", "FORECAST", "RECOMMEND")
FUNCTION_HINT = "Supported: " + ", ".join(f"ML.{f}" for f in ML_FUNCTIONS)
_ARROW_TO_SQL = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "uint8": "UTINYINT",
                 "uint16": "USMALLINT", "uint32": "UINTEGER", "uint64": "UBIGINT", "bool": "BOOLEAN",
                 "string": "VARCHAR", "large_string": "VARCHAR", "float": "FLOAT", "double": "DOUBLE"}


def model_store(con):
    from ..store import ModelStore

    return ModelStore(con)


def describe_model(con, model: str):
    store = model_store(con)
    try:
        return store.describe(model)
    except ModelNotFound:
        raise ModelNotFound(model, store.model_names(),
                            hint=f"CREATE MODEL `{model}` OPTIONS(model_type='logistic_reg', input_label_cols=['label']) "
                                 "AS SELECT ...") from None


def translate(con, sql: str) -> str:
    """Replace every ML.* call by a DuckDB subquery and transpile the rest from BigQuery SQL."""
    calls: dict[str, str] = {}
    inside = quote_state(sql)
    out, pos = [], 0
    for m in ML_CALL.finditer(sql):
        if m.start() < pos or inside[m.start()]:
            continue
        open_pos = m.end() - 1
        close = close_paren(sql, open_pos, inside)
        placeholder = f"__wml_ml_call_{len(calls)}__"
        calls[placeholder] = _ml_call(con, m.group(1).upper(), split_args(sql[open_pos + 1:close]))
        out.append(sql[pos:m.start()])
        out.append(placeholder)
        pos = close + 1
    out.append(sql[pos:])
    result = transpile("".join(out))
    tables = {t.name for t in sqlglot.parse_one(result, read="duckdb").find_all(exp.Table)} if calls else set()
    for placeholder, subquery in calls.items():
        if placeholder not in tables:  # e.g. SELECT ML.PREDICT(...): a value, not a table
            raise InvalidArgument("query", "an ML.* function can only be used as a table (FROM ML.PREDICT(...))",
                                  "Write SELECT ... FROM ML.PREDICT(MODEL m, TABLE t)")
        result = result.replace(placeholder, f"({subquery})")
    return result


def _source(con, arg: str, fname: str) -> str:
    """TABLE t | (query) as DuckDB SQL usable after FROM."""
    a = arg.strip()
    if re.match(r"^TABLE\s+", a, re.I):
        table = exp.to_table(a[5:].strip(), dialect="bigquery")
        return table.sql(dialect="duckdb")
    if a.startswith("(") and a.endswith(")"):
        inner = a[1:-1]
        return "(" + translate(con, inner) + ")"  # ML.* calls inside are translated too; the rest transpiled
    raise InvalidArgument(f"ML.{fname}", f"expected TABLE name or (SELECT ...) as the data, got {a[:60]!r}",
                          f"Write ML.{fname}(MODEL m, TABLE my_table) or ML.{fname}(MODEL m, (SELECT ...))")


def _struct_options(con, arg: str, fname: str, allowed: set[str]) -> dict:
    a = arg.strip()
    try:
        node = sqlglot.parse_one(f"SELECT {a}", read="bigquery").expressions[0]
    except sqlglot.errors.ParseError:
        node = None
    if not isinstance(node, exp.Struct):
        raise InvalidArgument(f"ML.{fname}", f"expected STRUCT(value AS name, ...) for the options, got {a[:60]!r}",
                              f"Write e.g. STRUCT({', '.join(f'... AS {n}' for n in sorted(allowed))})")
    out = {}
    for e in node.expressions:
        if isinstance(e, exp.PropertyEQ):
            out[e.this.name.lower()] = option_value(e.expression)
        elif isinstance(e, exp.Alias):
            out[e.alias.lower()] = option_value(e.this)
        else:
            raise InvalidArgument(f"ML.{fname}", f"cannot read the option {e.sql(dialect='bigquery')}", "Name it: value AS name")
    unknown = sorted(set(out) - allowed)
    if unknown:
        raise InvalidArgument(unknown[0], f"is not an option of ML.{fname} in warehouse-ml",
                              f"Supported: {', '.join(sorted(allowed)) or 'none'}")
    return out


def _ml_call(con, fname: str, args: list[str]) -> str:
    if fname not in ML_FUNCTIONS:
        raise InvalidArgument(f"ML.{fname}", "is not supported by warehouse-ml", FUNCTION_HINT)
    if not args or not re.match(r"^MODEL\s+", args[0], re.I):
        raise InvalidArgument(f"ML.{fname}", "the first argument must be MODEL name", f"Write ML.{fname}(MODEL m, ...)")
    model = model_name(args[0][5:])
    sm = describe_model(con, model)
    rest = args[1:]
    builder = {"PREDICT": _predict, "EVALUATE": _evaluate, "FEATURE_IMPORTANCE": _importance,
               "GLOBAL_EXPLAIN": _importance, "TRAINING_INFO": _training_info, "FORECAST": _forecast,
               "RECOMMEND": _recommend}[fname]
    return builder(con, sm, fname, rest)


def _need_task(sm, fname: str, tasks: set[str], hint: str):
    if sm.task not in tasks:
        raise InvalidArgument(f"ML.{fname}", f"model '{sm.model}' is a {sm.task} model ({sm.algorithm})", hint)


def _label_sql_type(sm) -> str:
    return _ARROW_TO_SQL.get(str(sm.meta.get("label_type", "")).lower(), "VARCHAR")


def _predict(con, sm, fname, rest):
    _need_task(sm, fname, SUPERVISED | {"segment"},
               "Use ML.FORECAST for arima_plus models and ML.RECOMMEND for matrix_factorization models")
    if not rest:
        raise InvalidArgument("ML.PREDICT", "needs the data to score", "Write ML.PREDICT(MODEL m, TABLE t) or (SELECT ...)")
    src = _source(con, rest[0], fname)
    opts = _struct_options(con, rest[1], fname, {"threshold"}) if len(rest) > 1 else {}
    if len(rest) > 2:
        raise InvalidArgument("ML.PREDICT", "takes at most MODEL, the data and STRUCT(...) options", "Remove the extra arguments")
    m = literal(sm.model)
    if sm.task == "segment":
        return f"SELECT CAST(ml_predict({m}, __wml_s) AS BIGINT) AS centroid_id, __wml_s.* FROM {src} AS __wml_s"
    pred = quote_ident(f"predicted_{sm.label}")
    if sm.task == "regression":
        return f"SELECT ml_predict({m}, __wml_s) AS {pred}, __wml_s.* FROM {src} AS __wml_s"
    classes = sm.meta.get("classes") or []
    ltype = _label_sql_type(sm)
    if len(classes) == 2:
        thr = opts.get("threshold", 0.5)
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1:
            raise InvalidArgument("threshold", f"expected a probability from 0 to 1, got {thr!r}", "Write STRUCT(0.5 AS threshold)")
        pos, neg = (f"CAST({literal(c)} AS {ltype})" for c in (classes[1], classes[0]))
        probs = quote_ident(f"predicted_{sm.label}_probs")
        return (f"SELECT CASE WHEN __wml_p > {float(thr)!r} THEN {pos} ELSE {neg} END AS {pred}, "
                f"[{{'label': {pos}, 'prob': __wml_p}}, {{'label': {neg}, 'prob': 1 - __wml_p}}] AS {probs}, "
                f"* EXCLUDE (__wml_p) FROM (SELECT ml_predict({m}, __wml_s) AS __wml_p, __wml_s.* FROM {src} AS __wml_s)")
    if "threshold" in opts:
        raise InvalidArgument("threshold", "applies to binary classifiers only", "Remove STRUCT(... AS threshold)")
    return f"SELECT TRY_CAST(ml_predict_label({m}, __wml_s) AS {ltype}) AS {pred}, __wml_s.* FROM {src} AS __wml_s"


_STORED_NAMES = {"f1": "f1_score", "mae": "mean_absolute_error", "r2": "r2_score", "rmse": "root_mean_squared_error"}


def _evaluate(con, sm, fname, rest):
    _need_task(sm, fname, SUPERVISED, "ML.EVALUATE scores supervised models; for forecasts use backtest_demand(...)")
    m = literal(sm.model)
    if len(rest) > 1:
        raise InvalidArgument("ML.EVALUATE", "takes MODEL and optionally the data; STRUCT options are not supported",
                              "Remove the options")
    if not rest:  # BigQuery: the evaluation split of training
        metrics = {_STORED_NAMES.get(k, k): v for k, v in sm.metrics.items() if isinstance(v, (int, float))}
        if "root_mean_squared_error" in metrics:
            metrics["mean_squared_error"] = metrics["root_mean_squared_error"] ** 2
        if not metrics:
            raise InvalidArgument("ML.EVALUATE", f"model '{sm.model}' was trained without an evaluation split",
                                  f"Pass data to evaluate on: ML.EVALUATE(MODEL `{sm.model}`, TABLE t)")
        cols = ", ".join(f"CAST({float(v)!r} AS DOUBLE) AS {quote_ident(k)}" for k, v in metrics.items())
        return f"SELECT {cols}"
    src = _source(con, rest[0], fname)
    y = quote_ident(sm.label)
    ltype = _label_sql_type(sm)
    classes = sm.meta.get("classes") or []
    if sm.task == "regression":
        return ("SELECT avg(abs(y - p)) AS mean_absolute_error, avg((y - p) ^ 2) AS mean_squared_error, "
                "CASE WHEN min(y) > -1 AND min(p) > -1 THEN avg((ln(1 + y) - ln(1 + p)) ^ 2) END AS mean_squared_log_error, "
                "median(abs(y - p)) AS median_absolute_error, "
                "1 - sum((y - p) ^ 2) / nullif(sum((y - (SELECT avg(y) FROM __wml_e)) ^ 2), 0) AS r2_score, "
                "1 - var_pop(y - p) / nullif(var_pop(y), 0) AS explained_variance, count(*) AS n_rows FROM __wml_e")\
            .replace("FROM __wml_e", f"FROM (SELECT CAST(__wml_s.{y} AS DOUBLE) AS y, ml_predict({m}, __wml_s) AS p "
                                     f"FROM {src} AS __wml_s WHERE __wml_s.{y} IS NOT NULL)")
    text = (f"CAST(CAST(__wml_s.{y} AS INTEGER) AS VARCHAR)" if ltype == "BOOLEAN" else f"CAST(__wml_s.{y} AS VARCHAR)")
    if len(classes) == 2:
        pos = literal(str(classes[1]))
        return (
            "WITH s AS (SELECT (" + text + f" = {pos})::INTEGER AS t, ml_predict({m}, __wml_s) AS p "
            f"FROM {src} AS __wml_s WHERE __wml_s.{y} IS NOT NULL), "
            "r AS (SELECT t, p, (p > 0.5)::INTEGER AS yhat, rank() OVER (ORDER BY p) + (count(*) OVER (PARTITION BY p) - 1) / 2.0 AS rk FROM s) "
            "SELECT sum(t * yhat) / nullif(sum(yhat), 0) AS precision, sum(t * yhat) / nullif(sum(t), 0) AS recall, "
            "avg((t = yhat)::INTEGER) AS accuracy, "
            "2 * sum(t * yhat) / nullif(sum(yhat) + sum(t), 0) AS f1_score, "
            "-avg(t * ln(greatest(p, 1e-15)) + (1 - t) * ln(greatest(1 - p, 1e-15))) AS log_loss, "
            "(sum(rk) FILTER (WHERE t = 1) - sum(t) * (sum(t) + 1) / 2.0) / nullif(sum(t) * (count(*) - sum(t)), 0) AS roc_auc, "
            "count(*) AS n_rows FROM r")
    return (
        "WITH s AS (SELECT " + text + f" AS y, ml_predict_label({m}, __wml_s) AS yhat FROM {src} AS __wml_s "
        f"WHERE __wml_s.{y} IS NOT NULL), "
        "c AS (SELECT cls, sum((y = cls AND yhat = cls)::INTEGER) AS tp, sum((yhat = cls)::INTEGER) AS pp, "
        "sum((y = cls)::INTEGER) AS ap FROM s, (SELECT DISTINCT y AS cls FROM s) GROUP BY cls) "
        "SELECT avg(tp / nullif(pp, 0)) AS precision, avg(tp / ap) AS recall, "
        "(SELECT avg((y = yhat)::INTEGER) FROM s) AS accuracy, avg(2 * tp / nullif(pp + ap, 0)) AS f1_score, "
        "(SELECT count(*) FROM s) AS n_rows FROM c")


def _importance(con, sm, fname, rest):
    _need_task(sm, fname, SUPERVISED, f"ML.{fname} explains supervised models")
    if rest:
        raise InvalidArgument(f"ML.{fname}", "takes only MODEL in warehouse-ml", "Remove the other arguments")
    m = literal(sm.model)
    if fname == "GLOBAL_EXPLAIN":
        return f"SELECT feature, importance AS attribution, direction FROM ml_explain({m}) ORDER BY attribution DESC"
    # warehouse-ml has one global importance measure (normalised); it fills BigQuery's three columns
    return (f"SELECT feature, importance AS importance_weight, importance AS importance_gain, "
            f"importance AS importance_cover, direction FROM ml_explain({m}) ORDER BY importance_gain DESC")


def _training_info(con, sm, fname, rest):
    if rest:
        raise InvalidArgument("ML.TRAINING_INFO", "takes only MODEL", "Remove the other arguments")
    return (f"SELECT 0 AS training_run, 0 AS iteration, NULL::DOUBLE AS loss, NULL::DOUBLE AS eval_loss, "
            f"CAST(round(seconds * 1000) AS BIGINT) AS duration_ms, version, algorithm, n_rows "
            f"FROM ml_models() WHERE model = {literal(sm.model)} AND is_active")


def _forecast(con, sm, fname, rest):
    _need_task(sm, fname, {"forecast"}, "ML.FORECAST needs a model created with model_type='arima_plus'")
    opts = _struct_options(con, rest[0], fname, {"horizon", "confidence_level"}) if rest else {}
    if len(rest) > 1:
        raise InvalidArgument("ML.FORECAST", "takes MODEL and STRUCT(...) options", "Remove the extra arguments")
    horizon = opts.get("horizon", 3)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= int(sm.meta.get("horizon", 1000)):
        raise InvalidArgument("horizon", f"expected a whole number from 1 to the model's horizon "
                              f"({sm.meta.get('horizon', 1000)}), got {horizon!r}", "Write STRUCT(7 AS horizon)")
    level = opts.get("confidence_level", 0.95)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise InvalidArgument("confidence_level", f"expected a number between 0 and 1, got {level!r}",
                              "Write STRUCT(0.9 AS confidence_level)")
    roles = sm.meta["roles"]
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    id_col = f"item AS {quote_ident(roles['item'])}, " if roles.get("item") else ""
    return (f"SELECT {id_col}CAST(date AS TIMESTAMP) AS forecast_timestamp, forecast AS forecast_value, "
            f"(upper - lower) / {2 * z!r} AS standard_error, CAST({float(level)!r} AS DOUBLE) AS confidence_level, "
            f"lower AS prediction_interval_lower_bound, upper AS prediction_interval_upper_bound, "
            f"lower AS confidence_interval_lower_bound, upper AS confidence_interval_upper_bound, method "
            f"FROM forecast_demand({literal(sm.meta['relation'])}, {int(horizon)}, item := {literal(roles.get('item'))}, "
            f"date := {literal(roles['date'])}, value := {literal(roles['value'])}, level := {float(level)!r}) "
            f"ORDER BY ALL")


def _recommend(con, sm, fname, rest):
    _need_task(sm, fname, {"recommend"}, "ML.RECOMMEND needs a model created with model_type='matrix_factorization'")
    if len(rest) > 1:
        raise InvalidArgument("ML.RECOMMEND", "takes MODEL and optionally TABLE users", "Remove the extra arguments")
    roles = sm.meta.get("roles") or {}
    user, item, rating = roles.get("user"), roles.get("item"), roles.get("weight")
    relation = sm.meta.get("relation")
    rel = resolve(con, relation) if relation else None
    utype = rel.columns.get(user, "VARCHAR") if rel else "VARCHAR"
    itype = rel.columns.get(item, "VARCHAR") if rel else "VARCHAR"
    n_items = con.execute(f"SELECT count(DISTINCT {quote_ident(item)}) FROM {rel.sql}").fetchone()[0] if rel else 10
    k = max(1, min(10, int(n_items)))
    score = quote_ident(f"predicted_{rating or 'rating'}_confidence")
    where = ""
    if rest:
        src = _source(con, rest[0], fname)
        where = f' WHERE CAST("user" AS VARCHAR) IN (SELECT CAST({quote_ident(user)} AS VARCHAR) FROM {src} AS __wml_u)'
    return (f'SELECT TRY_CAST("user" AS {utype}) AS {quote_ident(user)}, TRY_CAST(item AS {itype}) AS {quote_ident(item)}, '
            f'score AS {score}, rank FROM recommend_items({literal(sm.model)}, {k}){where}')
