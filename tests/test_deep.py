"""Deep tabular models (algorithm := 'mlp') with real TensorFlow training on small data, through SQL.

TensorFlow must be installed for these tests (CI installs it); the missing-TensorFlow test runs a separate
Python in which the import is blocked, which is exactly the state of a user without TensorFlow.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.errors import UnsafeModel
from warehouse_ml.store import loads_artifact
from warehouse_ml.tasks import supervised as sv
from warehouse_ml.tasks.deep import KerasMLPClassifier, KerasMLPRegressor
from warehouse_ml.tasks.deep_storage import loads_keras

from .conftest import REPO, churn_frame, errors_without_tensorflow, run_without_tensorflow

FAST = "params := {epochs: 8, hidden_units: [32, 16]}"


def scores(con, model, table="uf", key="user_id"):
    return np.array([r[0] for r in con.execute(f"SELECT ml_predict('{model}', t) FROM {table} t ORDER BY {key}").fetchall()])


def row_dict(con, sql):
    row = con.execute(sql).fetchone()
    return dict(zip([d[0] for d in con.description], row))


def regression_frame(n=1200, seed=3):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.uniform(0, 4, size=n)
    region = rng.choice(["north", "south", "east"], n)
    y = 3 * x1 + x2 ** 2 + np.where(region == "south", 5.0, 0.0) + rng.normal(0, 0.5, n)
    x2 = x2.copy()
    x2[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"k": np.arange(n), "x1": x1, "x2": x2, "region": region, "y": y})


def test_mlp_trains_predicts_and_persists_through_sql(con, churn_table, db_path):
    r = row_dict(con, "FROM train_conversion('uf', label := 'churned', algorithm := 'mlp')")
    assert r["model"] == "conversion" and r["algorithm"] == "mlp" and r["task"] == "classification"
    assert r["n_train"] == 1200 and r["n_test"] == 300
    assert r["metrics"]["roc_auc"] > 0.75
    assert any("mlp trained" in n and "epoch" in n and "samples/s" in n for n in r["notes"])
    p = scores(con, "conversion")
    y = churn_frame()["churned"].to_numpy()
    assert p.shape == (1500,) and np.all((p >= 0) & (p <= 1))
    assert p[y == 1].mean() > p[y == 0].mean() + 0.15
    same = np.array([v[0] for v in con.execute("SELECT predict_conversion(u) FROM uf u ORDER BY user_id").fetchall()])
    assert np.array_equal(same, p)
    labels = {v[0] for v in con.execute("SELECT DISTINCT ml_predict_label('conversion', u) FROM uf u").fetchall()}
    assert labels == {0, 1}
    metrics = dict(con.execute("FROM ml_evaluate('conversion', 'uf')").fetchall())
    assert metrics["roc_auc"] > 0.75 and metrics["n_rows"] == 1500
    top = con.execute("FROM ml_explain('conversion')").fetchall()
    assert top[0][0] in ("recency_days", "frequency")
    why = con.execute("SELECT ml_explain_row('conversion', u, k := 2) FROM uf u ORDER BY user_id LIMIT 3").fetchall()
    assert all(len(w[0]) == 2 and {"feature", "contribution"} <= set(w[0][0]) for w in why)
    fmt = con.execute("SELECT format FROM wml.model_versions WHERE model = 'conversion'").fetchone()[0]
    assert fmt == "keras"

    # a new connection (a fresh model cache) loads the stored .keras artifact safely and scores the same
    con.close()
    con2 = wml.connect(db_path)
    try:
        assert np.allclose(scores(con2, "conversion"), p, atol=1e-6)
        assert con2.execute("SELECT algorithm FROM ml_models() WHERE model = 'conversion'").fetchone()[0] == "mlp"
    finally:
        con2.close()


def test_same_seed_gives_the_same_model_on_the_cpu(con):
    con.register("reg_df", regression_frame(800))
    con.execute("CREATE TABLE reg AS SELECT * FROM reg_df")
    rows = [row_dict(con, f"FROM ml_train('r{i}', 'reg', label := 'y', algorithm := 'mlp', {FAST})") for i in (1, 2)]
    assert rows[0]["task"] == "regression" and rows[0]["metrics"] == rows[1]["metrics"]
    assert rows[0]["metrics"]["r2"] > 0.8
    a, b = scores(con, "r1", "reg", "k"), scores(con, "r2", "reg", "k")
    assert np.array_equal(a, b)


def test_multiclass_text_label_and_imbalance(con):
    rng = np.random.default_rng(5)
    n = 1500
    x = rng.normal(size=(n, 3))
    tier = np.where(x[:, 0] + 0.5 * x[:, 1] > 0.8, "gold", np.where(x[:, 0] < -0.5, "bronze", "silver"))
    rare = (x[:, 2] > 1.6).astype(int)  # about 5% positives, driven by x3 alone
    df = pd.DataFrame({"id": np.arange(n), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "tier": tier, "rare": rare,
                       "shop": rng.choice(["web", "app"], n)})
    con.register("mc_df", df)
    con.execute("CREATE TABLE mc AS SELECT * FROM mc_df")
    r = row_dict(con, f"FROM ml_train('tier', 'mc', label := 'tier', exclude := ['rare'], algorithm := 'mlp', {FAST})")
    assert r["task"] == "classification" and r["metrics"]["accuracy"] > 0.8
    got = {v[0] for v in con.execute("SELECT DISTINCT ml_predict_label('tier', t) FROM mc t").fetchall()}
    assert got == {"gold", "silver", "bronze"}
    r = row_dict(con, f"FROM ml_train('rare', 'mc', label := 'rare', exclude := ['tier'], algorithm := 'mlp', {FAST})")
    assert any("balanced class weights" in note for note in r["notes"])
    assert r["metrics"]["recall"] > 0.5  # class weights keep the rare class from being ignored


def test_bad_params_name_the_argument_and_the_fix(con, churn_table):
    with pytest.raises(Exception, match=r"params.*hidden_units must be a non-empty list.*hidden_units: \[128, 64\]"):
        con.execute("FROM ml_train('m', 'uf', label := 'churned', algorithm := 'mlp', params := {hidden_units: 'big'})")
    with pytest.raises(Exception, match=r"params.*mlp has no parameter.*depth.*Use any of:.*hidden_units"):
        con.execute("FROM ml_train('m', 'uf', label := 'churned', algorithm := 'mlp', params := {depth: 3})")
    with pytest.raises(Exception, match=r"dropout must be a number in \[0, 1\)"):
        con.execute("FROM ml_train('m', 'uf', label := 'churned', algorithm := 'mlp', params := {dropout: 1.5})")


def test_ml_device_reports_the_cpu(con):
    assert con.execute("SELECT ml_device()").fetchone()[0] == "CPU"


def _fitted_artifact():
    df = churn_frame(600, seed=2)
    X = df[["recency_days", "frequency", "monetary", "support_tickets"]].to_numpy(dtype=float)
    chan = pd.Categorical(df["channel"]).codes.astype(float)
    X = np.column_stack([X, chan])
    est = KerasMLPClassifier(hidden_units=[8], epochs=3, categorical=np.array([0, 0, 0, 0, 1], bool)).fit(X, df["churned"])
    from warehouse_ml.store import dumps_keras

    fmt, blob = dumps_keras(est)
    return est, X, fmt, blob


def _arrays(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_mlp_artifact_is_plain_arrays_scored_by_numpy_equal_to_keras():
    est, X, fmt, blob = _fitted_artifact()
    assert fmt == "keras"
    arrays = _arrays(blob)
    assert all(a.dtype != object for a in arrays.values()) and "keras_model" not in arrays
    loaded = loads_artifact(fmt, blob)
    assert isinstance(loaded, KerasMLPClassifier) and loaded.model_ is None  # no Keras model: NumPy scores it
    Z, ids = est.prep_.transform(X)
    keras_p = est.model_.predict({"numeric": Z, "categorical": ids}, verbose=0)[:, 0]
    assert np.allclose(loaded.predict_proba(X)[:, 1], keras_p, rtol=0, atol=1e-6)
    # weights that do not chain into one network, and artifacts of the old Keras-zip format, are refused
    broken = dict(arrays, output_w=arrays["output_w"][:-1])
    with pytest.raises(UnsafeModel, match="do not fit together"):
        loads_keras(_npz(broken))
    old = dict(arrays, config=np.array(json.dumps(dict(json.loads(str(arrays["config"])), format_version=1))))
    with pytest.raises(UnsafeModel, match="Retrain the model"):
        loads_keras(_npz(old))


def test_a_stored_mlp_scores_without_tensorflow(con, churn_table, db_path, tmp_path):
    con.execute(f"FROM ml_train('m', 'uf', label := 'churned', algorithm := 'mlp', {FAST})").fetchall()
    expected = scores(con, "m")
    con.close()
    out = run_without_tensorflow(f"""
        sys.path.insert(0, {str(REPO)!r})
        import json
        import warehouse_ml as wml
        con = wml.connect({db_path!r})
        p = [r[0] for r in con.execute("SELECT ml_predict('m', t) FROM uf t ORDER BY user_id").fetchall()]
        assert "tensorflow" not in [m for m in sys.modules if sys.modules[m] is not None]
        print(json.dumps(p))
    """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr == ""  # no TensorFlow or absl log lines either
    assert np.allclose(np.array(json.loads(out.stdout)), expected, rtol=0, atol=1e-6)


def test_regressor_estimator_follows_sklearn_conventions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = 2 * X[:, 0] - X[:, 1] + 10
    est = KerasMLPRegressor(hidden_units=16, epochs=40, validation_fraction=0.0)
    assert est.get_params()["hidden_units"] == 16
    est.fit(X, y)
    assert est.n_epochs_ == 40  # no validation split: no early stopping
    assert est.score(X, y) > 0.9  # RegressorMixin's R^2 on the real-scale predictions
    from sklearn.base import clone

    assert clone(est).get_params() == est.get_params()


@pytest.mark.slow  # three MLP fits inside cross-validation: ~25-60 s on two busy cores
def test_auto_considers_mlp_only_on_large_data(monkeypatch):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=300), rng.normal(size=300), rng.integers(0, 3, 300).astype(float)])
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    cats = np.array([False, False, True])
    small = sv._cross_validate(X, y, "classification", cats, None)
    assert "mlp" not in {c["algorithm"] for c in small}  # 300 rows < MLP_AUTO_MIN_ROWS (50k)
    monkeypatch.setattr(sv, "MLP_AUTO_MIN_ROWS", 300)  # the threshold scaled down to this sample
    large = sv._cross_validate(X, y, "classification", cats, None)
    mlp = next(c for c in large if c["algorithm"] == "mlp")
    assert mlp["metric"] == "roc_auc" and mlp["cv_score"] > 0.8


def test_missing_tensorflow_gives_install_command_and_classical_still_work(tmp_path):
    lines, errors = errors_without_tensorflow("""
        import numpy as np, pandas as pd
        con = wml.connect()
        rng = np.random.default_rng(0)
        x = rng.normal(size=300)
        con.register("d", pd.DataFrame({"x": x, "z": rng.normal(size=300), "y": (x > 0).astype(int)}))
        con.execute("CREATE TABLE t AS SELECT * FROM d")
        print("logistic:", con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchone()[3])
    """, ["FROM ml_train('n', 't', label := 'y', algorithm := 'mlp')", "SELECT ml_device()"], tmp_path)
    assert "logistic: logistic" in lines
    assert len(errors) == 2
    assert "MissingDependency" in errors[0] and "algorithm := 'mlp' needs TensorFlow" in errors[0]
    assert "pip install tensorflow-cpu" in errors[0] and "classical" in errors[0]
    assert "ml_device() needs TensorFlow" in errors[1] and "pip install tensorflow-cpu" in errors[1]
