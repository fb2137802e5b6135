"""Stored models carried between model stores and engines, as safe artifact bytes (skops / npz, never pickle).

A ``ModelBundle`` holds, per model, the active version's metadata and artifact bytes. It is read either straight
from the DuckDB file the user trains in (``from_duckdb``) or from a Parquet file written by ``export_models`` /
SQL ``ml_export`` (one row per model: metadata as JSON and the artifact as BINARY), which any engine that reads
Parquet can carry: Spark scores from it (``warehouse_ml.spark``), and ``import_models`` / SQL ``ml_import`` store
it in another DuckDB database. Every reader loads the bytes with ``store.loads_artifact``, the same allowlisted
loader DuckDB uses, so a model file can never execute code where it is read.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InvalidArgument, ModelNotFound
from .store import ModelStore, StoredModel, loads_artifact

EXPORT_SCHEMA = pa.schema([
    ("model", pa.string()), ("version", pa.int32()), ("task", pa.string()), ("algorithm", pa.string()),
    ("label", pa.string()), ("features", pa.string()), ("metrics", pa.string()), ("params", pa.string()),
    ("meta", pa.string()), ("n_rows", pa.int64()), ("format", pa.string()), ("artifact", pa.binary()),
])
EXPORT_FILE = "models.parquet"


@dataclass(frozen=True)
class ModelRecord:
    """One model's active version: plain data (JSON text and bytes), cheap to broadcast."""
    model: str
    version: int
    task: str
    algorithm: str
    label: str | None
    features: str
    metrics: str
    params: str
    meta: str
    n_rows: int | None
    format: str
    artifact: bytes

    def load(self) -> StoredModel:
        sm = StoredModel(self.model, self.version, self.task, self.algorithm, self.label, json.loads(self.features),
                         json.loads(self.metrics), json.loads(self.params), json.loads(self.meta), self.n_rows, None)
        sm.obj = loads_artifact(self.format, self.artifact)
        return sm


class ModelBundle:
    """The active versions of some models, keyed by name."""

    def __init__(self, records: list[ModelRecord]):
        self.records = {r.model: r for r in records}

    @classmethod
    def from_duckdb(cls, source: str | duckdb.DuckDBPyConnection, models: list[str] | None = None) -> "ModelBundle":
        """Read the active versions from a DuckDB database file (opened read-only) or an open connection."""
        con = _open_read_only(source) if isinstance(source, str) else source
        try:
            store = ModelStore(con)
            names = store.model_names()
            if not names:
                raise InvalidArgument("models", f"the DuckDB database {source!r} holds no trained models",
                                      "Train one first: FROM ml_train('churn', 'users', label := 'churned')")
            chosen = names if models is None else list(models)
            records = []
            for name in chosen:
                sm = store.describe(name)  # active version; raises ModelNotFound naming the models there are
                fmt, blob, metrics, params = con.execute(
                    "SELECT format, artifact, metrics, params FROM wml.model_versions WHERE model = $1 AND version = $2",
                    [name, sm.version]).fetchone()
                records.append(ModelRecord(name, sm.version, sm.task, sm.algorithm, sm.label, json.dumps(sm.features),
                                           metrics, params, json.dumps(sm.meta), sm.n_rows, fmt, bytes(blob)))
            return cls(records)
        finally:
            if isinstance(source, str):
                con.close()

    @classmethod
    def from_parquet(cls, path: str, argument: str = "models") -> "ModelBundle":
        """Read a bundle written by ``export_models`` (a Parquet file, or the folder holding models.parquet)."""
        file = os.path.join(path, EXPORT_FILE) if os.path.isdir(path) else path
        if not os.path.exists(file):
            raise InvalidArgument(argument, f"no exported models at {path!r}",
                                  "Export them first: FROM ml_export('churn', 'models/') in DuckDB, or "
                                  "warehouse_ml.spark.export_models('shop.duckdb', 'models/')")
        try:
            table = pq.read_table(file)
        except (pa.ArrowException, OSError) as e:
            raise InvalidArgument(argument, f"{file!r} is not a readable Parquet file ({e})",
                                  "Pass the folder ml_export wrote (it holds models.parquet)") from None
        missing = set(EXPORT_SCHEMA.names) - set(table.column_names)
        if missing:
            raise InvalidArgument(argument, f"{file!r} is not a warehouse-ml model export (no {sorted(missing)})",
                                  "Write it with ml_export (SQL) or warehouse_ml.spark.export_models")
        return cls([ModelRecord(**r) for r in table.select(EXPORT_SCHEMA.names).to_pylist()])

    @classmethod
    def open(cls, source: Any, models: list[str] | None = None) -> "ModelBundle":
        """A bundle from a DuckDB file or connection, or from a Parquet export (path ending .parquet or a folder)."""
        if isinstance(source, ModelBundle):
            return source
        if isinstance(source, duckdb.DuckDBPyConnection):
            return cls.from_duckdb(source, models)
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidArgument("models", f"expected a DuckDB file, a connection or an export folder, got {source!r}",
                                  "Pass e.g. models='shop.duckdb' or models='exported_models/'")
        source = os.fspath(source)
        if os.path.isdir(source) or source.endswith(".parquet"):
            return cls.from_parquet(source).select(models)
        if not os.path.exists(source):
            raise InvalidArgument("models", f"no such DuckDB file: {source!r}",
                                  "Pass the path of the database you trained in, e.g. models='shop.duckdb'")
        return cls.from_duckdb(source, models)

    def select(self, models: list[str] | None) -> "ModelBundle":
        """Only ``models`` (all when None); a name the bundle lacks is an error naming those it has."""
        if models is None:
            return self
        unknown = [m for m in models if m not in self.records]
        if unknown:
            raise ModelNotFound(unknown[0], sorted(self.records))
        return ModelBundle([self.records[m] for m in models])

    def to_arrow(self) -> pa.Table:
        rows = [r.__dict__ for r in self.records.values()]
        return pa.Table.from_pylist(rows, schema=EXPORT_SCHEMA)


def _open_read_only(path: str) -> duckdb.DuckDBPyConnection:
    """The file read-only; when this process already has it open (e.g. ``wml.connect`` in the same notebook),
    DuckDB allows only the same configuration, so share that open database instead."""
    try:
        return duckdb.connect(path, read_only=True)
    except duckdb.ConnectionException:
        return duckdb.connect(path)


def export_models(source: str | duckdb.DuckDBPyConnection, path: str, models: list[str] | None = None) -> str:
    """Write the active versions of ``models`` (default: all) to ``path/models.parquet``; returns the file.
    Models already in that file stay unless exported again (then the new row replaces theirs); the file is
    replaced in one step, so a reader sees the old or the new export, never half of one."""
    bundle = ModelBundle.open(source, models)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise InvalidArgument("path", f"cannot create the folder {path!r} ({e.strerror})",
                              "Pass a folder this process may write, e.g. 'models/'") from None
    file = os.path.join(path, EXPORT_FILE)
    if os.path.exists(file):
        kept = ModelBundle.from_parquet(file).records
        bundle = ModelBundle([r for name, r in kept.items() if name not in bundle.records] +
                             list(bundle.records.values()))
    partial = f"{file}.{os.getpid()}.partial"
    pq.write_table(bundle.to_arrow(), partial)
    os.replace(partial, file)
    return file


class BundleStore:
    """The part of ``ModelStore`` that scoring uses (``load``), served from a bundle; loads each model once."""

    def __init__(self, records: dict[str, ModelRecord]):
        self.records = records
        self._loaded: dict[str, StoredModel] = {}

    def load(self, model: str) -> StoredModel:
        if not isinstance(model, str):
            raise InvalidArgument("model", f"expected a model name, got {model!r}", "Pass the model's name as a string")
        if model not in self._loaded:
            if model not in self.records:
                raise ModelNotFound(model, sorted(self.records))
            self._loaded[model] = self.records[model].load()
        return self._loaded[model]


def import_models(con: duckdb.DuckDBPyConnection, path: str, models: list[str] | None = None) -> list[tuple[str, int]]:
    """Store the models of a Parquet export in ``con``'s model store as new active versions; returns
    (model, version) pairs. Each artifact is loaded through the allowlist first, so an unsafe one is refused
    before anything is written."""
    cur = con.cursor()  # a connection with a result still open refuses new work in DuckDB 2
    try:
        return import_into(ModelStore(cur), path, models)
    finally:
        cur.close()


def import_into(store: ModelStore, path: str, models: list[str] | None = None) -> list[tuple[str, int]]:
    """``import_models`` into an open model store: every artifact is loaded (allowlist) before any is saved."""
    bundle = ModelBundle.from_parquet(os.fspath(path), "path").select(models)
    for record in bundle.records.values():
        record.load()
    return [(r.model, store.save(r.model, task=r.task, algorithm=r.algorithm, fmt=r.format, artifact=r.artifact,
                                 label=r.label, features=json.loads(r.features), metrics=json.loads(r.metrics),
                                 params=json.loads(r.params), meta=json.loads(r.meta), n_rows=r.n_rows))
            for r in bundle.records.values()]
