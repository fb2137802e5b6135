"""The model store: versioned models in schema ``wml`` of the same DuckDB database.

Tables
  ``wml.model_versions``  one row per trained version: task, algorithm, label, feature schema, metrics,
                          parameters, training size and time, and the artifact (bytes) with its format.
  ``wml.deployments``     an append-only log of which version became active (train, deploy, rollback);
                          the active version is the top of the stack it replays to.

Views
  ``wml.predict_inline(model, row)`` a macro the store rewrites in the same transaction as every change of
                          an active version: the active linear models inlined as SQL (no Python per batch), the
                          UDF for every other model. ``ml_predict`` routes through it, so plain DuckDB (dbt, any
                          client) scores a linear model at DuckDB's own speed.
  ``wml.predict_inline_<model>(row)`` the same for one model alone (``DEDICATED_MODELS``), which its shortcut
                          ``predict_<model>`` calls, so its cost does not grow with the models in the store.

Artifacts are stored in formats whose loading executes no code from the table: ``skops`` (scikit-learn
objects, loaded only when every type in them is on an allowlist) and ``npz`` (NumPy arrays, loaded with
``allow_pickle=False``), and ``keras`` (deep models: Keras' own ``.keras`` zip, checked against a class
allowlist and loaded with ``safe_mode=True``, plus preprocessing arrays in an npz). A version is written in one
transaction after training succeeded, so a failed or interrupted run leaves the previous active version as it was.
"""
from __future__ import annotations

import io
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import numpy as np

from .errors import ConcurrentWrite, CorruptModel, InvalidArgument, ModelNotFound, UnsafeModel

SCHEMA_SQL = [
    "CREATE SCHEMA IF NOT EXISTS wml",
    """CREATE TABLE IF NOT EXISTS wml.model_versions (
        model VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        task VARCHAR NOT NULL,
        algorithm VARCHAR NOT NULL,
        label VARCHAR,
        features JSON,
        metrics JSON,
        params JSON,
        meta JSON,
        n_rows BIGINT,
        n_train BIGINT,
        n_test BIGINT,
        seconds DOUBLE,
        created_at TIMESTAMP,
        format VARCHAR NOT NULL,
        artifact BLOB NOT NULL,
        PRIMARY KEY (model, version))""",
    """CREATE TABLE IF NOT EXISTS wml.deployments (
        seq BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        action VARCHAR NOT NULL,
        deployed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (seq))""",
    # one row per statistic of each drift check, and one per update or retrain (monitor.py); added in the second
    # round: ensure_schema adds it to a store created before
    """CREATE TABLE IF NOT EXISTS wml.monitoring (
        check_id BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        version INTEGER,
        checked_at TIMESTAMP NOT NULL,
        action VARCHAR NOT NULL,
        relation VARCHAR,
        n_rows BIGINT,
        feature VARCHAR,
        kind VARCHAR,
        statistic VARCHAR,
        value DOUBLE,
        threshold DOUBLE,
        drifted BOOLEAN,
        note VARCHAR,
        counts BIGINT[])""",
    # forecasts kept by save_forecast with their run date, for forecast_accuracy
    """CREATE TABLE IF NOT EXISTS wml.forecasts (
        name VARCHAR NOT NULL,
        run_at TIMESTAMP NOT NULL,
        relation VARCHAR NOT NULL,
        roles JSON,
        item VARCHAR,
        date DATE,
        forecast DOUBLE,
        lower DOUBLE,
        upper DOUBLE,
        level DOUBLE,
        method VARCHAR,
        scale DOUBLE)""",
]
STORE_TABLES = ("model_versions", "deployments", "monitoring", "forecasts")
INLINE_MACRO = "predict_inline"  # in schema wml: every active linear model, chosen by name
#: models with a scoring macro of their own, ``wml.predict_inline_<model>(row)``, which their ``predict_<model>``
#: shortcut calls: DuckDB binds every branch of ``wml.predict_inline`` on every query (about 0.6 ms a 3-feature
#: linear model, 7-8 ms a 10-feature one), so a shortcut through it would pay for every model in the store
DEDICATED_MODELS = ("churn", "conversion", "ctr")
# Attempts of a store write that lost a race to a writer outside this process's lock (DuckDB's optimistic
# transactions report a conflict at INSERT or COMMIT); each retry allocates its numbers afresh.
WRITE_ATTEMPTS = 5

# Type prefixes a skops artifact may contain. Anything else (a function, a class from elsewhere) is refused.
SKOPS_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "scipy._lib", "builtins.slice", "builtins.type",
                          "collections.OrderedDict", "functools.partial", "warehouse_ml.tasks.")
# functools.partial is safe to allow: the function it wraps is a separate node that must pass this check too.

_generation: dict[str, int] = {}
_generation_lock = threading.Lock()
_writer_locks: dict[str, threading.Lock] = {}


def _writer_lock(db_key: str) -> threading.Lock:
    """One lock per database: store writes of every connection and cursor of this process take turns, so
    version and deployment numbers (max + 1) are allocated and committed atomically."""
    with _generation_lock:
        return _writer_locks.setdefault(db_key, threading.Lock())


def _bump(db_key: str) -> None:
    with _generation_lock:
        _generation[db_key] = _generation.get(db_key, 0) + 1


def dumps_estimator(obj: Any) -> tuple[str, bytes]:
    import skops.io as sio

    return "skops", sio.dumps(obj)


def dumps_keras(est: Any) -> tuple[str, bytes]:
    """A Keras model with its preprocessing (``tasks.deep``): the .keras zip and arrays inside an npz."""
    from .tasks.deep_storage import dumps_keras as dumps

    return "keras", dumps(est)


def dumps_arrays(arrays: dict[str, np.ndarray]) -> tuple[str, bytes]:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return "npz", buf.getvalue()


def loads_artifact(fmt: str, data: bytes) -> Any:
    """Load an artifact without executing code that came from the table."""
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        refused = [t for t in untrusted if not t.startswith(SKOPS_ALLOWED_PREFIXES)]
        if refused:
            raise UnsafeModel(f"the stored model holds types that are not allowed to load: {refused}. "
                              "Retrain it with warehouse-ml rather than writing artifacts by hand.")
        return sio.loads(data, trusted=untrusted)
    if fmt == "npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if fmt == "keras":  # npz without pickles + allowlisted .keras config loaded with safe_mode=True
        from .tasks.deep_storage import loads_keras

        return loads_keras(data)
    raise UnsafeModel(f"unknown artifact format '{fmt}'; this version of warehouse-ml loads skops, npz and keras")


def _load_stored(model: str, version: int, fmt: str, data) -> Any:
    """``loads_artifact`` for a stored version, whose errors name the model, the version and the way out."""
    way_out = (f"Retrain it with ml_train, or make an earlier version active with FROM ml_rollback('{model}') "
               f"or FROM ml_deploy('{model}', version)")
    try:
        return loads_artifact(fmt, b"" if data is None else bytes(data))
    except UnsafeModel as e:
        raise UnsafeModel(f"model '{model}' version {version}: {e} {way_out}") from None
    except Exception as e:  # noqa: BLE001  (zip, npz, skops and Keras readers each fail their own way on bad bytes)
        if "allow_pickle" in str(e):
            raise UnsafeModel(f"model '{model}' version {version} holds pickled Python objects, which warehouse-ml "
                              f"never loads (loading a pickle can run any code). {way_out}") from None
        raise CorruptModel(model, version, fmt, e, way_out) from None


@dataclass
class StoredModel:
    model: str
    version: int
    task: str
    algorithm: str
    label: str | None
    features: list[dict]
    metrics: dict[str, float]
    params: dict
    meta: dict
    n_rows: int | None
    created_at: datetime | None
    obj: Any = field(repr=False, default=None)
    derived: dict = field(repr=False, default_factory=dict)  # built on first use and cached with the model


class ModelStore:
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._cache: dict[tuple[str, int | None], tuple[int, StoredModel]] = {}
        self._lock = threading.Lock()
        row = con.execute(
            "SELECT coalesce(path, '') FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        # one key per database file however its path was spelled, so every connection to it shares one writer lock
        self.db_key = os.path.realpath(row[0]) if row and row[0] else f"memory:{id(con)}"

    # -- schema -------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        cur = self.con.cursor()
        try:
            exists = cur.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'wml' AND list_contains($1, table_name) "
                "AND database_name = current_database()", [list(STORE_TABLES)]
            ).fetchone()[0]
            if exists == len(STORE_TABLES) and self._inline_macro(cur) is not None:
                return
            with _writer_lock(self.db_key):
                for stmt in SCHEMA_SQL:
                    cur.execute(stmt)
                self._refresh_inline(cur)  # a store made before the macro existed gets it here
        except duckdb.Error as e:
            if "read-only" in str(e).lower():
                return  # a read-only database can still score with the models it holds
            raise
        finally:
            cur.close()

    # -- writing -------------------------------------------------------------------------------------------
    def save(self, model: str, *, task: str, algorithm: str, fmt: str, artifact: bytes, label: str | None = None,
             features: list[dict] | None = None, metrics: dict | None = None, params: dict | None = None,
             meta: dict | None = None, n_rows: int | None = None, n_train: int | None = None,
             n_test: int | None = None, seconds: float | None = None, activate: bool = True, obj: Any = None) -> int:
        """Write a new version (and make it active) in one transaction; returns the version number. ``obj``, the
        object ``artifact`` holds, becomes the cached active version when this one is activated, so the next
        prediction or training on this connection does not read back and parse what was just written."""
        validate_model_name(model)
        self.ensure_schema()
        row = [task, algorithm, label, _json(features or []), _json(metrics or {}), _json(params or {}),
               _json(meta or {}), n_rows, n_train, n_test, seconds]
        now = datetime.now(timezone.utc).replace(tzinfo=None)

        def write(cur) -> int:
            version = cur.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM wml.model_versions WHERE model = $1", [model]
            ).fetchone()[0]
            cur.execute(
                "INSERT INTO wml.model_versions VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
                [model, version, *row, now, fmt, artifact],
            )
            if activate:
                self._log(cur, model, version, "train", now)
                self._refresh_inline(cur)
            return version

        def cache(version: int) -> None:  # what describe(model, version, with_object=True) would return
            sm = StoredModel(model, version, task, algorithm, label, *(json.loads(v) for v in row[3:7]), n_rows, now, obj)
            with self._lock:
                self._cache[(model, None)] = (_generation.get(self.db_key, 0), sm)

        return self._write(write, f"the new version of '{model}' (trained, but not stored)",
                           cache if activate and obj is not None else None)

    def complete_meta(self, sm: StoredModel, add: dict, drop: tuple[str, ...] = ()) -> None:
        """Add to a stored version's meta what is computed on first use (ml_explain's importances), dropping
        ``drop``: one UPDATE of that row's meta column in a transaction, so its artifact and every other column
        stay as written, and a failed write changes nothing. ``sm`` (loaded from this store) takes the new meta,
        and stays this store's cached model rather than being read back. A read-only database is left as it is."""
        def write(cur) -> dict:
            row = cur.execute("SELECT meta FROM wml.model_versions WHERE model = $1 AND version = $2",
                              [sm.model, sm.version]).fetchone()
            if row is None:  # dropped since it was loaded
                return {}
            meta = {k: v for k, v in json.loads(row[0]).items() if k not in drop} | add
            cur.execute("UPDATE wml.model_versions SET meta = $1 WHERE model = $2 AND version = $3",
                        [_json(meta), sm.model, sm.version])
            return meta

        def restamp(meta: dict) -> None:  # the cached copy is current again: the write changed only this meta
            before = _generation.get(self.db_key, 0) - 1
            if meta:
                sm.meta = meta
            with self._lock:
                for key, (gen, cached) in list(self._cache.items()):
                    if cached is sm and gen == before:
                        self._cache[key] = (before + 1, sm)

        try:
            self._write(write, f"the explanation of '{sm.model}' version {sm.version}", restamp)
        except duckdb.Error as e:
            if "read-only" not in str(e).lower():
                raise

    def _log(self, cur, model: str, version: int, action: str, now: datetime) -> None:
        seq = cur.execute("SELECT coalesce(max(seq), 0) + 1 FROM wml.deployments").fetchone()[0]
        cur.execute("INSERT INTO wml.deployments VALUES ($1, $2, $3, $4, $5)", [seq, model, version, action, now])

    def deploy(self, model: str, version: int) -> int:
        versions = self.versions(model)
        if version not in versions:
            raise InvalidArgument("version", f"model '{model}' has no version {version} (it has {sorted(versions)})",
                                  f"Pick one listed by: FROM ml_models() WHERE model = '{model}'")
        self._write_log(model, version, "deploy")
        return version

    def rollback(self, model: str) -> int:
        def write(cur) -> int:  # the stack is read under the writer lock, so concurrent rollbacks step back in turn
            stack = self._stack(model)
            if len(stack) < 2:
                raise InvalidArgument("model", f"model '{model}' has no earlier active version to roll back to",
                                      "Deploy a specific version with FROM ml_deploy(model, version)")
            self._log(cur, model, stack[-2], "rollback", datetime.now(timezone.utc).replace(tzinfo=None))
            self._refresh_inline(cur)
            return stack[-2]

        return self._write(write, f"the rollback of '{model}'")

    def _write_log(self, model: str, version: int, action: str) -> None:
        def write(cur) -> None:
            self._log(cur, model, version, action, datetime.now(timezone.utc).replace(tzinfo=None))
            self._refresh_inline(cur)

        self._write(write, f"the {action} of '{model}' version {version}")

    # -- the inline scoring macros -------------------------------------------------------------------------
    def _inline_macros(self, cur) -> dict[str, tuple[str, str]]:
        """name -> (parameters, body) of each scoring macro for the active versions as ``cur`` sees them (inside a
        write: its own): ``wml.predict_inline`` and one per ``DEDICATED_MODELS`` name."""
        from .tasks.compiled import inline_branch, inline_macro_body, model_macro_body

        events = cur.execute("SELECT model, version, action FROM wml.deployments ORDER BY seq").fetchall()
        versions = {(m, v): (f, features) for m, v, f, features in cur.execute(
            "SELECT model, version, json_extract(meta, '$.linear_form'), features FROM wml.model_versions").fetchall()}
        forms = {}  # model -> its active version's linear form, for the models the macros inline
        for model in sorted({m for m, _ in versions}):
            stack = _replay([(v, a) for m, v, a in events if m == model], {v for m, v in versions if m == model})
            form, features = versions[(model, stack[-1])] if stack else (None, None)
            if form is not None and not _hashes_features(features):
                forms[model] = form

        def rendered(render, model: str) -> str | None:
            try:
                return render(model, json.loads(forms[model]))
            except (TypeError, ValueError, KeyError, AttributeError):
                return None  # a form this version cannot render: the model scores through the UDF

        branches = [b for b in (rendered(inline_branch, m) for m in forms) if b is not None]
        macros = {INLINE_MACRO: ('model, "row"', inline_macro_body(branches))}
        for model in DEDICATED_MODELS:
            body = rendered(model_macro_body, model) if model in forms else None
            macros[f"{INLINE_MACRO}_{model}"] = ('"row"', body or model_macro_body(model, None))
        return macros

    def _refresh_inline(self, cur) -> None:
        for name, (params, body) in self._inline_macros(cur).items():
            cur.execute(f"CREATE OR REPLACE MACRO wml.{name}({params}) AS {body}")

    def prepare_inline_scoring(self) -> bool:
        """Make the scoring macros current when they are not (a store written by an earlier release) and the file
        is writable; True when ``ml_predict`` and the shortcuts may route through them."""
        if self.inline_scoring_ready():
            return True
        try:
            self._write(self._refresh_inline, "the inline scoring macros")
        except duckdb.Error:
            return False  # read-only, or no store: score through the UDF
        return self.inline_scoring_ready()

    @staticmethod
    def _inline_macro(cur) -> str | None:
        """The stored ``wml.predict_inline``'s definition as DuckDB renders it, or None when there is none."""
        row = cur.execute("SELECT macro_definition FROM duckdb_functions() WHERE schema_name = 'wml' AND "
                          "function_name = $1 AND database_name = current_database()", [INLINE_MACRO]).fetchone()
        return row[0] if row else None

    def inline_scoring_ready(self) -> bool:
        """Whether every scoring macro in the file is exactly what the store would write now, so routing
        ``ml_predict`` and the shortcuts through them runs no SQL that came from the file (a read-only copy, or
        one another program wrote): each is rendered as a TEMP macro and DuckDB's renderings are compared."""
        cur = self.con.cursor()
        try:
            stored = dict(cur.execute(
                "SELECT function_name, macro_definition FROM duckdb_functions() WHERE schema_name = 'wml' AND "
                "database_name = current_database() AND function_name LIKE $1", [INLINE_MACRO + "%"]).fetchall())
            for name, (params, body) in self._inline_macros(cur).items():
                if name not in stored:
                    return False
                cur.execute(f"CREATE OR REPLACE TEMP MACRO wml_predict_inline_check({params}) AS {body}")
                row = cur.execute("SELECT macro_definition FROM duckdb_functions() WHERE schema_name = 'main' AND "
                                  "database_name = 'temp' AND function_name = 'wml_predict_inline_check'").fetchone()
                cur.execute("DROP MACRO IF EXISTS temp.wml_predict_inline_check")
                if row is None or row[0] != stored[name]:
                    return False
            return True
        except duckdb.Error:
            return False
        finally:
            cur.close()

    def _write(self, body, what: str, committed=None):
        """Run ``body(cursor)`` in one transaction under this database's writer lock, retrying when a writer
        outside the lock won a race (a numbering conflict); returns what ``body`` returns, after passing it to
        ``committed`` (when given) still under the lock, so no other write of this process comes in between."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with _writer_lock(self.db_key):
                    with self._transaction() as cur:
                        result = body(cur)
                    if committed is not None:
                        committed(result)
                    return result
            except (duckdb.ConstraintException, duckdb.TransactionException) as e:
                if not _is_race(e):
                    raise
                if attempt == WRITE_ATTEMPTS:
                    raise ConcurrentWrite(what, WRITE_ATTEMPTS, e) from None
                time.sleep(0.05 * attempt)

    @contextmanager
    def _transaction(self):
        """A fresh cursor in one transaction: committed when the block succeeds, rolled back on any exit
        otherwise (an exception or an interrupt), and the model cache invalidated after a commit."""
        cur = self.con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            cur.close()
        _bump(self.db_key)

    def drop(self, model: str) -> list[StoredModel]:
        removed = [self.describe(model, v) for v in sorted(self.versions(model))]

        def delete(cur) -> None:
            cur.execute("DELETE FROM wml.model_versions WHERE model = $1", [model])
            cur.execute("DELETE FROM wml.deployments WHERE model = $1", [model])
            cur.execute("DELETE FROM wml.monitoring WHERE model = $1", [model])
            self._refresh_inline(cur)

        self._write(delete, f"the drop of '{model}'")
        return removed

    def append_monitoring(self, model: str, version: int | None, action: str, relation: str | None,
                          n_rows: int | None, rows: list[dict]) -> tuple[int, datetime]:
        """Append one check (or update, or retrain) to the monitoring history in one transaction; each row
        holds feature, kind, statistic, value, threshold, drifted, note and counts. Returns (check_id, time)."""
        self.ensure_schema()
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        def append(cur) -> int:
            check_id = cur.execute("SELECT coalesce(max(check_id), 0) + 1 FROM wml.monitoring").fetchone()[0]
            cur.executemany(
                "INSERT INTO wml.monitoring VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                [[check_id, model, version, now, action, relation, n_rows, r.get("feature"), r.get("kind"),
                  r.get("statistic"), r.get("value"), r.get("threshold"), r.get("drifted"), r.get("note"),
                  r.get("counts")] for r in rows])
            return check_id

        return self._write(append, f"the monitoring record of '{model}'"), now

    # -- reading -------------------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT model FROM wml.model_versions ORDER BY 1")]

    def versions(self, model: str) -> set[int]:
        rows = self._query("SELECT version FROM wml.model_versions WHERE model = $1", [model])
        if not rows:
            raise ModelNotFound(model, self.model_names())
        return {r[0] for r in rows}

    def _stack(self, model: str) -> list[int]:
        existing = self.versions(model)
        return _replay(self._query("SELECT version, action FROM wml.deployments WHERE model = $1 ORDER BY seq",
                                   [model]), existing)

    def active_version(self, model: str) -> int:
        stack = self._stack(model)
        if not stack:
            raise ModelNotFound(model, self.model_names(), hint=f"FROM ml_deploy('{model}', 1)")
        return stack[-1]

    def describe(self, model: str, version: int | None = None, with_object: bool = False) -> StoredModel:
        if version is None:
            version = self.active_version(model)
        cols = "model, version, task, algorithm, label, features, metrics, params, meta, n_rows, created_at"
        if with_object:
            cols += ", format, artifact"
        rows = self._query(f"SELECT {cols} FROM wml.model_versions WHERE model = $1 AND version = $2", [model, version])
        if not rows:
            raise ModelNotFound(model, self.model_names())
        r = rows[0]
        sm = StoredModel(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), json.loads(r[7]),
                         json.loads(r[8]), r[9], r[10])
        if with_object:
            sm.obj = _load_stored(model, version, r[11], r[12])
        return sm

    def load(self, model: str) -> StoredModel:
        """The active version with its object, cached until any write to this database's store."""
        if not isinstance(model, str):
            raise InvalidArgument("model", f"expected a model name, got {model!r}", "Pass the model's name as a string")
        gen = _generation.get(self.db_key, 0)
        with self._lock:
            hit = self._cache.get((model, None))
            if hit and hit[0] == gen:
                return hit[1]
        sm = self.describe(model, None, with_object=True)
        with self._lock:
            self._cache[(model, None)] = (gen, sm)
        return sm

    def listing(self) -> list[dict]:
        """Every version with whether it is active, for ml_models()."""
        out = []
        for model in self.model_names():
            active = self._stack(model)
            for r in self._query(
                """SELECT model, version, task, algorithm, metrics, features, n_rows, created_at, label, seconds
                   FROM wml.model_versions WHERE model = $1 ORDER BY version""", [model]):
                out.append(dict(model=r[0], version=r[1], task=r[2], algorithm=r[3],
                                is_active=bool(active) and active[-1] == r[1], metrics=_metric_map(json.loads(r[4])),
                                features=[f["name"] for f in json.loads(r[5])], n_rows=r[6], created_at=r[7],
                                label=r[8], seconds=r[9]))
        return out

    def forecast_names(self) -> list[str]:
        """The names forecasts were saved under (save_forecast), sorted; none before the first save."""
        return [r[0] for r in self._query("SELECT DISTINCT name FROM wml.forecasts ORDER BY 1")]

    def _query(self, sql: str, params: list | None = None) -> list[tuple]:
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        except duckdb.CatalogException:
            return []  # no store yet (e.g. a read-only database that never trained a model)
        finally:
            cur.close()


def _hashes_features(features: str | None) -> bool:
    """``compiled.hashes_categories`` of a version's features as stored (JSON); unreadable ones too, so that the
    model scores through the UDF, whose loader says what is wrong."""
    from .tasks.compiled import hashes_categories

    try:
        return hashes_categories(json.loads(features or "[]"))
    except (TypeError, ValueError):
        return True


def _replay(events, existing: set[int]) -> list[int]:
    """A model's active-version stack from its deployment log, (version, action) in order: train and deploy
    push a version, rollback pops back to the one below."""
    stack: list[int] = []
    for version, action in events:
        if action == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        else:
            stack.append(version)
    return [v for v in stack if v in existing]


def _is_race(e: duckdb.Error) -> bool:
    """A write conflict between concurrent writers, as opposed to a bad value (NOT NULL, a CHECK)."""
    text = str(e)
    return "Duplicate key" in text or "onflict" in text or "Failed to commit" in text


def validate_model_name(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise InvalidArgument("model", f"expected a model name, got {model!r}", "Pass a name such as 'churn'")
    if len(model) > 128:
        raise InvalidArgument("model", "the name is longer than 128 characters", "Use a shorter name")
    return model


def _metric_map(metrics: dict) -> dict[str, float]:
    """Numeric metrics only, as the MAP(VARCHAR, DOUBLE) that SQL sees."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _json(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o)}")
