"""ml_models, ml_deploy, ml_rollback, ml_drop, ml_export, ml_import: the model registry as table functions."""
from __future__ import annotations

from .. import exchange
from ..binding.registry import table_udf
from ..errors import InvalidArgument
from ..store import validate_model_name

MODEL_ROW = (
    "STRUCT(model VARCHAR, version INTEGER, task VARCHAR, algorithm VARCHAR, is_active BOOLEAN, "
    "metrics MAP(VARCHAR, DOUBLE), features VARCHAR[], n_rows BIGINT, created_at TIMESTAMP, label VARCHAR, "
    "seconds DOUBLE)"
)


def _rows(ctx, model: str | None = None) -> list[dict]:
    return [r for r in ctx.store.listing() if model is None or r["model"] == model]


@table_udf("wml_models", args=[], returns=MODEL_ROW)
def ml_models(ctx):
    return _rows(ctx)


@table_udf("wml_deploy", args=["VARCHAR", "BIGINT"], returns=MODEL_ROW, writes=True)
def ml_deploy(ctx, model, version):
    validate_model_name(model)
    if version is None:
        raise InvalidArgument("version", "is NULL", f"Pass a version number listed by FROM ml_models() WHERE model = '{model}'")
    v = ctx.store.deploy(model, int(version))
    return [r for r in _rows(ctx, model) if r["version"] == v]


@table_udf("wml_rollback", args=["VARCHAR"], returns=MODEL_ROW, writes=True)
def ml_rollback(ctx, model):
    validate_model_name(model)
    v = ctx.store.rollback(model)
    return [r for r in _rows(ctx, model) if r["version"] == v]


@table_udf("wml_drop", args=["VARCHAR"], returns=MODEL_ROW, writes=True)
def ml_drop(ctx, model):
    validate_model_name(model)
    before = _rows(ctx, model)
    ctx.store.drop(model)
    return before


def _path(path) -> str:
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgument("path", f"expected a folder, got {path!r}", "Pass e.g. 'models/' (a local or mounted folder)")
    return path


@table_udf("wml_export", args=["VARCHAR", "VARCHAR"], returns="STRUCT(model VARCHAR, version INTEGER, file VARCHAR)",
           writes=True)
def ml_export(ctx, model, path):
    """The active version of ``model`` into ``path/models.parquet`` (safe artifact bytes, never a pickle), where
    Spark (``warehouse_ml.spark.install(spark, models=path)``) and ``ml_import`` in another database read it.
    It writes files where the database runs, so a read-only session (the read-only server) may not call it."""
    validate_model_name(model)
    version = ctx.store.active_version(model)
    file = exchange.export_models(ctx.cursor(), _path(path), [model])
    return [{"model": model, "version": version, "file": file}]


@table_udf("wml_import", args=["VARCHAR", "VARCHAR"], returns=MODEL_ROW, writes=True)
def ml_import(ctx, path, model):
    """The models of an export (or only ``model``) as new active versions here; each artifact is loaded through the
    allowlist before anything is stored."""
    if model is not None:
        validate_model_name(model)
    saved = exchange.import_into(ctx.store, _path(path), None if model is None else [model])
    return [r for name, version in saved for r in _rows(ctx, name) if r["version"] == version]
