"""ml_models, ml_deploy, ml_rollback, ml_drop, ml_export, ml_import: the model registry as table functions."""
from __future__ import annotations

from .. import exchange
from ..binding.spec import Arg, Identifier, Option, sql_function
from ..errors import InvalidArgument
from ..store import validate_model_name

MODEL_ROW = (
    "STRUCT(model VARCHAR, version INTEGER, task VARCHAR, algorithm VARCHAR, is_active BOOLEAN, "
    "metrics MAP(VARCHAR, DOUBLE), features VARCHAR[], n_rows BIGINT, created_at TIMESTAMP, label VARCHAR, "
    "seconds DOUBLE)"
)


def _rows(ctx, model: str | None = None) -> list[dict]:
    return [r for r in ctx.store.listing() if model is None or r["model"] == model]


_MODEL = [Arg("model")]


@sql_function("ml_models", "Every stored version of every model, with its metrics and whether it is active.",
              returns=MODEL_ROW)
def ml_models(ctx):
    return _rows(ctx)


@sql_function("ml_deploy", "Makes a stored version the active one.", args=[*_MODEL, Arg("version", "BIGINT")],
              returns=MODEL_ROW, writes=True)
def ml_deploy(ctx, model, version):
    validate_model_name(model)
    if version is None:
        raise InvalidArgument("version", "is NULL", f"Pass a version number listed by FROM ml_models() WHERE model = '{model}'")
    v = ctx.store.deploy(model, int(version))
    return [r for r in _rows(ctx, model) if r["version"] == v]


@sql_function("ml_rollback", "Makes the previously active version the active one again.", args=_MODEL,
              returns=MODEL_ROW, writes=True)
def ml_rollback(ctx, model):
    validate_model_name(model)
    v = ctx.store.rollback(model)
    return [r for r in _rows(ctx, model) if r["version"] == v]


@sql_function("ml_drop", "Deletes a model and all its versions.", args=_MODEL, returns=MODEL_ROW, writes=True)
def ml_drop(ctx, model):
    validate_model_name(model)
    before = _rows(ctx, model)
    ctx.store.drop(model)
    return before


def _path(path) -> str:
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgument("path", f"expected a folder, got {path!r}", "Pass e.g. 'models/' (a local or mounted folder)")
    return path


@sql_function("ml_export", "Writes a model's active version to path/models.parquet (safe artifacts, no pickle) for "
              "Spark or ml_import elsewhere.", args=[*_MODEL, Arg("path")],
              returns="STRUCT(model VARCHAR, version INTEGER, file VARCHAR)", writes=True)
def ml_export(ctx, model, path):
    """A second export to the same folder adds or replaces that model's row. It writes files where the database
    runs, so a read-only session (the read-only server) may not call it."""
    validate_model_name(model)
    version = ctx.store.active_version(model)
    file = exchange.export_models(ctx.cursor(), _path(path), [model])
    return [{"model": model, "version": version, "file": file}]


@sql_function("ml_import", "Stores the models of an export (or only model := name) as new active versions.",
              args=[Arg("path")], options=[Option("model", Identifier(), doc="import only this model")],
              returns=MODEL_ROW, writes=True)
def ml_import(ctx, path, *, model):
    """Each artifact is loaded through the allowlist before anything is stored."""
    if model is not None:
        validate_model_name(model)
    saved = exchange.import_into(ctx.store, _path(path), None if model is None else [model])
    return [r for name, version in saved for r in _rows(ctx, name) if r["version"] == version]
