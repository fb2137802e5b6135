"""Training from Spark: DuckDB's ml_train on a stratified sample of a DataFrame, collected to the driver.

A supervised fit (gradient boosting, forests, linear models, the MLP) needs its training rows in one process, so
a DataFrame larger than one machine is trained on a sample, and the sample's size is stated wherever the model
is: in the returned row, in its notes and in the stored metadata (``meta.sample``). Rows are drawn per label
value with the same fraction (Spark's ``sampleBy``, distributed), so each class keeps its share of the data;
a numeric label with many values is sampled uniformly. The sample is trained on by the very kernel DuckDB's
``ml_train`` runs (same options, checks, hold-out and deploy notes), in a scratch DuckDB store on the driver,
and the version is written as an ``ml_export`` folder (safe skops / npz bytes): Spark scores it after
``install(spark, models=folder)`` and DuckDB stores it with ``FROM ml_import('folder')``.
What distributes without sampling is distributed instead: per-series forecasting fits and MLlib's ALS.
"""
from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidArgument, TrainingFailed
from ..exchange import ModelBundle, export_models
from .frames import frame_relation

DEFAULT_SAMPLE_ROWS = 1_000_000  # what one machine trains on in minutes (see README, Performance)
MAX_STRATA = 1_000  # more label values than this: a numeric target, sampled uniformly


def stratified_sample(df, label: str, rows: int, seed: int = 0) -> tuple[pa.Table, dict]:
    """At most about ``rows`` rows of ``df`` with a label (not NULL, NaN or infinite), the same fraction of each label value, as Arrow on
    the driver; and what was drawn (source and sample sizes, the fraction, the strata)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, DoubleType, FloatType, IntegralType, StringType

    y = F.col(label)
    labelled = df.where(y.isNotNull())
    if isinstance(df.schema[label].dataType, (DoubleType, FloatType)):  # NaN and +-inf are missing, as in DuckDB
        labelled = labelled.where(~F.isnan(y) & ~y.isin(float("inf"), float("-inf")))
    strata = None
    if isinstance(df.schema[label].dataType, (StringType, BooleanType, IntegralType)):
        counts = labelled.groupBy(label).count().limit(MAX_STRATA + 1).collect()
        if len(counts) <= MAX_STRATA:
            strata = {r[0]: r[1] for r in counts}
    source = sum(strata.values()) if strata is not None else labelled.count()
    if source == 0:
        raise TrainingFailed(f"every row of the DataFrame has a NULL {label}; there is nothing to learn from")
    fraction = min(1.0, rows / source)
    if fraction >= 1.0:
        chosen = labelled
    elif strata is not None:
        chosen = labelled.sampleBy(label, {value: fraction for value in strata}, seed)
    else:
        chosen = labelled.sample(fraction=fraction, seed=seed)
    table = chosen.toArrow()
    info = {"source_rows": int(source), "sample_rows": table.num_rows, "fraction": fraction,
            "stratified_by": label if strata is not None else None, "seed": seed}
    if strata is not None:
        drawn = {str(r["values"]): r["counts"] for r in pc.value_counts(table.column(label)).to_pylist()}
        info["strata"] = {str(value): {"rows": n, "sampled": drawn.get(str(value), 0)} for value, n in strata.items()}
    return table, info


def _sample_note(info: dict) -> str:
    if info["fraction"] >= 1.0:
        return f"trained on all {info['source_rows']:,} labelled rows of the Spark DataFrame (no sample needed)"
    how = f"stratified by {info['stratified_by']}" if info["stratified_by"] else "uniform"
    return (f"trained on a sample of {info['sample_rows']:,} of {info['source_rows']:,} labelled rows of the Spark "
            f"DataFrame ({how}, fraction {info['fraction']:.6g}, seed {info['seed']})")


def ml_train(df, model: str, *, label: str, into: str, sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0,
             **options) -> dict:
    """Train ``model`` on ``df`` (a Spark DataFrame) with DuckDB's ``ml_train`` and write it to the export folder
    ``into``; returns ml_train's row plus ``sample`` (what it was trained on). ``options``: ml_train's own
    (algorithm, task, exclude, test_size, params, personal). Rows beyond ``sample_rows`` are sampled (see the
    module's docstring)."""
    import warehouse_ml as wml
    from ..binding.context import CallContext, Runtime
    from ..binding.spec import spec
    from ..functions.supervised import ml_train as train_kernel

    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 100:
        raise InvalidArgument("sample_rows", f"must be a whole number of at least 100, got {sample_rows!r}",
                              f"Pass how many rows the driver may train on, e.g. sample_rows={DEFAULT_SAMPLE_ROWS}")
    if not isinstance(into, str) or not into:
        raise InvalidArgument("into", f"expected a folder path, got {into!r}", "Pass e.g. into='models/'")
    label = frame_relation(df).column(label, "label")
    opts = spec("ml_train").parse_options({**options, "label": label})  # DuckDB's option checks, before any work
    table, info = stratified_sample(df, label, sample_rows, seed)
    con = wml.connect()  # a scratch store on the driver: the version is handed on as an export, not kept here
    try:
        con.register("sample_arrow", table)
        con.execute("CREATE TABLE spark_sample AS FROM sample_arrow")  # a table: every cursor of the store sees it
        con.unregister("sample_arrow")
        row = train_kernel(CallContext(Runtime(con), "ml_train"), model, "spark_sample", **opts)[0]
        record = ModelBundle.from_duckdb(con, [model]).records[model]
    finally:
        con.close()
    note = _sample_note(info)
    meta = json.loads(record.meta)
    meta["sample"], meta["notes"] = info, [*meta.get("notes", []), note]
    export_models(ModelBundle([dataclasses.replace(record, meta=json.dumps(meta))]), into)
    return {**row, "notes": [*row["notes"], note], "sample": info}
