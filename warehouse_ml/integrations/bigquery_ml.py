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
from ..errors import InvalidArgument, ModelNotFound, WmlError
from ..frontdoor import register_statement_handler

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
SUPERVISED = {"classification", "regression"}
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
ML_FUNCTIONS = ("PREDICT", "EVALUATE", "FEATURE_IMPORTANCE", "GLOBAL_EXPLAIN", "TRAINING_INFO", "FORECAST", "RECOMMEND")
FUNCTION_HINT = "Supported: " + ", ".join(f"ML.{f}" for f in ML_FUNCTIONS)
SUPPORTED_TYPES = ", ".join(f"'{t}'" for t in MODEL_TYPES)

_CREATE_MODEL = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?MODEL\b", re.I)
_DROP_MODEL = re.compile(r"^\s*DROP\s+MODEL\b", re.I)
_ML_CALL = re.compile(r"\bML\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.I)
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*\s*", re.S)
_ARROW_TO_SQL = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "uint8": "UTINYINT",
                 "uint16": "USMALLINT", "uint32": "UINTEGER", "uint64": "UBIGINT", "bool": "BOOLEAN",
                 "string": "VARCHAR", "large_string": "VARCHAR", "float": "FLOAT", "double": "DOUBLE"}


def matches(query: str) -> bool:
    body = _LEADING_COMMENTS.sub("", query, count=1)
    if _CREATE_MODEL.match(body) or _DROP_MODEL.match(body):
        return True
    return any(_outside_quotes(query, m.start()) for m in _ML_CALL.finditer(query))


def run(con, query: str, params=None):
    """Translate and run one BigQuery ML statement on ``con``; returns ``con`` holding the result."""
    body = _LEADING_COMMENTS.sub("", query, count=1).strip().rstrip(";")
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


# -- small helpers ---------------------------------------------------------------------------------------------
def _lit(value) -> str:
    """A Python value as a SQL literal (strings quoted and escaped)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _transpile(sql: str) -> str:
    """BigQuery SQL to DuckDB SQL (one statement)."""
    try:
        return sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]
    except sqlglot.errors.ParseError as e:
        raise InvalidArgument("query", f"could not parse the BigQuery SQL: {str(e).splitlines()[0]}",
                              "Check the statement's syntax; BigQuery ML statements are translated with sqlglot") from None


def _quote_state(sql: str) -> list[bool]:
    inside, quote, i = [False] * len(sql), None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            inside[i] = True
            if ch == "\\" and quote in "'\"":
                if i + 1 < len(sql):
                    inside[i + 1] = True
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            inside[i] = True
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = len(sql) if j < 0 else j
            for k in range(i, j):
                inside[k] = True
            i = j
            continue
        i += 1
    return inside


def _outside_quotes(sql: str, pos: int) -> bool:
    return not _quote_state(sql)[pos]


def _close_paren(sql: str, open_pos: int, inside: list[bool]) -> int:
    depth = 0
    for i in range(open_pos, len(sql)):
        if inside[i]:
            continue
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise InvalidArgument("query", "an ML.* call has no closing parenthesis", "Balance the parentheses")


def _split_args(text: str) -> list[str]:
    inside, depth, start, out = _quote_state(text), 0, 0, []
    for i, ch in enumerate(text):
        if inside[i]:
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def _model_name(ref: str) -> str:
    """`dataset.model` / dataset.model / project.dataset.model as one name: 'dataset.model'."""
    try:
        table = exp.to_table(ref.strip(), dialect="bigquery")
    except (sqlglot.errors.ParseError, ValueError):
        table = None
    if table is None or not table.name:
        raise InvalidArgument("MODEL", f"could not read the model name {ref!r}", "Write MODEL `dataset.model` or MODEL m")
    return ".".join(p.name for p in table.parts)


def _store(con):
    from ..store import ModelStore

    return ModelStore(con)


def _describe(con, model: str):
    store = _store(con)
    try:
        return store.describe(model)
    except ModelNotFound:
        raise ModelNotFound(model, store.model_names(),
                            hint=f"CREATE MODEL `{model}` OPTIONS(model_type='logistic_reg', input_label_cols=['label']) "
                                 "AS SELECT ...") from None


# -- CREATE MODEL ----------------------------------------------------------------------------------------------
@dataclass
class ModelSpec:
    name: str
    replace: bool
    if_not_exists: bool
    options: dict
    select_sql: str  # DuckDB SQL


def _value(node):
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_value(node.this)
    if isinstance(node, exp.Array):
        return [_value(e) for e in node.expressions]
    if isinstance(node, (exp.Column, exp.Var, exp.Identifier)):
        return node.name
    raise InvalidArgument("OPTIONS", f"cannot read the option value {node.sql(dialect='bigquery')}",
                          "Use a string, number, TRUE/FALSE or an array of strings")


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
            options[key] = _value(prop.args.get("value"))
        else:
            clause = type(prop).__name__.replace("ModelProperty", "").replace("Property", "").upper() or "clause"
            raise InvalidArgument(clause, f"the {clause} clause of CREATE MODEL is not supported",
                                  "Compute those columns in the AS SELECT instead (and the same way when predicting)")
    if stmt.expression is None:
        raise InvalidArgument("AS SELECT", "CREATE MODEL needs training data",
                              "Add AS SELECT ... (remote and imported models are not supported)")
    select_sql = stmt.expression.sql(dialect="duckdb")
    return ModelSpec(_model_name(stmt.this.sql(dialect="bigquery")), bool(stmt.args.get("replace")),
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
    store = _store(con)
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
    version = _store(con).save(spec.name, task="forecast", algorithm="arima_plus", fmt=fmt, artifact=blob,
                               label=value, features=[], metrics={}, params={"horizon": horizon}, meta=meta,
                               n_rows=n, n_train=n, n_test=0, seconds=0.0)
    return con.execute("SELECT $1 AS model, $2 AS version, 'forecast' AS task, 'arima_plus' AS algorithm, $3 AS n_train",
                       [spec.name, version, n])


def drop_model(con, sql: str):
    stmt = sqlglot.parse_one(sql, read="bigquery")
    name = _model_name(stmt.args["tables"][0].sql(dialect="bigquery"))
    if name not in _store(con).model_names():
        if stmt.args.get("exists"):
            return con.execute("SELECT $1 AS model, 0 AS versions_removed", [name])
        _describe(con, name)  # raises ModelNotFound with suggestions
    for version in _store(con).versions(name):
        con.execute(f"DROP TABLE IF EXISTS wml.{quote_ident(f'bqml_{name}_v{version}')}")
    return con.execute("SELECT model, count(*) AS versions_removed FROM ml_drop($1) GROUP BY model", [name])


# -- ML.* table functions --------------------------------------------------------------------------------------
def translate(con, sql: str) -> str:
    """Replace every ML.* call by a DuckDB subquery and transpile the rest from BigQuery SQL."""
    calls: dict[str, str] = {}
    inside = _quote_state(sql)
    out, pos = [], 0
    for m in _ML_CALL.finditer(sql):
        if m.start() < pos or inside[m.start()]:
            continue
        open_pos = m.end() - 1
        close = _close_paren(sql, open_pos, inside)
        placeholder = f"__wml_ml_call_{len(calls)}__"
        calls[placeholder] = _ml_call(con, m.group(1).upper(), _split_args(sql[open_pos + 1:close]))
        out.append(sql[pos:m.start()])
        out.append(placeholder)
        pos = close + 1
    out.append(sql[pos:])
    result = _transpile("".join(out))
    for placeholder, subquery in calls.items():
        if placeholder not in result:
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
        return "(" + (translate(con, inner) if matches(inner) else _transpile(inner)) + ")"
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
            out[e.this.name.lower()] = _value(e.expression)
        elif isinstance(e, exp.Alias):
            out[e.alias.lower()] = _value(e.this)
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
    model = _model_name(args[0][5:])
    sm = _describe(con, model)
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
    m = _lit(sm.model)
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
        pos, neg = (f"CAST({_lit(c)} AS {ltype})" for c in (classes[1], classes[0]))
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
    m = _lit(sm.model)
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
        return (f"SELECT avg(abs(y - p)) AS mean_absolute_error, avg((y - p) ^ 2) AS mean_squared_error, "
                f"CASE WHEN min(y) > -1 AND min(p) > -1 THEN avg((ln(1 + y) - ln(1 + p)) ^ 2) END AS mean_squared_log_error, "
                f"median(abs(y - p)) AS median_absolute_error, "
                f"1 - sum((y - p) ^ 2) / nullif(sum((y - (SELECT avg(y) FROM __wml_e)) ^ 2), 0) AS r2_score, "
                f"1 - var_pop(y - p) / nullif(var_pop(y), 0) AS explained_variance, count(*) AS n_rows FROM __wml_e")\
            .replace("FROM __wml_e", f"FROM (SELECT CAST(__wml_s.{y} AS DOUBLE) AS y, ml_predict({m}, __wml_s) AS p "
                                     f"FROM {src} AS __wml_s WHERE __wml_s.{y} IS NOT NULL)")
    text = (f"CAST(CAST(__wml_s.{y} AS INTEGER) AS VARCHAR)" if ltype == "BOOLEAN" else f"CAST(__wml_s.{y} AS VARCHAR)")
    if len(classes) == 2:
        pos = _lit(str(classes[1]))
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
    m = _lit(sm.model)
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
            f"FROM ml_models() WHERE model = {_lit(sm.model)} AND is_active")


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
            f"FROM forecast_demand({_lit(sm.meta['relation'])}, {int(horizon)}, item := {_lit(roles.get('item'))}, "
            f"date := {_lit(roles['date'])}, value := {_lit(roles['value'])}, level := {float(level)!r}) "
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
            f'score AS {score}, rank FROM recommend_items({_lit(sm.model)}, {k}){where}')


register_statement_handler(matches, run)

__all__ = ["matches", "run", "translate", "create_model", "parse_create_model", "MODEL_TYPES", "WmlError"]
