"""Scoring on Spark: the DuckDB scoring functions of ``functions.supervised`` as Arrow UDFs.

Spark hands each UDF a whole Arrow batch (the ``struct(*)`` argument arrives as a StructArray, like DuckDB's
row struct), and the UDF calls the very function DuckDB's ``ml_predict`` calls, with a context whose store is
a broadcast ``ModelBundle``. Same featurizer, same lean scorer, same code: same predictions.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pyarrow as pa

from ..functions import supervised as S
from ..exchange import BundleStore

EXPLAIN_DDL = "array<struct<feature: string, contribution: double>>"
_STORES: dict[str, BundleStore] = {}  # per Python worker: install token -> store with its loaded models


@dataclass
class BundleContext:
    """What the DuckDB scoring functions need of their context: a store to load models from."""
    store: BundleStore


def _context(shared) -> BundleContext:
    """The worker's store for one ``install`` (a token and the broadcast records): models load once per worker."""
    token, broadcast = shared
    store = _STORES.get(token)
    if store is None:
        store = _STORES[token] = BundleStore(broadcast.value)
    return BundleContext(store)


def function_name(model: str) -> str:
    """``predict_<model>`` with anything but letters, digits and underscores replaced, as ``ml_export_sql`` does."""
    return "predict_" + re.sub(r"\W", "_", model)


def scoring_udfs(broadcast) -> dict:
    """The UDFs to register: ml_predict, ml_predict_label, ml_explain_row and one predict_<model> per model."""
    shared = (uuid.uuid4().hex, broadcast)
    from pyspark.sql.functions import arrow_udf

    @arrow_udf("double")
    def ml_predict(models: pa.Array, rows: pa.Array) -> pa.Array:
        return S.ml_predict(_context(shared), models, rows)

    @arrow_udf("string")
    def ml_predict_label(models: pa.Array, rows: pa.Array) -> pa.Array:
        return S.ml_predict_label(_context(shared), models, rows)

    @arrow_udf(EXPLAIN_DDL)
    def ml_explain_row(models: pa.Array, rows: pa.Array, k: pa.Array) -> pa.Array:
        return S.ml_explain_row(_context(shared), models, rows, k)

    udfs = {"ml_predict": ml_predict, "ml_predict_label": ml_predict_label, "ml_explain_row": ml_explain_row}
    for model in broadcast.value:
        udfs[function_name(model)] = _model_udf(shared, model)
    return udfs


def _model_udf(shared, model: str):
    from pyspark.sql.functions import arrow_udf

    @arrow_udf("double")
    def predict_model(rows: pa.Array) -> pa.Array:
        return S.predict_values(_context(shared), model, S._rows_arg(rows), "value")

    return predict_model
