"""Shared shapes of the SQL entry points: the row ml_train returns, the per-task trainer/predictor tables, and the
check several entry points make (a numeric column).

``ml_train(model, relation, task := ...)`` and ``ml_predict(model, row)`` are one generic entry each; a task
module plugs in with ``@trainer('recommend')`` / ``@predictor('segment')`` so that SQL keeps one spelling.
"""
from __future__ import annotations

from collections.abc import Callable

from ..binding.catalog import is_numeric_type
from ..errors import InvalidArgument

TRAIN_ROW = (
    "STRUCT(model VARCHAR, version INTEGER, task VARCHAR, algorithm VARCHAR, n_train BIGINT, n_test BIGINT, "
    "metrics MAP(VARCHAR, DOUBLE), trained_at TIMESTAMP, seconds DOUBLE, "
    "candidates STRUCT(algorithm VARCHAR, cv_score DOUBLE, metric VARCHAR)[], notes VARCHAR[])"
)

# task -> func(ctx, model: str, relation: str, options: dict) -> dict shaped like TRAIN_ROW
TRAINERS: dict[str, Callable] = {}
# task -> func(stored_model, rows: pa.StructArray, output: str) -> pa.Array; output is "value" or "label"
PREDICTORS: dict[str, Callable] = {}


def trainer(task: str):
    def wrap(func):
        TRAINERS[task] = func
        return func

    return wrap


def predictor(task: str):
    def wrap(func):
        PREDICTORS[task] = func
        return func

    return wrap


def numeric_column(rel, name: str, argument: str) -> str:
    """The relation's column ``name`` (passed as ``argument``) if it holds numbers or booleans, else a clear error."""
    col = rel.column(name, argument)
    t = rel.columns[col]
    if not (is_numeric_type(t) or t.upper() == "BOOLEAN"):
        raise InvalidArgument(argument, f"column '{col}' is {t}, not a number",
                              f"Pass a numeric or 0/1 column, or cast it in a view (e.g. CAST({col} AS DOUBLE))")
    return col
