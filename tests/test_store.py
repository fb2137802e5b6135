"""The model store: versions, atomic writes, and loading that never runs code from the table."""
from __future__ import annotations

import duckdb
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.errors import UnsafeModel
from warehouse_ml.store import dumps_arrays, loads_artifact


def test_a_write_that_fails_midway_leaves_nothing(con):
    store = runtime_for(con).store
    fmt, blob = dumps_arrays({"w": [1.0, 2.0]})
    assert store.save("m", task="classification", algorithm="logistic", fmt=fmt, artifact=blob) == 1
    with pytest.raises(duckdb.Error):
        store.save("m", task="classification", algorithm="logistic", fmt=fmt, artifact=None)  # NOT NULL
    assert con.execute("SELECT version FROM wml.model_versions").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM wml.deployments").fetchone() == (1,)
    assert store.active_version("m") == 1


def test_artifacts_with_functions_are_refused_not_executed(con):
    # A transformer that would call eval on use: skops records the function as a type to trust.
    evil = FunctionTransformer(func=eval)
    blob = sio.dumps(evil)
    # the payload is real: trusted blindly, it loads back a transformer that calls eval
    assert sio.loads(blob, trusted=sio.get_untrusted_types(data=blob)).func is eval
    with pytest.raises(UnsafeModel, match="builtins.eval"):
        loads_artifact("skops", blob)
    con.execute("""INSERT INTO wml.model_versions (model, version, task, algorithm, features, metrics, params, meta,
                   format, artifact) VALUES ('evil', 1, 'classification', 'logistic', '[]', '{}', '{}', '{}', 'skops', $1)""", [blob])
    con.execute("INSERT INTO wml.deployments VALUES (1, 'evil', 1, 'train', now())")
    con.execute("CREATE TABLE x AS SELECT 1 AS a")
    with pytest.raises(duckdb.Error, match="UnsafeModel"):
        con.execute("SELECT ml_predict('evil', x) FROM x").fetchall()


def test_unknown_formats_are_refused(con):
    with pytest.raises(UnsafeModel, match="unknown artifact format 'pickle'"):
        loads_artifact("pickle", b"\x80\x04K\x01.")


def test_arrays_round_trip_without_pickle():
    fmt, blob = dumps_arrays({"a": [1, 2, 3], "b": [[0.5]]})
    out = loads_artifact(fmt, blob)
    assert fmt == "npz" and out["a"].tolist() == [1, 2, 3] and out["b"].tolist() == [[0.5]]


def test_a_read_only_database_still_scores(db_path):
    con = wml.connect(db_path)
    con.execute("CREATE TABLE t AS SELECT range AS x, (range % 2) AS y, random() AS z FROM range(200)")
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'decision_tree')").fetchall()
    con.close()
    ro = wml.connect(db_path, read_only=True)
    assert len(ro.execute("SELECT ml_predict('m', t) FROM t t").fetchall()) == 200
    with pytest.raises(duckdb.Error, match="read-only"):
        ro.execute("FROM ml_train('m', 't', label := 'y')").fetchall()
    ro.close()


def test_ml_export_and_ml_import_move_a_model_between_databases(tmp_path):
    """A model goes through a Parquet export into another database and scores the same there; a read-only
    session may neither export nor import, and an export of the wrong shape is refused by name."""
    source = str(tmp_path / "a.duckdb")
    con = wml.connect(source)
    con.execute("CREATE TABLE t AS SELECT range AS x, (range % 3 = 0)::INT AS y, sin(range) AS z FROM range(300)")
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchall()
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'decision_tree')").fetchall()
    want = con.execute("SELECT ml_predict('m', t) FROM t ORDER BY x").fetchall()
    active, algorithm = con.execute("SELECT version, algorithm FROM ml_models() WHERE is_active").fetchone()
    folder = str(tmp_path / "exported")
    assert con.execute(f"FROM ml_export('m', '{folder}')").fetchall() == [("m", active, f"{folder}/models.parquet")]
    con.close()
    other = wml.connect(str(tmp_path / "b.duckdb"))
    other.execute("CREATE TABLE t AS SELECT range AS x, (range % 3 = 0)::INT AS y, sin(range) AS z FROM range(300)")
    row = other.execute(f"SELECT model, version, algorithm, is_active FROM ml_import('{folder}')").fetchall()
    assert row == [("m", 1, algorithm, True)]  # the active version, as the first version here
    assert other.execute("SELECT ml_predict('m', t) FROM t ORDER BY x").fetchall() == want
    with pytest.raises(duckdb.Error, match="argument 'path'.*not a readable Parquet file"):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "models.parquet").write_text("not parquet")
        other.execute(f"FROM ml_import('{tmp_path}/junk')").fetchall()
    other.close()
    ro = wml.connect(source, read_only=True)
    for stmt in (f"FROM ml_export('m', '{tmp_path}/again')", f"FROM ml_import('{folder}')"):
        with pytest.raises(duckdb.Error, match="read-only"):
            ro.execute(stmt).fetchall()
    ro.close()


def test_the_version_just_trained_is_cached_as_stored_and_scores_as_it_reads_back(db_path):
    """ml_train keeps the estimator it stored as the loaded active version (no read-back of what it just wrote):
    that cached version must be what a fresh connection reads from the table, field for field and score for
    score; a version stored without being activated must not take its place."""
    con = wml.connect(db_path)
    con.execute("""CREATE TABLE t AS SELECT range AS id, random() AS a, random() * 3 AS b,
                   ['x', 'y', 'z'][1 + (range % 3)::INT] AS c, (random() + (range % 3) / 4 > 0.7)::INT AS y
                   FROM range(3000)""")
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'gbm')").fetchall()
    store = runtime_for(con).store
    assert ("m", None) in store._cache  # put there by the write itself: nothing has loaded the model yet
    cached = store.load("m")
    assert cached.obj is not None and cached.version == 1
    scores = con.execute("SELECT id, ml_predict('m', t) FROM t t ORDER BY id").fetchall()
    con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic', deploy := 'never')").fetchall()
    assert store.load("m").version == 1  # stored, not active: the cache still holds version 1
    con.close()
    fresh = wml.connect(db_path)
    read = runtime_for(fresh).store.load("m")
    assert read.obj is not cached.obj and read.version == cached.version
    for name in ("task", "algorithm", "label", "features", "metrics", "params", "meta", "n_rows", "created_at"):
        assert getattr(read, name) == getattr(cached, name), name
    assert fresh.execute("SELECT id, ml_predict('m', t) FROM t t ORDER BY id").fetchall() == scores
