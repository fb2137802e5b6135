"""ml_models, ml_deploy, ml_rollback, ml_drop: the model registry as table functions."""
from __future__ import annotations

from ..binding.spec import Arg, sql_function
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
