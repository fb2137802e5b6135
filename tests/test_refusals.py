"""Clear refusals: a shortcut refuses a label that does not fit it, a damaged artifact names the model, the
version and the way out, and a model large enough to hurt says so and says how to shrink it."""
from __future__ import annotations

import io

import duckdb
import numpy as np
import pytest

import warehouse_ml as wml


@pytest.mark.parametrize("shortcut,label", [("train_churn", "churned"), ("train_conversion", "converted"),
                                            ("train_ctr", "clicked")])
def test_a_shortcut_refuses_a_label_with_three_classes_and_names_the_generic_call(con, shortcut, label):
    con.execute(f"CREATE TABLE t AS SELECT range AS row_id, random() AS x, (range % 3) AS {label} FROM range(300)")
    model = shortcut.removeprefix("train_")
    with pytest.raises(duckdb.Error) as e:
        con.execute(f"FROM {shortcut}('t')").fetchall()
    text = str(e.value)
    assert f"argument 'label': {shortcut} predicts a yes/no outcome, and '{label}' has 3 distinct values (0, 1, 2)" in text
    assert f"ml_train('{model}', 't', label := '{label}', task := 'classification')" in text
    assert con.execute("SELECT count(*) FROM wml.model_versions").fetchone() == (0,)
    # the generic call it names does train
    assert con.execute(f"SELECT task FROM ml_train('{model}', 't', label := '{label}', task := 'classification', "
                       "algorithm := 'logistic')").fetchone() == ("classification",)


@pytest.fixture
def two_versions(db_path):
    """Two versions of 'm', trained in one session; the tests damage the stored bytes and read them in the next
    session (the session that trained a version keeps the fitted model it stored, so never reads it back). Gradient
    boosting, because plain SQL scores a linear model from the SQL the store compiled when it was deployed, without
    reading its artifact."""
    trainer = wml.connect(db_path)
    trainer.execute("CREATE TABLE t AS SELECT range AS row_id, random() AS x, (range % 2) AS y FROM range(300)")
    for _ in range(2):
        trainer.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'gbm', deploy := 'always')").fetchall()
    trainer.close()
    con = wml.connect(db_path)
    yield con
    con.close()


def _damage(con, model: str, damage) -> None:
    """Rewrite a stored artifact's bytes as ``damage(bytes)`` would leave them (a truncated copy, garbage)."""
    blob = con.execute("SELECT artifact FROM wml.model_versions WHERE model = $1 ORDER BY version DESC LIMIT 1",
                       [model]).fetchone()[0]
    con.execute("UPDATE wml.model_versions SET artifact = $1 WHERE model = $2 AND version = "
                "(SELECT max(version) FROM wml.model_versions WHERE model = $2)", [damage(bytes(blob)), model])


@pytest.mark.parametrize("damage", [lambda b: b[:200], lambda b: b"\x00\x01garbage", lambda b: b""],
                         ids=["truncated", "garbage", "empty"])
def test_a_damaged_artifact_names_model_version_and_the_way_out(two_versions, damage):
    con = two_versions
    _damage(con, "m", damage)
    with pytest.raises(duckdb.Error) as e:
        con.execute("SELECT ml_predict('m', t) FROM t t").fetchall()
    text = str(e.value)
    assert "CorruptModel: the stored skops artifact of model 'm' version 2 cannot be read" in text
    assert "ml_rollback('m')" in text and "Retrain it" in text
    con.execute("FROM ml_rollback('m')").fetchall()  # the way out it names works
    assert len(con.execute("SELECT ml_predict('m', t) FROM t t").fetchall()) == 300


def test_a_truncated_array_artifact_is_named_too(con):
    con.execute("CREATE TABLE users AS SELECT range AS user_id, (range % 5)::DOUBLE AS visits, "
                "(range % 3)::DOUBLE AS spend FROM range(200)")
    con.execute("FROM ml_train('seg', 'users', task := 'segment', k := 2)").fetchall()
    _damage(con, "seg", lambda b: b[:100])
    with pytest.raises(duckdb.Error, match="CorruptModel: the stored npz artifact of model 'seg' version 1 cannot be read"):
        con.execute("SELECT ml_predict('seg', u) FROM users u").fetchall()


def test_an_artifact_holding_pickles_is_refused_naming_the_model(two_versions):
    con = two_versions
    buf = io.BytesIO()
    np.savez(buf, w=np.array([{"x": 1}], dtype=object), allow_pickle=True)
    con.execute("UPDATE wml.model_versions SET format = 'npz', artifact = $1 WHERE version = 2", [buf.getvalue()])
    with pytest.raises(duckdb.Error, match="UnsafeModel: model 'm' version 2 holds pickled Python objects"):
        con.execute("SELECT ml_predict('m', t) FROM t t").fetchall()


@pytest.mark.slow
def test_a_default_forest_on_many_rows_stays_small_and_says_why(con):
    con.execute("CREATE TABLE big AS SELECT random() AS a, random() AS b, random() AS c, "
                "(random() < 0.5)::INT AS y FROM range(50000)")
    notes = con.execute("SELECT notes FROM ml_train('forest', 'big', label := 'y', algorithm := 'random_forest')"
                        ).fetchone()[0]
    assert "random forest on 40,000 rows: min_samples_leaf = 20 (at most 2,000 leaves per tree)" in " ".join(notes)
    size = con.execute("SELECT octet_length(artifact) FROM wml.model_versions").fetchone()[0]
    assert size < 40 * 2**20  # unbounded (min_samples_leaf = 3) the same forest stores about 150 MB


@pytest.mark.slow
def test_an_oversized_model_warns_with_its_size_and_how_to_shrink_it(con):
    con.execute("CREATE TABLE noisy AS SELECT random() AS a, random() AS b, random() AS c, "
                "(random() < 0.5)::INT AS y FROM range(25000)")
    notes = con.execute("SELECT notes FROM ml_train('forest', 'noisy', label := 'y', algorithm := 'random_forest', "
                        "params := {min_samples_leaf: 1, n_estimators: 120})").fetchone()[0]
    warning = next(n for n in notes if n.startswith("warning: the stored model is"))
    assert "MB, which every connection loads before scoring; shrink it with params := {min_samples_leaf: 50}" in warning


def test_the_shortcut_option_only_takes_the_shortcuts_names(con):
    con.execute("CREATE TABLE t AS SELECT range AS row_id, random() AS x, (range % 2) AS y FROM range(100)")
    with pytest.raises(duckdb.Error, match="argument 'shortcut': unknown shortcut 'train_anything'"):
        con.execute("FROM ml_train('m', 't', label := 'y', shortcut := 'train_anything')").fetchall()
